//! Adversarial review of the stale-index cursor (`Store::prune_from`, commits e0006d7 and
//! 25b2c37): the next prune starts where the last one ended.
//!
//! The claim: every index entry below the cursor is deleted, and new entries are only added
//! above it. The oracle used here: after every commit (a) no live `state_stale` key is at or
//! below the cursor, (b) nothing the window lets go is left in the index, and (c) where it is
//! cheap, the stored tree is byte for byte what a prune from the start of the index (the code
//! before the cursor; a restart) leaves.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger_core::Keypair;
use ledger_core::state::{State, StateError};

use super::review_tests::{acc, block, cert, cfg, init};
use super::*;

fn addr(i: u32) -> Address {
    Keypair::dev("cursor-review", i).address()
}

fn genesis_accounts(n: u32) -> Vec<(Address, Account)> {
    let mut g: Vec<_> = (0..n)
        .map(|i| (addr(i), acc(100 + u64::from(i), 0)))
        .collect();
    g.sort_by_key(|(a, _)| *a);
    g
}

/// Speculates `changes` on `state` and commits the block (one synced batch); on success reopens
/// the state at the new head. On failure gives the state back with the error.
fn try_commit(
    store: &Arc<Store>,
    mut state: State,
    prev: Hash,
    changes: Vec<(Address, Account)>,
) -> Result<(State, Hash, Hash), Box<(State, StoreError)>> {
    let height = Height(state.height().0 + 1);
    let writes = state.speculate(height, changes).expect("speculates");
    let b = block(height.0, prev, writes.root);
    let hash = b.hash();
    let c = cert(height.0, hash);
    if let Err(e) = store.commit_block(&BlockCommit {
        block: &b,
        hash,
        commit: &c,
        tx_hashes: &[],
        state: &writes,
    }) {
        return Err(Box::new((state, e)));
    }
    let version = state.version() + 1;
    drop(state);
    let state = State::open(store.clone(), height, version, Some(writes.root)).expect("reopens");
    Ok((state, hash, writes.root))
}

fn commit_changes(
    store: &Arc<Store>,
    state: State,
    prev: Hash,
    changes: Vec<(Address, Account)>,
) -> (State, Hash, Hash) {
    try_commit(store, state, prev, changes)
        .map_err(|b| b.1)
        .expect("commits")
}

/// A deterministic pseudo-random change set for block `h` (as in `review_tests`): some existing
/// accounts change, a new one appears every third block, every seventh block is empty.
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

/// Every kept height proves every probed account to its value at that height.
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
        if hh + kept > head {
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
                    "proof of {a} at {hh}"
                );
            }
        } else if hh + kept < head {
            assert!(
                matches!(state.root_at(h), Err(StateError::HeightNotKept { .. })),
                "head {head}: height {hh} should be pruned, root_at = {:?}",
                state.root_at(h)
            );
        }
    }
}

type Entries = Vec<(Box<[u8]>, Box<[u8]>)>;

fn dump(store: &Store, t: Table) -> Entries {
    store
        .db
        .iterator_cf(store.cf(t), IteratorMode::Start)
        .map(|r| r.expect("reads"))
        .collect()
}

fn most_values_of_one_key(store: &Store) -> usize {
    let mut per_key: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for (k, _) in dump(store, Table::StateValues) {
        *per_key.entry(k[..32].to_vec()).or_default() += 1;
    }
    per_key.values().copied().max().unwrap_or(0)
}

