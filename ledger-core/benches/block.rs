//! Block validation against the physical limit: signature verification.
//!
//! One run builds a state of 100,000 funded accounts and a block of 10,000 transfers among them
//! (signed before any timing), then measures
//!
//! - (a) `validate_block` on that block with no signature pre-verified: header, stateless checks,
//!   all 10,000 signatures (in batches, in parallel), execution, transaction root and state root;
//! - (b) ZIP-215 single verification of the same 10,000 signatures in a plain loop on one core;
//! - (c) the same single verifications spread over all cores with rayon: the single-verify limit;
//! - (d) the same signatures batch-verified over all cores (`crypto::verify_all`): the batch-verify
//!   limit, the throughput no validator of these signatures can beat on this machine.
//!
//! Criterion reports each with small samples; the bench then times each again itself and prints
//! the medians as transactions per second, with (a)'s ratios to (c) and (d) on the last line. The
//! senders' keys are then decoded already (`crypto`'s decoded-key cache, as in a node that has seen
//! them); the line before gives (a) and (d) with the cache emptied before each run. Last line:
//! `block_tx_per_s=<n> single_verify_limit_tx_per_s=<n> batch_verify_limit_tx_per_s=<n>
//! vs_single=<block/single> vs_batch=<block/batch>`.

use criterion::Criterion;
use ledger_core::crypto::{self, Domain, Keypair, SignatureCheck};
use ledger_core::genesis::Genesis;
use ledger_core::state::{Account, State};
use ledger_core::validation::{self, ParentBlock};
use ledger_core::{
    Address, Amount, Hash, Nonce, SignedTransaction, TimestampMs, Transaction, codec,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNTS: u32 = 100_000;
const TXS: usize = 10_000;
/// Accounts that send; the others only receive. Several transfers per sender exercise the nonce
/// sequence within a block.
const SENDERS: u32 = 4_000;
/// Runs of each plain-text timing loop; the median is reported.
const OWN_RUNS: usize = 11;

struct Setup {
    genesis: Genesis,
    state: State,
    block: ledger_core::SealedBlock,
    /// The signing bytes of every transaction, for the bare verification loops.
    messages: Vec<Vec<u8>>,
    txs: Vec<SignedTransaction>,
}

fn address(i: u32) -> Address {
    let h = Hash::digest_parts(&[b"bench account", &i.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

fn setup() -> Setup {
    let genesis = Genesis::dev("ledger-bench", 4, 0).expect("valid bench genesis");
    let chain_id = genesis.chain_id().clone();
    let senders: Vec<Keypair> = (0..SENDERS)
        .into_par_iter()
        .map(|i| Keypair::dev("bench", i))
        .collect();
    let balance = Amount(1_000_000_000);
    let accounts = (0..ACCOUNTS)
        .map(|i| match senders.get(i as usize) {
            Some(k) => k.address(),
            None => address(i),
        })
        .map(|a| {
            (
                a,
                Account {
                    balance,
                    nonce: Nonce(0),
                },
            )
        });
    let mut state = State::from_accounts(accounts).expect("valid accounts");

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut nonces = vec![0u64; SENDERS as usize];
    let unsigned: Vec<(u32, Transaction)> = (0..TXS)
        .map(|_| {
            let s = rng.random_range(0..SENDERS);
            let mut r = rng.random_range(0..ACCOUNTS);
            if r == s {
                r = (r + 1) % ACCOUNTS;
            }
            let to = senders
                .get(r as usize)
                .map_or_else(|| address(r), Keypair::address);
            let nonce = nonces[s as usize];
            nonces[s as usize] += 1;
            let tx = Transaction {
                chain_id: chain_id.clone(),
                from: senders[s as usize].public(),
                to,
                amount: Amount(rng.random_range(1..1000)),
                fee: Amount(rng.random_range(0..10)),
                nonce: Nonce(nonce),
                memo: vec![],
            };
            (s, tx)
        })
        .collect();
    let txs: Vec<SignedTransaction> = unsigned
        .into_par_iter()
        .map(|(s, tx)| tx.sign(&senders[s as usize]))
        .collect();
    let verified: Vec<_> = txs
        .iter()
        .map(|t| t.clone().verify(&chain_id).expect("valid transaction"))
        .collect();
    let parent = ParentBlock::genesis(&genesis);
    let proposer = Keypair::dev("validator", 0).address();
    let built = validation::build_block(
        genesis.chain_context(),
        &parent,
        &mut state,
        &verified,
        proposer,
        TimestampMs(genesis.genesis_time_ms().0 + 1000),
        None,
    )
    .expect("builds");
    assert!(built.rejected.is_empty(), "every transfer is valid");
    assert_eq!(built.block.block().txs.len(), TXS);
    let messages = txs
        .iter()
        .map(|t| crypto::signing_bytes(Domain::Transaction, &chain_id, &codec::encode(&t.tx)))
        .collect();
    Setup {
        genesis,
        state,
        block: built.block,
        messages,
        txs,
    }
}

/// Validates the block once, as a node that has not seen it: the state is settled first (untimed),
/// as it is after the previous block's commit, so no tree work from the last run is reused.
fn timed_validate(s: &mut Setup) -> (Duration, Option<u64>) {
    s.state.discard_speculation();
    time_cpu(|| validate(s))
}

fn validate(s: &mut Setup) {
    let parent = ParentBlock::genesis(&s.genesis);
    let executed = validation::validate_block(
        s.genesis.chain_context(),
        &parent,
        &mut s.state,
        &s.block,
        None,
        &validation::none_verified,
    )
    .expect("valid block");
    black_box(executed);
}

fn verify_sequential(s: &Setup) {
    for (tx, m) in s.txs.iter().zip(&s.messages) {
        black_box(tx.tx.from.verify_raw(m, &tx.signature)).expect("valid signature");
    }
}

fn verify_single_parallel(s: &Setup) {
    s.txs.par_iter().zip(&s.messages).for_each(|(tx, m)| {
        black_box(tx.tx.from.verify_raw(m, &tx.signature)).expect("valid signature");
    });
}

fn verify_batch_parallel(s: &Setup) {
    let checks: Vec<SignatureCheck<'_>> = s
        .txs
        .iter()
        .zip(&s.messages)
        .map(|(tx, m)| SignatureCheck {
            key: &tx.tx.from,
            message: m,
            signature: &tx.signature,
        })
        .collect();
    black_box(crypto::verify_all(&checks)).expect("valid signatures");
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// CPU time used so far by all threads of this process, in nanoseconds (Linux; `None` elsewhere).
/// Wall time on a machine shared with other jobs says how long things took; CPU time says how much
/// work they were, which is what the ratio should compare when the cores are not ours alone.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Wall time and process CPU time of `f`.
fn time_cpu(f: impl FnOnce()) -> (Duration, Option<u64>) {
    let cpu = process_cpu_ns();
    let wall = time(f);
    let used = cpu.and_then(|before| Some(process_cpu_ns()?.saturating_sub(before)));
    (wall, used)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn per_second(d: Duration) -> f64 {
    TXS as f64 / d.as_secs_f64()
}

fn main() {
    let start = Instant::now();
    let mut s = setup();
    println!(
        "setup: {ACCOUNTS} accounts, block of {TXS} transfers from {SENDERS} senders, {} bytes of \
         transactions, built in {:.1} s; {} rayon workers",
        s.txs
            .iter()
            .map(SignedTransaction::encoded_len)
            .sum::<usize>(),
        start.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("block_10k_tx_100k_accounts");
    group.throughput(criterion::Throughput::Elements(TXS as u64));
    group.bench_function("validate_execute", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| timed_validate(&mut s).0).sum())
    });
    group.bench_function("verify_single_one_core", |b| {
        b.iter(|| verify_sequential(&s))
    });
    group.bench_function("verify_single_all_cores", |b| {
        b.iter(|| verify_single_parallel(&s))
    });
    group.bench_function("verify_batch_all_cores", |b| {
        b.iter(|| verify_batch_parallel(&s))
    });
    group.finish();
    c.final_summary();

    // Interleaved, so that load from other processes on a shared machine hits all alike.
    let (mut block, mut single, mut single_all, mut batch) = (vec![], vec![], vec![], vec![]);
    let (mut block_cpu, mut batch_cpu) = (vec![], vec![]);
    let (mut block_cold, mut batch_cold) = (vec![], vec![]);
    for _ in 0..OWN_RUNS {
        // Every key decoded again, as for senders never seen before.
        crypto::forget_decoded_keys();
        block_cold.push(timed_validate(&mut s).0);
        crypto::forget_decoded_keys();
        batch_cold.push(time(|| verify_batch_parallel(&s)));
        let (wall, cpu) = timed_validate(&mut s);
        block.push(wall);
        block_cpu.extend(cpu);
        let (wall, cpu) = time_cpu(|| verify_batch_parallel(&s));
        batch.push(wall);
        batch_cpu.extend(cpu);
        single_all.push(time(|| verify_single_parallel(&s)));
        single.push(time(|| verify_sequential(&s)));
    }
    let (block, single, single_all, batch) = (
        median(block),
        median(single),
        median(single_all),
        median(batch),
    );
    println!(
        "medians of {OWN_RUNS}: validate+execute {:.1} ms, single verify one core {:.1} ms, \
         single verify all cores {:.1} ms, batch verify all cores {:.1} ms",
        block.as_secs_f64() * 1e3,
        single.as_secs_f64() * 1e3,
        single_all.as_secs_f64() * 1e3,
        batch.as_secs_f64() * 1e3,
    );
    if block_cpu.len() == OWN_RUNS && batch_cpu.len() == OWN_RUNS {
        let ms = |mut v: Vec<u64>| {
            v.sort_unstable();
            v[v.len() / 2] as f64 / 1e6
        };
        let (b, l) = (ms(block_cpu), ms(batch_cpu));
        println!(
            "cpu time (all threads, medians): validate+execute {b:.1} ms, batch verify {l:.1} ms, \
             cpu_ratio={:.3} (the work ratio, independent of other load on the machine)",
            l / b
        );
    }
    let (block_cold, batch_cold) = (median(block_cold), median(batch_cold));
    println!(
        "cold keys (the decoded-key cache emptied before each run): block_tx_per_s={:.0} \
         batch_verify_limit_tx_per_s={:.0} vs_single={:.3} vs_batch={:.3}",
        per_second(block_cold),
        per_second(batch_cold),
        per_second(block_cold) / per_second(single_all),
        per_second(block_cold) / per_second(batch_cold)
    );
    println!("single_core_verify_tx_per_s={:.0}", per_second(single));
    println!(
        "block_tx_per_s={:.0} single_verify_limit_tx_per_s={:.0} batch_verify_limit_tx_per_s={:.0} \
         vs_single={:.3} vs_batch={:.3}",
        per_second(block),
        per_second(single_all),
        per_second(batch),
        per_second(block) / per_second(single_all),
        per_second(block) / per_second(batch)
    );
}
