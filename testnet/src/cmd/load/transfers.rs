//! Transfer load: fund, pre-sign, submit on schedule, follow finality, report.
//!
//! Each load account always goes to the same target node (account `a` -> target `a % targets`) and
//! its transfers are batched in nonce order, so a node receives every account's nonces in order and
//! gossip ordering between nodes cannot make a transfer arrive before its predecessor.
//!
//! Finality is observed by polling committed blocks on one node (`/v1/blocks?from=&to=` every 50 ms);
//! a transfer's latency is the time from its batch's **scheduled** send time (at `--rate`; the
//! actual start of the request at `--rate 0`) to the poll that saw its block, so it includes the
//! submit request, up to one poll interval, and any time the generator itself fell behind its
//! schedule: a client that cannot keep up shows as latency, not as a lower rate.
//!
//! The command exits non-zero (exit code 3) when any planned transfer was refused or not final by
//! the end of the drain: a measurement that lost transfers is not a measurement of the rate.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledger_core::api::{AccountResponse, TxStatus};
use ledger_core::{Address, Amount, ChainId, Hash, Keypair, Nonce, SignedTransaction, Transaction};
use serde::Serialize;

use super::stats::{Percentiles, percentiles};
use super::{LoadArgs, MAX_TOTAL_TXS, Target, rss_mb};
use crate::client::{BatchEntry, ClientError, NodeClient};
use crate::cmd::interrupts;
use crate::output::Progress;

/// Timeout of one batch submission.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of reads (accounts, status, blocks).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of one batch when the node is unreachable or busy (429/503).
const SUBMIT_ATTEMPTS: u32 = 5;
/// Most transfers one load account sends in a run: the node admits a bounded number of pending
/// transactions per account (mempool `max_txs_per_account`, `nonce_window`: 2000 by default).
const MAX_TXS_PER_ACCOUNT: u64 = 1000;
/// Genesis dev accounts probed as funders (`Keypair::dev("account", i)`).
const MAX_FUNDERS: u32 = 256;
/// How long funding may take to become final.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(120);
/// Blocks fetched per range request by the finality tracker.
const TRACK_RANGE: u64 = 20;
/// The tracker's poll interval.
const TRACK_INTERVAL: Duration = Duration::from_millis(50);
/// Amount of every load transfer.
const TRANSFER_AMOUNT: u64 = 1;

const PLANNED: u8 = 0;
const ACCEPTED: u8 = 1;
const REJECTED: u8 = 2;

