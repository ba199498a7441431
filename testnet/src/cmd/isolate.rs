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
    let state = State::load(dir)?;
    let node = state.node(args.index)?;
    if !node.is_running() {
        bail!("node {} is not running", args.index);
    }
    let (path, done) = match action {
        Action::Isolate => ("isolate", "isolated: it has no peers until `testnet heal`"),
        Action::Heal => ("heal", "healed: it reconnects to its peers"),
    };
    let client = NodeClient::new(&node.api_url(), Duration::from_secs(5));
    match client.control(path, &state.control_token) {
        Ok(_) => {
            crate::outln!("node {} {done}", args.index);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Status {
            status: 404 | 405, ..
        }) => bail!(
            "node {} has no control endpoint (POST /control/{path} not found): the node enables it only \
             with a control token, which the testnet passes as {}",
            args.index,
            crate::node::CONTROL_TOKEN_ENV
        ),
        Err(ClientError::Status {
            status: 401 | 403,
            message,
            ..
        }) => bail!(
            "node {} refused the control token ({message}); was it started by this testnet folder?",
            args.index
        ),
        Err(e) => Err(e.into()),
    }
}
