//! What the consensus driver publishes for everyone else to read: the head (a `watch`, latest value
//! only) and a stream of events (a bounded `broadcast`: a slow reader lags and is told how many it
//! missed; the driver never waits for readers).

use ledger_core::{Address, Hash, Height, TimestampMs};
use serde::{Deserialize, Serialize};

/// The last committed block, as the API and the status page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInfo {
    pub height: Height,
    /// The head block's hash (the genesis hash at height 0).
    pub hash: Hash,
    pub time_ms: TimestampMs,
    pub state_root: Hash,
    /// True while the node is catching up with its peers.
    pub syncing: bool,
}

/// One `/v1/events` event. The SSE event name is the `type` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A block was committed.
    Block {
        height: Height,
        hash: Hash,
        timestamp_ms: TimestampMs,
        proposer: Address,
        tx_count: u32,
    },
    /// A transaction became final.
    Tx {
        hash: Hash,
        height: Height,
        index: u32,
    },
}

impl NodeEvent {
    pub fn name(&self) -> &'static str {
        match self {
            NodeEvent::Block { .. } => "block",
            NodeEvent::Tx { .. } => "tx",
        }
    }
}
