//! Without `--node` or `LEDGER_NODE`, the wallet finds the node of a running local testnet by
//! itself and says which one it used.

use std::path::Path;

use crate::fake_node::{Behaviour, DEV_BALANCE, FakeNode};
use crate::{tempdir, wallet, wallet_in};

/// A loopback port nothing listens on (bound, then released).
pub fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    l.local_addr().expect("addr").to_string()
}

/// A testnet folder whose state.json lists these API addresses as nodes 0, 1, ...
pub fn write_state(dir: &Path, api_addrs: &[&str]) {
    std::fs::create_dir_all(dir).expect("creates the folder");
    let nodes: Vec<serde_json::Value> = api_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| serde_json::json!({"index": i, "api_addr": a, "p2p_port": 1}))
        .collect();
    let state = serde_json::json!({"version": 1, "chain_id": "ledger-devnet-1", "nodes": nodes});
    std::fs::write(dir.join("state.json"), state.to_string()).expect("writes state.json");
}

pub fn addr_of(url: &str) -> &str {
    url.trim_start_matches("http://")
}

#[test]
fn without_node_the_wallet_uses_the_first_answering_node_of_the_testnet_in_this_folder() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let cwd = tempdir();
    // Node 0 is down: the wallet goes on to node 1.
    write_state(
        &cwd.path().join(".testnet"),
        &[&dead_addr(), addr_of(&node.url)],
    );
    let run = wallet_in(cwd.path(), home.path(), &["balance", "--dev", "0"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&DEV_BALANCE.to_string()), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "using node {} (node 1 of the testnet in",
            node.url
        )),
        "the wallet says which node it used: {run:?}"
    );
    assert!(
        node.requests().iter().any(|r| r.contains("/v1/accounts/")),
        "the balance came from the discovered node: {:?}",
        node.requests()
    );
}

#[test]
fn the_testnet_that_testnet_up_started_last_is_found_from_any_folder() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let testnet_dir = tempdir();
    write_state(testnet_dir.path(), &[addr_of(&node.url)]);
    // What `testnet up` writes: the folder's path under ~/.local/state/ledger/testnet-dir.
    let pointer = home.path().join(".local/state/ledger");
    std::fs::create_dir_all(&pointer).expect("creates the state folder");
    std::fs::write(
        pointer.join("testnet-dir"),
        testnet_dir.path().display().to_string(),
    )
    .expect("writes the pointer");
    let elsewhere = tempdir();
    let run = wallet_in(
        elsewhere.path(),
        home.path(),
        &["--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["balance"], DEV_BALANCE, "{run:?}");
    assert!(
        run.stderr.contains(&format!("using node {}", node.url)),
        "{run:?}"
    );
}

#[test]
fn an_explicit_node_wins_over_a_running_testnet_and_no_probe_is_made() {
    let listed = FakeNode::start(Behaviour::default());
    let given = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let cwd = tempdir();
    write_state(&cwd.path().join(".testnet"), &[addr_of(&listed.url)]);
    let run = wallet_in(
        cwd.path(),
        home.path(),
        &["--node", &given.url, "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("using node"), "{run:?}");
    assert!(listed.requests().is_empty(), "{:?}", listed.requests());
    assert!(!given.requests().is_empty());
}

#[test]
fn with_no_testnet_answering_the_wallet_falls_back_to_the_default_node() {
    let home = tempdir();
    let cwd = tempdir();
    write_state(&cwd.path().join(".testnet"), &[&dead_addr()]);
    let run = wallet_in(cwd.path(), home.path(), &["balance", "--dev", "0"]);
    // Nothing listens on the default port here: the node cannot be reached (exit 3), and the
    // error names the default URL it tried.
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("127.0.0.1:8700"), "{run:?}");
}

#[test]
fn commands_without_a_node_never_probe_for_one() {
    let home = tempdir();
    let run = wallet(home.path(), &["address", "--dev", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("using node"), "{run:?}");
}

/// A CONNECT proxy on loopback standing for a proxy host elsewhere: whatever target a client
/// asks for, it tunnels to `upstream` (the node that listens at that port *on the proxy host*),
/// and it records the targets asked for.
fn connect_proxy(upstream: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let upstream = upstream.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(first.trim().to_owned());
                let Ok(up) = std::net::TcpStream::connect(&upstream) else {
                    return;
                };
                let mut client = conn;
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut u2) = (
                    client.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                );
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut u2);
                });
                let mut up = up;
                let _ = std::io::copy(&mut up, &mut c2);
                let _ = t.join();
            });
        }
    });
    (url, asked)
}

/// Found in review: discovery promises a loopback node only ("a `state.json` ... must not send
/// the wallet to a node elsewhere"), but the HTTP client (ureq 3) takes `HTTP_PROXY` /
/// `ALL_PROXY` from the environment for loopback URLs too, so with a proxy set (common on a
/// managed machine) every request, the signed transfer included, goes to the proxy host, and
/// `127.0.0.1:PORT` there is that host's port, not this machine's. Here the "proxy" is a fake node
/// on another port; this machine's `state.json` names a loopback port where nothing listens, yet
/// the wallet says it found a local testnet and hands the signed transfer to the proxy.
#[test]
fn a_discovered_loopback_node_is_not_reached_through_an_http_proxy() {
    let remote = FakeNode::start(Behaviour::default());
    let (proxy_url, asked) = connect_proxy(addr_of(&remote.url).to_owned());
    let home = tempdir();
    let cwd = tempdir();
    let local = dead_addr();
    write_state(&cwd.path().join(".testnet"), &[&local]);
    let to = crate::dev_address(1).to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args([
            "transfer", "--to", &to, "--amount", "10", "--fee", "2", "--dev", "0",
        ])
        .current_dir(cwd.path())
        .env("HOME", home.path())
        .env_remove("TESTNET_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("LEDGER_NODE")
        .env_remove("WALLET_HOME")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("HTTP_PROXY", &proxy_url)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs the wallet binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        remote.received().is_empty() && asked.lock().map(|a| a.is_empty()).unwrap_or(false),
        "the signed transfer went through the proxy (asked: {:?}) to the node behind it \
         (requests there: {:?}); wallet exit {:?}, stderr:\n{stderr}",
        asked.lock().map(|a| a.clone()).unwrap_or_default(),
        remote.requests(),
        out.status.code()
    );
}
