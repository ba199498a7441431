//! Transfers during the nemesis: signed like the load generator's (`load::transfers::sign_transfer`),
//! each sent to a random node through `POST /v1/transactions`, followed with
//! `GET /v1/transactions/{hash}` on random nodes until one answers that it is final; that answer
//! (node, height, index) is what the checks hold every node to.
//!
//! A transfer's content is fixed by (sender, nonce), so sending it again after its node was killed
//! or cut off is idempotent. Each sender keeps at most [`WINDOW`] transfers in flight, which bounds
//! memory and the nonce gap a node's mempool must accept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ledger_core::api::TxStatus;
use ledger_core::{Address, ChainId, Hash, Keypair, SignedTransaction};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::checks::ReportedFinal;
use crate::client::NodeClient;
use crate::cmd::load::transfers::sign_transfer;

/// Transfers in flight per sender.
pub const WINDOW: usize = 16;
/// Timeout of one request: a dead node refuses at once, a live one answers in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Send a transfer that is not final yet again after this long (to another random node).
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// Ask about a transfer at most this often.
const CHECK_EVERY: Duration = Duration::from_millis(300);
/// The loop's tick.
const TICK: Duration = Duration::from_millis(20);
/// Requests per tick for status checks and for resends: a tick stays short even when every node
/// is slow, so the rate and the stop request are honoured.
const CHECKS_PER_TICK: usize = 48;
const RESENDS_PER_TICK: usize = 16;
/// Largest transfer amount (random from 1).
const MAX_AMOUNT: u64 = 1000;

const SENDING: u8 = 0;
const DRAINING: u8 = 1;
const STOP: u8 = 2;

/// What the traffic needs to start.
#[derive(Debug)]
pub struct TrafficConfig {
    pub chain_id: ChainId,
    /// (node index, API URL) of every node.
    pub nodes: Vec<(usize, String)>,
    /// Sender keys with their next nonce.
    pub senders: Vec<(Keypair, u64)>,
    /// Who gets paid (senders and a few fresh accounts).
    pub recipients: Vec<Address>,
    pub rate: u64,
    pub fee: u64,
    pub seed: u64,
    /// Backstop: the loop ends by itself after this long whatever happens.
    pub max_run: Duration,
}

/// Counters the main thread shows while the traffic runs.
#[derive(Debug, Default)]
pub struct Live {
    pub created: AtomicU64,
    pub final_: AtomicU64,
    pub in_flight: AtomicU64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficReport {
    /// Distinct transfers signed and sent.
    pub created: u64,
    /// Submissions, resends included.
    pub submissions: u64,
    /// Transfers some node reported final.
    #[serde(rename = "final")]
    pub final_: u64,
    /// Sent but never reported final by the end.
    pub not_final: u64,
    /// Why submissions failed or were refused, by code (`transport` = no answer).
    pub submit_errors: BTreeMap<String, u64>,
    /// Ticks on which every sender's window was full (finality stalled).
    pub throttled_ticks: u64,
    #[serde(skip)]
    pub finals: Vec<ReportedFinal>,
}

#[derive(Debug)]
pub struct Traffic {
    phase: Arc<AtomicU8>,
    pub live: Arc<Live>,
    handle: JoinHandle<TrafficReport>,
}

impl Traffic {
    pub fn start(config: TrafficConfig) -> Traffic {
        let phase = Arc::new(AtomicU8::new(SENDING));
        let live = Arc::new(Live::default());
        let (p, l) = (phase.clone(), live.clone());
        let handle = std::thread::spawn(move || run(config, &p, &l));
        Traffic {
            phase,
            live,
            handle,
        }
    }

    /// No new transfers; keep following (and resending) the ones in flight.
    pub fn drain(&self) {
        self.phase.store(DRAINING, Ordering::SeqCst);
    }

    pub fn in_flight(&self) -> u64 {
        self.live.in_flight.load(Ordering::SeqCst)
    }

