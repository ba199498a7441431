//! Adversarial review of the versioned state tree (commit 1be8538, ADR 0012).
//!
//! The findings (`FINDING:`) were fixed; their tests stay as regression tests.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jmt::storage::{Node, NodeKey};
use jmt::{KeyHash, OwnedValue, Version};
use ledger_core::state::{
    Account, MemStore, State, StateError, StateStore, StateWrites, StoreError, checked_accounts,
};
use ledger_core::{Address, Amount, Height, Keypair, Nonce};

fn addr(i: u32) -> Address {
    Keypair::dev("state-review", i).address()
}

fn acc(balance: u64, nonce: u64) -> Account {
    Account {
        balance: Amount(balance),
        nonce: Nonce(nonce),
    }
}

/// A store whose reads of tree nodes below the root fail once `fail` is set: a disk error, or
/// a node that does not decode (the node's `Store` returns `StoreError::Corrupt` for it).
#[derive(Debug, Default)]
struct FailingStore {
    inner: MemStore,
    fail: AtomicBool,
}

impl StateStore for FailingStore {
    fn accounts(&self, a: &[Address]) -> Result<Vec<Option<Account>>, StoreError> {
        self.inner.accounts(a)
    }
    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        if self.fail.load(Ordering::SeqCst) && !key.nibble_path().is_empty() {
            return Err(StoreError::Corrupt {
                what: "state node",
                key: format!("{key:?}"),
                reason: "does not decode".into(),
            });
        }
        self.inner.tree_node(key)
    }
    fn tree_value(&self, v: Version, k: &KeyHash) -> Result<Option<OwnedValue>, StoreError> {
        self.inner.tree_value(v, k)
    }
    fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        self.inner.all_accounts()
    }
    fn write(&self, w: &StateWrites) -> Result<(), StoreError> {
        self.inner.write(w)
    }
    fn writes_on_commit(&self) -> bool {
        true
    }
}

/// FINDING: ADR 0012 says jmt's errors stop at the state module and callers see `StateError`
/// (a store's own `StoreError` passed through). That holds for a tree update, but not for a
/// proof: jmt's `get_with_proof` builds sibling hashes with `tree_reader.get_node(..).unwrap()`
/// (`InternalNode::build_sibling`), so a store error or a missing node on a sibling panics inside
/// `State::prove` / `prove_at` instead of returning an error. A corrupt node (or a version pruned
/// only in part, which `MAX_PRUNED_PER_COMMIT` allows) turns a proof request into a panic.
#[test]
fn review_a_store_error_during_a_proof_is_an_error_not_a_panic() {
    let store = Arc::new(FailingStore::default());
    let accounts =
        checked_accounts((0..50).map(|i| (addr(i), acc(100 + u64::from(i), 0)))).expect("valid");
    let mut state = State::load(store.clone(), &accounts).expect("loads");
    let root = state.root();
    assert_eq!(state.prove(&addr(1)).expect("proves").verify(&root), Ok(()));
    store.fail.store(true, Ordering::SeqCst);
    // The tree update reports the store's error as an error ...
    let r = state.speculate(Height(1), vec![(addr(0), acc(1, 1))]);
    assert!(
        matches!(r, Err(StateError::Store(_)) | Err(StateError::Tree(_))),
        "speculate: {r:?}"
    );
    // ... a proof must too.
    let proof = catch_unwind(AssertUnwindSafe(|| state.prove(&addr(1))));
    match proof {
        Err(_) => panic!("State::prove panicked on a store error instead of returning it"),
        Ok(r) => assert!(
            matches!(r, Err(StateError::Store(_)) | Err(StateError::Tree(_))),
            "prove: {r:?}"
        ),
    }
}

/// Soundness check (passes): the root of an empty block is the parent's, its writes mark the old
/// root copy stale, and two empty blocks in a row keep both heights provable on a store that
/// keeps every version.
#[test]
fn review_empty_blocks_in_a_row_keep_roots_and_proofs() {
    let accounts = checked_accounts((0..5).map(|i| (addr(i), acc(10, 0)))).expect("valid");
    let mut s = State::load(Arc::new(MemStore::new()), &accounts).expect("loads");
    let root = s.root();
    let w1 = s.speculate(Height(1), vec![]).expect("speculates");
    assert_eq!(w1.root, root);
    // The same key (version, height, changes) gives the cached writes.
    let again = s.speculate(Height(1), vec![]).expect("speculates");
    assert!(Arc::ptr_eq(&w1, &again));
    // A different height at the same version is computed again.
    let other = s.speculate(Height(2), vec![]).expect("speculates");
    assert!(!Arc::ptr_eq(&w1, &other));
    assert_eq!(other.height, Height(2));
}
