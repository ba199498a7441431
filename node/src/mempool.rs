//! The mempool: verified transactions waiting for a block.
//!
//! [`Pool`] is the plain data structure with every rule (unit-tested without threads); the owner
//! ([`spawn`]) runs it on a dedicated thread, because admission reads accounts from RocksDB, and
//! everyone else talks to it through a cloneable [`MempoolHandle`].
//!
//! Rules:
//! - **Signatures are verified once**, by the handle before admission (in parallel for a batch),
//!   or by gossip validation for peers' transactions; the pool only holds `VerifiedTransaction`s
//!   and answers [`MempoolHandle::verified`] so block validation can skip transactions it already
//!   checked.
//! - **Lanes**: the owner serves the consensus driver's requests first, then API clients, then
//!   peers' gossip, each from a bounded queue of its own: a flood of gossip or submissions never
//!   delays a block build or a commit.
//! - **Nonce window**: `account.nonce <= nonce <= account.nonce + nonce_window`.
//! - **Balance** covers the cost (amount + fee) of all the sender's pending transactions.
//! - **Fee** at least `min_fee`; same sender and nonce with a higher fee **replaces**.
//! - **Caps** on count and bytes, globally and per sender. When full, a transaction with a higher fee
//!   **evicts** the lowest-fee *tail* transaction (the highest nonce of its sender, so eviction never
//!   opens a nonce gap in front of other pending transactions).
//! - **Expiry**: a transaction pending longer than `tx_ttl_secs` is dropped.
//! - **Re-check after each commit**: included transactions leave; the senders whose accounts changed
//!   are re-checked (stale nonces, balances that no longer cover), and what is removed is remembered
//!   as rejected with its reason, so `GET /v1/transactions/{hash}` can say why.
//! - **Rejected or dropped**: a transaction that is invalid (at admission, after a commit, at block
//!   building) is remembered as *rejected* with its `TxError`; a valid one the pool let go of
//!   (evicted, replaced, expired) as *dropped* with its [`DropReason`], so a client can tell "fix
//!   it" from "send it again".
//! - **Candidates** for a block are, per sender, the contiguous run of nonces starting at the
//!   account's nonce, merged across senders by fee (highest first) without breaking nonce order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::api::DropReason;
use ledger_core::state::Account;
use ledger_core::{
    Address, Amount, ChainId, Hash, Nonce, SignedTransaction, TxError, VerifiedTransaction,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::MempoolConfig;
use crate::metrics::Metrics;
use crate::net_types::NetOutbound;
use crate::store::StoreError;

/// Messages queued to the mempool owner from the consensus driver (candidates, commits): served
/// before anything else.
const DRIVER_QUEUE_MSGS: usize = 64;
/// Messages queued from API clients (submissions, status and nonce reads) and the expiry ticker.
const CLIENT_QUEUE_MSGS: usize = 4096;
/// Batches of gossiped transactions queued (already verified); a full lane drops new ones.
const PEER_QUEUE_BATCHES: usize = 64;

/// Where the pool reads committed account state (the store, or a map in tests).
pub trait AccountSource: Send + 'static {
    /// The account at the head; a missing account is the default (zero balance, nonce 0).
    fn account(&self, address: &Address) -> Result<Account, StoreError>;
}

impl AccountSource for Arc<crate::store::Store> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(crate::store::Store::account(self, address)?.unwrap_or_default())
    }
}

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The transaction itself is not acceptable (the user must change it).
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The pool is full of transactions paying at least as much; try later or with a higher fee.
    #[error(
        "mempool is full ({txs} transactions, {bytes} bytes) and the fee does not beat the lowest"
    )]
    Full { txs: usize, bytes: usize },
    /// The sender already has the most pending transactions allowed.
    #[error("sender has {max} pending transactions, the most allowed")]
    SenderFull { max: usize },
    /// Reading the account failed (the node logs it; the client sees an internal error).
    #[error("store: {0}")]
    Store(String),
}

/// The outcome of one admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// New in the pool.
    Added,
    /// Already in the pool (the same bytes were submitted before).
    AlreadyPending,
}

/// Where a transaction stands as far as the pool knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStatus {
    Pending(Box<SignedTransaction>),
    /// Invalid: refused at admission, or removed after a commit or a block build found it so.
    Rejected(TxError),
    /// Valid, but let go of: evicted, replaced or expired.
    Dropped(DropReason),
    Unknown,
}

/// Why a transaction recently left the pool (or never entered it), as remembered for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Removal {
    Rejected(TxError),
    Dropped(DropReason),
}

impl From<Removal> for PoolStatus {
    fn from(r: Removal) -> PoolStatus {
        match r {
            Removal::Rejected(e) => PoolStatus::Rejected(e),
            Removal::Dropped(d) => PoolStatus::Dropped(d),
        }
    }
}

