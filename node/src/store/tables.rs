//! Table (column family) names and key layouts.

use ledger_core::Height;

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
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Blocks,
        Table::BlockHashes,
        Table::Txs,
        Table::Accounts,
        Table::Certs,
        Table::ConsensusWal,
        Table::Meta,
    ];

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
        }
    }
}

pub const META_SCHEMA: &[u8] = b"schema_version";
pub const META_GENESIS: &[u8] = b"genesis_hash";
pub const META_HEAD: &[u8] = b"head_height";

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
