//! `wallet transfer --to <ADDRESS> --amount <N> [--fee <N>] [--nonce <N>] [--memo <TEXT>] [--wait]`
//!
//! Fetches the chain id and the sender's next nonce from the node (unless given), signs locally,
//! submits, and prints the hash on stdout at once. With `--wait` it follows the transaction on
//! stderr until it is final, rejected, dropped from the mempool, or the timeout passes.
//!
//! With `--wait` the wallet also verifies ([`crate::verify`], unless `--no-verify`): before
//! signing, that the node runs the chain the wallet trusts (and it signs for that chain's id);
//! once final, that the transaction it signed (the hash it computed) is in a block the trusted
//! validators signed.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use ledger_core::api::TxStatus;
use ledger_core::{Address, Amount, ChainId, Hash, Keypair, Nonce, SignedTransaction, Transaction};
use serde::Serialize;

use crate::args::{self, AmountArg, Memo};
use crate::cli::{Ctx, KeyArgs};
use crate::client::{NodeClient, NodeError};
use crate::error::Error;
use crate::output::{Report, describe_status, explain_tx_error};
use crate::progress::Progress;
use crate::verify::{SKIPPED, Verification, Verifier};

/// How often `--wait` asks the node about the transaction (blocks are final within about a second).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipient's address (ldg1...)
    #[arg(long, value_name = "ADDRESS", value_parser = args::address)]
    pub to: Address,

    /// How much to send: whole base units (1500000, 1_500_000), or the chain's display unit with
    /// its symbol (1.5LDG; the dev chain's 1 LDG = 1,000,000 base units)
    #[arg(long, value_name = "AMOUNT", value_parser = args::positive_amount_arg)]
    pub amount: AmountArg,

    /// Fee, in base units or with the unit's symbol, paid to the proposer of the block that
    /// includes the transfer
    #[arg(long, value_name = "AMOUNT", default_value = "1", value_parser = args::amount_arg)]
    pub fee: AmountArg,

    /// The transaction's nonce [default: the account's next nonce, asked from the node]
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,

    /// The chain to sign for [default: the node's chain id]
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<ChainId>,

    /// A note stored with the transfer (at most 256 bytes of UTF-8; public)
    #[arg(long, value_name = "TEXT", value_parser = args::memo)]
    pub memo: Option<Memo>,

    /// Follow the transaction until it is final, rejected or dropped (progress on stderr)
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this many seconds
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        requires = "wait",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub timeout: u64,

    #[command(flatten)]
    pub key: KeyArgs,
}

/// The transfer and where it stands; with `--json` the one object printed.
#[derive(Debug, Serialize)]
struct TransferReport {
    hash: Hash,
    #[serde(flatten)]
    status: TxStatus,
    from: Address,
    to: Address,
    amount: Amount,
    fee: Amount,
    /// `amount` in the chain's display unit, when it has one (`amount` stays base units).
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_display: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fee_display: Option<String>,
    nonce: Nonce,
    chain_id: ChainId,
    #[serde(flatten)]
    verification: Verification,
}

impl Report for TransferReport {
    /// The hash went to stdout as soon as the node took the transfer, and the outcome to stderr.
    fn human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let key = self.key.source()?.load()?;
        let from = key.address();
        if from == self.to {
            return Err(Error::Input(format!(
                "--to {} is the sending account itself",
                self.to
            )));
        }
        let client = ctx.client();
        // Waiting for finality ends in checking it: the chain is settled before anything is
        // signed, so a node of another chain is refused before it gets a transfer.
        let verifier = if self.wait {
            ctx.verifier(&client)?
        } else {
            None
        };
        let displayed = |a: &AmountArg| matches!(a, AmountArg::Display(_));
        // The node's status gives the chain id and its display unit; asked only when needed.
        let status = if verifier.is_none()
            && (self.chain_id.is_none() || displayed(&self.amount) || displayed(&self.fee))
        {
            Some(client.status()?)
        } else {
            // Chain and amounts given, or known from the trusted genesis: sign without asking the
            // node anything it need not know.
            None
        };
        let token = match (&verifier, &status) {
            (Some(v), _) => v.token().cloned(),
            (None, Some(s)) => s.token.clone(),
            (None, None) => None,
        };
        let chain_id = match (self.chain_id.clone(), &verifier, &status) {
            (Some(c), _, _) => c,
            (None, Some(v), _) => v.chain_id().clone(),
            (None, None, Some(s)) => s.chain_id.clone(),
            (None, None, None) => client.status()?.chain_id,
        };
        let amount = self
            .amount
            .resolve(token.as_ref())
            .map_err(|e| Error::Input(format!("--amount {e}")))?;
        if amount == Amount(0) {
            return Err(Error::Input("--amount must be more than zero".into()));
        }
        let fee = self
            .fee
            .resolve(token.as_ref())
            .map_err(|e| Error::Input(format!("--fee {e}")))?;
        let show = |a: Amount| ledger_core::units::describe(a, token.as_ref());
        let nonce = match self.nonce {
            Some(n) => Nonce(n),
            None => client.account(&from)?.next_nonce,
        };
        let signed = self.sign(&key, chain_id.clone(), nonce, amount, fee)?;
        let hash = signed.hash();
        ctx.out.note(&format!(
            "sending {} from {from} to {} (fee {}, nonce {nonce}, chain {chain_id})",
            show(amount),
            self.to,
            show(fee)
        ));

