//! Every way a wallet command can fail, the one line it prints and the exit code it returns.
//!
//! Exit codes (also in `wallet --help`):
//! - 0: success;
//! - 1: the transaction was rejected, or the command failed (node error, timeout, not found, I/O);
//! - 2: usage or input error (bad argument, bad address or amount, missing or bad key file); nothing
//!   was sent to the node;
//! - 3: the node could not be reached;
//! - 4: the transaction was dropped from the mempool without being invalid (evicted for a higher
//!   fee, replaced by the same nonce with a higher fee, or expired): it will not be applied, and
//!   sending it again may succeed where a rejected one (1) would need changing first;
//! - 5: the node's answer failed verification ([`crate::verify`]): a balance or transaction the
//!   validators did not sign, a transaction called final without a proof, or a node of another
//!   chain than the one the wallet trusts (`--genesis`, `wallet trust`; `--no-verify` skips the
//!   check).

use std::error::Error as StdError;
use std::process::ExitCode;

use std::fmt;

use ledger_core::api::DropReason;
use ledger_core::genesis::GenesisError;
use ledger_core::light::LightError;
use ledger_core::{ChainId, Hash, TxError};
use serde_json::{Value, json};

use crate::client::NodeError;
use crate::keys::KeyError;
use crate::output::{explain_drop, explain_tx_error};
use crate::trust::{TrustError, TrustSource};

/// The process exit status, one per kind of outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failed = 1,
    Usage = 2,
    Unreachable = 3,
    Dropped = 4,
    Unverified = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument that only showed itself after parsing (e.g. a transaction that fails the
    /// stateless checks). Nothing was sent.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The node refused the transaction, at submission or later.
    #[error("rejected: {}", explain_tx_error(.reason))]
    Rejected { hash: Hash, reason: TxError },
    /// The node let go of the (valid) transaction while it was pending.
    #[error("dropped from the mempool: {}", explain_drop(.reason))]
    Dropped { hash: Hash, reason: DropReason },
    #[error("transaction {hash} is not known to the node")]
    TxNotFound { hash: Hash },
    #[error("gave up waiting after {waited_secs}s: transaction {hash} is still {last_status}")]
    WaitTimeout {
        hash: Hash,
        waited_secs: u64,
        last_status: &'static str,
    },
    /// The trust root could not be read or pinned.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The node's answer failed the light-client check.
    #[error("the node at {url} served {what} that the validators did not sign")]
    Unverified {
        url: String,
        what: Served,
        #[source]
        source: Box<LightError>,
    },
    /// The node calls a transaction final but has no proof of it.
    #[error(
        "the node at {url} says transaction {hash} is final but serves no proof of it: not believed"
    )]
    NoProof { url: String, hash: Hash },
    /// The node's `/v1/genesis` is not a genesis.
    #[error("the node at {url} served a genesis that is not valid")]
    BadNodeGenesis {
        url: String,
        #[source]
        source: GenesisError,
    },
    /// The node is of another chain than the one the wallet trusts.
    #[error(transparent)]
    WrongChain(Box<ChainMismatch>),
}

/// A node of another chain than the one the wallet trusts: what it runs, what the wallet trusts and
/// where that came from, and how to change it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the node at {url} {node}, but this wallet trusts genesis {trusted}{} ({trusted_from}). \
     If the node's chain is the one you mean, pass its genesis with --genesis <FILE|HASH> or \
     pin it with 'wallet trust'; --no-verify skips the check",
    .trusted_chain.as_ref().map(|c| format!(" of chain {c}")).unwrap_or_default()
)]
pub struct ChainMismatch {
    pub url: String,
    pub node: NodeChain,
    pub trusted: Hash,
    pub trusted_chain: Option<ChainId>,
    pub trusted_from: TrustSource,
}

/// What an unverified answer was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Balance,
    /// The transaction asked about, by the hash the wallet asked with.
    Transaction(Hash),
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Served::Balance => "a balance",
            Served::Transaction(_) => "a transaction",
        })
    }
}

/// How a node showed it is of another chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChain {
    /// Its status or its `/v1/genesis` names this genesis.
    Serves { genesis: Hash, chain_id: ChainId },
    /// Its answer is for another chain.
    Answered(LightError),
}

impl NodeChain {
    fn genesis(&self) -> Option<Hash> {
        match self {
            NodeChain::Serves { genesis, .. } => Some(*genesis),
            NodeChain::Answered(LightError::WrongGenesis { got, .. }) => Some(*got),
            NodeChain::Answered(_) => None,
        }
    }
}

