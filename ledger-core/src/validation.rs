//! Building and validating blocks: the ledger's rules for what may follow a committed block.
//!
//! - [`build_block`]: the proposer's side. From the parent, its state and the mempool's candidates
//!   (already verified), a valid block and its [`ExecutedBlock`]; candidates that fail a stateful
//!   check are left out and reported.
//! - [`validate_block`]: every other node's side. Header checks, the previous block's commit
//!   certificate, stateless checks and signatures of all transactions (in parallel with rayon,
//!   skipping those the caller already verified), stateful execution, transaction root and state
//!   root. The result is the [`ExecutedBlock`] to commit.
//! - [`replay_block`]: a stored or synced [`CommittedBlock`]: its own certificate, then validate and
//!   commit.
//!
//! Nothing here reads a clock: the proposer's and the validator's `now` come in as arguments. The
//! state is never cloned: execution runs on a [`StateOverlay`] over the parent state (its accounts
//! read in one batch), and the post-state root comes from the tree's writes computed against the
//! committed version without writing them ([`State::speculate`]). The functions take `&mut State`
//! only to remember that computation, so validating a block just built costs no second tree
//! update; the committed state is unchanged when they return (except [`replay_block`], which
//! commits).

use rayon::prelude::*;

use crate::block::{Block, BlockHeader, BodyError, CommittedBlock, SealedBlock};
use crate::codec;
use crate::crypto::{self, Domain, SignatureCheck};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle;
use crate::params::ConsensusParams;
use crate::state::{ApplyError, ExecutedBlock, State, StateError, StateOverlay, TxReceipt};
use crate::tx::{TxError, VerifiedTransaction};
use crate::types::{Address, Amount, ChainId, Height, TimestampMs};
use crate::validator::ValidatorSet;
use crate::vote::{CommitCertificate, VoteError};

/// Why a block is not a valid successor of its parent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("wrong chain: expected {expected}, got {got}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("wrong height: expected {expected}, got {got}")]
    WrongHeight { expected: Height, got: Height },
    #[error("wrong previous block hash: expected {expected}, got {got}")]
    WrongPrevHash { expected: Hash, got: Hash },
    #[error("timestamp {got} is not after the previous block's {prev}")]
    TimestampNotIncreasing { prev: TimestampMs, got: TimestampMs },
    #[error("timestamp {got} is more than {max_drift_ms} ms ahead of the local time {now}")]
    TimestampTooFarAhead {
        now: TimestampMs,
        max_drift_ms: u64,
        got: TimestampMs,
    },
    #[error("proposer {proposer} is not a validator")]
    UnknownProposer { proposer: Address },
    #[error("block has {got} transactions, the limit is {max}")]
    TooManyTxs { max: u32, got: usize },
    #[error("block is {got} bytes, the limit is {max}")]
    TooLarge { max: u64, got: u64 },
    #[error("block at height {height} lacks the previous block's commit certificate")]
    MissingLastCommit { height: Height },
    #[error("the first block cannot carry a previous commit certificate")]
    UnexpectedLastCommit,
    /// The state could not be read: a fault of this node's storage, not of the block.
    #[error("reading the state: {0}")]
    State(#[source] StateError),
    #[error("previous block's commit certificate is invalid: {0}")]
    BadLastCommit(#[source] VoteError),
    #[error("transaction {index} is invalid: {error}")]
    InvalidTx { index: usize, error: TxError },
    #[error("transaction {index} ({hash}) appears earlier in the block")]
    DuplicateTx { index: usize, hash: Hash },
    #[error("state root mismatch: computed {expected}, header has {got}")]
    StateRootMismatch { expected: Hash, got: Hash },
    #[error("block's own commit certificate is invalid: {0}")]
    BadCommit(#[source] VoteError),
    #[error("cannot commit the block: {0}")]
    Commit(#[source] StateError),
    /// Only from [`replay_block`], which seals the block it is given; every other entry point
    /// takes a [`SealedBlock`], whose body matches its header by construction.
    #[error(transparent)]
    Body(#[from] BodyError),
}

/// The chain's fixed facts every block is checked against (all from genesis).
#[derive(Debug, Clone, Copy)]
pub struct ChainContext<'a> {
    pub chain_id: &'a ChainId,
    pub params: &'a ConsensusParams,
    pub validators: &'a ValidatorSet,
}

/// What a new block builds on: the last committed block, or genesis (height 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentBlock {
    pub height: Height,
    pub hash: Hash,
    pub timestamp_ms: TimestampMs,
}

impl ParentBlock {
    /// Genesis as the parent of block 1: height 0, the genesis hash, the genesis time.
    pub fn genesis(genesis: &Genesis) -> ParentBlock {
        ParentBlock {
            height: Height(0),
            hash: genesis.hash(),
            timestamp_ms: genesis.genesis_time_ms(),
        }
    }

    /// A committed block as the parent of the next one.
    pub fn of(block: &SealedBlock) -> ParentBlock {
        ParentBlock {
            height: block.header().height,
            hash: block.hash(),
            timestamp_ms: block.header().timestamp_ms,
        }
    }

    /// The height of the block that follows.
    pub fn next_height(&self) -> Height {
        self.height.next()
    }
}

/// For callers that verified no signature yet: every signature is checked.
pub fn none_verified(_: &Hash) -> bool {
    false
}

/// A block built by [`build_block`].
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    pub block: SealedBlock,
    pub executed: ExecutedBlock,
    /// Candidates left out because a stateful check failed, in candidate order. `NonceTooHigh`
    /// ones may fit a later block; `NonceTooLow` ones never will.
    pub rejected: Vec<RejectedTx>,
}

/// A candidate transaction [`build_block`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedTx {
    pub hash: Hash,
    pub error: TxError,
}