pub fn run(targets: &[Target], args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let client = NodeClient::new(&targets[0].url, READ_TIMEOUT);
    let status = client
        .status()
        .with_context(|| format!("cannot reach {}", targets[0].url))?;
    let chain_id = status.chain_id.clone();

    let total = if args.rate() > 0 {
        args.rate().saturating_mul(args.duration)
    } else {
        args.max_txs
    };
    if total > MAX_TOTAL_TXS {
        bail!(
            "{total} transfers is more than the {MAX_TOTAL_TXS} one run pre-signs; lower --rate or --duration"
        );
    }
    let accounts = args.accounts as usize;
    let per_account = total.div_ceil(accounts as u64);
    if per_account > MAX_TXS_PER_ACCOUNT {
        bail!(
            "{per_account} transfers per load account exceeds {MAX_TXS_PER_ACCOUNT} (the node bounds pending \
             transactions per account); use --accounts {} or more",
            total.div_ceil(MAX_TXS_PER_ACCOUNT)
        );
    }
    // At low rates, smaller batches keep submission smooth: at least ~20 requests per second.
    let batch = if args.rate() > 0 {
        (args.rate() / 20).clamp(1, args.batch)
    } else {
        args.batch
    } as usize;
    let concurrency = args
        .concurrency
        .map_or((2 * targets.len()).max(4), |c| c as usize);
    let labels: Vec<&str> = targets.iter().map(|t| t.label.as_str()).collect();
    crate::errln!(
        "load: {total} transfers {} over {} s to {} ({} threads, batches of {batch}, {accounts} accounts, chain {chain_id})",
        if args.rate() > 0 {
            format!("at {} tx/s", args.rate())
        } else {
            "as fast as possible".into()
        },
        args.duration,
        labels.join(", "),
        concurrency
    );

    // Funding: every load account must afford its transfers before the clock starts.
    let t_fund = Instant::now();
    let keys: Vec<Keypair> = (0..args.accounts)
        .map(|j| Keypair::dev("load", j))
        .collect();
    let addresses: Vec<Address> = keys.iter().map(Keypair::address).collect();
    let infos = fetch_accounts(&targets[0].url, &addresses)?;
    let counts: Vec<u64> = (0..accounts as u64)
        .map(|a| total / accounts as u64 + u64::from(a < total % accounts as u64))
        .collect();
    let needs: Vec<u64> = counts
        .iter()
        .map(|c| c.saturating_mul(TRANSFER_AMOUNT + args.fee))
        .collect();
    fund(&client, &chain_id, &addresses, &infos, &needs, args)?;
    let funding = t_fund.elapsed();

    // Pre-sign and serialize everything before the clock starts.
    let t_sign = Instant::now();
    let start_nonces: Vec<u64> = infos.iter().map(|i| i.next_nonce.0).collect();
    let plan = presign(
        &chain_id,
        &keys,
        &start_nonces,
        total as usize,
        args.fee,
        targets.len(),
        batch,
    )?;
    let presign_time = t_sign.elapsed();
    crate::errln!(
        "pre-signed {} transfers in {:.2} s ({} batches, {} MB of JSON); funding took {:.2} s",
        plan.total,
        presign_time.as_secs_f64(),
        plan.batches.len(),
        plan.batches.iter().map(|b| b.body.len()).sum::<usize>() / (1024 * 1024),
        funding.as_secs_f64()
    );

    let start_height = client
        .status()
        .context("cannot read the head before starting")?
        .height
        .0;
    let shared = Shared::new(&plan);
    drive(&shared, targets, args, concurrency, start_height);
    let report = summarize(&shared, targets, args, batch, funding, presign_time);
    print_report(&report, args.json)?;
    let lost = report.rejected + report.not_final;
    if lost > 0 {
        crate::errln!(
            "error: {lost} of {} submitted transfers were refused or not final: the figures above \
             describe a run that lost transfers",
            report.submitted
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// Balances and next nonces of `addresses`, fetched in parallel. An unknown account is empty.
fn fetch_accounts(url: &str, addresses: &[Address]) -> anyhow::Result<Vec<AccountResponse>> {
    const THREADS: usize = 16;
    let chunk = addresses.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let hs: Vec<_> = addresses
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let c = NodeClient::new(url, READ_TIMEOUT);
                    part.iter()
                        .map(|a| account_or_empty(&c, a))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(addresses.len());
        for h in hs {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("account fetch thread panicked"))??,
            );
        }
        Ok(out)
    })
}

