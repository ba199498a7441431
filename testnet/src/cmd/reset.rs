//! `testnet reset`: `down`, then delete the testnet folder (chain data, keys, logs, state).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::state::{STATE_FILE, State, StateLock};

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Seconds a node gets to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub grace_secs: u64,
}

pub fn run(dir: &Path, args: ResetArgs) -> anyhow::Result<ExitCode> {
    if !dir.exists() {
        crate::outln!("nothing to reset: {} does not exist", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    check_is_testnet_folder(dir)?;
    {
        let _lock = StateLock::acquire(dir)?;
        if let Some(mut state) = State::load_opt(dir)? {
            let result = super::down::stop_all(&mut state, Duration::from_secs(args.grace_secs));
            state.stopped = true;
            state.save(dir)?;
            result?;
        }
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete {}", dir.display()))?;
    crate::outln!("deleted {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Refuses to delete a folder that is not a testnet's (a mistyped --dir must not erase a home folder):
/// it must hold state.json, or only names the testnet writes.
fn check_is_testnet_folder(dir: &Path) -> anyhow::Result<()> {
    if dir.join(STATE_FILE).is_file() {
        return Ok(());
    }
    let known = |name: &str| {
        name == "genesis.json"
            || name == "state.lock"
            || name.starts_with("state.json")
            || name.starts_with("node-")
    };
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for e in entries {
        let name = e
            .with_context(|| format!("cannot read {}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if !known(&name) {
            bail!(
                "{} does not look like a testnet folder (it holds {name:?} and no {STATE_FILE}); not deleting it",
                dir.display()
            );
        }
    }
    Ok(())
}
