//! What the node benchmarks share: settings from the environment, a free port, a one-validator dev
//! chain's files, and the `ledger-node run` command on them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use ledger_core::genesis::Genesis;

/// `name` from the environment as a number, else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A loopback address with a free port.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// In `dir`: a dev genesis for one validator and `accounts` accounts (`genesis.json`), and that
/// validator's key written by `ledger-node dev-key` (`validator.json`).
pub fn one_validator_files(dir: &Path, chain: &str, accounts: u32) -> (Genesis, PathBuf, PathBuf) {
    let genesis = Genesis::dev(chain, 1, accounts).expect("dev genesis");
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).expect("write genesis");
    let key_path = dir.join("validator.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-node"))
        .args(["dev-key", "--validator", "0", "--out"])
        .arg(&key_path)
        .output()
        .expect("run ledger-node dev-key");
    assert!(
        out.status.success(),
        "dev-key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (genesis, genesis_path, key_path)
}

/// `ledger-node run` on `dir/data` with those files, its API on `api`, P2P on a free port, warnings
/// only (the caller sets where the output goes, and spawns it).
pub fn run_command(dir: &Path, genesis: &Path, key: &Path, api: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledger-node"));
    cmd.arg("run")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--genesis")
        .arg(genesis)
        .arg("--node-key")
        .arg(key)
        .arg("--api-listen-addr")
        .arg(api.to_string())
        .args(["--p2p-listen-addr", "/ip4/127.0.0.1/tcp/0"])
        .args(["--log-level", "warn"]);
    cmd
}
