//! `testnet join`: start an extra full node (no validator key) that knows only the bootnode and
//! syncs the chain from its peers.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::{start_node, wait_for_api};
use crate::ports;
use crate::state::{NodeState, Role, State, StateLock};

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Return once the process is started, without waiting for its API.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the API to answer.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    /// Print the new node as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &Path, args: JoinArgs) -> anyhow::Result<ExitCode> {
    let lock = StateLock::acquire(dir)?;
    let mut state = State::load(dir)?;
    if !state.nodes.iter().any(|n| n.index == 0 && n.is_running()) {
        bail!("the bootnode (node 0) is not running; a new node would have no one to sync from");
    }
    let index = state
        .nodes
        .iter()
        .map(|n| n.index)
        .max()
        .map_or(0, |m| m + 1);
    let p = ports::free_ports(2)?;
    state.nodes.push(NodeState {
        index,
        role: Role::Full,
        dir: dir.join(format!("node-{index}")),
        api_addr: ([127, 0, 0, 1], p[0]).into(),
        p2p_port: p[1],
        pid: None,
        start_ticks: None,
        started_ms: None,
    });
    let _child = start_node(&mut state, index)?;
    state.save(dir)?;
    drop(lock);
    let node = state.node(index)?;
    let height = if args.no_wait {
        None
    } else {
        Some(
            wait_for_api(
                node,
                Instant::now() + Duration::from_secs(args.timeout_secs),
            )?
            .height
            .0,
        )
    };
    if args.json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "index": index, "api_url": node.api_url(), "p2p": node.p2p_addr(),
                "pid": node.pid, "height": height,
            })
        );
    } else {
        crate::out!("{}", super::node_table(&state, &[index]));
        crate::outln!(
            "node {index} joined as a full node; it syncs from the bootnode ({})",
            state.node(0)?.p2p_addr()
        );
    }
    Ok(ExitCode::SUCCESS)
}
