//! `testnet load`: transfer load (default) or read load against the testnet's nodes or any node URLs.
//!
//! Transfers ([`transfers`]): fund fresh DEV load accounts from the genesis dev accounts and wait until
//! that is final; pre-sign every transfer and serialize every batch before the clock starts; submit the
//! batches through `POST /v1/transactions/batch`, spread over the target nodes, on a schedule for the
//! target rate from several threads (`--rate 0`: as fast as they go); follow committed blocks on one
//! node to timestamp when each transfer became final; report counts, final throughput and latency
//! percentiles. The last line is `final_tps=<n> p50_ms=<n> p99_ms=<n>`.
//!
//! Reads ([`reads`]): concurrent clients fetch blocks by height and accounts for `--duration`; the last
//! line is `read_rps=<n> p50_ms=<x> p99_ms=<x>`.
//!
//! Bounds: in-flight batches <= sender threads; pre-signed transfers <= [`MAX_TOTAL_TXS`]; per-tx
//! bookkeeping is three fixed-size atomics; every request has a timeout; every wait a deadline.

mod reads;
mod stats;
pub(crate) mod transfers;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::state::State;

/// Most transfers one run pre-signs (about 450 bytes of JSON each stay in memory).
pub const MAX_TOTAL_TXS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Signed transfers, measured to finality.
    Transfers,
    /// HTTP reads (block by height, account), measured per request.
    Reads,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target rate: transfers per second (default 500) or, with `--mode reads`, requests per second
    /// (default 0); 0 = as fast as possible (saturation).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub rate: Option<u64>,
    /// Seconds of submission (the run then waits up to --drain-secs for finality).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Fresh DEV load accounts (`Keypair::dev("load", j)`) that send the transfers.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(2..=200_000))]
    pub accounts: u32,
    /// Most transfers per batch request (smaller batches are used at low rates so submission is smooth).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
    /// The testnet's nodes to load: `all` or a comma list such as `0,2`.
    #[arg(long, default_value = "all")]
    pub nodes: String,
    /// Load these node API URLs instead of the testnet's (repeat or comma-separate), e.g.
    /// `--url http://127.0.0.1:8700`.
    #[arg(long, value_delimiter = ',')]
    pub url: Vec<String>,
    /// Load the nodes of a `testnet init` bundle (its manifest.json or folder), selected by
    /// `--nodes`: nodes on other hosts, in Compose or in Kubernetes.
    #[arg(long, conflicts_with = "url")]
    pub manifest: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Mode::Transfers)]
    pub mode: Mode,
    /// Sender threads (transfers) or keep-alive connections (reads), so at most this many requests
    /// are in flight. Default: 2 per target node for transfers (at least 4), 8 for reads.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: Option<u64>,
    /// With --rate 0: how many transfers to pre-sign.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=MAX_TOTAL_TXS))]
    pub max_txs: u64,
    /// Seconds to wait after the last submission for accepted transfers to become final.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_secs: u64,
    /// Fee of every transfer, in base units.
    #[arg(long, default_value_t = 1)]
    pub fee: u64,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl LoadArgs {
    /// The target rate (defaults resolved in [`run`]); 0 = as fast as possible.
    pub fn rate(&self) -> u64 {
        self.rate.unwrap_or(0)
    }
}

/// A node to send load to.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub url: String,
    /// The process, when known from the testnet state (for its memory).
    pub pid: Option<(u32, Option<u64>)>,
}

pub fn run(dir: &Path, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let targets = targets(dir, &args)?;
    super::install_interrupt_handler()?;
    let args = LoadArgs {
        rate: Some(args.rate.unwrap_or(match args.mode {
            Mode::Transfers => 500,
            Mode::Reads => 0,
        })),
        ..args
    };
    match args.mode {
        Mode::Transfers => transfers::run(&targets, &args),
        Mode::Reads => reads::run(&targets, &args),
    }
}

/// `--nodes`: `all`, or comma-separated indices.
fn wanted_nodes(spec: &str, all: &[usize]) -> anyhow::Result<Vec<usize>> {
    if spec.trim() == "all" {
        return Ok(all.to_vec());
    }
    spec.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("--nodes: `{s}` is not a node index"))
        })
        .collect()
}

/// `--url` wins, then `--manifest`; else the testnet's running nodes selected by `--nodes`.
fn targets(dir: &Path, args: &LoadArgs) -> anyhow::Result<Vec<Target>> {
    if !args.url.is_empty() {
        // A URL of this testnet's node gets its process (for its memory); any other is just a URL.
        let state = State::load_opt(dir).ok().flatten();
        let targets: Vec<Target> = args
            .url
            .iter()
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .map(|u| {
                let node = state
                    .as_ref()
                    .and_then(|s| s.nodes.iter().find(|n| n.api_url() == u));
                Target {
                    label: node.map_or_else(|| u.to_string(), |n| format!("node {}", n.index)),
                    url: u.to_string(),
                    pid: node.and_then(|n| n.pid.map(|p| (p, n.start_ticks))),
                }
            })
            .collect();
        if targets.is_empty() {
            bail!("--url: no URL given");
        }
        return Ok(targets);
    }
    if let Some(path) = &args.manifest {
        let m = crate::manifest::Manifest::load(path)?;
        let all: Vec<usize> = m.nodes.iter().map(|n| n.index).collect();
        return wanted_nodes(&args.nodes, &all)?
            .into_iter()
            .map(|i| {
                let n = m
                    .nodes
                    .iter()
                    .find(|n| n.index == i)
                    .with_context(|| format!("--nodes: the manifest has no node {i}"))?;
                Ok(Target {
                    label: n.name.clone(),
                    url: n.api_url(),
                    pid: None,
                })
            })
            .collect();
    }
    let state = State::load(dir)
        .context("pass --url or --manifest to load nodes outside this machine's testnet")?;
    let all: Vec<usize> = state.nodes.iter().map(|n| n.index).collect();
    let wanted = wanted_nodes(&args.nodes, &all)?;
    let mut out = Vec::new();
    for i in wanted {
        let n = state.node(i)?;
        if !n.is_running() {
            if args.nodes.trim() == "all" {
                crate::errln!("node {i} is not running; not loading it");
                continue;
            }
            bail!("node {i} is not running");
        }
        out.push(Target {
            label: format!("node {i}"),
            url: n.api_url(),
            pid: n.pid.map(|p| (p, n.start_ticks)),
        });
    }
    if out.is_empty() {
        bail!("no running node to load");
    }
    Ok(out)
}

/// Resident memory of every target whose process is known, in MiB.
fn rss_mb(targets: &[Target]) -> BTreeMap<String, u64> {
    targets
        .iter()
        .filter_map(|t| {
            let (pid, ticks) = t.pid?;
            if !crate::process::is_running(pid, ticks) {
                return None;
            }
            crate::process::rss_kib(pid).map(|k| (t.label.clone(), k.div_ceil(1024)))
        })
        .collect()
}
