//! # testnet
//!
//! One command starts a working N-validator ledger testnet on this machine; further commands inspect,
//! disturb and load it. The testnet runs the real `ledger-node` binary as child processes and talks to
//! the nodes only through their HTTP API, exactly as a user would: it never links the node crate.
//!
//! - [`cli`]: the arguments (clap derive) and the dispatch to one module per subcommand in [`cmd`].
//! - [`node`]: the one place that knows how `ledger-node` is invoked (binary lookup, config file,
//!   flags, environment, dev keys). Adapt the node's command line there and nowhere else.
//! - [`state`]: `.testnet/state.json` (pids, ports, control token), so every command works from
//!   another terminal; read-modify-write under a file lock.
//! - [`process`]: liveness (pid + start time, so a reused pid is never mistaken for a node),
//!   signals, memory.
//! - [`client`]: the blocking HTTP client of one node's API, with short timeouts everywhere.
//! - [`genesis_src`]: which genesis a testnet uses and how it is written into the folder.
//! - [`ports`], [`output`]: free local ports; tables, progress and durations for people.
//! - [`manifest`]: what `testnet init` wrote for nodes on other hosts, read by the commands that
//!   work on remote nodes.
//! - [`hints`]: the next commands, spelled to run as printed; the record of the last started
//!   testnet that the wallet reads to find a node by itself.
//!
//! Every wait in this crate is bounded by a deadline, every queue by a count.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod genesis_src;
pub mod hints;
pub mod manifest;
pub mod node;
pub mod output;
pub mod ports;
pub mod process;
pub mod state;