fn cursor(store: &Store) -> Option<Box<[u8]>> {
    store
        .prune_from
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn reset_cursor(store: &Store) {
    *store
        .prune_from
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = None;
}

fn since_of(k: &[u8]) -> u64 {
    u64::from_be_bytes(k[..8].try_into().expect("8 bytes"))
}

/// The cursor's invariant after a commit of tree `version` with a window of `kept`: (a) no live
/// index key at or below the cursor (it would never be read again by this process), (b) nothing
/// stale since the oldest kept version or earlier is left, except this commit's own entries (the
/// batch cannot see them). Holds while a commit has fewer than `MAX_PRUNED_PER_COMMIT` to prune.
fn check_cursor(store: &Store, version: u64, kept: u64, what: &str) {
    let cur = cursor(store);
    let oldest_kept = version.checked_sub(kept - 1);
    for (k, _) in dump(store, Table::StateStale) {
        if let Some(c) = &cur {
            assert!(
                k > *c,
                "{what}: live index key {k:?} (since {}) at or below the cursor {c:?} (since {})",
                since_of(&k),
                since_of(c)
            );
        }
        if let Some(ok) = oldest_kept {
            let since = since_of(&k);
            assert!(
                since > ok || since == version,
                "{what}: version {version}, kept {kept}: index entry stale since {since} \
                 survives (oldest kept {ok}); cursor {cur:?}"
            );
        }
    }
}

/// Builds the chain of `changes_for` while checking the window, the cursor and the value bound.
struct Chain {
    known: BTreeMap<Address, Account>,
    history: Vec<BTreeMap<Address, Account>>,
    roots: Vec<Hash>,
    prev: Hash,
    probe: Vec<Address>,
}

impl Chain {
    fn new(genesis: &[(Address, Account)], genesis_hash: Hash, genesis_root: Hash) -> Chain {
        let known: BTreeMap<Address, Account> = genesis.iter().copied().collect();
        let mut probe: Vec<Address> = known.keys().copied().take(40).collect();
        probe.extend((1000..1100).map(addr));
        Chain {
            history: vec![known.clone()],
            known,
            roots: vec![genesis_root],
            prev: genesis_hash,
            probe,
        }
    }

    fn next_changes(&self) -> Vec<(Address, Account)> {
        changes_for(self.history.len() as u64, &self.known)
    }

    fn step(&mut self, store: &Arc<Store>, state: State) -> State {
        let changes = self.next_changes();
        self.step_with(store, state, changes)
    }

    fn step_with(
        &mut self,
        store: &Arc<Store>,
        state: State,
        changes: Vec<(Address, Account)>,
    ) -> State {
        for (a, v) in &changes {
            self.known.insert(*a, *v);
        }
        let (s, hash, root) = commit_changes(store, state, self.prev, changes);
        self.prev = hash;
        self.history.push(self.known.clone());
        self.roots.push(root);
        s
    }

    fn check(&self, store: &Store, state: &State, kept: Option<u64>, what: &str) {
        if let Some(kept) = kept {
            check_window(state, kept, &self.history, &self.roots, &self.probe);
            check_cursor(store, state.version(), kept, what);
            let most = most_values_of_one_key(store);
            assert!(
                most <= kept as usize + 1,
                "{what}: kept {kept}: a key has {most} stored values"
            );
        }
    }
}

/// Probe (passes): the same chain on two stores, one pruning from its cursor, the other from the
/// start of the index at every commit (as the code before the cursor did, and as every restart
/// does): after every block the state tables are byte for byte the same, for several windows.
#[test]
fn review_cursor_prunes_exactly_what_a_full_scan_prunes() {
    for kept in [1u64, 2, 3, 7] {
        let da = tempfile::tempdir().expect("tempdir");
        let db = tempfile::tempdir().expect("tempdir");
        let a = Arc::new(Store::open(da.path(), &cfg(Some(kept))).expect("opens"));
        let b = Arc::new(Store::open(db.path(), &cfg(Some(kept))).expect("opens"));
        let g = genesis_accounts(40);
        let gh = Hash::digest(b"g");
        let mut sa = init(&a, gh, &g);
        let mut sb = init(&b, gh, &g);
        let mut chain_a = Chain::new(&g, gh, sa.root());
        let mut chain_b = Chain::new(&g, gh, sb.root());
        for h in 1..=60u64 {
            sa = chain_a.step(&a, sa);
            reset_cursor(&b);
            sb = chain_b.step(&b, sb);
            assert_eq!(sa.root(), sb.root());
            chain_a.check(&a, &sa, Some(kept), &format!("kept {kept}, height {h}"));
            for t in [Table::StateStale, Table::StateNodes, Table::StateValues] {
                assert!(
                    dump(&a, t) == dump(&b, t),
                    "kept {kept}, height {h}: table {} differs from a prune from the start",
                    t.name()
                );
            }
        }
    }
}

/// Probe (passes): a commit whose prune fails after it queued deletes (a corrupt index entry
/// inside the pruned range, after valid ones) writes nothing and leaves the cursor where it was;
/// the same block committed again once the entry is gone prunes everything, and the chain goes
/// on sound.
#[test]
fn review_cursor_failed_commit_then_retry_prunes_everything() {
    let kept = 2u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
    let g = genesis_accounts(40);
    let gh = Hash::digest(b"g");
    let mut state = init(&store, gh, &g);
    let mut chain = Chain::new(&g, gh, state.root());
    for _ in 1..=10 {
        state = chain.step(&store, state);
    }
    chain.check(&store, &state, Some(kept), "before the failure");
    let before_cursor = cursor(&store).expect("a cursor after 10 pruning commits");
    let before_stale = dump(&store, Table::StateStale);
    // The next commit (version v) prunes everything stale since v - 1: put a corrupt entry
    // after all of those (kind 0xEE sorts after both kinds).
    let v = state.version() + 1;
    let bad = tables::state_stale_key(v - 1, 0xEE, b"corrupt");
    store
        .db
        .put_cf(store.cf(Table::StateStale), &bad, [])
        .expect("writes");
    let changes = chain.next_changes();
    let (back, err) = match try_commit(&store, state, chain.prev, changes.clone()) {
        Ok(_) => panic!("the commit must fail on the corrupt index entry"),
        Err(x) => *x,
    };
    state = back;
    assert!(matches!(err, StoreError::Corruption { .. }), "{err}");
    assert_eq!(
        cursor(&store).as_deref(),
        Some(&*before_cursor),
        "cursor moved"
    );
    assert_eq!(store.head_height().expect("head"), Height(10));
    let mut with_bad = before_stale.clone();
    with_bad.push((bad.clone().into_boxed_slice(), Box::new([])));
    with_bad.sort();
    assert!(
        dump(&store, Table::StateStale) == with_bad,
        "a failed commit deleted something"
    );
    store
        .db
        .delete_cf(store.cf(Table::StateStale), &bad)
        .expect("deletes");
    state.discard_speculation();
    state = chain.step_with(&store, state, changes);
    chain.check(&store, &state, Some(kept), "the retried commit");
    for h in 12..=30 {
        state = chain.step(&store, state);
        chain.check(&store, &state, Some(kept), &format!("height {h}"));
    }
}

/// Probe (passes): restarts (a fresh `Store` reads the index from its start once) at every
/// distance from the last prune, including right after a commit that pruned nothing, interleaved
/// with window changes: the cursor invariant and every kept height hold throughout.
#[test]
fn review_cursor_restarts_and_window_changes_midway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genesis_accounts(40);
    let gh = Hash::digest(b"g");
    let mut kept = 5u64;
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
    let state = init(&store, gh, &g);
    let mut chain = Chain::new(&g, gh, state.root());
    drop(state);
    drop(store);
    // (blocks to commit, window of the next process)
    let plan: [(u64, u64); 8] = [
        (1, 5),
        (3, 5),
        (6, 2),
        (1, 2),
        (2, 9),
        (8, 1),
        (4, 3),
        (9, 3),
    ];
    let mut window_start = 0u64;
    for (run, (blocks, next_kept)) in plan.iter().enumerate() {
        let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("reopens"));
        let head = store.head_height().expect("head");
        let version = store.state_genesis_version().expect("v0") + head.0;
        let mut state = State::open(
            store.clone(),
            head,
            version,
            (head.0 > 0).then(|| chain.roots[head.0 as usize]),
        )
        .expect("opens");
        assert!(cursor(&store).is_none(), "a fresh process has no cursor");
        for _ in 0..*blocks {
            state = chain.step(&store, state);
            let what = format!("run {run}, height {}", state.height());
            // After a window grows, only what the smaller window kept is there.
            let provable = kept.min(state.height().0 + 1 - window_start);
            check_window(
                &state,
                provable.max(1),
                &chain.history,
                &chain.roots,
                &chain.probe,
            );
            check_cursor(&store, state.version(), kept, &what);
            assert!(
                most_values_of_one_key(&store) <= kept as usize + 1,
                "{what}"
            );
        }
        if *next_kept > kept {
            window_start = state.height().0 + 1 - kept;
        }
        kept = *next_kept;
    }
}

