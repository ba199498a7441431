//! Consensus parameters, fixed in genesis.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Timeouts (ms) and block limits. Round timeouts grow linearly with the round:
/// `timeout_propose_ms + round * timeout_delta_ms` (the paper's `timeoutPropose(r)`, likewise for
/// prevote and precommit), so after GST every round eventually lasts long enough.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    pub timeout_delta_ms: u64,
    /// A proposer with waiting transactions waits this long for the block to fill before building it.
    pub block_fill_pause_ms: u64,
    /// Without transactions, a proposer still produces a block this often, so the chain shows it is alive.
    pub empty_block_interval_ms: u64,
    pub max_block_txs: u32,
    pub max_block_bytes: u64,
    /// A proposal whose timestamp is further than this ahead of the local clock is rejected.
    pub max_clock_drift_ms: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            timeout_propose_ms: 1000,
            timeout_prevote_ms: 500,
            timeout_precommit_ms: 500,
            timeout_delta_ms: 500,
            block_fill_pause_ms: 50,
            empty_block_interval_ms: 1000,
            max_block_txs: 20_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_clock_drift_ms: 2000,
        }
    }
}

/// Why consensus parameters are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("consensus_params.{field} must be positive")]
    Zero { field: &'static str },
    #[error("consensus_params.{field} is {got}, the limit is {max}")]
    TooLarge {
        field: &'static str,
        max: u64,
        got: u64,
    },
}

impl ConsensusParams {
    pub fn validate(&self) -> Result<(), ParamsError> {
        let fields: [(&'static str, u64, u64); 9] = [
            ("timeout_propose_ms", self.timeout_propose_ms, 3_600_000),
            ("timeout_prevote_ms", self.timeout_prevote_ms, 3_600_000),
            ("timeout_precommit_ms", self.timeout_precommit_ms, 3_600_000),
            ("timeout_delta_ms", self.timeout_delta_ms, 3_600_000),
            ("block_fill_pause_ms", self.block_fill_pause_ms, 3_600_000),
            (
                "empty_block_interval_ms",
                self.empty_block_interval_ms,
                3_600_000,
            ),
            ("max_block_txs", self.max_block_txs as u64, 1_000_000),
            ("max_block_bytes", self.max_block_bytes, 256 * 1024 * 1024),
            ("max_clock_drift_ms", self.max_clock_drift_ms, 3_600_000),
        ];
        for (field, value, max) in fields {
            if value == 0 {
                return Err(ParamsError::Zero { field });
            }
            if value > max {
                return Err(ParamsError::TooLarge {
                    field,
                    max,
                    got: value,
                });
            }
        }
        Ok(())
    }
}
