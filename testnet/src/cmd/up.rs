//! `testnet up`: start an N-validator testnet (or resume a stopped one), wait until it finalizes,
//! print where everything is, then supervise it in the foreground (or return with `--detach`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use super::{LOG_TAIL_LINES, POLL_TIMEOUT, STOP_GRACE, interrupts, start_node, stop_nodes};
use crate::client::NodeClient;
use crate::output::{Progress, secs};
use crate::process::{self, StopOutcome};
use crate::state::{NodeState, Role, State, StateLock, now_ms};
use crate::{genesis_src, hints, node, ports};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of validators (default 4, or the stopped testnet's count when resuming).
    #[arg(short = 'n', long = "validators", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub validators: Option<u32>,
    /// Genesis file (default: ./genesis.json or the built-in dev genesis for 4 validators, else a
    /// generated dev genesis).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// The `ledger-node` binary (default: $LEDGER_NODE_BIN, next to this binary, then PATH).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Return once the testnet runs instead of supervising it in the foreground.
    #[arg(long)]
    pub detach: bool,
    /// Write this `empty_block_interval_ms` into the genesis (a quiet chain then makes a block this often).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub empty_block_interval_ms: Option<u64>,
    /// Give up when the nodes do not answer and finalize a first block within this many seconds.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    /// The nodes' log level or tracing filter.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// The supervisor reports a node whose height has not grown for this many seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_secs: u64,
    /// Print the started testnet as one JSON object (chain, time to the first final block, nodes)
    /// instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &Path, args: UpArgs) -> anyhow::Result<ExitCode> {
    super::install_interrupt_handler()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = StateLock::acquire(dir)?;
    let (mut state, resumed) = match State::load_opt(dir)? {
        Some(existing) => (resume(existing, dir, &args)?, true),
        None => (create(dir, &args)?, false),
    };
    state.save(dir)?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut children: HashMap<usize, Child> = HashMap::new();
    let first_final = match start_all(&mut state, dir, resumed, deadline, &mut children) {
        Ok(d) => d,
        Err(e) => {
            // Leave nothing running behind a failed start; the folder stays for inspection.
            let all: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
            stop_nodes(&mut state, &all, Duration::from_secs(5));
            for c in children.values_mut() {
                let _ = c.try_wait();
            }
            let _ = state.save(dir);
            return Err(e.context(format!(
                "the testnet did not start; its folder is {}",
                dir.display()
            )));
        }
    };
    state.save(dir)?;
    drop(lock);
    if let Err(e) = hints::record_last_testnet(dir) {
        crate::errln!("note: cannot record this testnet for the wallet to find: {e}");
    }

    let all: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
    if args.json {
        crate::sayln!("{}", started_json(&state, dir, first_final));
    } else {
        print_started(&state, dir, &all, first_final);
    }
    if args.detach {
        if !args.json {
            crate::sayln!("detached: the nodes keep running; `testnet down` stops them");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        crate::sayln!("supervising (Ctrl-C stops every node)");
    }
    supervise(dir, state, children, Duration::from_secs(args.stall_secs))
}

/// The table and where to go next.
fn print_started(state: &State, dir: &Path, all: &[usize], first_final: Duration) {
    crate::sayln!("{}", super::node_table(state, all));
    crate::sayln!(
        "chain {} · {} validators · first final block {} after start",
        state.chain_id,
        state.validators().count(),
        secs(first_final)
    );
    crate::sayln!("time_to_first_final_ms={}", first_final.as_millis());
    crate::sayln!("folder {} · logs in node-<i>/node.log", dir.display());
    let t = format!("{}{}", hints::command("testnet"), hints::dir_flag(dir));
    let w = hints::command("wallet");
    let last = state.nodes.last().map_or(0, |n| n.index);
    crate::sayln!("try:");
    crate::sayln!("  {t} status --watch");
    crate::sayln!("  {w} balance --dev 0          # finds this testnet's node by itself");
    crate::sayln!("  {t} load --rate 500 --duration 10");
    crate::sayln!("  {t} kill {last}; {t} restart {last}");
    crate::sayln!("  {t} down");
}

/// `up --json`: everything the table says, for scripts.
fn started_json(state: &State, dir: &Path, first_final: Duration) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = state
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "index": n.index,
                "role": n.role.to_string(),
                "api_url": n.api_url(),
                "explorer_url": n.explorer_url(),
                "p2p": n.p2p_addr(),
                "pid": n.pid,
                "dir": n.dir,
            })
        })
        .collect();
    serde_json::json!({
        "chain_id": state.chain_id,
        "validators": state.validators().count(),
        "time_to_first_final_ms": u64::try_from(first_final.as_millis()).unwrap_or(u64::MAX),
        "folder": dir,
        "nodes": nodes,
    })
}

