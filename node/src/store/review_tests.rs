//! Adversarial review of the versioned state tree in RocksDB (commit 1be8538, ADR 0012).
//!
//! The findings (`FINDING:`) were fixed; their tests stay as regression tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger_core::state::{State, StateError};
use ledger_core::vote::CommitSig;
use ledger_core::{BlockHeader, ChainId, Keypair, Nonce, Round, Signature, TimestampMs};

use super::*;

fn chain() -> ChainId {
    ChainId::new("review-test").expect("valid")
}

fn addr(i: u32) -> Address {
    Keypair::dev("review", i).address()
}

pub(super) fn acc(b: u64, n: u64) -> Account {
    Account {
        balance: ledger_core::Amount(b),
        nonce: Nonce(n),
    }
}

pub(super) fn cfg(kept: Option<u64>) -> StoreConfig {
    let mut c = StoreConfig::default();
    match kept {
        Some(k) => c.state_versions_kept = k,
        None => c.keep_all_versions = true,
    }
    c
}

pub(super) fn block(height: u64, prev: Hash, state_root: Hash) -> Block {
    Block {
        header: BlockHeader {
            chain_id: chain(),
            height: Height(height),
            prev_hash: prev,
            timestamp_ms: TimestampMs(height * 1000),
            proposer: Keypair::dev("v", 0).address(),
            tx_root: Hash::ZERO,
            tx_count: 0,
            state_root,
            last_commit_hash: Hash::ZERO,
        },
        last_commit: None,
        txs: vec![],
    }
}

pub(super) fn cert(height: u64, hash: Hash) -> CommitCertificate {
    CommitCertificate {
        height: Height(height),
        round: Round(0),
        block_hash: hash,
        signatures: vec![CommitSig {
            validator: Keypair::dev("v", 0).address(),
            signature: Signature([7; 64]),
        }],
    }
}

/// Loads `accounts` as the genesis state and marks the store initialised, as `load_chain` does
/// (with the same function).
pub(super) fn init(store: &Arc<Store>, genesis: Hash, accounts: &[(Address, Account)]) -> State {
    store
        .initialise(genesis, accounts)
        .expect("initialises")
        .expect("was not initialised")
}

/// Speculates `changes` on `state`, commits the block to the store (one synced batch) and
/// reopens the state at the new head, as a restart would. Returns the new state and the root.
fn commit_changes(
    store: &Arc<Store>,
    state: State,
    prev: Hash,
    changes: Vec<(Address, Account)>,
) -> (State, Hash, Hash) {
    let mut state = state;
    let height = Height(state.height().0 + 1);
    let writes = state.speculate(height, changes).expect("speculates");
    let b = block(height.0, prev, writes.root);
    let hash = b.hash();
    let c = cert(height.0, hash);
    store
        .commit_block(&BlockCommit {
            block: &b,
            hash,
            commit: &c,
            tx_hashes: &[],
            state: &writes,
        })
        .expect("commits");
    let version = state.version() + 1;
    drop(state);
    let state = State::open(store.clone(), height, version, Some(writes.root)).expect("reopens");
    (state, hash, writes.root)
}

/// A deterministic pseudo-random change set for block `h`: some existing accounts change, a new
/// one appears every few blocks, every seventh block is empty.
fn changes_for(h: u64, known: &BTreeMap<Address, Account>) -> Vec<(Address, Account)> {
    if h.is_multiple_of(7) {
        return vec![];
    }
    let mut out: BTreeMap<Address, Account> = BTreeMap::new();
    let addrs: Vec<Address> = known.keys().copied().collect();
    let mut x = h.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..(1 + h % 5) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = addrs[(x % addrs.len() as u64) as usize];
        let old = known[&a];
        out.insert(a, acc(old.balance.0 + h, old.nonce.0 + 1));
    }
    if h.is_multiple_of(3) {
        out.insert(addr(1000 + h as u32), acc(h, 0));
    }
    out.into_iter().collect()
}

/// Every kept height proves every account to the value it had at that height, against that
/// height's root; heights older than the window say they are not kept.
fn check_window(
    state: &State,
    kept: u64,
    history: &[BTreeMap<Address, Account>],
    roots: &[Hash],
    probe: &[Address],
) {
    let head = state.height().0;
    for hh in 0..=head {
        let h = Height(hh);
        let in_window = hh + kept > head;
        if in_window {
            assert_eq!(state.root_at(h), Ok(roots[hh as usize]), "root at {hh}");
            for a in probe {
                let p = state
                    .prove_at(a, h)
                    .unwrap_or_else(|e| panic!("head {head}: proof at {hh} of {a}: {e}"));
                let want = history[hh as usize].get(a).copied().unwrap_or_default();
                assert_eq!(p.account, want, "head {head}: account {a} at height {hh}");
                assert_eq!(
                    p.verify(&roots[hh as usize]),
                    Ok(()),
                    "head {head}: proof of {a} at {hh}"
                );
            }
        } else if hh + kept < head {
            // (The height just below the window may linger one commit: the batch that makes it
            // stale cannot see its own stale entries.)
            assert!(
                matches!(state.root_at(h), Err(StateError::HeightNotKept { .. })),
                "head {head}: height {hh} should be pruned, root_at = {:?}",
                state.root_at(h)
            );
            assert!(
                matches!(
                    state.prove_at(&probe[0], h),
                    Err(StateError::HeightNotKept { .. })
                ),
                "head {head}: height {hh} should be pruned"
            );
        }
    }
}

