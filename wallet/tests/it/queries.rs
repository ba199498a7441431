//! Read-only commands: address, balance, tx.

use ledger_core::api::DropReason;
use ledger_core::{Amount, Keypair};

use crate::fake_node::{
    Behaviour, DEV_BALANCE, DEV0_NEXT_NONCE, DEV0_NONCE, FINAL_HEIGHT, FakeNode,
};
use crate::{dev_address, tempdir, wallet};

#[test]
fn dev_addresses_are_the_default_genesis_accounts() {
    let home = tempdir();
    let run = wallet(home.path(), &["address", "--dev", "7"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", dev_address(7)));

    let run = wallet(home.path(), &["address", "--dev", "7", "--json"]);
    let v = run.json();
    assert_eq!(v["address"], dev_address(7).to_string());
    assert_eq!(
        v["public_key"],
        Keypair::dev("account", 7).public().to_string()
    );
}

#[test]
fn balance_of_own_key_and_of_any_address() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        // DEV_BALANCE = 1,000,000 base units = 1 LDG: the display unit first, base units beside.
        run.stdout.contains(&format!(
            "balance     1.000000 LDG ({DEV_BALANCE} base units)\n"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("(2 pending; the node's mempool view, not verified)"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .ends_with("verified: signed by 4 of 4 validators at height 7\n"),
        "{run:?}"
    );

    let addr = dev_address(0).to_string();
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", &addr],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["address"], addr);
    assert_eq!(v["balance"], DEV_BALANCE);
    assert_eq!(v["nonce"], DEV0_NONCE);
    assert_eq!(v["next_nonce"], DEV0_NEXT_NONCE);
}

#[test]
fn an_account_the_node_has_never_seen_is_empty() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "12"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["balance"], 0);
}

#[test]
fn tx_shows_status_and_content() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let to = dev_address(1).to_string();
    let sent = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "9", "--dev", "2",
        ],
    );
    assert_eq!(sent.code, 0, "{sent:?}");
    let hash = sent.stdout.trim();

    let run = wallet(home.path(), &["--node", &node.url, "tx", hash]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "status   final at height {FINAL_HEIGHT} (index 0)"
        )),
        "{run:?}"
    );
    assert!(run.stdout.contains(&format!("to       {to}")), "{run:?}");
    assert!(
        run.stdout
            .contains("amount   0.000009 LDG (9 base units)\n"),
        "{run:?}"
    );

    let run = wallet(home.path(), &["--node", &node.url, "--json", "tx", hash]);
    let v = run.json();
    assert_eq!(v["hash"], hash);
    assert_eq!(v["status"], "final");
    assert_eq!(v["transaction"]["tx"]["amount"], 9);
}

#[test]
fn tx_shows_a_dropped_transfer_and_why() {
    let node = FakeNode::start(Behaviour {
        drop_later: Some(DropReason::Evicted { by_fee: Amount(40) }),
        ..Behaviour::default()
    });
    let home = tempdir();
    let to = dev_address(1).to_string();
    let sent = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "9", "--dev", "2",
        ],
    );
    assert_eq!(sent.code, 0, "{sent:?}");
    let hash = sent.stdout.trim();

    // The query itself succeeded: exit 0, as for any status it shows.
    let run = wallet(home.path(), &["--node", &node.url, "tx", hash]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "status   dropped from the mempool: evicted to make room for a transaction paying fee 40 \
             (the mempool was full; send it again with a higher --fee)\n"
        ),
        "{run:?}"
    );

    let run = wallet(home.path(), &["--node", &node.url, "--json", "tx", hash]);
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["status"], "dropped");
    assert_eq!(v["reason"]["code"], "evicted");
    assert_eq!(v["reason"]["by_fee"], 40);
}

#[test]
fn an_unknown_transaction_is_not_found() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let hash = "ab".repeat(32);
    let run = wallet(home.path(), &["--node", &node.url, "tx", &hash]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr_lines(),
        vec![format!(
            "error: transaction {hash} is not known to the node"
        )]
    );
    let run = wallet(home.path(), &["--node", &node.url, "tx", "abc"]);
    assert_eq!(run.code, 2, "{run:?}");
}