/// Builds the block at `parent.height + 1` as `proposer`.
///
/// Candidates are taken in the given (mempool) order and executed on the parent state; a candidate
/// failing a stateful check (nonce, funds, overflow, or a chain other than this one) is left out
/// and reported in [`BuiltBlock::rejected`]. Building stops at the first candidate that would
/// exceed `max_block_txs` or `max_block_bytes`. The timestamp is `max(now, parent + 1 ms)`.
///
/// `last_commit` is the certificate of the parent block (`None` for block 1); it is verified, so a
/// node never proposes a block the others must reject. `state` is the parent state; its committed
/// state is unchanged on return, and committing the built block right after costs no tree work.
pub fn build_block<'t>(
    chain: ChainContext<'_>,
    parent: &ParentBlock,
    state: &mut State,
    candidates: impl IntoIterator<Item = &'t VerifiedTransaction>,
    proposer: Address,
    now: TimestampMs,
    last_commit: Option<CommitCertificate>,
) -> Result<BuiltBlock, BlockError> {
    let height = parent.next_height();
    if chain.validators.get(&proposer).is_none() {
        return Err(BlockError::UnknownProposer { proposer });
    }
    let last_commit_hash = check_last_commit(chain, parent, last_commit.as_ref())?;
    let timestamp_ms = TimestampMs(now.0.max(parent.timestamp_ms.0.saturating_add(1)));
    let mut header = BlockHeader {
        chain_id: chain.chain_id.clone(),
        height,
        prev_hash: parent.hash,
        timestamp_ms,
        proposer,
        tx_root: Hash::ZERO,
        tx_count: 0,
        state_root: Hash::ZERO,
        last_commit_hash,
    };
    let mut block = Block {
        header: header.clone(),
        last_commit,
        txs: Vec::new(),
    };
    // The header has a fixed size (integers and hashes; the chain id is fixed), so the empty
    // block's size plus each transaction's is the exact encoded size.
    let mut bytes = encoded_len(&block);
    let max_txs = chain.params.max_block_txs as usize;
    let candidates: Vec<&VerifiedTransaction> = candidates.into_iter().collect();
    let mut overlay = StateOverlay::new(state);
    overlay
        .prefetch(
            candidates
                .iter()
                .take(max_txs)
                .flat_map(|c| [c.sender(), c.tx().to])
                .chain([proposer]),
        )
        .map_err(BlockError::State)?;
    let mut receipts = Vec::new();
    let mut rejected = Vec::new();
    let mut total_fees = Amount(0);
    for candidate in candidates {
        if block.txs.len() >= max_txs {
            break;
        }
        let len = candidate.encoded_len() as u64;
        if bytes.saturating_add(len) > chain.params.max_block_bytes {
            break;
        }
        let tx = candidate.tx();
        if &tx.chain_id != chain.chain_id {
            rejected.push(RejectedTx {
                hash: candidate.hash(),
                error: TxError::WrongChain {
                    expected: chain.chain_id.clone(),
                    got: tx.chain_id.clone(),
                },
            });
            continue;
        }
        match overlay.apply_tx(candidate, &proposer) {
            Ok(()) => {}
            Err(ApplyError::Rule(error)) => {
                rejected.push(RejectedTx {
                    hash: candidate.hash(),
                    error,
                });
                continue;
            }
            Err(ApplyError::State(e)) => return Err(BlockError::State(e)),
        }
        // Cannot overflow: fees are part of the fixed supply, which fits in a u64.
        total_fees = Amount(total_fees.0.saturating_add(tx.fee.0));
        bytes += len;
        receipts.push(TxReceipt {
            hash: candidate.hash(),
            sender: candidate.sender(),
            fee: tx.fee,
        });
        block.txs.push(candidate.signed().clone());
    }
    let changes = overlay.into_changes();
    let parent_state_root = state.root();
    let writes = state
        .speculate(height, changes)
        .map_err(BlockError::State)?;
    let state_root = writes.root;
    let hashes: Vec<Hash> = receipts.iter().map(|r| r.hash).collect();
    header.tx_root = merkle::merkle_root(&hashes);
    // Fits: max_block_txs is a u32.
    header.tx_count = block.txs.len() as u32;
    header.state_root = state_root;
    block.header = header;
    // The header was made from this body.
    let block = SealedBlock::from_checked(block, hashes);
    let executed = ExecutedBlock {
        height,
        block_hash: block.hash(),
        parent_state_root,
        state_root,
        writes,
        receipts,
        total_fees,
    };
    Ok(BuiltBlock {
        block,
        executed,
        rejected,
    })
}

