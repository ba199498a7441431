//! Verified reads: honest answers (real state proofs, real precommits of the dev validators) are
//! believed and say by whom; a lied balance, a lied transaction, an altered header, a certificate
//! with too few signatures or a final transaction without a proof end in exit code 5 with one plain
//! line; `--no-verify` believes the node.

use crate::fake_node::{Behaviour, DEV_BALANCE, FINAL_HEIGHT, FakeNode, Lie};
use crate::{Run, dev_address, tempdir, wallet};

const SIGNED_BY_ALL: &str = "verified: signed by 4 of 4 validators at height 7";

fn lying(lie: Lie) -> FakeNode {
    FakeNode::start(Behaviour {
        lie: Some(lie),
        ..Behaviour::default()
    })
}

/// Sends 9 base units from dev account 2 without waiting; returns the hash.
fn send(node: &FakeNode, home: &std::path::Path) -> String {
    let to = dev_address(1).to_string();
    let sent = wallet(
        home,
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "9", "--dev", "2",
        ],
    );
    assert_eq!(sent.code, 0, "{sent:?}");
    sent.stdout.trim().to_string()
}

/// Exit 5, nothing on stdout, and exactly one line on stderr that starts with `start`.
fn assert_refused(run: &Run, start: &str) {
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(lines[0].starts_with(start), "{run:?}");
}

fn served(node: &FakeNode, what: &str) -> String {
    format!(
        "error: the node at {} served {what} that the validators did not sign: ",
        node.url
    )
}

#[test]
fn an_honest_balance_verifies_and_says_by_whom() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.ends_with(&format!("{SIGNED_BY_ALL}\n")),
        "{run:?}"
    );
    assert!(
        node.requests()
            .contains(&format!("GET /v1/accounts/{}/proof", dev_address(0))),
        "{:?}",
        node.requests()
    );

    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["balance"], DEV_BALANCE);
    assert_eq!(v["verified"], true);
    assert_eq!(
        v["verified_by"],
        serde_json::json!({"signers": 4, "validators": 4, "height": FINAL_HEIGHT})
    );
    assert_eq!(v["unverified"], serde_json::json!(["next_nonce"]));

    // An account the chain has never seen is proven absent: zero, verified.
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "12"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["balance"], 0);
    assert_eq!(run.json()["verified"], true);
}

#[test]
fn a_lied_balance_exits_5_with_one_plain_line() {
    let node = lying(Lie::Balance);
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_refused(
        &run,
        &format!(
            "{}the state proof does not show this value under the header's state root",
            served(&node, "a balance")
        ),
    );

    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 5, "{run:?}");
    let e = &run.json()["error"];
    assert_eq!(e["code"], "unverified");
    assert_eq!(e["exit_code"], 5);
    assert_eq!(e["node"], node.url);
    assert!(
        e["failed_check"]
            .as_str()
            .is_some_and(|s| s.starts_with("the state proof does not show this value")),
        "{e}"
    );
}

#[test]
fn no_verify_believes_the_node_and_says_so() {
    let node = lying(Lie::Balance);
    let home = tempdir();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--no-verify",
            "--json",
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["balance"], DEV_BALANCE + 1, "the lie, believed");
    assert_eq!(v["verified"], false);
    assert!(v.get("verified_by").is_none());
    assert!(
        v["unverified_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("--no-verify")),
        "{v}"
    );
    assert!(
        node.requests()
            .iter()
            .all(|r| !r.contains("/proof") && !r.contains("/genesis")),
        "the plain endpoints only: {:?}",
        node.requests()
    );

    let run = wallet(
        home.path(),
        &["--node", &node.url, "--no-verify", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("verified: no (--no-verify: the node's answer was not checked)\n"),
        "{run:?}"
    );
}

#[test]
fn a_final_transaction_verifies_and_a_pending_one_has_nothing_to_verify() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.ends_with(&format!("{SIGNED_BY_ALL}\n")),
        "{run:?}"
    );
    let run = wallet(home.path(), &["--node", &node.url, "--json", "tx", &hash]);
    let v = run.json();
    assert_eq!(v["status"], "final");
    assert_eq!(v["verified"], true);
    assert_eq!(v["verified_by"]["signers"], 4);
    assert_eq!(v["transaction"]["tx"]["amount"], 9);

    let node = FakeNode::start(Behaviour {
        never_final: true,
        ..Behaviour::default()
    });
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("verified: no (pending: only a final transaction is in a signed block)\n"),
        "{run:?}"
    );
    let run = wallet(home.path(), &["--node", &node.url, "--json", "tx", &hash]);
    let v = run.json();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["verified"], false);
    assert!(
        v["unverified_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("pending")),
        "{v}"
    );
    assert!(
        node.requests().iter().all(|r| !r.contains("/proof")),
        "nothing to ask a proof of: {:?}",
        node.requests()
    );
}

