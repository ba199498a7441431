//! Data types of the node's HTTP API (`/v1/...`), shared by the node, the wallet and the testnet so
//! all three agree on the JSON without the wallet depending on the node crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::block::BlockHeader;
use crate::hash::Hash;
use crate::merkle::InclusionProof;
use crate::tx::{SignedTransaction, TxError};
use crate::types::{Address, Amount, ChainId, Height, Nonce, TimestampMs};
use crate::vote::CommitCertificate;

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TxStatus {
    /// Admitted to the mempool, waiting for a block.
    Pending,
    /// In the block at `height`, at position `index`; final (the block carries a commit certificate).
    Final { height: Height, index: u32 },
    /// Refused because the transaction is invalid, with the reason: at submission, after a commit
    /// made it so (its nonce used, the balance spent), or when a block was built.
    Rejected { reason: TxError },
    /// Left the mempool without being invalid ([`DropReason`]); it will not be included unless it
    /// is sent again.
    Dropped { reason: DropReason },
}

/// Why the mempool let go of a valid transaction. Serialized like [`TxError`]: `code` names the
/// reason, its fields sit beside it, e.g. `{"code":"replaced","by":"<hash>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DropReason {
    /// The pool was full and a transaction paying a higher fee (`by_fee`) needed the room.
    Evicted { by_fee: Amount },
    /// The same sender sent the same nonce again with a higher fee: the transaction `by`.
    Replaced { by: Hash },
    /// Pending longer than the node's `mempool.tx_ttl_secs`.
    Expired { ttl_secs: u64 },
}

impl DropReason {
    /// A stable machine-readable code (the same string as the JSON `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            DropReason::Evicted { .. } => "evicted",
            DropReason::Replaced { .. } => "replaced",
            DropReason::Expired { .. } => "expired",
        }
    }
}

/// One phrase, e.g. "replaced by 3f9a… (higher fee)" (fees in base units, as in [`TxError`]'s).
impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Evicted { by_fee } => {
                write!(
                    f,
                    "evicted to make room for a transaction paying fee {by_fee}"
                )
            }
            DropReason::Replaced { by } => write!(f, "replaced by {by} (higher fee)"),
            DropReason::Expired { ttl_secs } => write!(f, "expired after {ttl_secs} s pending"),
        }
    }
}

/// `POST /v1/transactions` answer (also one entry of the batch answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitTxResponse {
    pub hash: Hash,
    #[serde(flatten)]
    pub status: TxStatus,
}

/// `GET /v1/transactions/{hash}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxResponse {
    pub hash: Hash,
    #[serde(flatten)]
    pub status: TxStatus,
    /// Absent for a rejected or dropped transaction (the node no longer holds it).
    pub transaction: Option<SignedTransaction>,
    /// The sender's address (derived from the public key), for display.
    pub from_address: Option<Address>,
}

/// `GET /v1/accounts/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountResponse {
    pub address: Address,
    pub balance: Amount,
    /// The nonce the next final transaction must carry.
    pub nonce: Nonce,
    /// The nonce to use for a new transaction, counting the sender's transactions in the mempool.
    pub next_nonce: Nonce,
}

/// Where to continue an account's transaction list: the position (height, index in the block) of
/// the last transaction of the previous page. Text form `<height>-<index>`, e.g. `1042-3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxCursor {
    pub height: Height,
    pub index: u32,
}

/// Why a text cursor was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cursor is `<height>-<index>` (up to 19 and 9 digits), as in a page's `next`")]
pub struct TxCursorError;

impl fmt::Display for TxCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.height.0, self.index)
    }
}

impl FromStr for TxCursor {
    type Err = TxCursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (height, index) = s.split_once('-').ok_or(TxCursorError)?;
        // Digits only (`u64::from_str` would also take a leading `+`), at most 19 for the height
        // and 9 for the index: the document's pattern, and more than any chain or block reaches.
        let digits = |t: &str, max: usize| {
            (1..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(height, 19) || !digits(index, 9) {
            return Err(TxCursorError);
        }
        Ok(TxCursor {
            height: Height(height.parse().map_err(|_| TxCursorError)?),
            index: index.parse().map_err(|_| TxCursorError)?,
        })
    }
}

impl Serialize for TxCursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TxCursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of `GET /v1/accounts/{address}/transactions`: a final transaction that sent from or
/// paid to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountTx {
    pub hash: Hash,
    pub height: Height,
    pub index: u32,
    /// The time of the block that holds it.
    pub timestamp_ms: TimestampMs,
    /// The sender's address (derived from the public key).
    pub from_address: Address,
    pub transaction: SignedTransaction,
}

/// `GET /v1/accounts/{address}/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountTxsResponse {
    pub address: Address,
    /// Newest first.
    pub txs: Vec<AccountTx>,
    /// Present when older transactions exist: pass it as `before` for the next page.
    pub next: Option<TxCursor>,
}

/// One transaction inside a block answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockTx {
    pub hash: Hash,
    pub from_address: Address,
    pub transaction: SignedTransaction,
}

