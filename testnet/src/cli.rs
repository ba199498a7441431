//! Command-line arguments and the dispatch to one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Start, inspect, disturb and load a local ledger testnet.
#[derive(Debug, Parser)]
#[command(name = "testnet", version, about, long_about = None)]
pub struct Cli {
    /// The testnet folder: state.json, the genesis, and one folder per node (config, key, data, log).
    #[arg(long, global = true, default_value = ".testnet", env = "TESTNET_DIR")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an N-validator testnet (or resume a stopped one) and supervise it.
    Up(cmd::up::UpArgs),
    /// Write a testnet to run on other hosts, in Compose or in Kubernetes: one folder per node
    /// (config, genesis, key) and a manifest that status, load and chaos read.
    Init(cmd::init::InitArgs),
    /// Height, head, peers and lag of every node, and whether they agree on the chain (this
    /// machine's testnet, or `--manifest` / `--url` for nodes elsewhere).
    Status(cmd::status::StatusArgs),
    /// Stop every node (SIGTERM, then SIGKILL after a timeout). Data stays.
    Down(cmd::down::DownArgs),
    /// Stop every node and delete the testnet folder.
    Reset(cmd::reset::ResetArgs),
    /// SIGKILL one node (a crash). Local only: on Compose use `docker compose kill`, on
    /// Kubernetes `kubectl delete pod`.
    Kill(cmd::kill::KillArgs),
    /// Start one node again with its data (stops it first if it runs). Local only.
    Restart(cmd::restart::RestartArgs),
    /// Cut one node off from its peers (the node's loopback control endpoint: local only).
    Isolate(cmd::isolate::IsolateArgs),
    /// Reconnect a node cut off by `isolate`.
    Heal(cmd::isolate::IsolateArgs),
    /// Show (and follow) one node's log.
    Logs(cmd::logs::LogsArgs),
    /// Start an extra full node (no validator key) that syncs from the bootnode.
    Join(cmd::join::JoinArgs),
    /// Generate transfer load (or read load) and measure throughput and latency (latency from each
    /// transfer's scheduled send time). Exits 3 when a submitted transfer was refused or not final.
    Load(cmd::load::LoadArgs),
    /// Run a seeded nemesis (kill -9, restart, isolate, heal, cut off more than f, restart every
    /// node) under transfer load, then heal everything and check the invariants.
    Chaos(cmd::chaos::ChaosArgs),
}

/// Runs the parsed command. Commands return their exit code; errors carry their whole chain.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dir = crate::state::absolute(&cli.dir)?;
    match cli.command {
        Command::Up(a) => cmd::up::run(&dir, a),
        Command::Init(a) => cmd::init::run(a),
        Command::Status(a) => cmd::status::run(&dir, a),
        Command::Down(a) => cmd::down::run(&dir, a),
        Command::Reset(a) => cmd::reset::run(&dir, a),
        Command::Kill(a) => cmd::kill::run(&dir, a),
        Command::Restart(a) => cmd::restart::run(&dir, a),
        Command::Isolate(a) => cmd::isolate::run(&dir, a, cmd::isolate::Action::Isolate),
        Command::Heal(a) => cmd::isolate::run(&dir, a, cmd::isolate::Action::Heal),
        Command::Logs(a) => cmd::logs::run(&dir, a),
        Command::Join(a) => cmd::join::run(&dir, a),
        Command::Load(a) => cmd::load::run(&dir, a),
        Command::Chaos(a) => cmd::chaos::run(&dir, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_takes_urls_and_node_lists() {
        let cli = Cli::try_parse_from([
            "testnet",
            "load",
            "--url",
            "http://127.0.0.1:8700,http://127.0.0.1:8701",
            "--rate",
            "0",
            "--mode",
            "reads",
        ])
        .expect("parses");
        let Command::Load(a) = cli.command else {
            panic!("not load")
        };
        assert_eq!(a.url.len(), 2);
        assert_eq!(a.rate, Some(0));
        assert!(
            Cli::try_parse_from(["testnet", "up", "-n", "0"]).is_err(),
            "zero validators is refused"
        );
    }
}
