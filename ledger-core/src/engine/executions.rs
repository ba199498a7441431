//! Executions of blocks at the current height (our own build and validated proposals), kept so a
//! decided block is not executed twice.
//!
//! An entry keeps the block it executed and answers only for a block equal to it, header and body
//! (ADR 0007: for sealed blocks one hash names one body, and this does not rest on that alone).

use std::collections::BTreeMap;

use crate::block::SealedBlock;
use crate::hash::Hash;
use crate::state::ExecutedBlock;

/// Executions cached per height. A height sees our build and at most a few proposals per round;
/// past this (many rounds), the cache starts over, and a decided block is executed again.
pub const MAX_CACHED_EXECUTIONS: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Executions {
    by_hash: BTreeMap<Hash, (SealedBlock, ExecutedBlock)>,
}

impl Executions {
    pub fn insert(&mut self, block: SealedBlock, executed: ExecutedBlock) {
        if self.by_hash.len() >= MAX_CACHED_EXECUTIONS {
            self.by_hash.clear();
        }
        self.by_hash.insert(block.hash(), (block, executed));
    }

    /// Whether exactly `block` was executed.
    pub fn has(&self, block: &SealedBlock) -> bool {
        self.by_hash
            .get(&block.hash())
            .is_some_and(|(cached, _)| cached == block)
    }

    /// The execution of exactly `block`, if cached.
    pub fn take(&mut self, block: &SealedBlock) -> Option<ExecutedBlock> {
        match self.by_hash.remove(&block.hash()) {
            Some((cached, executed)) if cached == *block => Some(executed),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.by_hash.clear();
    }
}