/// A new testnet: genesis, dev keys, ports, token.
fn create(dir: &Path, args: &UpArgs) -> anyhow::Result<State> {
    let n = args.validators.unwrap_or(4);
    let node_bin = node::locate_binary(args.node_bin.as_deref())?;
    let chosen = genesis_src::choose(args.genesis.as_deref(), n, args.empty_block_interval_ms)?;
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, chosen.genesis.to_json())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    crate::errln!(
        "genesis: {} (hash {})",
        chosen.source,
        chosen.genesis.hash()
    );
    let ports = ports::free_ports(2 * n as usize)?;
    let nodes: Vec<NodeState> = (0..n as usize)
        .map(|i| NodeState {
            index: i,
            role: Role::Validator,
            dir: dir.join(format!("node-{i}")),
            api_addr: ([127, 0, 0, 1], ports[2 * i]).into(),
            p2p_port: ports[2 * i + 1],
            pid: None,
            start_ticks: None,
            started_ms: None,
        })
        .collect();
    for n in &nodes {
        std::fs::create_dir_all(&n.dir)
            .with_context(|| format!("cannot create {}", n.dir.display()))?;
        if !n.key_path().exists() {
            // DEV ONLY keys: Keypair::dev("validator", i), the same the genesis lists.
            node::write_dev_key(&node_bin, n.index as u32, &n.key_path())?;
        }
    }
    Ok(State {
        version: crate::state::STATE_VERSION,
        chain_id: chosen.genesis.chain_id().to_string(),
        genesis: genesis_path,
        node_bin,
        control_token: random_token()?,
        log_level: args.log_level.clone(),
        created_ms: now_ms(),
        stopped: false,
        nodes,
    })
}

/// A stopped testnet started again with its data; ports that were taken meanwhile are replaced.
fn resume(mut state: State, dir: &Path, args: &UpArgs) -> anyhow::Result<State> {
    let running: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.index.to_string())
        .collect();
    if !running.is_empty() {
        bail!(
            "a testnet is already running in {} (nodes {}); `testnet status` shows it, `testnet down` stops it",
            dir.display(),
            running.join(", ")
        );
    }
    if args.genesis.is_some() || args.empty_block_interval_ms.is_some() {
        bail!(
            "{} holds a stopped testnet with its own genesis; `testnet reset` deletes it before a new genesis",
            dir.display()
        );
    }
    let have = state.validators().count() as u32;
    if let Some(n) = args.validators
        && n != have
    {
        bail!(
            "{} holds a stopped testnet of {have} validators; `testnet up` resumes it, `testnet reset` deletes it",
            dir.display()
        );
    }
    let env_bin = std::env::var_os(node::NODE_BIN_ENV).is_some_and(|v| !v.is_empty());
    if args.node_bin.is_some() || env_bin || !state.node_bin.is_file() {
        state.node_bin = node::locate_binary(args.node_bin.as_deref())?;
    }
    state.log_level = args.log_level.clone();
    for i in 0..state.nodes.len() {
        let n = &state.nodes[i];
        if !ports::is_free(n.api_addr.port()) || !ports::is_free(n.p2p_port) {
            let p = ports::free_ports(2)?;
            crate::errln!(
                "node {}: its ports are taken now; using {} and {}",
                n.index,
                p[0],
                p[1]
            );
            let n = &mut state.nodes[i];
            n.api_addr.set_port(p[0]);
            n.p2p_port = p[1];
        }
    }
    crate::errln!("resuming the stopped testnet in {}", dir.display());
    Ok(state)
}

