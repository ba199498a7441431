//! The consensus driver without I/O: what the node's consensus task runs, and what the
//! deterministic simulator runs too.
//!
//! An [`Engine`] owns the [`ConsensusMachine`], the [`State`] after the head block and the head
//! itself. [`Engine::handle`] takes one [`Event`] (a message, the passing of time, an answer to a
//! request) at a given [`Now`] and returns the [`Effect`]s to perform, in order. Everything that
//! decides what goes into the chain happens here, with the real ledger rules: the block production
//! policy ([`producer`]), validation and execution of proposals with their cache ([`executions`]),
//! commit of decided blocks and application of synced ones ([`commit`]), and timers as values
//! ([`timers`]). The caller only does I/O:
//!
//! - [`Effect::Persist`]: append to the write-ahead log, durably, **before** performing the next
//!   effect (so an own vote is on disk before its broadcast).
//! - [`Effect::Commit`]: write the block, its certificate and the account changes durably; the
//!   engine's state already moved on. Then tell the mempool and the block's subscribers.
//! - [`Effect::Broadcast`], [`Effect::Evidence`]: gossip, best effort.
//! - [`Effect::FetchCandidates`] and [`Effect::LookupVerified`] are requests to the mempool; their
//!   answers come back as [`Event::Candidates`] and [`Event::VerifiedTxs`].
//! - Call [`Engine::handle`] with [`Event::Time`] once [`Engine::next_deadline_ms`] has passed.
//!
//! Time is two clocks ([`Now`]): timers run on a monotonic clock, so a wall-clock jump neither fires
//! nor delays a timeout; the wall clock only stamps built blocks and bounds the timestamps of
//! proposals (the machine's clock-drift check).

pub mod commit;
pub mod executions;
pub mod producer;
pub mod timers;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::block::{CommittedBlock, SealedBlock};
use crate::consensus::{
    ConsensusConfig, ConsensusMachine, ConsensusMessage, Evidence, Input, Output, RestoreError,
    VerifiedMessage, WalEntry,
};
use crate::crypto::Keypair;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::state::{Account, State, StateError, StateWrites};
use crate::tx::{TxError, VerifiedTransaction};
use crate::types::{Address, Height, Round, TimestampMs};
use crate::validation::{BlockError, ParentBlock, validate_block};
use crate::vote::CommitCertificate;

pub use commit::SyncRefusal;
use executions::Executions;
use producer::Producer;
use timers::Timers;

/// Machine inputs processed in one [`Engine::handle`] call (answers feed back as inputs): a guard
/// against a bug looping forever, far above what one event causes.
const MAX_INPUTS_PER_EVENT: usize = 10_000;
/// Proposals waiting for [`Event::VerifiedTxs`]. The machine asks once per block per height, so a
/// request must never be forgotten (the block would stay unvalidated for the whole height): past
/// this many, a new block is validated at once, checking every signature, instead of waiting for
/// the lookup. The node answers each lookup before its next event, so it never gets here.
pub const MAX_PENDING_VALIDATIONS: usize = 64;

/// The two clocks, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Wall-clock time (Unix ms): block timestamps and the clock-drift bound of proposals.
    pub wall: TimestampMs,
    /// A monotonic clock from any origin: every timer.
    pub mono_ms: u64,
}

/// What the engine needs to know of the chain and of itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub genesis: Arc<Genesis>,
    /// This node's validator key; `None` for a node that follows without voting or proposing.
    pub key: Option<Keypair>,
}

/// The last committed block.
#[derive(Debug, Clone)]
pub struct Head {
    /// `None` at genesis (height 0).
    pub block: Option<SealedBlock>,
    pub parent: ParentBlock,
    /// The head block's certificate: the next block's `last_commit`.
    pub cert: Option<CommitCertificate>,
}

impl Head {
    /// Nothing committed yet.
    pub fn genesis(genesis: &Genesis) -> Head {
        Head {
            block: None,
            parent: ParentBlock::genesis(genesis),
            cert: None,
        }
    }

    /// `block`, final with `cert`.
    pub fn committed(block: SealedBlock, cert: CommitCertificate) -> Head {
        Head {
            parent: ParentBlock::of(&block),
            block: Some(block),
            cert: Some(cert),
        }
    }

