//! Offline chain check (`ledger-node verify`): replays every stored block from genesis with the
//! ledger's own rules and compares the result with what the store holds.
//!
//! For each height: the block and its certificate are present, the certificate is valid for the
//! block (more than 2/3 of the power), the block is a valid successor (header, signatures, nonces,
//! balances, transaction root, state root), and every transaction's index entry points back at it.
//! The replay runs on an in-memory state (the same tree code). At the end, the accounts table
//! must equal the replayed state exactly, and the stored state tree must give the replayed root at
//! the head and at every height whose version it keeps.

use std::sync::Arc;

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
    /// Heights whose stored state-tree root was checked against the block's (every kept one).
    pub state_versions_checked: u64,
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
    #[error("stored state (root {stored}) differs from the replayed state (root {replayed})")]
    AccountsMismatch { stored: Hash, replayed: Hash },
    #[error("reading the state: {0}")]
    State(String),
    #[error(
        "the stored state tree at height {height} has root {stored}, the replay gives {replayed}"
    )]
    TreeRoot {
        height: Height,
        stored: Hash,
        replayed: Hash,
    },
}

/// Replays the whole stored chain in memory. Blocking; reads every block once.
pub fn verify_chain(
    store_arc: &Arc<Store>,
    genesis: &Genesis,
) -> Result<VerifyReport, VerifyError> {
    let store: &Store = store_arc;
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
    // Every replayed root, by height, to check the stored tree's kept versions against.
    let mut roots = vec![state.root()];
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
        roots.push(executed.state_root());
        txs += cb.block.txs.len() as u64;
        parent = ParentBlock {
            height: header.height,
            hash,
            timestamp_ms: header.timestamp_ms,
        };
    }
    // The stored tree: its root at the head must be the replayed one, and every account of the
    // accounts table must be what the replay gives.
    let accounts = store.all_accounts()?;
    let n = accounts.len();
    let replayed = state
        .accounts_sorted()
        .map_err(|e| VerifyError::State(e.to_string()))?;
    let version = store.state_genesis_version()?.saturating_add(head.0);
    let stored_state = State::open(store_arc.clone(), head, version, None)
        .map_err(|e| VerifyError::State(e.to_string()))?;
    if accounts != replayed || stored_state.root() != state.root() {
        return Err(VerifyError::AccountsMismatch {
            stored: stored_state.root(),
            replayed: state.root(),
        });
    }
    // Every version the store keeps, newest first, down to the first pruned one.
    let mut state_versions_checked = 0u64;
    for (h, replayed) in roots.iter().enumerate().rev() {
        let height = Height(h as u64);
        match stored_state.root_at(height) {
            Ok(stored) if stored == *replayed => state_versions_checked += 1,
            Ok(stored) => {
                return Err(VerifyError::TreeRoot {
                    height,
                    stored,
                    replayed: *replayed,
                });
            }
            Err(ledger_core::state::StateError::HeightNotKept { .. }) => break,
            Err(e) => return Err(VerifyError::State(e.to_string())),
        }
    }
    Ok(VerifyReport {
        height: head,
        head_hash: parent.hash,
        state_root: state.root(),
        txs,
        accounts: n,
        state_versions_checked,
    })
}
