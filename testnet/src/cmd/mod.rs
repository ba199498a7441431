//! One module per subcommand, plus what several of them share: starting and stopping a node with
//! its pid recorded, waiting for a node's API, and the Ctrl-C counter.

pub mod chaos;
pub mod down;
pub mod init;
pub mod isolate;
pub mod join;
pub mod kill;
pub mod load;
pub mod logs;
pub mod reset;
pub mod restart;
pub mod status;
pub mod up;

use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledger_core::api::StatusResponse;

use crate::client::NodeClient;
use crate::process::{self, StopOutcome};
use crate::state::{NodeState, State, now_ms};
use crate::{node, output};

/// How long a node gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Timeout of one status request while waiting for or watching nodes.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(800);
/// Log lines shown when a node fails.
pub const LOG_TAIL_LINES: usize = 20;

static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Counts Ctrl-C / SIGTERM instead of dying, so commands that own nodes can stop them cleanly.
pub fn install_interrupt_handler() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTS.fetch_add(1, Ordering::SeqCst);
    })
    .context("cannot install the Ctrl-C handler")
}

/// How many times Ctrl-C (or SIGTERM) arrived.
pub fn interrupts() -> u32 {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Starts node `index` and records its pid and start time in `state` (the caller saves it).
pub fn start_node(state: &mut State, index: usize) -> anyhow::Result<Child> {
    let node = state.node(index)?.clone();
    let child = node::spawn(state, &node)?;
    let pid = child.id();
    state.stopped = false;
    let n = state.node_mut(index)?;
    n.pid = Some(pid);
    n.start_ticks = process::start_ticks(pid);
    n.started_ms = Some(now_ms());
    Ok(child)
}

/// Stops node `index` (SIGTERM, SIGKILL after `grace`) and clears its pid in `state`.
pub fn stop_node(state: &mut State, index: usize, grace: Duration) -> anyhow::Result<StopOutcome> {
    let n = state.node_mut(index)?;
    let outcome = match n.pid {
        Some(pid) => process::stop(pid, n.start_ticks, grace)
            .with_context(|| format!("cannot stop node {index}"))?,
        None => StopOutcome::NotRunning,
    };
    n.pid = None;
    n.start_ticks = None;
    Ok(outcome)
}

/// Stops the given nodes in parallel (they each get `grace` after SIGTERM). Returns the outcomes by
/// node index; pids are cleared in `state`.
pub fn stop_nodes(
    state: &mut State,
    indices: &[usize],
    grace: Duration,
) -> Vec<(usize, anyhow::Result<StopOutcome>)> {
    let targets: Vec<(usize, Option<u32>, Option<u64>)> = indices
        .iter()
        .filter_map(|&i| state.node(i).ok().map(|n| (i, n.pid, n.start_ticks)))
        .collect();
    let results: Vec<(usize, anyhow::Result<StopOutcome>)> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|&(i, pid, ticks)| {
                s.spawn(move || {
                    let r = match pid {
                        Some(pid) => process::stop(pid, ticks, grace),
                        None => Ok(StopOutcome::NotRunning),
                    };
                    (i, r)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&targets)
            .map(|(h, &(i, _, _))| {
                h.join()
                    .unwrap_or_else(|_| (i, Err(anyhow::anyhow!("stop thread panicked"))))
            })
            .collect()
    });
    for (i, r) in &results {
        if r.is_ok()
            && let Ok(n) = state.node_mut(*i)
        {
            n.pid = None;
            n.start_ticks = None;
        }
    }
    results
}

/// Waits until `node` answers `/v1/status`, up to `deadline`. Fails early, with the log's tail, when
/// the process dies, and when the user presses Ctrl-C.
pub fn wait_for_api(node: &NodeState, deadline: Instant) -> anyhow::Result<StatusResponse> {
    let client = NodeClient::new(&node.api_url(), POLL_TIMEOUT);
    loop {
        if interrupts() > 0 {
            bail!("interrupted");
        }
        if let Ok(s) = client.status() {
            return Ok(s);
        }
        if !node.is_running() {
            bail!(
                "node {} exited during startup; last lines of {}:\n{}",
                node.index,
                node.log_path().display(),
                node::log_tail(node, LOG_TAIL_LINES)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "node {} did not answer on {} in time; last lines of {}:\n{}",
                node.index,
                node.api_url(),
                node.log_path().display(),
                node::log_tail(node, LOG_TAIL_LINES)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Describes how a stop ended, for people.
pub fn describe_stop(outcome: &StopOutcome) -> &'static str {
    match outcome {
        StopOutcome::NotRunning => "was not running",
        StopOutcome::Terminated => "stopped",
        StopOutcome::Killed => "killed (did not exit after SIGTERM)",
    }
}

/// The node table printed by `up`, `join` and `restart`.
pub fn node_table(state: &State, indices: &[usize]) -> String {
    let rows: Vec<Vec<String>> = state
        .nodes
        .iter()
        .filter(|n| indices.contains(&n.index))
        .map(|n| {
            vec![
                n.index.to_string(),
                n.role.to_string(),
                n.api_url(),
                n.explorer_url(),
                n.p2p_addr(),
                n.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(&["node", "role", "api", "explorer", "p2p", "pid"], &rows)
}