/// `GET /v1/blocks/{height}`, `GET /v1/blocks/hash/{hash}`, entries of `GET /v1/blocks?from=&to=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockResponse {
    pub hash: Hash,
    pub header: BlockHeader,
    pub txs: Vec<BlockTx>,
    /// The certificate that made this block final.
    pub commit: Option<CommitCertificate>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The chain's display unit (from the genesis): amounts stay integers of base units in every
    /// answer; people read them as `amount / 10^decimals` `symbol`. Absent when the genesis names
    /// none (then show base units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<crate::units::Token>,
}

/// The format of the proof answers below. A client refuses a format it does not know instead of
/// guessing; a change to the layout of any proof, header or certificate bumps it.
pub const PROOF_FORMAT: u32 = 1;

/// Upper bound on the encoded state proof of one account, in bytes: at most 256 siblings of at
/// most 65 bytes each, a 65-byte leaf and the length prefix. Honest proofs are far smaller
/// (about 1.4 kB in a tree of 10^6 accounts).
pub const MAX_STATE_PROOF_BYTES: usize = 4 + 256 * 65 + 65;

/// `GET /v1/accounts/{address}/proof[?height=h]`: an account's balance and nonce at a final height,
/// with what it takes to check them without trusting the node. The state proof shows the value
/// (or the account's absence, as balance 0 and nonce 0) under `header.state_root`; the certificate
/// shows more than two thirds of the validators' power signed that header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountProofResponse {
    /// [`PROOF_FORMAT`].
    pub format: u32,
    /// The chain the node says it serves (checked by the client against its own trust root).
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub address: Address,
    /// Zero for an account that does not exist.
    pub balance: Amount,
    /// The nonce the next final transaction must carry.
    pub nonce: Nonce,
    /// The final height the value is read at: the header's height.
    pub height: Height,
    pub header: BlockHeader,
    /// The certificate that made `header` final.
    pub commit: CommitCertificate,
    /// The canonical (borsh) encoding of the state-tree proof, in hex: a Jellyfish Merkle proof
    /// over SHA-256 (`leaf: Option<(key_hash, value_hash)>`, then the siblings from the leaf up,
    /// each `0` null, `1 left right` internal or `2 key_hash value_hash` leaf). At most
    /// [`MAX_STATE_PROOF_BYTES`] bytes.
    #[serde(with = "crate::tx::hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "hex"))]
    pub proof: Vec<u8>,
}

/// `GET /v1/transactions/{hash}/proof`: a final transaction, with its inclusion proof against the
/// `tx_root` of the block that holds it, that block's header and its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxProofResponse {
    /// [`PROOF_FORMAT`].
    pub format: u32,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub hash: Hash,
    pub transaction: SignedTransaction,
    pub height: Height,
    /// Position in the block.
    pub index: u32,
    pub header: BlockHeader,
    /// The certificate that made `header` final.
    pub commit: CommitCertificate,
    /// RFC 6962 audit path of the transaction hash, deepest sibling first; `index` and `total`
    /// repeat the position and the block's transaction count. At most 64 siblings.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub proof: InclusionProof,
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
    fn tx_cursor_round_trips_and_refuses_anything_else() {
        let c = TxCursor {
            height: Height(1042),
            index: 3,
        };
        assert_eq!(c.to_string(), "1042-3");
        assert_eq!("1042-3".parse(), Ok(c));
        assert_eq!(serde_json::to_value(c).expect("serializes"), "1042-3");
        let back: TxCursor = serde_json::from_value("1042-3".into()).expect("parses");
        assert_eq!(back, c);
        for bad in [
            "",
            "1042",
            "1042-",
            "-3",
            "+1-3",
            "1-+3",
            "a-3",
            "1-2-3",
            "1 -3",
            "18446744073709551616-0",
            "1-4294967296",
        ] {
            assert_eq!(bad.parse::<TxCursor>(), Err(TxCursorError), "{bad:?}");
        }
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

    /// `dropped` is its own status, its reason shaped like a rejection's: a `code` and its fields.
    #[test]
    fn dropped_status_names_the_reason_by_code_with_its_fields() {
        let by = Hash::digest(b"replacement");
        let cases = [
            (
                DropReason::Evicted { by_fee: Amount(7) },
                serde_json::json!({"status": "dropped", "reason": {"code": "evicted", "by_fee": 7}}),
            ),
            (
                DropReason::Replaced { by },
                serde_json::json!({"status": "dropped", "reason": {"code": "replaced", "by": by.to_hex()}}),
            ),
            (
                DropReason::Expired { ttl_secs: 600 },
                serde_json::json!({"status": "dropped", "reason": {"code": "expired", "ttl_secs": 600}}),
            ),
        ];
        for (reason, json) in cases {
            assert_eq!(json["reason"]["code"], reason.code());
            let status = TxStatus::Dropped { reason };
            assert_eq!(serde_json::to_value(&status).expect("serializes"), json);
            let back: TxStatus = serde_json::from_value(json).expect("parses");
            assert_eq!(back, status);
        }
        assert_eq!(
            DropReason::Replaced { by }.to_string(),
            format!("replaced by {by} (higher fee)")
        );
    }
}