pub(crate) fn account_or_empty(c: &NodeClient, a: &Address) -> anyhow::Result<AccountResponse> {
    match c.account(a) {
        Ok(r) => Ok(r),
        Err(e) if e.is_not_found() => Ok(AccountResponse {
            address: *a,
            balance: Amount(0),
            nonce: Nonce(0),
            next_nonce: Nonce(0),
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read account {a}")),
    }
}

/// Tops up every load account below its need from the genesis dev accounts and waits until final.
fn fund(
    client: &NodeClient,
    chain_id: &ChainId,
    addresses: &[Address],
    infos: &[AccountResponse],
    needs: &[u64],
    args: &LoadArgs,
) -> anyhow::Result<()> {
    let short: Vec<(usize, u64)> = (0..addresses.len())
        .filter(|&a| infos[a].balance.0 < needs[a])
        .map(|a| (a, needs[a] - infos[a].balance.0))
        .collect();
    if short.is_empty() {
        crate::errln!("load accounts are funded already");
        return Ok(());
    }
    let funders = discover_funders(client, args.fee)?;
    let mut spend = vec![0u128; funders.len()];
    let mut next: Vec<u64> = funders.iter().map(|(_, a)| a.next_nonce.0).collect();
    let mut txs = Vec::with_capacity(short.len());
    for (k, &(a, amount)) in short.iter().enumerate() {
        let f = k % funders.len();
        spend[f] += u128::from(amount) + u128::from(args.fee);
        let (key, _) = &funders[f];
        txs.push(sign_transfer(
            chain_id,
            key,
            addresses[a],
            amount,
            args.fee,
            next[f],
        ));
        next[f] += 1;
    }
    for (f, (_, info)) in funders.iter().enumerate() {
        if spend[f] > u128::from(info.balance.0) {
            bail!(
                "dev account {} has {} and would need {} to fund the load accounts; use fewer --accounts or a shorter run",
                info.address,
                info.balance,
                spend[f]
            );
        }
    }
    crate::errln!(
        "funding {} load accounts from {} genesis dev accounts",
        short.len(),
        funders.len()
    );
    for chunk in txs.chunks(500) {
        let body = serde_json::to_vec(chunk).context("cannot serialize funding transfers")?;
        let mut attempt = 0;
        loop {
            match client.submit_batch_raw(&body) {
                Ok(entries) => {
                    // A retried batch may be answered "already known" for transfers the first attempt
                    // delivered; only a first answer's rejection is a real refusal.
                    if attempt == 0
                        && let Some(reason) = entries.iter().find_map(rejection)
                    {
                        bail!("the node refused a funding transfer: {reason}");
                    }
                    break;
                }
                Err(e) if e.is_transient() && attempt + 1 < SUBMIT_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => return Err(e).context("cannot submit funding transfers"),
            }
        }
    }
    let deadline = Instant::now() + FUNDING_TIMEOUT;
    let mut progress = Progress::new(Duration::from_secs(5));
    loop {
        let mut done = 0;
        for (f, (key, _)) in funders.iter().enumerate() {
            match client.account(&key.address()) {
                Ok(a) if a.nonce.0 >= next[f] => done += 1,
                _ => {}
            }
        }
        if done == funders.len() {
            progress.finish();
            return Ok(());
        }
        if interrupts() > 0 {
            bail!("interrupted while funding");
        }
        if Instant::now() >= deadline {
            bail!(
                "funding transfers were not final after {} s",
                FUNDING_TIMEOUT.as_secs()
            );
        }
        progress.set(format!(
            "waiting for funding to be final: {done}/{} funders done",
            funders.len()
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The genesis dev accounts (`Keypair::dev("account", i)`) that hold more than 1000 fees; probing stops after a few
/// empty ones in a row.
pub(crate) fn discover_funders(
    client: &NodeClient,
    fee: u64,
) -> anyhow::Result<Vec<(Keypair, AccountResponse)>> {
    let mut out = Vec::new();
    let mut empty_in_a_row = 0;
    for i in 0..MAX_FUNDERS {
        let key = Keypair::dev("account", i);
        let a = account_or_empty(client, &key.address())?;
        if a.balance.0 > fee.saturating_mul(1000) {
            out.push((key, a));
            empty_in_a_row = 0;
        } else {
            empty_in_a_row += 1;
            if empty_in_a_row >= 4 {
                break;
            }
        }
    }
    if out.is_empty() {
        bail!(
            "no funded genesis dev account (Keypair::dev(\"account\", i)) on this chain to fund the load accounts"
        );
    }
    Ok(out)
}

/// A signed transfer of `amount` from `key` to `to` (no memo): how every testnet transfer is made
/// (the load, its funding, and `testnet chaos`).
pub(crate) fn sign_transfer(
    chain_id: &ChainId,
    key: &Keypair,
    to: Address,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> SignedTransaction {
    Transaction {
        chain_id: chain_id.clone(),
        from: key.public(),
        to,
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        memo: Vec::new(),
    }
    .sign(key)
}

fn rejection(e: &BatchEntry) -> Option<String> {
    match e {
        BatchEntry::Submitted(r) => match &r.status {
            TxStatus::Rejected { reason } => Some(format!("{} ({})", reason, reason.code())),
            TxStatus::Dropped { reason } => Some(format!("{} ({})", reason, reason.code())),
            _ => None,
        },
        other => other
            .error()
            .map(|api| format!("{} ({})", api.message, api.code)),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(5))
}

/// Every transfer signed and every batch serialized.
struct Plan {
    total: usize,
    batches: Vec<Batch>,
    /// Transfer hash -> transfer id.
    index: HashMap<Hash, u32>,
}

struct Batch {
    target: usize,
    /// Transfers before this batch in submission order: its due time is `first_seq / rate`.
    first_seq: u64,
    ids: Vec<u32>,
    body: Vec<u8>,
}

/// Transfer `k` is account `a = k % A`'s transfer number `k / A`, to account `a + 1`.
fn presign(
    chain_id: &ChainId,
    keys: &[Keypair],
    start_nonces: &[u64],
    total: usize,
    fee: u64,
    targets: usize,
    batch: usize,
) -> anyhow::Result<Plan> {
    let n_acc = keys.len();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = total.div_ceil(threads).max(1);
    let signed: Vec<(SignedTransaction, Hash)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..total)
            .step_by(chunk)
            .map(|from| {
                let to = (from + chunk).min(total);
                s.spawn(move || {
                    (from..to)
                        .map(|k| {
                            let a = k % n_acc;
                            let key = &keys[a];
                            let stx = sign_transfer(
                                chain_id,
                                key,
                                keys[(a + 1) % n_acc].address(),
                                TRANSFER_AMOUNT,
                                fee,
                                start_nonces[a] + (k / n_acc) as u64,
                            );
                            let h = stx.hash();
                            (stx, h)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(total);
        for h in hs {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))?,
            );
        }
        anyhow::Ok(out)
    })?;
    // Per target, its accounts' transfers in nonce order, cut into batches; then the targets' batches
    // interleaved so every node gets an even share over time.
    let mut per_target: Vec<Vec<Vec<u32>>> = vec![Vec::new(); targets];
    for (t, list) in per_target.iter_mut().enumerate() {
        let ids: Vec<u32> = (0..signed.len() as u32)
            .filter(|&k| (k as usize % n_acc) % targets == t)
            .collect();
        *list = ids.chunks(batch).map(<[u32]>::to_vec).collect();
    }
    let mut order: Vec<(usize, Vec<u32>)> = Vec::new();
    let rounds = per_target.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rounds {
        for (t, list) in per_target.iter_mut().enumerate() {
            if let Some(ids) = list.get_mut(r) {
                order.push((t, std::mem::take(ids)));
            }
        }
    }
    let mut seq = 0u64;
    let mut batches: Vec<Batch> = order
        .into_iter()
        .map(|(target, ids)| {
            let b = Batch {
                target,
                first_seq: seq,
                ids,
                body: Vec::new(),
            };
            seq += b.ids.len() as u64;
            b
        })
        .collect();
    let per = batches.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in batches.chunks_mut(per) {
            let signed = &signed;
            s.spawn(move || {
                for b in part {
                    let txs: Vec<&SignedTransaction> =
                        b.ids.iter().map(|&i| &signed[i as usize].0).collect();
                    // Serializing plain structs into a Vec cannot fail.
                    b.body = serde_json::to_vec(&txs).unwrap_or_default();
                }
            });
        }
    });
    let index = signed
        .iter()
        .enumerate()
        .map(|(i, (_, h))| (*h, i as u32))
        .collect();
    Ok(Plan {
        total: signed.len(),
        batches,
        index,
    })
}

/// What the threads share. Times are microseconds since `t0` plus one (0 = not yet).
struct Shared<'a> {
    plan: &'a Plan,
    t0: Instant,
    next_batch: AtomicUsize,
    submit_us: Vec<AtomicU64>,
    final_us: Vec<AtomicU64>,
    outcome: Vec<AtomicU8>,
    reasons: Mutex<BTreeMap<String, u64>>,
    senders_left: AtomicUsize,
    stop_senders: AtomicBool,
    stop_tracker: AtomicBool,
    tracker_errors: AtomicU64,
    tracker_last_error: Mutex<Option<String>>,
}

impl<'a> Shared<'a> {
    fn new(plan: &'a Plan) -> Shared<'a> {
        let n = plan.total;
        Shared {
            plan,
            t0: Instant::now(),
            next_batch: AtomicUsize::new(0),
            submit_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            final_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            outcome: (0..n).map(|_| AtomicU8::new(PLANNED)).collect(),
            reasons: Mutex::new(BTreeMap::new()),
            senders_left: AtomicUsize::new(0),
            stop_senders: AtomicBool::new(false),
            stop_tracker: AtomicBool::new(false),
            tracker_errors: AtomicU64::new(0),
            tracker_last_error: Mutex::new(None),
        }
    }

    fn stamp(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64 + 1
    }

    fn count_reason(&self, reason: String, n: u64) {
        if let Ok(mut m) = self.reasons.lock() {
            *m.entry(reason).or_insert(0) += n;
        }
    }

    fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for i in 0..self.plan.total {
            let sent = self.submit_us[i].load(Ordering::Relaxed) > 0;
            let fin = self.final_us[i].load(Ordering::Relaxed) > 0;
            let o = self.outcome[i].load(Ordering::Relaxed);
            c.sent += u64::from(sent);
            c.final_ += u64::from(fin);
            c.accepted += u64::from(o == ACCEPTED);
            c.rejected += u64::from(o == REJECTED && !fin);
            c.pending += u64::from(o == ACCEPTED && !fin);
        }
        c
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    accepted: u64,
    rejected: u64,
    final_: u64,
    /// Accepted and not final yet.
    pending: u64,
}

/// Runs the senders and the tracker, shows progress, waits for the drain.
fn drive(
    sh: &Shared<'_>,
    targets: &[Target],
    args: &LoadArgs,
    concurrency: usize,
    start_height: u64,
) {
    let rate = args.rate();
    // A late schedule may finish a little after --duration; past this everything stops.
    let send_end = sh.t0
        + Duration::from_secs(args.duration)
        + if rate > 0 {
            Duration::from_secs(args.duration / 5 + 1)
        } else {
            Duration::ZERO
        };
    sh.senders_left.store(concurrency, Ordering::SeqCst);
    std::thread::scope(|s| {
        s.spawn(|| tracker(sh, targets, start_height));
        for _ in 0..concurrency {
            s.spawn(|| {
                sender(sh, targets, rate, send_end);
                sh.senders_left.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let mut progress = Progress::new(Duration::from_secs(2));
        let mut drain_start: Option<Instant> = None;
        let mut last = (Instant::now(), 0u64, 0u64);
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let c = sh.counts();
            let senders_done = sh.senders_left.load(Ordering::SeqCst) == 0;
            if interrupts() > 0 {
                sh.stop_senders.store(true, Ordering::SeqCst);
            }
            let elapsed = sh.t0.elapsed().as_secs_f64();
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let (sent_rate, final_rate) = (
                (c.sent - last.1) as f64 / dt,
                (c.final_ - last.2) as f64 / dt,
            );
            last = (Instant::now(), c.sent, c.final_);
            let phase = if senders_done {
                "draining"
            } else {
                "submitting"
            };
            progress.set(format!(
                "{phase} t={elapsed:.1}s sent {} ({sent_rate:.0}/s) accepted {} rejected {} final {} ({final_rate:.0}/s) waiting {}",
                c.sent, c.accepted, c.rejected, c.final_, c.pending
            ));
            if senders_done {
                let started = *drain_start.get_or_insert_with(Instant::now);
                let out_of_time = started.elapsed() >= Duration::from_secs(args.drain_secs);
                if c.pending == 0 || out_of_time || interrupts() > 0 {
                    break;
                }
            }
        }
        progress.finish();
        sh.stop_tracker.store(true, Ordering::SeqCst);
    });
}

fn sender(sh: &Shared<'_>, targets: &[Target], rate: u64, end: Instant) {
    let clients: Vec<NodeClient> = targets
        .iter()
        .map(|t| NodeClient::new(&t.url, SUBMIT_TIMEOUT))
        .collect();
    let batches = &sh.plan.batches;
    loop {
        if sh.stop_senders.load(Ordering::Relaxed) || Instant::now() >= end {
            return;
        }
        let i = sh.next_batch.fetch_add(1, Ordering::Relaxed);
        let Some(b) = batches.get(i) else {
            return;
        };
        // The scheduled send time at a fixed rate: latency counts from it, so a sender that
        // falls behind shows it (coordinated omission would hide it).
        let scheduled =
            (rate > 0).then(|| Duration::from_secs_f64(b.first_seq as f64 / rate as f64));
        if let Some(offset) = scheduled {
            let due = sh.t0 + offset;
            while Instant::now() < due {
                if sh.stop_senders.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
            }
        }
        let now = scheduled.map_or_else(|| sh.stamp(), |offset| offset.as_micros() as u64 + 1);
        for &id in &b.ids {
            sh.submit_us[id as usize].store(now, Ordering::Relaxed);
        }
        match submit_with_retry(&clients[b.target], &b.body) {
            Ok(entries) => {
                if entries.len() != b.ids.len() {
                    sh.count_reason("answer_length_mismatch".into(), b.ids.len() as u64);
                }
                for (k, &id) in b.ids.iter().enumerate() {
                    let outcome = match entries.get(k) {
                        Some(BatchEntry::Submitted(r)) => match &r.status {
                            TxStatus::Pending | TxStatus::Final { .. } => ACCEPTED,
                            TxStatus::Rejected { reason } => {
                                sh.count_reason(reason.code().to_string(), 1);
                                REJECTED
                            }
                            TxStatus::Dropped { reason } => {
                                sh.count_reason(reason.code().to_string(), 1);
                                REJECTED
                            }
                        },
                        Some(other) => {
                            let code = other
                                .error()
                                .map_or_else(|| "unknown".to_string(), |e| e.code.clone());
                            sh.count_reason(code, 1);
                            REJECTED
                        }
                        None => REJECTED,
                    };
                    sh.outcome[id as usize].store(outcome, Ordering::Relaxed);
                }
            }
            Err(e) => {
                sh.count_reason(e.reason_code(), b.ids.len() as u64);
                for &id in &b.ids {
                    sh.outcome[id as usize].store(REJECTED, Ordering::Relaxed);
                }
            }
        }
    }
}

fn submit_with_retry(client: &NodeClient, body: &[u8]) -> Result<Vec<BatchEntry>, ClientError> {
    let mut attempt = 0;
    loop {
        match client.submit_batch_raw(body) {
            Err(e) if e.is_transient() && attempt + 1 < SUBMIT_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(backoff(attempt));
            }
            other => return other,
        }
    }
}

/// Follows committed blocks from `start_height` and timestamps every load transfer they contain.
/// Switches to the next target after repeated failures (the tracked node may be killed in a test).
fn tracker(sh: &Shared<'_>, targets: &[Target], start_height: u64) {
    let clients: Vec<NodeClient> = targets
        .iter()
        .map(|t| NodeClient::new(&t.url, READ_TIMEOUT))
        .collect();
    let mut cur = 0;
    let mut cursor = start_height;
    let mut failures = 0;
    while !sh.stop_tracker.load(Ordering::Relaxed) {
        let tick = Instant::now();
        match poll_blocks(sh, &clients[cur], &mut cursor) {
            Ok(()) => failures = 0,
            Err(e) => {
                sh.tracker_errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = sh.tracker_last_error.lock() {
                    *last = Some(e.to_string());
                }
                failures += 1;
                if failures >= 3 {
                    cur = (cur + 1) % clients.len();
                    failures = 0;
                }
            }
        }
        if let Some(rest) = TRACK_INTERVAL.checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn poll_blocks(sh: &Shared<'_>, client: &NodeClient, cursor: &mut u64) -> Result<(), ClientError> {
    let head = client.status()?.height.0;
    // Bounded catch-up per poll, so a stop request is seen soon.
    for _ in 0..50 {
        if *cursor >= head || sh.stop_tracker.load(Ordering::Relaxed) {
            break;
        }
        let to = head.min(*cursor + TRACK_RANGE);
        let blocks = client.blocks_light(*cursor + 1, to)?;
        let now = sh.stamp();
        let mut advanced = false;
        for b in blocks {
            if b.header.height.0 != *cursor + 1 {
                // Not the next block: fetch again from the cursor next time.
                break;
            }
            for tx in &b.txs {
                if let Some(&id) = sh.plan.index.get(&tx.hash) {
                    let _ = sh.final_us[id as usize].compare_exchange(
                        0,
                        now,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
            *cursor = b.header.height.0;
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    targets: Vec<String>,
    target_rate: u64,
    duration_s: u64,
    accounts: u32,
    batch: usize,
    planned: u64,
    submitted: u64,
    accepted: u64,
    /// Refused at submission and never final.
    rejected: u64,
    rejected_reasons: BTreeMap<String, u64>,
    #[serde(rename = "final")]
    final_: u64,
    /// Accepted but not final when the drain ended.
    not_final: u64,
    submit_window_s: f64,
    submit_rate: f64,
    /// First submission to last finality.
    final_window_s: f64,
    final_tps: f64,
    latency: Percentiles,
    funding_s: f64,
    presign_s: f64,
    tracker_errors: u64,
    tracker_last_error: Option<String>,
    rss_mb: BTreeMap<String, u64>,
    rss_mb_max: Option<u64>,
}

fn summarize(
    sh: &Shared<'_>,
    targets: &[Target],
    args: &LoadArgs,
    batch: usize,
    funding: Duration,
    presign: Duration,
) -> Report {
    let c = sh.counts();
    let mut lat = Vec::with_capacity(c.final_ as usize);
    let (mut first_submit, mut last_submit, mut last_final) = (u64::MAX, 0u64, 0u64);
    for i in 0..sh.plan.total {
        let s = sh.submit_us[i].load(Ordering::Relaxed);
        let f = sh.final_us[i].load(Ordering::Relaxed);
        if s > 0 {
            first_submit = first_submit.min(s);
            last_submit = last_submit.max(s);
        }
        if s > 0 && f > 0 {
            lat.push(f.saturating_sub(s));
            last_final = last_final.max(f);
        }
    }
    let secs = |a: u64, b: u64| {
        if b > a && a != u64::MAX {
            (b - a) as f64 / 1e6
        } else {
            0.0
        }
    };
    let submit_window_s = secs(first_submit, last_submit);
    let final_window_s = secs(first_submit, last_final);
    let rss = rss_mb(targets);
    Report {
        mode: "transfers",
        targets: targets.iter().map(|t| t.url.clone()).collect(),
        target_rate: args.rate(),
        duration_s: args.duration,
        accounts: args.accounts,
        batch,
        planned: sh.plan.total as u64,
        submitted: c.sent,
        accepted: c.accepted,
        rejected: c.rejected,
        rejected_reasons: sh.reasons.lock().map(|m| m.clone()).unwrap_or_default(),
        final_: c.final_,
        not_final: c.pending,
        submit_window_s,
        submit_rate: if submit_window_s > 0.0 {
            c.sent as f64 / submit_window_s
        } else {
            0.0
        },
        final_window_s,
        final_tps: if final_window_s > 0.0 {
            c.final_ as f64 / final_window_s
        } else {
            0.0
        },
        latency: percentiles(&mut lat),
        funding_s: funding.as_secs_f64(),
        presign_s: presign.as_secs_f64(),
        tracker_errors: sh.tracker_errors.load(Ordering::Relaxed),
        tracker_last_error: sh.tracker_last_error.lock().ok().and_then(|e| e.clone()),
        rss_mb_max: rss.values().copied().max(),
        rss_mb: rss,
    }
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    crate::outln!("planned      {}", r.planned);
    crate::outln!(
        "submitted    {} ({:.0} tx/s over {:.2} s)",
        r.submitted,
        r.submit_rate,
        r.submit_window_s
    );
    crate::outln!("final        {}", r.final_);
    crate::outln!("rejected     {}", r.rejected);
    for (reason, n) in &r.rejected_reasons {
        crate::outln!("  {reason}: {n}");
    }
    if r.not_final > 0 {
        crate::outln!(
            "not final    {} (accepted, still not final when the drain ended)",
            r.not_final
        );
    }
    crate::outln!(
        "throughput   {:.1} final tx/s ({} final in {:.2} s from first submit to last final)",
        r.final_tps,
        r.final_,
        r.final_window_s
    );
    let l = &r.latency;
    crate::outln!(
        "latency      p50 {:.0} ms · p90 {:.0} ms · p99 {:.0} ms · max {:.0} ms (submit to final, {} samples)",
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.max_ms,
        l.count
    );
    if r.tracker_errors > 0 {
        crate::outln!(
            "tracker      {} failed polls (last: {})",
            r.tracker_errors,
            r.tracker_last_error.as_deref().unwrap_or("-")
        );
    }
    for (node, mb) in &r.rss_mb {
        crate::outln!("memory       {node}: {mb} MB resident");
    }
    if let Some(m) = r.rss_mb_max {
        crate::outln!("rss_mb={m}");
    }
    crate::outln!(
        "final_tps={:.0} p50_ms={:.0} p99_ms={:.0}",
        r.final_tps,
        r.latency.p50_ms,
        r.latency.p99_ms
    );
    Ok(())
}