fn count(store: &Store, t: Table) -> usize {
    store
        .db
        .iterator_cf(store.cf(t), IteratorMode::Start)
        .count()
}

/// The most stored values any one key has. A window of `kept` versions needs at most `kept + 1`
/// per key: the newest one at or below the oldest kept version, and one per kept version.
fn most_values_of_one_key(store: &Store) -> usize {
    let mut per_key: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for item in store
        .db
        .iterator_cf(store.cf(Table::StateValues), IteratorMode::Start)
    {
        let (k, _) = item.expect("read");
        *per_key.entry(k[..32].to_vec()).or_default() += 1;
    }
    per_key.values().copied().max().unwrap_or(0)
}

/// Soundness check (passes): pruning with a small window never deletes a node or a value a kept
/// version reads, across empty blocks, new accounts and repeated updates of the same keys; the
/// disk does not grow with the chain.
#[test]
fn review_pruning_keeps_every_height_of_the_window_provable() {
    for kept in [1u64, 2, 3, 5] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
        let genesis: Vec<(Address, Account)> = {
            let mut g: Vec<_> = (0..40)
                .map(|i| (addr(i), acc(100 + u64::from(i), 0)))
                .collect();
            g.sort_by_key(|(a, _)| *a);
            g
        };
        let mut state = init(&store, Hash::digest(b"g"), &genesis);
        let mut known: BTreeMap<Address, Account> = genesis.iter().copied().collect();
        let mut history = vec![known.clone()];
        let mut roots = vec![state.root()];
        let mut prev = Hash::digest(b"g");
        let mut probe: Vec<Address> = (0..40).map(addr).collect();
        probe.extend((1000..1070).map(addr));
        let mut nodes_at = BTreeMap::new();
        for h in 1..=70u64 {
            let changes = changes_for(h, &known);
            for (a, v) in &changes {
                known.insert(*a, *v);
            }
            let (s, hash, root) = commit_changes(&store, state, prev, changes);
            state = s;
            prev = hash;
            history.push(known.clone());
            roots.push(root);
            check_window(&state, kept, &history, &roots, &probe);
            nodes_at.insert(h, count(&store, Table::StateNodes));
            // Pruning deletes every value no kept version reads (it deletes one per index entry,
            // relying on the ones before having gone with earlier entries).
            let most = most_values_of_one_key(&store);
            assert!(
                most <= kept as usize + 1,
                "kept {kept}, height {h}: a key has {most} stored values"
            );
        }
        // Bounded: the last 20 blocks add new accounts but the stored nodes must not grow by
        // more than the new leaves' paths.
        assert!(
            nodes_at[&70] < nodes_at[&35] * 2,
            "kept {kept}: nodes grow with the chain: {nodes_at:?}"
        );
    }
}

/// Soundness check (passes): an archive node switched to a window prunes all it kept and still
/// proves the window.
#[test]
fn review_archive_then_window_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis: Vec<(Address, Account)> = {
        let mut g: Vec<_> = (0..40)
            .map(|i| (addr(i), acc(100 + u64::from(i), 0)))
            .collect();
        g.sort_by_key(|(a, _)| *a);
        g
    };
    let mut known: BTreeMap<Address, Account> = genesis.iter().copied().collect();
    let mut history = vec![known.clone()];
    let mut roots = vec![];
    let mut prev = Hash::digest(b"g");
    let probe: Vec<Address> = (0..40).map(addr).chain((1000..1040).map(addr)).collect();
    let archive_nodes;
    {
        let store = Arc::new(Store::open(dir.path(), &cfg(None)).expect("opens"));
        let mut state = init(&store, prev, &genesis);
        roots.push(state.root());
        for h in 1..=30u64 {
            let changes = changes_for(h, &known);
            for (a, v) in &changes {
                known.insert(*a, *v);
            }
            let (s, hash, root) = commit_changes(&store, state, prev, changes);
            state = s;
            prev = hash;
            history.push(known.clone());
            roots.push(root);
        }
        // Archive: every height provable.
        check_window(&state, 31, &history, &roots, &probe);
        archive_nodes = count(&store, Table::StateNodes);
    }
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(4))).expect("reopens"));
    let version = store.state_genesis_version().expect("v0") + 30;
    let mut state =
        State::open(store.clone(), Height(30), version, Some(roots[30])).expect("opens");
    for h in 31..=33u64 {
        let changes = changes_for(h, &known);
        for (a, v) in &changes {
            known.insert(*a, *v);
        }
        let (s, hash, root) = commit_changes(&store, state, prev, changes);
        state = s;
        prev = hash;
        history.push(known.clone());
        roots.push(root);
        check_window(&state, 4, &history, &roots, &probe);
    }
    assert!(count(&store, Table::StateNodes) < archive_nodes);
}

