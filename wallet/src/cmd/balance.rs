//! `wallet balance [<ADDRESS>] [--key <FILE> | --dev <I>]`: an account's balance and nonces.
//!
//! By default the balance and nonce are the account's state at the node's final head, checked
//! against the trusted validators ([`crate::verify`]); the next nonce, which counts pending
//! transactions, is the node's mempool view and is labelled unverified. With `--no-verify`, all
//! of it is the node's word (`GET /v1/accounts/{address}`).

use std::io::{self, Write};

use ledger_core::units::{Token, describe};
use ledger_core::{Address, Amount, Nonce};
use serde::Serialize;

use crate::args;
use crate::cli::{Ctx, KeyArgs};
use crate::error::Error;
use crate::output::Report;
use crate::verify::{SKIPPED, Verification};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account to look at [default: the address of your key]
    #[arg(value_name = "ADDRESS", value_parser = args::address, conflicts_with_all = ["key", "dev"])]
    pub address: Option<Address>,

    #[command(flatten)]
    pub key: KeyArgs,
}

/// The account, shaped like `GET /v1/accounts/{address}` (balance an integer of base units), plus
/// the balance in the chain's display unit when it has one and whether it was verified.
#[derive(Debug, Serialize)]
struct Balance {
    address: Address,
    balance: Amount,
    nonce: Nonce,
    /// The nonce of the account's next transaction, counting its pending ones: the node's view
    /// of its mempool (absent when the node did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_nonce: Option<Nonce>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_display: Option<String>,
    #[serde(flatten)]
    verification: Verification,
    /// The fields that are the node's word even though the rest was verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unverified: Vec<&'static str>,
    #[serde(skip)]
    token: Option<Token>,
}

impl Balance {
    fn new(
        address: Address,
        (balance, nonce): (Amount, Nonce),
        next_nonce: Option<Nonce>,
        verification: Verification,
        token: Option<&Token>,
    ) -> Balance {
        let unverified = if verification.verified && next_nonce.is_some() {
            vec!["next_nonce"]
        } else {
            Vec::new()
        };
        Balance {
            address,
            balance,
            nonce,
            next_nonce,
            balance_display: token.map(|t| t.format(balance)),
            verification,
            unverified,
            token: token.cloned(),
        }
    }
}

impl Report for Balance {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "address     {}", self.address)?;
        writeln!(
            w,
            "balance     {}",
            describe(self.balance, self.token.as_ref())
        )?;
        writeln!(w, "nonce       {}", self.nonce)?;
        if let Some(next) = self.next_nonce {
            let pending = next.0.saturating_sub(self.nonce.0);
            let label = if self.verification.verified {
                "the node's mempool view, not verified"
            } else {
                ""
            };
            match (pending, label.is_empty()) {
                (0, true) => writeln!(w, "next nonce  {next}")?,
                (0, false) => writeln!(w, "next nonce  {next} ({label})")?,
                (p, true) => writeln!(w, "next nonce  {next} ({p} pending)")?,
                (p, false) => writeln!(w, "next nonce  {next} ({p} pending; {label})")?,
            }
        }
        self.verification.human(w)
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let address = match self.address {
            Some(a) => a,
            None => self.key.source()?.load()?.address(),
        };
        let client = ctx.client();
        let report = match ctx.verifier(&client)? {
            Some(verifier) => {
                let verified = verifier.account(&client, &address)?;
                // The mempool's next nonce is extra: the verified answer stands without it.
                let next_nonce = match client.account(&address) {
                    Ok(a) => Some(a.next_nonce),
                    Err(e) => {
                        ctx.out
                            .note(&format!("note: no next nonce from the node's mempool: {e}"));
                        None
                    }
                };
                Balance::new(
                    address,
                    (verified.account.balance, verified.account.nonce),
                    next_nonce,
                    Verification::by(&verified.at),
                    verifier.token(),
                )
            }
            None => {
                let account = client.account(&address)?;
                // The unit only changes how the answer is shown: a node without one still has a
                // balance.
                let token = client.status().ok().and_then(|s| s.token);
                Balance::new(
                    address,
                    (account.balance, account.nonce),
                    Some(account.next_nonce),
                    Verification::not(SKIPPED),
                    token.as_ref(),
                )
            }
        };
        ctx.out.result(&report);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::VerifiedBy;
    use ledger_core::{Height, Keypair};

    fn human(r: &Balance) -> String {
        let mut out = Vec::new();
        r.human(&mut out).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn human_balance_shows_pending_transactions_and_what_was_verified() {
        let address = Keypair::dev("account", 0).address();
        let verified = Verification {
            verified: true,
            verified_by: Some(VerifiedBy {
                signers: 3,
                validators: 4,
                height: Height(7),
            }),
            unverified_reason: None,
        };
        let report = Balance::new(
            address,
            (Amount(1_000_000_000_990), Nonce(3)),
            Some(Nonce(5)),
            verified,
            Some(&Token::dev()),
        );
        assert_eq!(
            human(&report),
            format!(
                "address     {address}\nbalance     1,000,000.000990 LDG (1000000000990 base units)\nnonce       3\n\
                 next nonce  5 (2 pending; the node's mempool view, not verified)\n\
                 verified: signed by 3 of 4 validators at height 7\n"
            )
        );
        let v = serde_json::to_value(&report).expect("serializes");
        assert_eq!(
            v["balance"], 1_000_000_000_990u64,
            "an integer of base units"
        );
        assert_eq!(v["balance_display"], "1,000,000.000990 LDG");
        assert_eq!(v["verified"], true);
        assert_eq!(v["verified_by"]["height"], 7);
        assert_eq!(v["unverified"], serde_json::json!(["next_nonce"]));

        let plain = Balance::new(
            address,
            (Amount(1_000_000_000_990), Nonce(3)),
            Some(Nonce(5)),
            Verification::not(SKIPPED),
            None,
        );
        let text = human(&plain);
        assert!(
            text.contains("balance     1000000000990 base units\n"),
            "{text}"
        );
        assert!(text.contains("next nonce  5 (2 pending)\n"), "{text}");
        assert!(text.ends_with("verified: no (--no-verify: the node's answer was not checked)\n"));
        let v = serde_json::to_value(&plain).expect("serializes");
        assert_eq!(v["verified"], false);
        assert!(v.get("unverified").is_none());
    }
}
