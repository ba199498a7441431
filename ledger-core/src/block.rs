//! Blocks: a header that commits to everything, the previous block's commit, and the transactions.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::codec;
use crate::hash::Hash;
use crate::merkle;
use crate::tx::SignedTransaction;
use crate::types::{Address, ChainId, Height, TimestampMs};
use crate::vote::CommitCertificate;

/// The block header. The block hash is SHA-256 of its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Why a block's body (its transactions and previous commit) is not the one its header commits to.
/// Such a value is not a block at all: [`Block::seal`] refuses it, and so does decoding any
/// message that carries a [`SealedBlock`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("header says {header} transactions, the body has {got}")]
    TxCountMismatch { header: u32, got: usize },
    #[error("header's tx_root is {got}, the body's transactions hash to {expected}")]
    TxRootMismatch { expected: Hash, got: Hash },
    #[error("header's last_commit_hash is {got}, the body's previous commit hashes to {expected}")]
    LastCommitHashMismatch { expected: Hash, got: Hash },
}

impl Block {
    /// The hash of the header. It identifies the block only once the body is known to match the
    /// header ([`Block::seal`]); before that it names a header, not a block.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    /// Checks that the body is the one the header commits to (transaction count, transaction root,
    /// previous commit hash) and caches the hash and the transaction hashes.
    ///
    /// This is what makes the header hash the identity of the whole block (ADR 0007): the header
    /// commits to every transaction's hash (signature included) through `tx_root`, which binds the
    /// count and order, and to the previous commit through `last_commit_hash`. So two sealed blocks
    /// with one hash have byte-identical bodies (short of a SHA-256 collision), and a cache keyed
    /// by a sealed block's hash answers for exactly the body it checked.
    pub fn seal(self) -> Result<SealedBlock, BodyError> {
        let header = &self.header;
        if header.tx_count as usize != self.txs.len() {
            return Err(BodyError::TxCountMismatch {
                header: header.tx_count,
                got: self.txs.len(),
            });
        }
        let tx_hashes: Vec<Hash> = self.txs.iter().map(SignedTransaction::hash).collect();
        let tx_root = merkle::merkle_root(&tx_hashes);
        if tx_root != header.tx_root {
            return Err(BodyError::TxRootMismatch {
                expected: tx_root,
                got: header.tx_root,
            });
        }
        let last_commit_hash = self
            .last_commit
            .as_ref()
            .map_or(Hash::ZERO, CommitCertificate::hash);
        if last_commit_hash != header.last_commit_hash {
            return Err(BodyError::LastCommitHashMismatch {
                expected: last_commit_hash,
                got: header.last_commit_hash,
            });
        }
        Ok(SealedBlock::from_checked(self, tx_hashes))
    }
}

/// A block whose body matches its header, with its hash and transaction hashes computed once.
///
/// The only ways to get one are [`Block::seal`] and decoding (borsh or serde), which seals, and
/// the block builder, which makes the header from the body. Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct SealedBlock(Arc<SealedInner>);

#[derive(Debug)]
struct SealedInner {
    block: Block,
    hash: Hash,
    tx_hashes: Vec<Hash>,
}

impl SealedBlock {
    /// `tx_hashes` are the hashes of `block.txs`, and the header commits to them and to the
    /// previous commit: the caller made the header from the body, or checked it ([`Block::seal`]).
    pub(crate) fn from_checked(block: Block, tx_hashes: Vec<Hash>) -> SealedBlock {
        debug_assert_eq!(block.header.tx_count as usize, tx_hashes.len());
        debug_assert_eq!(block.header.tx_root, merkle::merkle_root(&tx_hashes));
        SealedBlock(Arc::new(SealedInner {
            hash: block.header.hash(),
            block,
            tx_hashes,
        }))
    }

    pub fn hash(&self) -> Hash {
        self.0.hash
    }
    pub fn block(&self) -> &Block {
        &self.0.block
    }
    pub fn header(&self) -> &BlockHeader {
        &self.0.block.header
    }
    pub fn height(&self) -> Height {
        self.0.block.header.height
    }
    /// The hashes of the block's transactions, in block order.
    pub fn tx_hashes(&self) -> &[Hash] {
        &self.0.tx_hashes
    }
    /// The block, without copying it when this is the only handle.
    pub fn into_block(self) -> Block {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.block,
            Err(shared) => shared.block.clone(),
        }
    }
}

/// Equal hashes mean equal blocks for sealed blocks; the body is compared too, so that equality
/// never rests on that argument alone.
impl PartialEq for SealedBlock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.block == other.0.block)
    }
}
impl Eq for SealedBlock {}

impl BorshSerialize for SealedBlock {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.0.block, writer)
    }
}

/// Decoding seals: bytes whose body does not match their header do not decode (the error is
/// [`codec::DecodeError::BlockBody`]).
impl BorshDeserialize for SealedBlock {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Block::deserialize_reader(reader)?
            .seal()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

impl Serialize for SealedBlock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Serialize::serialize(&self.0.block, serializer)
    }
}

impl<'de> Deserialize<'de> for SealedBlock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Block as Deserialize>::deserialize(deserializer)?
            .seal()
            .map_err(serde::de::Error::custom)
    }
}

/// A block with the certificate that makes it final: what the store keeps and sync transfers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommittedBlock {
    pub block: Block,
    pub commit: CommitCertificate,
}
