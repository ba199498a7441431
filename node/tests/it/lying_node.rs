//! The wallet against a lying node: the real `wallet` binary talks to a real `ledger-node` through
//! a proxy that alters its answers one kind of lie at a time ([`Lie`]). Every lie that touches
//! what a command shows is caught (exit code 5, the plain message, `"code": "unverified"`), every
//! honest answer verifies, `--no-verify` believes the lie (what it is for), and a wallet that
//! trusts another chain refuses the node (exit 5, `wrong_chain`).
//!
//! The wallet binary is the one `scripts/build.sh` builds beside `ledger-node` (`.ci/run` builds
//! the whole workspace before the tests).

use std::path::Path;
use std::process::Command;

use ledger_core::genesis::Genesis;
use serde_json::Value;

use crate::common::{Process, account, free_addr, one_validator_files, transfer, wallet_bin};
use crate::lying_proxy::{Lie, LyingProxy};

/// What one wallet run did: its exit code, its JSON answer (stdout's last line) and stderr.
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

fn wallet(home: &Path, url: &str, genesis: &Path, args: &[&str]) -> Run {
    let out = Command::new(wallet_bin())
        .env("WALLET_HOME", home)
        .env_remove("LEDGER_GENESIS")
        .env_remove("LEDGER_NODE")
        .args(["--node", url, "--json"])
        .args(["--genesis".as_ref(), genesis.as_os_str()])
        .args(args)
        .output()
        .expect("run the wallet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    Run {
        code: out.status.code().unwrap_or(-1),
        json: stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    fn assert_verified(&self, what: &str) {
        assert_eq!(self.code, 0, "{what}: {} {}", self.json, self.stderr);
        assert_eq!(self.json["verified"], true, "{what}: {}", self.json);
        assert_eq!(
            self.json["verified_by"]["signers"], 1,
            "{what}: {}",
            self.json
        );
    }

    fn assert_caught(&self, what: &str, served: &str) {
        assert_eq!(
            self.code, 5,
            "{what}: the lie was not caught: {} {}",
            self.json, self.stderr
        );
        assert_eq!(
            self.json["error"]["code"], "unverified",
            "{what}: {}",
            self.json
        );
        let line = format!("served {served} that the validators did not sign");
        assert!(
            self.stderr.contains(&line),
            "{what}: stderr should say `{line}`: {}",
            self.stderr
        );
    }
}

#[test]
fn the_wallet_catches_each_lie_of_a_node_and_verifies_its_honest_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("wallet-home");
    std::fs::create_dir_all(&home).expect("wallet home");
    let (genesis, gpath, kpath) = one_validator_files(dir.path());
    let node = Process::start(dir.path(), &gpath, &kpath, free_addr());
    let chain = genesis.chain_id().clone();
    let (alice, bob) = (account(0), account(1));
    let tx = transfer(&chain, &alice, bob.address(), 777, 1, 0);
    let hash = node.submit(&tx);
    node.wait_final(&hash);

    let proxy = LyingProxy::start(node.api, Lie::None);
    let url = proxy.url();
    let alice_addr = alice.address().to_string();
    let balance = || wallet(&home, &url, &gpath, &["balance", &alice_addr]);
    let tx_status = || wallet(&home, &url, &gpath, &["tx", &hash]);

    // The truth verifies.
    let honest = balance();
    honest.assert_verified("honest balance");
    let truth = honest.json["balance"].as_u64().expect("balance");
    tx_status().assert_verified("honest tx");

    // Each lie, against each command it touches; the other command still verifies.
    let cases = [
        (Lie::Balance, true, false),
        (Lie::TxContent, false, true),
        (Lie::Header, true, true),
        (Lie::Certificate, true, true),
        (Lie::CertificateQuorum, true, true),
    ];
    for (lie, hits_balance, hits_tx) in cases {
        proxy.set_lie(lie);
        let b = balance();
        if hits_balance {
            b.assert_caught(&format!("{lie:?} balance"), "a balance");
        } else {
            b.assert_verified(&format!("{lie:?} balance"));
        }
        let t = tx_status();
        if hits_tx {
            t.assert_caught(&format!("{lie:?} tx"), "a transaction");
        } else {
            t.assert_verified(&format!("{lie:?} tx"));
        }
    }

    // `transfer --wait` through a node that lies about headers: the transfer is final on the
    // chain, and the wallet says it cannot vouch for the node's word about it.
    proxy.set_lie(Lie::Header);
    let sent = wallet(
        &home,
        &url,
        &gpath,
        &[
            "transfer",
            "--dev",
            "0",
            "--to",
            &bob.address().to_string(),
            "--amount",
            "5",
            "--wait",
        ],
    );
    sent.assert_caught("transfer --wait", "a transaction");
    let sent_hash = sent.json["error"]["hash"]
        .as_str()
        .expect("the failure names the transaction");
    node.wait_final(sent_hash);

    // --no-verify believes the lie: that is the trade it offers.
    proxy.set_lie(Lie::Balance);
    let believed = Command::new(wallet_bin())
        .env("WALLET_HOME", &home)
        .args([
            "--node",
            &url,
            "--json",
            "--no-verify",
            "balance",
            &alice_addr,
        ])
        .output()
        .expect("run the wallet");
    assert_eq!(believed.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&believed.stdout).expect("json");
    assert_eq!(v["verified"], false);
    let (_, now) = node.get(&format!("/v1/accounts/{alice_addr}"));
    let now = now["balance"].as_u64().expect("balance");
    assert!(now < truth, "the transfer was paid from alice's balance");
    assert_eq!(v["balance"].as_u64(), Some(now + 1_000_000), "{v}");

    // A wallet that trusts another chain refuses this node, honest or not.
    proxy.set_lie(Lie::None);
    let other = dir.path().join("other-genesis.json");
    let other_genesis = Genesis::dev("another-chain", 1, 2).expect("genesis");
    std::fs::write(&other, other_genesis.to_json()).expect("write");
    let refused = wallet(&home, &url, &other, &["balance", &alice_addr]);
    assert_eq!(refused.code, 5, "{} {}", refused.json, refused.stderr);
    assert_eq!(
        refused.json["error"]["code"], "wrong_chain",
        "{}",
        refused.json
    );
    drop(proxy);
}