    pub fn height(&self) -> Height {
        self.parent.height
    }
}

/// What happens to the engine.
#[derive(Debug, Clone)]
pub enum Event {
    /// Start the height after the head (once, at start-up; after a commit the engine starts the
    /// next height itself).
    Start,
    /// A consensus message whose signature the machine checks.
    Message(ConsensusMessage),
    /// A consensus message checked at gossip validation ([`ConsensusMessage::verified`]).
    Verified(VerifiedMessage),
    /// Time passed: fires the timers and the block build that are due.
    Time,
    /// The mempool now holds `txs` transactions (a build waiting for transactions starts after the
    /// fill pause once it grows).
    PoolSize { txs: usize },
    /// The answer to [`Effect::FetchCandidates`]: the mempool's candidates, in its order.
    Candidates {
        height: Height,
        txs: Vec<VerifiedTransaction>,
    },
    /// The answer to [`Effect::LookupVerified`]: the transactions of the block whose signatures the
    /// caller already verified (a transaction hash covers its signature).
    VerifiedTxs {
        block_hash: Hash,
        verified: HashSet<Hash>,
    },
    /// Committed blocks fetched by sync, in ascending height order.
    Synced(Vec<CommittedBlock>),
}

/// A block made final here: what the caller writes and announces.
#[derive(Debug, Clone)]
pub struct Committed {
    pub block: SealedBlock,
    pub certificate: CommitCertificate,
    pub tx_hashes: Vec<Hash>,
    /// The accounts the block changed, with their new values.
    pub accounts: Vec<(Address, Account)>,
    /// Everything the block writes to the state store (accounts and tree nodes). A store that does
    /// not write on commit writes these with the block, then calls [`Engine::state_persisted`].
    pub state: Arc<StateWrites>,
    /// The round it was decided in; `None` for a block applied from sync.
    pub decided_in_round: Option<Round>,
    /// The timestamp of the block before it (for the block-interval metric); `None` at height 1.
    pub parent_time: Option<TimestampMs>,
}

/// What the caller performs, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Append `entry` to the write-ahead log of `height` at `seq`, durably, before the next effect.
    Persist {
        height: Height,
        seq: u64,
        entry: WalEntry,
    },
    /// Gossip to the validators.
    Broadcast(ConsensusMessage),
    /// A validator equivocated: gossip the proof.
    Evidence(Evidence),
    /// Ask the mempool for block candidates; answer with [`Event::Candidates`].
    FetchCandidates {
        height: Height,
        max_txs: usize,
        max_bytes: usize,
    },
    /// Ask which of these transactions' signatures were verified already (by the mempool on
    /// admission); answer with [`Event::VerifiedTxs`].
    LookupVerified {
        block_hash: Hash,
        tx_hashes: Vec<Hash>,
    },
    /// Transactions that can never go in a block (found while building): drop them.
    DropInvalid(Vec<(Hash, TxError)>),
    /// Write the block durably (one batch), then tell the mempool and subscribers.
    Commit(Box<Committed>),
    /// A proposed block is invalid here (the machine does not vote for it); for the log.
    InvalidProposal {
        height: Height,
        block_hash: Hash,
        error: BlockError,
    },
    /// Building our proposal failed (the round's timeout moves on); for the log.
    BuildFailed { height: Height, error: BlockError },
    /// A synced block was refused and the rest of its batch dropped; for the log and the peer's
    /// score.
    SyncRefused { height: Height, reason: SyncRefusal },
}

/// Why the engine cannot go on: every variant is fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("block {height} was decided, but it is not valid here: {source}")]
    DecidedInvalid {
        height: Height,
        #[source]
        source: BlockError,
    },
    #[error("state: {0}")]
    State(#[from] StateError),
}

/// The consensus driver's logic. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    genesis: Arc<Genesis>,
    proposer: Option<Address>,
    machine: ConsensusMachine,
    state: State,
    head: Head,
    producer: Producer,
    executions: Executions,
    timers: Timers,
    /// Proposals waiting for [`Event::VerifiedTxs`], by block hash.
    pending_validations: BTreeMap<Hash, SealedBlock>,
    /// Next WAL sequence number at the current height.
    wal_seq: u64,
}

