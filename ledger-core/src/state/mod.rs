//! Accounts and the state root.
//!
//! [`State`] is the ledger after some block: every account with a non-zero balance or nonce, and the
//! Jellyfish Merkle tree (the `jmt` crate, SHA-256; ADR 0012) that commits to them. An account sits
//! in the tree under the key `SHA-256(address)` with value the canonical encoding of the
//! [`Account`]; the all-zero account is absent, so "never used" and "emptied" are the same state and
//! have the same root.
//!
//! A `State` holds no accounts itself: it reads them, and the tree's nodes, from a [`StateStore`]
//! (the node's RocksDB, or [`MemStore`]). The tree is versioned: every committed block writes its
//! new nodes at a new version and leaves the older versions readable (until the store prunes
//! them), so opening a state is reading its head, and [`State::prove_at`] proves an account at any
//! kept height.
//!
//! Executing transactions never touches the `State`: a [`StateOverlay`] records the accounts that
//! change on top of a `&State` (reads go to the store, in one batch per block with
//! [`StateOverlay::prefetch`]). The block's new tree nodes are computed against the committed
//! version without writing anything ([`StateWrites`]); a block that is never committed leaves
//! nothing behind. [`State::commit`] makes them the head: written at once by a store that
//! [`StateStore::writes_on_commit`], or held in memory until the owner wrote them with the rest of
//! the block and called [`State::persisted`] (the node: one synced batch per block).

mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::proof::SparseMerkleProof;
use jmt::storage::{LeafNode, Node, NodeKey, StaleNodeIndex, TreeReader};
use jmt::{KeyHash, OwnedValue, RootHash, Sha256Jmt, Version};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::Hash;
use crate::tx::{Transaction, TxError, VerifiedTransaction};
use crate::types::{Address, Amount, Height, Nonce};

pub use store::{MemStore, StateStore, StateWrites, StoreError};

/// Batches at least this large encode their keys and values on rayon workers; smaller ones are
/// cheaper on the calling thread than waking the pool.
const PARALLEL_MIN_CHANGES: usize = 256;

/// Accounts per tree version when a large account set (a genesis) is loaded: bounds the memory of
/// one tree update (about 300 bytes per account).
pub const LOAD_CHUNK_ACCOUNTS: usize = 100_000;

/// One account: its balance in base units and the nonce its next transaction must carry.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub balance: Amount,
    pub nonce: Nonce,
}

impl Account {
    /// The account that does not exist (zero balance, zero nonce): it is absent from the tree.
    pub const EMPTY: Account = Account {
        balance: Amount(0),
        nonce: Nonce(0),
    };

    pub fn is_empty(&self) -> bool {
        *self == Account::EMPTY
    }

    /// The value the state tree stores for this account: its canonical encoding, or `None` for the
    /// empty account (absent from the tree).
    pub fn state_value(&self) -> Option<OwnedValue> {
        (!self.is_empty()).then(|| codec::encode(self))
    }

    /// The sender's account after paying for `tx`: checks that the nonce is exactly the account's
    /// and that the balance covers amount + fee. The mempool uses the same rule on admission.
    pub fn debit(&self, tx: &Transaction) -> Result<Account, TxError> {
        if tx.nonce < self.nonce {
            return Err(TxError::NonceTooLow {
                expected: self.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > self.nonce {
            return Err(TxError::NonceTooHigh {
                expected: self.nonce,
                got: tx.nonce,
            });
        }
        let need = tx.total_cost()?;
        let balance = self
            .balance
            .checked_sub(need)
            .ok_or(TxError::InsufficientFunds {
                have: self.balance,
                need,
            })?;
        // An account that has sent 2^64 - 1 transactions can send no more: there is no next nonce.
        // Unreachable in practice; reported as the only nonce that could have been accepted.
        let nonce = self.nonce.next().ok_or(TxError::NonceTooHigh {
            expected: self.nonce,
            got: tx.nonce,
        })?;
        Ok(Account { balance, nonce })
    }

    /// The account after receiving `amount`.
    pub fn credit(&self, amount: Amount) -> Result<Account, TxError> {
        Ok(Account {
            balance: self
                .balance
                .checked_add(amount)
                .ok_or(TxError::BalanceOverflow)?,
            nonce: self.nonce,
        })
    }
}

/// Why accounts do not form a state, or an executed block does not fit this state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("account {address} appears twice")]
    DuplicateAccount { address: Address },
    #[error("total supply overflows u64 at account {address}")]
    SupplyOverflow { address: Address },
    #[error(
        "executed block {height} was built on state root {expected}, this state's root is {got}"
    )]
    ParentRootMismatch {
        height: Height,
        expected: Hash,
        got: Hash,
    },
    #[error("executed block {height} writes tree version {got}, the next version is {expected}")]
    VersionMismatch {
        height: Height,
        expected: Version,
        got: Version,
    },
    #[error("no state is kept for height {height} (head {head}): pruned or not reached")]
    HeightNotKept { height: Height, head: Height },
    #[error("the stored tree at version {version} has root {got}, expected {expected}")]
    RootMismatch {
        version: Version,
        expected: Hash,
        got: Hash,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree code failed on what the store returned (missing or inconsistent nodes).
    #[error("state tree: {0}")]
    Tree(String),
}

fn tree_error(e: anyhow::Error) -> StateError {
    // The store's own errors come back through jmt's `anyhow` unchanged.
    match e.downcast::<StoreError>() {
        Ok(s) => StateError::Store(s),
        Err(e) => StateError::Tree(format!("{e:#}")),
    }
}

/// The state after some block: its root, its version in the tree, and the store that holds it.
/// Not `Clone`: two states over one store would race to write the same versions.
pub struct State {
    store: Arc<dyn StateStore>,
    height: Height,
    version: Version,
    root: Hash,
    /// Committed blocks whose writes the store does not hold yet, oldest first (see
    /// [`State::persisted`]). Reads look here first.
    unpersisted: VecDeque<Arc<StateWrites>>,
    /// The last block's writes computed on this state: building a block and then validating it
    /// (or validating one twice) computes its tree once.
    speculation: Option<Arc<StateWrites>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("height", &self.height)
            .field("version", &self.version)
            .field("root", &self.root)
            .field("unpersisted", &self.unpersisted.len())
            .finish()
    }
}

