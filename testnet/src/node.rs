//! How the testnet runs `ledger-node`: the ONE place that knows its command line, config file and
//! environment. When the node's CLI changes, adapt [`spawn`], [`write_config`] and [`write_dev_key`]
//! here; nothing else in the crate builds a node command.
//!
//! Each start writes `node-<i>/config.json` (the node reads JSON or TOML config files) and runs
//! `ledger-node run --config node-<i>/config.json` in its own process group (so Ctrl-C in the
//! testnet's terminal does not reach it; the testnet stops it deliberately), with stdout and stderr
//! appended to `node-<i>/node.log` and stdin closed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use crate::state::{NodeState, State};

/// The node binary's file name.
pub const NODE_BIN_NAME: &str = "ledger-node";
/// Environment variable naming the node binary (also the `--node-bin` flag's env).
pub const NODE_BIN_ENV: &str = "LEDGER_NODE_BIN";
/// The control endpoint's bearer token, handed to the node through its `LEDGER_*` environment (the
/// node's config layer reads `LEDGER_CONTROL_TOKEN` like the `control_token` config field), which
/// keeps the secret out of `ps` output and out of the config file.
pub const CONTROL_TOKEN_ENV: &str = "LEDGER_CONTROL_TOKEN";
/// The API request rate limit (per second and burst) of testnet nodes: far above what one machine
/// can send, so `testnet load` measures the node and not its limiter.
pub const TESTNET_API_RATE_LIMIT: u32 = 1_000_000;

/// Finds `ledger-node`: the explicit path (flag or env), else next to the running `testnet` binary
/// (cargo puts both in the same target folder), else on PATH.
pub fn locate_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return crate::state::absolute(p);
        }
        bail!("node binary {} does not exist", p.display());
    }
    if let Some(p) = std::env::var_os(NODE_BIN_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return crate::state::absolute(&p);
        }
        bail!("{NODE_BIN_ENV}={} does not exist", p.display());
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let candidates = [
            dir.join(NODE_BIN_NAME),
            dir.parent()
                .map(|d| d.join(NODE_BIN_NAME))
                .unwrap_or_default(),
        ];
        for c in candidates {
            if c.as_os_str().is_empty() {
                continue;
            }
            if c.is_file() {
                return Ok(c);
            }
            tried.push(c.display().to_string());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join(NODE_BIN_NAME);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    tried.push("PATH".into());
    bail!(
        "cannot find {NODE_BIN_NAME} (looked in {}); build it with `cargo build --release -p node` \
         or pass --node-bin / set {NODE_BIN_ENV}",
        tried.join(", ")
    )
}

/// Writes the dev validator key `i` (DEV ONLY: `Keypair::dev("validator", i)`, derivable by anyone)
/// with the node's own `dev-key` command, so the file format stays the node's business.
pub fn write_dev_key(bin: &Path, validator: u32, out: &Path) -> anyhow::Result<()> {
    write_key_file(
        bin,
        &["dev-key", "--validator", &validator.to_string()],
        out,
    )
}

/// Runs `ledger-node <args> --out <out>` (a key-writing command) and checks it wrote the file.
fn write_key_file(bin: &Path, args: &[&str], out: &Path) -> anyhow::Result<()> {
    let output = Command::new(bin)
        .args(args)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .env_clear_ledger()
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "`{} {} --out {}` failed ({}): {}",
            bin.display(),
            args.join(" "),
            out.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if !out.is_file() {
        bail!(
            "`{} {}` succeeded but wrote no {}",
            bin.display(),
            args.join(" "),
            out.display()
        );
    }
    Ok(())
}

/// The public half of a key file the node wrote.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct KeyInfo {
    pub address: ledger_core::Address,
    pub public_key: ledger_core::PublicKey,
}

