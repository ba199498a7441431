//! Multi-host: four validators, each in its own network namespace with its own address on a
//! bridge, as if on four hosts. Nodes 1..3 know only node 0's address (the bootnode); discovery must
//! connect them to each other, and together they must finalize blocks and agree on them.
//!
//! Needs root and `ip netns` (iproute2). Where namespaces cannot be made, the test says so and
//! returns without checking anything (it cannot be run there).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::Hosts;

const NODES: usize = 4;
const P2P_PORT: u16 = 30333;
const API_PORT: u16 = 8700;

fn http_get(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, json) = body.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // The API answers with a content length (no chunking) for JSON bodies.
    serde_json::from_str(json).ok()
}

fn node_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ledger-node"))
}

fn genesis_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../genesis.json")
}

#[test]
fn n4_validators_in_separate_network_namespaces_discover_each_other_and_finalize() {
    let hosts = match Hosts::create(NODES) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "SKIPPED: cannot create network namespaces here ({e}); this test needs root and iproute2"
            );
            return;
        }
    };
    let mut hosts = hosts;
    let dir = tempfile::tempdir().expect("temp dir");
    let bootnode = format!("/ip4/{}/tcp/{P2P_PORT}", hosts.addr(0));
    for i in 0..NODES {
        let home = dir.path().join(format!("node-{i}"));
        std::fs::create_dir_all(&home).expect("node dir");
        let key = home.join("validator.key");
        let status = Command::new(node_bin())
            .args(["dev-key", "--validator", &i.to_string(), "--out"])
            .arg(&key)
            .status()
            .expect("ledger-node dev-key runs");
        assert!(status.success(), "dev-key for validator {i} failed");
        let log = std::fs::File::create(home.join("node.log")).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &hosts.names[i]])
            .arg(node_bin())
            .arg("run")
            .arg("--data-dir")
            .arg(home.join("data"))
            .arg("--genesis")
            .arg(genesis_path())
            .arg("--node-key")
            .arg(&key)
            .args([
                "--api-listen-addr",
                &format!("{}:{API_PORT}", hosts.addr(i)),
            ])
            .args([
                "--p2p-listen-addr",
                &format!("/ip4/{}/tcp/{P2P_PORT}", hosts.addr(i)),
            ]);
        if i > 0 {
            cmd.args(["--bootnodes", &bootnode]);
        }
        let child = cmd
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("node starts");
        hosts.children.push(child);
    }
    let apis: Vec<SocketAddr> = (0..NODES)
        .map(|i| {
            format!("{}:{API_PORT}", hosts.addr(i))
                .parse()
                .expect("socket address")
        })
        .collect();

    let logs = |dir: &Path| -> String {
        (0..NODES)
            .map(|i| {
                let text = std::fs::read_to_string(dir.join(format!("node-{i}/node.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- node {i} ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Every node sees all three others (the non-bootnodes only knew node 0), and finalizes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<Option<(u64, usize)>> = apis
            .iter()
            .map(|a| {
                let status = http_get(*a, "/v1/status")?;
                let peers = http_get(*a, "/v1/peers")?;
                Some((status["height"].as_u64()?, peers.as_array()?.len()))
            })
            .collect();
        let done = states
            .iter()
            .all(|s| matches!(s, Some((h, p)) if *h >= 5 && *p >= NODES - 1));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not all connect and finalize within 60 s: (height, peers) = {states:?}\n{}",
            logs(dir.path())
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // They agree on the block at height 5.
    let hashes: Vec<String> = apis
        .iter()
        .map(|a| {
            http_get(*a, "/v1/blocks/5")
                .and_then(|b| b["hash"].as_str().map(str::to_owned))
                .expect("block 5 readable on every node")
        })
        .collect();
    assert!(
        hashes.iter().all(|h| h == &hashes[0]),
        "nodes disagree on block 5: {hashes:?}"
    );
}
