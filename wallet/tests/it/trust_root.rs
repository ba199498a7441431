//! Which chain the wallet trusts: `--genesis` (a file or a hash), `LEDGER_GENESIS`, the pin of
//! `wallet trust`, the discovered testnet's genesis.json, the built-in dev chain; and a node of
//! another chain, refused with exit code 5 and a message that says how to fix it.

use std::path::{Path, PathBuf};

use crate::discovery::{addr_of, dead_addr, write_state};
use crate::fake_node::{Behaviour, FakeNode, dev_genesis};
use crate::{tempdir, wallet, wallet_env, wallet_in};

const OTHER_CHAIN: &str = "other-devnet-7";

fn other_chain_node() -> FakeNode {
    FakeNode::with_genesis(Behaviour::default(), dev_genesis(OTHER_CHAIN))
}

/// Writes the node's genesis to `dir/name`.
fn genesis_file(node: &FakeNode, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, node.genesis().to_json()).expect("writes the genesis");
    path
}

fn settings(home: &Path) -> PathBuf {
    home.join(".ledger-wallet/wallet.json")
}

#[test]
fn a_node_of_another_chain_is_refused_with_what_is_trusted_and_how_to_fix_it() {
    let node = other_chain_node();
    let home = tempdir();
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 5, "{run:?}");
    let built_in = dev_genesis("ledger-devnet-1").hash();
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert_eq!(
        lines[0],
        format!(
            "error: the node at {} runs genesis {} of chain {OTHER_CHAIN}, but this wallet trusts \
             genesis {built_in} of chain ledger-devnet-1 (the built-in default dev chain). If the \
             node's chain is the one you mean, pass its genesis with --genesis <FILE|HASH> or pin \
             it with 'wallet trust'; --no-verify skips the check",
            node.url,
            node.genesis().hash()
        )
    );

    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 5, "{run:?}");
    let e = &run.json()["error"];
    assert_eq!(e["code"], "wrong_chain");
    assert_eq!(e["exit_code"], 5);
    assert_eq!(e["trusted_genesis"], built_in.to_hex());
    assert_eq!(e["node_genesis"], node.genesis().hash().to_hex());
    assert_eq!(e["trusted_from"], "the built-in default dev chain");

    // A transfer that waits is refused before anything is signed or sent.
    let to = crate::dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &to, "--amount", "5", "--wait", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 5, "{run:?}");
    assert!(node.received().is_empty(), "nothing sent");

    // --no-verify believes it.
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--no-verify", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn genesis_given_as_a_file_or_a_hash_by_flag_or_environment() {
    let node = other_chain_node();
    let home = tempdir();
    let file = genesis_file(&node, home.path(), "other.json");
    let file_arg = file.display().to_string();
    let hash = node.genesis().hash().to_hex();

    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--genesis",
            &file_arg,
            "--json",
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], true);
    assert!(
        !node.requests().contains(&"GET /v1/genesis".to_string()),
        "a genesis file needs no genesis from the node: {:?}",
        node.requests()
    );

    // A hash: the genesis comes from the node and is checked against it.
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--genesis",
            &hash,
            "--json",
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], true);
    assert!(
        node.requests().contains(&"GET /v1/genesis".to_string()),
        "{:?}",
        node.requests()
    );

    for value in [&file_arg, &hash] {
        let run = wallet_env(
            home.path(),
            home.path(),
            &[("LEDGER_GENESIS", value.as_str())],
            &["--node", &node.url, "--json", "balance", "--dev", "0"],
        );
        assert_eq!(run.code, 0, "LEDGER_GENESIS={value}: {run:?}");
        assert_eq!(run.json()["verified"], true);
    }

    // The flag wins over the environment.
    let run = wallet_env(
        home.path(),
        home.path(),
        &[("LEDGER_GENESIS", "/no/such/genesis.json")],
        &[
            "--node",
            &node.url,
            "--genesis",
            &hash,
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_hash_the_nodes_genesis_does_not_match_exits_5() {
    let node = other_chain_node();
    let home = tempdir();
    let pinned = dev_genesis("ledger-devnet-1").hash();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--genesis",
            &pinned.to_hex(),
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "error: the node at {} runs genesis {} of chain {OTHER_CHAIN}, but this wallet trusts \
             genesis {pinned} (given by --genesis {pinned}).",
            node.url,
            node.genesis().hash()
        )),
        "{run:?}"
    );
}

