//! Runs the real `wallet` binary against a fake node (axum, in-process, on a free loopback port)
//! that implements the node's `/v1` API contract with canned behaviour.

mod discovery;
mod fake_node;
mod keygen;
mod queries;
mod refusals;
mod transfer;
mod trust_root;
mod verified;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ledger_core::{Address, Keypair};

/// What one run of the wallet did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stderr's lines, for "exactly one line" checks.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }
}

/// Runs `wallet args...` with a clean environment: `home` as HOME, no LEDGER_NODE, LEDGER_GENESIS,
/// WALLET_HOME, TESTNET_DIR, XDG_STATE_HOME or proxy settings, stdin closed.
pub fn wallet(home: &Path, args: &[&str]) -> Run {
    wallet_in(home, home, args)
}

/// [`wallet`] run in the folder `cwd` (where it looks for `./.testnet`).
pub fn wallet_in(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    wallet_env(cwd, home, &[], args)
}

/// [`wallet_in`] with these environment variables set.
pub fn wallet_env(cwd: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("TESTNET_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("LEDGER_NODE")
        .env_remove("LEDGER_GENESIS")
        .env_remove("WALLET_HOME")
        .envs(env.iter().copied())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("runs the wallet binary");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn dev_address(i: u32) -> Address {
    Keypair::dev("account", i).address()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
