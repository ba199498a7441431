//! Table (column family) names and key layouts.

use jmt::storage::NodeKey;
use jmt::{KeyHash, Version};
use ledger_core::{Address, Height};

/// One column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Blocks,
    BlockHashes,
    Txs,
    Accounts,
    Certs,
    ConsensusWal,
    Meta,
    AccountTxs,
    StateNodes,
    StateValues,
    StateStale,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Blocks,
        Table::BlockHashes,
        Table::Txs,
        Table::Accounts,
        Table::Certs,
        Table::ConsensusWal,
        Table::Meta,
        Table::AccountTxs,
        Table::StateNodes,
        Table::StateValues,
        Table::StateStale,
    ];

    /// The state tree's tables, which have their own cache (`store.state_cache_bytes`).
    pub fn is_state(self) -> bool {
        matches!(
            self,
            Table::StateNodes | Table::StateValues | Table::StateStale
        )
    }

    /// The column family name. Never change one: it is the on-disk identity of the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Blocks => "blocks",
            Table::BlockHashes => "block_hashes",
            Table::Txs => "txs",
            Table::Accounts => "accounts",
            Table::Certs => "certs",
            Table::ConsensusWal => "consensus_wal",
            Table::Meta => "meta",
            Table::AccountTxs => "account_txs",
            Table::StateNodes => "state_nodes",
            Table::StateValues => "state_values",
            Table::StateStale => "state_stale",
        }
    }
}

pub const META_SCHEMA: &[u8] = b"schema_version";
pub const META_GENESIS: &[u8] = b"genesis_hash";
pub const META_HEAD: &[u8] = b"head_height";
/// Height up to which `account_txs` is complete (u64 big-endian). Absent in a data dir written
/// before the index existed: opening it fills the index in from the stored blocks.
pub const META_ACCOUNT_TXS_HEIGHT: &[u8] = b"account_txs_height";
/// The state tree's version of the genesis state (u64 big-endian): a large genesis is loaded in
/// several versions, and the state after block `h` is at version `genesis version + h`.
pub const META_STATE_GENESIS_VERSION: &[u8] = b"state_genesis_version";

/// Length of an `account_txs` key.
pub const ACCOUNT_TX_KEY_LEN: usize = 20 + 8 + 4;

/// Account-index key: address, then height and index in the block, both big-endian, so an
/// account's entries are contiguous and iterate oldest first (newest first in reverse).
pub fn account_tx_key(address: &Address, height: Height, index: u32) -> [u8; ACCOUNT_TX_KEY_LEN] {
    let mut k = [0u8; ACCOUNT_TX_KEY_LEN];
    k[..20].copy_from_slice(&address.0);
    k[20..28].copy_from_slice(&height.0.to_be_bytes());
    k[28..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn parse_account_tx_key(k: &[u8]) -> Option<(Address, Height, u32)> {
    let arr: [u8; ACCOUNT_TX_KEY_LEN] = k.try_into().ok()?;
    let mut a = [0u8; 20];
    let mut h = [0u8; 8];
    let mut i = [0u8; 4];
    a.copy_from_slice(&arr[..20]);
    h.copy_from_slice(&arr[20..28]);
    i.copy_from_slice(&arr[28..]);
    Some((
        Address(a),
        Height(u64::from_be_bytes(h)),
        u32::from_be_bytes(i),
    ))
}

/// WAL key: height then sequence, both big-endian, so entries iterate by height, then append order.
pub fn wal_key(height: Height, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&height.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn parse_wal_key(k: &[u8]) -> Option<(Height, u64)> {
    let arr: [u8; 16] = k.try_into().ok()?;
    let mut h = [0u8; 8];
    let mut s = [0u8; 8];
    h.copy_from_slice(&arr[..8]);
    s.copy_from_slice(&arr[8..]);
    Some((Height(u64::from_be_bytes(h)), u64::from_be_bytes(s)))
}

/// State-node key: the version big-endian, then the nibble path's canonical (borsh) encoding.
/// Nodes written by one block sit together.
pub fn state_node_key(key: &NodeKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + 12 + 32);
    k.extend_from_slice(&key.version().to_be_bytes());
    // Writing into a Vec cannot fail.
    let _ = borsh::BorshSerialize::serialize(key.nibble_path(), &mut k);
    k
}

/// State-value key: the key hash, then the version big-endian, so the newest value at or below a
/// version is one backward seek.
pub fn state_value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&key_hash.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// What a stale-index entry names: a tree node, or every value of a key older than the entry's
/// version.
pub const STALE_NODE: u8 = 0;
pub const STALE_VALUE: u8 = 1;

/// Stale-index key: the version since which the thing is not part of the newest tree, big-endian
/// (so pruning reads a prefix of the table), then its kind and its own key.
pub fn state_stale_key(since: Version, kind: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&since.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(key);
    k
}
