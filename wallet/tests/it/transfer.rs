//! Transfers: signed locally, submitted, followed to finality, rejection or a drop.

use ledger_core::api::DropReason;
use ledger_core::{Amount, Hash, Keypair, Nonce, TxError};

use crate::fake_node::{Behaviour, DEV0_NEXT_NONCE, FINAL_HEIGHT, FakeNode};
use crate::{dev_address, tempdir, wallet};

#[test]
fn transfer_wait_prints_the_hash_then_final_at_height() {
    let node = FakeNode::start(Behaviour {
        pending_polls: 2,
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "transfer",
            "--to",
            &to,
            "--amount",
            "10",
            "--fee",
            "2",
            "--memo",
            "rent",
            "--wait",
            "--timeout",
            "20",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("pending..."), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("final at height {FINAL_HEIGHT}")),
        "{run:?}"
    );

    let received = node.received();
    assert_eq!(received.len(), 1);
    let stx = received[0].clone();
    assert_eq!(run.stdout, format!("{}\n", stx.hash()));
    let key = Keypair::dev("account", 0);
    assert_eq!(stx.tx.from, key.public());
    assert_eq!(stx.tx.to, dev_address(1));
    assert_eq!(stx.tx.amount, Amount(10));
    assert_eq!(stx.tx.fee, Amount(2));
    assert_eq!(
        stx.tx.nonce,
        Nonce(DEV0_NEXT_NONCE),
        "uses the account's next nonce"
    );
    assert_eq!(stx.tx.memo, b"rent".to_vec());
    assert_eq!(stx.tx.chain_id, node.chain_id());
    stx.verify(&node.chain_id())
        .expect("the submitted transaction verifies");
}

#[test]
fn a_given_nonce_and_chain_id_are_used_without_asking_the_node() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let to = dev_address(2).to_string();
    let chain = node.chain_id().to_string();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "transfer",
            "--to",
            &to,
            "--amount",
            "1_000",
            "--nonce",
            "42",
            "--chain-id",
            &chain,
            "--dev",
            "1",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(node.requests(), vec!["POST /v1/transactions".to_string()]);
    let stx = node.received()[0].clone();
    assert_eq!(stx.tx.nonce, Nonce(42));
    assert_eq!(stx.tx.amount, Amount(1000));
    assert_eq!(stx.tx.fee, Amount(1), "default fee");
    assert_eq!(run.stdout, format!("{}\n", stx.hash()));
    assert!(run.stderr.contains("pending"), "{run:?}");
}

