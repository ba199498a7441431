//! The HTTP server's limits against a real `ledger-node` process and raw sockets: a slowloris
//! client (many connections, each sending half a request head) from one loopback address gets at
//! most its per-client share of connections, and each is closed within the header-read timeout,
//! while a client from another address is served at once throughout; a body announced above the
//! limit is refused with 413 before the client sends it; a client that floods requests or event
//! subscriptions is refused its excess, and a client at another address is not.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{Process, free_addr, one_validator_files};

/// Connects from `source` (any 127.0.0.0/8 address is this machine) to `to`.
fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(stream)
}

/// Whether the server has closed `s` (a read sees the end, or the connection was reset), after
/// whatever it answered first (e.g. a 400 for a malformed head).
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn slowloris_from_one_address_is_capped_and_timed_out_while_another_address_is_served() {
    const SOCKETS: usize = 300;
    const PER_CLIENT: usize = 40;
    const HEADER_TIMEOUT_MS: u64 = 1_500;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.header_read_timeout_ms = HEADER_TIMEOUT_MS;
        c.api.max_connections_per_client = PER_CLIENT;
    });

    // The attacker, from 127.0.0.2: every socket sends the start of a request head and stalls.
    let started = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let mut s = connect_from([127, 0, 0, 2], node.api).expect("connect");
        let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nX-Slow: ");
        sockets.push(s);
    }
    // Every socket is read each round (a closed one reads its end again), so count them all.
    let still_open = |sockets: &mut Vec<TcpStream>| {
        let mut open = 0;
        for s in sockets.iter_mut() {
            if !closed(s) {
                open += 1;
            }
        }
        open
    };
    // Beyond its share, its connections are closed at once.
    std::thread::sleep(Duration::from_millis(300));
    let open_now = still_open(&mut sockets);
    assert!(
        open_now <= PER_CLIENT,
        "{open_now} of {SOCKETS} stalled connections are open, the per-client cap is {PER_CLIENT}"
    );
    assert!(open_now > 0, "the cap should leave the client its share");

    // Meanwhile another client is served at once, on fresh connections.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let mut s = connect_from([127, 0, 0, 1], node.api).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "an honest request took {slowest:?} during the attack"
    );

    // And every stalled connection is closed within the header-read timeout (plus slack).
    let deadline = started + Duration::from_millis(HEADER_TIMEOUT_MS + 3_000);
    while still_open(&mut sockets) > 0 {
        assert!(
            Instant::now() < deadline,
            "stalled connections still open {:?} after they started",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_closed_after = started.elapsed();
    assert!(
        all_closed_after >= Duration::from_millis(HEADER_TIMEOUT_MS - 200),
        "closed after {all_closed_after:?}, before the timeout: the test measured nothing"
    );
    let (status, _) = node.get("/v1/status");
    assert_eq!(status, 200);
    let text = node.metrics_text();
    let refused = text
        .lines()
        .find(|l| l.starts_with("ledger_api_connections_refused_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        refused >= (SOCKETS - PER_CLIENT) as f64,
        "refused {refused}:\n{text}"
    );
}

#[test]
fn a_body_announced_above_the_limit_is_refused_before_it_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.max_body_bytes = 64 * 1024;
    });
    let mut s = connect_from([127, 0, 0, 1], node.api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let t = Instant::now();
    // 100 MB announced, nothing sent after the head.
    s.write_all(
        b"POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
    )
    .expect("send");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("an answer before the body");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        t.elapsed()
    );
}

/// Sends `GET path` from `source` on a fresh connection; the answer's status code, and the socket
/// (an event stream stays open while it is held).
fn get_from(source: [u8; 4], to: SocketAddr, path: &str) -> (u16, TcpStream) {
    let mut s = connect_from(source, to).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("a status line");
    let status = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, s)
}

#[test]
fn one_clients_request_and_subscription_floods_do_not_take_anothers_share() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.rate_limit_per_sec = 5;
        c.api.rate_limit_burst = 5;
        c.api.max_event_subscribers_per_client = 2;
    });
    let flood: Vec<u16> = (0..30)
        .map(|_| get_from([127, 0, 0, 2], node.api, "/v1/status").0)
        .collect();
    let refused = flood.iter().filter(|s| **s == 429).count();
    assert!(
        refused >= 20,
        "the flooding client was refused {refused} of 30: {flood:?}"
    );
    let (status, _) = get_from([127, 0, 0, 3], node.api, "/v1/status");
    assert_eq!(
        status, 200,
        "another client is not limited by the first one's flood"
    );

    // Event subscriptions: two per client.
    std::thread::sleep(Duration::from_millis(1_200));
    let (a1, _keep1) = get_from([127, 0, 0, 4], node.api, "/v1/events");
    let (a2, _keep2) = get_from([127, 0, 0, 4], node.api, "/v1/events");
    let (a3, _) = get_from([127, 0, 0, 4], node.api, "/v1/events");
    assert_eq!((a1, a2, a3), (200, 200, 503));
    let (b, _keep3) = get_from([127, 0, 0, 5], node.api, "/v1/events");
    assert_eq!(b, 200, "another client still gets a subscription");
}

// ---- Review 13: adversarial cases ----

