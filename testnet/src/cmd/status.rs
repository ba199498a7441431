//! `testnet status`: per node height, head, peers, lag and liveness, and whether all nodes hold the
//! same block at the highest height they all have (a fork check, not only a height check).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::POLL_TIMEOUT;
use crate::client::NodeClient;
use crate::manifest::Manifest;
use crate::output::{short, table};
use crate::state::State;

/// Exit code of `status` when nodes hold different blocks at the same height.
pub const EXIT_FORK: u8 = 3;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object (per refresh with --watch, one per line).
    #[arg(long)]
    pub json: bool,
    /// Refresh like `top` until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Refresh interval for --watch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub interval_ms: u64,
    /// Ask the nodes of a `testnet init` bundle (its manifest.json or folder) instead of this
    /// machine's testnet: nodes on other hosts, in Compose or in Kubernetes.
    #[arg(long, conflicts_with = "url")]
    pub manifest: Option<PathBuf>,
    /// Ask these node API URLs (repeat or comma-separate) instead of this machine's testnet.
    #[arg(long, value_delimiter = ',')]
    pub url: Vec<String>,
}

/// A node to ask: from this machine's testnet (its process is known) or from elsewhere.
#[derive(Debug, Clone)]
pub struct Probe {
    pub index: usize,
    pub role: String,
    pub api_url: String,
    /// Whether the process runs and its pid, for a node this machine runs; None for a remote one.
    pub process: Option<(bool, Option<u32>)>,
}

/// The chain id and nodes `status` asks, from `--manifest`, `--url` or the local testnet.
fn probes(dir: &Path, args: &StatusArgs) -> anyhow::Result<(String, Vec<Probe>)> {
    if let Some(path) = &args.manifest {
        let m = Manifest::load(path)?;
        let probes = m
            .nodes
            .iter()
            .map(|n| Probe {
                index: n.index,
                role: n.role.to_string(),
                api_url: n.api_url(),
                process: None,
            })
            .collect();
        return Ok((m.chain_id, probes));
    }
    if !args.url.is_empty() {
        let probes = args
            .url
            .iter()
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .enumerate()
            .map(|(index, u)| Probe {
                index,
                role: "-".into(),
                api_url: u.to_string(),
                process: None,
            })
            .collect();
        return Ok(("-".into(), probes));
    }
    let state = State::load(dir)?;
    let probes = state
        .nodes
        .iter()
        .map(|n| {
            let alive = n.is_running();
            Probe {
                index: n.index,
                role: n.role.to_string(),
                api_url: n.api_url(),
                process: Some((alive, n.pid.filter(|_| alive))),
            }
        })
        .collect();
    Ok((state.chain_id.clone(), probes))
}

/// One node as `status` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub index: usize,
    pub role: String,
    /// The process runs (pid and start time match); for a remote node, that it answered.
    pub alive: bool,
    /// Not a process of this machine's testnet (`--manifest`, `--url`).
    pub remote: bool,
    pub pid: Option<u32>,
    pub api_url: String,
    pub height: Option<u64>,
    pub head_hash: Option<String>,
    pub state_root: Option<String>,
    pub peers: Option<usize>,
    pub syncing: Option<bool>,
    pub mempool_txs: Option<usize>,
    /// Blocks behind the highest node.
    pub lag: Option<u64>,
    /// This node's block hash at the common height.
    pub hash_at_common: Option<String>,
    /// Why the node did not answer.
    pub error: Option<String>,
}

/// The whole testnet.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub chain_id: String,
    pub nodes: Vec<NodeReport>,
    pub max_height: u64,
    /// The highest height every answering node has.
    pub common_height: Option<u64>,
    /// Whether every answering node has the same block at the common height (None: nothing to compare).
    pub agree: Option<bool>,
}

