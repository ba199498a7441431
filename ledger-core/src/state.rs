//! Accounts and the state root.
//!
//! [`State`] is the ledger after some block: every account with a non-zero balance or nonce, and the
//! sparse Merkle tree ([`crate::smt`]) that commits to them. An account sits in the tree under
//! `address.state_key()` with value `SHA-256(canonical encoding of the Account)`; the all-zero account
//! is absent, so "never used" and "emptied" are the same state and have the same root.
//!
//! Executing transactions never touches the [`State`]: a [`StateOverlay`] records the accounts that
//! change on top of a `&State` (in a hash map for lookups, sorted by address once on the way out:
//! 30% faster than a `BTreeMap` for a 10,000-transfer block, and no map order reaches an output).
//! A block's changes become an [`ExecutedBlock`] (sorted changes, per-transaction receipts, the
//! post-state root), which [`State::commit`] applies.
//!
//! Nothing is ever cloned per block. The post-state root of a block that is not committed yet is
//! computed by applying its changes to the tree in place and remembering the inverse batch: the tree
//! is then *ahead* of the committed accounts by one speculative batch. Committing that same block
//! costs nothing more (the tree is already there); anything else first reverts the batch. So the
//! usual life of a block, validated (or built) once and then committed, updates the tree once.
//! Every reader sees the committed state: [`State::root`] returns the committed root while a batch
//! is pending, and [`State::prove`] reverts it first (hence `&mut`).
//!
//! The accounts are held in a `HashMap` for lookups only; nothing iterates it into an output
//! ([`State::accounts_sorted`] sorts).

use std::collections::HashMap;

use borsh::{BorshDeserialize, BorshSerialize};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::Hash;
use crate::smt::{self, ProofError, SparseMerkleTree};
use crate::tx::{Transaction, TxError, VerifiedTransaction};
use crate::types::{Address, Amount, Height, Nonce};

/// Batches at least this large hash their keys and values on rayon workers; smaller ones are
/// cheaper on the calling thread than waking the pool.
const PARALLEL_MIN_CHANGES: usize = 256;

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

    /// The value the state tree stores for this account: SHA-256 of its canonical encoding, or
    /// `None` for the empty account (absent from the tree).
    pub fn state_hash(&self) -> Option<Hash> {
        if self.is_empty() {
            return None;
        }
        // The canonical encoding is two little-endian u64s. Written into a stack buffer: this runs
        // twice per changed account per block, and an allocation costs as much as the hash.
        let mut buf = [0u8; 16];
        let mut out: &mut [u8] = &mut buf;
        match BorshSerialize::serialize(self, &mut out) {
            Ok(()) if out.is_empty() => Some(Hash::digest(&buf)),
            _ => Some(Hash::digest(&codec::encode(self))),
        }
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
}

/// All accounts and the sparse Merkle tree over them.
#[derive(Clone, Default)]
pub struct State {
    /// The committed accounts.
    accounts: HashMap<Address, Account>,
    /// The tree over `accounts`, plus `pending.redo` when a speculative batch is pending.
    tree: SparseMerkleTree,
    pending: Option<Pending>,
}

/// A speculative batch the tree is ahead of the committed accounts by.
#[derive(Clone, Debug)]
struct Pending {
    /// The committed root, before `redo`.
    committed_root: Hash,
    redo: Vec<(Hash, Option<Hash>)>,
    /// Restores the committed tree.
    undo: Vec<(Hash, Account)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never dump a million accounts into a log line.
        f.debug_struct("State")
            .field("accounts", &self.accounts.len())
            .field("root", &self.root())
            .finish()
    }
}

impl State {
    /// The empty state (root `Hash::ZERO`).
    pub fn new() -> State {
        State::default()
    }

