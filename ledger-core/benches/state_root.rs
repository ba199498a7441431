//! State root update cost: apply 10,000 changed accounts (updates and new accounts) to a tree of
//! 1,000,000 accounts, as one block of a busy chain would.
//!
//! The tree is built once; each timed `apply` runs on a fresh clone whose copying is not timed. After
//! criterion, the bench prints its own median as `state_root_update_10k_in_1m_ms=<n>`, and the
//! physical floor measured in the same run: the SHA-256 calls the update cannot avoid (one per new
//! leaf, one per internal node above a changed leaf) at this machine's single-thread hash speed,
//! spread over the rayon workers.

use criterion::{BatchSize, Criterion};
use ledger_core::Hash;
use ledger_core::smt::SparseMerkleTree;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNTS: u64 = 1_000_000;
const CHANGED: u64 = 10_000;
/// Of the changed accounts, this many are new; the rest are existing accounts with a new state.
const NEW: u64 = 2_000;
/// Runs of the plain-text timing loop; the median is reported.
const OWN_RUNS: usize = 7;

fn key(account: u64) -> Hash {
    Hash::digest_parts(&[b"account", &account.to_le_bytes()])
}

fn value(account: u64, version: u64) -> Hash {
    Hash::digest_parts(&[b"state", &account.to_le_bytes(), &version.to_le_bytes()])
}

/// The changed accounts of one block: existing accounts spread over the whole key space (a stride
/// coprime to the account count) and accounts that do not exist yet.
fn block_updates() -> Vec<(Hash, Option<Hash>)> {
    let existing = (0..CHANGED - NEW).map(|i| (i * 7919) % ACCOUNTS);
    let fresh = ACCOUNTS..ACCOUNTS + NEW;
    existing
        .chain(fresh)
        .map(|a| (key(a), Some(value(a, 1))))
        .collect()
}

fn bench(c: &mut Criterion, tree: &SparseMerkleTree, updates: &[(Hash, Option<Hash>)]) {
    c.bench_function("state_root_update_10k_in_1m", |b| {
        b.iter_batched(
            || tree.clone(),
            |mut t| {
                t.apply(updates.iter().copied());
                black_box(t.root());
                // Returned so that freeing the clone is not timed either.
                t
            },
            BatchSize::PerIteration,
        )
    });
}

/// Median wall time of `apply` over fresh clones, measured without criterion.
fn own_median(tree: &SparseMerkleTree, updates: &[(Hash, Option<Hash>)]) -> Duration {
    let mut times: Vec<Duration> = (0..OWN_RUNS)
        .map(|_| {
            let mut t = tree.clone();
            let start = Instant::now();
            t.apply(updates.iter().copied());
            black_box(t.root());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Number of bits `a` and `b` share from the most significant one.
fn common_prefix_bits(a: &Hash, b: &Hash) -> usize {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        if x != y {
            return i * 8 + (x ^ y).leading_zeros() as usize;
        }
    }
    256
}

/// SHA-256 calls an update must make: one leaf hash per changed account, plus one per internal node
/// above a changed leaf in the final tree. A leaf sits one level below the longest prefix it shares
/// with its neighbours in key order; its ancestors are its shorter prefixes.
fn unavoidable_hashes(all_keys_sorted: &[Hash], changed: &[(Hash, Option<Hash>)]) -> usize {
    let mut ancestors: Vec<(usize, Hash)> = Vec::new();
    for (k, _) in changed {
        let Ok(pos) = all_keys_sorted.binary_search(k) else {
            continue;
        };
        let before = pos
            .checked_sub(1)
            .map_or(0, |p| common_prefix_bits(&all_keys_sorted[p], k));
        let after = all_keys_sorted
            .get(pos + 1)
            .map_or(0, |n| common_prefix_bits(n, k));
        let depth = before.max(after) + 1;
        for len in 0..depth {
            let mut prefix = *k;
            for bit in len..256 {
                prefix.0[bit / 8] &= !(0x80 >> (bit % 8));
            }
            ancestors.push((len, prefix));
        }
    }
    ancestors.sort();
    ancestors.dedup();
    changed.len() + ancestors.len()
}

/// Single-thread nanoseconds per SHA-256 of a 65-byte node (two compression blocks, like every
/// leaf and internal hash of the tree).
fn sha256_node_ns() -> f64 {
    const N: u32 = 200_000;
    let mut h = Hash::ZERO;
    let start = Instant::now();
    for _ in 0..N {
        h = Hash::digest_parts(&[&[1u8], h.as_bytes(), h.as_bytes()]);
    }
    black_box(h);
    start.elapsed().as_nanos() as f64 / f64::from(N)
}

/// The process's resident memory as the kernel reports it (Linux), to show what the tree costs.
fn resident_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l[6..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    let build_start = Instant::now();
    let mut tree = SparseMerkleTree::new();
    tree.apply((0..ACCOUNTS).map(|a| (key(a), Some(value(a, 0)))));
    let build = build_start.elapsed();
    assert_eq!(tree.len() as u64, ACCOUNTS);
    let updates = block_updates();
    println!(
        "built {ACCOUNTS} accounts in {:.0} ms (process RSS {}); applying {} changes ({NEW} new accounts)",
        build.as_secs_f64() * 1e3,
        resident_memory(),
        updates.len()
    );

    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion, &tree, &updates);
    criterion.final_summary();

    let median = own_median(&tree, &updates);
    let mut all_keys: Vec<Hash> = (0..ACCOUNTS + NEW).map(key).collect();
    all_keys.sort();
    let hashes = unavoidable_hashes(&all_keys, &updates);
    let ns = sha256_node_ns();
    let workers = rayon::current_num_threads();
    let floor_ms = hashes as f64 * ns / workers as f64 / 1e6;
    let ms = median.as_secs_f64() * 1e3;
    println!(
        "floor: {hashes} SHA-256 calls x {ns:.0} ns / {workers} workers = {floor_ms:.1} ms; \
         apply is {:.1}x the floor",
        ms / floor_ms
    );
    println!("state_root_update_10k_in_1m_ms={ms:.1}");
}
