//! # wallet
//!
//! The command-line wallet of the ledger. It holds keys, signs transfers locally (the key never leaves
//! the machine), submits them to a node over the node's HTTP API (`/v1/...`) and follows them to
//! finality.
//!
//! - [`cli`]: the arguments (clap derive), typed at the boundary by the parsers in [`args`], and the
//!   dispatch to one module per subcommand under [`cmd`].
//! - [`keys`]: where a signing key comes from: a key file (written owner-only) or a dev key of the
//!   default genesis.
//! - [`client`]: the blocking HTTP client of the node API (ureq, with timeouts); [`discover`]: the
//!   node of a running local testnet when no `--node` is given.
//! - [`verify`]: what the node says is checked, by default, with ledger-core's light client against
//!   the genesis of the chain the wallet trusts, [`trust`]: `--genesis`/`LEDGER_GENESIS`, the pin
//!   of `wallet trust`, the discovered testnet's `genesis.json`, or the built-in dev chain.
//!   `balance`, `tx` and `transfer --wait` report `verified: signed by N of M validators at
//!   height H`; an answer that fails the check, or a node of another chain, exits 5.
//! - [`output`]: human text or one JSON object per command; [`progress`]: the `--wait` spinner.
//! - [`error`]: every failure, its one-line message and its exit code.
//!
//! `main` only parses, runs and turns the outcome into an exit code; it holds no command logic.

mod args;
mod cli;
mod client;
mod cmd;
mod discover;
mod error;
mod keys;
mod output;
mod progress;
mod trust;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::{Error, Exit};
use crate::output::Output;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::report_usage(&e, cli::json_requested(std::env::args_os())),
    };
    let out = Output::new(cli.json);
    match cli.run(&out) {
        Ok(()) => Exit::Success.into(),
        Err(e) => report(&out, &e),
    }
}

/// Prints a failure: its whole chain on one line to stderr, and with `--json` also as one JSON
/// object on stdout so a script always gets an answer to parse.
fn report(out: &Output, e: &Error) -> ExitCode {
    crate::output::errln!("error: {}", error::one_line(e));
    if out.is_json() {
        out.json_value(&e.to_json());
    }
    e.exit().into()
}