/// 32 random bytes as hex.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no OS randomness for the control token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts node 0 (the bootnode), then the others once it answers (they dial it only at start), then
/// waits until every API answers and a new block is final on every node. Returns the time from the
/// first spawn to the first final block seen.
fn start_all(
    state: &mut State,
    dir: &Path,
    resumed: bool,
    deadline: Instant,
    children: &mut HashMap<usize, Child>,
) -> anyhow::Result<Duration> {
    let mut progress = Progress::new(Duration::from_secs(2));
    let started = Instant::now();
    let indices: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
    let Some(&boot) = indices.first() else {
        bail!("the testnet has no nodes");
    };
    progress.set(format!("starting node {boot} (bootnode)"));
    children.insert(boot, start_node(state, boot)?);
    state.save(dir)?;
    let boot_status = super::wait_for_api(state.node(boot)?, deadline)?;
    // A resumed chain already has blocks: wait for one more, finalized by this run.
    let target = if resumed { boot_status.height.0 + 1 } else { 1 };
    for &i in &indices[1..] {
        progress.set(format!("starting node {i}"));
        children.insert(i, start_node(state, i)?);
    }
    state.save(dir)?;

    let clients: Vec<(usize, NodeClient)> = state
        .nodes
        .iter()
        .map(|n| (n.index, NodeClient::new(&n.api_url(), POLL_TIMEOUT)))
        .collect();
    let mut first_final: Option<Duration> = None;
    loop {
        if interrupts() > 0 {
            bail!("interrupted");
        }
        let heights: Vec<Option<u64>> = std::thread::scope(|s| {
            let hs: Vec<_> = clients
                .iter()
                .map(|(_, c)| s.spawn(move || c.status().ok().map(|st| st.height.0)))
                .collect();
            hs.into_iter().map(|h| h.join().ok().flatten()).collect()
        });
        if first_final.is_none() && heights.iter().flatten().any(|&h| h >= target) {
            first_final = Some(started.elapsed());
        }
        let answering = heights.iter().filter(|h| h.is_some()).count();
        let done = heights.iter().all(|h| h.is_some_and(|h| h >= target));
        if done {
            progress.finish();
            return Ok(first_final.unwrap_or_else(|| started.elapsed()));
        }
        for n in &state.nodes {
            if !n.is_running() {
                bail!(
                    "node {} exited during startup; last lines of {}:\n{}",
                    n.index,
                    n.log_path().display(),
                    node::log_tail(n, LOG_TAIL_LINES)
                );
            }
        }
        if Instant::now() >= deadline {
            let shown: Vec<String> = heights
                .iter()
                .zip(&clients)
                .map(|(h, (i, _))| {
                    format!(
                        "node {i}: {}",
                        h.map_or("no answer".into(), |h| format!("height {h}"))
                    )
                })
                .collect();
            bail!(
                "no block became final on every node in time ({}); see node-<i>/node.log, e.g. node {}:\n{}",
                shown.join(", "),
                boot,
                node::log_tail(state.node(boot)?, LOG_TAIL_LINES)
            );
        }
        let hs: Vec<String> = heights
            .iter()
            .map(|h| h.map_or("-".into(), |h| h.to_string()))
            .collect();
        progress.set(if answering < clients.len() {
            format!("waiting for the APIs: {answering}/{} answer", clients.len())
        } else {
            format!(
                "waiting for block {target} to be final on every node (heights {})",
                hs.join(" ")
            )
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the supervisor last saw of a node.
#[derive(Debug, Default)]
struct Seen {
    running: bool,
    height: Option<u64>,
    height_since: Option<Instant>,
    stalled: bool,
}

/// Everything it prints goes through `sayln!`, which ignores a closed stdout: `testnet up | tee log`
/// and Ctrl-C stop `tee` too, and the supervisor must still stop the nodes.
///
/// Watches the nodes until Ctrl-C: prints a line when a node dies or comes back, or when its height
/// stops growing; then stops every node. Re-reads state.json each round, so `kill`/`restart` from
/// another terminal are followed, and exits when the testnet was stopped or removed from elsewhere.
fn supervise(
    dir: &Path,
    mut state: State,
    mut children: HashMap<usize, Child>,
    stall: Duration,
) -> anyhow::Result<ExitCode> {
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    let mut last_summary = Instant::now();
    loop {
        // Reap our own children so a crashed node does not linger as a zombie; say how it ended.
        let mut exits: HashMap<usize, String> = HashMap::new();
        for (i, c) in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                exits.insert(*i, status.to_string());
            }
        }
        for i in exits.keys() {
            children.remove(i);
        }
        match State::load_opt(dir) {
            Ok(Some(s)) => state = s,
            Ok(None) => {
                crate::sayln!(
                    "{} was removed; the supervisor exits",
                    State::path(dir).display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            // A half-written file cannot happen (atomic rename), but a read can fail: keep the last state.
            Err(e) => crate::errln!("cannot re-read the state: {e:#}"),
        }
        let statuses: Vec<(usize, Option<u64>)> = std::thread::scope(|s| {
            let hs: Vec<_> = state
                .nodes
                .iter()
                .map(|n| {
                    let url = n.api_url();
                    let i = n.index;
                    s.spawn(move || {
                        (
                            i,
                            NodeClient::new(&url, POLL_TIMEOUT)
                                .status()
                                .ok()
                                .map(|st| st.height.0),
                        )
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let max_height = statuses.iter().filter_map(|(_, h)| *h).max().unwrap_or(0);
        let now = Instant::now();
        for n in &state.nodes {
            let running = n.is_running();
            let height = statuses
                .iter()
                .find(|(i, _)| *i == n.index)
                .and_then(|(_, h)| *h);
            let s = seen.entry(n.index).or_insert_with(|| Seen {
                running: true,
                ..Seen::default()
            });
            if s.running && !running {
                let how = exits
                    .get(&n.index)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                crate::sayln!(
                    "node {} died{how}; last log lines:\n{}",
                    n.index,
                    indent(&node::log_tail(n, 5))
                );
            } else if !s.running && running {
                crate::sayln!(
                    "node {} is running again (pid {})",
                    n.index,
                    n.pid.unwrap_or(0)
                );
            }
            s.running = running;
            if height != s.height && height.is_some() {
                if s.stalled {
                    crate::sayln!(
                        "node {}: height moving again ({})",
                        n.index,
                        height.unwrap_or(0)
                    );
                }
                s.height = height;
                s.height_since = Some(now);
                s.stalled = false;
            } else if running
                && !s.stalled
                && s.height_since
                    .is_some_and(|t| now.duration_since(t) >= stall)
            {
                crate::sayln!(
                    "node {}: height stalled at {} for {} (highest node: {max_height})",
                    n.index,
                    s.height.map_or("?".into(), |h| h.to_string()),
                    secs(stall)
                );
                s.stalled = true;
            }
        }
        let alive = state.nodes.iter().filter(|n| n.is_running()).count();
        if state.stopped && alive == 0 {
            crate::sayln!("the testnet was stopped (`testnet down`); the supervisor exits");
            return Ok(ExitCode::SUCCESS);
        }
        if last_summary.elapsed() >= Duration::from_secs(30) {
            crate::sayln!(
                "height {max_height} · {alive}/{} nodes running",
                state.nodes.len()
            );
            last_summary = Instant::now();
        }
        // Sleep ~1 s in small steps so Ctrl-C is handled at once.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if interrupts() > 0 {
                return shutdown(dir, &mut children);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Ctrl-C: stop every node (a second Ctrl-C skips the grace period), record it, exit.
fn shutdown(dir: &Path, children: &mut HashMap<usize, Child>) -> anyhow::Result<ExitCode> {
    crate::sayln!("stopping every node (Ctrl-C again to kill them at once)");
    let lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let running: Vec<usize> = state
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.index)
        .collect();
    for &i in &running {
        if let Ok(n) = state.node(i)
            && let Some(pid) = n.pid
        {
            let _ = process::signal_node(pid, n.start_ticks, nix::sys::signal::Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline
        && interrupts() < 2
        && state.nodes.iter().any(|n| n.is_running())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever still runs gets SIGKILL (stop_nodes sends SIGTERM first, which is harmless now).
    let results = stop_nodes(&mut state, &running, Duration::from_millis(1));
    for (i, r) in &results {
        match r {
            Ok(StopOutcome::Killed) => crate::sayln!("node {i}: killed"),
            Ok(_) => crate::sayln!("node {i}: stopped"),
            Err(e) => crate::sayln!("node {i}: {e:#}"),
        }
    }
    for c in children.values_mut() {
        let _ = c.try_wait();
    }
    state.stopped = true;
    state.save(dir)?;
    drop(lock);
    crate::sayln!(
        "testnet stopped; `testnet up` resumes it with its data, `testnet reset` deletes it"
    );
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
