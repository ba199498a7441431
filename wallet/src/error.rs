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
//!   sending it again may succeed where a rejected one (1) would need changing first.

use std::error::Error as StdError;
use std::process::ExitCode;

use ledger_core::api::DropReason;
use ledger_core::{Hash, TxError};
use serde_json::{Value, json};

use crate::client::NodeError;
use crate::keys::KeyError;
use crate::output::{explain_drop, explain_tx_error};

/// The process exit status, one per kind of outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failed = 1,
    Usage = 2,
    Unreachable = 3,
    Dropped = 4,
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
    fn one_line_joins_the_chain_and_removes_line_breaks() {
        let e = Error::Key(KeyError::Write {
            path: "/x/key.json".into(),
            source: std::io::Error::other("disk\nfull"),
        });
        assert_eq!(one_line(&e), "cannot write key file /x/key.json: disk full");
        assert_eq!(e.exit(), Exit::Failed);
    }
}