impl Engine {
    /// An engine on `state` after `head`, restoring the machine from `wal`: the log entries of the
    /// height after the head, in order, and the next free sequence number.
    pub fn new(
        config: EngineConfig,
        state: State,
        head: Head,
        wal: Vec<WalEntry>,
        wal_next_seq: u64,
    ) -> Result<Engine, RestoreError> {
        let genesis = config.genesis;
        let params = genesis.consensus_params().clone();
        let machine = ConsensusMachine::restore(
            ConsensusConfig {
                chain_id: genesis.chain_id().clone(),
                params: params.clone(),
                key: config.key.clone(),
            },
            wal,
        )?;
        Ok(Engine {
            proposer: config.key.as_ref().map(Keypair::address),
            machine,
            state,
            head,
            producer: Producer::new(&params),
            executions: Executions::default(),
            timers: Timers::new(&params),
            pending_validations: BTreeMap::new(),
            wal_seq: wal_next_seq,
            genesis,
        })
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The state after the head block.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The caller wrote the state of every committed block up to tree version `version` to the
    /// state's store (see [`Committed::state`]).
    pub fn state_persisted(&mut self, version: jmt::Version) {
        self.state.persisted(version);
    }

    pub fn machine(&self) -> &ConsensusMachine {
        &self.machine
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// When (monotonic ms) to send [`Event::Time`] next.
    pub fn next_deadline_ms(&self) -> u64 {
        let mut at = self.timers.next_deadline_ms();
        if let Some(build) = self.producer.deadline_ms() {
            at = at.min(build);
        }
        at
    }

    /// Handles one event; returns what to do, in order.
    pub fn handle(&mut self, now: Now, event: Event) -> Result<Vec<Effect>, EngineError> {
        let mut effects = Vec::new();
        let mut inputs = VecDeque::new();
        match event {
            Event::Start => inputs.push_back(self.start_height_input()),
            Event::Message(m) => inputs.push_back(match m {
                ConsensusMessage::Proposal(p) => Input::Proposal(p),
                ConsensusMessage::Vote(v) => Input::Vote(v),
            }),
            Event::Verified(m) => inputs.push_back(Input::Verified(m)),
            Event::Time => {
                inputs.extend(self.timers.fire(now.mono_ms));
                if let Some(request) = self.producer.due(now, self.head.parent.next_height()) {
                    effects.push(request);
                }
            }
            Event::PoolSize { txs } => self.producer.on_pool_size(now, txs),
            Event::Candidates { height, txs } => {
                if let Some(input) = self.build(now, height, &txs, &mut effects) {
                    inputs.push_back(input);
                }
            }
            Event::VerifiedTxs {
                block_hash,
                verified,
            } => {
                if let Some(block) = self.pending_validations.remove(&block_hash) {
                    inputs.push_back(self.validate(block, &|h| verified.contains(h), &mut effects));
                }
            }
            Event::Synced(blocks) => {
                if self.apply_synced(blocks, &mut effects)? {
                    inputs.push_back(self.start_height_input());
                }
            }
        }
        self.run_machine(now, inputs, &mut effects)?;
        Ok(effects)
    }

    fn start_height_input(&self) -> Input {
        Input::StartHeight {
            height: self.head.parent.next_height(),
            validators: self.genesis.validators().clone(),
        }
    }

    /// Feeds the machine `inputs` and performs its outputs in order; answers the engine can give at
    /// once feed back as further inputs.
    fn run_machine(
        &mut self,
        now: Now,
        mut inputs: VecDeque<Input>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        let mut n = 0usize;
        while let Some(input) = inputs.pop_front() {
            n += 1;
            if n > MAX_INPUTS_PER_EVENT {
                debug_assert!(false, "engine input loop guard hit");
                break;
            }
            for output in self.machine.handle(now.wall, input) {
                if let Some(next) = self.on_output(now, output, effects)? {
                    inputs.push_back(next);
                }
            }
        }
        Ok(())
    }

    fn on_output(
        &mut self,
        now: Now,
        output: Output,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<Input>, EngineError> {
        match output {
            Output::Persist(entry) => {
                let seq = self.wal_seq;
                self.wal_seq += 1;
                effects.push(Effect::Persist {
                    height: entry.height(),
                    seq,
                    entry,
                });
            }
            Output::Broadcast(m) => effects.push(Effect::Broadcast(m)),
            Output::Evidence(e) => effects.push(Effect::Evidence(e)),
            Output::ScheduleTimeout {
                height,
                round,
                kind,
                at,
            } => self.timers.schedule(now, height, round, kind, at),
            Output::BuildBlock {
                height,
                round: _,
                empty_block_at,
            } => {
                if self.proposer.is_some() {
                    self.producer.arm(now, height, empty_block_at);
                }
            }
            Output::ValidateBlock { height: _, block } => {
                if self.executions.has(&block) {
                    return Ok(Some(Input::BlockValidated {
                        block_hash: block.hash(),
                        valid: true,
                    }));
                }
                if block.tx_hashes().is_empty() {
                    // Nothing to look up.
                    return Ok(Some(self.validate(block, &|_| false, effects)));
                }
                if self.pending_validations.len() >= MAX_PENDING_VALIDATIONS {
                    return Ok(Some(self.validate(block, &|_| false, effects)));
                }
                let block_hash = block.hash();
                let tx_hashes = block.tx_hashes().to_vec();
                self.pending_validations.insert(block_hash, block);
                effects.push(Effect::LookupVerified {
                    block_hash,
                    tx_hashes,
                });
            }
            Output::Decide { block, certificate } => {
                if self.decide(block, certificate, effects)? {
                    return Ok(Some(self.start_height_input()));
                }
            }
        }
        Ok(None)
    }

    /// Validates a proposed block on the head state (skipping the signatures `already_verified`
    /// names) and caches its execution for the decision; the machine's answer.
    fn validate(
        &mut self,
        block: SealedBlock,
        already_verified: &(dyn Fn(&Hash) -> bool + Sync),
        effects: &mut Vec<Effect>,
    ) -> Input {
        let block_hash = block.hash();
        let valid = match self.execute_on_head(&block, already_verified) {
            Ok(executed) => {
                self.executions.insert(block, executed);
                true
            }
            Err(error) => {
                effects.push(Effect::InvalidProposal {
                    height: block.height(),
                    block_hash,
                    error,
                });
                false
            }
        };
        Input::BlockValidated { block_hash, valid }
    }

    /// Executes `block` on the head state without committing it (see [`validate_block`]); the
    /// signatures `already_verified` names are not checked again.
    fn execute_on_head(
        &mut self,
        block: &SealedBlock,
        already_verified: &(dyn Fn(&Hash) -> bool + Sync),
    ) -> Result<crate::state::ExecutedBlock, BlockError> {
        validate_block(
            self.genesis.chain_context(),
            &self.head.parent,
            &mut self.state,
            block,
            None,
            already_verified,
        )
    }

    /// Builds our proposal from the mempool's candidates, if the build is still wanted; the
    /// machine's answer.
    fn build(
        &mut self,
        now: Now,
        height: Height,
        candidates: &[VerifiedTransaction],
        effects: &mut Vec<Effect>,
    ) -> Option<Input> {
        let proposer = self.proposer?;
        if height != self.head.parent.next_height()
            || !self.producer.accept(now, height, candidates)
        {
            return None;
        }
        let result = crate::validation::build_block(
            self.genesis.chain_context(),
            &self.head.parent,
            &mut self.state,
            candidates,
            proposer,
            now.wall,
            self.head.cert.clone(),
        );
        match result {
            Ok(built) => {
                let permanent: Vec<(Hash, TxError)> = built
                    .rejected
                    .iter()
                    .filter(|r| {
                        matches!(
                            r.error,
                            TxError::NonceTooLow { .. } | TxError::WrongChain { .. }
                        )
                    })
                    .map(|r| (r.hash, r.error.clone()))
                    .collect();
                if !permanent.is_empty() {
                    effects.push(Effect::DropInvalid(permanent));
                }
                self.executions.insert(built.block.clone(), built.executed);
                Some(Input::BlockBuilt(built.block))
            }
            Err(error) => {
                // Cannot happen with our own parent and certificate; the round's timeout moves on.
                effects.push(Effect::BuildFailed { height, error });
                None
            }
        }
    }
}