    /// Rebuilds a state from stored accounts (the node's reopen path) or from genesis. Empty
    /// accounts are skipped (they are absent by definition); an address given twice, or balances
    /// whose sum does not fit in a `u64`, are rejected: total supply is fixed and fits, which is
    /// what makes every later credit safe.
    pub fn from_accounts(
        accounts: impl IntoIterator<Item = (Address, Account)>,
    ) -> Result<State, StateError> {
        let iter = accounts.into_iter();
        let mut map: HashMap<Address, Account> = HashMap::with_capacity(iter.size_hint().0);
        let mut supply: u64 = 0;
        for (address, account) in iter {
            if account.is_empty() {
                continue;
            }
            supply = supply
                .checked_add(account.balance.0)
                .ok_or(StateError::SupplyOverflow { address })?;
            if map.insert(address, account).is_some() {
                return Err(StateError::DuplicateAccount { address });
            }
        }
        Ok(State::from_unique_accounts(map))
    }

    /// A state over accounts already known to be non-empty, unique and of a supply that fits.
    pub(crate) fn from_unique_accounts(map: HashMap<Address, Account>) -> State {
        let mut changes: Vec<(Address, Account)> = map.iter().map(|(a, acc)| (*a, *acc)).collect();
        // Sorted so the tree batch does not depend on the hash map's order (the tree's shape
        // does not either, but this keeps the function obviously deterministic).
        changes.sort_unstable_by_key(|(a, _)| *a);
        let mut tree = SparseMerkleTree::new();
        tree.apply(tree_updates(&changes));
        State {
            accounts: map,
            tree,
            pending: None,
        }
    }

    /// The account at `address` (the empty account if it does not exist).
    pub fn get(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    /// The state root: the sparse Merkle tree's root over all committed accounts.
    pub fn root(&self) -> Hash {
        match &self.pending {
            Some(p) => p.committed_root,
            None => self.tree.root(),
        }
    }

    /// Number of existing (non-empty) accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Sum of all balances. Fits in a `u64` by construction; `u128` so tests can check that
    /// without trusting it.
    pub fn total_supply(&self) -> u128 {
        self.accounts
            .values()
            .map(|a| u128::from(a.balance.0))
            .sum()
    }

    /// Every account, sorted by address.
    pub fn accounts_sorted(&self) -> Vec<(Address, Account)> {
        let mut all: Vec<(Address, Account)> =
            self.accounts.iter().map(|(a, acc)| (*a, *acc)).collect();
        all.sort_unstable_by_key(|(a, _)| *a);
        all
    }

    /// A proof of `address`'s account (or of its absence) against [`State::root`]. `&mut` because a
    /// pending speculative batch is reverted first, so the proof is against the committed tree.
    pub fn prove(&mut self, address: &Address) -> AccountProof {
        self.discard_speculation();
        AccountProof {
            address: *address,
            account: self.get(address),
            proof: self.tree.prove(&address.state_key()),
        }
    }

    /// Reverts a pending speculative batch now instead of at the next speculation or commit. Never
    /// needed for correctness: a node may call it when a validated proposal is abandoned, to take
    /// the revert off the next block's path; a benchmark calls it to time a validation from a
    /// settled state.
    pub fn discard_speculation(&mut self) {
        if let Some(p) = self.pending.take() {
            self.tree.apply(undo_batch(&p.undo));
            debug_assert_eq!(self.tree.root(), p.committed_root);
        }
    }

    /// The root this state would have with `changes` applied. The tree is updated in place and
    /// stays ahead by this batch until the next commit or speculation (a copy of a
    /// million-account tree would cost more than the batch); the committed state, which every
    /// reader sees, does not change.
    pub(crate) fn speculative_root(&mut self, changes: &TreeChanges) -> Hash {
        if let Some(p) = &self.pending
            && p.redo == changes.redo
        {
            // The same batch on the same committed state (e.g. a node validating the block it
            // built): the tree is already there.
            return self.tree.root();
        }
        self.discard_speculation();
        let committed_root = self.tree.root();
        self.tree.apply(changes.redo.iter().copied());
        self.pending = Some(Pending {
            committed_root,
            redo: changes.redo.clone(),
            undo: changes.undo.clone(),
        });
        self.tree.root()
    }

    /// Applies an executed block's changes. Fails, changing nothing, if the block was executed on a
    /// different state.
    pub fn commit(&mut self, executed: &ExecutedBlock) -> Result<(), StateError> {
        let root = self.root();
        if root != executed.parent_state_root {
            return Err(StateError::ParentRootMismatch {
                height: executed.height,
                expected: executed.parent_state_root,
                got: root,
            });
        }
        match &self.pending {
            // The tree is already at this block's state.
            Some(p) if p.redo == executed.tree.redo => self.pending = None,
            _ => {
                self.discard_speculation();
                self.tree.apply(executed.tree.redo.iter().copied());
            }
        }
        for (address, account) in &executed.changes {
            if account.is_empty() {
                self.accounts.remove(address);
            } else {
                self.accounts.insert(*address, *account);
            }
        }
        debug_assert_eq!(self.tree.root(), executed.state_root);
        debug_assert_eq!(self.tree.len(), self.accounts.len());
        Ok(())
    }
}

/// The state-tree form of a list of changed accounts: the batch that applies them (`redo`) and the
/// committed accounts they replace (`undo`), to revert them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TreeChanges {
    redo: Vec<(Hash, Option<Hash>)>,
    /// The old accounts, not yet hashed: the hashes are only needed if a speculation is reverted,
    /// which a block that gets committed never is.
    undo: Vec<(Hash, Account)>,
}

