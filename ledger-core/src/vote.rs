//! Votes and commit certificates.
//!
//! A block is final when it carries a commit certificate: precommit signatures for its hash, at one
//! height and round, from validators holding more than two thirds of the voting power.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{self, Domain, Keypair, Signature, SignatureCheck};
use crate::hash::Hash;
use crate::types::{Address, ChainId, Height, Round};
use crate::validator::ValidatorSet;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    Prevote,
    Precommit,
}

/// A vote for a block hash, or for nil (`block_hash: None`), at one height, round and step.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub block_hash: Option<Hash>,
    pub validator: Address,
}

/// A vote with its signature (domain [`Domain::Vote`]).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

impl Vote {
    pub fn sign(self, chain_id: &ChainId, key: &Keypair) -> SignedVote {
        let signature = key.sign(Domain::Vote, chain_id, &codec::encode(&self));
        SignedVote {
            vote: self,
            signature,
        }
    }

    fn signing_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        crypto::signing_bytes(Domain::Vote, chain_id, &codec::encode(self))
    }
}

/// Why a vote or certificate is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("{validator} is not a validator")]
    UnknownValidator { validator: Address },
    #[error("bad signature from {validator}")]
    BadSignature { validator: Address },
    #[error("certificate is for height {got}, expected {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("certificate is for block {got}, expected {expected}")]
    WrongBlock { expected: Hash, got: Hash },
    #[error("certificate signers must be unique and in validator-set order")]
    UnorderedSigners,
    #[error("certificate has {have} of {total} voting power, needs more than two thirds")]
    NoQuorum { have: u64, total: u64 },
    #[error("certificate has {got} signatures, the set has {max} validators")]
    TooManySignatures { max: usize, got: usize },
}

impl SignedVote {
    /// Checks that the signer is in `validators` and the signature is valid.
    pub fn verify(&self, chain_id: &ChainId, validators: &ValidatorSet) -> Result<(), VoteError> {
        let validator = self.vote.validator;
        let v = validators
            .get(&validator)
            .ok_or(VoteError::UnknownValidator { validator })?;
        v.public_key
            .verify_raw(&self.vote.signing_bytes(chain_id), &self.signature)
            .map_err(|_| VoteError::BadSignature { validator })
    }
}

/// One validator's precommit signature inside a certificate.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSig {
    pub validator: Address,
    pub signature: Signature,
}

/// Precommits for `block_hash` at `height`/`round` from more than 2/3 of the voting power.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub block_hash: Hash,
    /// Sorted in validator-set order, at most one per validator.
    pub signatures: Vec<CommitSig>,
}

