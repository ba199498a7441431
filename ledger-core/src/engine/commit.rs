//! The committer and the sync applier: a decided block, or a final block fetched from a peer,
//! becomes the head.

use super::{Committed, Effect, Engine, EngineError, Head};
use crate::block::{BodyError, CommittedBlock, SealedBlock};
use crate::state::ExecutedBlock;
use crate::types::Round;
use crate::validation::{BlockError, none_verified};
use crate::vote::{CommitCertificate, VoteError};

/// Why a synced block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRefusal {
    #[error("its body does not match its header: {0}")]
    Body(#[source] BodyError),
    #[error("its certificate is invalid: {0}")]
    Certificate(#[source] VoteError),
    /// A certificate of more than 2/3 of the power for an invalid block: the validators are
    /// byzantine beyond the model. The node refuses to follow and keeps serving.
    #[error("it is invalid: {0}")]
    Invalid(#[source] BlockError),
}

impl Engine {
    /// `Output::Decide`: commits `block` (the body the machine validated) with `certificate`.
    /// Returns whether it became the head (it may already have been applied by sync).
    pub(super) fn decide(
        &mut self,
        block: SealedBlock,
        certificate: CommitCertificate,
        effects: &mut Vec<Effect>,
    ) -> Result<bool, EngineError> {
        let height = block.height();
        if height != self.head.parent.next_height() {
            return Ok(false);
        }
        let executed = match self.executions.take(&block) {
            Some(e) => e,
            // Valid without a cached execution: our own proposal or valid value restored from
            // the WAL after a restart.
            None => self
                .execute_on_head(&block, &none_verified)
                .map_err(|source| EngineError::DecidedInvalid { height, source })?,
        };
        let round = certificate.round;
        self.commit(block, certificate, executed, Some(round), effects)?;
        Ok(true)
    }

    /// Applies blocks fetched by sync: each must extend the head, carry a valid certificate and be
    /// valid. Stops at the first gap or refusal. Returns whether any was applied.
    pub(super) fn apply_synced(
        &mut self,
        blocks: Vec<CommittedBlock>,
        effects: &mut Vec<Effect>,
    ) -> Result<bool, EngineError> {
        let mut applied = false;
        for cb in blocks {
            let height = cb.block.header.height;
            let next = self.head.parent.next_height();
            if height < next {
                continue;
            }
            if height > next {
                break;
            }
            match self.check_synced(cb) {
                Ok((block, commit, executed)) => {
                    self.commit(block, commit, executed, None, effects)?;
                    applied = true;
                }
                Err(reason) => {
                    effects.push(Effect::SyncRefused { height, reason });
                    break;
                }
            }
        }
        Ok(applied)
    }

    fn check_synced(
        &mut self,
        cb: CommittedBlock,
    ) -> Result<(SealedBlock, CommitCertificate, ExecutedBlock), SyncRefusal> {
        let block = cb.block.seal().map_err(SyncRefusal::Body)?;
        cb.commit
            .verify(
                self.genesis.chain_id(),
                self.genesis.validators(),
                block.height(),
                &block.hash(),
            )
            .map_err(SyncRefusal::Certificate)?;
        let executed = self
            .execute_on_head(&block, &none_verified)
            .map_err(SyncRefusal::Invalid)?;
        Ok((block, cb.commit, executed))
    }

    /// Makes `block` the head: the state follows it and everything of its height is dropped.
    fn commit(
        &mut self,
        block: SealedBlock,
        certificate: CommitCertificate,
        executed: ExecutedBlock,
        decided_in_round: Option<Round>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        self.state.commit(&executed)?;
        let parent_time = (self.head.parent.height.0 > 0).then_some(self.head.parent.timestamp_ms);
        self.executions.clear();
        self.pending_validations.clear();
        self.timers.clear_timeouts();
        self.producer.clear();
        self.wal_seq = 0;
        self.head = Head::committed(block.clone(), certificate.clone());
        effects.push(Effect::Commit(Box::new(Committed {
            tx_hashes: block.tx_hashes().to_vec(),
            accounts: executed.changes().to_vec(),
            state: executed.writes().clone(),
            block,
            certificate,
            decided_in_round,
            parent_time,
        })));
        Ok(())
    }
}
