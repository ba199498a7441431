//! The RocksDB store: one column family per table, one synced `WriteBatch` per committed block.
//!
//! | table (column family) | key                            | value                              |
//! |-----------------------|--------------------------------|------------------------------------|
//! | `blocks`              | height (u64 big-endian)        | `Block` (canonical encoding)       |
//! | `block_hashes`        | block hash                     | height (u64 big-endian)            |
//! | `txs`                 | transaction hash               | [`TxLocation`]                     |
//! | `accounts`            | address (20 bytes)             | `Account` (the state at the head)  |
//! | `certs`               | height (u64 big-endian)        | `CommitCertificate` for that block |
//! | `consensus_wal`       | height BE ‖ sequence BE        | the driver's WAL entry             |
//! | `meta`                | name                           | schema version, genesis hash, head |
//! | `account_txs`         | address ‖ height BE ‖ index BE | transaction hash                   |
//! | `state_nodes`         | version BE ‖ nibble path       | a state-tree node (jmt `Node`)     |
//! | `state_values`        | key hash ‖ version BE          | `Account` written at that version  |
//! | `state_stale`         | version BE ‖ kind ‖ key        | (empty): pruning index             |
//!
//! **State.** The accounts table is the head state, for lookups by address. The state tree is
//! versioned (ADR 0012): the state after block `h` is tree version `genesis version + h`; each
//! block adds the tree nodes and values it changes at its version, and records in `state_stale`
//! what stops being part of the newest tree. With `store.state_versions_kept = k`, committing
//! version `v` deletes what has been stale since version `v - k + 1` or earlier, so the states of
//! the last `k` heights stay provable and the disk holds about `k` blocks' worth of tree changes
//! beside the newest tree. A start-up reads the head block and the tree's root: no rebuild.
//!
//! Big-endian heights make RocksDB's byte order the numeric order, so ranges are plain iterations.
//!
//! **Account index.** `account_txs` has one entry per transaction for its sender and one for its
//! recipient (one in all for a transfer to oneself), written in the block's batch; reverse
//! iteration over an address's keys lists its transactions newest first ([`Store::account_txs`]).
//! `meta.account_txs_height` records how far the index is complete: a data dir written before the
//! index existed is indexed from its stored blocks when it is opened ([`Store::open`]).
//!
//! **Crash safety.** [`Store::commit_block`] writes the block, its indexes, its certificate, the
//! changed accounts, the state tree's nodes, values and pruning, and the new head in ONE
//! `WriteBatch` with `sync = true`: after `kill -9` at any instant RocksDB's WAL replay yields
//! either all of it or none of it. The accounts table and the tree therefore always hold exactly
//! the state after the head block; the caller checks the tree's root against the head block.
//! WAL entries are written with `sync = true` too, before the vote they record is sent.
//!
//! **Corruption is not absence.** A value that does not decode is [`StoreError::Corruption`] naming
//! the table and key, never `Ok(None)`.
//!
//! Every method blocks on disk I/O: async callers run them with `spawn_blocking`.

mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{Node, NodeKey};
use jmt::{KeyHash, OwnedValue, Version};
use ledger_core::codec;
use ledger_core::state::{Account, State, StateError, StateStore, StateWrites};
use ledger_core::{
    Address, Block, BlockHeader, CommitCertificate, CommittedBlock, Hash, Height,
    SignedTransaction, TimestampMs,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, ReadTier, WriteBatch, WriteOptions,
};

pub use tables::Table;

use crate::config::StoreConfig;

/// The on-disk layout version. Bumped on any incompatible change to a table's key or value.
pub const SCHEMA_VERSION: u32 = 2;

/// Most stale-index entries one commit prunes: a node that switches from keeping every version to
/// a window catches up over several blocks instead of one huge batch.
const MAX_PRUNED_PER_COMMIT: usize = 500_000;

/// Most keys [`Store`] remembers a value-prune bound for (about 4 MB).
const PRUNED_VALUE_KEYS_MAX: usize = 65_536;

/// What a prune deleted, for [`Store::commit_block`] to remember once its batch is written.
#[derive(Default)]
struct Pruned {
    /// The last stale-index key pruned.
    last: Option<Box<[u8]>>,
    /// Each key whose values were pruned, with the version below which none is left.
    values_below: Vec<(KeyHash, Version)>,
}

/// Where a transaction sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

/// Most entries one [`Store::account_txs`] or [`Store::account_transactions`] call returns.
pub const MAX_ACCOUNT_TXS: usize = 100;

/// Index operations per batch when an older data dir's account index is filled in at open.
const ACCOUNT_INDEX_BACKFILL_BATCH_OPS: usize = 100_000;

/// One entry of the account index: a final transaction that moved the account's funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTxRef {
    pub location: TxLocation,
    pub hash: Hash,
}

/// A final transaction of an account, with its content and its block's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTx {
    pub location: TxLocation,
    pub hash: Hash,
    pub tx: SignedTransaction,
    pub timestamp_ms: TimestampMs,
}

