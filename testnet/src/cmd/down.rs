//! `testnet down`: stop every node (SIGTERM, SIGKILL after the grace period). Data stays; `up` resumes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{describe_stop, stop_nodes};
use crate::state::{State, StateLock};

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Seconds a node gets to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub grace_secs: u64,
}

pub fn run(dir: &Path, args: DownArgs) -> anyhow::Result<ExitCode> {
    let _lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    let result = stop_all(&mut state, Duration::from_secs(args.grace_secs));
    state.stopped = true;
    state.save(dir)?;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Stops every node of `state`, printing one line per node; fails if any could not be stopped.
pub fn stop_all(state: &mut State, grace: Duration) -> anyhow::Result<()> {
    let all: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
    let mut failed = Vec::new();
    for (i, r) in stop_nodes(state, &all, grace) {
        match r {
            Ok(o) => crate::outln!("node {i}: {}", describe_stop(&o)),
            Err(e) => {
                crate::outln!("node {i}: {e:#}");
                failed.push(i);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("could not stop nodes {failed:?}");
    }
    Ok(())
}
