//! Offline chain check (`ledger-node verify`): replays every stored block from genesis with the
//! ledger's own rules and compares the result with what the store holds.
//!
//! For each height: the block and its certificate are present, the certificate is valid for the
//! block (more than 2/3 of the power), the block is a valid successor (header, signatures, nonces,
//! balances, transaction root, state root), and every transaction's index entry points back at it.
//! At the end, the accounts table must equal the replayed state exactly.

use ledger_core::Hash;
use ledger_core::genesis::Genesis;
use ledger_core::state::State;
use ledger_core::validation::{BlockError, ParentBlock, replay_block};
use ledger_core::{Height, codec};
use serde::Serialize;

use crate::store::{Store, StoreError, TxLocation};

/// What a successful check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub height: Height,
    pub head_hash: Hash,
    pub state_root: Hash,
    pub txs: u64,
    pub accounts: usize,
}

/// Why the stored chain is not what replaying it gives.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the data dir was initialised with genesis {stored}, the genesis file hashes to {given}"
    )]
    GenesisMismatch { stored: Hash, given: Hash },
    #[error("the data dir has no genesis")]
    Uninitialised,
    #[error("block {height} is missing (head is {head})")]
    MissingBlock { height: Height, head: Height },
    #[error("block {height} does not replay: {source}")]
    Block {
        height: Height,
        #[source]
        source: BlockError,
    },
    #[error("transaction {hash} of block {height} has index entry {got:?}, expected index {index}")]
    TxIndex {
        hash: Hash,
        height: Height,
        index: u32,
        got: Option<TxLocation>,
    },
    #[error("block hash index for height {height} says {got:?}")]
    HashIndex { height: Height, got: Option<Height> },
    #[error("stored accounts (root {stored}) differ from the replayed state (root {replayed})")]
    AccountsMismatch { stored: Hash, replayed: Hash },
}

/// Replays the whole stored chain. Blocking; reads every block once.
pub fn verify_chain(store: &Store, genesis: &Genesis) -> Result<VerifyReport, VerifyError> {
    let stored = store.genesis_hash()?.ok_or(VerifyError::Uninitialised)?;
    if stored != genesis.hash() {
        return Err(VerifyError::GenesisMismatch {
            stored,
            given: genesis.hash(),
        });
    }
    let head = store.head_height()?;
    let chain = genesis.chain_context();
    let mut state: State = genesis.initial_state();
    let mut parent = ParentBlock::genesis(genesis);
    let mut txs = 0u64;
    for h in 1..=head.0 {
        let height = Height(h);
        let cb = store
            .committed_block(height)?
            .ok_or(VerifyError::MissingBlock { height, head })?;
        let executed = replay_block(chain, &parent, &mut state, &cb)
            .map_err(|source| VerifyError::Block { height, source })?;
        // Replay sealed it already: the body matches the header.
        let hash = cb.block.hash();
        let header = &cb.block.header;
        let by_hash = store.height_of_hash(&hash)?;
        if by_hash != Some(height) {
            return Err(VerifyError::HashIndex {
                height,
                got: by_hash,
            });
        }
        for (i, tx) in cb.block.txs.iter().enumerate() {
            let hash = Hash::digest(&codec::encode(tx));
            let got = store.tx_location(&hash)?;
            let index = i as u32;
            if got != Some(TxLocation { height, index }) {
                return Err(VerifyError::TxIndex {
                    hash,
                    height,
                    index,
                    got,
                });
            }
        }
        debug_assert_eq!(executed.state_root(), header.state_root);
        txs += cb.block.txs.len() as u64;
        parent = ParentBlock {
            height: header.height,
            hash,
            timestamp_ms: header.timestamp_ms,
        };
    }
    let accounts = store.all_accounts()?;
    let n = accounts.len();
    let replayed = state.accounts_sorted();
    if accounts != replayed {
        let stored_root = State::from_accounts(accounts)
            .map(|s| s.root())
            .unwrap_or(Hash::ZERO);
        return Err(VerifyError::AccountsMismatch {
            stored: stored_root,
            replayed: state.root(),
        });
    }
    Ok(VerifyReport {
        height: head,
        head_hash: parent.hash,
        state_root: state.root(),
        txs,
        accounts: n,
    })
}
