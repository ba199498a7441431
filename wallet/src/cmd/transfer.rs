//! `wallet transfer --to <ADDRESS> --amount <N> [--fee <N>] [--nonce <N>] [--memo <TEXT>] [--wait]`
//!
//! Fetches the chain id and the sender's next nonce from the node (unless given), signs locally,
//! submits, and prints the hash on stdout at once. With `--wait` it follows the transaction on
//! stderr until it is final, rejected, or the timeout passes.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use ledger_core::api::TxStatus;
use ledger_core::{Address, Amount, ChainId, Hash, Keypair, Nonce, SignedTransaction, Transaction};
use serde::Serialize;

use crate::args::{self, Memo};
use crate::cli::{Ctx, KeyArgs};
use crate::client::{NodeClient, NodeError};
use crate::error::Error;
use crate::output::{Report, describe_status, explain_tx_error};
use crate::progress::Progress;

/// How often `--wait` asks the node about the transaction (blocks are final within about a second).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipient's address (ldg1...)
    #[arg(long, value_name = "ADDRESS", value_parser = args::address)]
    pub to: Address,

    /// How much to send, in whole base units (digits, optionally grouped with _: 1_000)
    #[arg(long, value_name = "N", value_parser = args::positive_amount)]
    pub amount: Amount,

    /// Fee in base units, paid to the proposer of the block that includes the transfer
    #[arg(long, value_name = "N", default_value = "1", value_parser = args::amount)]
    pub fee: Amount,

    /// The transaction's nonce [default: the account's next nonce, asked from the node]
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,

    /// The chain to sign for [default: the node's chain id]
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<ChainId>,

    /// A note stored with the transfer (at most 256 bytes of UTF-8; public)
    #[arg(long, value_name = "TEXT", value_parser = args::memo)]
    pub memo: Option<Memo>,

    /// Follow the transaction until it is final or rejected (progress on stderr)
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
    nonce: Nonce,
    chain_id: ChainId,
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
        let chain_id = match self.chain_id.clone() {
            Some(c) => c,
            None => client.status()?.chain_id,
        };
        let nonce = match self.nonce {
            Some(n) => Nonce(n),
            None => client.account(&from)?.next_nonce,
        };
        let signed = self.sign(&key, chain_id.clone(), nonce)?;
        let hash = signed.hash();
        ctx.out.note(&format!(
            "sending {} from {from} to {} (fee {}, nonce {nonce}, chain {chain_id})",
            self.amount, self.to, self.fee
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

        let status = match (submitted.status, self.wait) {
            (TxStatus::Pending, true) => follow(&client, hash, Duration::from_secs(self.timeout))?,
            (TxStatus::Pending, false) => {
                ctx.out.note(&format!(
                    "pending: follow it with 'wallet tx {hash}', or pass --wait next time"
                ));
                TxStatus::Pending
            }
            (done, _) => {
                if !matches!(done, TxStatus::Rejected { .. }) {
                    ctx.out.note(&describe_status(&done));
                }
                done
            }
        };
        if let TxStatus::Rejected { reason } = status {
            return Err(Error::Rejected { hash, reason });
        }
        ctx.out.result(&TransferReport {
            hash,
            status,
            from,
            to: self.to,
            amount: self.amount,
            fee: self.fee,
            nonce,
            chain_id,
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
    ) -> Result<SignedTransaction, Error> {
        let signed = Transaction {
            chain_id: chain_id.clone(),
            from: key.public(),
            to: self.to,
            amount: self.amount,
            fee: self.fee,
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

/// Asks the node about `hash` until it is final or rejected, or `timeout` has passed, showing the
/// state on stderr. A node that stops answering is retried until the deadline.
fn follow(client: &NodeClient, hash: Hash, timeout: Duration) -> Result<TxStatus, Error> {
    let mut progress = Progress::start();
    let deadline = Instant::now() + timeout;
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
                        TxStatus::Rejected { .. } => progress.abandon(),
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
                    waited_secs: timeout.as_secs(),
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
            nonce: Nonce(0),
            chain_id: ChainId::new("dev").expect("valid"),
        };
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["status"], "final");
        assert_eq!(v["height"], 5);
        assert_eq!(v["amount"], 10);
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
            amount: Amount(u64::MAX),
            fee: Amount(1),
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
            .sign(&key, ChainId::new("dev").expect("valid"), Nonce(0))
            .expect_err("overflows");
        assert_eq!(
            e.to_string(),
            "not sending an invalid transfer: amount plus fee overflows"
        );
    }
}
