//! `wallet balance [<ADDRESS>] [--key <FILE> | --dev <I>]`: an account's balance and nonces.

use std::io::{self, Write};

use ledger_core::Address;
use ledger_core::api::AccountResponse;
use ledger_core::units::{Token, describe};
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

/// The node's answer as it is, so `--json` matches `GET /v1/accounts/{address}` (balance an
/// integer of base units), plus the balance in the chain's display unit when it has one.
#[derive(Debug, Serialize)]
struct Balance {
    #[serde(flatten)]
    account: AccountResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_display: Option<String>,
    #[serde(skip)]
    token: Option<Token>,
}

impl Balance {
    fn new(account: AccountResponse, token: Option<&Token>) -> Balance {
        let balance_display = token.map(|t| t.format(account.balance));
        Balance {
            account,
            balance_display,
            token: token.cloned(),
        }
    }
}

impl Report for Balance {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let a = &self.account;
        writeln!(w, "address     {}", a.address)?;
        writeln!(
            w,
            "balance     {}",
            describe(a.balance, self.token.as_ref())
        )?;
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
        let client = ctx.client();
        let account = client.account(&address)?;
        // The unit only changes how the answer is shown: a node without one still has a balance.
        let token = client.status().ok().and_then(|s| s.token);
        ctx.out.result(&Balance::new(account, token.as_ref()));
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
        let account = AccountResponse {
            address,
            balance: Amount(1_000_000_000_990),
            nonce: Nonce(3),
            next_nonce: Nonce(5),
        };
        let human = |r: &Balance| {
            let mut out = Vec::new();
            r.human(&mut out).expect("writes");
            String::from_utf8(out).expect("utf-8")
        };
        let report = Balance::new(account.clone(), Some(&Token::dev()));
        assert_eq!(
            human(&report),
            format!(
                "address     {address}\nbalance     1,000,000.000990 LDG (1000000000990 base units)\nnonce       3\nnext nonce  5 (2 pending)\n"
            )
        );
        let v = serde_json::to_value(&report).expect("serializes");
        assert_eq!(
            v["balance"], 1_000_000_000_990u64,
            "an integer of base units"
        );
        assert_eq!(v["balance_display"], "1,000,000.000990 LDG");
        let plain = Balance::new(account, None);
        assert!(human(&plain).contains("balance     1000000000990 base units\n"));
    }
}
