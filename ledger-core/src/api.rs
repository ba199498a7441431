//! Data types of the node's HTTP API (`/v1/...`), shared by the node, the wallet and the testnet so
//! all three agree on the JSON without the wallet depending on the node crate.

use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::hash::Hash;
use crate::tx::{SignedTransaction, TxError};
use crate::types::{Address, Amount, ChainId, Height, Nonce, TimestampMs};
use crate::vote::CommitCertificate;

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Admitted to the mempool, waiting for a block.
    Pending,
    /// In the block at `height`, at position `index`; final (the block carries a commit certificate).
    Final { height: Height, index: u32 },
    /// Refused, or dropped from the mempool, with the reason.
    Rejected { reason: TxError },
}

/// `POST /v1/transactions` answer (also one entry of the batch answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTxResponse {
    pub hash: Hash,
    #[serde(flatten)]
    pub status: TxStatus,
}

/// `GET /v1/transactions/{hash}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResponse {
    pub hash: Hash,
    #[serde(flatten)]
    pub status: TxStatus,
    /// Absent for a rejected transaction the node no longer holds.
    pub transaction: Option<SignedTransaction>,
    /// The sender's address (derived from the public key), for display.
    pub from_address: Option<Address>,
}

/// `GET /v1/accounts/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResponse {
    pub address: Address,
    pub balance: Amount,
    /// The nonce the next final transaction must carry.
    pub nonce: Nonce,
    /// The nonce to use for a new transaction, counting the sender's transactions in the mempool.
    pub next_nonce: Nonce,
}

/// One transaction inside a block answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTx {
    pub hash: Hash,
    pub from_address: Address,
    pub transaction: SignedTransaction,
}

/// `GET /v1/blocks/{height}`, `GET /v1/blocks/hash/{hash}`, entries of `GET /v1/blocks?from=&to=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResponse {
    pub hash: Hash,
    pub header: BlockHeader,
    pub txs: Vec<BlockTx>,
    /// The certificate that made this block final.
    pub commit: Option<CommitCertificate>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub height: Height,
    pub head_hash: Hash,
    pub head_time_ms: TimestampMs,
    pub state_root: Hash,
    /// True while the node is catching up with its peers.
    pub syncing: bool,
    pub peers: usize,
    /// This node's validator address, if it is one.
    pub validator: Option<Address>,
    pub mempool_txs: usize,
    pub version: String,
}

/// Every error answer: `{ "code": "...", "message": "...", ...fields }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `insufficient_funds`, `not_found`, `bad_request`.
    pub code: String,
    /// One human sentence.
    pub message: String,
    /// The typed fields of the error (e.g. `have`, `need`), when it has any.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    /// The error answer for a refused transaction: its code, its sentence and its fields.
    pub fn from_tx_error(e: &TxError) -> ApiError {
        let mut fields = match serde_json::to_value(e) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        fields.remove("code");
        ApiError {
            code: e.code().to_string(),
            message: e.to_string(),
            fields,
        }
    }

    /// The typed transaction error this answer carries, if it is one.
    pub fn tx_error(&self) -> Option<TxError> {
        let mut m = self.fields.clone();
        m.insert("code".into(), serde_json::Value::String(self.code.clone()));
        serde_json::from_value(serde_json::Value::Object(m)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_error_survives_the_api_error_round_trip() {
        let e = TxError::NonceTooLow {
            expected: Nonce(4),
            got: Nonce(2),
        };
        let api = ApiError::from_tx_error(&e);
        assert_eq!(api.code, "nonce_too_low");
        let json = serde_json::to_string(&api).expect("serializes");
        let back: ApiError = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.tx_error(), Some(e));
    }

    #[test]
    fn final_status_serializes_flat() {
        let r = SubmitTxResponse {
            hash: Hash::ZERO,
            status: TxStatus::Final {
                height: Height(3),
                index: 1,
            },
        };
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["status"], "final");
        assert_eq!(v["height"], 3);
    }
}
