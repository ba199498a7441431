//! Transfers: the only kind of transaction.
//!
//! `Transaction` (what is signed) -> `SignedTransaction` (what travels and is stored) ->
//! `VerifiedTransaction` (stateless checks and the signature passed; hash and sender cached). Only a
//! `VerifiedTransaction` can be admitted to the mempool or applied to state, so a signature checked
//! once is never checked again.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{self, Domain, Keypair, PublicKey, Signature};
use crate::hash::Hash;
use crate::types::{Address, Amount, ChainId, Nonce};

/// Longest memo, in bytes.
pub const MAX_MEMO_BYTES: usize = 256;
/// Largest canonical encoding of a signed transaction, in bytes (a full memo fits with room to spare).
pub const MAX_TX_BYTES: usize = 512;

/// The signed content of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    pub chain_id: ChainId,
    /// The sender's public key; the sender's address derives from it.
    pub from: PublicKey,
    pub to: Address,
    pub amount: Amount,
    /// Paid to the proposer of the block that includes the transaction.
    pub fee: Amount,
    /// Must equal the sender's next nonce.
    pub nonce: Nonce,
    /// Free bytes for the users, at most [`MAX_MEMO_BYTES`]. Hex in JSON.
    #[serde(with = "hex_bytes", default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::memo_schema))]
    pub memo: Vec<u8>,
}

/// A transaction with its signature, as submitted, gossiped and stored.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

/// Why a transaction is not acceptable. Every variant carries the numbers a user needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TxError {
    #[error("wrong chain: expected {expected}, got {got}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("bad signature")]
    BadSignature,
    #[error("transaction too large: {got} bytes, limit {max}")]
    TooLarge { max: usize, got: usize },
    #[error("memo too long: {got} bytes, limit {max}")]
    MemoTooLong { max: usize, got: usize },
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("sender and recipient are the same account")]
    SelfTransfer,
    #[error("nonce too low: expected {expected}, got {got}")]
    NonceTooLow { expected: Nonce, got: Nonce },
    #[error("nonce too high: expected {expected}, got {got}")]
    NonceTooHigh { expected: Nonce, got: Nonce },
    #[error("insufficient funds: have {have}, need {need}")]
    InsufficientFunds { have: Amount, need: Amount },
    #[error("amount plus fee overflows")]
    AmountOverflow,
    #[error("recipient balance would overflow")]
    BalanceOverflow,
    #[error("fee too low: minimum {min}, got {got}")]
    FeeTooLow { min: Amount, got: Amount },
}

impl TxError {
    /// A stable machine-readable code (the same string as the JSON `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::BadSignature => "bad_signature",
            TxError::TooLarge { .. } => "too_large",
            TxError::MemoTooLong { .. } => "memo_too_long",
            TxError::ZeroAmount => "zero_amount",
            TxError::SelfTransfer => "self_transfer",
            TxError::NonceTooLow { .. } => "nonce_too_low",
            TxError::NonceTooHigh { .. } => "nonce_too_high",
            TxError::InsufficientFunds { .. } => "insufficient_funds",
            TxError::AmountOverflow => "amount_overflow",
            TxError::BalanceOverflow => "balance_overflow",
            TxError::FeeTooLow { .. } => "fee_too_low",
        }
    }
}

impl Transaction {
    /// Signs the transaction with `key`. The caller sets `from` to `key.public()`.
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(Domain::Transaction, &self.chain_id, &codec::encode(&self));
        SignedTransaction {
            tx: self,
            signature,
        }
    }

    pub fn sender(&self) -> Address {
        Address::from_public_key(&self.from)
    }

    /// amount + fee, or an overflow error.
    pub fn total_cost(&self) -> Result<Amount, TxError> {
        self.amount
            .checked_add(self.fee)
            .ok_or(TxError::AmountOverflow)
    }
}

impl SignedTransaction {
    /// SHA-256 of the canonical encoding, signature included. No one but the signer can make a
    /// second valid signature of a transaction: ZIP-215 requires a canonical `S`, and the only
    /// other encodings it accepts are those of points with a tiny y coordinate, which an honest
    /// signature's `R` never is. A signer who signs twice has made two transactions with one
    /// nonce, and only one of them applies.
    pub fn hash(&self) -> Hash {
        Hash::digest(&codec::encode(self))
    }

    pub fn encoded_len(&self) -> usize {
        codec::encode(self).len()
    }

    /// Every check that needs no state: chain, sizes, amounts, and the signature under the pinned rule.
    pub fn verify(self, chain_id: &ChainId) -> Result<VerifiedTransaction, TxError> {
        self.precheck(chain_id)?.verify_signature(chain_id)
    }

    /// The stateless checks without the signature, for callers that look at the sender's state
    /// (nonce, balance, fee floor, duplicates) before paying for a signature check. The result
    /// only becomes a [`VerifiedTransaction`] through [`Prechecked::verify_signature`].
    pub fn precheck(self, chain_id: &ChainId) -> Result<Prechecked, TxError> {
        self.check_stateless(chain_id).map(Prechecked)
    }

