//! The harness of the end-to-end tests: a testnet started by the real `testnet` CLI in its own temp
//! folder with its own ports, helpers that wait with deadlines, chain comparisons, and diagnostics
//! (folder and log tails) when a test fails.
//!
//! The scenarios start four node processes each; on a small machine several at once would starve
//! each other and turn timing into flakiness, so they take a cross-process file lock and run one at
//! a time, whatever the test runner's parallelism.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger_core::api::{BlockResponse, TxStatus};
use ledger_core::{Hash, Height};
use testnet::client::NodeClient;
use testnet::state::State;

/// Per-request timeout of the tests' HTTP calls.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// The `testnet` binary cargo built for these tests.
pub fn testnet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testnet"))
}

/// `ledger-node`: `$LEDGER_NODE_BIN`, else next to `testnet` in the same target folder (`.ci/run`
/// builds the whole workspace before the tests).
pub fn node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LEDGER_NODE_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let bin = testnet_bin();
    let dir = bin
        .parent()
        .expect("the testnet binary has a parent folder");
    let node = dir.join("ledger-node");
    assert!(
        node.is_file(),
        "{} is missing: build the node first (`cargo build --release --workspace`, as .ci/run does) or set LEDGER_NODE_BIN",
        node.display()
    );
    node
}

/// Waits for `child` until `timeout`; past it, kills it and returns `None`.
pub fn wait_or_kill(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tool of the Python venv that `scripts/deps.sh` creates (`$LEDGER_VENV`, default
/// `~/.cache/ledger-venv`, with the pinned `cryptography` and `schemathesis`). Missing is a failure,
/// not a skip: CI must run the tests that use it.
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("LEDGER_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/ledger-venv")
        });
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/deps.sh (it creates the venv with the pinned Python test tools)",
        bin.display()
    );
    bin
}

/// What a finished (or killed) child printed.
pub struct Run {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with its output captured, killed after `timeout`.
pub fn run_captured(cmd: &mut Command, timeout: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    // Read both pipes on threads so a chatty child cannot block on a full pipe while we wait.
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let status = wait_or_kill(&mut child, timeout);
    let mut stderr = err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {} s)", timeout.as_secs()));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr,
    }
}