/// One page of an account's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTxPage<T> {
    pub txs: Vec<T>,
    /// Set when older entries exist: the location of the last entry here, to pass as `before`
    /// for the next page.
    pub next: Option<TxLocation>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt database: table `{table}`, key {key}: {reason}")]
    Corruption {
        table: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "the data dir {path} belongs to chain {stored}, but the genesis file hashes to {given}; \
         use another data dir or the right genesis"
    )]
    GenesisMismatch {
        path: PathBuf,
        stored: Hash,
        given: Hash,
    },
    #[error("the data dir has schema version {found}, this node understands {expected}")]
    SchemaVersion { expected: u32, found: u32 },
    #[error("block {got} cannot be committed on top of head {head}")]
    NotNext { head: Height, got: Height },
    #[error("the store is not initialised with a genesis")]
    Uninitialised,
}

impl StoreError {
    fn corrupt(table: Table, key: &[u8], reason: impl ToString) -> StoreError {
        StoreError::Corruption {
            table: table.name(),
            key: hex::encode(key),
            reason: reason.to_string(),
        }
    }
}

/// Why a store could not be initialised with a genesis.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the genesis state: {0}")]
    State(#[from] StateError),
}

/// What one committed block changes, written atomically by [`Store::commit_block`].
#[derive(Debug)]
pub struct BlockCommit<'a> {
    pub block: &'a Block,
    pub hash: Hash,
    pub commit: &'a CommitCertificate,
    /// The hashes of `block.txs`, in order (the caller has them cached).
    pub tx_hashes: &'a [Hash],
    /// Everything the block changes in the state: accounts and tree.
    pub state: &'a StateWrites,
}

/// The RocksDB database. Cheap to share: hold it in an `Arc`; all methods take `&self`.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// Reads that only look at the memtables and the block cache (see [`Store::account_if_cached`]).
    cache_only: ReadOptions,
    /// `None`: keep every state version.
    versions_kept: Option<u64>,
    /// Where the next prune starts reading the stale index: the last key an earlier commit of this
    /// process pruned. Everything below it is deleted, and new entries are only ever added above
    /// it (they are stale since a newer version). Without it every commit walked the tombstones
    /// of everything pruned before, until compaction dropped them: a per-block cost that grew
    /// with the chain. `None` (a fresh process) reads from the start once.
    prune_from: Mutex<Option<Box<[u8]>>>,
    /// Per key, the version below which its values are all deleted: the `since` of the last value
    /// prune of that key in this process. A value prune reads from there, not from version 0, so
    /// a key written every block (a proposer's account) does not walk the tombstones of all its
    /// earlier values. Bounded: it starts over past [`PRUNED_VALUE_KEYS_MAX`] keys (a forgotten
    /// key reads from 0 once).
    values_pruned_below: Mutex<HashMap<KeyHash, Version>>,
    // Kept alive for as long as the DB uses them.
    _cache: Cache,
    _state_cache: Cache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn height_key(h: Height) -> [u8; 8] {
    h.0.to_be_bytes()
}

fn decode_height(table: Table, key: &[u8], bytes: &[u8]) -> Result<Height, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::corrupt(
            table,
            key,
            format!("height is {} bytes, not 8", bytes.len()),
        )
    })?;
    Ok(Height(u64::from_be_bytes(arr)))
}