impl fmt::Display for NodeChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeChain::Serves { genesis, chain_id } => {
                write!(f, "runs genesis {genesis} of chain {chain_id}")
            }
            NodeChain::Answered(e) => write!(f, "answered for another chain ({e})"),
        }
    }
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Input(_) => Exit::Usage,
            Error::Key(e) if e.is_input_error() => Exit::Usage,
            Error::Key(_) => Exit::Failed,
            Error::Node(NodeError::Unreachable { .. }) => Exit::Unreachable,
            Error::Node(_) => Exit::Failed,
            Error::Rejected { .. } | Error::TxNotFound { .. } | Error::WaitTimeout { .. } => {
                Exit::Failed
            }
            Error::Dropped { .. } => Exit::Dropped,
            Error::Trust(e) if e.is_input_error() => Exit::Usage,
            Error::Trust(_) => Exit::Failed,
            Error::Unverified { .. }
            | Error::NoProof { .. }
            | Error::BadNodeGenesis { .. }
            | Error::WrongChain(_) => Exit::Unverified,
        }
    }

    /// A stable machine-readable name of the failure, for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Input(_) => "invalid_input",
            Error::Key(_) => "key",
            Error::Node(NodeError::Unreachable { .. }) => "unreachable",
            Error::Node(_) => "node_error",
            Error::Rejected { .. } => "rejected",
            Error::Dropped { .. } => "dropped",
            Error::TxNotFound { .. } => "not_found",
            Error::WaitTimeout { .. } => "timeout",
            Error::Trust(_) => "trust_root",
            Error::Unverified { .. } | Error::NoProof { .. } | Error::BadNodeGenesis { .. } => {
                "unverified"
            }
            Error::WrongChain(_) => "wrong_chain",
        }
    }

    /// `{"error": {"code", "message", "exit_code", ...details}}`.
    pub fn to_json(&self) -> Value {
        let mut e = json!({
            "code": self.code(),
            "message": one_line(self),
            "exit_code": self.exit() as u8,
        });
        match self {
            Error::Rejected { hash, reason } => {
                e["hash"] = json!(hash);
                e["reason"] = json!(reason);
            }
            Error::Dropped { hash, reason } => {
                e["hash"] = json!(hash);
                e["reason"] = json!(reason);
            }
            Error::TxNotFound { hash } | Error::WaitTimeout { hash, .. } => {
                e["hash"] = json!(hash);
            }
            Error::Node(NodeError::Api { status, error, .. }) => {
                e["http_status"] = json!(status);
                e["node_error"] = json!(error);
            }
            Error::Unverified { url, what, source } => {
                e["node"] = json!(url);
                e["failed_check"] = json!(source.to_string());
                if let Served::Transaction(hash) = what {
                    e["hash"] = json!(hash);
                }
            }
            Error::NoProof { url, hash } => {
                e["node"] = json!(url);
                e["hash"] = json!(hash);
            }
            Error::BadNodeGenesis { url, .. } => {
                e["node"] = json!(url);
            }
            Error::WrongChain(m) => {
                e["node"] = json!(m.url);
                e["trusted_genesis"] = json!(m.trusted);
                e["trusted_from"] = json!(m.trusted_from.to_string());
                if let Some(g) = m.node.genesis() {
                    e["node_genesis"] = json!(g);
                }
            }
            _ => {}
        }
        json!({ "error": e })
    }
}