/// Validates `block` as the successor of `parent` and executes it on `state` (the parent's state),
/// returning what [`State::commit`] applies. The committed state is unchanged on return.
///
/// `now` is the local time for the clock-drift check of a proposal; pass `None` for a block that
/// is already final (its certificate, not our clock, vouches for it). `already_verified` tells which
/// transaction hashes had their signature verified already (by the mempool on admission); those
/// are not verified again. Pass [`none_verified`] to check them all.
///
/// The error is deterministic: header, then the stateless checks of each transaction, then
/// signatures, then the transaction root, then execution, then the state root; among
/// transactions, the lowest failing index is reported.
pub fn validate_block(
    chain: ChainContext<'_>,
    parent: &ParentBlock,
    state: &mut State,
    block: &SealedBlock,
    now: Option<TimestampMs>,
    already_verified: &(dyn Fn(&Hash) -> bool + Sync),
) -> Result<ExecutedBlock, BlockError> {
    let b = block.block();
    check_header(chain, parent, b, now)?;

    // Stateless checks (cheap), in parallel. Collected in block order, so the reported error does
    // not depend on thread scheduling.
    let checked: Vec<Result<VerifiedTransaction, TxError>> = b
        .txs
        .par_iter()
        .map(|stx| stx.clone().check_stateless(chain.chain_id))
        .collect();
    let mut txs = Vec::with_capacity(checked.len());
    for (index, result) in checked.into_iter().enumerate() {
        txs.push(result.map_err(|error| BlockError::InvalidTx { index, error })?);
    }

    // Signatures on all workers, and meanwhile everything else: execution is sequential by nature,
    // so it runs beside the signature checks instead of after them. Both sides finish before the
    // verdict, and the verdict's order is fixed: signatures first.
    let (bad_signature, executed) = rayon::join(
        || first_bad_signature(&txs, chain.chain_id, already_verified),
        || execute(state, &txs, block),
    );
    if let Some(index) = bad_signature {
        return Err(BlockError::InvalidTx {
            index,
            error: TxError::BadSignature,
        });
    }
    executed
}

/// The index of the first transaction whose signature does not verify (skipping those the caller
/// verified already), checking the others in batches in parallel ([`crypto::verify_all`]).
fn first_bad_signature(
    txs: &[VerifiedTransaction],
    chain_id: &ChainId,
    already_verified: &(dyn Fn(&Hash) -> bool + Sync),
) -> Option<usize> {
    let unverified: Vec<(usize, Vec<u8>)> = txs
        .par_iter()
        .enumerate()
        .filter(|(_, tx)| !already_verified(&tx.hash()))
        .map(|(i, tx)| {
            let payload = codec::encode(tx.tx());
            (
                i,
                crypto::signing_bytes(Domain::Transaction, chain_id, &payload),
            )
        })
        .collect();
    let checks: Vec<SignatureCheck<'_>> = unverified
        .iter()
        .map(|(i, message)| SignatureCheck {
            key: &txs[*i].tx().from,
            message,
            signature: &txs[*i].signed().signature,
        })
        .collect();
    crypto::verify_all(&checks)
        .err()
        .map(|bad| unverified[bad].0)
}

/// Execution of `txs` (stateless checks passed, signatures
/// checked elsewhere) on `state` and the state root check.
fn execute(
    state: &mut State,
    txs: &[VerifiedTransaction],
    block: &SealedBlock,
) -> Result<ExecutedBlock, BlockError> {
    let header = block.header();
    // The transaction root matches: the block is sealed (see `Block::seal`).
    let hashes = block.tx_hashes();
    debug_assert!(hashes.iter().zip(txs).all(|(h, tx)| *h == tx.hash()));
    let mut overlay = StateOverlay::new(state);
    overlay
        .prefetch(
            txs.iter()
                .flat_map(|tx| [tx.sender(), tx.tx().to])
                .chain([header.proposer]),
        )
        .map_err(BlockError::State)?;
    let mut receipts = Vec::with_capacity(txs.len());
    let mut total_fees = Amount(0);
    for (index, tx) in txs.iter().enumerate() {
        match overlay.apply_tx(tx, &header.proposer) {
            Ok(()) => {}
            Err(ApplyError::Rule(error)) => return Err(stateful_error(hashes, index, error)),
            Err(ApplyError::State(e)) => return Err(BlockError::State(e)),
        }
        // Cannot overflow: fees are part of the fixed supply, which fits in a u64.
        total_fees = Amount(total_fees.0.saturating_add(tx.tx().fee.0));
        receipts.push(TxReceipt {
            hash: tx.hash(),
            sender: tx.sender(),
            fee: tx.tx().fee,
        });
    }
    let changes = overlay.into_changes();
    let parent_state_root = state.root();
    let writes = state
        .speculate(header.height, changes)
        .map_err(BlockError::State)?;
    let state_root = writes.root;
    if state_root != header.state_root {
        return Err(BlockError::StateRootMismatch {
            expected: state_root,
            got: header.state_root,
        });
    }
    Ok(ExecutedBlock {
        height: header.height,
        block_hash: block.hash(),
        parent_state_root,
        state_root,
        writes,
        receipts,
        total_fees,
    })
}

