//! `testnet restart <i>`: start one node again with its data (stopping it first if it runs).

use std::path::Path;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use clap::Args;

use super::{STOP_GRACE, describe_stop, start_node, stop_node, wait_for_api};
use crate::process::StopOutcome;
use crate::state::{NodeState, State, StateLock};

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The node's index.
    pub index: usize,
    /// Return once the process is started, without waiting for its API.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the API to answer.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

pub fn run(dir: &Path, args: RestartArgs) -> anyhow::Result<ExitCode> {
    let restarted = restart_node(dir, args.index)?;
    if let Some(o) = &restarted.stopped {
        crate::outln!("node {}: {}", args.index, describe_stop(o));
    }
    // The child is not waited for: it outlives this command (init reaps it).
    let Restarted { node, .. } = restarted;
    if !args.no_wait {
        let s = wait_for_api(
            &node,
            Instant::now() + Duration::from_secs(args.timeout_secs),
        )?;
        crate::outln!(
            "node {} restarted (pid {}) at height {}, {}",
            args.index,
            node.pid.unwrap_or(0),
            s.height,
            node.api_url()
        );
    } else {
        crate::outln!(
            "node {} started (pid {}), {}",
            args.index,
            node.pid.unwrap_or(0),
            node.api_url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A node started again by [`restart_node`].
#[derive(Debug)]
pub struct Restarted {
    /// How the running process was stopped first, if one ran.
    pub stopped: Option<StopOutcome>,
    /// The node as recorded in `state.json` after the start (new pid).
    pub node: NodeState,
    /// The new process. A long-running caller (chaos) keeps it to reap it when it dies; a short
    /// one drops it and init reaps the node later.
    pub child: Child,
}

/// Stops node `index` if it runs (SIGTERM, SIGKILL after the grace period), starts it again with
/// its data and records the new pid. Does not wait for its API. The one restart path: `testnet
/// restart` and `testnet chaos` both call it.
pub fn restart_node(dir: &Path, index: usize) -> anyhow::Result<Restarted> {
    let _lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let stopped = if state.node(index)?.is_running() {
        Some(stop_node(&mut state, index, STOP_GRACE)?)
    } else {
        None
    };
    let child = start_node(&mut state, index)?;
    state.save(dir)?;
    Ok(Restarted {
        stopped,
        node: state.node(index)?.clone(),
        child,
    })
}
