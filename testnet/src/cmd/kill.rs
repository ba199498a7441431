//! `testnet kill <i>`: SIGKILL one node, a crash with no chance to flush or say goodbye.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use nix::sys::signal::Signal;

use crate::process;
use crate::state::{State, StateLock};

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The node's index.
    pub index: usize,
}

pub fn run(dir: &Path, args: KillArgs) -> anyhow::Result<ExitCode> {
    let pid = kill_node(dir, args.index)?;
    crate::outln!(
        "node {} killed (SIGKILL to pid {pid}); `testnet restart {}` starts it again",
        args.index,
        args.index
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGKILLs node `index`, waits until it is gone and clears its pid in `state.json`; returns the pid
/// it had. The one kill path: `testnet kill` and `testnet chaos` both call it.
pub fn kill_node(dir: &Path, index: usize) -> anyhow::Result<u32> {
    let _lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let node = state.node_mut(index)?;
    let (Some(pid), true) = (node.pid, node.is_running()) else {
        bail!("node {index} is not running");
    };
    process::signal_node(pid, node.start_ticks, Signal::SIGKILL)?;
    if !process::wait_gone(pid, node.start_ticks, Duration::from_secs(5)) {
        bail!("node {index} (pid {pid}) still runs 5 s after SIGKILL");
    }
    node.pid = None;
    node.start_ticks = None;
    state.save(dir)?;
    Ok(pid)
}