/// The root of the tree with no accounts (jmt's placeholder hash).
pub const EMPTY_ROOT: Hash = Hash(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__");

/// The key of the root node of `version` (jmt keeps its constructor to itself; the empty nibble
/// path's canonical encoding is its length, 0 as a u64, and no bytes).
fn root_key(version: Version) -> Result<NodeKey, StateError> {
    let path = borsh::from_slice(&[0u8; 12])
        .map_err(|e| StateError::Tree(format!("the empty nibble path: {e}")))?;
    Ok(NodeKey::new(version, path))
}

fn key_of(address: &Address) -> KeyHash {
    KeyHash(address.state_key().0)
}

impl State {
    /// A state in memory ([`MemStore`]) holding `accounts` at height 0. Empty accounts are
    /// skipped (they are absent by definition); an address given twice, or balances whose sum does
    /// not fit in a `u64`, are rejected: total supply is fixed and fits, which is what makes every
    /// later credit safe.
    pub fn from_accounts(
        accounts: impl IntoIterator<Item = (Address, Account)>,
    ) -> Result<State, StateError> {
        let accounts = checked_accounts(accounts)?;
        State::load(Arc::new(MemStore::new()), &accounts)
    }

    /// Writes `accounts` (sorted by address, unique, non-empty, of a supply that fits: see
    /// [`checked_accounts`]) into an empty `store` as the state of height 0, in versions of
    /// [`LOAD_CHUNK_ACCOUNTS`] accounts (so memory does not grow with a large genesis), through
    /// [`StateStore::write`]. The state's version is the last chunk's.
    pub fn load(
        store: Arc<dyn StateStore>,
        accounts: &[(Address, Account)],
    ) -> Result<State, StateError> {
        let mut state = State {
            store,
            height: Height(0),
            version: 0,
            root: EMPTY_ROOT,
            unpersisted: VecDeque::new(),
            speculation: None,
        };
        let mut chunks = accounts.chunks(LOAD_CHUNK_ACCOUNTS).peekable();
        if chunks.peek().is_none() {
            // The empty tree still has a root node at version 0.
            let writes = state.tree_writes(Height(0), 0, Vec::new())?;
            state.store.write(&writes)?;
            state.root = writes.root;
            return Ok(state);
        }
        for (i, chunk) in chunks.enumerate() {
            let version = i as Version;
            let writes = state.tree_writes(Height(0), version, chunk.to_vec())?;
            state.store.write(&writes)?;
            state.version = version;
            state.root = writes.root;
        }
        Ok(state)
    }

    /// The state already in `store` at `height`, whose tree version is `version`: reads the root
    /// and checks it is `expected_root` (the head block's; `None` at genesis, which has no block).
    /// Nothing is rebuilt.
    pub fn open(
        store: Arc<dyn StateStore>,
        height: Height,
        version: Version,
        expected_root: Option<Hash>,
    ) -> Result<State, StateError> {
        let mut state = State {
            store,
            height,
            version,
            root: EMPTY_ROOT,
            unpersisted: VecDeque::new(),
            speculation: None,
        };
        let got = state.root_at_version(version)?;
        if let Some(expected) = expected_root
            && got != expected
        {
            return Err(StateError::RootMismatch {
                version,
                expected,
                got,
            });
        }
        state.root = got;
        Ok(state)
    }

    /// The state root after block `height` as the store holds it, if that version is kept.
    pub fn root_at(&self, height: Height) -> Result<Hash, StateError> {
        let not_kept = StateError::HeightNotKept {
            height,
            head: self.height,
        };
        let version = self.version_of(height).ok_or(not_kept.clone())?;
        match self.with_tree(|tree| tree.get_root_hash_option(version))? {
            Some(root) => Ok(Hash(root.0)),
            None => Err(not_kept),
        }
    }

    fn root_at_version(&self, version: Version) -> Result<Hash, StateError> {
        let root = self.with_tree(|tree| tree.get_root_hash(version))?;
        Ok(Hash(root.0))
    }

    /// Runs `f` on the tree over this state. jmt unwraps some reads (the siblings of a proof) and
    /// asserts its own invariants: a store error or a corrupt node becomes a `StateError` here,
    /// not a panic of the caller's thread (the node's consensus driver).
    fn with_tree<T>(
        &self,
        f: impl FnOnce(&Sha256Jmt<'_, TreeView<'_>>) -> anyhow::Result<T>,
    ) -> Result<T, StateError> {
        let view = TreeView {
            state: self,
            error: std::sync::Mutex::new(None),
        };
        let tree = Sha256Jmt::new(&view);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&tree)));
        let store_error = view.error.lock().ok().and_then(|mut e| e.take());
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(store_error.map_or_else(|| tree_error(e), StateError::Store)),
            Err(panic) => Err(store_error.map_or_else(
                || {
                    let what = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("a panic");
                    StateError::Tree(format!("the tree code failed: {what}"))
                },
                StateError::Store,
            )),
        }
    }

    /// The store under this state.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The height of the block this is the state after (0: genesis).
    pub fn height(&self) -> Height {
        self.height
    }

    /// The tree version of this state.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The tree version of the state after block `height`, if `height` is at most this state's.
    pub fn version_of(&self, height: Height) -> Option<Version> {
        let back = self.height.0.checked_sub(height.0)?;
        self.version.checked_sub(back)
    }

    /// The state root.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Committed blocks whose writes the owner has not persisted yet.
    pub fn unpersisted(&self) -> usize {
        self.unpersisted.len()
    }

    /// The account at `address` (the empty account if it does not exist).
    pub fn get(&self, address: &Address) -> Result<Account, StateError> {
        Ok(self.accounts(std::slice::from_ref(address))?[0])
    }

    /// The accounts at `addresses`, in order: unpersisted blocks first, then one store read for
    /// the rest.
    pub fn accounts(&self, addresses: &[Address]) -> Result<Vec<Account>, StateError> {
        let mut out: Vec<Option<Account>> = addresses
            .iter()
            .map(|a| self.unpersisted.iter().rev().find_map(|w| w.account(a)))
            .collect();
        let missing: Vec<Address> = addresses
            .iter()
            .zip(&out)
            .filter(|(_, o)| o.is_none())
            .map(|(a, _)| *a)
            .collect();
        if !missing.is_empty() {
            let mut stored = self.store.accounts(&missing)?.into_iter();
            for slot in out.iter_mut().filter(|o| o.is_none()) {
                *slot = Some(stored.next().flatten().unwrap_or_default());
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Every account, sorted by address. O(accounts): for checks and tests.
    pub fn accounts_sorted(&self) -> Result<Vec<(Address, Account)>, StateError> {
        let mut all: HashMap<Address, Account> = self.store.all_accounts()?.into_iter().collect();
        for w in &self.unpersisted {
            for (address, account) in &w.accounts {
                if account.is_empty() {
                    all.remove(address);
                } else {
                    all.insert(*address, *account);
                }
            }
        }
        let mut all: Vec<(Address, Account)> = all.into_iter().collect();
        all.sort_unstable_by_key(|(a, _)| *a);
        Ok(all)
    }

    /// Sum of all balances. O(accounts). Fits in a `u64` by construction; `u128` so tests can
    /// check that without trusting it.
    pub fn total_supply(&self) -> Result<u128, StateError> {
        Ok(self
            .accounts_sorted()?
            .iter()
            .map(|(_, a)| u128::from(a.balance.0))
            .sum())
    }

    /// A proof of `address`'s account (or of its absence) against [`State::root`].
    pub fn prove(&self, address: &Address) -> Result<AccountProof, StateError> {
        self.prove_at(address, self.height)
    }

    /// A proof of `address`'s account (or of its absence) against the state root of block
    /// `height`, if the store still keeps that version.
    pub fn prove_at(&self, address: &Address, height: Height) -> Result<AccountProof, StateError> {
        let version = self.version_of(height).ok_or(StateError::HeightNotKept {
            height,
            head: self.height,
        })?;
        // A version whose root is gone was pruned.
        if self
            .with_tree(|tree| tree.get_root_hash_option(version))?
            .is_none()
        {
            return Err(StateError::HeightNotKept {
                height,
                head: self.height,
            });
        }
        let (value, proof) =
            self.with_tree(|tree| tree.get_with_proof(key_of(address), version))?;
        let account = match value {
            None => Account::EMPTY,
            Some(bytes) => codec::decode(&bytes).map_err(|e| {
                StateError::Store(StoreError::Corrupt {
                    what: "state value",
                    key: address.to_string(),
                    reason: e.to_string(),
                })
            })?,
        };
        Ok(AccountProof {
            address: *address,
            account,
            proof,
        })
    }

    /// The tree writes of `changes` (sorted by address, one entry per address) as the state after
    /// block `height`, at `version`, computed on this state without writing anything.
    fn tree_writes(
        &self,
        height: Height,
        version: Version,
        accounts: Vec<(Address, Account)>,
    ) -> Result<StateWrites, StateError> {
        let one =
            |(address, account): &(Address, Account)| (key_of(address), account.state_value());
        let set: Vec<(KeyHash, Option<OwnedValue>)> = if accounts.len() >= PARALLEL_MIN_CHANGES {
            accounts.par_iter().map(one).collect()
        } else {
            accounts.iter().map(one).collect()
        };
        // The batch insertion is about twice as fast, but takes neither deletions nor an empty
        // set. Deletions do not happen under the ledger's rules (an account that existed keeps a
        // balance or a nonce), so every non-empty block takes the fast path; both give the same
        // tree (a test checks it).
        let (root, mut batch) = if !set.is_empty() && set.iter().all(|(_, v)| v.is_some()) {
            let set: Vec<(KeyHash, OwnedValue)> =
                set.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            let (roots, batch) =
                self.with_tree(|tree| tree.batch_put_value_sets(vec![set], None, version))?;
            (roots.first().copied(), batch)
        } else {
            let (root, batch) = self.with_tree(|tree| tree.put_value_set(set, version))?;
            (Some(root), batch)
        };
        let root = root.ok_or_else(|| StateError::Tree("no root for the new version".into()))?;
        if version > 0 {
            // Every version has its own root node, so the previous one is stale from this version
            // on. jmt does not say so when nothing changed (it copies the root) or when the old
            // root was the empty tree's: say it, or a store that prunes keeps those forever.
            batch.stale_node_index_batch.insert(StaleNodeIndex {
                stale_since_version: version,
                node_key: root_key(version - 1)?,
            });
        }
        Ok(StateWrites {
            height,
            version,
            root: Hash(root.0),
            accounts,
            tree: batch,
        })
    }

    /// The writes of a block at `height` changing `changes` (sorted by address, one entry per
    /// address) on this state, computed without writing anything, once per distinct change set:
    /// the same changes on the same state give the same writes. Validation calls it; a test or a
    /// tool may too.
    pub fn speculate(
        &mut self,
        height: Height,
        changes: Vec<(Address, Account)>,
    ) -> Result<Arc<StateWrites>, StateError> {
        let version = self.version + 1;
        if let Some(w) = &self.speculation
            && w.version == version
            && w.height == height
            && w.accounts == changes
        {
            return Ok(w.clone());
        }
        let writes = Arc::new(self.tree_writes(height, version, changes)?);
        self.speculation = Some(writes.clone());
        Ok(writes)
    }

    /// Forgets the last speculation (a validated proposal that will not be committed).
    pub fn discard_speculation(&mut self) {
        self.speculation = None;
    }

    /// Makes an executed block's state the head. Fails, changing nothing, if the block was executed
    /// on a different state. The store writes it now ([`StateStore::writes_on_commit`]), or it is
    /// held in memory until [`State::persisted`].
    pub fn commit(&mut self, executed: &ExecutedBlock) -> Result<(), StateError> {
        if self.root != executed.parent_state_root {
            return Err(StateError::ParentRootMismatch {
                height: executed.height,
                expected: executed.parent_state_root,
                got: self.root,
            });
        }
        let writes = &executed.writes;
        if writes.version != self.version + 1 {
            return Err(StateError::VersionMismatch {
                height: executed.height,
                expected: self.version + 1,
                got: writes.version,
            });
        }
        if self.store.writes_on_commit() {
            self.store.write(writes)?;
        } else {
            self.unpersisted.push_back(writes.clone());
        }
        self.height = executed.height;
        self.version = writes.version;
        self.root = executed.state_root;
        self.speculation = None;
        Ok(())
    }

    /// The owner has written the state of every block up to tree version `version` to the store:
    /// reads of them go to the store from now on.
    pub fn persisted(&mut self, version: Version) {
        while self
            .unpersisted
            .front()
            .is_some_and(|w| w.version <= version)
        {
            self.unpersisted.pop_front();
        }
    }
}

/// Checks accounts for a state: drops empty ones, rejects an address given twice or a supply that
/// does not fit in a `u64`; returns them sorted by address.
pub fn checked_accounts(
    accounts: impl IntoIterator<Item = (Address, Account)>,
) -> Result<Vec<(Address, Account)>, StateError> {
    let mut out: Vec<(Address, Account)> = Vec::new();
    let mut supply: u64 = 0;
    for (address, account) in accounts {
        if account.is_empty() {
            continue;
        }
        supply = supply
            .checked_add(account.balance.0)
            .ok_or(StateError::SupplyOverflow { address })?;
        out.push((address, account));
    }
    out.sort_by_key(|(a, _)| *a);
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(StateError::DuplicateAccount { address: w[0].0 });
    }
    Ok(out)
}

/// The tree as jmt reads it: unpersisted blocks first, then the store.
struct TreeView<'s> {
    state: &'s State,
    /// The first error the store returned: jmt may turn it into a panic or its own message.
    error: std::sync::Mutex<Option<StoreError>>,
}

