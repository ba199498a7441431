//! The two channel ends between the consensus driver and the network module.
//!
//! The driver owns an `mpsc::Sender<NetOutbound>` (bounded, [`NET_OUTBOUND_QUEUE_MSGS`]) and an
//! `mpsc::Receiver<NetInbound>` (bounded, [`NET_INBOUND_QUEUE_MSGS`]); the network owns the other
//! ends. The driver never waits for the network: outbound sends are `try_send`, and a message
//! dropped on a full queue is a lost gossip message, which consensus tolerates (its periodic
//! `Tick` re-broadcasts own messages when it makes no progress). With no network (one validator)
//! the ends are simply not connected.

use ledger_core::consensus::{ConsensusMessage, Evidence, VerifiedMessage};
use ledger_core::{CommittedBlock, SignedTransaction, VerifiedTransaction};

/// Capacity of the driver -> network queue, in messages.
pub const NET_OUTBOUND_QUEUE_MSGS: usize = 1024;
/// Capacity of the network -> driver queue, in messages.
pub const NET_INBOUND_QUEUE_MSGS: usize = 4096;

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

/// What the network hands the node.
#[derive(Debug, Clone)]
pub enum NetInbound {
    /// A proposal or vote whose signature the network's gossip validation checked against the
    /// validator set (`ConsensusMessage::verified`), so the machine does not check it again; a
    /// proposal's block body matches its header (it decoded as a `SealedBlock`).
    VerifiedConsensus(VerifiedMessage),
    /// Transactions gossiped by peers: verified and admitted to the mempool (not re-gossiped).
    Transactions(Vec<SignedTransaction>),
    /// Transactions the network's gossip validation already verified (`SignedTransaction::verify`),
    /// so the mempool admits them without checking the signatures again.
    VerifiedTransactions(Vec<VerifiedTransaction>),
    /// Committed blocks fetched by sync, in ascending height order. Each one's certificate is
    /// verified before it is applied; heights at or below the head are ignored, and application
    /// stops at the first gap or invalid block.
    Blocks(Vec<CommittedBlock>),
    /// Whether the network is catching up (shown as `syncing` in `/v1/status`).
    Syncing(bool),
}
