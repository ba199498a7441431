//! `wallet tx <HASH>`: a transaction's status and content.
//!
//! A final transaction is checked by default: its place in a block whose header the trusted
//! validators signed ([`crate::verify`]); what is shown then is what the proof shows. A pending,
//! rejected or dropped transaction is in no signed block, so its status is the node's word and
//! is reported as unverified.

use std::io::{self, Write};

use ledger_core::Hash;
use ledger_core::api::{TxResponse, TxStatus};
use ledger_core::units::Token;
use serde::Serialize;

use crate::args;
use crate::cli::Ctx;
use crate::error::Error;
use crate::output::{Report, describe_status, memo_text};
use crate::verify::{SKIPPED, Verification};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction's hash (64 hex characters, as `transfer` prints it)
    #[arg(value_name = "HASH", value_parser = args::tx_hash)]
    pub hash: Hash,
}

/// The answer shaped like `GET /v1/transactions/{hash}`, and whether it was verified.
/// Amounts are shown in the chain's display unit too, when it has one.
#[derive(Debug, Serialize)]
pub struct TxReport {
    #[serde(flatten)]
    pub response: TxResponse,
    #[serde(flatten)]
    pub verification: Verification,
    #[serde(skip)]
    pub token: Option<Token>,
}

impl TxReport {
    fn amount(&self, a: ledger_core::Amount) -> String {
        ledger_core::units::describe(a, self.token.as_ref())
    }
}

impl Report for TxReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let r = &self.response;
        writeln!(w, "hash     {}", r.hash)?;
        writeln!(w, "status   {}", describe_status(&r.status))?;
        if let Some(from) = &r.from_address {
            writeln!(w, "from     {from}")?;
        }
        if let Some(stx) = &r.transaction {
            let tx = &stx.tx;
            if r.from_address.is_none() {
                writeln!(w, "from     {}", tx.sender())?;
            }
            writeln!(w, "to       {}", tx.to)?;
            writeln!(w, "amount   {}", self.amount(tx.amount))?;
            writeln!(w, "fee      {}", self.amount(tx.fee))?;
            writeln!(w, "nonce    {}", tx.nonce)?;
            if !tx.memo.is_empty() {
                writeln!(w, "memo     {}", memo_text(&tx.memo))?;
            }
            writeln!(w, "chain    {}", tx.chain_id)?;
        }
        self.verification.human(w)
    }
}

/// Why a transaction in this status cannot be verified.
pub fn unverifiable(status: &TxStatus) -> Option<&'static str> {
    match status {
        TxStatus::Final { .. } => None,
        TxStatus::Pending => Some("pending: only a final transaction is in a signed block"),
        TxStatus::Rejected { .. } => {
            Some("rejected: a rejected transaction is in no block; this is the node's word")
        }
        TxStatus::Dropped { .. } => {
            Some("dropped: a dropped transaction is in no block; this is the node's word")
        }
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let client = ctx.client();
        let verifier = ctx.verifier(&client)?;
        let Some(answer) = client.tx(&self.hash)? else {
            return Err(Error::TxNotFound { hash: self.hash });
        };
        let report = match verifier {
            None => TxReport {
                response: answer,
                verification: Verification::not(SKIPPED),
                token: client.status().ok().and_then(|s| s.token),
            },
            Some(v) => {
                let token = v.token().cloned();
                match unverifiable(&answer.status) {
                    Some(reason) => TxReport {
                        response: answer,
                        verification: Verification::not(reason),
                        token,
                    },
                    None => {
                        let verified = v.tx(&client, &self.hash)?;
                        let status = TxStatus::Final {
                            height: verified.at.header.height,
                            index: verified.index,
                        };
                        if answer.status != status {
                            ctx.out.note(&format!(
                                "note: the node said {}, its proof shows {}; showing the proof",
                                describe_status(&answer.status),
                                describe_status(&status)
                            ));
                        }
                        TxReport {
                            response: TxResponse {
                                hash: verified.hash,
                                status,
                                from_address: Some(verified.transaction.tx.sender()),
                                transaction: Some(verified.transaction),
                            },
                            verification: Verification::by(&verified.at),
                            token,
                        }
                    }
                }
            }
        };
        ctx.out.result(&report);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::api::TxStatus;
    use ledger_core::{Amount, ChainId, Height, Keypair, Nonce, Transaction, TxError};

    fn human(r: TxResponse) -> String {
        let verification = Verification::not(unverifiable(&r.status).unwrap_or(SKIPPED));
        let mut out = Vec::new();
        TxReport {
            response: r,
            verification,
            token: Some(Token::dev()),
        }
        .human(&mut out)
        .expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_final_transfer_shows_where_and_what() {
        let key = Keypair::dev("account", 0);
        let to = Keypair::dev("account", 1).address();
        let stx = Transaction {
            chain_id: ChainId::new("dev").expect("valid"),
            from: key.public(),
            to,
            amount: Amount(10),
            fee: Amount(1),
            nonce: Nonce(4),
            memo: b"hi".to_vec(),
        }
        .sign(&key);
        let text = human(TxResponse {
            hash: stx.hash(),
            status: TxStatus::Final {
                height: Height(9),
                index: 0,
            },
            transaction: Some(stx.clone()),
            from_address: Some(key.address()),
        });
        assert_eq!(
            text,
            format!(
                "hash     {}\nstatus   final at height 9 (index 0)\nfrom     {}\nto       {to}\n\
                 amount   0.000010 LDG (10 base units)\nfee      0.000001 LDG (1 base unit)\nnonce    4\nmemo     \"hi\"\nchain    dev\n\
                 verified: no (--no-verify: the node's answer was not checked)\n",
                stx.hash(),
                key.address()
            )
        );
    }

    #[test]
    fn a_rejected_transfer_shows_the_reason() {
        let text = human(TxResponse {
            hash: Hash::ZERO,
            status: TxStatus::Rejected {
                reason: TxError::InsufficientFunds {
                    have: Amount(5),
                    need: Amount(12),
                },
            },
            transaction: None,
            from_address: None,
        });
        assert_eq!(
            text,
            format!(
                "hash     {}\nstatus   rejected: insufficient funds: have 5, need 12\n\
                 verified: no (rejected: a rejected transaction is in no block; this is the node's word)\n",
                Hash::ZERO
            )
        );
    }

    #[test]
    fn a_dropped_transfer_says_why_the_node_let_go_of_it() {
        let by = Hash::digest(b"replacement");
        let text = human(TxResponse {
            hash: Hash::ZERO,
            status: TxStatus::Dropped {
                reason: ledger_core::api::DropReason::Replaced { by },
            },
            transaction: None,
            from_address: None,
        });
        assert_eq!(
            text,
            format!(
                "hash     {}\nstatus   dropped from the mempool: replaced by {by} (higher fee)\n\
                 verified: no (dropped: a dropped transaction is in no block; this is the node's word)\n",
                Hash::ZERO
            )
        );
    }
}