#[test]
fn a_transfer_rejected_at_submission_prints_the_reason_in_plain_words_and_exits_1() {
    let node = FakeNode::start(Behaviour {
        reject_on_submit: Some(TxError::InsufficientFunds {
            have: Amount(5),
            need: Amount(12),
        }),
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "10", "--wait", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr.lines().last(),
        Some("error: rejected: insufficient funds: have 5, need 12"),
        "{run:?}"
    );
    // The hash is printed even so.
    assert_eq!(run.stdout, format!("{}\n", node.received()[0].hash()));
}

#[test]
fn a_transfer_rejected_while_waiting_prints_the_reason_and_exits_1() {
    let node = FakeNode::start(Behaviour {
        pending_polls: 1,
        reject_later: Some(TxError::NonceTooLow {
            expected: Nonce(6),
            got: Nonce(5),
        }),
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "10", "--wait", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: rejected: nonce too low: expected 6, got 5"),
        "{run:?}"
    );
    assert_eq!(run.stdout, format!("{}\n", node.received()[0].hash()));
}

#[test]
fn a_transfer_dropped_while_waiting_says_why_and_exits_4() {
    let replacement = Hash::digest(b"the same nonce at a higher fee");
    let node = FakeNode::start(Behaviour {
        pending_polls: 1,
        drop_later: Some(DropReason::Replaced { by: replacement }),
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let args = [
        "--node", &node.url, "transfer", "--to", &to, "--amount", "10", "--wait", "--dev", "0",
    ];
    let run = wallet(home.path(), &args);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(
        run.stderr.lines().last(),
        Some(
            format!("error: dropped from the mempool: replaced by {replacement} (higher fee)")
                .as_str()
        ),
        "{run:?}"
    );
    assert_eq!(run.stdout, format!("{}\n", node.received()[0].hash()));

    // With --json: one error object with the typed reason and the same exit code.
    let run = wallet(home.path(), &[&["--json"], &args[..]].concat());
    assert_eq!(run.code, 4, "{run:?}");
    let v = run.json();
    assert_eq!(v["error"]["code"], "dropped");
    assert_eq!(v["error"]["exit_code"], 4);
    assert_eq!(v["error"]["reason"]["code"], "replaced");
    assert_eq!(v["error"]["reason"]["by"], replacement.to_hex());
    assert_eq!(v["error"]["hash"], node.received()[1].hash().to_hex());
}

#[test]
fn waiting_gives_up_at_the_timeout_with_the_hash_printed() {
    let node = FakeNode::start(Behaviour {
        never_final: true,
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
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
    assert_eq!(run.code, 1, "{run:?}");
    let hash: Hash = run.stdout.trim().parse().expect("stdout is the hash");
    assert_eq!(
        run.stderr.lines().last(),
        Some(
            format!("error: gave up waiting after 1s: transaction {hash} is still pending")
                .as_str()
        )
    );
}

#[test]
fn json_transfer_prints_one_object_with_the_final_status() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let to = dev_address(3).to_string();
    let run = wallet(
        home.path(),
        &[
            "--json", "--node", &node.url, "transfer", "--to", &to, "--amount", "25", "--wait",
            "--dev", "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    let stx = node.received()[0].clone();
    assert_eq!(v["hash"], stx.hash().to_hex());
    assert_eq!(v["status"], "final");
    assert_eq!(v["height"], FINAL_HEIGHT);
    assert_eq!(v["amount"], 25);
    assert_eq!(v["nonce"], DEV0_NEXT_NONCE);
    assert_eq!(v["to"], to);
}

#[test]
fn json_rejection_is_one_error_object_with_the_typed_reason() {
    let node = FakeNode::start(Behaviour {
        reject_on_submit: Some(TxError::InsufficientFunds {
            have: Amount(5),
            need: Amount(12),
        }),
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--json", "--node", &node.url, "transfer", "--to", &to, "--amount", "10", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let v = run.json();
    assert_eq!(v["error"]["code"], "rejected");
    assert_eq!(v["error"]["reason"]["code"], "insufficient_funds");
    assert_eq!(v["error"]["reason"]["have"], 5);
    assert_eq!(v["error"]["hash"], node.received()[0].hash().to_hex());
}

#[test]
fn a_transfer_to_oneself_is_refused_before_contacting_the_node() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let me = dev_address(0).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &me, "--amount", "10", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr_lines().len(), 1, "{run:?}");
    assert!(node.requests().is_empty());
}

#[test]
fn an_amount_in_the_chains_display_unit_is_signed_as_exact_base_units() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let to = crate::dev_address(1).to_string();
    let run = crate::wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--json",
            "transfer",
            "--to",
            &to,
            "--amount",
            "0.25LDG",
            "--fee",
            "0.000002 LDG",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["amount"], 250_000, "{v}");
    assert_eq!(v["fee"], 2, "{v}");
    assert_eq!(v["amount_display"], "0.250000 LDG", "{v}");
    let sent = node.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].tx.amount, ledger_core::Amount(250_000));
    assert_eq!(sent[0].tx.fee, ledger_core::Amount(2));

    // More decimals than the unit has would need rounding: refused before anything is sent.
    let run = crate::wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "transfer",
            "--to",
            &to,
            "--amount",
            "0.0000001LDG",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("LDG has 6 decimals"), "{run:?}");
    assert_eq!(node.received().len(), 1, "nothing more was sent");
}