impl TreeView<'_> {
    fn record<T>(&self, r: Result<T, StoreError>) -> anyhow::Result<T> {
        r.map_err(|e| {
            if let Ok(mut first) = self.error.lock() {
                first.get_or_insert_with(|| e.clone());
            }
            anyhow::Error::new(e)
        })
    }
}

impl TreeReader for TreeView<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        for w in self.state.unpersisted.iter().rev() {
            if let Some(node) = w.node(node_key) {
                return Ok(Some(node.clone()));
            }
        }
        self.record(self.state.store.tree_node(node_key))
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        for w in self.state.unpersisted.iter().rev() {
            if w.version <= max_version
                && let Some(value) = w.value(&key_hash)
            {
                return Ok(value.cloned());
            }
        }
        self.record(self.state.store.tree_value(max_version, &key_hash))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's state-sync restore asks for it; this tree never restores.
        Err(anyhow::anyhow!("the rightmost leaf is not tracked"))
    }
}

/// Why an account proof does not show what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the proof does not verify: {reason}")]
pub struct ProofError {
    pub reason: String,
}

/// Why a transaction could not be applied: it breaks a rule, or the state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Rule(#[from] TxError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Accounts changed by executing transactions on top of a `&State`, which stays untouched.
#[derive(Debug)]
pub struct StateOverlay<'s> {
    base: &'s State,
    /// Accounts read from the base, so each is read once.
    read: HashMap<Address, Account>,
    /// A hash map for the lookups of execution; sorted once on the way out, so its order never
    /// reaches an output.
    changes: HashMap<Address, Account>,
}

