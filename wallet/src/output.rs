//! What the commands print: human text by default, exactly one JSON object on stdout with `--json`.
//! Progress and notes go to stderr, so stdout stays the answer (a hash, an address, a balance).

use std::io::{self, Write};

/// `eprintln!` that ignores a closed stderr instead of panicking (clippy.toml disallows `eprintln!`).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

use ledger_core::TxError;
use ledger_core::api::{DropReason, TxStatus};
use serde::Serialize;
use serde_json::Value;

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

/// A command's result: serialized as one JSON object, or written as human text.
pub trait Report: Serialize {
    fn human(&self, w: &mut dyn Write) -> io::Result<()>;
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints the command's result on stdout.
    pub fn result(&self, report: &impl Report) {
        let mut stdout = io::stdout().lock();
        let written = if self.json {
            match serde_json::to_value(report) {
                Ok(v) => writeln!(stdout, "{v}"),
                Err(e) => writeln!(
                    stdout,
                    "{}",
                    serde_json::json!({"error": {"code": "internal", "message": e.to_string()}})
                ),
            }
        } else {
            report.human(&mut stdout)
        };
        // A closed stdout (`wallet ... | head -0`) is the reader's choice, not a failure to report.
        let _ = written.and_then(|()| stdout.flush());
    }

    /// Prints one JSON value on stdout (used for the error object with `--json`).
    pub fn json_value(&self, v: &Value) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{v}").and_then(|()| stdout.flush());
    }

    /// A line of the human answer on stdout, printed at once (so a hash is out before a long wait);
    /// nothing with `--json`, whose single object comes at the end.
    pub fn human_line(&self, line: &str) {
        if !self.json {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        }
    }

    /// A note for the person at the terminal, on stderr.
    pub fn note(&self, line: &str) {
        crate::output::errln!("{line}");
    }
}

/// A transaction's status in plain words: "pending", "final at height 7 (index 0)",
/// "rejected: insufficient funds: have 5, need 12", "dropped from the mempool: replaced by … (higher
/// fee)".
pub fn describe_status(status: &TxStatus) -> String {
    match status {
        TxStatus::Pending => "pending".to_string(),
        TxStatus::Final { height, index } => format!("final at height {height} (index {index})"),
        TxStatus::Rejected { reason } => format!("rejected: {}", explain_tx_error(reason)),
        TxStatus::Dropped { reason } => {
            format!("dropped from the mempool: {}", explain_drop(reason))
        }
    }
}

/// Why the node let go of a valid transaction, with what to do about it.
pub fn explain_drop(d: &DropReason) -> String {
    let hint = match d {
        DropReason::Evicted { .. } => {
            Some("the mempool was full; send it again with a higher --fee")
        }
        DropReason::Expired { .. } => Some("send it again"),
        // The replacement's hash says where to look ('wallet tx <hash>').
        DropReason::Replaced { .. } => None,
    };
    match hint {
        Some(h) => format!("{d} ({h})"),
        None => d.to_string(),
    }
}

