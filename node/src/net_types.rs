//! The channel ends between the node's owners (consensus driver, mempool) and the network, one
//! set per traffic class so that none waits behind another:
//!
//! - consensus out: the driver's proposals, votes and evidence (bounded,
//!   [`NET_OUTBOUND_QUEUE_MSGS`]); transactions out: what the mempool admitted through the API
//!   (the same bound, a queue of its own). The network publishes consensus first.
//! - consensus in: validated proposals and votes to the driver ([`NET_INBOUND_QUEUE_MSGS`]);
//!   sync in: blocks fetched by sync and the syncing flag ([`SYNC_INBOUND_QUEUE_MSGS`]), read by
//!   the driver after consensus; sync refused: heights of synced blocks the driver refused, back
//!   to sync ([`SYNC_REFUSED_QUEUE_MSGS`]).
//! - Gossiped transactions do not pass through the driver: the network hands them to the
//!   mempool's peer lane.
//!
//! The driver never waits for the network: outbound sends are `try_send`, and a message dropped on
//! a full queue is a lost gossip message, which consensus tolerates (its periodic `Tick`
//! re-broadcasts when it makes no progress). With no network (one validator) the ends are simply
//! not connected.

use ledger_core::consensus::{ConsensusMessage, Evidence, VerifiedMessage};
use ledger_core::{CommittedBlock, SignedTransaction};

/// Capacity of each node -> network queue (consensus, transactions), in messages.
pub const NET_OUTBOUND_QUEUE_MSGS: usize = 1024;
/// Capacity of the network -> driver consensus queue, in messages.
pub const NET_INBOUND_QUEUE_MSGS: usize = 4096;
/// Capacity of the sync -> driver queue, in messages (each a batch of blocks).
pub const SYNC_INBOUND_QUEUE_MSGS: usize = 16;
/// Capacity of the driver -> sync queue of refused heights.
pub const SYNC_REFUSED_QUEUE_MSGS: usize = 16;

/// What the node asks the network to send.
#[derive(Debug, Clone)]
pub enum NetOutbound {
    /// Gossip a proposal or vote to all validators (topic "consensus"). Sent only after the WAL
    /// entry recording it is durable.
    Consensus(ConsensusMessage),
    /// Gossip transactions newly admitted through this node's API (topic "transactions").
    /// Transactions that came from peers are not sent again: gossipsub relays them itself.
    Transactions(Vec<SignedTransaction>),
    /// Gossip proof that a validator equivocated.
    Evidence(Evidence),
}

/// What the network hands the driver.
#[derive(Debug, Clone)]
pub enum NetInbound {
    /// A proposal or vote whose signature the network's gossip validation checked against the
    /// validator set (`ConsensusMessage::verified`), so the machine does not check it again; a
    /// proposal's block body matches its header (it decoded as a `SealedBlock`).
    VerifiedConsensus(VerifiedMessage),
    /// Committed blocks fetched by sync, in ascending height order. Each one's certificate is
    /// verified before it is applied; heights at or below the head are ignored, and application
    /// stops at the first gap or invalid block.
    Blocks(Vec<CommittedBlock>),
    /// Whether the network is catching up (shown as `syncing` in `/v1/status`).
    Syncing(bool),
}
