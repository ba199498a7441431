//! The second-language client end to end: `clients/python/ledger_client.py`, written from
//! `docs/WIRE.md` alone (stdlib + `cryptography`, no project code), checks the vectors file, then
//! signs a transfer and sees it final on a real one-validator testnet. The test then checks through
//! the node's API, with the Rust types, that the transfer is what the Python client said: final at
//! the height it printed, with the content it signed, and the balances moved by amount + fee.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_core::api::TxStatus;
use ledger_core::{Address, Amount, Hash, Height, Keypair};

use crate::harness::{Run, Testnet, run_captured, venv_bin};

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs the Python client with `args`, killed after `timeout`.
fn run_client(args: &[&str], timeout: Duration) -> Run {
    let script = repo_root().join("clients/python/ledger_client.py");
    run_captured(
        Command::new(venv_bin("python3")).arg(&script).args(args),
        timeout,
    )
}

/// `ledger_client.py transfer` from dev account 0 with `--wait`, given `wait_secs` to see it final.
fn python_transfer(url: &str, to: &str, amount: &str, extra: &[&str], wait_secs: u64) -> Run {
    let wait = wait_secs.to_string();
    let mut args = vec![
        "transfer",
        "--node",
        url,
        "--dev-account",
        "0",
        "--to",
        to,
        "--amount",
        amount,
        "--wait",
        "--timeout",
        &wait,
    ];
    args.extend_from_slice(extra);
    run_client(&args, Duration::from_secs(wait_secs + 30))
}

/// `final hash=<hex> height=<h> index=<i>` -> (hash, height, index).
fn parse_final(line: &str) -> Option<(Hash, Height, u32)> {
    let rest = line.strip_prefix("final ")?;
    let mut hash = None;
    let mut height = None;
    let mut index = None;
    for kv in rest.split(' ') {
        match kv.split_once('=')? {
            ("hash", v) => hash = v.parse().ok(),
            ("height", v) => height = v.parse().ok().map(Height),
            ("index", v) => index = v.parse().ok(),
            _ => return None,
        }
    }
    Some((hash?, height?, index?))
}

#[test]
fn n1_python_client_checks_the_vectors_and_a_transfer_it_signs_becomes_final() {
    // Offline first: the spec's vectors, before any node is started.
    let vectors = repo_root().join("docs/wire-vectors.json");
    let vectors = vectors.to_str().expect("utf-8 path");
    let run = run_client(&["vectors", vectors], Duration::from_secs(60));
    assert!(
        run.success,
        "the Python client disagrees with docs/wire-vectors.json:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("all match"), "{}", run.stdout);
    // ... and the Python check can fail: one changed nibble of a signature is reported, by name.
    let text = std::fs::read_to_string(vectors).expect("read the vectors");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let sig = v["transactions"][1]["signature"]
        .as_str()
        .expect("a signature")
        .to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    v["transactions"][1]["signature"] = serde_json::json!(format!("{flipped}{}", &sig[1..]));
    let tmp = tempfile::tempdir().expect("temp dir");
    let bad = tmp.path().join("corrupted-vectors.json");
    std::fs::write(&bad, v.to_string()).expect("write the corrupted copy");
    let run = run_client(
        &["vectors", bad.to_str().expect("utf-8 path")],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("MISMATCH transactions[1].signature"),
        "the corrupted field is named: {}",
        run.stdout
    );

    let tn = Testnet::up("python_client", &["-n", "1"]);
    tn.wait_height(&[0], 1, Duration::from_secs(60));
    tn.log(&format!("python vectors: {}", run.stdout.trim()));
    let c = tn.client(0);
    let url = c.base().to_string();

    let sender = Keypair::dev("account", 0);
    let recipient: Address = Keypair::dev("account", 5).address();
    let before_from = c.account(&sender.address()).expect("sender account");
    let before_to = c.account(&recipient).expect("recipient account");
    const AMOUNT: u64 = 123_456;
    const FEE: u64 = 3;

    let started = Instant::now();
    let to = recipient.to_string();
    let run = python_transfer(
        &url,
        &to,
        &AMOUNT.to_string(),
        &["--fee", &FEE.to_string()],
        60,
    );
    assert!(
        run.success,
        "python transfer failed ({:?}):\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    let last = run.stdout.lines().last().unwrap_or_default();
    let (hash, height, index) = parse_final(last).unwrap_or_else(|| {
        panic!(
            "python transfer printed no `final ...` line:\n{}",
            run.stdout
        )
    });
    tn.log(&format!(
        "python transfer final in {:.2} s: {last}",
        started.elapsed().as_secs_f64()
    ));

    // What the node holds: final where Python said, and exactly the transfer Python signed.
    let r = c.transaction(&hash).expect("the transfer by hash");
    assert_eq!(r.status, TxStatus::Final { height, index }, "{r:?}");
    let stx = r.transaction.expect("a final transaction has its content");
    assert_eq!(
        stx.hash(),
        hash,
        "the node's transaction hashes to the printed hash"
    );
    assert_eq!(stx.tx.from, sender.public());
    assert_eq!(stx.tx.to, recipient);
    assert_eq!(stx.tx.amount, Amount(AMOUNT));
    assert_eq!(stx.tx.fee, Amount(FEE));
    assert_eq!(stx.tx.nonce, before_from.next_nonce);
    let block = c.block_light(height.0).expect("the block at that height");
    assert_eq!(
        block.txs.get(index as usize).map(|t| t.hash),
        Some(hash),
        "block {height} holds the transfer at index {index}"
    );

    // Balances moved by amount + fee (the fee went to the validator, not to either account).
    let after_from = c.account(&sender.address()).expect("sender account");
    let after_to = c.account(&recipient).expect("recipient account");
    assert_eq!(
        after_from.balance.0,
        before_from.balance.0 - AMOUNT - FEE,
        "sender paid amount + fee"
    );
    assert_eq!(
        after_to.balance.0,
        before_to.balance.0 + AMOUNT,
        "recipient got amount"
    );
    assert_eq!(after_from.nonce.0, before_from.nonce.0 + 1);

    // A refusal comes back as the node's typed error, with its fields, and a non-zero exit.
    let too_much = (after_from.balance.0 + 1).to_string();
    let run = python_transfer(&url, &to, &too_much, &[], 10);
    assert_eq!(
        run.code,
        Some(1),
        "an overdraft must be refused:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains("\"code\": \"insufficient_funds\"")
            && run.stderr.contains("\"have\"")
            && run.stderr.contains("\"need\""),
        "the node's typed error is printed: {}",
        run.stderr
    );
}