/// The node's typed reason in plain words, with what to do about it where that is not obvious.
pub fn explain_tx_error(e: &TxError) -> String {
    let hint = match e {
        TxError::NonceTooLow { .. } => {
            Some("an earlier transaction already used this nonce; omit --nonce to use the next one")
        }
        TxError::NonceTooHigh { .. } => {
            Some("transactions with lower nonces must come first; omit --nonce to use the next one")
        }
        TxError::FeeTooLow { .. } => Some("raise --fee"),
        TxError::MemoTooLong { .. } | TxError::TooLarge { .. } => Some("shorten --memo"),
        TxError::WrongChain { .. } => Some("the node serves another chain; check --node"),
        // The others say all there is to say. A wildcard, not a list, so a reason added to the
        // ledger later still prints (through its Display) without a wallet change.
        _ => None,
    };
    match hint {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

/// A memo for display: its text when it is printable UTF-8, else `0x` and hex.
pub fn memo_text(memo: &[u8]) -> String {
    match std::str::from_utf8(memo) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("0x{}", hex::encode(memo)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::{Amount, ChainId, Height, Nonce};

    #[test]
    fn each_status_reads_plainly() {
        assert_eq!(describe_status(&TxStatus::Pending), "pending");
        assert_eq!(
            describe_status(&TxStatus::Final {
                height: Height(7),
                index: 2
            }),
            "final at height 7 (index 2)"
        );
        assert_eq!(
            describe_status(&TxStatus::Rejected {
                reason: TxError::InsufficientFunds {
                    have: Amount(5),
                    need: Amount(12)
                }
            }),
            "rejected: insufficient funds: have 5, need 12"
        );
        let by = ledger_core::Hash::digest(b"replacement");
        assert_eq!(
            describe_status(&TxStatus::Dropped {
                reason: DropReason::Replaced { by }
            }),
            format!("dropped from the mempool: replaced by {by} (higher fee)")
        );
    }

    #[test]
    fn each_drop_reason_reads_plainly() {
        let by = ledger_core::Hash::digest(b"replacement");
        let cases = [
            (
                DropReason::Evicted { by_fee: Amount(7) },
                "evicted to make room for a transaction paying fee 7 (the mempool was full; send it again with a higher --fee)".to_string(),
            ),
            (
                DropReason::Replaced { by },
                format!("replaced by {by} (higher fee)"),
            ),
            (
                DropReason::Expired { ttl_secs: 600 },
                "expired after 600 s pending (send it again)".to_string(),
            ),
        ];
        for (d, text) in cases {
            assert_eq!(explain_drop(&d), text);
        }
    }

    #[test]
    fn each_tx_error_reads_plainly() {
        let chain = |s: &str| ChainId::new(s).expect("valid chain id");
        let cases: Vec<(TxError, &str)> = vec![
            (
                TxError::WrongChain {
                    expected: chain("main"),
                    got: chain("dev"),
                },
                "wrong chain: expected main, got dev (the node serves another chain; check --node)",
            ),
            (TxError::BadSignature, "bad signature"),
            (
                TxError::TooLarge { max: 512, got: 600 },
                "transaction too large: 600 bytes, limit 512 (shorten --memo)",
            ),
            (
                TxError::MemoTooLong { max: 256, got: 300 },
                "memo too long: 300 bytes, limit 256 (shorten --memo)",
            ),
            (TxError::ZeroAmount, "amount must be positive"),
            (
                TxError::SelfTransfer,
                "sender and recipient are the same account",
            ),
            (
                TxError::NonceTooLow {
                    expected: Nonce(4),
                    got: Nonce(2),
                },
                "nonce too low: expected 4, got 2 (an earlier transaction already used this nonce; omit --nonce to use the next one)",
            ),
            (
                TxError::NonceTooHigh {
                    expected: Nonce(4),
                    got: Nonce(9),
                },
                "nonce too high: expected 4, got 9 (transactions with lower nonces must come first; omit --nonce to use the next one)",
            ),
            (
                TxError::InsufficientFunds {
                    have: Amount(5),
                    need: Amount(12),
                },
                "insufficient funds: have 5, need 12",
            ),
            (TxError::AmountOverflow, "amount plus fee overflows"),
            (TxError::BalanceOverflow, "recipient balance would overflow"),
            (
                TxError::FeeTooLow {
                    min: Amount(10),
                    got: Amount(1),
                },
                "fee too low: minimum 10, got 1 (raise --fee)",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(explain_tx_error(&e), text);
        }
    }

    #[test]
    fn memos_show_as_text_or_hex() {
        assert_eq!(memo_text(b"rent for May"), "\"rent for May\"");
        assert_eq!(memo_text(&[0xff, 0x00]), "0xff00");
        assert_eq!(memo_text(b"a\nb"), "0x610a62");
    }
}