/// FINDING: a crash while the genesis chunks are written (before `init_genesis`'s synced batch)
/// leaves accounts in the `accounts` table; if the node is then started with a different genesis
/// (the operator fixed the file), `check_genesis` says "not initialised", `State::load` writes
/// the new genesis over the leftovers without clearing them, and `State::open` accepts the store
/// (it checks only the tree's root). The accounts table, which execution reads, then holds an
/// account the tree (and every other node) does not have.
#[test]
fn review_a_crashed_genesis_load_leaves_no_accounts_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phantom = addr(7);
    {
        let store = Arc::new(Store::open(dir.path(), &cfg(Some(10))).expect("opens"));
        // Genesis A: its chunk is written (not synced), then the process dies before
        // `init_genesis` (simulated: the store is dropped without it).
        let a: Vec<(Address, Account)> = ledger_core::state::checked_accounts([
            (addr(1), acc(10, 0)),
            (phantom, acc(1_000_000, 0)),
        ])
        .expect("valid");
        let _ = State::load(store.clone(), &a).expect("writes genesis A");
        assert_eq!(
            store.genesis_hash().expect("reads"),
            None,
            "not initialised"
        );
    }
    // Restart with genesis B, which does not have `phantom`.
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(10))).expect("reopens"));
    let b: Vec<(Address, Account)> =
        ledger_core::state::checked_accounts([(addr(1), acc(10, 0)), (addr(2), acc(5, 0))])
            .expect("valid");
    let gb = Hash::digest(b"genesis B");
    let loaded = init(&store, gb, &b);
    let root_b = loaded.root();
    drop(loaded);
    let state = State::open(
        store.clone(),
        Height(0),
        store.state_genesis_version().expect("v0"),
        None,
    )
    .expect("opens: the tree's root is B's");
    assert_eq!(state.root(), root_b);
    assert_eq!(
        state.root(),
        State::from_accounts(b.clone()).expect("valid").root()
    );
    // The tree says the phantom account does not exist ...
    let p = state.prove(&phantom).expect("proves");
    assert_eq!(p.account, Account::EMPTY);
    // ... but the accounts table (what execution, the mempool and the API read) says it does.
    assert_eq!(
        state.get(&phantom).expect("reads"),
        Account::EMPTY,
        "the accounts table holds genesis A's account that genesis B does not have"
    );
    assert_eq!(state.accounts_sorted().expect("reads"), b);
}

/// FINDING (space): the nodes a genesis chunk replaces are never recorded as stale (genesis
/// chunks are written with `stale = false`), so with a genesis of more than
/// `LOAD_CHUNK_ACCOUNTS` accounts every intermediate chunk version stays on disk forever,
/// whatever `state_versions_kept` says: here the root of version 0 (chunk 0), a version no height
/// maps to, survives many pruning commits.
#[test]
fn review_intermediate_genesis_chunk_versions_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(1))).expect("opens"));
    let n = ledger_core::state::LOAD_CHUNK_ACCOUNTS as u64 + 1;
    let genesis = ledger_core::state::checked_accounts((0..n).map(|i| {
        let h = Hash::digest(&i.to_le_bytes());
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[..20]);
        (Address(a), acc(1, 0))
    }))
    .expect("valid");
    let mut state = init(&store, Hash::digest(b"big"), &genesis);
    assert_eq!(state.version(), 1, "two chunks");
    let mut prev = Hash::digest(b"big");
    for h in 1..=5u64 {
        // Touch a few genesis accounts each block.
        let mut changes: Vec<(Address, Account)> = genesis
            [(h as usize * 1000)..(h as usize * 1000 + 50)]
            .iter()
            .map(|(a, _)| (*a, acc(1 + h, 1)))
            .collect();
        changes.sort_by_key(|(a, _)| *a);
        let (s, hash, _) = commit_changes(&store, state, prev, changes);
        state = s;
        prev = hash;
    }
    let v0_nodes = store
        .db
        .prefix_iterator_cf(store.cf(Table::StateNodes), 0u64.to_be_bytes())
        .take_while(|r| {
            r.as_ref()
                .is_ok_and(|(k, _)| k.starts_with(&0u64.to_be_bytes()))
        })
        .count();
    // Version 0 BE, then the empty nibble path's borsh encoding (num_nibbles u64, len u32).
    let root0 = [0u8; 8 + 12];
    let stale_root0 = store.get(Table::StateNodes, &root0).expect("reads");
    assert!(
        stale_root0.is_none(),
        "chunk 0's root (version 0, no height maps to it) is still stored after 5 pruning \
         commits with state_versions_kept = 1 ({v0_nodes} nodes of version 0 remain; those chunk 1 \
         replaced are part of no kept version and are never deleted)"
    );
}
