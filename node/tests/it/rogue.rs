//! The `ledger-rogue` binary against a real one-validator `ledger-node` process: for garbage and
//! for bad signatures, the rogue reports that the node disconnected it (after how many messages),
//! and the node keeps finalizing honest transfers meanwhile.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Process, account, free_addr, one_validator_files, transfer};

/// Seconds each attack runs.
const ATTACK_SECS: u64 = 5;
/// How long the rogue may wait for its first peer.
const CONNECT_TIMEOUT_SECS: u64 = 20;
/// Honest transfers submitted during each attack.
const HONEST_PER_ATTACK: u64 = 10;

/// A running `ledger-rogue`, killed if the test ends before it does.
struct Rogue(Option<Child>);

impl Rogue {
    fn start(bootnode: &str, genesis: &Path, attack: &str) -> Rogue {
        let child = Command::new(env!("CARGO_BIN_EXE_ledger-rogue"))
            .args(["--bootnode", bootnode, "--attack", attack, "--json"])
            .arg("--genesis")
            .arg(genesis)
            .args(["--rate", "50", "--duration", &ATTACK_SECS.to_string()])
            .args(["--connect-timeout", &CONNECT_TIMEOUT_SECS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ledger-rogue");
        Rogue(Some(child))
    }

    /// Its output once it has exited; `None` while it runs.
    fn try_finish(&mut self) -> Option<Output> {
        let child = self.0.as_mut()?;
        match child.try_wait() {
            Ok(Some(_)) => self.0.take()?.wait_with_output().ok(),
            _ => None,
        }
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_rogue_sending_garbage_or_bad_signatures_is_disconnected_while_transfers_finalize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (genesis, gpath, kpath) = one_validator_files(dir.path());
    let p2p_port = free_addr().port();
    let node = Process::start_with(dir.path(), &gpath, &kpath, free_addr(), |c| {
        c.p2p.listen_addr = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
    });
    let bootnode = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
    let chain = genesis.chain_id().clone();
    let mut nonce = 0u64;

    for attack in ["garbage", "bad-signatures"] {
        let mut rogue = Rogue::start(&bootnode, &gpath, attack);
        let mut honest = Vec::new();
        let deadline =
            Instant::now() + Duration::from_secs(CONNECT_TIMEOUT_SECS + ATTACK_SECS + 30);
        let out = loop {
            if let Some(out) = rogue.try_finish() {
                break out;
            }
            assert!(
                Instant::now() < deadline,
                "ledger-rogue --attack {attack} did not finish"
            );
            if (honest.len() as u64) < HONEST_PER_ATTACK {
                let tx = transfer(&chain, &account(2), account(3).address(), 1, 1, nonce);
                honest.push(node.submit(&tx));
                nonce += 1;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ledger-rogue --attack {attack} failed: {stderr}"
        );
        let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{stderr}"));
        assert_eq!(report["attack"], attack, "{report}");
        let sent = report["sent"].as_u64().expect("sent");
        let first = report["first_disconnect_after_messages"]
            .as_u64()
            .unwrap_or_else(|| panic!("the node never disconnected the rogue: {report}"));
        assert!(first <= sent, "{report}");
        assert!(report["disconnected_peers"].as_u64() >= Some(1), "{report}");
        let peer = &report["peers"][0];
        assert!(peer["connected_s"].as_f64().is_some(), "{report}");
        for h in &honest {
            node.wait_final(h);
        }
    }
    let (_, acc) = node.get(&format!("/v1/accounts/{}", account(2).address()));
    assert_eq!(acc["nonce"], json!(nonce), "{acc}");
}