/// Whether `s` is still open after the server had time to act (see [`closed`]).
fn count_open(sockets: &mut [TcpStream]) -> usize {
    let mut open = 0;
    for s in sockets.iter_mut() {
        if !closed(s) {
            open += 1;
        }
    }
    open
}

/// Sends one `GET /v1/status` from `source` on a fresh connection and returns what came back
/// (empty if the server closed the connection at once).
fn honest_status_from(source: [u8; 4], to: SocketAddr) -> String {
    let Ok(mut s) = connect_from(source, to) else {
        return String::from("<connect failed>");
    };
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

/// Found in review: hyper-util's auto builder (used at first) read up to 24 bytes to tell an
/// HTTP/2 preface from HTTP/1, and that read had no timer (hyper's header-read timeout starts
/// once the HTTP/1 connection exists): a socket that sent nothing, or a prefix of the HTTP/2
/// preface, was never timed out and held its slot; 16 addresses took the server's 2,048.
#[test]
fn silent_or_h2_preface_prefix_connections_are_closed_within_the_header_timeout() {
    const HEADER_TIMEOUT_MS: u64 = 1_000;
    const PER_CLIENT: usize = 4;
    const TOTAL: usize = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.header_read_timeout_ms = HEADER_TIMEOUT_MS;
        c.api.max_connections = TOTAL;
        c.api.max_connections_per_client = PER_CLIENT;
    });
    // The readiness probe's keep-alive connection closes after the header timeout.
    std::thread::sleep(Duration::from_millis(HEADER_TIMEOUT_MS + 500));
    // From 127.0.0.2: connect and send nothing.
    let mut silent: Vec<TcpStream> = (0..PER_CLIENT)
        .map(|_| connect_from([127, 0, 0, 2], node.api).expect("connect"))
        .collect();
    // From 127.0.0.3: 16 of the HTTP/2 preface's 24 bytes, then nothing.
    let mut preface: Vec<TcpStream> = (0..PER_CLIENT)
        .map(|_| {
            let mut s = connect_from([127, 0, 0, 3], node.api).expect("connect");
            s.write_all(b"PRI * HTTP/2.0\r\n").expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(HEADER_TIMEOUT_MS + 3_000));
    let silent_open = count_open(&mut silent);
    let preface_open = count_open(&mut preface);
    let honest = honest_status_from([127, 0, 0, 4], node.api);
    assert!(
        silent_open == 0 && preface_open == 0 && honest.starts_with("HTTP/1.1 200"),
        "{}ms after connecting (header timeout {HEADER_TIMEOUT_MS}ms): {silent_open} of \
         {PER_CLIENT} silent and {preface_open} of {PER_CLIENT} h2-preface-prefix connections \
         still open; an honest client at another address got {honest:?}",
        HEADER_TIMEOUT_MS + 3_000
    );
}

/// Found in review: a request whose body trickled held a concurrency permit for the whole
/// request timeout (the body was read inside the handler, under the concurrency limit): a client
/// within its per-address connection share took every permit and every other client got 503.
/// Bodies are now read before the concurrency limit.
#[test]
fn a_slow_body_upload_from_one_address_does_not_take_anothers_concurrency() {
    const PER_CLIENT: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.max_concurrent_requests = PER_CLIENT;
        c.api.max_connections_per_client = PER_CLIENT;
    });
    let _slow: Vec<TcpStream> = (0..PER_CLIENT)
        .map(|_| {
            let mut s = connect_from([127, 0, 0, 2], node.api).expect("connect");
            s.write_all(
                b"POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let honest = honest_status_from([127, 0, 0, 3], node.api);
    assert!(
        honest.starts_with("HTTP/1.1 200"),
        "with {PER_CLIENT} slow uploads open from 127.0.0.2, 127.0.0.3 got: {honest}"
    );
}

/// SIGTERM with every kind of stalled connection open: nothing sent, an HTTP/2 preface prefix,
/// half a head, a body that never completes, and an event stream. The node must stop within its
/// 3 s grace period (plus slack) and exit cleanly.
#[test]
fn sigterm_with_stalled_connections_open_stops_within_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_genesis, gpath, kpath) = one_validator_files(dir.path());
    let mut node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.api.header_read_timeout_ms = 60_000;
    });
    let mut keep = Vec::new();
    keep.push(connect_from([127, 0, 0, 2], node.api).expect("connect"));
    let mut p = connect_from([127, 0, 0, 3], node.api).expect("connect");
    p.write_all(b"PRI * HTTP/2.0\r\n").expect("send");
    keep.push(p);
    let mut h = connect_from([127, 0, 0, 4], node.api).expect("connect");
    h.write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nX-Slow: ")
        .expect("send");
    keep.push(h);
    let mut b = connect_from([127, 0, 0, 5], node.api).expect("connect");
    b.write_all(
        b"POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .expect("send");
    keep.push(b);
    let (status, sse) = get_from([127, 0, 0, 6], node.api, "/v1/events");
    assert_eq!(status, 200);
    keep.push(sse);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let exit = node.terminate();
    let took = t.elapsed();
    assert!(exit.success(), "exit {exit:?}");
    assert!(took < Duration::from_secs(7), "stopped after {took:?}");
}
