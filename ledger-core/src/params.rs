//! Consensus parameters, fixed in genesis.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The largest gossip message nodes relay (gossipsub's `max_transmit_size`): a proposal carries
/// a whole block in one.
pub const MAX_GOSSIP_BYTES: usize = 10 * 1024 * 1024;
/// The largest block-sync response; one committed block must fit in one.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Room a gossip frame needs beside the block: the proposal's own fields and signature (99 bytes, 103 with a POL round)
/// and gossipsub's framing (protobuf fields, topic, the publisher's key, signature and sequence
/// number, a few hundred bytes). Several times that, so a full block always fits.
pub const GOSSIP_FRAME_OVERHEAD: usize = 4096;
/// Room a sync response needs beside one committed block's bytes and its certificate: the
/// response's own framing (`MAX_SYNC_RESPONSE_BYTES - SYNC_FRAME_OVERHEAD` is what a server packs).
pub const SYNC_FRAME_OVERHEAD: usize = 4096;
/// The largest `max_block_bytes` a proposal can carry over gossip.
pub const MAX_BLOCK_BYTES_LIMIT: u64 = (MAX_GOSSIP_BYTES - GOSSIP_FRAME_OVERHEAD) as u64;
/// Bytes of a commit certificate beside its signatures (height, round, block hash, list length),
/// and per signature (validator address and signature).
pub const CERTIFICATE_FIXED_BYTES: u64 = 8 + 4 + 32 + 4;
pub const CERTIFICATE_BYTES_PER_VALIDATOR: u64 = 20 + 64;

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
    /// A block of this size could be built but not delivered: sync sends one committed block (with
    /// a certificate of every validator) in one response.
    #[error(
        "consensus_params.max_block_bytes is {got}: with {validators} validators a committed block \
         could be {needed} bytes, above the {max} bytes a sync response carries"
    )]
    BlockTooLargeForSync {
        validators: usize,
        max: u64,
        needed: u64,
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
            // What a gossiped proposal can carry (10 MiB frames, less the proposal's own framing).
            (
                "max_block_bytes",
                self.max_block_bytes,
                MAX_BLOCK_BYTES_LIMIT,
            ),
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

    /// Checks that a committed block of `max_block_bytes` with a certificate of `validators`
    /// signatures fits in one sync response (gossip is checked by [`ConsensusParams::validate`]).
    pub fn validate_for(&self, validators: usize) -> Result<(), ParamsError> {
        self.validate()?;
        let max = (MAX_SYNC_RESPONSE_BYTES - SYNC_FRAME_OVERHEAD) as u64;
        let needed = self
            .max_block_bytes
            .saturating_add(CERTIFICATE_FIXED_BYTES)
            .saturating_add(CERTIFICATE_BYTES_PER_VALIDATOR.saturating_mul(validators as u64));
        if needed > max {
            return Err(ParamsError::BlockTooLargeForSync {
                validators,
                max,
                needed,
                got: self.max_block_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::vote::{CommitCertificate, CommitSig};
    use crate::{Address, Hash, Height, Round, Signature};

    #[test]
    fn max_block_bytes_is_refused_above_what_gossip_carries_naming_the_limit() {
        let mut p = ConsensusParams {
            max_block_bytes: MAX_BLOCK_BYTES_LIMIT,
            ..ConsensusParams::default()
        };
        assert_eq!(p.validate(), Ok(()));
        p.max_block_bytes += 1;
        let e = p.validate().expect_err("one byte above the limit");
        assert_eq!(
            e.to_string(),
            format!(
                "consensus_params.max_block_bytes is {}, the limit is {MAX_BLOCK_BYTES_LIMIT}",
                MAX_BLOCK_BYTES_LIMIT + 1
            )
        );
        // The old bound of 256 MiB is far beyond what any frame carries.
        p.max_block_bytes = 256 * 1024 * 1024;
        assert!(p.validate().is_err());
    }

    #[test]
    fn a_full_block_with_every_validator_certificate_must_fit_one_sync_response() {
        let p = ConsensusParams {
            max_block_bytes: MAX_BLOCK_BYTES_LIMIT,
            ..ConsensusParams::default()
        };
        assert_eq!(p.validate_for(100), Ok(()));
        // 16 MiB - 4 KiB - 10 MiB of block leaves room for about 74,800 signatures.
        let room = (MAX_SYNC_RESPONSE_BYTES - SYNC_FRAME_OVERHEAD) as u64
            - MAX_BLOCK_BYTES_LIMIT
            - CERTIFICATE_FIXED_BYTES;
        let fits = (room / CERTIFICATE_BYTES_PER_VALIDATOR) as usize;
        assert_eq!(p.validate_for(fits), Ok(()));
        let e = p
            .validate_for(fits + 1)
            .expect_err("one validator too many");
        assert!(
            matches!(e, ParamsError::BlockTooLargeForSync { validators, .. } if validators == fits + 1),
            "{e}"
        );
    }

    /// The certificate sizes used above are the real encoding's.
    #[test]
    fn certificate_size_constants_match_the_encoding() {
        let cert = |n: usize| CommitCertificate {
            height: Height(1),
            round: Round(0),
            block_hash: Hash::ZERO,
            signatures: vec![
                CommitSig {
                    validator: Address([1; 20]),
                    signature: Signature([2; 64]),
                };
                n
            ],
        };
        assert_eq!(
            codec::encode(&cert(0)).len() as u64,
            CERTIFICATE_FIXED_BYTES
        );
        assert_eq!(
            codec::encode(&cert(3)).len() as u64,
            CERTIFICATE_FIXED_BYTES + 3 * CERTIFICATE_BYTES_PER_VALIDATOR
        );
    }
}