/// Writes a validator key with the node's own command: a fresh random one (`keygen`), or dev key
/// `i` (`dev-key`). Returns its public half, read from the fields the key file shows for people
/// and tools (the seed stays the node's business).
pub fn write_key(bin: &Path, dev: Option<u32>, out: &Path) -> anyhow::Result<KeyInfo> {
    match dev {
        Some(i) => write_dev_key(bin, i, out)?,
        None => write_key_file(bin, &["keygen"], out)?,
    }
    let text =
        std::fs::read_to_string(out).with_context(|| format!("cannot read {}", out.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} has no address and public_key", out.display()))
}

/// The node's config file for this testnet. Only fields the node's `Config` knows (it rejects
/// unknown ones); everything else keeps the node's defaults.
pub fn write_config(state: &State, node: &NodeState) -> anyhow::Result<PathBuf> {
    let mut config = serde_json::json!({
        "data_dir": node.data_dir(),
        "genesis": state.genesis,
        "log_level": state.log_level,
        // A local testnet is where people run load tests: the global request rate limit must not
        // be what they measure.
        "api": {
            "listen_addr": node.api_addr.to_string(),
            "rate_limit_per_sec": TESTNET_API_RATE_LIMIT,
            "rate_limit_burst": TESTNET_API_RATE_LIMIT,
        },
        "p2p": {
            "listen_addr": node.p2p_addr(),
            "bootnodes": state.bootnodes_for(node.index),
        },
    });
    if node.role == crate::state::Role::Validator {
        config["node_key"] = serde_json::json!(node.key_path());
    }
    let path = node.config_path();
    let text = serde_json::to_string_pretty(&config).context("cannot serialize node config")?;
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Starts `node` as a detached child: its config written, own process group, output appended to its
/// log. Returns the child (the caller records its pid and may reap it).
pub fn spawn(state: &State, node: &NodeState) -> anyhow::Result<Child> {
    std::fs::create_dir_all(&node.dir)
        .with_context(|| format!("cannot create {}", node.dir.display()))?;
    let config = write_config(state, node)?;
    let log_path = node.log_path();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    // A marker per start, so a log that spans restarts and crashes can be read.
    writeln!(
        log,
        "==== testnet: starting node {} ({}) at unix ms {} ====",
        node.index,
        node.role,
        crate::state::now_ms()
    )
    .with_context(|| format!("cannot write {}", log_path.display()))?;
    let stderr = log
        .try_clone()
        .with_context(|| format!("cannot reopen {}", log_path.display()))?;

    let mut cmd = Command::new(&state.node_bin);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .current_dir(&node.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .env_clear_ledger()
        .env(CONTROL_TOKEN_ENV, &state.control_token)
        // The log is a file: no terminal colour codes in it (tracing-subscriber honours NO_COLOR).
        .env("NO_COLOR", "1");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Own process group: the terminal's Ctrl-C goes to the testnet, which stops nodes cleanly,
        // and `kill` can signal the node with anything it spawned.
        cmd.process_group(0);
    }
    cmd.spawn().with_context(|| {
        format!(
            "cannot start {} for node {}",
            state.node_bin.display(),
            node.index
        )
    })
}

/// Removes every inherited `LEDGER_*` variable from a node's environment: a developer's
/// `LEDGER_API_LISTEN_ADDR` (say) would otherwise override the config of every testnet node, and they
/// would all fight for one port.
trait ClearLedgerEnv {
    fn env_clear_ledger(&mut self) -> &mut Self;
}

impl ClearLedgerEnv for Command {
    fn env_clear_ledger(&mut self) -> &mut Self {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LEDGER_") {
                self.env_remove(&key);
            }
        }
        self
    }
}

/// The last `lines` lines of a node's log (for error messages), or a note that there is none.
pub fn log_tail(node: &NodeState, lines: usize) -> String {
    match tail_lines(&node.log_path(), lines) {
        Ok(v) => v.join("\n"),
        Err(e) => format!("(no log at {}: {e})", node.log_path().display()),
    }
}

/// The last `lines` lines of a file, reading at most its last 1 MiB (logs can grow large).
pub fn tail_lines(path: &Path, lines: usize) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    const MAX_TAIL_BYTES: u64 = 1024 * 1024;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(MAX_TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(MAX_TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line is cut in the middle.
        all.remove(0);
    }
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].iter().map(|l| l.to_string()).collect())
}