/// Probe (passes): an archive node switched to a window, then restarted mid catch-up.
#[test]
fn review_cursor_archive_then_window_then_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = genesis_accounts(40);
    let gh = Hash::digest(b"g");
    let mut chain;
    {
        let store = Arc::new(Store::open(dir.path(), &cfg(None)).expect("opens"));
        let mut state = init(&store, gh, &g);
        chain = Chain::new(&g, gh, state.root());
        for _ in 1..=40 {
            state = chain.step(&store, state);
        }
        assert!(cursor(&store).is_none(), "an archive never prunes");
    }
    for run in 0..3 {
        let kept = 3;
        let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("reopens"));
        let head = store.head_height().expect("head");
        let version = store.state_genesis_version().expect("v0") + head.0;
        let mut state = State::open(
            store.clone(),
            head,
            version,
            Some(chain.roots[head.0 as usize]),
        )
        .expect("opens");
        for _ in 0..5 {
            state = chain.step(&store, state);
            chain.check(
                &store,
                &state,
                Some(kept),
                &format!("run {run}, height {}", state.height()),
            );
        }
    }
}

/// Probe (passes): a genesis of two chunks (its chunk-0 nodes are stale since version 1, the
/// last genesis version): the first pruning commits take them, the cursor passes them, and
/// nothing of version 0 survives.
#[test]
fn review_cursor_chunked_genesis_is_pruned_behind_the_cursor() {
    for kept in [1u64, 3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
        let n = ledger_core::state::LOAD_CHUNK_ACCOUNTS as u64 + 1;
        let genesis = ledger_core::state::checked_accounts((0..n).map(|i| {
            let h = Hash::digest(&i.to_le_bytes());
            let mut a = [0u8; 20];
            a.copy_from_slice(&h.0[..20]);
            (Address(a), acc(1, 0))
        }))
        .expect("valid");
        let gh = Hash::digest(b"big");
        let mut state = init(&store, gh, &genesis);
        assert_eq!(state.version(), 1, "two chunks");
        let mut prev = gh;
        for h in 1..=(kept + 3) {
            let mut changes: Vec<(Address, Account)> = genesis
                [(h as usize * 1000)..(h as usize * 1000 + 50)]
                .iter()
                .map(|(a, _)| (*a, acc(1 + h, 1)))
                .collect();
            changes.sort_by_key(|(a, _)| *a);
            let (s, hash, _) = commit_changes(&store, state, prev, changes);
            state = s;
            prev = hash;
            check_cursor(
                &store,
                state.version(),
                kept,
                &format!("kept {kept}, height {h}"),
            );
        }
        let v0_nodes = dump(&store, Table::StateNodes)
            .iter()
            .filter(|(k, _)| since_of(k) == 0)
            .count();
        // Chunk 0's nodes that chunk 1 did not replace are part of every later tree.
        let root0 = [0u8; 8 + 12];
        assert!(
            store
                .get(Table::StateNodes, &root0)
                .expect("reads")
                .is_none(),
            "kept {kept}: chunk 0's root survives ({v0_nodes} version-0 nodes)"
        );
    }
}