impl<'s> StateOverlay<'s> {
    pub fn new(base: &'s State) -> StateOverlay<'s> {
        StateOverlay {
            base,
            read: HashMap::new(),
            changes: HashMap::new(),
        }
    }

    pub fn base(&self) -> &'s State {
        self.base
    }

    /// Reads `addresses` from the base in one batch (the store's multi-read) before execution
    /// asks for them one at a time.
    pub fn prefetch(
        &mut self,
        addresses: impl IntoIterator<Item = Address>,
    ) -> Result<(), StateError> {
        let mut wanted: Vec<Address> = addresses
            .into_iter()
            .filter(|a| !self.read.contains_key(a))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let accounts = self.base.accounts(&wanted)?;
        self.read.extend(wanted.into_iter().zip(accounts));
        Ok(())
    }

    /// The account as changed so far.
    pub fn get(&mut self, address: &Address) -> Result<Account, StateError> {
        if let Some(a) = self.changes.get(address) {
            return Ok(*a);
        }
        if let Some(a) = self.read.get(address) {
            return Ok(*a);
        }
        let a = self.base.get(address)?;
        self.read.insert(*address, a);
        Ok(a)
    }

    /// Applies one transfer: the sender pays amount + fee and its nonce moves by one, the
    /// recipient receives the amount, `proposer` receives the fee. All or nothing: on error the
    /// overlay is unchanged. Supply is conserved (the three deltas sum to zero).
    pub fn apply_tx(
        &mut self,
        tx: &VerifiedTransaction,
        proposer: &Address,
    ) -> Result<(), ApplyError> {
        let t = tx.tx();
        let sender = tx.sender();
        let sender_after = self.get(&sender)?.debit(t)?;
        // Each later party is read through the earlier ones' new values, so any aliasing of
        // sender, recipient and proposer is accounted correctly. (Sender == recipient is rejected
        // statelessly, but nothing here depends on that.)
        let recipient_before = if t.to == sender {
            sender_after
        } else {
            self.get(&t.to)?
        };
        let recipient_after = recipient_before.credit(t.amount)?;
        let proposer_after = if t.fee.0 == 0 {
            None
        } else {
            let before = if *proposer == t.to {
                recipient_after
            } else if *proposer == sender {
                sender_after
            } else {
                self.get(proposer)?
            };
            Some(before.credit(t.fee)?)
        };
        self.changes.insert(sender, sender_after);
        self.changes.insert(t.to, recipient_after);
        if let Some(p) = proposer_after {
            self.changes.insert(*proposer, p);
        }
        Ok(())
    }