    /// The stateless checks without the signature. The result must not escape unverified: it is used
    /// by [`SignedTransaction::verify`] and by block validation, which checks signatures in parallel.
    pub(crate) fn check_stateless(
        self,
        chain_id: &ChainId,
    ) -> Result<VerifiedTransaction, TxError> {
        let encoded = codec::encode(&self);
        if encoded.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge {
                max: MAX_TX_BYTES,
                got: encoded.len(),
            });
        }
        let tx = &self.tx;
        if &tx.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id.clone(),
                got: tx.chain_id.clone(),
            });
        }
        if tx.memo.len() > MAX_MEMO_BYTES {
            return Err(TxError::MemoTooLong {
                max: MAX_MEMO_BYTES,
                got: tx.memo.len(),
            });
        }
        if tx.amount.0 == 0 {
            return Err(TxError::ZeroAmount);
        }
        tx.total_cost()?;
        let sender = tx.sender();
        if sender == tx.to {
            return Err(TxError::SelfTransfer);
        }
        Ok(VerifiedTransaction {
            hash: Hash::digest(&encoded),
            encoded_len: encoded.len(),
            sender,
            tx: self,
        })
    }
}

/// A transaction whose stateless checks passed and whose signature is not checked yet (see
/// [`SignedTransaction::precheck`]). Hash, sender and size are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecked(VerifiedTransaction);

impl Prechecked {
    pub fn tx(&self) -> &Transaction {
        self.0.tx()
    }
    pub fn hash(&self) -> Hash {
        self.0.hash
    }
    pub fn sender(&self) -> Address {
        self.0.sender
    }
    pub fn encoded_len(&self) -> usize {
        self.0.encoded_len
    }

    /// Checks the signature under the pinned rule.
    pub fn verify_signature(self, chain_id: &ChainId) -> Result<VerifiedTransaction, TxError> {
        let checked = self.0;
        let payload = codec::encode(&checked.tx.tx);
        checked
            .tx
            .tx
            .from
            .verify(
                Domain::Transaction,
                chain_id,
                &payload,
                &checked.tx.signature,
            )
            .map_err(|_| TxError::BadSignature)?;
        Ok(checked)
    }
}

/// Checks the signatures of `txs` in batches ([`crypto::verify_each`]): one verdict per
/// transaction, in order, so one bad signature does not reject its neighbours.
pub fn verify_signatures(
    txs: Vec<Prechecked>,
    chain_id: &ChainId,
) -> Vec<Result<VerifiedTransaction, TxError>> {
    let messages: Vec<Vec<u8>> = txs
        .iter()
        .map(|p| {
            let payload = codec::encode(&p.0.tx.tx);
            crypto::signing_bytes(Domain::Transaction, chain_id, &payload)
        })
        .collect();
    let checks: Vec<crypto::SignatureCheck<'_>> = txs
        .iter()
        .zip(&messages)
        .map(|(p, message)| crypto::SignatureCheck {
            key: &p.0.tx.tx.from,
            message,
            signature: &p.0.tx.signature,
        })
        .collect();
    let verdicts = crypto::verify_each(&checks);
    txs.into_iter()
        .zip(verdicts)
        .map(|(p, ok)| {
            if ok {
                Ok(p.0)
            } else {
                Err(TxError::BadSignature)
            }
        })
        .collect()
}

/// A transaction whose stateless checks and signature passed. Hash, sender and size are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTransaction {
    tx: SignedTransaction,
    hash: Hash,
    sender: Address,
    encoded_len: usize,
}

impl VerifiedTransaction {
    pub fn signed(&self) -> &SignedTransaction {
        &self.tx
    }
    pub fn into_signed(self) -> SignedTransaction {
        self.tx
    }
    pub fn tx(&self) -> &Transaction {
        &self.tx.tx
    }
    pub fn hash(&self) -> Hash {
        self.hash
    }
    pub fn sender(&self) -> Address {
        self.sender
    }
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("test-chain").expect("valid")
    }

    fn transfer(key: &Keypair, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: chain(),
            from: key.public(),
            to: Keypair::dev("t", 99).address(),
            amount: Amount(10),
            fee: Amount(1),
            nonce: Nonce(nonce),
            memo: b"hi".to_vec(),
        }
        .sign(key)
    }

    #[test]
    fn a_signed_transfer_verifies_and_caches_hash_and_sender() {
        let k = Keypair::dev("t", 1);
        let stx = transfer(&k, 0);
        let h = stx.hash();
        let v = stx.verify(&chain()).expect("valid");
        assert_eq!(v.hash(), h);
        assert_eq!(v.sender(), k.address());
    }

    #[test]
    fn wrong_chain_is_named() {
        let stx = transfer(&Keypair::dev("t", 1), 0);
        let other = ChainId::new("other").expect("valid");
        assert_eq!(
            stx.verify(&other),
            Err(TxError::WrongChain {
                expected: ChainId::new("other").expect("valid"),
                got: chain()
            })
        );
    }

    #[test]
    fn tampered_amount_breaks_the_signature() {
        let mut stx = transfer(&Keypair::dev("t", 1), 0);
        stx.tx.amount = Amount(11);
        assert_eq!(stx.verify(&chain()), Err(TxError::BadSignature));
    }

    #[test]
    fn json_round_trips_and_rejects_unknown_fields() {
        let stx = transfer(&Keypair::dev("t", 1), 0);
        let json = serde_json::to_string(&stx).expect("serializes");
        assert_eq!(
            serde_json::from_str::<SignedTransaction>(&json).expect("parses"),
            stx
        );
        let mut v: serde_json::Value = serde_json::from_str(&json).expect("parses");
        v["tx"]["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SignedTransaction>(v).is_err());
    }

    #[test]
    fn error_codes_match_the_json_tag() {
        let e = TxError::InsufficientFunds {
            have: Amount(5),
            need: Amount(12),
        };
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(v["code"], e.code());
        assert_eq!(e.to_string(), "insufficient funds: have 5, need 12");
    }
}
