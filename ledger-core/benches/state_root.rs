//! State root update cost: the tree writes of 10,000 changed accounts (updates and new accounts)
//! in a state of 1,000,000 accounts, as one block of a busy chain would compute them (jmt over the
//! in-memory store; the node's RocksDB store is measured by `cargo bench --workspace --bench
//! state`).
//!
//! Prints each run and `state_root_update_10k_in_1m_ms=<median>`. `BENCH_ACCOUNTS` changes the
//! state's size.

use std::time::Instant;

use ledger_core::state::{Account, State, checked_accounts};
use ledger_core::{Address, Amount, Hash, Height, Nonce};

const CHANGED: u64 = 10_000;
/// Of the changed accounts, this many are new; the rest are existing accounts with a new state.
const NEW: u64 = 2_000;
const RUNS: u64 = 7;

fn address(i: u64) -> Address {
    let h = Hash::digest_parts(&[b"account", &i.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("state_root: run with `cargo bench --workspace --bench state_root`");
        return;
    }
    let accounts: u64 = std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let all = checked_accounts((0..accounts).map(|i| {
        (
            address(i),
            Account {
                balance: Amount(1_000),
                nonce: Nonce(0),
            },
        )
    }))
    .expect("valid accounts");
    let mut state = State::from_accounts(all).expect("loads");
    println!(
        "loaded {accounts} accounts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for run in 0..RUNS {
        let existing = (0..CHANGED - NEW).map(|i| (i * 7919 + run * 13) % accounts);
        let fresh = accounts + run * NEW..accounts + (run + 1) * NEW;
        let mut changes: Vec<(Address, Account)> = existing
            .chain(fresh)
            .map(|i| {
                (
                    address(i),
                    Account {
                        balance: Amount(999 - run),
                        nonce: Nonce(run + 1),
                    },
                )
            })
            .collect();
        changes.sort_unstable_by_key(|(a, _)| *a);
        changes.dedup_by_key(|(a, _)| *a);
        state.discard_speculation();
        let t = Instant::now();
        let writes = state.speculate(Height(1), changes).expect("tree writes");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "run {run}: {ms:.1} ms, {} new nodes",
            writes.tree.node_batch.nodes().len()
        );
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "state_root_update_10k_in_{}k_ms={:.1}",
        accounts / 1000,
        times[times.len() / 2]
    );
}