    /// Number of accounts changed so far.
    pub fn changed(&self) -> usize {
        self.changes.len()
    }

    /// The changed accounts, sorted by address.
    pub fn into_changes(self) -> Vec<(Address, Account)> {
        let mut changes: Vec<(Address, Account)> = self.changes.into_iter().collect();
        changes.sort_unstable_by_key(|(a, _)| *a);
        changes
    }
}

/// One transaction of an executed block, in block order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReceipt {
    pub hash: Hash,
    pub sender: Address,
    /// Paid to the block's proposer.
    pub fee: Amount,
}

/// A block whose transactions were executed on its parent state: what [`State::commit`] applies
/// and what the node persists. Built only by [`crate::validation`], so its parts agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedBlock {
    pub(crate) height: Height,
    pub(crate) block_hash: Hash,
    pub(crate) parent_state_root: Hash,
    pub(crate) state_root: Hash,
    pub(crate) writes: Arc<StateWrites>,
    pub(crate) receipts: Vec<TxReceipt>,
    pub(crate) total_fees: Amount,
}

impl ExecutedBlock {
    pub fn height(&self) -> Height {
        self.height
    }

    pub fn block_hash(&self) -> Hash {
        self.block_hash
    }

    /// The root of the state the block was executed on.
    pub fn parent_state_root(&self) -> Hash {
        self.parent_state_root
    }

    /// The root after the block (equal to the block header's `state_root`).
    pub fn state_root(&self) -> Hash {
        self.state_root
    }

    /// Every account the block changed, with its new value, sorted by address (at most one entry
    /// per address). An empty account means the account no longer exists.
    pub fn changes(&self) -> &[(Address, Account)] {
        &self.writes.accounts
    }

    /// What committing the block writes to the state store: the changed accounts and the tree's
    /// nodes at the block's version.
    pub fn writes(&self) -> &Arc<StateWrites> {
        &self.writes
    }

    /// One receipt per transaction, in block order.
    pub fn receipts(&self) -> &[TxReceipt] {
        &self.receipts
    }

    /// Sum of the fees paid to the proposer.
    pub fn total_fees(&self) -> Amount {
        self.total_fees
    }
}

/// An account's state (or absence, as the empty account) with its proof against a state root.
#[derive(Debug, Clone, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccountProof {
    pub address: Address,
    pub account: Account,
    pub proof: StateProof,
}

/// A proof of an account's value (or absence) in the state tree: jmt's sparse Merkle proof over
/// SHA-256.
pub type StateProof = SparseMerkleProof<sha2_10::Sha256>;

