//! `testnet isolate <i>` / `testnet heal <i>`: cut a node off from every peer and reconnect it, through
//! the node's control endpoint (`POST /control/isolate|heal`, bearer token, loopback only).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::client::{ClientError, NodeClient};
use crate::state::State;

#[derive(Debug, Args)]
pub struct IsolateArgs {
    /// The node's index.
    pub index: usize,
}

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Isolate,
    Heal,
}

pub fn run(dir: &Path, args: IsolateArgs, action: Action) -> anyhow::Result<ExitCode> {
    control_node(dir, args.index, action)?;
    let done = match action {
        Action::Isolate => "isolated: it has no peers until `testnet heal`",
        Action::Heal => "healed: it reconnects to its peers",
    };
    crate::outln!("node {} {done}", args.index);
    Ok(ExitCode::SUCCESS)
}

/// Isolates or heals node `index` through its control endpoint. The one isolate/heal path:
/// `testnet isolate|heal` and `testnet chaos` both call it.
pub fn control_node(dir: &Path, index: usize, action: Action) -> anyhow::Result<()> {
    let state = State::load(dir)?;
    let node = state.node(index)?;
    if !node.is_running() {
        bail!("node {index} is not running");
    }
    let path = match action {
        Action::Isolate => "isolate",
        Action::Heal => "heal",
    };
    let client = NodeClient::new(&node.api_url(), Duration::from_secs(5));
    match client.control(path, &state.control_token) {
        Ok(_) => Ok(()),
        Err(ClientError::Status {
            status: 404 | 405, ..
        }) => bail!(
            "node {index} has no control endpoint (POST /control/{path} not found): the node enables it only \
             with a control token, which the testnet passes as {}",
            crate::node::CONTROL_TOKEN_ENV
        ),
        Err(ClientError::Status {
            status: 401 | 403,
            message,
            ..
        }) => bail!(
            "node {index} refused the control token ({message}); was it started by this testnet folder?"
        ),
        Err(e) => Err(e.into()),
    }
}
