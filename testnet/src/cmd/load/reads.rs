//! Read load: concurrent clients fetch blocks by height and accounts (a block explorer's queries)
//! for `--duration` seconds; reports reads per second and latency percentiles.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use ledger_core::{Address, Keypair};
use serde::Serialize;

use super::stats::{Percentiles, percentiles};
use super::{LoadArgs, Target, rss_mb};
use crate::client::NodeClient;
use crate::cmd::interrupts;

const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Latency samples kept per client connection (about 8 MB); requests beyond are counted, not
/// sampled.
const MAX_SAMPLES_PER_THREAD: usize = 1_000_000;
/// Largest answer read: a block of the largest size the node builds, as JSON.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Accounts read: the genesis dev accounts and the first load accounts.
const ACCOUNTS_READ: u32 = 64;

#[derive(Debug, Default)]
struct ThreadResult {
    ok: u64,
    blocks: u64,
    accounts: u64,
    errors: BTreeMap<String, u64>,
    samples_us: Vec<u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    targets: Vec<String>,
    clients: usize,
    duration_s: f64,
    ok: u64,
    blocks: u64,
    accounts: u64,
    errors: BTreeMap<String, u64>,
    read_rps: f64,
    latency: Percentiles,
    rss_mb: BTreeMap<String, u64>,
    rss_mb_max: Option<u64>,
}

pub fn run(targets: &[Target], args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let head = NodeClient::new(&targets[0].url, READ_TIMEOUT)
        .status()
        .with_context(|| format!("cannot reach {}", targets[0].url))?
        .height
        .0;
    let clients = args.concurrency.map_or(8, |c| c as usize);
    let addresses: Vec<Address> = (0..ACCOUNTS_READ / 2)
        .map(|i| Keypair::dev("account", i).address())
        .chain((0..ACCOUNTS_READ / 2).map(|i| Keypair::dev("load", i).address()))
        .collect();
    crate::errln!(
        "reads: {clients} clients for {} s against {} (blocks 1..={head}, {} accounts){}",
        args.duration,
        targets
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        addresses.len(),
        if args.rate() > 0 {
            format!(", at most {} reads/s", args.rate())
        } else {
            String::new()
        }
    );
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.duration);
    // Per-client pacing when a rate is given: each client gets an equal share.
    let interval =
        (args.rate() > 0).then(|| Duration::from_secs_f64(clients as f64 / args.rate() as f64));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client's event loop")?;
    let results: Vec<ThreadResult> = runtime.block_on(async {
        let loops = (0..clients).map(|k| {
            let target = &targets[k % targets.len()];
            client_loop(k as u64, &target.url, head, &addresses, end, interval)
        });
        futures::future::join_all(loops).await
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut errors = BTreeMap::new();
    let (mut ok, mut blocks, mut accounts) = (0, 0, 0);
    for r in results {
        ok += r.ok;
        blocks += r.blocks;
        accounts += r.accounts;
        for (k, v) in r.errors {
            *errors.entry(k).or_insert(0) += v;
        }
        all.extend(r.samples_us);
    }
    let rss = rss_mb(targets);
    let report = Report {
        mode: "reads",
        targets: targets.iter().map(|t| t.url.clone()).collect(),
        clients,
        duration_s: elapsed,
        ok,
        blocks,
        accounts,
        errors,
        read_rps: ok as f64 / elapsed.max(1e-9),
        latency: percentiles(&mut all),
        rss_mb_max: rss.values().copied().max(),
        rss_mb: rss,
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "reads ok     {} ({} blocks, {} accounts) in {:.2} s",
        report.ok,
        report.blocks,
        report.accounts,
        elapsed
    );
    let failed: u64 = report.errors.values().sum();
    crate::outln!("errors       {failed}");
    for (k, v) in &report.errors {
        crate::outln!("  {k}: {v}");
    }
    let l = &report.latency;
    crate::outln!(
        "latency      p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.max_ms
    );
    for (node, mb) in &report.rss_mb {
        crate::outln!("memory       {node}: {mb} MB resident");
    }
    if let Some(m) = report.rss_mb_max {
        crate::outln!("rss_mb={m}");
    }
    crate::outln!(
        "read_rps={:.0} p50_ms={:.2} p99_ms={:.2}",
        report.read_rps,
        l.p50_ms,
        l.p99_ms
    );
    Ok(ExitCode::SUCCESS)
}

/// One keep-alive HTTP/1.1 connection's request loop (a task on the load's single-threaded runtime:
/// one core at most, with every connection's wake-ups batched by one event loop, so the client
/// leaves the other core to the node). A read counts once its whole body arrived with a 2xx status
/// (or 404 for an account never funded); bodies are not decoded, so the client spends its share of
/// the CPU on requests, not on parsing. A broken connection is counted and opened again.
async fn client_loop(
    seed: u64,
    url: &str,
    head: u64,
    addresses: &[Address],
    end: Instant,
    interval: Option<Duration>,
) -> ThreadResult {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut r = ThreadResult::default();
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    let mut next_due = tokio::time::Instant::now();
    let mut i = 0u64;
    while Instant::now() < end && interrupts() == 0 {
        if let Some(iv) = interval {
            tokio::time::sleep_until(next_due).await;
            next_due += iv;
        }
        let sender = match conn.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(&authority).await {
                Ok(s) => conn.insert(s),
                Err(code) => {
                    *r.errors.entry(code).or_insert(0) += 1;
                    // A refused connection fails at once: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Alternate: even requests read a block, odd ones an account.
        let (path, is_account) = if i.is_multiple_of(2) && head > 0 {
            r.blocks += 1;
            (format!("/v1/blocks/{}", 1 + rng.next() % head), false)
        } else {
            r.accounts += 1;
            let a = &addresses[(rng.next() % addresses.len() as u64) as usize];
            (format!("/v1/accounts/{a}"), true)
        };
        i += 1;
        let start = Instant::now();
        match tokio::time::timeout(READ_TIMEOUT, get(sender, &authority, &path, is_account)).await {
            Ok(Ok(())) => {
                r.ok += 1;
                if r.samples_us.len() < MAX_SAMPLES_PER_THREAD {
                    r.samples_us.push(start.elapsed().as_micros() as u64);
                }
            }
            Ok(Err(code)) => {
                if code == "transport" {
                    conn = None;
                }
                *r.errors.entry(code).or_insert(0) += 1;
            }
            Err(_) => {
                // The answer may still arrive on this connection: start afresh.
                conn = None;
                *r.errors.entry("timeout".into()).or_insert(0) += 1;
            }
        }
    }
    r
}

/// Opens a keep-alive HTTP/1.1 connection; its driver runs as a task of the same runtime.
async fn connect(authority: &str) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|_| "connect".to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "transport".to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `GET path` on the connection and reads the whole body (at most [`MAX_BODY_BYTES`]); the error is
/// a failure code for the report.
async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    authority: &str,
    path: &str,
    not_found_ok: bool,
) -> Result<(), String> {
    sender.ready().await.map_err(|_| "transport".to_string())?;
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::new())
        .map_err(|_| "bad_request".to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|_| "transport".to_string())?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| "transport".to_string())?
        .to_bytes();
    let answered = status.is_success() && !body.is_empty();
    if answered || (status == hyper::StatusCode::NOT_FOUND && not_found_ok) {
        Ok(())
    } else if status.is_success() {
        Err("bad_answer".into())
    } else {
        Err(format!("http_{}", status.as_u16()))
    }
}

/// A tiny deterministic generator for picking heights and accounts (no dependency, no OS entropy).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