impl AccountProof {
    /// Checks that under `state_root`, `address` holds exactly `account` (absent if empty). Pure:
    /// needs neither a store nor a tree.
    pub fn verify(&self, state_root: &Hash) -> Result<(), ProofError> {
        self.proof
            .verify(
                RootHash(state_root.0),
                key_of(&self.address),
                self.account.state_value(),
            )
            .map_err(|e| ProofError {
                reason: format!("{e:#}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::tx::SignedTransaction;
    use crate::types::ChainId;

    fn chain() -> ChainId {
        ChainId::new("state-test").expect("valid")
    }

    fn addr(i: u32) -> Address {
        Keypair::dev("state", i).address()
    }

    fn acc(balance: u64, nonce: u64) -> Account {
        Account {
            balance: Amount(balance),
            nonce: Nonce(nonce),
        }
    }

    fn transfer(from: u32, to: Address, amount: u64, fee: u64, nonce: u64) -> VerifiedTransaction {
        let key = Keypair::dev("state", from);
        let stx: SignedTransaction = Transaction {
            chain_id: chain(),
            from: key.public(),
            to,
            amount: Amount(amount),
            fee: Amount(fee),
            nonce: Nonce(nonce),
            memo: vec![],
        }
        .sign(&key);
        stx.verify(&chain()).expect("valid transaction")
    }

    fn state() -> State {
        State::from_accounts([(addr(0), acc(100, 0)), (addr(1), acc(50, 3))]).expect("valid")
    }

    #[test]
    fn state_value_is_the_canonical_encoding() {
        for a in [
            acc(1, 0),
            acc(0, 1),
            acc(u64::MAX, u64::MAX),
            acc(123_456_789, 42),
        ] {
            assert_eq!(a.state_value(), Some(codec::encode(&a)));
        }
        assert_eq!(Account::EMPTY.state_value(), None);
    }

    #[test]
    fn the_empty_root_is_jmts() {
        assert_eq!(
            EMPTY_ROOT.0,
            jmt::JellyfishMerkleTree::<MemStoreReader, sha2_10::Sha256>::EMPTY_ROOT.0
        );
        let s = State::from_accounts([]).expect("empty state");
        assert_eq!(s.root(), EMPTY_ROOT);
    }

    /// A reader type for naming jmt's associated constant.
    struct MemStoreReader;
    impl TreeReader for MemStoreReader {
        fn get_node_option(&self, _: &NodeKey) -> anyhow::Result<Option<Node>> {
            Ok(None)
        }
        fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
            Ok(None)
        }
        fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
            Ok(None)
        }
    }

    #[test]
    fn transfer_moves_amount_and_fee_and_bumps_the_nonce() {
        let s = state();
        let proposer = addr(9);
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 2, 0), &proposer)
            .expect("applies");
        assert_eq!(o.get(&addr(0)), Ok(acc(68, 1)));
        assert_eq!(o.get(&addr(1)), Ok(acc(80, 3)));
        assert_eq!(o.get(&proposer), Ok(acc(2, 0)));
        // The base is untouched.
        assert_eq!(s.get(&addr(0)), Ok(acc(100, 0)));
        let changes = o.into_changes();
        assert!(
            changes.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted by address"
        );
        let total: u64 = changes.iter().map(|(_, a)| a.balance.0).sum();
        assert_eq!(total, 150, "supply conserved");
    }

    #[test]
    fn nonce_too_low_and_too_high_name_the_expected_nonce() {
        let s = state();
        let mut o = StateOverlay::new(&s);
        assert_eq!(
            o.apply_tx(&transfer(1, addr(0), 1, 0, 2), &addr(9)),
            Err(ApplyError::Rule(TxError::NonceTooLow {
                expected: Nonce(3),
                got: Nonce(2)
            }))
        );
        assert_eq!(
            o.apply_tx(&transfer(1, addr(0), 1, 0, 4), &addr(9)),
            Err(ApplyError::Rule(TxError::NonceTooHigh {
                expected: Nonce(3),
                got: Nonce(4)
            }))
        );
        assert_eq!(o.changed(), 0, "a failed transaction changes nothing");
    }

    #[test]
    fn insufficient_funds_counts_the_fee() {
        let s = state();
        let mut o = StateOverlay::new(&s);
        assert_eq!(
            o.apply_tx(&transfer(0, addr(1), 100, 1, 0), &addr(9)),
            Err(ApplyError::Rule(TxError::InsufficientFunds {
                have: Amount(100),
                need: Amount(101)
            }))
        );
        assert_eq!(o.changed(), 0);
    }

    #[test]
    fn recipient_overflow_is_rejected_atomically() {
        let s = State::from_accounts([(addr(0), acc(10, 0)), (addr(1), acc(u64::MAX - 10, 0))])
            .expect("supply fits exactly");
        let mut o = StateOverlay::new(&s);
        // Impossible in a state built by from_accounts (supply fits), so build the overlay by hand.
        o.changes.insert(addr(2), acc(u64::MAX, 0));
        let t = transfer(0, addr(2), 1, 0, 0);
        assert_eq!(
            o.apply_tx(&t, &addr(9)),
            Err(ApplyError::Rule(TxError::BalanceOverflow))
        );
        assert_eq!(o.get(&addr(0)), Ok(acc(10, 0)), "sender not debited");
    }

    #[test]
    fn proposer_fee_overflow_is_rejected() {
        let s = State::from_accounts([(addr(0), acc(10, 0))]).expect("valid");
        let mut o = StateOverlay::new(&s);
        o.changes.insert(addr(9), acc(u64::MAX, 0));
        assert_eq!(
            o.apply_tx(&transfer(0, addr(1), 1, 1, 0), &addr(9)),
            Err(ApplyError::Rule(TxError::BalanceOverflow))
        );
    }

