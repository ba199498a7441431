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
    let _lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let node = state.node_mut(args.index)?;
    let (Some(pid), true) = (node.pid, node.is_running()) else {
        bail!("node {} is not running", args.index);
    };
    process::signal_node(pid, node.start_ticks, Signal::SIGKILL)?;
    if !process::wait_gone(pid, node.start_ticks, Duration::from_secs(5)) {
        bail!(
            "node {} (pid {pid}) still runs 5 s after SIGKILL",
            args.index
        );
    }
    node.pid = None;
    node.start_ticks = None;
    state.save(dir)?;
    crate::outln!(
        "node {} killed (SIGKILL to pid {pid}); `testnet restart {}` starts it again",
        args.index,
        args.index
    );
    Ok(ExitCode::SUCCESS)
}
