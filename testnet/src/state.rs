//! The testnet folder and its `state.json`: what runs where, so every command works from any terminal.
//!
//! Layout (all paths absolute in the state, so the nodes do not depend on the current directory):
//!
//! ```text
//! .testnet/
//!   state.json        pids, ports, control token (owner-only: the token guards the control endpoint)
//!   state.lock        held while a command changes state.json
//!   genesis.json      the chain every node of this testnet runs
//!   node-<i>/
//!     config.json     written by `node::write_config` on every start
//!     node_key.json   validator key (absent for a full node)
//!     data/           the node's database
//!     node.log        stdout + stderr, appended across restarts
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::process;

/// Bumped when the file's meaning changes; an older binary refuses a newer file instead of guessing.
pub const STATE_VERSION: u32 = 1;
pub const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

/// What a node does in the testnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Has a dev validator key and votes.
    Validator,
    /// No key: follows committed blocks (`testnet join`).
    Full,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Validator => "validator",
            Role::Full => "full",
        })
    }
}

/// One node of the testnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub index: usize,
    pub role: Role,
    /// `node-<index>` inside the testnet folder.
    pub dir: PathBuf,
    pub api_addr: SocketAddr,
    pub p2p_port: u16,
    /// The process, while it is believed to run. Checked against `start_ticks` before any signal.
    pub pid: Option<u32>,
    /// The process's start time (clock ticks since boot, /proc/<pid>/stat): a pid reused by another
    /// program after the node died does not match, so we never signal a stranger.
    pub start_ticks: Option<u64>,
    /// When it was last started (Unix ms).
    pub started_ms: Option<u64>,
}

impl NodeState {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The block explorer page, served by the node itself at `/`.
    pub fn explorer_url(&self) -> String {
        format!("http://{}/", self.api_addr)
    }

    /// The libp2p address other nodes dial.
    pub fn p2p_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("node_key.json")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Whether the recorded process is alive (and is still the process we started).
    pub fn is_running(&self) -> bool {
        match self.pid {
            Some(pid) => process::is_running(pid, self.start_ticks),
            None => false,
        }
    }
}

/// Everything the commands share about one testnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub chain_id: String,
    pub genesis: PathBuf,
    pub node_bin: PathBuf,
    /// Bearer token of the nodes' control endpoint (isolate/heal). Random per testnet.
    pub control_token: String,
    pub log_level: String,
    pub created_ms: u64,
    /// Set by `down` (and a supervisor's Ctrl-C), cleared when a node starts: a foreground
    /// supervisor exits when the testnet was stopped from another terminal, but not when one node
    /// was killed.
    #[serde(default)]
    pub stopped: bool,
    pub nodes: Vec<NodeState>,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// The state, or `None` when the folder holds no testnet.
    pub fn load_opt(dir: &Path) -> anyhow::Result<Option<State>> {
        let path = State::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let state: State = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet state file", path.display()))?;
        if state.version != STATE_VERSION {
            bail!(
                "{} has version {}, this testnet binary understands version {}",
                path.display(),
                state.version,
                STATE_VERSION
            );
        }
        Ok(Some(state))
    }

    /// The state, or an error telling how to create one.
    pub fn load(dir: &Path) -> anyhow::Result<State> {
        State::load_opt(dir)?.with_context(|| {
            let bundle = if dir.join(crate::manifest::MANIFEST_FILE).is_file() {
                " (this folder is a `testnet init` bundle: `status`, `load` and `chaos` take                  --manifest; kill, restart, isolate and heal act on this machine's testnet only,                  so use the commands of whatever runs the nodes)"
            } else {
                ""
            };
            format!(
                "no testnet in {} (no {}); start one with `testnet up` or pass --dir{bundle}",
                dir.display(),
                STATE_FILE
            )
        })
    }

    /// Writes the state atomically (temporary file + rename) with owner-only permissions.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = State::path(dir);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let mut text = serde_json::to_string_pretty(self).context("cannot serialize the state")?;
        text.push('\n');
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    pub fn node(&self, index: usize) -> anyhow::Result<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.index == index)
            .with_context(|| {
                format!(
                    "no node {index} in this testnet (nodes: {})",
                    self.index_list()
                )
            })
    }

    pub fn node_mut(&mut self, index: usize) -> anyhow::Result<&mut NodeState> {
        let list = self.index_list();
        self.nodes
            .iter_mut()
            .find(|n| n.index == index)
            .with_context(|| format!("no node {index} in this testnet (nodes: {list})"))
    }

    fn index_list(&self) -> String {
        let v: Vec<String> = self.nodes.iter().map(|n| n.index.to_string()).collect();
        v.join(", ")
    }

    pub fn validators(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter().filter(|n| n.role == Role::Validator)
    }

    /// The peers a node dials at start. Node 0 is the bootnode of all others, which know only its
    /// address. Node 0 itself lists the other validators: when the bootnode restarts (or heals) it
    /// has to dial someone, since nobody redials a bootnode that went away.
    pub fn bootnodes_for(&self, index: usize) -> Vec<String> {
        if index == 0 {
            self.validators()
                .filter(|n| n.index != 0)
                .map(NodeState::p2p_addr)
                .collect()
        } else {
            self.nodes
                .iter()
                .filter(|n| n.index == 0)
                .map(NodeState::p2p_addr)
                .collect()
        }
    }
}

/// Holds `state.lock` while a command reads, changes and writes `state.json`, so two commands run
/// from different terminals cannot overwrite each other's changes. Released on drop.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Waits for the lock. The folder must exist (only `up` creates it).
    pub fn acquire(dir: &Path) -> anyhow::Result<StateLock> {
        if !dir.is_dir() {
            bail!(
                "no testnet in {}; start one with `testnet up` or pass --dir",
                dir.display()
            );
        }
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(StateLock { _file: file })
    }
}

/// `path` made absolute against the current directory (without requiring it to exist).
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Milliseconds since the Unix epoch (for people reading state.json; never for measurements).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