/// The tombstones one commit's reads step over (RocksDB's perf context, this thread only).
fn deletes_skipped_by<T>(f: impl FnOnce() -> T) -> (T, u64) {
    use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel, set_perf_stats};
    set_perf_stats(PerfStatsLevel::EnableCount);
    let mut ctx = PerfContext::default();
    ctx.reset();
    let out = f();
    let n = ctx.metric(PerfMetric::InternalDeleteSkippedCount);
    set_perf_stats(PerfStatsLevel::Disable);
    (out, n)
}

/// Probe (passes): what the cursor is for. One account changes in every block (a proposer's fee
/// account does): the index walk of a commit steps over a bounded number of tombstones (the
/// cursor's own), where a prune from the start steps over all that earlier commits deleted.
/// Measured without the value walk: the hot account is created in every block under a new
/// address, so each key has one value and its value prune walks nothing.
#[test]
fn review_cursor_index_walk_is_bounded() {
    let kept = 2u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
    let g = genesis_accounts(4);
    let gh = Hash::digest(b"g");
    let mut state = init(&store, gh, &g);
    let mut prev = gh;
    let mut skipped = BTreeMap::new();
    for h in 1..=400u64 {
        let changes = vec![(addr(10_000 + h as u32), acc(h, 0))];
        let ((s, hash, _), n) = deletes_skipped_by(|| commit_changes(&store, state, prev, changes));
        state = s;
        prev = hash;
        skipped.insert(h, n);
    }
    assert!(
        skipped[&400] <= skipped[&50] + 8,
        "the index walk grows with the chain: {:?}",
        [
            (50, skipped[&50]),
            (200, skipped[&200]),
            (400, skipped[&400])
        ]
    );
    // Without the cursor (as after a restart) the walk steps over every earlier deletion.
    reset_cursor(&store);
    let changes = vec![(addr(20_000), acc(1, 0))];
    let (_, n) = deletes_skipped_by(|| commit_changes(&store, state, prev, changes));
    assert!(
        n > 400,
        "a prune from the start walks the old tombstones: {n}"
    );
}

