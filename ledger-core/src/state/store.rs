//! Where a [`State`](super::State) keeps its accounts and its tree: the [`StateStore`] trait, and
//! [`MemStore`], the in-memory store of tests, the simulator and `ledger-node verify`.
//!
//! The node implements [`StateStore`] over RocksDB. `ledger-core` does no I/O itself: a store is
//! handed in, and the tree code only calls its methods.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use jmt::storage::{Node, NodeKey, TreeUpdateBatch};
use jmt::{KeyHash, OwnedValue, Version};

use super::Account;
use crate::hash::Hash;
use crate::types::{Address, Height};

/// Why a store could not answer. The node's RocksDB errors and decoding failures end up here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O: {0}")]
    Io(String),
    #[error("corrupt {what} at {key}: {reason}")]
    Corrupt {
        what: &'static str,
        key: String,
        reason: String,
    },
}

/// What committing one block (or loading one chunk of genesis accounts) writes to the state: the
/// changed accounts and the tree's new and stale nodes at one version. Built by
/// [`State`](super::State) only, so its parts agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrites {
    /// The height whose state this is (0 for genesis chunks).
    pub height: Height,
    /// The tree version written.
    pub version: Version,
    /// The state root at `version`.
    pub root: Hash,
    /// Every changed account with its new value, sorted by address (an empty account is deleted).
    pub accounts: Vec<(Address, Account)>,
    /// New tree nodes and values, and the nodes that stop being part of the newest tree.
    pub tree: TreeUpdateBatch,
}

impl StateWrites {
    /// The account as of these writes, if they change it.
    pub fn account(&self, address: &Address) -> Option<Account> {
        self.accounts
            .binary_search_by(|(a, _)| a.cmp(address))
            .ok()
            .map(|i| self.accounts[i].1)
    }

    /// The node written under `key`, if these writes hold it.
    pub fn node(&self, key: &NodeKey) -> Option<&Node> {
        self.tree.node_batch.get_node(key)
    }

    /// The value written for `key_hash` at this version (`Some(None)`: deleted).
    pub fn value(&self, key_hash: &KeyHash) -> Option<Option<&OwnedValue>> {
        self.tree
            .node_batch
            .values()
            .get(&(self.version, *key_hash))
            .map(Option::as_ref)
    }
}

/// The storage under a [`State`](super::State). All reads are of committed data: what a store
/// holds never changes except through [`StateStore::write`] or its owner's own block commit.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The accounts at the store's newest version, in the order asked (`None`: no such account).
    fn accounts(&self, addresses: &[Address]) -> Result<Vec<Option<Account>>, StoreError>;
    /// The tree node stored under `key`.
    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError>;
    /// The newest value of `key_hash` at a version at most `max_version` (`None`: absent or
    /// deleted).
    fn tree_value(
        &self,
        max_version: Version,
        key_hash: &KeyHash,
    ) -> Result<Option<OwnedValue>, StoreError>;
    /// Every account at the newest version, sorted by address (for checks and tests: O(accounts)).
    fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError>;
    /// Writes `writes` now, durably as far as this store is durable. Genesis loading uses it,
    /// and [`State::commit`](super::State::commit) too when [`StateStore::writes_on_commit`].
    fn write(&self, writes: &StateWrites) -> Result<(), StoreError>;
    /// Whether [`State::commit`](super::State::commit) writes a block's state through
    /// [`StateStore::write`] (`true`), or the owner writes it with the rest of the block and then
    /// calls [`State::persisted`](super::State::persisted) (`false`, the node: one batch per
    /// block).
    fn writes_on_commit(&self) -> bool;
}

/// A [`StateStore`] in memory, with every version kept.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: RwLock<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    accounts: HashMap<Address, Account>,
    nodes: HashMap<NodeKey, Node>,
    /// (key, version) -> value; `None` records a deletion.
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemInner> {
        // A panic while holding the lock leaves plain maps behind: still consistent.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of tree nodes held (every version).
    pub fn node_count(&self) -> usize {
        self.read().nodes.len()
    }
}

impl StateStore for MemStore {
    fn accounts(&self, addresses: &[Address]) -> Result<Vec<Option<Account>>, StoreError> {
        let inner = self.read();
        Ok(addresses
            .iter()
            .map(|a| inner.accounts.get(a).copied())
            .collect())
    }

    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        Ok(self.read().nodes.get(key).cloned())
    }

    fn tree_value(
        &self,
        max_version: Version,
        key_hash: &KeyHash,
    ) -> Result<Option<OwnedValue>, StoreError> {
        let inner = self.read();
        Ok(inner
            .values
            .range((*key_hash, 0)..=(*key_hash, max_version))
            .next_back()
            .and_then(|(_, v)| v.clone()))
    }

    fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        let mut all: Vec<(Address, Account)> = self
            .read()
            .accounts
            .iter()
            .map(|(a, acc)| (*a, *acc))
            .collect();
        all.sort_unstable_by_key(|(a, _)| *a);
        Ok(all)
    }

    fn write(&self, writes: &StateWrites) -> Result<(), StoreError> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for (address, account) in &writes.accounts {
            if account.is_empty() {
                inner.accounts.remove(address);
            } else {
                inner.accounts.insert(*address, *account);
            }
        }
        for (key, node) in writes.tree.node_batch.nodes() {
            inner.nodes.insert(key.clone(), node.clone());
        }
        for ((version, key_hash), value) in writes.tree.node_batch.values() {
            inner.values.insert((*key_hash, *version), value.clone());
        }
        Ok(())
    }

    fn writes_on_commit(&self) -> bool {
        true
    }
}