/// Holds the cross-process lock that runs the scenarios one at a time.
pub struct Serial(#[allow(dead_code)] File);

pub fn serial() -> Serial {
    let dir = testnet_bin()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join("testnet-it.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    f.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    Serial(f)
}

/// The output of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    /// The exit code (`None` when killed by a signal or the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A testnet in a temp folder. Stopped on drop; on a failing test its folder is kept and the tail
/// of every node's log is printed.
pub struct Testnet {
    pub name: &'static str,
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    _serial: Serial,
    started: Instant,
}

impl Testnet {
    /// `testnet up --detach <extra>` in a fresh temp folder.
    pub fn up(name: &'static str, extra: &[&str]) -> Testnet {
        let serial = serial();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("testnet-it-{name}-"))
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().join(".testnet");
        let tn = Testnet {
            name,
            dir,
            tmp: Some(tmp),
            _serial: serial,
            started: Instant::now(),
        };
        let node = node_bin();
        let node = node.to_str().expect("utf-8 path");
        let mut args = vec![
            "up",
            "--detach",
            "--node-bin",
            node,
            "--timeout-secs",
            "120",
        ];
        args.extend_from_slice(extra);
        let out = tn.cli(&args, Duration::from_secs(180));
        tn.log(&format!("up:\n{}", out.stdout));
        assert!(
            out.success,
            "testnet up failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        tn
    }

    pub fn log(&self, msg: &str) {
        eprintln!(
            "[{} +{:.1}s] {msg}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Runs the CLI on this testnet, killed after `timeout`.
    pub fn cli(&self, args: &[&str], timeout: Duration) -> CliOutput {
        let base = self
            .tmp
            .as_ref()
            .map_or_else(std::env::temp_dir, |t| t.path().to_path_buf());
        let out_path = base.join("cli.stdout");
        let err_path = base.join("cli.stderr");
        let mut child = Command::new(testnet_bin())
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            // `up` records the last started testnet there; a test's must not replace the user's.
            .env("XDG_STATE_HOME", base.join("state"))
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("run the testnet CLI");
        let status = wait_or_kill(&mut child, timeout);
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n(killed after {} s)", timeout.as_secs()));
        }
        CliOutput {
            success: status.is_some_and(|s| s.success()),
            code: status.and_then(|s| s.code()),
            stdout,
            stderr,
        }
    }

    /// Runs the CLI and asserts it succeeded; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args, Duration::from_secs(120));
        assert!(
            out.success,
            "testnet {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        self.log(&format!(
            "testnet {}: {}",
            args.join(" "),
            out.stdout.trim()
        ));
        out.stdout
    }

    pub fn state(&self) -> State {
        State::load(&self.dir).expect("state.json")
    }

    pub fn client(&self, index: usize) -> NodeClient {
        let s = self.state();
        NodeClient::new(&s.node(index).expect("node").api_url(), HTTP_TIMEOUT)
    }

    pub fn clients(&self) -> Vec<NodeClient> {
        self.state()
            .nodes
            .iter()
            .map(|n| NodeClient::new(&n.api_url(), HTTP_TIMEOUT))
            .collect()
    }

    /// The height of each node (None: no answer).
    pub fn heights(&self, nodes: &[usize]) -> Vec<Option<u64>> {
        nodes
            .iter()
            .map(|&i| self.client(i).status().ok().map(|s| s.height.0))
            .collect()
    }

    /// Waits until `cond` holds, polling every 200 ms; panics after `timeout` with `what`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if cond() {
                return start.elapsed();
            }
            if start.elapsed() >= timeout {
                let all: Vec<usize> = self.state().nodes.iter().map(|n| n.index).collect();
                panic!(
                    "timed out after {} s waiting for: {what} (heights {:?})",
                    timeout.as_secs(),
                    self.heights(&all)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every listed node has at least `height`.
    pub fn wait_height(&self, nodes: &[usize], height: u64, timeout: Duration) -> Duration {
        self.wait_until(
            &format!("nodes {nodes:?} at height >= {height}"),
            timeout,
            || {
                self.heights(nodes)
                    .iter()
                    .all(|h| h.is_some_and(|h| h >= height))
            },
        )
    }

    /// Asserts that the listed nodes hold the same blocks (hash and state root) at every height up
    /// to the lowest head among them; returns that height.
    pub fn assert_same_chain(&self, nodes: &[usize]) -> u64 {
        let heights = self.heights(nodes);
        let common = heights
            .iter()
            .map(|h| h.expect("every compared node answers"))
            .min()
            .unwrap_or(0);
        let clients: Vec<NodeClient> = nodes.iter().map(|&i| self.client(i)).collect();
        let mut from = 1;
        while from <= common {
            let to = common.min(from + 99);
            let reference = block_range(&clients[0], from, to);
            assert_eq!(
                reference.len() as u64,
                to - from + 1,
                "node {} lacks blocks {from}..={to}",
                nodes[0]
            );
            for (k, c) in clients.iter().enumerate().skip(1) {
                let other = block_range(c, from, to);
                assert_eq!(
                    other.len(),
                    reference.len(),
                    "node {} lacks blocks {from}..={to}",
                    nodes[k]
                );
                for (a, b) in reference.iter().zip(&other) {
                    assert_eq!(a.header.height, b.header.height);
                    assert_eq!(
                        a.hash, b.hash,
                        "FORK at height {}: node {} has {}, node {} has {}",
                        a.header.height, nodes[0], a.hash, nodes[k], b.hash
                    );
                    assert_eq!(
                        a.header.state_root, b.header.state_root,
                        "state roots differ at height {}",
                        a.header.height
                    );
                }
            }
            from = to + 1;
        }
        self.log(&format!(
            "nodes {nodes:?} agree on every block up to height {common}"
        ));
        common
    }

    /// Prints the folder and the tail of every node's log.
    pub fn dump(&self) {
        eprintln!(
            "==== testnet folder of {}: {}",
            self.name,
            self.dir.display()
        );
        let Ok(state) = State::load(&self.dir) else {
            eprintln!("(no state.json)");
            return;
        };
        for n in &state.nodes {
            eprintln!(
                "==== node {} ({}, running: {}) last lines of {}:\n{}",
                n.index,
                n.role,
                n.is_running(),
                n.log_path().display(),
                testnet::node::log_tail(n, 30)
            );
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        if failing {
            self.dump();
        }
        if !self.dir.exists() {
            return;
        }
        let out = self.cli(&["down", "--grace-secs", "5"], Duration::from_secs(60));
        if !out.success {
            eprintln!("testnet down failed: {}\n{}", out.stdout, out.stderr);
        }
        if failing && let Some(tmp) = self.tmp.take() {
            eprintln!("keeping {} for inspection", tmp.keep().display());
        }
    }
}

/// Blocks `from..=to` (at most 100) from one node, full content.
pub fn block_range(c: &NodeClient, from: u64, to: u64) -> Vec<BlockResponse> {
    let url = format!("{}/v1/blocks?from={from}&to={to}", c.base());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    agent
        .get(&url)
        .call()
        .and_then(|mut r| r.body_mut().with_config().limit(256 << 20).read_json())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Where a transaction is final on one node, if it is.
pub fn final_location(c: &NodeClient, hash: &Hash) -> Option<(Height, u32)> {
    match c.transaction(hash).ok()?.status {
        TxStatus::Final { height, index } => Some((height, index)),
        _ => None,
    }
}