#[test]
fn a_lied_transaction_exits_5() {
    let node = lying(Lie::Transaction);
    let home = tempdir();
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_refused(
        &run,
        &format!(
            "{}the transaction hashes to ",
            served(&node, "a transaction")
        ),
    );

    // --no-verify shows the node's (plain) answer.
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--no-verify", "--json", "tx", &hash],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], false);
}

#[test]
fn transfer_wait_verifies_the_transaction_it_signed() {
    let node = FakeNode::start(Behaviour {
        pending_polls: 1,
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let args = [
        "--node", &node.url, "--json", "transfer", "--to", &to, "--amount", "10", "--wait",
        "--dev", "0",
    ];
    let run = wallet(home.path(), &args);
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["status"], "final");
    assert_eq!(v["verified"], true);
    assert_eq!(
        v["verified_by"],
        serde_json::json!({"signers": 4, "validators": 4, "height": FINAL_HEIGHT})
    );
    assert_eq!(v["hash"], node.received()[0].hash().to_hex());
    assert!(run.stderr.contains(SIGNED_BY_ALL), "{run:?}");

    // The node serves another transaction under the hash: refused, after the hash was printed.
    let node = lying(Lie::Transaction);
    let args = [
        "--node", &node.url, "transfer", "--to", &to, "--amount", "10", "--wait", "--dev", "0",
    ];
    let run = wallet(home.path(), &args);
    assert_eq!(run.code, 5, "{run:?}");
    let signed = node.received()[0].hash();
    assert_eq!(run.stdout, format!("{signed}\n"));
    let last = run.stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with(&format!(
            "{}the transaction hashes to ",
            served(&node, "a transaction")
        )),
        "{run:?}"
    );
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let run = wallet(home.path(), &json_args);
    assert_eq!(run.code, 5, "{run:?}");
    let e = &run.json()["error"];
    assert_eq!(e["code"], "unverified");
    let signed = node.received().last().map(|t| t.hash().to_hex());
    assert_eq!(e["hash"].as_str(), signed.as_deref(), "{e}");

    // Without --wait there is nothing final to verify.
    let node = FakeNode::start(Behaviour::default());
    let args = [
        "--node", &node.url, "--json", "transfer", "--to", &to, "--amount", "10", "--dev", "0",
    ];
    let run = wallet(home.path(), &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], false);
}

#[test]
fn an_altered_header_exits_5() {
    let node = lying(Lie::Header);
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_refused(
        &run,
        &format!("{}the certificate signs block ", served(&node, "a balance")),
    );
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_refused(
        &run,
        &format!(
            "{}the certificate signs block ",
            served(&node, "a transaction")
        ),
    );
}

#[test]
fn a_certificate_with_too_few_signatures_exits_5() {
    let node = lying(Lie::FewSignatures);
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_refused(
        &run,
        &format!(
            "{}the certificate carries 10 of 40 voting power; more than two thirds are needed",
            served(&node, "a balance")
        ),
    );
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "--json", "tx", &hash]);
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.json()["error"]["code"], "unverified");
}

#[test]
fn a_final_transaction_without_a_proof_is_not_believed() {
    let node = lying(Lie::NoTxProof);
    let home = tempdir();
    let hash = send(&node, home.path());
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_refused(
        &run,
        &format!(
            "error: the node at {} says transaction {hash} is final but serves no proof of it",
            node.url
        ),
    );

    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--json",
            "transfer",
            "--to",
            &to,
            "--amount",
            "10",
            "--wait",
            "--timeout",
            "1",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 5, "{run:?}");
    let e = &run.json()["error"];
    assert_eq!(e["code"], "unverified");
    let signed = node.received().last().map(|t| t.hash().to_hex());
    assert_eq!(e["hash"].as_str(), signed.as_deref());
}
