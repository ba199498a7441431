//! `testnet restart <i>`: start one node again with its data (stopping it first if it runs).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::{STOP_GRACE, describe_stop, start_node, stop_node, wait_for_api};
use crate::state::{State, StateLock};

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
    let lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    if state.node(args.index)?.is_running() {
        let o = stop_node(&mut state, args.index, STOP_GRACE)?;
        crate::outln!("node {}: {}", args.index, describe_stop(&o));
    }
    // The child is not waited for: it outlives this command (init reaps it).
    let _child = start_node(&mut state, args.index)?;
    state.save(dir)?;
    drop(lock);
    let node = state.node(args.index)?;
    if !args.no_wait {
        let s = wait_for_api(
            node,
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