impl TreeChanges {
    /// The tree batches for `changes` (sorted by address, one entry per address) made on `base`.
    pub(crate) fn new(base: &State, changes: &[(Address, Account)]) -> TreeChanges {
        // Two SHA-256 per changed account (key, new value): worth the rayon workers for a full
        // block.
        let one = |(address, account): &(Address, Account)| {
            let key = address.state_key();
            ((key, account.state_hash()), (key, base.get(address)))
        };
        let (redo, undo) = if changes.len() >= PARALLEL_MIN_CHANGES {
            changes.par_iter().map(one).unzip()
        } else {
            changes.iter().map(one).unzip()
        };
        TreeChanges { redo, undo }
    }
}

/// The tree batch that puts back `old` accounts.
fn undo_batch(old: &[(Hash, Account)]) -> Vec<(Hash, Option<Hash>)> {
    let one = |(key, account): &(Hash, Account)| (*key, account.state_hash());
    if old.len() >= PARALLEL_MIN_CHANGES {
        old.par_iter().map(one).collect()
    } else {
        old.iter().map(one).collect()
    }
}

/// The tree batch inserting `changes`.
fn tree_updates(changes: &[(Address, Account)]) -> Vec<(Hash, Option<Hash>)> {
    let one = |(address, account): &(Address, Account)| (address.state_key(), account.state_hash());
    if changes.len() >= PARALLEL_MIN_CHANGES {
        changes.par_iter().map(one).collect()
    } else {
        changes.iter().map(one).collect()
    }
}

/// Accounts changed by executing transactions on top of a `&State`, which stays untouched.
#[derive(Debug, Clone)]
pub struct StateOverlay<'s> {
    base: &'s State,
    /// A hash map for the lookups of execution; sorted once on the way out, so its order never
    /// reaches an output.
    changes: HashMap<Address, Account>,
}

impl<'s> StateOverlay<'s> {
    pub fn new(base: &'s State) -> StateOverlay<'s> {
        StateOverlay {
            base,
            changes: HashMap::new(),
        }
    }

    pub fn base(&self) -> &'s State {
        self.base
    }

    /// The account as changed so far.
    pub fn get(&self, address: &Address) -> Account {
        match self.changes.get(address) {
            Some(a) => *a,
            None => self.base.get(address),
        }
    }