/// Sizes for metrics and `/v1/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub txs: usize,
    pub bytes: usize,
}

#[derive(Debug)]
struct Entry {
    tx: VerifiedTransaction,
    cost: Amount,
    admitted: Instant,
    /// Admission order, to break fee ties (older first) deterministically.
    seq: u64,
}

impl Entry {
    fn fee(&self) -> u64 {
        self.tx.tx().fee.0
    }
}

#[derive(Debug, Default)]
struct SenderQueue {
    /// The account's committed nonce as last seen: the first nonce a block can include.
    base_nonce: Nonce,
    by_nonce: BTreeMap<Nonce, Hash>,
    /// The sum of the queued entries' costs, kept so that admission checks the balance in constant
    /// time instead of walking the queue (a sender with hundreds pending made admission quadratic).
    /// It cannot overflow: every admission checked that the sum fits the balance, a `u64`.
    cost: u64,
}

/// A bounded record of recent rejections and drops: insertion order, oldest forgotten first.
#[derive(Debug)]
struct RecentRejections {
    max_len: usize,
    map: HashMap<Hash, Removal>,
    order: VecDeque<Hash>,
}

impl RecentRejections {
    fn new(max_len: usize) -> Self {
        RecentRejections {
            max_len,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, hash: Hash, reason: Removal) {
        if self.map.insert(hash, reason).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > self.max_len {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, hash: &Hash) -> Option<&Removal> {
        self.map.get(hash)
    }

    fn note_rejected(&mut self, hash: Hash, reason: TxError) {
        self.insert(hash, Removal::Rejected(reason));
    }

    fn note_dropped(&mut self, hash: Hash, reason: DropReason) {
        self.insert(hash, Removal::Dropped(reason));
    }

    fn remove(&mut self, hash: &Hash) {
        // The order queue keeps the stale hash; it is skipped harmlessly when it falls out.
        self.map.remove(hash);
    }
}

/// The pool and all its rules. Not thread-safe by design: one owner drives it.
#[derive(Debug)]
pub struct Pool {
    cfg: MempoolConfig,
    ttl: Duration,
    entries: HashMap<Hash, Entry>,
    senders: HashMap<Address, SenderQueue>,
    /// (fee, Reverse(seq), hash) of each sender's highest-nonce entry: the eviction candidates.
    /// The first element is the cheapest, newest tail.
    tails: BTreeSet<(u64, Reverse<u64>, Hash)>,
    /// Admission order for expiry: (seq, hash). Entries removed otherwise are skipped lazily.
    by_age: VecDeque<(u64, Hash)>,
    bytes: usize,
    next_seq: u64,
    rejected: RecentRejections,
}

impl Pool {
    pub fn new(cfg: MempoolConfig) -> Pool {
        Pool {
            ttl: Duration::from_secs(cfg.tx_ttl_secs),
            rejected: RecentRejections::new(cfg.rejected_cache_len),
            cfg,
            entries: HashMap::new(),
            senders: HashMap::new(),
            tails: BTreeSet::new(),
            by_age: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            txs: self.entries.len(),
            bytes: self.bytes,
        }
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    pub fn status(&self, hash: &Hash) -> PoolStatus {
        if let Some(e) = self.entries.get(hash) {
            return PoolStatus::Pending(Box::new(e.tx.signed().clone()));
        }
        match self.rejected.get(hash) {
            Some(r) => r.clone().into(),
            None => PoolStatus::Unknown,
        }
    }

    /// Remembers a rejection that happened before the pool (e.g. a bad signature).
    pub fn record_rejected(&mut self, hash: Hash, reason: TxError) {
        if !self.entries.contains_key(&hash) {
            self.rejected.note_rejected(hash, reason);
        }
    }

    /// The nonce a sender's next new transaction should carry: the account nonce plus the
    /// contiguous run of pending nonces. `None` if the sender has nothing pending.
    pub fn next_nonce(&self, sender: &Address) -> Option<Nonce> {
        let q = self.senders.get(sender)?;
        let mut n = q.base_nonce;
        for nonce in q.by_nonce.keys() {
            if *nonce == n {
                n = n.next()?;
            } else if *nonce > n {
                break;
            }
        }
        Some(n)
    }

    /// The already-verified transaction with this hash, if pending.
    pub fn get_verified(&self, hash: &Hash) -> Option<&VerifiedTransaction> {
        self.entries.get(hash).map(|e| &e.tx)
    }

    /// Admits `tx` against `account` (the sender's committed state).
    pub fn admit(
        &mut self,
        tx: VerifiedTransaction,
        account: &Account,
        now: Instant,
    ) -> Result<Admitted, AdmitError> {
        let hash = tx.hash();
        if self.entries.contains_key(&hash) {
            return Ok(Admitted::AlreadyPending);
        }
        let result = self.try_admit(tx, account, now);
        if let Err(AdmitError::Tx(reason)) = &result {
            self.rejected.note_rejected(hash, reason.clone());
        }
        result
    }

    fn try_admit(
        &mut self,
        tx: VerifiedTransaction,
        account: &Account,
        now: Instant,
    ) -> Result<Admitted, AdmitError> {
        let t = tx.tx();
        let sender = tx.sender();
        let hash = tx.hash();
        if t.fee.0 < self.cfg.min_fee {
            return Err(TxError::FeeTooLow {
                min: Amount(self.cfg.min_fee),
                got: t.fee,
            }
            .into());
        }
        if t.nonce < account.nonce {
            return Err(TxError::NonceTooLow {
                expected: account.nonce,
                got: t.nonce,
            }
            .into());
        }
        if t.nonce.0 > account.nonce.0.saturating_add(self.cfg.nonce_window) {
            return Err(TxError::NonceTooHigh {
                expected: account.nonce,
                got: t.nonce,
            }
            .into());
        }
        let cost = t.total_cost()?;
        let queue = self.senders.get(&sender);
        let replaced: Option<Hash> = queue.and_then(|q| q.by_nonce.get(&t.nonce).copied());
        if let Some(old) = replaced.and_then(|h| self.entries.get(&h))
            && old.fee() >= t.fee.0
        {
            // Replacement must pay strictly more, or anyone could churn the pool for free.
            return Err(TxError::FeeTooLow {
                min: Amount(old.fee().saturating_add(1)),
                got: t.fee,
            }
            .into());
        }
        // The balance must cover every pending transaction of the sender plus this one.
        let replaced_cost = replaced
            .and_then(|h| self.entries.get(&h))
            .map_or(0, |e| e.cost.0);
        let queued = queue.map_or(0, |q| q.cost).saturating_sub(replaced_cost);
        let need = cost
            .checked_add(Amount(queued))
            .ok_or(TxError::AmountOverflow)?;
        if need > account.balance {
            return Err(TxError::InsufficientFunds {
                have: account.balance,
                need,
            }
            .into());
        }
        let pending_of_sender = queue.map_or(0, |q| q.by_nonce.len());
        if replaced.is_none() && pending_of_sender >= self.cfg.max_txs_per_account {
            return Err(AdmitError::SenderFull {
                max: self.cfg.max_txs_per_account,
            });
        }
        // Room: a replacement frees its predecessor's bytes; otherwise evict cheaper tails.
        let freed = replaced
            .and_then(|h| self.entries.get(&h))
            .map_or(0, |e| e.tx.encoded_len());
        let size = tx.encoded_len();
        let count_after = |pool: &Pool| pool.entries.len() + usize::from(replaced.is_none());
        let bytes_after = |pool: &Pool| pool.bytes.saturating_sub(freed).saturating_add(size);
        let mut evict = Vec::new();
        {
            let mut count = count_after(self);
            let mut bytes = bytes_after(self);
            let mut tails = self.tails.iter();
            while count > self.cfg.max_txs || bytes > self.cfg.max_bytes {
                let Some((fee, _, h)) = tails.next() else {
                    return Err(AdmitError::Full {
                        txs: self.entries.len(),
                        bytes: self.bytes,
                    });
                };
                // Never evict the sender's own queue to make room for itself (it would evict the
                // predecessor this transaction needs), and only for a strictly higher fee.
                let Some(victim) = self.entries.get(h) else {
                    continue;
                };
                if victim.tx.sender() == sender {
                    continue;
                }
                if *fee >= t.fee.0 {
                    return Err(AdmitError::Full {
                        txs: self.entries.len(),
                        bytes: self.bytes,
                    });
                }
                count -= 1;
                bytes = bytes.saturating_sub(victim.tx.encoded_len());
                evict.push(*h);
            }
        }
        for h in evict {
            if self.remove(&h).is_some() {
                self.rejected
                    .note_dropped(h, DropReason::Evicted { by_fee: t.fee });
            }
        }
        if let Some(old) = replaced
            && self.remove(&old).is_some()
        {
            self.rejected
                .note_dropped(old, DropReason::Replaced { by: hash });
        }
        // Insert.
        let seq = self.next_seq;
        self.next_seq += 1;
        let nonce = t.nonce;
        self.rejected.remove(&hash);
        let q = self.senders.entry(sender).or_default();
        q.base_nonce = account.nonce;
        if let Some((_, old_tail)) = q.by_nonce.last_key_value()
            && let Some(e) = self.entries.get(old_tail)
        {
            self.tails.remove(&(e.fee(), Reverse(e.seq), *old_tail));
        }
        q.by_nonce.insert(nonce, hash);
        // Fits: `need`, which counts it, is at most the balance.
        q.cost = q.cost.saturating_add(cost.0);
        self.bytes += size;
        self.by_age.push_back((seq, hash));
        self.entries.insert(
            hash,
            Entry {
                tx,
                cost,
                admitted: now,
                seq,
            },
        );
        self.refresh_tail(&sender);
        // After the entry is in: compaction keeps the records of live entries only.
        self.compact_age_queue();
        Ok(Admitted::Added)
    }

    /// Re-registers `sender`'s current tail in `tails` (after the caller removed the old one).
    fn refresh_tail(&mut self, sender: &Address) {
        let Some(q) = self.senders.get(sender) else {
            return;
        };
        if let Some((_, h)) = q.by_nonce.last_key_value()
            && let Some(e) = self.entries.get(h)
        {
            self.tails.insert((e.fee(), Reverse(e.seq), *h));
        }
    }

    /// Removes one entry, keeping every index consistent. Returns it.
    fn remove(&mut self, hash: &Hash) -> Option<Entry> {
        let e = self.entries.remove(hash)?;
        self.bytes = self.bytes.saturating_sub(e.tx.encoded_len());
        let sender = e.tx.sender();
        let mut was_tail = false;
        if let Some(q) = self.senders.get_mut(&sender) {
            was_tail = q.by_nonce.last_key_value().map(|(_, h)| h) == Some(hash);
            q.by_nonce.remove(&e.tx.tx().nonce);
            q.cost = q.cost.saturating_sub(e.cost.0);
            if q.by_nonce.is_empty() {
                self.senders.remove(&sender);
            }
        }
        if was_tail {
            self.tails.remove(&(e.fee(), Reverse(e.seq), *hash));
            self.refresh_tail(&sender);
        }
        Some(e)
    }

    /// Checks every index against the others (like reth's `assert_invariants`): each entry is in
    /// its sender's nonce queue and the queues hold nothing else, each sender's tail is its
    /// highest nonce, `bytes` is the entries' size, the caps hold, the age queue holds every
    /// entry and stays bounded by `max_txs` (stale records are compacted away), and the record of
    /// rejections and drops is bounded and names no pending transaction.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut queued = 0;
        for (sender, q) in &self.senders {
            if q.by_nonce.is_empty() {
                return Err(format!("sender {sender} has an empty queue"));
            }
            for (nonce, h) in &q.by_nonce {
                let Some(e) = self.entries.get(h) else {
                    return Err(format!(
                        "sender {sender} nonce {nonce}: {h:?} is not an entry"
                    ));
                };
                if e.tx.sender() != *sender || e.tx.tx().nonce != *nonce {
                    return Err(format!("{h:?} is queued under {sender}/{nonce}"));
                }
                queued += 1;
            }
            let cost: u128 = q
                .by_nonce
                .values()
                .filter_map(|h| self.entries.get(h))
                .map(|e| u128::from(e.cost.0))
                .sum();
            if cost != u128::from(q.cost) {
                return Err(format!(
                    "sender {sender}: the queue's cost is {}, its entries cost {cost}",
                    q.cost
                ));
            }
        }
        if queued != self.entries.len() {
            return Err(format!(
                "{} entries but {queued} in the sender queues",
                self.entries.len()
            ));
        }
        let tails: BTreeSet<(u64, Reverse<u64>, Hash)> = self
            .senders
            .values()
            .filter_map(|q| q.by_nonce.last_key_value())
            .filter_map(|(_, h)| self.entries.get(h).map(|e| (e.fee(), Reverse(e.seq), *h)))
            .collect();
        if tails != self.tails {
            return Err(format!(
                "tails index has {} records, the queues' tails are {}",
                self.tails.len(),
                tails.len()
            ));
        }
        let bytes: usize = self.entries.values().map(|e| e.tx.encoded_len()).sum();
        if bytes != self.bytes {
            return Err(format!("bytes is {}, the entries hold {bytes}", self.bytes));
        }
        if self.entries.len() > self.cfg.max_txs || self.bytes > self.cfg.max_bytes {
            return Err(format!(
                "{} txs / {} bytes above the caps",
                self.entries.len(),
                self.bytes
            ));
        }
        let aged: HashSet<(u64, Hash)> = self.by_age.iter().copied().collect();
        if let Some((h, _)) = self
            .entries
            .iter()
            .find(|(h, e)| !aged.contains(&(e.seq, **h)))
        {
            return Err(format!("{h:?} is missing from the age queue"));
        }
        if self.by_age.len() > Self::age_queue_bound(self.cfg.max_txs) {
            return Err(format!(
                "the age queue holds {} records for {} entries (max_txs {})",
                self.by_age.len(),
                self.entries.len(),
                self.cfg.max_txs
            ));
        }
        if self.rejected.map.len() > self.rejected.max_len {
            return Err(format!(
                "{} rejections and drops remembered, at most {}",
                self.rejected.map.len(),
                self.rejected.max_len
            ));
        }
        if let Some(h) = self
            .rejected
            .map
            .keys()
            .find(|h| self.entries.contains_key(*h))
        {
            return Err(format!("{h:?} is pending and remembered as removed"));
        }
        Ok(())
    }

    /// Records the age queue may hold (live and stale) before it is compacted. Live records are
    /// at most `max_txs`, so each compaction drops at least as many as it keeps: amortized O(1).
    fn age_queue_bound(max_txs: usize) -> usize {
        2 * max_txs.max(1)
    }

    /// Drops the age queue's stale records once they reach the bound: removals other than expiry
    /// (commits, evictions, replacements) leave their record behind.
    fn compact_age_queue(&mut self) {
        if self.by_age.len() >= Self::age_queue_bound(self.cfg.max_txs) {
            let entries = &self.entries;
            self.by_age
                .retain(|(seq, h)| entries.get(h).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Removes a transaction found invalid elsewhere (block building) and remembers why.
    pub fn drop_invalid(&mut self, hash: &Hash, reason: TxError) {
        if self.remove(hash).is_some() {
            self.rejected.note_rejected(*hash, reason);
        }
    }

    /// Drops transactions pending longer than the TTL. Returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some((seq, h)) = self.by_age.front().copied() {
            let Some(e) = self.entries.get(&h) else {
                self.by_age.pop_front();
                continue;
            };
            if e.seq != seq {
                // The same hash was removed and admitted again later; its new record is further back.
                self.by_age.pop_front();
                continue;
            }
            if now.saturating_duration_since(e.admitted) < self.ttl {
                break;
            }
            self.by_age.pop_front();
            if self.remove(&h).is_some() {
                n += 1;
                self.rejected.note_dropped(
                    h,
                    DropReason::Expired {
                        ttl_secs: self.cfg.tx_ttl_secs,
                    },
                );
            }
        }
        n
    }

    /// After a block commit: drops the included transactions, then re-checks the senders whose
    /// accounts changed. Returns the dropped (not included) transactions with their reasons.
    pub fn on_commit(
        &mut self,
        included: &[Hash],
        changed: &[(Address, Account)],
    ) -> Vec<(Hash, TxError)> {
        for h in included {
            self.remove(h);
            self.rejected.remove(h);
        }
        let mut dropped = Vec::new();
        for (addr, acc) in changed {
            let Some(q) = self.senders.get_mut(addr) else {
                continue;
            };
            q.base_nonce = acc.nonce;
            let pending: Vec<(Nonce, Hash)> = q.by_nonce.iter().map(|(n, h)| (*n, *h)).collect();
            let mut need = Amount(0);
            let mut broke = false;
            for (nonce, h) in pending {
                let reason = if nonce < acc.nonce {
                    Some(TxError::NonceTooLow {
                        expected: acc.nonce,
                        got: nonce,
                    })
                } else if broke {
                    None
                } else {
                    let cost = self.entries.get(&h).map_or(Amount(0), |e| e.cost);
                    match need.checked_add(cost) {
                        Some(n) if n <= acc.balance => {
                            need = n;
                            None
                        }
                        Some(n) => {
                            broke = true;
                            Some(TxError::InsufficientFunds {
                                have: acc.balance,
                                need: n,
                            })
                        }
                        None => {
                            broke = true;
                            Some(TxError::AmountOverflow)
                        }
                    }
                };
                // Once the balance runs out, every later nonce of the sender is dropped as well:
                // it could only be included after the one that no longer fits.
                let reason = match (reason, broke) {
                    (Some(r), _) => Some(r),
                    (None, true) => Some(TxError::InsufficientFunds {
                        have: acc.balance,
                        need,
                    }),
                    (None, false) => None,
                };
                if let Some(r) = reason
                    && self.remove(&h).is_some()
                {
                    self.rejected.note_rejected(h, r.clone());
                    dropped.push((h, r));
                }
            }
        }
        dropped
    }

    /// Up to `max_txs` transactions within `max_bytes` for the next block: each sender's contiguous
    /// nonce run from its committed nonce, merged across senders by fee (highest first, then oldest).
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<VerifiedTransaction> {
        // Per sender, the includable run in nonce order.
        let mut runs: Vec<Vec<&Entry>> = Vec::new();
        for q in self.senders.values() {
            let mut run = Vec::new();
            let mut expect = q.base_nonce;
            for (nonce, h) in q.by_nonce.range(q.base_nonce..) {
                if *nonce != expect {
                    break;
                }
                if let Some(e) = self.entries.get(h) {
                    run.push(e);
                }
                match expect.next() {
                    Some(n) => expect = n,
                    None => break,
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        // A heap of each run's next entry: (fee, Reverse(seq), run index, position).
        let mut heap: BinaryHeap<(u64, Reverse<u64>, usize, usize)> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r[0].fee(), Reverse(r[0].seq), i, 0))
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some((_, _, i, pos)) = heap.pop() {
            if out.len() >= max_txs {
                break;
            }
            let e = runs[i][pos];
            let size = e.tx.encoded_len();
            if bytes + size > max_bytes {
                // This sender's run stops here; smaller transactions of others may still fit.
                continue;
            }
            bytes += size;
            out.push(e.tx.clone());
            if let Some(next) = runs[i].get(pos + 1) {
                heap.push((next.fee(), Reverse(next.seq), i, pos + 1));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The owner thread and its handle.

enum Msg {
    Submit {
        txs: Vec<Result<VerifiedTransaction, (Hash, TxError)>>,
        from_peer: bool,
        reply: Option<oneshot::Sender<Vec<Result<Admitted, AdmitError>>>>,
    },
    Status {
        hash: Hash,
        reply: oneshot::Sender<PoolStatus>,
    },
    NextNonce {
        address: Address,
        reply: oneshot::Sender<Option<Nonce>>,
    },
    Candidates {
        max_txs: usize,
        max_bytes: usize,
        reply: oneshot::Sender<Vec<VerifiedTransaction>>,
    },
    Verified {
        hashes: Vec<Hash>,
        reply: oneshot::Sender<HashSet<Hash>>,
    },
    Committed {
        included: Vec<Hash>,
        changed: Vec<(Address, Account)>,
    },
    /// Candidates a block build found permanently invalid (e.g. a nonce already used).
    DropInvalid(Vec<(Hash, TxError)>),
    Tick,
    /// Ends the owner thread (at shutdown), whoever still holds a handle.
    Stop,
}

/// Why a mempool call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MempoolError {
    #[error("the mempool has stopped")]
    Stopped,
}

/// A cheap, cloneable way to talk to the mempool owner.
#[derive(Clone, Debug)]
pub struct MempoolHandle {
    /// The consensus driver's lane.
    driver: mpsc::Sender<Msg>,
    /// API clients and the ticker.
    tx: mpsc::Sender<Msg>,
    /// Gossiped transactions.
    peers: mpsc::Sender<Msg>,
    chain_id: ChainId,
    stats: watch::Receiver<PoolStats>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Submit { .. } => "Submit",
            Msg::Status { .. } => "Status",
            Msg::NextNonce { .. } => "NextNonce",
            Msg::Candidates { .. } => "Candidates",
            Msg::Verified { .. } => "Verified",
            Msg::Committed { .. } => "Committed",
            Msg::DropInvalid(_) => "DropInvalid",
            Msg::Stop => "Stop",
            Msg::Tick => "Tick",
        })
    }
}

/// Verifies stateless rules, then the signatures of those that pass in batches
/// (`ledger_core::tx::verify_signatures`): one verdict per transaction, in order.
pub fn verify_batch(
    txs: Vec<SignedTransaction>,
    chain_id: &ChainId,
) -> Vec<Result<VerifiedTransaction, (Hash, TxError)>> {
    let mut verdicts: Vec<Option<Result<VerifiedTransaction, (Hash, TxError)>>> =
        Vec::with_capacity(txs.len());
    let mut prechecked = Vec::with_capacity(txs.len());
    let mut slots = Vec::with_capacity(txs.len());
    for tx in txs {
        let hash = tx.hash();
        match tx.precheck(chain_id) {
            Ok(p) => {
                slots.push((verdicts.len(), hash));
                prechecked.push(p);
                verdicts.push(None);
            }
            Err(e) => verdicts.push(Some(Err((hash, e)))),
        }
    }
    for ((slot, hash), v) in slots
        .into_iter()
        .zip(ledger_core::tx::verify_signatures(prechecked, chain_id))
    {
        verdicts[slot] = Some(v.map_err(|e| (hash, e)));
    }
    verdicts.into_iter().flatten().collect()
}

impl MempoolHandle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Result<T, MempoolError> {
        Self::call_on(&self.tx, make).await
    }

    async fn call_on<T>(
        lane: &mpsc::Sender<Msg>,
        make: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Result<T, MempoolError> {
        let (reply, rx) = oneshot::channel();
        lane.send(make(reply))
            .await
            .map_err(|_| MempoolError::Stopped)?;
        rx.await.map_err(|_| MempoolError::Stopped)
    }

    /// Verifies (off the async workers; one `ledger_signature_verify_seconds` observation per
    /// call) and admits `txs`; one result per transaction, in order.
    pub async fn submit(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<(Hash, Result<Admitted, AdmitError>)>, MempoolError> {
        let chain = self.chain_id.clone();
        let metrics = self.metrics.clone();
        let verified = tokio::task::spawn_blocking(move || {
            metrics.time_signatures(|| verify_batch(txs, &chain))
        })
        .await
        .map_err(|_| MempoolError::Stopped)?;
        let hashes: Vec<Hash> = verified
            .iter()
            .map(|r| match r {
                Ok(v) => v.hash(),
                Err((h, _)) => *h,
            })
            .collect();
        let results = self
            .call(|reply| Msg::Submit {
                txs: verified,
                from_peer: false,
                reply: Some(reply),
            })
            .await?;
        Ok(hashes.into_iter().zip(results).collect())
    }

    /// Peer transactions the network already verified: admitted without a second signature check
    /// and without an answer, and not gossiped again (gossipsub relays them itself). Dropped when
    /// the peer lane is full: gossip is best effort, and a flood must not pile up work.
    pub fn submit_verified_from_peer(&self, txs: Vec<VerifiedTransaction>) {
        let n = txs.len();
        if self
            .peers
            .try_send(Msg::Submit {
                txs: txs.into_iter().map(Ok).collect(),
                from_peer: true,
                reply: None,
            })
            .is_err()
        {
            self.metrics.traffic_dropped("mempool_peer_lane");
            tracing::debug!(
                txs = n,
                "mempool: peer transactions dropped (peer lane full)"
            );
        }
    }

    pub async fn status(&self, hash: Hash) -> Result<PoolStatus, MempoolError> {
        self.call(|reply| Msg::Status { hash, reply }).await
    }

    pub async fn next_nonce(&self, address: Address) -> Result<Option<Nonce>, MempoolError> {
        self.call(|reply| Msg::NextNonce { address, reply }).await
    }

    pub async fn candidates(
        &self,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<Vec<VerifiedTransaction>, MempoolError> {
        Self::call_on(&self.driver, |reply| Msg::Candidates {
            max_txs,
            max_bytes,
            reply,
        })
        .await
    }

    /// Which of `hashes` are pending, i.e. already verified.
    pub async fn verified(&self, hashes: Vec<Hash>) -> Result<HashSet<Hash>, MempoolError> {
        Self::call_on(&self.driver, |reply| Msg::Verified { hashes, reply }).await
    }

    /// Tells the pool a block was committed. Awaited: the pool must see every commit, in order,
    /// before it answers the next `candidates` call.
    pub async fn committed(
        &self,
        included: Vec<Hash>,
        changed: Vec<(Address, Account)>,
    ) -> Result<(), MempoolError> {
        self.driver
            .send(Msg::Committed { included, changed })
            .await
            .map_err(|_| MempoolError::Stopped)
    }

    /// Current size (published by the owner after every change; no round trip).
    pub fn stats(&self) -> PoolStats {
        *self.stats.borrow()
    }

    /// A receiver that wakes when the pool's size changes (the driver's block production policy).
    pub fn watch_stats(&self) -> watch::Receiver<PoolStats> {
        self.stats.clone()
    }

    /// Stops the owner thread; later calls on any handle fail with [`MempoolError::Stopped`].
    pub async fn stop(&self) {
        let _ = self.driver.send(Msg::Stop).await;
    }

    /// Drops candidates that can never be included (reported by block building).
    pub async fn drop_invalid(&self, txs: Vec<(Hash, TxError)>) -> Result<(), MempoolError> {
        self.driver
            .send(Msg::DropInvalid(txs))
            .await
            .map_err(|_| MempoolError::Stopped)
    }
}

/// The mempool's owner thread, to join at shutdown (it holds the store open until it ends).
#[derive(Debug)]
pub struct MempoolThread(std::thread::JoinHandle<()>);

impl MempoolThread {
    /// Waits for the thread to end (after [`MempoolHandle::stop`] or when every handle is gone).
    pub fn join(self) {
        let _ = self.0.join();
    }
}

/// Starts the mempool owner on its own thread, and a ticker for expiry. The thread ends on
/// [`MempoolHandle::stop`] or when every handle is dropped.
pub fn spawn<A: AccountSource>(
    cfg: MempoolConfig,
    chain_id: ChainId,
    accounts: A,
    gossip: Option<mpsc::Sender<NetOutbound>>,
    metrics: Arc<Metrics>,
) -> std::io::Result<(MempoolHandle, MempoolThread)> {
    let (driver, mut driver_rx) = mpsc::channel::<Msg>(DRIVER_QUEUE_MSGS);
    let (tx, mut rx) = mpsc::channel::<Msg>(CLIENT_QUEUE_MSGS);
    let (peers, mut peers_rx) = mpsc::channel::<Msg>(PEER_QUEUE_BATCHES);
    let (stats_tx, stats) = watch::channel(PoolStats::default());
    let mut pool = Pool::new(cfg);
    let handle_metrics = metrics.clone();
    // The owner runs on a thread of its own (admission reads RocksDB), with a runtime of one
    // thread only to wait on its three lanes at once.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let thread = std::thread::Builder::new()
        .name("mempool".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let msg = tokio::select! {
                        biased;
                        Some(m) = driver_rx.recv() => m,
                        Some(m) = rx.recv() => m,
                        Some(m) = peers_rx.recv() => m,
                        else => break,
                    };
                    if matches!(msg, Msg::Stop) {
                        break;
                    }
                    handle_msg(&mut pool, &accounts, gossip.as_ref(), msg);
                    let s = pool.stats();
                    metrics.mempool_txs.set(s.txs as i64);
                    metrics.mempool_bytes.set(s.bytes as i64);
                    stats_tx.send_if_modified(|old| std::mem::replace(old, s) != s);
                }
            });
        })?;
    // The ticker holds a weak sender so it does not keep the pool alive on its own.
    let weak = tx.downgrade();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let Some(tx) = weak.upgrade() else { break };
            // A full queue means the pool is busy; expiry can wait for the next tick.
            let _ = tx.try_send(Msg::Tick);
        }
    });
    let handle = MempoolHandle {
        driver,
        tx,
        peers,
        chain_id,
        stats,
        metrics: handle_metrics,
    };
    Ok((handle, MempoolThread(thread)))
}