        let submitted = match client.submit(&signed) {
            Ok(s) => s,
            Err(e) => {
                return match e.tx_rejection() {
                    Some(reason) => {
                        ctx.out.human_line(&hash.to_string());
                        Err(Error::Rejected { hash, reason })
                    }
                    None => Err(e.into()),
                };
            }
        };
        if submitted.hash != hash {
            ctx.out.note(&format!(
                "warning: the node reports hash {} for this transaction, computed here as {hash}",
                submitted.hash
            ));
        }
        ctx.out.human_line(&hash.to_string());

        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        let status = match (submitted.status, self.wait) {
            (TxStatus::Pending, true) => follow(&client, hash, deadline, self.timeout)?,
            (TxStatus::Pending, false) => {
                ctx.out.note(&format!(
                    "pending: follow it with 'wallet tx {hash}', or pass --wait next time"
                ));
                TxStatus::Pending
            }
            (done, _) => {
                if !matches!(done, TxStatus::Rejected { .. } | TxStatus::Dropped { .. }) {
                    ctx.out.note(&describe_status(&done));
                }
                done
            }
        };
        let status = match status {
            TxStatus::Rejected { reason } => return Err(Error::Rejected { hash, reason }),
            TxStatus::Dropped { reason } => return Err(Error::Dropped { hash, reason }),
            ok @ (TxStatus::Pending | TxStatus::Final { .. }) => ok,
        };
        let (status, verification) = match (&verifier, status) {
            (Some(v), TxStatus::Final { .. }) => {
                let (status, verification) = verify_final(v, &client, hash, deadline)?;
                ctx.out
                    .note(&format!("verified: {}", verification.describe()));
                (status, verification)
            }
            (Some(_), pending @ TxStatus::Pending) => (
                pending,
                Verification::not("pending: only a final transaction is in a signed block"),
            ),
            (None, status) => (
                status,
                Verification::not(if self.wait {
                    SKIPPED
                } else {
                    "not waited for: only a final transaction is in a signed block (--wait)"
                }),
            ),
            (Some(_), other) => (other, Verification::not(SKIPPED)),
        };
        ctx.out.result(&TransferReport {
            hash,
            status,
            from,
            to: self.to,
            amount,
            fee,
            amount_display: token.as_ref().map(|t| t.format(amount)),
            fee_display: token.as_ref().map(|t| t.format(fee)),
            nonce,
            chain_id,
            verification,
        });
        Ok(())
    }

    /// Builds and signs the transfer, and refuses to submit one that fails the checks any node
    /// would make without looking at state (so a mistake is a usage error, not a rejection).
    fn sign(
        &self,
        key: &Keypair,
        chain_id: ChainId,
        nonce: Nonce,
        amount: Amount,
        fee: Amount,
    ) -> Result<SignedTransaction, Error> {
        let signed = Transaction {
            chain_id: chain_id.clone(),
            from: key.public(),
            to: self.to,
            amount,
            fee,
            nonce,
            memo: self.memo.clone().unwrap_or_default().0,
        }
        .sign(key);
        match signed.clone().verify(&chain_id) {
            Ok(_) => Ok(signed),
            Err(e) => Err(Error::Input(format!(
                "not sending an invalid transfer: {}",
                explain_tx_error(&e)
            ))),
        }
    }
}