impl Store {
    /// Opens (creating if needed) the database at `path`, sized by `cfg`.
    pub fn open(path: &Path, cfg: &StoreConfig) -> Result<Store, StoreError> {
        let cache = Cache::new_lru_cache(cfg.block_cache_mib.saturating_mul(1024 * 1024));
        let state_cache = Cache::new_lru_cache(cfg.state_cache_bytes);
        let table_opts = |cache: &Cache| {
            let mut t = BlockBasedOptions::default();
            t.set_block_cache(cache);
            // Index and filter blocks count against the same cache instead of growing unbounded.
            t.set_cache_index_and_filter_blocks(true);
            t.set_bloom_filter(10.0, false);
            t
        };
        let cf_options = |cache: &Cache| {
            let mut o = Options::default();
            o.set_block_based_table_factory(&table_opts(cache));
            o.set_compression_type(DBCompressionType::Lz4);
            // Small memtables: this node writes a block at a time, not bulk loads.
            o.set_write_buffer_size(8 * 1024 * 1024);
            o.set_max_write_buffer_number(3);
            o
        };
        let cf_opts = cf_options(&cache);
        let state_cf_opts = cf_options(&state_cache);

        let mut db_opts = cf_opts.clone();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(cfg.max_open_files);
        db_opts.set_keep_log_file_num(cfg.keep_log_file_num);
        db_opts.set_max_log_file_size(cfg.max_log_file_bytes);
        // Bounds the memtables of all tables together and the RocksDB WAL on disk.
        db_opts.set_db_write_buffer_size(64 * 1024 * 1024);
        db_opts.set_max_total_wal_size(128 * 1024 * 1024);
        db_opts.set_max_background_jobs(2);

        let cfs = Table::ALL.iter().map(|t| {
            let opts = if t.is_state() {
                state_cf_opts.clone()
            } else {
                cf_opts.clone()
            };
            ColumnFamilyDescriptor::new(t.name(), opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            cache_only: {
                let mut r = ReadOptions::default();
                r.set_read_tier(ReadTier::BlockCache);
                r
            },
            versions_kept: (!cfg.keep_all_versions).then_some(cfg.state_versions_kept.max(1)),
            prune_from: Mutex::new(None),
            values_pruned_below: Mutex::new(HashMap::new()),
            _cache: cache,
            _state_cache: state_cache,
        };
        match store.get_meta(tables::META_SCHEMA)? {
            None => {}
            Some(bytes) => {
                let found = u32::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                    StoreError::corrupt(
                        Table::Meta,
                        tables::META_SCHEMA,
                        "schema version is not 4 bytes",
                    )
                })?);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::SchemaVersion {
                        expected: SCHEMA_VERSION,
                        found,
                    });
                }
            }
        }
        store.backfill_account_txs()?;
        store.drop_decided_wal()?;
        Ok(store)
    }

    /// Deletes WAL entries of heights already committed (none unless an older version left them):
    /// the consensus WAL only ever holds the height being decided.
    fn drop_decided_wal(&self) -> Result<(), StoreError> {
        let Some(head) = self.get_meta(tables::META_HEAD)? else {
            return Ok(());
        };
        let head = decode_height(Table::Meta, tables::META_HEAD, &head)?;
        let keys = self.wal_keys(Height(0), head)?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for key in keys {
            batch.delete_cf(self.cf(Table::ConsensusWal), key);
        }
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    /// Fills in `account_txs` for blocks committed before the index existed (a data dir of an
    /// older node), resuming where an interrupted run stopped. Each synced batch carries the new
    /// progress marker, so a crash leaves a consistent index that the next open completes.
    fn backfill_account_txs(&self) -> Result<(), StoreError> {
        let Some(head) = self.get_meta(tables::META_HEAD)? else {
            // Not initialised yet: `init_genesis` starts the index at height 0.
            return Ok(());
        };
        let head = decode_height(Table::Meta, tables::META_HEAD, &head)?;
        let done = match self.get_meta(tables::META_ACCOUNT_TXS_HEIGHT)? {
            None => Height(0),
            Some(b) => decode_height(Table::Meta, tables::META_ACCOUNT_TXS_HEIGHT, &b)?,
        };
        if done >= head {
            return Ok(());
        }
        tracing::info!(from = done.0 + 1, to = %head, "building the account transaction index");
        let mut batch = WriteBatch::default();
        for h in done.0 + 1..=head.0 {
            let height = Height(h);
            let block = self.block(height)?.ok_or_else(|| {
                StoreError::corrupt(
                    Table::Blocks,
                    &height_key(height),
                    format!("block {height} below the head {head} is missing"),
                )
            })?;
            let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
            self.index_account_txs(&mut batch, &block, &hashes);
            if batch.len() >= ACCOUNT_INDEX_BACKFILL_BATCH_OPS || h == head.0 {
                batch.put_cf(
                    self.cf(Table::Meta),
                    tables::META_ACCOUNT_TXS_HEIGHT,
                    height_key(height),
                );
                self.db.write_opt(std::mem::take(&mut batch), &synced())?;
            }
        }
        tracing::info!(height = %head, "account transaction index complete");
        Ok(())
    }

    /// Adds the `account_txs` entries of `block` to `batch`: one for the sender and one for the
    /// recipient of each transaction, one in all when they are the same account.
    fn index_account_txs(&self, batch: &mut WriteBatch, block: &Block, tx_hashes: &[Hash]) {
        let cf = self.cf(Table::AccountTxs);
        let height = block.header.height;
        for (i, (stx, hash)) in block.txs.iter().zip(tx_hashes).enumerate() {
            // Fits: a block holds at most max_block_txs (a u32) transactions.
            let index = i as u32;
            let from = stx.tx.sender();
            batch.put_cf(cf, tables::account_tx_key(&from, height, index), hash.0);
            if stx.tx.to != from {
                batch.put_cf(
                    cf,
                    tables::account_tx_key(&stx.tx.to, height, index),
                    hash.0,
                );
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, t: Table) -> &rocksdb::ColumnFamily {
        // Every table is created at open (create_missing_column_families), so the handle exists.
        #[allow(clippy::expect_used)]
        self.db
            .cf_handle(t.name())
            .expect("every column family is created at open")
    }

    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(t), key)?)
    }

    fn get_decoded<T: BorshDeserialize + BorshSerialize>(
        &self,
        t: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.db.get_pinned_cf(self.cf(t), key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt(t, key, e)),
        }
    }

    fn get_meta(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(Table::Meta, name)
    }

    /// The genesis hash this data dir was initialised with, if any.
    pub fn genesis_hash(&self) -> Result<Option<Hash>, StoreError> {
        self.get_decoded(Table::Meta, tables::META_GENESIS)
    }

    /// Whether the store was initialised with `genesis_hash` (`false`: not initialised yet); an
    /// error if it was initialised with another genesis.
    pub fn check_genesis(&self, genesis_hash: Hash) -> Result<bool, StoreError> {
        match self.genesis_hash()? {
            None => Ok(false),
            Some(stored) if stored == genesis_hash => Ok(true),
            Some(stored) => Err(StoreError::GenesisMismatch {
                path: self.path.clone(),
                stored,
                given: genesis_hash,
            }),
        }
    }

    /// Marks a store initialised: genesis hash, head 0, the genesis state's tree version, schema
    /// version, in one synced batch. The genesis state was written before (by
    /// `State::load` through [`StateStore::write`]); a crash before this batch leaves a store
    /// that is not initialised, and loading again rewrites the same state (the writes are
    /// deterministic).
    pub fn init_genesis(
        &self,
        genesis_hash: Hash,
        state_version: Version,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(Table::Meta),
            tables::META_STATE_GENESIS_VERSION,
            state_version.to_be_bytes(),
        );
        batch.put_cf(
            self.cf(Table::Meta),
            tables::META_SCHEMA,
            SCHEMA_VERSION.to_le_bytes(),
        );
        batch.put_cf(
            self.cf(Table::Meta),
            tables::META_HEAD,
            height_key(Height(0)),
        );
        batch.put_cf(
            self.cf(Table::Meta),
            tables::META_ACCOUNT_TXS_HEIGHT,
            height_key(Height(0)),
        );
        // Written last in the batch for readability only: the batch is atomic either way.
        batch.put_cf(
            self.cf(Table::Meta),
            tables::META_GENESIS,
            codec::encode(&genesis_hash),
        );
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    /// The tree version of the genesis state: the state after block `h` is at this plus `h`.
    pub fn state_genesis_version(&self) -> Result<Version, StoreError> {
        let key = tables::META_STATE_GENESIS_VERSION;
        let bytes = self.get_meta(key)?.ok_or(StoreError::Uninitialised)?;
        let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::corrupt(Table::Meta, key, "state genesis version is not 8 bytes")
        })?;
        Ok(u64::from_be_bytes(arr))
    }

    /// Height of the last committed block (0 = only genesis).
    pub fn head_height(&self) -> Result<Height, StoreError> {
        match self.get_meta(tables::META_HEAD)? {
            None => Err(StoreError::Uninitialised),
            Some(b) => decode_height(Table::Meta, tables::META_HEAD, &b),
        }
    }

    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.get_decoded(Table::Blocks, &height_key(height))
    }

    /// The oldest height whose state is provable while `head` is the head: pruning never deletes
    /// what the states of the last `state_versions_kept` heights need. Older states may be partly
    /// deleted already, so they count as gone even while their root is still readable.
    pub fn oldest_kept_height(&self, head: Height) -> Height {
        match self.versions_kept {
            None => Height(0),
            Some(kept) => Height(head.0.saturating_sub(kept - 1)),
        }
    }

    /// The header of the block at `height`, decoded from the front of the stored block without
    /// decoding its transactions (a block is its header, then its body).
    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        let t = Table::Blocks;
        let key = height_key(height);
        match self.db.get_pinned_cf(self.cf(t), key)? {
            None => Ok(None),
            Some(bytes) => BlockHeader::deserialize(&mut &bytes[..])
                .map(Some)
                .map_err(|e| StoreError::corrupt(t, &key, e)),
        }
    }

    pub fn cert(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        self.get_decoded(Table::Certs, &height_key(height))
    }

    /// The block at `height` with the certificate that made it final.
    pub fn committed_block(&self, height: Height) -> Result<Option<CommittedBlock>, StoreError> {
        let Some(block) = self.block(height)? else {
            return Ok(None);
        };
        // Block and certificate are written in the same batch: one without the other is corruption.
        let commit = self.cert(height)?.ok_or_else(|| {
            StoreError::corrupt(
                Table::Certs,
                &height_key(height),
                "block is stored but its certificate is missing",
            )
        })?;
        Ok(Some(CommittedBlock { block, commit }))
    }

    pub fn height_of_hash(&self, hash: &Hash) -> Result<Option<Height>, StoreError> {
        match self.get(Table::BlockHashes, &hash.0)? {
            None => Ok(None),
            Some(b) => decode_height(Table::BlockHashes, &hash.0, &b).map(Some),
        }
    }

    pub fn tx_location(&self, hash: &Hash) -> Result<Option<TxLocation>, StoreError> {
        self.get_decoded(Table::Txs, &hash.0)
    }

    /// A final transaction with its location.
    pub fn transaction(
        &self,
        hash: &Hash,
    ) -> Result<Option<(ledger_core::SignedTransaction, TxLocation)>, StoreError> {
        let Some(loc) = self.tx_location(hash)? else {
            return Ok(None);
        };
        let block = self.block(loc.height)?.ok_or_else(|| {
            StoreError::corrupt(
                Table::Txs,
                &hash.0,
                format!("points at missing block {}", loc.height),
            )
        })?;
        let tx = block.txs.get(loc.index as usize).cloned().ok_or_else(|| {
            StoreError::corrupt(
                Table::Txs,
                &hash.0,
                format!("points past the end of block {}", loc.height),
            )
        })?;
        Ok(Some((tx, loc)))
    }

    /// An account's state at the head.
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        self.get_decoded(Table::Accounts, &address.0)
    }

    /// The account, if answering needs no disk I/O: RocksDB looks only at the memtables and the
    /// block cache and says "incomplete" rather than read a file. `Ok(None)` means "not without
    /// I/O" (ask [`Store::account`] off the async workers); `Ok(Some(None))` means "no such account".
    /// This is what lets the API answer hot account reads on its async workers, without a hop to
    /// the blocking pool and back, while a cold read still never blocks them.
    pub fn account_if_cached(
        &self,
        address: &Address,
    ) -> Result<Option<Option<Account>>, StoreError> {
        let t = Table::Accounts;
        match self
            .db
            .get_pinned_cf_opt(self.cf(t), address.0, &self.cache_only)
        {
            Ok(None) => Ok(Some(None)),
            Ok(Some(bytes)) => codec::decode(&bytes)
                .map(|a| Some(Some(a)))
                .map_err(|e| StoreError::corrupt(t, &address.0, e)),
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every account at the head, in address order.
    pub fn all_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(Table::Accounts), IteratorMode::Start)
        {
            let (k, v) = item?;
            let addr: [u8; 20] = k.as_ref().try_into().map_err(|_| {
                StoreError::corrupt(Table::Accounts, &k, "address key is not 20 bytes")
            })?;
            let acc: Account =
                codec::decode(&v).map_err(|e| StoreError::corrupt(Table::Accounts, &k, e))?;
            out.push((Address(addr), acc));
        }
        Ok(out)
    }

    /// The final transactions that moved `address`'s funds (sent or received), newest first:
    /// those strictly before `before` (all when `None`), at most `limit` (capped at
    /// [`MAX_ACCOUNT_TXS`]). Reads the index only.
    pub fn account_txs(
        &self,
        address: &Address,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<AccountTxPage<AccountTxRef>, StoreError> {
        let limit = limit.min(MAX_ACCOUNT_TXS);
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(tables::account_tx_key(address, Height(0), 0).to_vec());
        // Exclusive: the cursor itself was on the previous page. Without a cursor, the address
        // followed by 13 0xFF bytes sorts after every 32-byte key of this address and before
        // those of the next one.
        let upper = match before {
            Some(loc) => tables::account_tx_key(address, loc.height, loc.index).to_vec(),
            None => {
                let mut k = address.0.to_vec();
                k.extend_from_slice(&[0xFF; tables::ACCOUNT_TX_KEY_LEN - 20 + 1]);
                k
            }
        };
        opts.set_iterate_upper_bound(upper);
        let iter = self
            .db
            .iterator_cf_opt(self.cf(Table::AccountTxs), opts, IteratorMode::End);
        let mut txs = Vec::with_capacity(limit);
        let mut more = false;
        for item in iter {
            let (k, v) = item?;
            let Some((owner, height, index)) = tables::parse_account_tx_key(&k) else {
                return Err(StoreError::corrupt(
                    Table::AccountTxs,
                    &k,
                    format!(
                        "key is {} bytes, not {}",
                        k.len(),
                        tables::ACCOUNT_TX_KEY_LEN
                    ),
                ));
            };
            if owner != *address {
                // Cannot happen within the bounds; stop rather than list another account.
                break;
            }
            if txs.len() == limit {
                more = true;
                break;
            }
            let hash: [u8; 32] = v.as_ref().try_into().map_err(|_| {
                StoreError::corrupt(
                    Table::AccountTxs,
                    &k,
                    format!("value is {} bytes, not a 32-byte hash", v.len()),
                )
            })?;
            txs.push(AccountTxRef {
                location: TxLocation { height, index },
                hash: Hash(hash),
            });
        }
        let next = if more {
            txs.last().map(|t| t.location)
        } else {
            None
        };
        Ok(AccountTxPage { txs, next })
    }

    /// [`Store::account_txs`] with each transaction's content and block time (each block involved
    /// is read once). An index entry that does not match its block is corruption.
    pub fn account_transactions(
        &self,
        address: &Address,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<AccountTxPage<AccountTx>, StoreError> {
        let page = self.account_txs(address, before, limit)?;
        let mut txs = Vec::with_capacity(page.txs.len());
        let mut block: Option<Block> = None;
        for r in page.txs {
            let TxLocation { height, index } = r.location;
            let key = tables::account_tx_key(address, height, index);
            // Entries come newest first, so those of one block are adjacent: one read each.
            let b = match block.take() {
                Some(b) if b.header.height == height => b,
                _ => self.block(height)?.ok_or_else(|| {
                    StoreError::corrupt(
                        Table::AccountTxs,
                        &key,
                        format!("points at missing block {height}"),
                    )
                })?,
            };
            let tx = b
                .txs
                .get(index as usize)
                .filter(|t| t.hash() == r.hash)
                .cloned()
                .ok_or_else(|| {
                    StoreError::corrupt(
                        Table::AccountTxs,
                        &key,
                        format!(
                            "block {height} has no transaction {} at index {index}",
                            r.hash
                        ),
                    )
                })?;
            txs.push(AccountTx {
                location: r.location,
                hash: r.hash,
                tx,
                timestamp_ms: b.header.timestamp_ms,
            });
            block = Some(b);
        }
        Ok(AccountTxPage {
            txs,
            next: page.next,
        })
    }

    /// Commits one block atomically and durably (one synced `WriteBatch`), after checking that it
    /// extends the head. Also drops the consensus WAL of heights up to this one: they are decided.
    pub fn commit_block(&self, c: &BlockCommit<'_>) -> Result<(), StoreError> {
        let head = self.head_height()?;
        let height = c.block.header.height;
        if height.0 != head.0.saturating_add(1) {
            return Err(StoreError::NotNext { head, got: height });
        }
        let hk = height_key(height);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Table::Blocks), hk, codec::encode(c.block));
        batch.put_cf(self.cf(Table::BlockHashes), c.hash.0, hk);
        batch.put_cf(self.cf(Table::Certs), hk, codec::encode(c.commit));
        for (i, h) in c.tx_hashes.iter().enumerate() {
            let loc = TxLocation {
                height,
                index: i as u32,
            };
            batch.put_cf(self.cf(Table::Txs), h.0, codec::encode(&loc));
        }
        debug_assert_eq!(c.tx_hashes.len(), c.block.txs.len());
        self.index_account_txs(&mut batch, c.block, c.tx_hashes);
        if c.state.height != height {
            return Err(StoreError::corrupt(
                Table::StateNodes,
                &height_key(height),
                format!(
                    "block {height} carries the state of block {}",
                    c.state.height
                ),
            ));
        }
        self.put_state(&mut batch, c.state, true);
        let pruned_to = self.prune_state(&mut batch, c.state.version)?;
        batch.put_cf(self.cf(Table::Meta), tables::META_HEAD, hk);
        batch.put_cf(self.cf(Table::Meta), tables::META_ACCOUNT_TXS_HEIGHT, hk);
        // The decided height's WAL entries go with it, as point deletes of the keys that exist:
        // a range tombstone per block would pile up in the WAL table's memtable (it sees little
        // data, so it is rarely flushed), and RocksDB fragments every one of them when it reopens
        // the database (minutes and gigabytes after 100,000 blocks). Lower heights have no entries:
        // each commit removed its own, and `open` removes any a crash of an older version left.
        for key in self.wal_keys(height, height)? {
            batch.delete_cf(self.cf(Table::ConsensusWal), key);
        }
        self.db.write_opt(batch, &synced())?;
        if pruned_to.last.is_some() {
            *self
                .prune_from
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = pruned_to.last;
        }
        if !pruned_to.values_below.is_empty() {
            let mut below = self
                .values_pruned_below
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if below.len() + pruned_to.values_below.len() > PRUNED_VALUE_KEYS_MAX {
                below.clear();
            }
            below.extend(pruned_to.values_below);
        }
        Ok(())
    }

    /// Adds a state's writes to `batch`: accounts, tree nodes and values, and the pruning index of
    /// the nodes they replace (and, for a block, `stale_values`, of the values: a genesis chunk
    /// writes each key once).
    fn put_state(&self, batch: &mut WriteBatch, w: &StateWrites, stale_values: bool) {
        for (addr, acc) in &w.accounts {
            // The empty account does not exist (the state tree has no leaf for it either).
            if acc.is_empty() {
                batch.delete_cf(self.cf(Table::Accounts), addr.0);
            } else {
                batch.put_cf(self.cf(Table::Accounts), addr.0, codec::encode(acc));
            }
        }
        for (key, node) in w.tree.node_batch.nodes() {
            batch.put_cf(
                self.cf(Table::StateNodes),
                tables::state_node_key(key),
                borsh::to_vec(node).unwrap_or_default(),
            );
        }
        for ((version, key_hash), value) in w.tree.node_batch.values() {
            // An empty value is a deletion: an account's encoding is never empty.
            batch.put_cf(
                self.cf(Table::StateValues),
                tables::state_value_key(key_hash, *version),
                value.as_deref().unwrap_or_default(),
            );
            if stale_values {
                batch.put_cf(
                    self.cf(Table::StateStale),
                    tables::state_stale_key(*version, tables::STALE_VALUE, &key_hash.0),
                    [],
                );
            }
        }
        for s in &w.tree.stale_node_index_batch {
            batch.put_cf(
                self.cf(Table::StateStale),
                tables::state_stale_key(
                    s.stale_since_version,
                    tables::STALE_NODE,
                    &tables::state_node_key(&s.node_key),
                ),
                [],
            );
        }
    }

    /// Initialises the store with a genesis (its hash, and its accounts sorted by address) unless
    /// it already is: clears what an unfinished earlier load left, writes the genesis state
    /// through `State::load` (in chunks), then marks the store initialised in one synced batch.
    /// Returns the state at height 0, or `None` if the store was initialised already (with this
    /// genesis; another one is an error).
    pub fn initialise(
        self: &Arc<Store>,
        genesis_hash: Hash,
        accounts: &[(Address, Account)],
    ) -> Result<Option<State>, InitError> {
        if self.check_genesis(genesis_hash)? {
            return Ok(None);
        }
        self.clear_unfinished_genesis()?;
        let state = State::load(self.clone(), accounts)?;
        self.init_genesis(genesis_hash, state.version())?;
        Ok(Some(state))
    }

    /// Deletes whatever a genesis load that did not finish left in the accounts and state tables
    /// (a crash before [`Store::init_genesis`]), so that loading a genesis, maybe another one,
    /// starts from nothing. Refuses on an initialised store.
    pub fn clear_unfinished_genesis(&self) -> Result<(), StoreError> {
        if self.genesis_hash()?.is_some() {
            return Err(StoreError::corrupt(
                Table::Meta,
                tables::META_GENESIS,
                "the store is initialised; its state is not a leftover",
            ));
        }
        let mut batch = WriteBatch::default();
        let mut any = false;
        for t in [
            Table::Accounts,
            Table::StateNodes,
            Table::StateValues,
            Table::StateStale,
        ] {
            if self
                .db
                .iterator_cf(self.cf(t), IteratorMode::Start)
                .next()
                .is_some()
            {
                // Every key of these tables is shorter than 128 bytes.
                batch.delete_range_cf(self.cf(t), &[][..], &[0xffu8; 128][..]);
                any = true;
            }
        }
        if any {
            tracing::warn!("deleting the state of a genesis load that did not finish");
            self.db.write_opt(batch, &synced())?;
        }
        Ok(())
    }

    /// Adds to `batch` the deletion of what no kept version needs once `version` is the newest:
    /// everything stale since `version - versions_kept + 1` or earlier (at most
    /// [`MAX_PRUNED_PER_COMMIT`] index entries; the rest goes with the next blocks). Returns the
    /// last index key it pruned, where the next prune may start once `batch` is written.
    fn prune_state(&self, batch: &mut WriteBatch, version: Version) -> Result<Pruned, StoreError> {
        let Some(kept) = self.versions_kept else {
            return Ok(Pruned::default());
        };
        let Some(oldest_kept) = version.checked_sub(kept - 1) else {
            return Ok(Pruned::default());
        };
        let mut pruned = Pruned::default();
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(oldest_kept.saturating_add(1).to_be_bytes().to_vec());
        if let Some(from) = self
            .prune_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            opts.set_iterate_lower_bound(from.to_vec());
        }
        for item in self
            .db
            .iterator_cf_opt(self.cf(Table::StateStale), opts, IteratorMode::Start)
            .take(MAX_PRUNED_PER_COMMIT)
        {
            let (k, _) = item?;
            if k.len() < 9 {
                return Err(StoreError::corrupt(
                    Table::StateStale,
                    &k,
                    "key shorter than 9 bytes",
                ));
            }
            let since = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
            match k[8] {
                tables::STALE_NODE => batch.delete_cf(self.cf(Table::StateNodes), &k[9..]),
                tables::STALE_VALUE => {
                    let key_hash: [u8; 32] = k[9..].try_into().map_err(|_| {
                        StoreError::corrupt(Table::StateStale, &k, "value key is not 32 bytes")
                    })?;
                    let key_hash = KeyHash(key_hash);
                    // Every value of this key older than `since`: the one at `since` (or a newer
                    // one) is what every kept version reads. Read from where the key's last prune
                    // left off: everything below is deleted, and no value is ever written at a
                    // version older than the newest.
                    let mut opts = ReadOptions::default();
                    opts.set_iterate_upper_bound(
                        tables::state_value_key(&key_hash, since).to_vec(),
                    );
                    let below = self
                        .values_pruned_below
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&key_hash)
                        .copied()
                        .unwrap_or(0);
                    let from = tables::state_value_key(&key_hash, below.min(since));
                    for item in self.db.iterator_cf_opt(
                        self.cf(Table::StateValues),
                        opts,
                        IteratorMode::From(&from, Direction::Forward),
                    ) {
                        let (vk, _) = item?;
                        batch.delete_cf(self.cf(Table::StateValues), vk);
                    }
                    pruned.values_below.push((key_hash, since));
                }
                _ => return Err(StoreError::corrupt(Table::StateStale, &k, "unknown kind")),
            }
            batch.delete_cf(self.cf(Table::StateStale), &k);
            pruned.last = Some(k);
        }
        Ok(pruned)
    }

    /// Appends one consensus WAL entry for `height`, durably (synced) before returning.
    pub fn wal_append<T: BorshSerialize>(
        &self,
        height: Height,
        seq: u64,
        entry: &T,
    ) -> Result<(), StoreError> {
        self.db.put_cf_opt(
            self.cf(Table::ConsensusWal),
            tables::wal_key(height, seq),
            codec::encode(entry),
            &synced(),
        )?;
        Ok(())
    }

    /// The WAL entries of `height`, in append order, with their sequence numbers.
    /// The keys of the WAL entries of heights `from..=to`, read within those bounds only (so the
    /// deletes of earlier heights are never walked over).
    fn wal_keys(&self, from: Height, to: Height) -> Result<Vec<Box<[u8]>>, StoreError> {
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_lower_bound(tables::wal_key(from, 0).to_vec());
        opts.set_iterate_upper_bound(tables::wal_key(to.next(), 0).to_vec());
        let iter = self
            .db
            .iterator_cf_opt(self.cf(Table::ConsensusWal), opts, IteratorMode::Start);
        let mut keys = Vec::new();
        for item in iter {
            keys.push(item?.0);
        }
        Ok(keys)
    }

    pub fn wal_entries<T: BorshDeserialize + BorshSerialize>(
        &self,
        height: Height,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let start = tables::wal_key(height, 0);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(Table::ConsensusWal),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            let Some((h, seq)) = tables::parse_wal_key(&k) else {
                return Err(StoreError::corrupt(
                    Table::ConsensusWal,
                    &k,
                    "WAL key is not 16 bytes",
                ));
            };
            if h != height {
                break;
            }
            let entry =
                codec::decode(&v).map_err(|e| StoreError::corrupt(Table::ConsensusWal, &k, e))?;
            out.push((seq, entry));
        }
        Ok(out)
    }

    /// Flushes memtables so a clean shutdown leaves nothing for WAL replay. Data is already durable
    /// (every write is synced); this only shortens the next start.
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs: Vec<&rocksdb::ColumnFamily> = Table::ALL.iter().map(|t| self.cf(*t)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

fn state_error(e: StoreError) -> ledger_core::state::StoreError {
    match e {
        StoreError::Corruption { table, key, reason } => ledger_core::state::StoreError::Corrupt {
            what: table,
            key,
            reason,
        },
        other => ledger_core::state::StoreError::Io(other.to_string()),
    }
}

/// The node's state lives in the store: accounts in `accounts`, the tree in the `state_*` tables.
/// A block's state is written by [`Store::commit_block`] with the rest of the block, so
/// [`StateStore::writes_on_commit`] is `false`.
impl StateStore for Store {
    fn accounts(
        &self,
        addresses: &[Address],
    ) -> Result<Vec<Option<Account>>, ledger_core::state::StoreError> {
        let t = Table::Accounts;
        let cf = self.cf(t);
        self.db
            .batched_multi_get_cf(cf, addresses.iter().map(|a| &a.0), false)
            .into_iter()
            .zip(addresses)
            .map(|(r, a)| match r {
                Ok(None) => Ok(None),
                Ok(Some(bytes)) => codec::decode(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::corrupt(t, &a.0, e)),
                Err(e) => Err(StoreError::from(e)),
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(state_error)
    }

    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, ledger_core::state::StoreError> {
        let t = Table::StateNodes;
        let k = tables::state_node_key(key);
        match self.get(t, &k).map_err(state_error)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| state_error(StoreError::corrupt(t, &k, e))),
        }
    }

    fn tree_value(
        &self,
        max_version: Version,
        key_hash: &KeyHash,
    ) -> Result<Option<OwnedValue>, ledger_core::state::StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(Table::StateValues));
        it.seek_for_prev(tables::state_value_key(key_hash, max_version));
        if let Some(k) = it.key()
            && k.starts_with(&key_hash.0)
        {
            let v = it.value().unwrap_or_default();
            return Ok((!v.is_empty()).then(|| v.to_vec()));
        }
        it.status().map_err(|e| state_error(StoreError::from(e)))?;
        Ok(None)
    }

    fn all_accounts(&self) -> Result<Vec<(Address, Account)>, ledger_core::state::StoreError> {
        Store::all_accounts(self).map_err(state_error)
    }

    /// Writes a genesis chunk: not synced here (the synced batch of [`Store::init_genesis`] comes
    /// after every chunk and makes them durable with it), and nothing stale to record.
    fn write(&self, writes: &StateWrites) -> Result<(), ledger_core::state::StoreError> {
        let mut batch = WriteBatch::default();
        self.put_state(&mut batch, writes, false);
        self.db.write(batch).map_err(|e| state_error(e.into()))
    }

    fn writes_on_commit(&self) -> bool {
        false
    }
}
#[cfg(test)]
mod cursor_review_tests;
#[cfg(test)]
mod review_tests;
