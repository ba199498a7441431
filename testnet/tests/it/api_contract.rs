//! The API contract: `scripts/api-contract.sh` (schemathesis with every check, a fixed seed, and the
//! exceptions of `scripts/api-contract/schemathesis.toml`) against a real one-validator testnet whose
//! chain holds final transfers, so blocks, transactions and account histories have content to be
//! checked against their schemas; again with examples that name existing objects; and against a
//! copy of the document that lost one rule (the hash pattern), to show the check fails when the
//! document is wrong.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ledger_core::api::TxStatus;
use ledger_core::{Amount, Keypair, Nonce, Transaction};

use crate::harness::{Run, Testnet, final_location, run_captured};

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs `scripts/api-contract.sh url args...`, with hypothesis's examples and schemathesis's cache
/// in `db` (a fresh folder: what an earlier run saved would change what this run sends).
fn contract(
    url: &str,
    db: &std::path::Path,
    document: Option<&std::path::Path>,
    args: &[&str],
) -> Run {
    let mut cmd = Command::new(repo_root().join("scripts/api-contract.sh"));
    cmd.arg(url)
        .args(args)
        .env("HYPOTHESIS_STORAGE_DIRECTORY", db.join("hypothesis"))
        .env("LEDGER_SCHEMATHESIS_CACHE", db.join("schemathesis"))
        .env_remove("DOCUMENT");
    if let Some(d) = document {
        cmd.env("DOCUMENT", d);
    }
    run_captured(&mut cmd, Duration::from_secs(900))
}

#[test]
fn n1_schemathesis_finds_no_contract_violation_and_fails_on_a_wrong_document() {
    let tn = Testnet::up("api_contract", &["-n", "1"]);
    tn.wait_height(&[0], 1, Duration::from_secs(60));
    let c = tn.client(0);
    let chain = c.status().expect("status").chain_id;

    // A few final transfers, one with a memo, from two accounts.
    let mut hashes = Vec::new();
    for (from, to, memo) in [
        (0u32, 1u32, &b""[..]),
        (0, 2, b"contract"),
        (3, 0, b"\x00\xff"),
    ] {
        let key = Keypair::dev("account", from);
        let nonce = c.account(&key.address()).expect("account").next_nonce;
        let tx = Transaction {
            chain_id: chain.clone(),
            from: key.public(),
            to: Keypair::dev("account", to).address(),
            amount: Amount(1_000 + u64::from(from)),
            fee: Amount(1),
            nonce: Nonce(nonce.0),
            memo: memo.to_vec(),
        }
        .sign(&key);
        let r = c.submit(&tx).expect("submit");
        assert!(!matches!(r.status, TxStatus::Rejected { .. }), "{r:?}");
        hashes.push(tx.hash());
    }
    tn.wait_until("the transfers final", Duration::from_secs(60), || {
        hashes.iter().all(|h| final_location(&c, h).is_some())
    });

    let url = c.base().to_string();
    let db = tempfile::tempdir().expect("temp dir");
    let run = contract(&url, db.path(), None, &[]);
    tn.log(&format!("schemathesis:\n{}", run.stdout));
    assert!(
        run.success,
        "schemathesis found contract violations ({:?}):\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    // Every operation of the document was exercised (a run that tested nothing also exits 0).
    let doc: serde_json::Value = c.get_json("/v1/openapi.json").expect("the document");
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |m| m.len()))
        .sum();
    assert!(operations >= 14, "{operations} operations in {doc}");
    assert!(
        run.stdout.contains(&format!("Tested: {operations}\n")),
        "not every one of the {operations} operations was tested:\n{}",
        run.stdout
    );

    // Random hashes name nothing: give the identifier parameters examples that exist (a final
    // transfer, its block, its sender), so the answers with content are checked against their
    // schemas too.
    let (height, _) = final_location(&c, &hashes[1]).expect("final");
    let block = c.block_light(height.0).expect("the block");
    let examples = [
        ("/v1/transactions/{hash}", "hash", hashes[1].to_string()),
        ("/v1/blocks/hash/{hash}", "hash", block.hash.to_string()),
        ("/v1/blocks/{height}", "height", height.0.to_string()),
        (
            "/v1/accounts/{address}",
            "address",
            Keypair::dev("account", 0).address().to_string(),
        ),
        (
            "/v1/accounts/{address}/transactions",
            "address",
            Keypair::dev("account", 0).address().to_string(),
        ),
    ];
    let mut with_examples = doc.clone();
    for (path, name, value) in &examples {
        let params = with_examples["paths"][path]["get"]["parameters"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{path} has parameters"));
        let param = params
            .iter_mut()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("{path} has {name}"));
        param["example"] = if *name == "height" {
            serde_json::json!(height.0)
        } else {
            serde_json::json!(value)
        };
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("openapi-with-examples.json");
    std::fs::write(&path, with_examples.to_string()).expect("write the document");
    let db = tempfile::tempdir().expect("temp dir");
    let run = contract(&url, db.path(), Some(&path), &["--phases", "examples"]);
    tn.log(&format!("schemathesis, examples:\n{}", run.stdout));
    assert!(
        run.success,
        "answers about existing objects break the contract ({:?}):\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("Tested: {}\n", examples.len())),
        "not every example was sent:\n{}",
        run.stdout
    );

    // The check can fail: a document whose hashes lost their pattern promises that any string is
    // a hash; schemathesis sends some that are not, the node rightly answers 400, and the document
    // is caught promising what the node refuses.
    let mut wrong = doc.clone();
    let hash = &mut wrong["components"]["schemas"]["Hash"];
    assert!(hash["pattern"].is_string(), "{hash}");
    hash.as_object_mut()
        .expect("the Hash schema")
        .remove("pattern");
    let path = dir.path().join("wrong-openapi.json");
    std::fs::write(&path, wrong.to_string()).expect("write the wrong document");
    let db = tempfile::tempdir().expect("temp dir");
    let run = contract(
        &url,
        db.path(),
        Some(&path),
        &["--include-path", "/v1/transactions/{hash}"],
    );
    tn.log(&format!(
        "schemathesis on the wrong document:\n{}",
        run.stdout
    ));
    assert_eq!(
        run.code,
        Some(1),
        "the wrong document passed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("ST202 Schema-valid request rejected"),
        "{}",
        run.stdout
    );
}
