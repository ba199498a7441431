//! `wallet tx <HASH>`: a transaction's status and content.

use std::io::{self, Write};

use ledger_core::Hash;
use ledger_core::api::TxResponse;
use ledger_core::units::Token;
use serde::Serialize;

use crate::args;
use crate::cli::Ctx;
use crate::error::Error;
use crate::output::{Report, describe_status, memo_text};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction's hash (64 hex characters, as `transfer` prints it)
    #[arg(value_name = "HASH", value_parser = args::tx_hash)]
    pub hash: Hash,
}

/// The node's answer as it is, so `--json` matches `GET /v1/transactions/{hash}`.
/// Amounts are shown in the chain's display unit too, when it has one.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct TxReport(pub TxResponse, #[serde(skip)] pub Option<Token>);

impl TxReport {
    fn amount(&self, a: ledger_core::Amount) -> String {
        ledger_core::units::describe(a, self.1.as_ref())
    }
}

impl Report for TxReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let r = &self.0;
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
        Ok(())
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let client = ctx.client();
        match client.tx(&self.hash)? {
            Some(r) => {
                let token = client.status().ok().and_then(|s| s.token);
                ctx.out.result(&TxReport(r, token));
                Ok(())
            }
            None => Err(Error::TxNotFound { hash: self.hash }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::api::TxStatus;
    use ledger_core::{Amount, ChainId, Height, Keypair, Nonce, Transaction, TxError};

    fn human(r: TxResponse) -> String {
        let mut out = Vec::new();
        TxReport(r, Some(Token::dev()))
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
                 amount   0.000010 LDG (10 base units)\nfee      0.000001 LDG (1 base unit)\nnonce    4\nmemo     \"hi\"\nchain    dev\n",
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
                "hash     {}\nstatus   rejected: insufficient funds: have 5, need 12\n",
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
                "hash     {}\nstatus   dropped from the mempool: replaced by {by} (higher fee)\n",
                Hash::ZERO
            )
        );
    }
}