/// Checks the final transaction `hash` (the one the wallet signed) against the trusted validators,
/// and returns where the proof puts it. A node that has no proof yet is asked again until the
/// deadline; one that still has none then is not believed.
fn verify_final(
    verifier: &Verifier,
    client: &NodeClient,
    hash: Hash,
    deadline: Instant,
) -> Result<(TxStatus, Verification), Error> {
    loop {
        match client.tx_proof(&hash) {
            Ok(Some(answer)) => {
                // Asked by the hash computed here: a verified answer is the transaction signed here.
                let verified = verifier.check_tx(&hash, &answer)?;
                let status = TxStatus::Final {
                    height: verified.at.header.height,
                    index: verified.index,
                };
                return Ok((status, Verification::by(&verified.at)));
            }
            Ok(None) if Instant::now() >= deadline => return Err(verifier.no_proof(&hash)),
            Err(e @ NodeError::Unreachable { .. }) if Instant::now() >= deadline => {
                return Err(e.into());
            }
            Ok(None) | Err(NodeError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        thread::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Asks the node about `hash` until it is final, rejected or dropped, or the deadline has passed
/// (`timeout_secs` after submission), showing the state on stderr. A node that stops answering is
/// retried until the deadline.
fn follow(
    client: &NodeClient,
    hash: Hash,
    deadline: Instant,
    timeout_secs: u64,
) -> Result<TxStatus, Error> {
    let mut progress = Progress::start();
    let mut last_state = "pending";
    loop {
        let unreachable = match client.tx(&hash) {
            Ok(Some(r)) => match r.status {
                TxStatus::Pending => {
                    last_state = "pending";
                    None
                }
                done => {
                    match done {
                        // The reason comes as the error line; don't print it twice.
                        TxStatus::Rejected { .. } | TxStatus::Dropped { .. } => progress.abandon(),
                        _ => progress.finish(&describe_status(&done)),
                    }
                    return Ok(done);
                }
            },
            Ok(None) => {
                last_state = "unknown to the node";
                None
            }
            Err(e @ NodeError::Unreachable { .. }) => Some(e),
            Err(e) => {
                progress.abandon();
                return Err(e.into());
            }
        };
        progress.update(match unreachable {
            Some(_) => "node unreachable, retrying",
            None => last_state,
        });
        let now = Instant::now();
        if now >= deadline {
            progress.abandon();
            return Err(match unreachable {
                Some(e) => e.into(),
                None => Error::WaitTimeout {
                    hash,
                    waited_secs: timeout_secs,
                    last_status: last_state,
                },
            });
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::{Height, TxError};

    #[test]
    fn the_json_report_is_flat_with_the_status() {
        let r = TransferReport {
            hash: Hash::ZERO,
            status: TxStatus::Final {
                height: Height(5),
                index: 0,
            },
            from: Keypair::dev("account", 0).address(),
            to: Keypair::dev("account", 1).address(),
            amount: Amount(10),
            fee: Amount(1),
            amount_display: Some("0.000010 LDG".into()),
            fee_display: None,
            nonce: Nonce(0),
            chain_id: ChainId::new("dev").expect("valid"),
            verification: Verification::not(SKIPPED),
        };
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["status"], "final");
        assert_eq!(v["height"], 5);
        assert_eq!(v["amount"], 10, "amounts stay integers of base units");
        assert_eq!(v["amount_display"], "0.000010 LDG");
        assert!(v.get("fee_display").is_none());
        assert_eq!(v["hash"], Hash::ZERO.to_hex());

        let v = serde_json::to_value(TxStatus::Rejected {
            reason: TxError::ZeroAmount,
        })
        .expect("serializes");
        assert_eq!(v["reason"]["code"], "zero_amount");
    }

    #[test]
    fn a_transfer_that_no_node_would_take_is_refused_locally() {
        let key = Keypair::dev("account", 0);
        let args = Args {
            to: Keypair::dev("account", 1).address(),
            amount: AmountArg::Base(Amount(u64::MAX)),
            fee: AmountArg::Base(Amount(1)),
            nonce: None,
            chain_id: None,
            memo: None,
            wait: false,
            timeout: 30,
            key: KeyArgs {
                key: None,
                dev: Some(0),
            },
        };
        let e = args
            .sign(
                &key,
                ChainId::new("dev").expect("valid"),
                Nonce(0),
                Amount(u64::MAX),
                Amount(1),
            )
            .expect_err("overflows");
        assert_eq!(
            e.to_string(),
            "not sending an invalid transfer: amount plus fee overflows"
        );
    }
}