/// Regression test of a review finding (cost, not correctness): with the index cursor alone, the
/// value prune still read a key's values forward from `key_hash ‖ 0`, stepping over the tombstone
/// of every value of the key an earlier commit deleted, until a compaction dropped them. A key
/// that changes in every block (a proposer's fee account, a busy wallet) cost each commit work
/// proportional to the chain's length: the 400th commit stepped over ~400 tombstones, the 50th
/// over ~50. The store now remembers per key where its last value prune ended
/// (`values_pruned_below`) and reads from there. Here one account changes in each of 400 blocks
/// (window 2, no memtable flush).
#[test]
fn review_cursor_value_walk_of_a_hot_key_grows_with_the_chain() {
    let kept = 2u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), &cfg(Some(kept))).expect("opens"));
    let g = genesis_accounts(4);
    let hot = g[0].0;
    let gh = Hash::digest(b"g");
    let mut state = init(&store, gh, &g);
    let mut prev = gh;
    let mut skipped = BTreeMap::new();
    for h in 1..=400u64 {
        let changes = vec![(hot, acc(1000 + h, h))];
        let ((s, hash, _), n) = deletes_skipped_by(|| commit_changes(&store, state, prev, changes));
        state = s;
        prev = hash;
        skipped.insert(h, n);
    }
    assert!(most_values_of_one_key(&store) <= kept as usize + 1);
    assert!(
        skipped[&400] <= skipped[&50] + 8,
        "one hot key: tombstones stepped over per commit grow with the chain: {:?}",
        [
            (50, skipped[&50]),
            (200, skipped[&200]),
            (400, skipped[&400])
        ]
    );
}