    /// Applies one transfer: the sender pays amount + fee and its nonce moves by one, the
    /// recipient receives the amount, `proposer` receives the fee. All or nothing: on error the
    /// overlay is unchanged. Supply is conserved (the three deltas sum to zero).
    pub fn apply_tx(
        &mut self,
        tx: &VerifiedTransaction,
        proposer: &Address,
    ) -> Result<(), TxError> {
        let t = tx.tx();
        let sender = tx.sender();
        let sender_after = self.get(&sender).debit(t)?;
        // Each later party is read through the earlier ones' new values, so any aliasing of
        // sender, recipient and proposer is accounted correctly. (Sender == recipient is rejected
        // statelessly, but nothing here depends on that.)
        let recipient_before = if t.to == sender {
            sender_after
        } else {
            self.get(&t.to)
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
                self.get(proposer)
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
    pub(crate) changes: Vec<(Address, Account)>,
    pub(crate) tree: TreeChanges,
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
        &self.changes
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
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccountProof {
    pub address: Address,
    pub account: Account,
    pub proof: smt::Proof,
}

impl AccountProof {
    /// Checks that under `state_root`, `address` holds exactly `account` (absent if empty).
    pub fn verify(&self, state_root: &Hash) -> Result<(), ProofError> {
        smt::verify(
            state_root,
            &self.address.state_key(),
            self.account.state_hash().as_ref(),
            &self.proof,
        )
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
    fn state_hash_is_the_hash_of_the_canonical_encoding() {
        for a in [
            acc(1, 0),
            acc(0, 1),
            acc(u64::MAX, u64::MAX),
            acc(123_456_789, 42),
        ] {
            assert_eq!(a.state_hash(), Some(Hash::digest(&codec::encode(&a))));
        }
        assert_eq!(Account::EMPTY.state_hash(), None);
    }

    #[test]
    fn transfer_moves_amount_and_fee_and_bumps_the_nonce() {
        let s = state();
        let proposer = addr(9);
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 2, 0), &proposer)
            .expect("applies");
        assert_eq!(o.get(&addr(0)), acc(68, 1));
        assert_eq!(o.get(&addr(1)), acc(80, 3));
        assert_eq!(o.get(&proposer), acc(2, 0));
        // The base is untouched.
        assert_eq!(s.get(&addr(0)), acc(100, 0));
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
            Err(TxError::NonceTooLow {
                expected: Nonce(3),
                got: Nonce(2)
            })
        );
        assert_eq!(
            o.apply_tx(&transfer(1, addr(0), 1, 0, 4), &addr(9)),
            Err(TxError::NonceTooHigh {
                expected: Nonce(3),
                got: Nonce(4)
            })
        );
        assert_eq!(o.changed(), 0, "a failed transaction changes nothing");
    }

    #[test]
    fn insufficient_funds_counts_the_fee() {
        let s = state();
        let mut o = StateOverlay::new(&s);
        assert_eq!(
            o.apply_tx(&transfer(0, addr(1), 100, 1, 0), &addr(9)),
            Err(TxError::InsufficientFunds {
                have: Amount(100),
                need: Amount(101)
            })
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
        assert_eq!(o.apply_tx(&t, &addr(9)), Err(TxError::BalanceOverflow));
        assert_eq!(o.get(&addr(0)), acc(10, 0), "sender not debited");
    }

    #[test]
    fn proposer_fee_overflow_is_rejected() {
        let s = State::from_accounts([(addr(0), acc(10, 0))]).expect("valid");
        let mut o = StateOverlay::new(&s);
        o.changes.insert(addr(9), acc(u64::MAX, 0));
        assert_eq!(
            o.apply_tx(&transfer(0, addr(1), 1, 1, 0), &addr(9)),
            Err(TxError::BalanceOverflow)
        );
    }

    #[test]
    fn sender_as_proposer_gets_its_fee_back() {
        let s = state();
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 5, 0), &addr(0))
            .expect("applies");
        assert_eq!(o.get(&addr(0)), acc(70, 1));
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(1), 30, 5, 0), &addr(1))
            .expect("applies");
        assert_eq!(o.get(&addr(1)), acc(85, 3));
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
        assert!(s.is_empty());
        assert_eq!(s.root(), Hash::ZERO);
    }

    #[test]
    fn speculative_root_leaves_the_state_unchanged_and_commit_reaches_it() {
        let mut s = state();
        let before = s.root();
        let mut o = StateOverlay::new(&s);
        o.apply_tx(&transfer(0, addr(5), 30, 2, 0), &addr(9))
            .expect("applies");
        let changes = o.into_changes();
        let tree = TreeChanges::new(&s, &changes);
        let root = s.speculative_root(&tree);
        assert_eq!(s.root(), before);
        assert_ne!(root, before);
        s.discard_speculation();
        assert_eq!(s.root(), before);
        let executed = ExecutedBlock {
            height: Height(1),
            block_hash: Hash::ZERO,
            parent_state_root: before,
            state_root: root,
            changes: changes.clone(),
            tree,
            receipts: vec![],
            total_fees: Amount(2),
        };
        let mut twin = s.clone();
        s.commit(&executed).expect("commits");
        assert_eq!(s.root(), root);
        // The same root as a state built from scratch with the same accounts.
        assert_eq!(
            State::from_accounts(s.accounts_sorted())
                .expect("valid")
                .root(),
            root
        );
        // Committing on another state is refused and changes nothing.
        assert_eq!(
            s.commit(&executed),
            Err(StateError::ParentRootMismatch {
                height: Height(1),
                expected: before,
                got: root
            })
        );
        twin.commit(&executed).expect("commits on the twin");
        assert_eq!(twin.root(), root);
    }

    #[test]
    fn account_proofs_verify_and_tampered_ones_fail() {
        let mut s = state();
        let p = s.prove(&addr(1));
        assert_eq!(p.verify(&s.root()), Ok(()));
        let mut bad = p.clone();
        bad.account.balance = Amount(51);
        assert!(bad.verify(&s.root()).is_err());
        let root = s.root();
        let absent = s.prove(&addr(7));
        assert!(absent.account.is_empty());
        assert_eq!(absent.verify(&root), Ok(()));
        let mut bad = absent;
        bad.account.balance = Amount(1);
        assert!(bad.verify(&root).is_err());
    }

    fn executed(s: &State, changes: Vec<(Address, Account)>, state_root: Hash) -> ExecutedBlock {
        ExecutedBlock {
            height: Height(1),
            block_hash: Hash::ZERO,
            parent_state_root: s.root(),
            state_root,
            tree: TreeChanges::new(s, &changes),
            changes,
            receipts: vec![],
            total_fees: Amount(0),
        }
    }

    #[test]
    fn a_pending_speculation_is_invisible_to_readers_and_to_other_commits() {
        let mut s = state();
        let committed = s.root();
        let a = vec![(addr(0), acc(1, 1)), (addr(5), acc(99, 0))];
        let b = vec![(addr(1), acc(40, 4)), (addr(6), acc(10, 0))];
        let root_a = s.speculative_root(&TreeChanges::new(&s, &a));
        let tree_b = TreeChanges::new(&s, &b);
        let root_b = s.speculative_root(&tree_b);
        assert_ne!(root_a, root_b);
        assert_eq!(s.root(), committed, "readers see the committed root");
        // A proof while a batch is pending is against the committed state.
        let p = s.prove(&addr(0));
        assert_eq!(p.account, acc(100, 0));
        assert_eq!(p.verify(&committed), Ok(()));
        // Speculate A again, then commit B: B's root, as if A had never been tried.
        assert_eq!(s.speculative_root(&TreeChanges::new(&s, &a)), root_a);
        let eb = executed(&s, b.clone(), root_b);
        s.commit(&eb).expect("commits");
        assert_eq!(s.root(), root_b);
        assert_eq!(
            State::from_accounts(s.accounts_sorted())
                .expect("valid")
                .root(),
            root_b
        );
        // The fast path: commit the block that is pending.
        let c = vec![(addr(1), Account::EMPTY)];
        let root_c = s.speculative_root(&TreeChanges::new(&s, &c));
        let ec = executed(&s, c, root_c);
        s.commit(&ec).expect("commits");
        assert_eq!(s.root(), root_c);
        assert_eq!(
            s.get(&addr(1)),
            Account::EMPTY,
            "an emptied account is removed"
        );
        assert_eq!(s.len(), 2);
        s.discard_speculation();
        assert_eq!(s.root(), root_c);
    }
}