pub fn run(dir: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    if !args.watch {
        let (chain_id, probes) = probes(dir, &args)?;
        let report = gather(chain_id, &probes);
        print(&report, args.json)?;
        return Ok(exit_code(&report));
    }
    loop {
        // Re-read the state: nodes may have been restarted (new pids) or joined meanwhile.
        let (chain_id, probes) = probes(dir, &args)?;
        let report = gather(chain_id, &probes);
        if !args.json {
            // Clear the screen and go home, like `top`.
            crate::out!("\x1b[2J\x1b[H");
            crate::outln!(
                "testnet {} · every {} ms · Ctrl-C to quit\n",
                dir.display(),
                args.interval_ms
            );
        }
        print(&report, args.json)?;
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
}

fn exit_code(report: &Report) -> ExitCode {
    if report.agree == Some(false) {
        ExitCode::from(EXIT_FORK)
    } else {
        ExitCode::SUCCESS
    }
}

/// Asks every node, in parallel, with short timeouts (a dead node costs at most one timeout).
pub fn gather(chain_id: String, probes: &[Probe]) -> Report {
    let mut nodes: Vec<NodeReport> = std::thread::scope(|s| {
        let hs: Vec<_> = probes
            .iter()
            .map(|n| {
                s.spawn(move || {
                    // A remote node is alive when it answers.
                    let (alive, pid) = n.process.unwrap_or((true, None));
                    let mut r = NodeReport {
                        index: n.index,
                        role: n.role.clone(),
                        alive,
                        remote: n.process.is_none(),
                        pid,
                        api_url: n.api_url.clone(),
                        height: None,
                        head_hash: None,
                        state_root: None,
                        peers: None,
                        syncing: None,
                        mempool_txs: None,
                        lag: None,
                        hash_at_common: None,
                        error: None,
                    };
                    match NodeClient::new(&n.api_url, POLL_TIMEOUT).status() {
                        Ok(st) => {
                            r.height = Some(st.height.0);
                            r.head_hash = Some(st.head_hash.to_string());
                            r.state_root = Some(st.state_root.to_string());
                            r.peers = Some(st.peers);
                            r.syncing = Some(st.syncing);
                            r.mempool_txs = Some(st.mempool_txs);
                        }
                        Err(e) => {
                            r.error = Some(if alive {
                                e.to_string()
                            } else {
                                "not running".into()
                            });
                            if r.remote {
                                r.alive = false;
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        hs.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let max_height = nodes.iter().filter_map(|n| n.height).max().unwrap_or(0);
    for n in &mut nodes {
        n.lag = n.height.map(|h| max_height - h);
    }
    let common_height = nodes
        .iter()
        .filter_map(|n| n.height)
        .min()
        .filter(|&h| h > 0);
    let mut agree = None;
    if let Some(h) = common_height {
        let hashes: Vec<Option<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = nodes
                .iter()
                .map(|n| {
                    let url = n.api_url.clone();
                    let answered = n.height.is_some();
                    s.spawn(move || {
                        answered
                            .then(|| {
                                NodeClient::new(&url, POLL_TIMEOUT)
                                    .block_light(h)
                                    .ok()
                                    .map(|b| b.hash.to_string())
                            })
                            .flatten()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().ok().flatten()).collect()
        });
        for (n, hash) in nodes.iter_mut().zip(&hashes) {
            n.hash_at_common = hash.clone();
        }
        let mut distinct: Vec<&String> = hashes.iter().flatten().collect();
        distinct.sort();
        distinct.dedup();
        if !distinct.is_empty() {
            agree = Some(distinct.len() == 1);
        }
    }
    Report {
        chain_id,
        nodes,
        max_height,
        common_height,
        agree,
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = report
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.index.to_string(),
                n.role.clone(),
                match (n.remote, n.alive) {
                    (true, true) => "remote".into(),
                    (true, false) => "no answer".into(),
                    (false, true) => "alive".into(),
                    (false, false) => "dead".into(),
                },
                opt(n.height.map(|h| h.to_string())),
                opt(n.head_hash.as_ref().map(short)),
                opt(n.peers.map(|p| p.to_string())),
                opt(n.lag.map(|l| l.to_string())),
                match n.syncing {
                    Some(true) => "syncing".into(),
                    Some(false) => "".into(),
                    None => opt(n.error.as_ref().map(|e| truncate(e, 60))),
                },
                n.api_url.clone(),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        table(
            &[
                "node", "role", "process", "height", "head", "peers", "lag", "note", "api"
            ],
            &rows
        )
    );
    let verdict = match (report.common_height, report.agree) {
        (Some(h), Some(true)) => format!("all answering nodes agree on block {h}"),
        (Some(h), Some(false)) => {
            let v: Vec<String> = report
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "node {}: {}",
                        n.index,
                        opt(n.hash_at_common.as_ref().map(short))
                    )
                })
                .collect();
            format!(
                "FORK: nodes hold different blocks at height {h} ({})",
                v.join(", ")
            )
        }
        _ => "no common final block yet".into(),
    };
    crate::outln!(
        "\nchain {} · max height {} · {verdict}",
        report.chain_id,
        report.max_height
    );
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}
