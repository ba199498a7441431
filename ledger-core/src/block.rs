//! Blocks: a header that commits to everything, the previous block's commit, and the transactions.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::Hash;
use crate::tx::SignedTransaction;
use crate::types::{Address, ChainId, Height, TimestampMs};
use crate::vote::CommitCertificate;

/// The block header. The block hash is SHA-256 of its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: Height,
    /// Hash of the block at `height - 1`; for height 1, the genesis hash.
    pub prev_hash: Hash,
    /// Strictly greater than the previous block's timestamp.
    pub timestamp_ms: TimestampMs,
    pub proposer: Address,
    /// Merkle root of the transaction hashes, in block order.
    pub tx_root: Hash,
    pub tx_count: u32,
    /// State root after applying this block's transactions.
    pub state_root: Hash,
    /// Hash of `Block::last_commit` (the certificate of block `height - 1`); zero at height 1.
    pub last_commit_hash: Hash,
}

/// A block as proposed, gossiped and stored.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    /// The commit certificate of the previous block (absent at height 1). Carrying it in the block
    /// makes every node agree on one certificate per height.
    pub last_commit: Option<CommitCertificate>,
    pub txs: Vec<SignedTransaction>,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash {
        Hash::digest(&codec::encode(self))
    }
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    /// Caches the hash: the block is only hashed once.
    pub fn seal(self) -> SealedBlock {
        SealedBlock {
            hash: self.header.hash(),
            block: self,
        }
    }
}

/// A block with its hash computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    block: Block,
    hash: Hash,
}

impl SealedBlock {
    pub fn hash(&self) -> Hash {
        self.hash
    }
    pub fn block(&self) -> &Block {
        &self.block
    }
    pub fn header(&self) -> &BlockHeader {
        &self.block.header
    }
    pub fn into_block(self) -> Block {
        self.block
    }
}

/// A block with the certificate that makes it final: what the store keeps and sync transfers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommittedBlock {
    pub block: Block,
    pub commit: CommitCertificate,
}