/// Replays a final block (from the node's store on restart, or from a peer during sync): checks
/// its own commit certificate, validates it against `parent` and commits it to `state`. Returns
/// the executed block, whose changes the caller persists.
pub fn replay_block(
    chain: ChainContext<'_>,
    parent: &ParentBlock,
    state: &mut State,
    committed: &CommittedBlock,
) -> Result<ExecutedBlock, BlockError> {
    let block = committed.block.clone().seal()?;
    committed
        .commit
        .verify(
            chain.chain_id,
            chain.validators,
            block.header().height,
            &block.hash(),
        )
        .map_err(BlockError::BadCommit)?;
    let executed = validate_block(chain, parent, state, &block, None, &none_verified)?;
    state.commit(&executed).map_err(BlockError::Commit)?;
    Ok(executed)
}

/// Everything about a block that needs neither its transactions' contents nor the state.
fn check_header(
    chain: ChainContext<'_>,
    parent: &ParentBlock,
    block: &Block,
    now: Option<TimestampMs>,
) -> Result<(), BlockError> {
    let header = &block.header;
    if &header.chain_id != chain.chain_id {
        return Err(BlockError::WrongChain {
            expected: chain.chain_id.clone(),
            got: header.chain_id.clone(),
        });
    }
    let expected = parent.next_height();
    if header.height != expected {
        return Err(BlockError::WrongHeight {
            expected,
            got: header.height,
        });
    }
    if header.prev_hash != parent.hash {
        return Err(BlockError::WrongPrevHash {
            expected: parent.hash,
            got: header.prev_hash,
        });
    }
    if header.timestamp_ms <= parent.timestamp_ms {
        return Err(BlockError::TimestampNotIncreasing {
            prev: parent.timestamp_ms,
            got: header.timestamp_ms,
        });
    }
    if let Some(now) = now {
        let max_drift_ms = chain.params.max_clock_drift_ms;
        if header.timestamp_ms.0 > now.0.saturating_add(max_drift_ms) {
            return Err(BlockError::TimestampTooFarAhead {
                now,
                max_drift_ms,
                got: header.timestamp_ms,
            });
        }
    }
    if chain.validators.get(&header.proposer).is_none() {
        return Err(BlockError::UnknownProposer {
            proposer: header.proposer,
        });
    }
    if block.txs.len() > chain.params.max_block_txs as usize {
        return Err(BlockError::TooManyTxs {
            max: chain.params.max_block_txs,
            got: block.txs.len(),
        });
    }
    let bytes = encoded_len(block);
    if bytes > chain.params.max_block_bytes {
        return Err(BlockError::TooLarge {
            max: chain.params.max_block_bytes,
            got: bytes,
        });
    }
    // The header's `last_commit_hash` is the carried certificate's: the block is sealed.
    check_last_commit(chain, parent, block.last_commit.as_ref())?;
    Ok(())
}

/// Checks the parent's certificate carried by the block at `parent.height + 1` and returns the hash
/// the header must hold (`Hash::ZERO` for block 1, which has no parent certificate).
fn check_last_commit(
    chain: ChainContext<'_>,
    parent: &ParentBlock,
    last_commit: Option<&CommitCertificate>,
) -> Result<Hash, BlockError> {
    match (parent.height.0, last_commit) {
        (0, None) => Ok(Hash::ZERO),
        (0, Some(_)) => Err(BlockError::UnexpectedLastCommit),
        (_, None) => Err(BlockError::MissingLastCommit {
            height: parent.next_height(),
        }),
        (_, Some(cert)) => {
            cert.verify(
                chain.chain_id,
                chain.validators,
                parent.height,
                &parent.hash,
            )
            .map_err(BlockError::BadLastCommit)?;
            Ok(cert.hash())
        }
    }
}

/// The error for transaction `index` failing its stateful check: a repeated transaction fails its
/// nonce check, and is named as the duplicate it is.
fn stateful_error(hashes: &[Hash], index: usize, error: TxError) -> BlockError {
    if matches!(error, TxError::NonceTooLow { .. }) && hashes[..index].contains(&hashes[index]) {
        return BlockError::DuplicateTx {
            index,
            hash: hashes[index],
        };
    }
    BlockError::InvalidTx { index, error }
}