impl CommitCertificate {
    /// Builds a certificate from precommits for one block (e.g. collected by consensus). Does not
    /// verify: call [`CommitCertificate::verify`] for untrusted input.
    pub fn from_precommits<'a>(
        height: Height,
        round: Round,
        block_hash: Hash,
        validators: &ValidatorSet,
        precommits: impl IntoIterator<Item = &'a SignedVote>,
    ) -> CommitCertificate {
        let mut signatures: Vec<(usize, CommitSig)> = precommits
            .into_iter()
            .filter(|v| {
                v.vote.kind == VoteKind::Precommit
                    && v.vote.height == height
                    && v.vote.round == round
                    && v.vote.block_hash == Some(block_hash)
            })
            .filter_map(|v| {
                validators.index_of(&v.vote.validator).map(|i| {
                    (
                        i,
                        CommitSig {
                            validator: v.vote.validator,
                            signature: v.signature,
                        },
                    )
                })
            })
            .collect();
        signatures.sort_by_key(|(i, _)| *i);
        signatures.dedup_by_key(|(i, _)| *i);
        CommitCertificate {
            height,
            round,
            block_hash,
            signatures: signatures.into_iter().map(|(_, s)| s).collect(),
        }
    }

    /// Hash of the canonical encoding; block headers commit to the previous block's certificate.
    pub fn hash(&self) -> Hash {
        Hash::digest(&codec::encode(self))
    }

    /// Checks the certificate for block `block_hash` at `height`: known, unique, ordered signers with
    /// valid precommit signatures (checked in parallel) holding more than 2/3 of the power.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        height: Height,
        block_hash: &Hash,
    ) -> Result<(), VoteError> {
        if self.height != height {
            return Err(VoteError::WrongHeight {
                expected: height,
                got: self.height,
            });
        }
        if &self.block_hash != block_hash {
            return Err(VoteError::WrongBlock {
                expected: *block_hash,
                got: self.block_hash,
            });
        }
        if self.signatures.len() > validators.len() {
            return Err(VoteError::TooManySignatures {
                max: validators.len(),
                got: self.signatures.len(),
            });
        }
        let mut power: u64 = 0;
        let mut last: Option<usize> = None;
        let mut keys = Vec::with_capacity(self.signatures.len());
        let mut messages = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let i = validators
                .index_of(&s.validator)
                .ok_or(VoteError::UnknownValidator {
                    validator: s.validator,
                })?;
            if last.is_some_and(|l| l >= i) {
                return Err(VoteError::UnorderedSigners);
            }
            last = Some(i);
            let v = &validators.validators()[i];
            // Cannot overflow: ValidatorSet keeps the total below u64::MAX / 3.
            power += v.power;
            keys.push(v.public_key);
            messages.push(
                Vote {
                    kind: VoteKind::Precommit,
                    height: self.height,
                    round: self.round,
                    block_hash: Some(self.block_hash),
                    validator: s.validator,
                }
                .signing_bytes(chain_id),
            );
        }
        if !validators.is_quorum(power) {
            return Err(VoteError::NoQuorum {
                have: power,
                total: validators.total_power(),
            });
        }
        let checks: Vec<SignatureCheck<'_>> = self
            .signatures
            .iter()
            .enumerate()
            .map(|(i, s)| SignatureCheck {
                key: &keys[i],
                message: &messages[i],
                signature: &s.signature,
            })
            .collect();
        crypto::verify_all(&checks).map_err(|i| VoteError::BadSignature {
            validator: self.signatures[i].validator,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::Validator;

    fn setup(n: u32) -> (ChainId, Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::dev("val", i)).collect();
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.address(),
                    public_key: k.public(),
                    power: 1,
                })
                .collect(),
        )
        .expect("valid");
        (ChainId::new("c").expect("valid"), keys, set)
    }

    fn precommit(chain: &ChainId, k: &Keypair, h: Hash) -> SignedVote {
        Vote {
            kind: VoteKind::Precommit,
            height: Height(5),
            round: Round(1),
            block_hash: Some(h),
            validator: k.address(),
        }
        .sign(chain, k)
    }

    #[test]
    fn three_of_four_precommits_certify_and_two_do_not() {
        let (chain, keys, set) = setup(4);
        let h = Hash::digest(b"block");
        let votes: Vec<SignedVote> = keys.iter().map(|k| precommit(&chain, k, h)).collect();
        let cert = CommitCertificate::from_precommits(Height(5), Round(1), h, &set, &votes[..3]);
        assert_eq!(cert.verify(&chain, &set, Height(5), &h), Ok(()));
        let cert2 = CommitCertificate::from_precommits(Height(5), Round(1), h, &set, &votes[..2]);
        assert_eq!(
            cert2.verify(&chain, &set, Height(5), &h),
            Err(VoteError::NoQuorum { have: 2, total: 4 })
        );
    }

    #[test]
    fn duplicated_or_forged_signers_are_rejected() {
        let (chain, keys, set) = setup(4);
        let h = Hash::digest(b"block");
        let votes: Vec<SignedVote> = keys.iter().map(|k| precommit(&chain, k, h)).collect();
        let mut cert = CommitCertificate::from_precommits(Height(5), Round(1), h, &set, &votes);
        let mut dup = cert.clone();
        dup.signatures[1] = dup.signatures[0].clone();
        assert_eq!(
            dup.verify(&chain, &set, Height(5), &h),
            Err(VoteError::UnorderedSigners)
        );
        cert.signatures[2].signature.0[10] ^= 1;
        let bad = cert.signatures[2].validator;
        assert_eq!(
            cert.verify(&chain, &set, Height(5), &h),
            Err(VoteError::BadSignature { validator: bad })
        );
    }

    #[test]
    fn certificate_for_another_block_or_height_is_rejected() {
        let (chain, keys, set) = setup(1);
        let h = Hash::digest(b"block");
        let votes = vec![precommit(&chain, &keys[0], h)];
        let cert = CommitCertificate::from_precommits(Height(5), Round(1), h, &set, &votes);
        assert!(matches!(
            cert.verify(&chain, &set, Height(6), &h),
            Err(VoteError::WrongHeight { .. })
        ));
        let other = Hash::digest(b"other");
        assert!(matches!(
            cert.verify(&chain, &set, Height(5), &other),
            Err(VoteError::WrongBlock { .. })
        ));
    }
}
