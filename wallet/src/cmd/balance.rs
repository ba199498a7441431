//! `wallet balance [<ADDRESS>] [--key <FILE> | --dev <I>]`: an account's balance and nonces.

use std::io::{self, Write};

use ledger_core::Address;
use ledger_core::api::AccountResponse;
use serde::Serialize;

use crate::args;
use crate::cli::{Ctx, KeyArgs};
use crate::error::Error;
use crate::output::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account to look at [default: the address of your key]
    #[arg(value_name = "ADDRESS", value_parser = args::address, conflicts_with_all = ["key", "dev"])]
    pub address: Option<Address>,

    #[command(flatten)]
    pub key: KeyArgs,
}

/// The node's answer as it is, so `--json` matches `GET /v1/accounts/{address}`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Balance(AccountResponse);

impl Report for Balance {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let a = &self.0;
        writeln!(w, "address     {}", a.address)?;
        writeln!(w, "balance     {}", a.balance)?;
        writeln!(w, "nonce       {}", a.nonce)?;
        let pending = a.next_nonce.0.saturating_sub(a.nonce.0);
        if pending > 0 {
            writeln!(w, "next nonce  {} ({pending} pending)", a.next_nonce)
        } else {
            writeln!(w, "next nonce  {}", a.next_nonce)
        }
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let address = match self.address {
            Some(a) => a,
            None => self.key.source()?.load()?.address(),
        };
        let account = ctx.client().account(&address)?;
        ctx.out.result(&Balance(account));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::{Amount, Keypair, Nonce};

    #[test]
    fn human_balance_shows_pending_transactions() {
        let address = Keypair::dev("account", 0).address();
        let report = Balance(AccountResponse {
            address,
            balance: Amount(990),
            nonce: Nonce(3),
            next_nonce: Nonce(5),
        });
        let mut out = Vec::new();
        report.human(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "address     {address}\nbalance     990\nnonce       3\nnext nonce  5 (2 pending)\n"
            )
        );
    }
}