/// Canonical encoded size of a block, in bytes, without allocating the encoding.
fn encoded_len(block: &Block) -> u64 {
    // Counting into a sink cannot fail; a usize fits in a u64 on every supported target.
    borsh::object_length(block).map_or(u64::MAX, |n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Round;
    use crate::crypto::Keypair;
    use crate::tx::SignedTransaction;
    use crate::tx::Transaction;
    use crate::types::Nonce;
    use crate::vote::{Vote, VoteKind};

    const T0: u64 = crate::genesis::DEV_GENESIS_TIME_MS;

    struct Chain {
        genesis: Genesis,
        state: State,
        parent: ParentBlock,
    }

    fn chain() -> Chain {
        let genesis = Genesis::dev("validation-test", 4, 8).expect("valid");
        let state = genesis.initial_state();
        let parent = ParentBlock::genesis(&genesis);
        Chain {
            genesis,
            state,
            parent,
        }
    }

    fn proposer() -> Address {
        Keypair::dev("validator", 0).address()
    }

    fn tx(chain_id: &ChainId, from: u32, to: u32, amount: u64, nonce: u64) -> SignedTransaction {
        let key = Keypair::dev("account", from);
        Transaction {
            chain_id: chain_id.clone(),
            from: key.public(),
            to: Keypair::dev("account", to).address(),
            amount: Amount(amount),
            fee: Amount(1),
            nonce: Nonce(nonce),
            memo: vec![],
        }
        .sign(&key)
    }

    fn verified(c: &Chain, stx: SignedTransaction) -> VerifiedTransaction {
        stx.verify(c.genesis.chain_id()).expect("valid")
    }

    fn build(
        c: &mut Chain,
        txs: &[VerifiedTransaction],
        last: Option<CommitCertificate>,
    ) -> BuiltBlock {
        build_block(
            c.genesis.chain_context(),
            &c.parent,
            &mut c.state,
            txs,
            proposer(),
            TimestampMs(T0 + 1000),
            last,
        )
        .expect("builds")
    }

    fn validate(c: &mut Chain, block: &SealedBlock) -> Result<ExecutedBlock, BlockError> {
        validate_block(
            c.genesis.chain_context(),
            &c.parent,
            &mut c.state,
            block,
            Some(TimestampMs(T0 + 1000)),
            &none_verified,
        )
    }

    /// The block with `edit` applied to it, resealed (the edit must keep the body matching).
    fn edited(block: &SealedBlock, edit: impl FnOnce(&mut Block)) -> SealedBlock {
        try_edited(block, edit).expect("the edit keeps the body matching the header")
    }

    fn try_edited(
        block: &SealedBlock,
        edit: impl FnOnce(&mut Block),
    ) -> Result<SealedBlock, BodyError> {
        let mut b = block.block().clone();
        edit(&mut b);
        b.seal()
    }

    /// [`edited`] with a body edit, then with the header's transaction root, count and previous
    /// commit hash made to match the body, so the block gets past sealing to the check under test.
    fn edited_body(block: &SealedBlock, edit: impl FnOnce(&mut Block)) -> SealedBlock {
        edited(block, |b| {
            edit(b);
            let hashes: Vec<Hash> = b.txs.iter().map(SignedTransaction::hash).collect();
            b.header.tx_root = merkle::merkle_root(&hashes);
            b.header.tx_count = b.txs.len() as u32;
            b.header.last_commit_hash = b.last_commit.as_ref().map_or(Hash::ZERO, |c| c.hash());
        })
    }

    fn certificate(c: &Chain, block: &SealedBlock, signers: usize) -> CommitCertificate {
        let votes: Vec<_> = (0..signers as u32)
            .map(|i| {
                let key = Keypair::dev("validator", i);
                Vote {
                    kind: VoteKind::Precommit,
                    height: block.header().height,
                    round: Round(0),
                    block_hash: Some(block.hash()),
                    validator: key.address(),
                }
                .sign(c.genesis.chain_id(), &key)
            })
            .collect();
        CommitCertificate::from_precommits(
            block.header().height,
            Round(0),
            block.hash(),
            c.genesis.validators(),
            &votes,
        )
    }

    /// Commits `built` and makes it the parent; returns its certificate.
    fn advance(c: &mut Chain, built: &BuiltBlock) -> CommitCertificate {
        let cert = certificate(c, &built.block, 3);
        c.state.commit(&built.executed).expect("commits");
        c.parent = ParentBlock::of(&built.block);
        cert
    }

    #[test]
    fn a_built_block_validates_to_the_same_execution_and_leaves_the_state_alone() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let root = c.state.root();
        let txs = [
            verified(&c, tx(&id, 0, 1, 10, 0)),
            verified(&c, tx(&id, 0, 2, 10, 1)),
        ];
        let built = build(&mut c, &txs, None);
        assert!(built.rejected.is_empty());
        assert_eq!(built.block.block().txs.len(), 2);
        assert_eq!(built.block.header().timestamp_ms, TimestampMs(T0 + 1000));
        assert_eq!(c.state.root(), root, "building does not change the state");
        let executed = validate(&mut c, &built.block).expect("valid");
        assert_eq!(c.state.root(), root, "validating does not change the state");
        assert_eq!(executed, built.executed);
        assert_eq!(executed.total_fees(), Amount(2));
        assert_eq!(executed.receipts().len(), 2);
        c.state.commit(&executed).expect("commits");
        assert_eq!(c.state.root(), built.block.header().state_root);
        assert_eq!(c.state.get(&proposer()).expect("reads").balance, Amount(2));
    }

    #[test]
    fn builder_skips_and_reports_failing_candidates_and_keeps_time_increasing() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let other = ChainId::new("other").expect("valid");
        let bad_chain = tx(&other, 3, 1, 10, 0)
            .verify(&other)
            .expect("valid elsewhere");
        let txs = [
            verified(&c, tx(&id, 0, 1, 10, 1)), // nonce gap
            verified(&c, tx(&id, 0, 1, 10, 0)), // fine
            verified(&c, tx(&id, 2, 1, crate::genesis::DEV_ACCOUNT_BALANCE, 0)), // amount + fee > balance
            bad_chain,
        ];
        c.parent.timestamp_ms = TimestampMs(T0 + 5000); // parent ahead of our clock
        let built = build(&mut c, &txs, None);
        assert_eq!(built.block.block().txs, vec![txs[1].signed().clone()]);
        let errors: Vec<&str> = built.rejected.iter().map(|r| r.error.code()).collect();
        assert_eq!(
            errors,
            ["nonce_too_high", "insufficient_funds", "wrong_chain"]
        );
        assert_eq!(built.block.header().timestamp_ms, TimestampMs(T0 + 5001));
    }

    #[test]
    fn builder_respects_the_count_and_byte_limits() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let txs: Vec<_> = (0..5).map(|n| verified(&c, tx(&id, 0, 1, 1, n))).collect();
        let mut params = c.genesis.consensus_params().clone();
        params.max_block_txs = 3;
        let ctx = ChainContext {
            params: &params,
            ..c.genesis.chain_context()
        };
        let now = TimestampMs(T0 + 1);
        let built =
            build_block(ctx, &c.parent, &mut c.state, &txs, proposer(), now, None).expect("builds");
        assert_eq!(built.block.block().txs.len(), 3);
        params.max_block_txs = 100;
        let mut empty = built.block.block().clone();
        empty.txs.clear();
        let empty = encoded_len(&empty);
        params.max_block_bytes = empty + 2 * txs[0].encoded_len() as u64;
        let ctx = ChainContext {
            params: &params,
            ..c.genesis.chain_context()
        };
        let built =
            build_block(ctx, &c.parent, &mut c.state, &txs, proposer(), now, None).expect("builds");
        assert_eq!(built.block.block().txs.len(), 2);
        assert_eq!(
            encoded_len(built.block.block()),
            params.max_block_bytes,
            "exact size accounting"
        );
        // And the validator agrees with the limits.
        params.max_block_bytes -= 1;
        let ctx = ChainContext {
            params: &params,
            ..c.genesis.chain_context()
        };
        let e = validate_block(
            ctx,
            &c.parent,
            &mut c.state,
            &built.block,
            None,
            &none_verified,
        );
        assert!(matches!(e, Err(BlockError::TooLarge { .. })));
        params.max_block_txs = 1;
        let ctx = ChainContext {
            params: &params,
            ..c.genesis.chain_context()
        };
        let e = validate_block(
            ctx,
            &c.parent,
            &mut c.state,
            &built.block,
            None,
            &none_verified,
        );
        assert_eq!(e, Err(BlockError::TooManyTxs { max: 1, got: 2 }));
    }

    #[test]
    fn builder_refuses_an_unknown_proposer_or_a_wrong_last_commit() {
        let mut c = chain();
        let ctx = c.genesis.chain_context();
        let stranger = Keypair::dev("account", 0).address();
        let now = TimestampMs(T0 + 1);
        let e = build_block(ctx, &c.parent, &mut c.state, [], stranger, now, None);
        assert!(matches!(e, Err(BlockError::UnknownProposer { proposer }) if proposer == stranger));
        let built = build(&mut c, &[], None);
        let cert = advance(&mut c, &built);
        let ctx = c.genesis.chain_context();
        let e = build_block(ctx, &c.parent, &mut c.state, [], proposer(), now, None);
        assert!(matches!(
            e,
            Err(BlockError::MissingLastCommit { height: Height(2) })
        ));
        let mut weak = cert.clone();
        weak.signatures.truncate(2);
        let e = build_block(
            ctx,
            &c.parent,
            &mut c.state,
            [],
            proposer(),
            now,
            Some(weak),
        );
        assert!(matches!(
            e,
            Err(BlockError::BadLastCommit(VoteError::NoQuorum { .. }))
        ));
        let b2 = build_block(
            ctx,
            &c.parent,
            &mut c.state,
            [],
            proposer(),
            now,
            Some(cert),
        )
        .expect("builds");
        assert_eq!(b2.block.header().height, Height(2));
        assert!(validate(&mut c, &b2.block).is_ok());
    }

    #[test]
    fn header_errors() {
        let mut c = chain();
        let built = build(&mut c, &[], None);
        let b = &built.block;
        let other = ChainId::new("other").expect("valid");
        let cases: Vec<(SealedBlock, BlockError)> = vec![
            (
                edited(b, |b| b.header.chain_id = other.clone()),
                BlockError::WrongChain {
                    expected: c.genesis.chain_id().clone(),
                    got: other.clone(),
                },
            ),
            (
                edited(b, |b| b.header.height = Height(2)),
                BlockError::WrongHeight {
                    expected: Height(1),
                    got: Height(2),
                },
            ),
            (
                edited(b, |b| b.header.prev_hash = Hash::ZERO),
                BlockError::WrongPrevHash {
                    expected: c.parent.hash,
                    got: Hash::ZERO,
                },
            ),
            (
                edited(b, |b| b.header.timestamp_ms = TimestampMs(T0)),
                BlockError::TimestampNotIncreasing {
                    prev: TimestampMs(T0),
                    got: TimestampMs(T0),
                },
            ),
            (
                edited(b, |b| b.header.timestamp_ms = TimestampMs(T0 + 3001)),
                BlockError::TimestampTooFarAhead {
                    now: TimestampMs(T0 + 1000),
                    max_drift_ms: 2000,
                    got: TimestampMs(T0 + 3001),
                },
            ),
            (
                edited(b, |b| b.header.proposer = Keypair::dev("x", 0).address()),
                BlockError::UnknownProposer {
                    proposer: Keypair::dev("x", 0).address(),
                },
            ),
            (
                edited(b, |b| b.header.state_root = Hash::digest(b"x")),
                BlockError::StateRootMismatch {
                    expected: b.header().state_root,
                    got: Hash::digest(b"x"),
                },
            ),
        ];
        for (block, expected) in cases {
            assert_eq!(validate(&mut c, &block), Err(expected));
        }
        // A final block is not subject to the local clock.
        let late = edited(b, |b| b.header.timestamp_ms = TimestampMs(T0 + 3001));
        let ctx = c.genesis.chain_context();
        let e = validate_block(ctx, &c.parent, &mut c.state, &late, None, &none_verified);
        assert!(matches!(
            e,
            Err(BlockError::StateRootMismatch { .. }) | Ok(_)
        ));
    }

    #[test]
    fn a_body_that_is_not_the_headers_does_not_seal() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let txs = [verified(&c, tx(&id, 0, 1, 10, 0))];
        let built = build(&mut c, &txs, None);
        let b = &built.block;
        let cases: Vec<(Result<SealedBlock, BodyError>, BodyError)> = vec![
            (
                try_edited(b, |b| b.header.tx_count = 2),
                BodyError::TxCountMismatch { header: 2, got: 1 },
            ),
            (
                try_edited(b, |b| b.header.last_commit_hash = Hash::digest(b"x")),
                BodyError::LastCommitHashMismatch {
                    expected: Hash::ZERO,
                    got: Hash::digest(b"x"),
                },
            ),
            (
                try_edited(b, |b| b.header.tx_root = Hash::digest(b"x")),
                BodyError::TxRootMismatch {
                    expected: b.header().tx_root,
                    got: Hash::digest(b"x"),
                },
            ),
            (
                try_edited(b, |b| b.txs[0] = tx(&id, 0, 1, 11, 0)),
                BodyError::TxRootMismatch {
                    expected: merkle::merkle_root(&[tx(&id, 0, 1, 11, 0).hash()]),
                    got: b.header().tx_root,
                },
            ),
            (
                try_edited(b, |b| b.txs[0].signature.0[3] ^= 1),
                BodyError::TxRootMismatch {
                    expected: merkle::merkle_root(&[edited_body(b, |b| {
                        b.txs[0].signature.0[3] ^= 1
                    })
                    .block()
                    .txs[0]
                        .hash()]),
                    got: b.header().tx_root,
                },
            ),
        ];
        for (sealed, expected) in cases {
            assert_eq!(sealed, Err(expected));
        }
        // Replay takes an unsealed block and reports the mismatch as a block error.
        let mut swapped = b.block().clone();
        swapped.txs.clear();
        let committed = CommittedBlock {
            block: swapped,
            commit: certificate(&c, b, 3),
        };
        let ctx = c.genesis.chain_context();
        assert_eq!(
            replay_block(ctx, &c.parent, &mut c.state, &committed),
            Err(BlockError::Body(BodyError::TxCountMismatch {
                header: 1,
                got: 0
            }))
        );
    }

    #[test]
    fn last_commit_errors() {
        let mut c = chain();
        let b1 = build(&mut c, &[], None);
        let cert1 = certificate(&c, &b1.block, 3);
        let unexpected = edited_body(&b1.block, |b| b.last_commit = Some(cert1.clone()));
        assert_eq!(
            validate(&mut c, &unexpected),
            Err(BlockError::UnexpectedLastCommit)
        );
        let cert = advance(&mut c, &b1);
        let b2 = build(&mut c, &[], Some(cert.clone()));
        let missing = edited_body(&b2.block, |b| b.last_commit = None);
        assert_eq!(
            validate(&mut c, &missing),
            Err(BlockError::MissingLastCommit { height: Height(2) })
        );
        let forged = edited_body(&b2.block, |b| {
            if let Some(cert) = &mut b.last_commit {
                cert.signatures[0].signature.0[0] ^= 1;
            }
        });
        assert!(matches!(
            validate(&mut c, &forged),
            Err(BlockError::BadLastCommit(VoteError::BadSignature { .. }))
        ));
        let other_cert = certificate(&c, &b2.block, 4);
        let swapped = edited_body(&b2.block, |b| b.last_commit = Some(other_cert));
        assert!(matches!(
            validate(&mut c, &swapped),
            Err(BlockError::BadLastCommit(VoteError::WrongHeight { .. }))
        ));
        let four = certificate(&c, &b1.block, 4);
        // Another valid certificate of block 1 under block 2's header is a different body.
        let rehash = try_edited(&b2.block, |b| b.last_commit = Some(four.clone()));
        assert_eq!(
            rehash,
            Err(BodyError::LastCommitHashMismatch {
                expected: four.hash(),
                got: cert.hash()
            })
        );
    }

    #[test]
    fn transaction_errors_name_the_index() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let good = [
            verified(&c, tx(&id, 0, 1, 10, 0)),
            verified(&c, tx(&id, 1, 2, 10, 0)),
        ];
        let built = build(&mut c, &good, None);
        let b = &built.block;
        // A bad signature at index 1.
        let bad_sig = edited_body(b, |b| b.txs[1].signature.0[3] ^= 1);
        assert_eq!(
            validate(&mut c, &bad_sig),
            Err(BlockError::InvalidTx {
                index: 1,
                error: TxError::BadSignature
            })
        );
        // Stateful: the same sender's nonce reused at index 1.
        let replay = tx(&id, 0, 3, 10, 0);
        let stale = edited_body(b, |b| b.txs[1] = replay.clone());
        assert_eq!(
            validate(&mut c, &stale),
            Err(BlockError::InvalidTx {
                index: 1,
                error: TxError::NonceTooLow {
                    expected: Nonce(1),
                    got: Nonce(0)
                }
            })
        );
        // The same transaction twice.
        let dup = edited_body(b, |b| b.txs[1] = b.txs[0].clone());
        assert_eq!(
            validate(&mut c, &dup),
            Err(BlockError::DuplicateTx {
                index: 1,
                hash: b.block().txs[0].hash()
            })
        );
        // A transaction of another chain (stateless).
        let other = ChainId::new("other").expect("valid");
        let foreign = edited_body(b, |b| b.txs[0] = tx(&other, 0, 1, 10, 0));
        assert!(matches!(
            validate(&mut c, &foreign),
            Err(BlockError::InvalidTx {
                index: 0,
                error: TxError::WrongChain { .. }
            })
        ));
    }

    #[test]
    fn signatures_the_caller_verified_are_not_verified_again() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let good = [verified(&c, tx(&id, 0, 1, 10, 0))];
        let built = build(&mut c, &good, None);
        let bad_sig = edited_body(&built.block, |b| b.txs[0].signature.0[3] ^= 1);
        let h = bad_sig.block().txs[0].hash();
        let ctx = c.genesis.chain_context();
        let claimed = |x: &Hash| *x == h;
        // The claim is trusted: a transaction hash covers its signature, so a caller can only
        // claim it for the exact signature it verified.
        let e = validate_block(ctx, &c.parent, &mut c.state, &bad_sig, None, &claimed);
        assert!(e.is_ok(), "{e:?}");
        let e = validate_block(ctx, &c.parent, &mut c.state, &bad_sig, None, &none_verified);
        assert_eq!(
            e,
            Err(BlockError::InvalidTx {
                index: 0,
                error: TxError::BadSignature
            })
        );
    }

    #[test]
    fn replay_checks_the_blocks_own_certificate_and_commits() {
        let mut c = chain();
        let id = c.genesis.chain_id().clone();
        let good = [verified(&c, tx(&id, 0, 1, 10, 0))];
        let built = build(&mut c, &good, None);
        let cert = certificate(&c, &built.block, 3);
        let ctx = c.genesis.chain_context();
        let weak = CommittedBlock {
            block: built.block.block().clone(),
            commit: certificate(&c, &built.block, 2),
        };
        let e = replay_block(ctx, &c.parent, &mut c.state, &weak);
        assert!(matches!(
            e,
            Err(BlockError::BadCommit(VoteError::NoQuorum { .. }))
        ));
        let committed = CommittedBlock {
            block: built.block.block().clone(),
            commit: cert,
        };
        let executed = replay_block(ctx, &c.parent, &mut c.state, &committed).expect("replays");
        assert_eq!(c.state.root(), built.block.header().state_root);
        assert_eq!(executed, built.executed);
        // Committing the same execution again is refused: the state moved on.
        assert!(matches!(
            c.state.commit(&executed).map_err(BlockError::Commit),
            Err(BlockError::Commit(StateError::ParentRootMismatch { .. }))
        ));
    }
}
