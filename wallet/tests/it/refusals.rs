//! Bad input and unreachable nodes: one clear line on stderr and a distinct exit code.

use crate::fake_node::{Behaviour, FakeNode};
use crate::{dev_address, tempdir, wallet};

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binds")
}

#[test]
fn an_unreachable_node_exits_3_with_one_line() {
    let home = tempdir();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let to = dev_address(1).to_string();
    for args in [
        vec![
            "--node", &url, "transfer", "--to", &to, "--amount", "5", "--dev", "0",
        ],
        vec!["--node", &url, "balance", "--dev", "0"],
        vec![
            "--node",
            &url,
            "tx",
            "00000000000000000000000000000000000000000000000000000000000000aa",
        ],
    ] {
        let run = wallet(home.path(), &args);
        assert_eq!(run.code, 3, "{run:?}");
        assert_eq!(
            run.stderr_lines(),
            vec![format!(
                "error: cannot reach node at {url}: connection refused"
            )],
            "{args:?}"
        );
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn an_unreachable_node_with_json_gives_an_error_object() {
    let home = tempdir();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = wallet(
        home.path(),
        &["--json", "--node", &url, "balance", "--dev", "0"],
    );
    assert_eq!(run.code, 3, "{run:?}");
    let v = run.json();
    assert_eq!(v["error"]["code"], "unreachable");
    assert_eq!(v["error"]["exit_code"], 3);
}

#[test]
fn a_mistyped_address_exits_2_with_one_line_and_no_request() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let good = dev_address(1).to_string();
    // Change one character of the data part: the checksum no longer matches.
    let mut chars: Vec<char> = good.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
    let typo: String = chars.into_iter().collect();

    let run = wallet(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--to", &typo, "--amount", "5", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(
        lines[0].contains(&format!("invalid address '{typo}': checksum")),
        "{run:?}"
    );

    let run = wallet(home.path(), &["--node", &node.url, "balance", &typo]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr_lines().len(), 1, "{run:?}");

    assert!(node.requests().is_empty(), "{:?}", node.requests());
}

#[test]
fn bad_amounts_exit_2_with_one_line_and_no_request() {
    let node = FakeNode::start(Behaviour::default());
    let home = tempdir();
    let to = dev_address(1).to_string();
    for (amount, says) in [
        (
            "1.5",
            "invalid amount '1.5': a decimal amount needs the chain's unit",
        ),
        ("0", "invalid amount '0': must be positive"),
        (
            "-4",
            "invalid amount '-4': expected a whole number of base units",
        ),
        (
            "99999999999999999999",
            "invalid amount '99999999999999999999': larger than",
        ),
    ] {
        let arg = format!("--amount={amount}");
        let run = wallet(
            home.path(),
            &[
                "--node", &node.url, "transfer", "--to", &to, &arg, "--dev", "0",
            ],
        );
        assert_eq!(run.code, 2, "{run:?}");
        let lines = run.stderr_lines();
        assert_eq!(lines.len(), 1, "{run:?}");
        assert!(lines[0].contains(says), "{run:?}");
    }
    assert!(node.requests().is_empty());
}

#[test]
fn a_missing_key_file_says_how_to_get_one() {
    let home = tempdir();
    let run = wallet(home.path(), &["address"]);
    assert_eq!(run.code, 2, "{run:?}");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(lines[0].contains("no key file at"), "{run:?}");
    assert!(lines[0].contains("wallet keygen"), "{run:?}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let home = tempdir();
    for args in [
        vec!["transfer", "--amount", "5", "--dev", "0"],
        vec!["frobnicate"],
        vec!["address", "--dev", "1", "--key", "k.json"],
        vec!["--node", "https://example.com:1", "balance", "--dev", "0"],
    ] {
        let run = wallet(home.path(), &args);
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stderr_lines().len(), 1, "{run:?}");
        assert!(run.stderr.starts_with("error: "), "{run:?}");
    }
}

#[test]
fn a_usage_error_with_json_is_also_one_error_object() {
    let home = tempdir();
    let to = dev_address(1).to_string();
    let run = wallet(
        home.path(),
        &[
            "--json", "transfer", "--to", &to, "--amount", "1.5", "--dev", "0",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let v = run.json();
    assert_eq!(v["error"]["code"], "usage");
    assert_eq!(
        v["error"]["message"],
        "--amount <AMOUNT>: invalid amount '1.5': a decimal amount needs the chain's unit (e.g. 1.5LDG); a plain integer is base units"
    );
}

#[test]
fn help_documents_exit_codes_and_dev_keys() {
    let home = tempdir();
    let run = wallet(home.path(), &["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Exit codes:"));
    assert!(run.stdout.contains("3  the node could not be reached"));
    assert!(
        run.stdout
            .contains("4  the transaction was dropped from the mempool")
    );
    assert!(
        run.stdout
            .contains("5  the node's answer failed verification")
    );
    assert!(run.stdout.contains("LEDGER_NODE"));
    assert!(run.stdout.contains("LEDGER_GENESIS"));
    assert!(run.stdout.contains("--no-verify"));
    let run = wallet(home.path(), &["transfer", "--help"]);
    assert!(run.stdout.contains("DEV ONLY"), "{run:?}");
}

/// Runs the wallet with stdout and stderr both closed pipes (the reader went away): every write
/// fails with EPIPE. Returns the exit code.
fn wallet_with_closed_streams(home: &std::path::Path, args: &[&str]) -> i32 {
    let (out_r, out_w) = std::io::pipe().expect("pipe");
    let (err_r, err_w) = std::io::pipe().expect("pipe");
    drop(out_r);
    drop(err_r);
    std::process::Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(args)
        .env("HOME", home)
        .env_remove("LEDGER_NODE")
        .env_remove("TESTNET_DIR")
        .env_remove("XDG_STATE_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(out_w)
        .stderr(err_w)
        .status()
        .expect("runs the wallet")
        .code()
        .unwrap_or(-1)
}

#[test]
fn closed_stdout_and_stderr_never_make_the_wallet_panic() {
    let node = crate::fake_node::FakeNode::start(crate::fake_node::Behaviour::default());
    let home = crate::tempdir();
    // A panic exits with 101; each command keeps its own exit code instead.
    assert_eq!(
        wallet_with_closed_streams(home.path(), &["address", "--dev", "0"]),
        0
    );
    assert_eq!(
        wallet_with_closed_streams(home.path(), &["--node", &node.url, "balance", "--dev", "0"]),
        0
    );
    assert_eq!(
        wallet_with_closed_streams(home.path(), &["--json", "tx", "nothex"]),
        2,
        "a usage error with nowhere to print it"
    );
    assert_eq!(wallet_with_closed_streams(home.path(), &["--help"]), 0);
}