/// The error and all its causes, joined by ": " on a single line.
pub fn one_line(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // A wrapper may already quote its cause; don't say the same thing twice.
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reports an argument-parsing failure (or prints help/version) and returns the exit code.
///
/// clap's own rendering spans several lines (usage, a hint); a wrong argument gets one line here
/// instead, naming the argument and why its value is wrong.
pub fn report_usage(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::{ContextKind, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Printing help can only fail on a closed stdout; then there is no one to tell.
            let _ = e.print();
            return Exit::Success.into();
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return Exit::Usage.into();
        }
        _ => {}
    }
    let line = match (e.kind(), e.get(ContextKind::InvalidArg), e.source()) {
        (ErrorKind::ValueValidation, Some(arg), Some(cause)) => {
            format!("{arg}: {}", one_line(cause))
        }
        _ => {
            // "error: <what>\n  <detail>\n\nUsage: ..." -> "<what> <detail>"
            let rendered = e.render().to_string();
            let first_paragraph: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let text = first_paragraph.join(" ");
            let text = text.strip_prefix("error: ").unwrap_or(&text).to_string();
            format!("{text} (see 'wallet --help')")
        }
    };
    crate::output::errln!("error: {line}");
    if json {
        let v =
            json!({"error": {"code": "usage", "message": line, "exit_code": Exit::Usage as u8}});
        crate::output::Output::new(true).json_value(&v);
    }
    Exit::Usage.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::Amount;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let rejected = Error::Rejected {
            hash: Hash::ZERO,
            reason: TxError::ZeroAmount,
        };
        assert_eq!(rejected.exit(), Exit::Failed);
        assert_eq!(Error::Input("x".into()).exit(), Exit::Usage);
        let unreachable = Error::Node(NodeError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(unreachable.exit(), Exit::Unreachable);
        assert_eq!(Exit::Unreachable as u8, 3);
        let dropped = Error::Dropped {
            hash: Hash::ZERO,
            reason: DropReason::Expired { ttl_secs: 600 },
        };
        assert_eq!(dropped.exit(), Exit::Dropped);
        assert_eq!(Exit::Dropped as u8, 4);
    }

    #[test]
    fn a_drop_reads_in_plain_words_and_carries_the_typed_reason_in_json() {
        let by = Hash::digest(b"replacement");
        let e = Error::Dropped {
            hash: Hash::ZERO,
            reason: DropReason::Replaced { by },
        };
        assert_eq!(
            one_line(&e),
            format!("dropped from the mempool: replaced by {by} (higher fee)")
        );
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "dropped");
        assert_eq!(v["error"]["reason"]["code"], "replaced");
        assert_eq!(v["error"]["reason"]["by"], by.to_hex());
        assert_eq!(v["error"]["hash"], Hash::ZERO.to_hex());
        assert_eq!(v["error"]["exit_code"], 4);
    }

    #[test]
    fn rejection_reads_in_plain_words_and_carries_the_typed_reason_in_json() {
        let e = Error::Rejected {
            hash: Hash::ZERO,
            reason: TxError::InsufficientFunds {
                have: Amount(5),
                need: Amount(12),
            },
        };
        assert_eq!(
            one_line(&e),
            "rejected: insufficient funds: have 5, need 12"
        );
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "rejected");
        assert_eq!(v["error"]["reason"]["code"], "insufficient_funds");
        assert_eq!(v["error"]["reason"]["need"], 12);
        assert_eq!(v["error"]["exit_code"], 1);
    }

    #[test]
    fn an_answer_that_fails_verification_exits_5_and_names_the_node_and_the_check() {
        let e = Error::Unverified {
            url: "http://127.0.0.1:8545".into(),
            what: Served::Balance,
            source: Box::new(LightError::BelowThreshold {
                signed: 10,
                total: 40,
            }),
        };
        assert_eq!(e.exit(), Exit::Unverified);
        assert_eq!(Exit::Unverified as u8, 5);
        assert_eq!(
            one_line(&e),
            "the node at http://127.0.0.1:8545 served a balance that the validators did not sign: \
             the certificate carries 10 of 40 voting power; more than two thirds are needed"
        );
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "unverified");
        assert_eq!(v["error"]["exit_code"], 5);
        assert_eq!(v["error"]["node"], "http://127.0.0.1:8545");
        assert_eq!(
            v["error"]["failed_check"],
            "the certificate carries 10 of 40 voting power; more than two thirds are needed"
        );
    }

    #[test]
    fn a_node_of_another_chain_exits_5_and_says_what_is_trusted_and_why() {
        let chain = |s: &str| ChainId::new(s).expect("chain id");
        let e = Error::WrongChain(Box::new(ChainMismatch {
            url: "http://n:1".into(),
            node: NodeChain::Serves {
                genesis: Hash::digest(b"theirs"),
                chain_id: chain("theirs"),
            },
            trusted: Hash::digest(b"ours"),
            trusted_chain: Some(chain("ours")),
            trusted_from: TrustSource::Pinned("/h/.ledger-wallet/wallet.json".into()),
        }));
        assert_eq!(e.exit(), Exit::Unverified);
        assert_eq!(
            one_line(&e),
            format!(
                "the node at http://n:1 runs genesis {} of chain theirs, but this wallet trusts \
                 genesis {} of chain ours (pinned in /h/.ledger-wallet/wallet.json by 'wallet \
                 trust'). If the node's chain is the one you mean, pass its genesis with --genesis \
                 <FILE|HASH> or pin it with 'wallet trust'; --no-verify skips the check",
                Hash::digest(b"theirs"),
                Hash::digest(b"ours")
            )
        );
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "wrong_chain");
        assert_eq!(v["error"]["node_genesis"], Hash::digest(b"theirs").to_hex());
        assert_eq!(
            v["error"]["trusted_genesis"],
            Hash::digest(b"ours").to_hex()
        );
    }

    #[test]
    fn one_line_joins_the_chain_and_removes_line_breaks() {
        let e = Error::Key(KeyError::Write {
            path: "/x/key.json".into(),
            source: std::io::Error::other("disk\nfull"),
        });
        assert_eq!(one_line(&e), "cannot write key file /x/key.json: disk full");
        assert_eq!(e.exit(), Exit::Failed);
    }
}