#[test]
fn a_bad_genesis_file_is_a_usage_error() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let missing = home.path().join("missing.json");
    let run = wallet(
        home.path(),
        &[
            "--node",
            &node.url,
            "--genesis",
            &missing.display().to_string(),
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot read genesis file {}: ",
            missing.display()
        )),
        "{run:?}"
    );
    let run = wallet(
        home.path(),
        &[
            "--no-verify",
            "--genesis",
            "g.json",
            "balance",
            "--dev",
            "0",
        ],
    );
    assert_eq!(run.code, 2, "--genesis with --no-verify: {run:?}");
}

#[test]
fn wallet_trust_pins_the_nodes_genesis_after_showing_it() {
    let node = other_chain_node();
    let home = tempdir();
    let hash = node.genesis().hash();
    let run = wallet(home.path(), &["--node", &node.url, "trust"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "the node at {} serves genesis {hash} of chain {OTHER_CHAIN} with 4 validators",
            node.url
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.starts_with(&format!("genesis     {hash}\n")),
        "{run:?}"
    );
    let text = std::fs::read_to_string(settings(home.path())).expect("settings written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["genesis"]["hash"], hash.to_hex());
    assert_eq!(v["genesis"]["chain_id"], OTHER_CHAIN);

    // From now on this chain is trusted without a flag...
    let run = wallet(
        home.path(),
        &["--node", &node.url, "--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], true);

    // ... and the default dev chain is not, with the pin named as the reason.
    let dev = FakeNode::start(Behaviour::default());
    let run = wallet(home.path(), &["--node", &dev.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "but this wallet trusts genesis {hash} of chain {OTHER_CHAIN} (pinned in {} by 'wallet trust')",
            settings(home.path()).display()
        )),
        "{run:?}"
    );
}

#[test]
fn wallet_trust_with_a_genesis_pins_it_without_asking_a_node() {
    let node = other_chain_node();
    let home = tempdir();
    let file = genesis_file(&node, home.path(), "other.json");
    let dead = format!("http://{}", dead_addr());
    let run = wallet(
        home.path(),
        &[
            "--node",
            &dead,
            "--json",
            "trust",
            "--genesis",
            &file.display().to_string(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["genesis"], node.genesis().hash().to_hex());
    assert_eq!(v["chain_id"], OTHER_CHAIN);
    assert_eq!(v["validators"], 4);

    // Pinning a hash replaces it, and says which pin it replaced.
    let other = dev_genesis("ledger-devnet-1").hash();
    let run = wallet(
        home.path(),
        &[
            "--node",
            &dead,
            "--json",
            "trust",
            "--genesis",
            &other.to_hex(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["replaced"], node.genesis().hash().to_hex());
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 5, "the pin is the dev chain again: {run:?}");
}

#[test]
fn a_discovered_testnet_is_trusted_by_its_genesis_json() {
    let node = other_chain_node();
    let home = tempdir();
    let cwd = tempdir();
    let testnet = cwd.path().join(".testnet");
    write_state(&testnet, &[addr_of(&node.url)]);

    // Without a genesis.json in the folder, the built-in dev chain is trusted: another chain.
    let run = wallet_in(cwd.path(), home.path(), &["balance", "--dev", "0"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr.contains("(the built-in default dev chain)"),
        "{run:?}"
    );

    genesis_file(&node, &testnet, "genesis.json");
    let run = wallet_in(
        cwd.path(),
        home.path(),
        &["--json", "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["verified"], true);

    // Given explicitly, the same node is not "the testnet's": its genesis.json is not used.
    let run = wallet(home.path(), &["--node", &node.url, "balance", "--dev", "0"]);
    assert_eq!(run.code, 5, "{run:?}");
}