fn handle_msg<A: AccountSource>(
    pool: &mut Pool,
    accounts: &A,
    gossip: Option<&mpsc::Sender<NetOutbound>>,
    msg: Msg,
) {
    let now = Instant::now();
    match msg {
        Msg::Submit {
            txs,
            from_peer,
            reply,
        } => {
            let mut results = Vec::with_capacity(txs.len());
            let mut admitted = Vec::new();
            // Accounts read once per sender per batch: a batch is often many txs of one sender.
            let mut cache: HashMap<Address, Account> = HashMap::new();
            for item in txs {
                let r = match item {
                    Err((hash, reason)) => {
                        pool.record_rejected(hash, reason.clone());
                        Err(AdmitError::Tx(reason))
                    }
                    Ok(v) => {
                        let sender = v.sender();
                        let acc = match cache.get(&sender) {
                            Some(a) => Ok(*a),
                            None => accounts.account(&sender).inspect(|a| {
                                cache.insert(sender, *a);
                            }),
                        };
                        match acc {
                            Err(e) => {
                                tracing::error!(error = %e, "mempool: reading an account failed");
                                Err(AdmitError::Store(e.to_string()))
                            }
                            Ok(acc) => {
                                let signed = v.signed().clone();
                                let r = pool.admit(v, &acc, now);
                                if matches!(r, Ok(Admitted::Added)) && !from_peer {
                                    admitted.push(signed);
                                }
                                r
                            }
                        }
                    }
                };
                results.push(r);
            }
            if let (Some(g), false) = (gossip, admitted.is_empty()) {
                // Gossip is best effort: a full outbound queue drops the announcement, and peers
                // still get the transactions inside the block.
                let _ = g.try_send(NetOutbound::Transactions(admitted));
            }
            if let Some(reply) = reply {
                let _ = reply.send(results);
            }
        }
        Msg::Status { hash, reply } => {
            let _ = reply.send(pool.status(&hash));
        }
        Msg::NextNonce { address, reply } => {
            let _ = reply.send(pool.next_nonce(&address));
        }
        Msg::Candidates {
            max_txs,
            max_bytes,
            reply,
        } => {
            pool.expire(now);
            let _ = reply.send(pool.candidates(max_txs, max_bytes));
        }
        Msg::Verified { hashes, reply } => {
            let set = hashes.into_iter().filter(|h| pool.contains(h)).collect();
            let _ = reply.send(set);
        }
        Msg::Committed { included, changed } => {
            let dropped = pool.on_commit(&included, &changed);
            for (h, reason) in dropped {
                tracing::debug!(tx = %h, %reason, "mempool: dropped after commit");
            }
        }
        Msg::DropInvalid(txs) => {
            for (h, reason) in txs {
                pool.drop_invalid(&h, reason);
            }
        }
        Msg::Stop => {}
        Msg::Tick => {
            let n = pool.expire(now);
            if n > 0 {
                tracing::debug!(expired = n, "mempool: expired transactions");
            }
        }
    }
}

#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod tests;
