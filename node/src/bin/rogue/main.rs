//! `ledger-rogue`: a hostile libp2p peer for measuring how a testnet copes with one.
//!
//! It joins a chain's network like any node (through the node library's public network API:
//! [`node::network::spawn_with_metrics`], [`node::network::NetworkHandle`]) and runs one attack
//! for `--duration` seconds at `--rate` messages per second:
//!
//! | attack | what it sends |
//! |---|---|
//! | `replay` | valid consensus messages it received from honest nodes, newest first, then older ones, re-sent in the resend envelope (distinct bytes each time) |
//! | `unfunded-flood` | full 2,000-transfer batches, validly signed by keys that hold nothing |
//! | `bad-signatures` | transfers, votes and proposals whose signatures do not verify |
//! | `garbage` | undecodable bytes of 64 B to 64 KiB on both topics |
//! | `oversized` | gossip frames just over the largest message the nodes read (own swarm, see [`oversized`]) |
//! | `sync-flood` | block-range requests of the largest size, to every peer, as fast as `--rate` allows |
//! | `forged-chunks` | nothing: it claims a head far ahead and serves forged blocks to whoever syncs from it |
//!
//! At the end it prints what it sent, how long it stayed connected to each peer (from
//! `NetworkHandle::peers()`), and after how many messages the first peer disconnected it. Exit
//! codes: 0 done, 1 failed (no peer reached, bad genesis), 2 usage.

mod attacks;
mod oversized;
mod tracker;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use libp2p::Multiaddr;

use ledger_core::genesis::Genesis;

use tracker::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    Replay,
    UnfundedFlood,
    BadSignatures,
    Garbage,
    Oversized,
    SyncFlood,
    ForgedChunks,
}

#[derive(Debug, Parser)]
#[command(
    name = "ledger-rogue",
    version,
    about = "A hostile peer: joins a ledger network and runs one attack against it"
)]
pub struct Cli {
    /// A node's libp2p address, e.g. /ip4/127.0.0.1/tcp/9000 (repeat for more; discovery finds
    /// the rest).
    #[arg(long, required = true)]
    pub bootnode: Vec<Multiaddr>,
    /// The chain's genesis.json (chain id, validators, topic names).
    #[arg(long)]
    pub genesis: PathBuf,
    #[arg(long, value_enum)]
    pub attack: Attack,
    /// Messages per second (gossip messages, sync requests); `forged-chunks` answers when asked.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: u64,
    /// Seconds of attack (after the first peer is connected) at most: SIGTERM or Ctrl-C ends it
    /// sooner, and the report is printed all the same.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Seconds to wait for a first peer before giving up.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
    /// `forged-chunks`: how many blocks ahead of the honest head to claim.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(3..=1_000_000))]
    pub lead_blocks: u64,
    /// Log filter for stderr (tracing's `RUST_LOG` syntax).
    #[arg(long, default_value = "warn")]
    pub log_level: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl Cli {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    match run(&cli) {
        Ok(report) => {
            let text = if cli.json {
                serde_json::to_string(&report).unwrap_or_default()
            } else {
                report.to_text()
            };
            // A closed stdout is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ledger-rogue: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(&cli.genesis)
        .with_context(|| format!("cannot read {}", cli.genesis.display()))?;
    let genesis = Genesis::from_json(&text)
        .with_context(|| format!("{} is not a valid genesis", cli.genesis.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(attacks::run(cli, genesis))
}