    #[test]
    fn sender_as_proposer_gets_its_fee_back() {
        let s = state();
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 5, 0), &addr(0))
            .expect("applies");
        assert_eq!(o.get(&addr(0)), Ok(acc(70, 1)));
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 5, 0), &addr(1))
            .expect("applies");
        assert_eq!(o.get(&addr(1)), Ok(acc(85, 3)));
    }

    #[test]
    fn from_accounts_rejects_duplicates_and_supply_overflow() {
        assert_eq!(
            State::from_accounts([(addr(0), acc(1, 0)), (addr(0), acc(2, 0))]).map(|_| ()),
            Err(StateError::DuplicateAccount { address: addr(0) })
        );
        assert_eq!(
            State::from_accounts([(addr(0), acc(u64::MAX, 0)), (addr(1), acc(1, 0))]).map(|_| ()),
            Err(StateError::SupplyOverflow { address: addr(1) })
        );
        let s = State::from_accounts([(addr(0), Account::EMPTY)]).expect("valid");
        assert_eq!(s.accounts_sorted(), Ok(vec![]));
        assert_eq!(s.root(), EMPTY_ROOT);
    }

    fn changes_of(s: &State, txs: &[VerifiedTransaction]) -> Vec<(Address, Account)> {
        let mut o = StateOverlay::new(s);
        for t in txs {
            o.apply_tx(t, &addr(9)).expect("applies");
        }
        o.into_changes()
    }

    fn executed(s: &mut State, changes: Vec<(Address, Account)>) -> ExecutedBlock {
        let height = Height(s.height().0 + 1);
        let parent_state_root = s.root();
        let writes = s.speculate(height, changes).expect("tree writes");
        ExecutedBlock {
            height,
            block_hash: Hash::ZERO,
            parent_state_root,
            state_root: writes.root,
            writes,
            receipts: vec![],
            total_fees: Amount(0),
        }
    }

    #[test]
    fn speculation_leaves_the_state_unchanged_and_commit_reaches_it() {
        let mut s = state();
        let before = s.root();
        let changes = changes_of(&s, &[transfer(0, addr(5), 30, 2, 0)]);
        let e = executed(&mut s, changes);
        assert_eq!(s.root(), before, "a speculation is not the state");
        assert_eq!(s.get(&addr(5)), Ok(Account::EMPTY));
        assert_ne!(e.state_root, before);
        // The same changes again: the same writes, not computed twice.
        let again = executed(&mut s, e.changes().to_vec());
        assert!(Arc::ptr_eq(&again.writes, &e.writes));
        s.commit(&e).expect("commits");
        assert_eq!(s.root(), e.state_root);
        assert_eq!(s.height(), Height(1));
        assert_eq!(s.get(&addr(5)), Ok(acc(30, 0)));
        // The same root as a state built from scratch with the same accounts.
        let all = s.accounts_sorted().expect("accounts");
        assert_eq!(
            State::from_accounts(all).expect("valid").root(),
            e.state_root
        );
        // Committing again is refused and changes nothing.
        assert_eq!(
            s.commit(&e),
            Err(StateError::ParentRootMismatch {
                height: Height(1),
                expected: before,
                got: e.state_root
            })
        );
    }

    #[test]
    fn a_block_that_is_not_committed_leaves_nothing_in_the_store() {
        let mut s = state();
        let store = s.store().clone();
        let nodes_before = store.all_accounts().expect("accounts");
        let c = changes_of(&s, &[transfer(0, addr(5), 30, 2, 0)]);
        let a = executed(&mut s, c);
        let c = changes_of(&s, &[transfer(1, addr(6), 10, 1, 3)]);
        let b = executed(&mut s, c);
        assert_ne!(a.state_root, b.state_root);
        assert_eq!(store.all_accounts().expect("accounts"), nodes_before);
        // B wins: A's tree is nowhere; the state is B's, and a fresh build agrees.
        s.commit(&b).expect("commits");
        assert_eq!(s.get(&addr(5)), Ok(Account::EMPTY));
        assert_eq!(s.get(&addr(6)), Ok(acc(10, 0)));
        let all = s.accounts_sorted().expect("accounts");
        assert_eq!(
            State::from_accounts(all).expect("valid").root(),
            b.state_root
        );
        // A, computed on the old version, no longer fits.
        assert!(matches!(
            s.commit(&a),
            Err(StateError::ParentRootMismatch { .. })
        ));
    }

    #[test]
    fn an_empty_block_keeps_the_root_and_provable_heights() {
        let mut s = state();
        let root = s.root();
        let e = executed(&mut s, vec![]);
        assert_eq!(e.state_root, root);
        assert!(
            e.writes
                .tree
                .stale_node_index_batch
                .iter()
                .any(|n| n.node_key.version() == s.version()),
            "the old root copy is marked stale, so a pruning store can delete it"
        );
        s.commit(&e).expect("commits");
        assert_eq!(s.root(), root);
        let p = s.prove_at(&addr(0), Height(0)).expect("height 0 kept");
        assert_eq!(p.verify(&root), Ok(()));
    }

    #[test]
    fn account_proofs_verify_and_tampered_ones_fail() {
        let s = state();
        let p = s.prove(&addr(1)).expect("proves");
        assert_eq!(p.account, acc(50, 3));
        assert_eq!(p.verify(&s.root()), Ok(()));
        let mut bad = p.clone();
        bad.account.balance = Amount(51);
        assert!(bad.verify(&s.root()).is_err());
        let mut bad = p.clone();
        bad.address = addr(0);
        assert!(bad.verify(&s.root()).is_err());
        assert!(p.verify(&Hash::digest(b"another root")).is_err());
        let root = s.root();
        let absent = s.prove(&addr(7)).expect("proves absence");
        assert!(absent.account.is_empty());
        assert_eq!(absent.verify(&root), Ok(()));
        let mut bad = absent;
        bad.account.balance = Amount(1);
        assert!(bad.verify(&root).is_err());
    }

    #[test]
    fn proofs_at_older_heights_are_against_those_roots() {
        let mut s = state();
        let root0 = s.root();
        let c = changes_of(&s, &[transfer(0, addr(5), 30, 2, 0)]);
        let e = executed(&mut s, c);
        s.commit(&e).expect("commits");
        let old = s.prove_at(&addr(0), Height(0)).expect("kept");
        assert_eq!(old.account, acc(100, 0));
        assert_eq!(old.verify(&root0), Ok(()));
        assert!(old.verify(&s.root()).is_err());
        let new = s.prove_at(&addr(0), Height(1)).expect("head");
        assert_eq!(new.account, acc(68, 1));
        assert_eq!(new.verify(&s.root()), Ok(()));
        assert_eq!(
            s.prove_at(&addr(0), Height(2)).map(|_| ()),
            Err(StateError::HeightNotKept {
                height: Height(2),
                head: Height(1)
            })
        );
    }

    /// A store that writes on the owner's word, like the node's: committed blocks are read from
    /// memory until `persisted`.
    #[derive(Debug, Default)]
    struct Deferred(MemStore);

    impl StateStore for Deferred {
        fn accounts(&self, a: &[Address]) -> Result<Vec<Option<Account>>, StoreError> {
            self.0.accounts(a)
        }
        fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
            self.0.tree_node(key)
        }
        fn tree_value(&self, v: Version, k: &KeyHash) -> Result<Option<OwnedValue>, StoreError> {
            self.0.tree_value(v, k)
        }
        fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
            self.0.all_accounts()
        }
        fn write(&self, w: &StateWrites) -> Result<(), StoreError> {
            self.0.write(w)
        }
        fn writes_on_commit(&self) -> bool {
            false
        }
    }

    #[test]
    fn unpersisted_blocks_are_read_from_memory_until_the_owner_persists_them() {
        let store = Arc::new(Deferred::default());
        let accounts =
            checked_accounts([(addr(0), acc(100, 0)), (addr(1), acc(50, 3))]).expect("valid");
        let mut s = State::load(store.clone(), &accounts).expect("loads");
        let c = changes_of(&s, &[transfer(0, addr(5), 30, 2, 0)]);
        let e1 = executed(&mut s, c);
        s.commit(&e1).expect("commits");
        let c = changes_of(&s, &[transfer(0, addr(6), 10, 1, 1)]);
        let e2 = executed(&mut s, c);
        s.commit(&e2).expect("commits on an unpersisted parent");
        assert_eq!(s.unpersisted(), 2);
        assert_eq!(
            store.0.accounts(&[addr(5)]),
            Ok(vec![None]),
            "not written yet"
        );
        assert_eq!(s.get(&addr(5)), Ok(acc(30, 0)));
        assert_eq!(s.prove(&addr(6)).expect("proves").verify(&s.root()), Ok(()));
        // The owner writes block 1, then block 2.
        store.write(&e1.writes).expect("writes");
        s.persisted(e1.writes.version);
        assert_eq!(s.unpersisted(), 1);
        store.write(&e2.writes).expect("writes");
        s.persisted(e2.writes.version);
        assert_eq!(s.unpersisted(), 0);
        assert_eq!(s.get(&addr(6)), Ok(acc(10, 0)));
        let reopened = State::open(store.clone(), s.height(), s.version(), Some(s.root()))
            .expect("reopens on the head");
        assert_eq!(reopened.root(), s.root());
        assert!(matches!(
            State::open(store, s.height(), s.version(), Some(Hash::ZERO)),
            Err(StateError::RootMismatch { .. })
        ));
    }

    #[test]
    fn batch_and_one_by_one_insertion_give_the_same_tree() {
        // The fast path (no deletion) against jmt's general one (forced by a deletion of an
        // absent key, which changes nothing).
        let s = state();
        let changes: Vec<(Address, Account)> =
            (10..60).map(|i| (addr(i), acc(u64::from(i), 0))).collect();
        let mut sorted = changes.clone();
        sorted.sort_by_key(|(a, _)| *a);
        let fast = s.tree_writes(Height(1), 1, sorted.clone()).expect("fast");
        let mut with_delete = sorted;
        with_delete.push((addr(999), Account::EMPTY));
        with_delete.sort_by_key(|(a, _)| *a);
        let general = s.tree_writes(Height(1), 1, with_delete).expect("general");
        assert_eq!(fast.root, general.root);
        assert_eq!(
            fast.tree.node_batch.nodes(),
            general.tree.node_batch.nodes()
        );
    }

    #[test]
    fn a_large_account_set_loads_in_chunks_to_the_same_root() {
        let accounts: Vec<(Address, Account)> =
            checked_accounts((0..(LOAD_CHUNK_ACCOUNTS as u64 + 10)).map(|i| {
                let h = Hash::digest(&i.to_le_bytes());
                let mut a = [0u8; 20];
                a.copy_from_slice(&h.0[..20]);
                (Address(a), acc(1, 0))
            }))
            .expect("valid");
        let chunked = State::load(Arc::new(MemStore::new()), &accounts).expect("loads");
        assert_eq!(chunked.version(), 1, "two chunks");
        let one = State {
            store: Arc::new(MemStore::new()),
            height: Height(0),
            version: 0,
            root: EMPTY_ROOT,
            unpersisted: VecDeque::new(),
            speculation: None,
        }
        .tree_writes(Height(0), 0, accounts)
        .expect("one version");
        assert_eq!(chunked.root(), one.root);
    }
}
