//! Slowloris against a real `ledger-node` with its default API limits, and what an honest client
//! sees meanwhile.
//!
//! Starts the binary (one validator), measures an honest client's `GET /v1/status` latency alone
//! (keep-alive, from 127.0.0.1), then opens `BENCH_SOCKETS` (default 1,000) connections spread
//! over 8 other loopback addresses (127.0.0.2-9, so each stays under the per-client cap and every
//! one must be closed by the header-read timeout, not at accept), each sending the start of a
//! request head and stalling, and measures the honest latency again while they are open, and the
//! time until the node has closed all of them.
//!
//! `cargo bench --workspace --bench slowloris`; the last line is
//! `slowloris_sockets=<n> all_closed_s=<s> longest_open_s=<s> refused_at_accept=<n> honest_p50_ms=<ms>
//! honest_p99_ms=<ms> baseline_p50_ms=<ms> baseline_p99_ms=<ms>`.

use std::io::{Read, Write};
mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{env_u64, free_addr, one_validator_files, run_command};

fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    let stream: TcpStream = socket.into();
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Whether the peer closed `s` (end of stream or reset); never blocks.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `GET /v1/status` on one keep-alive agent for `for_how_long`; latencies in ms, sorted.
fn honest(agent: &ureq::Agent, url: &str, for_how_long: Duration) -> Vec<f64> {
    let mut out = Vec::new();
    let end = Instant::now() + for_how_long;
    while Instant::now() < end {
        let t = Instant::now();
        let ok = agent
            .get(url)
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200);
        // A failed request counts as the timeout it cost.
        out.push(if ok {
            t.elapsed().as_secs_f64() * 1000.0
        } else {
            2_000.0
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    out.sort_by(f64::total_cmp);
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("slowloris: run with `cargo bench --workspace --bench slowloris`");
        return;
    }
    let sockets = env_u64("BENCH_SOCKETS", 1_000) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, genesis_path, key_path) = one_validator_files(dir.path(), "bench-slowloris", 4);
    let api = free_addr();
    let _node = Node(
        run_command(dir.path(), &genesis_path, &key_path, api)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ledger-node"),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let url = format!("http://{api}/v1/status");
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.get(&url).call().map_or(true, |r| r.status() != 200) {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let baseline = honest(&agent, &url, Duration::from_secs(3));

    // A watcher polls every stalled socket from the moment it is opened, so each one's lifetime
    // (open to closed by the node) is measured as it happens.
    let (tx, rx) = std::sync::mpsc::channel::<(TcpStream, Instant)>();
    let watcher = std::thread::spawn(move || {
        let mut watched: Vec<(TcpStream, Instant)> = Vec::new();
        let mut longest = Duration::ZERO;
        let mut done = 0usize;
        let give_up = Instant::now() + Duration::from_secs(120);
        while done < sockets && Instant::now() < give_up {
            while let Ok(w) = rx.try_recv() {
                watched.push(w);
            }
            watched.retain_mut(|(s, at)| {
                if closed(s) {
                    longest = longest.max(at.elapsed());
                    done += 1;
                    false
                } else {
                    true
                }
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        (done, longest)
    });
    let started = Instant::now();
    for i in 0..sockets {
        let source = [127, 0, 0, 2 + (i % 8) as u8];
        let mut s = connect_from(source, api).unwrap_or_else(|e| panic!("connect {i}: {e}"));
        let at = Instant::now();
        let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nX-Slow: ");
        tx.send((s, at)).expect("the watcher runs");
    }
    let opened_in = started.elapsed();
    // The honest client meanwhile (the default header-read timeout is 5 s).
    let during = honest(&agent, &url, Duration::from_secs(3));
    let (done, longest) = watcher.join().expect("the watcher");
    let all_closed = started.elapsed();
    assert_eq!(done, sockets, "stalled connections still open after 120 s");
    let metrics = agent
        .get(&format!("http://{api}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let refused = metric(&metrics, "ledger_api_connections_refused_total");
    println!(
        "opened {sockets} stalled connections in {:.2} s; honest requests: {} alone, {} during",
        opened_in.as_secs_f64(),
        baseline.len(),
        during.len()
    );
    println!(
        "slowloris_sockets={sockets} all_closed_s={:.2} longest_open_s={:.2} refused_at_accept={refused} honest_p50_ms={:.2} honest_p99_ms={:.2} baseline_p50_ms={:.2} baseline_p99_ms={:.2}",
        all_closed.as_secs_f64(),
        longest.as_secs_f64(),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        percentile(&baseline, 0.5),
        percentile(&baseline, 0.99),
    );
}