    pub fn finish(self) -> anyhow::Result<TrafficReport> {
        self.phase.store(STOP, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the traffic thread panicked"))
    }
}

struct InFlight {
    tx: SignedTransaction,
    hash: Hash,
    sent: Instant,
    checked: Option<Instant>,
}

struct Sender {
    key: Keypair,
    next_nonce: u64,
    flight: VecDeque<InFlight>,
}

fn run(config: TrafficConfig, phase: &AtomicU8, live: &Live) -> TrafficReport {
    let clients: Vec<(usize, NodeClient)> = config
        .nodes
        .iter()
        .map(|(i, u)| (*i, NodeClient::new(u, REQUEST_TIMEOUT)))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7472_6166_6669_6321);
    let mut senders: Vec<Sender> = config
        .senders
        .into_iter()
        .map(|(key, next_nonce)| Sender {
            key,
            next_nonce,
            flight: VecDeque::new(),
        })
        .collect();
    let mut report = TrafficReport::default();
    if clients.is_empty() || senders.is_empty() || config.recipients.is_empty() {
        return report;
    }
    let started = Instant::now();
    let mut tokens = 0.0f64;
    let mut last = Instant::now();
    let mut next_sender = 0usize;
    let mut check_from = 0usize;
    let rate = config.rate as f64;
    while phase.load(Ordering::SeqCst) != STOP && started.elapsed() < config.max_run {
        let tick = Instant::now();
        if phase.load(Ordering::SeqCst) == SENDING {
            // Up to one second of credit: after a stall the rate catches up, but not in a burst.
            tokens = (tokens + rate * last.elapsed().as_secs_f64()).min(rate.max(1.0));
            while tokens >= 1.0 {
                let Some(s) = (0..senders.len())
                    .map(|k| (next_sender + k) % senders.len())
                    .find(|&s| senders[s].flight.len() < WINDOW)
                else {
                    report.throttled_ticks += 1;
                    break;
                };
                next_sender = (s + 1) % senders.len();
                let sender = &mut senders[s];
                let me = sender.key.address();
                // A random recipient other than the sender (the next one when the draw is it).
                let n = config.recipients.len();
                let k = rng.random_range(0..n);
                let to = if config.recipients[k] == me {
                    config.recipients[(k + 1) % n]
                } else {
                    config.recipients[k]
                };
                let tx = sign_transfer(
                    &config.chain_id,
                    &sender.key,
                    to,
                    rng.random_range(1..=MAX_AMOUNT),
                    config.fee,
                    sender.next_nonce,
                );
                sender.next_nonce += 1;
                let hash = tx.hash();
                let node = rng.random_range(0..clients.len());
                submit(&clients[node], &tx, &mut report);
                sender.flight.push_back(InFlight {
                    tx,
                    hash,
                    sent: Instant::now(),
                    checked: None,
                });
                report.created += 1;
                tokens -= 1.0;
            }
        }
        last = tick;

        // Follow finality from the front of each sender's queue: nonces become final in order.
        let mut budget = CHECKS_PER_TICK;
        let n_senders = senders.len();
        for k in 0..n_senders {
            let s = &mut senders[(check_from + k) % n_senders];
            while budget > 0 {
                let Some(f) = s.flight.front_mut() else { break };
                if f.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
                    break;
                }
                budget -= 1;
                f.checked = Some(Instant::now());
                let (node, c) = &clients[rng.random_range(0..clients.len())];
                match c.transaction(&f.hash).map(|r| r.status) {
                    Ok(TxStatus::Final { height, index }) => {
                        report.finals.push(ReportedFinal {
                            hash: f.hash,
                            node: *node,
                            height: height.0,
                            index,
                        });
                        s.flight.pop_front();
                    }
                    _ => break,
                }
            }
        }
        check_from = check_from.wrapping_add(1);

        let mut budget = RESENDS_PER_TICK;
        'resend: for s in &mut senders {
            for f in s.flight.iter_mut() {
                if budget == 0 {
                    break 'resend;
                }
                if f.sent.elapsed() >= RESEND_AFTER {
                    budget -= 1;
                    let node = rng.random_range(0..clients.len());
                    submit(&clients[node], &f.tx, &mut report);
                    f.sent = Instant::now();
                }
            }
        }

        let in_flight: usize = senders.iter().map(|s| s.flight.len()).sum();
        live.in_flight.store(in_flight as u64, Ordering::SeqCst);
        live.created.store(report.created, Ordering::SeqCst);
        live.final_
            .store(report.finals.len() as u64, Ordering::SeqCst);
        if let Some(rest) = TICK.checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    report.final_ = report.finals.len() as u64;
    report.not_final = senders.iter().map(|s| s.flight.len() as u64).sum();
    report
}

fn submit(client: &(usize, NodeClient), tx: &SignedTransaction, report: &mut TrafficReport) {
    report.submissions += 1;
    let reason = match client.1.submit(tx) {
        Ok(r) => match r.status {
            // Final already (a resend of a transfer that made it): the next check records where.
            TxStatus::Pending | TxStatus::Final { .. } => return,
            TxStatus::Rejected { reason } => reason.code().to_string(),
            TxStatus::Dropped { reason } => reason.code().to_string(),
        },
        Err(e) => e.reason_code(),
    };
    *report.submit_errors.entry(reason).or_insert(0) += 1;
}
