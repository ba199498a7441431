//! The light-client check: whether a value a node served is what the chain holds, trusting only the
//! chain's genesis, never the node.
//!
//! The trust root is a [`TrustedChain`]: the chain id, genesis hash and validator set of a genesis
//! the user already has (a file, or a genesis whose hash they pinned). An answer is believed when
//!
//! 1. its header is of this chain and its commit certificate carries valid precommit signatures,
//!    over that very header's hash, of validators holding more than two thirds of the voting
//!    power ([`TrustedChain::verify_header`]);
//! 2. its proof shows the value under that header: an account's balance and nonce (or absence)
//!    under `state_root` ([`TrustedChain::verify_account`]), a transaction at its position under
//!    `tx_root` ([`TrustedChain::verify_tx`]).
//!
//! The validator set is fixed at genesis, so one set checks every height and no header chain has to
//! be followed. What this does not catch: a chain that reuses this chain's id *and* its validator
//! keys (signatures bind the chain id, not the genesis hash); the `chain_id` and `genesis_hash` an
//! answer carries catch a node of another chain that says so, not one that lies about it.
//!
//! Pure: no I/O, no clock. Every way an answer can fail has its own [`LightError`].

use crate::api::{AccountProofResponse, PROOF_FORMAT, TxProofResponse};
use crate::block::BlockHeader;
use crate::codec;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{self, InclusionProofError};
use crate::state::{Account, AccountProof, StateProof};
use crate::tx::SignedTransaction;
use crate::types::{Address, ChainId, Height};
use crate::validator::ValidatorSet;
use crate::vote::{CommitCertificate, VoteError};

/// What a light client trusts: one chain's identity and validator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedChain {
    chain_id: ChainId,
    genesis_hash: Hash,
    validators: ValidatorSet,
}

/// Why a served value is not what the chain holds. Each variant names the part that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    #[error("the answer has proof format {got}; this client reads format {supported}")]
    UnsupportedFormat { got: u32, supported: u32 },
    #[error("the answer is for chain {got}, not {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("the answer is for the chain with genesis {got}, not {expected}")]
    WrongGenesis { expected: Hash, got: Hash },
    #[error("the answer says height {answer}, its header is at height {header}")]
    HeightMismatch { answer: Height, header: Height },
    #[error("the certificate is for height {certificate}, the header is at height {header}")]
    CertificateHeight { header: Height, certificate: Height },
    #[error("the certificate signs block {certificate}, the header hashes to {header}")]
    CertificateBlock { header: Hash, certificate: Hash },
    #[error("the certificate has {got} signatures and the chain only {max} validators")]
    TooManySignatures { max: usize, got: usize },
    #[error("the certificate's signers are not unique and in validator-set order")]
    UnorderedSigners,
    #[error("the certificate is signed by {signer}, which is not a validator of this chain")]
    NotAValidator { signer: Address },
    #[error("the certificate's signature of {validator} does not verify")]
    BadSignature { validator: Address },
    #[error(
        "the certificate carries {signed} of {total} voting power; more than two thirds are needed"
    )]
    BelowThreshold { signed: u64, total: u64 },
    #[error("the answer is about {got}, the question was about {asked}")]
    WrongKey { asked: String, got: String },
    #[error("the state proof is {got} bytes, more than the {max} a proof can be")]
    ProofTooLarge { got: usize, max: usize },
    #[error("the state proof cannot be decoded: {reason}")]
    MalformedProof { reason: String },
    #[error("the state proof does not show this value under the header's state root: {reason}")]
    StateProof { reason: String },
    #[error("the transaction hashes to {computed}, the answer says {claimed}")]
    TxHashMismatch { claimed: Hash, computed: Hash },
    #[error("the answer puts the transaction at index {answer}, its proof at {proof}")]
    TxIndexMismatch { answer: u64, proof: u64 },
    #[error("the proof counts {proof} transactions in the block, the header {header}")]
    TxCountMismatch { header: u32, proof: u64 },
    #[error("the transaction is not in the block under the header's tx_root: {0}")]
    TxNotInBlock(InclusionProofError),
}

/// A header that more than two thirds of the chain's voting power signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHeader {
    pub hash: Hash,
    pub header: BlockHeader,
    /// Signatures in the certificate, and the voting power behind them.
    pub signers: usize,
    pub signed_power: u64,
    /// The chain's validators, and their total power.
    pub validators: usize,
    pub total_power: u64,
}

/// An account's state at a final height, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccount {
    pub address: Address,
    pub account: Account,
    pub at: VerifiedHeader,
}

/// A final transaction at its position in a final block, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    pub hash: Hash,
    pub transaction: SignedTransaction,
    pub index: u32,
    pub at: VerifiedHeader,
}

impl TrustedChain {
    /// Trusts `genesis`: its chain id, its hash and its validators.
    pub fn new(genesis: &Genesis) -> TrustedChain {
        TrustedChain {
            chain_id: genesis.chain_id().clone(),
            genesis_hash: genesis.hash(),
            validators: genesis.validators().clone(),
        }
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// Checks that `header` is of this chain and that `commit` made it final: valid precommit
    /// signatures over its hash, at its height, from validators holding more than two thirds of
    /// the power.
    pub fn verify_header(
        &self,
        header: &BlockHeader,
        commit: &CommitCertificate,
    ) -> Result<VerifiedHeader, LightError> {
        if header.chain_id != self.chain_id {
            return Err(LightError::WrongChain {
                expected: self.chain_id.clone(),
                got: header.chain_id.clone(),
            });
        }
        let hash = header.hash();
        commit
            .verify(&self.chain_id, &self.validators, header.height, &hash)
            .map_err(|e| match e {
                VoteError::WrongHeight { expected, got } => LightError::CertificateHeight {
                    header: expected,
                    certificate: got,
                },
                VoteError::WrongBlock { expected, got } => LightError::CertificateBlock {
                    header: expected,
                    certificate: got,
                },
                VoteError::UnknownValidator { validator } => {
                    LightError::NotAValidator { signer: validator }
                }
                VoteError::BadSignature { validator } => LightError::BadSignature { validator },
                VoteError::UnorderedSigners => LightError::UnorderedSigners,
                VoteError::NoQuorum { have, total } => LightError::BelowThreshold {
                    signed: have,
                    total,
                },
                VoteError::TooManySignatures { max, got } => {
                    LightError::TooManySignatures { max, got }
                }
            })?;
        // `verify` succeeded, so every signer is a validator.
        let signed_power = commit
            .signatures
            .iter()
            .filter_map(|s| self.validators.get(&s.validator))
            .map(|v| v.power)
            .sum();
        Ok(VerifiedHeader {
            hash,
            header: header.clone(),
            signers: commit.signatures.len(),
            signed_power,
            validators: self.validators.len(),
            total_power: self.validators.total_power(),
        })
    }

    /// Checks an account answer for `asked`: its chain, header and certificate, then its state
    /// proof against the header's state root.
    pub fn verify_account(
        &self,
        asked: &Address,
        answer: &AccountProofResponse,
    ) -> Result<VerifiedAccount, LightError> {
        self.check_envelope(answer.format, &answer.chain_id, answer.genesis_hash)?;
        if answer.address != *asked {
            return Err(LightError::WrongKey {
                asked: asked.to_string(),
                got: answer.address.to_string(),
            });
        }
        check_height(answer.height, &answer.header)?;
        let at = self.verify_header(&answer.header, &answer.commit)?;
        let proof = decode_state_proof(&answer.proof)?;
        let account = Account {
            balance: answer.balance,
            nonce: answer.nonce,
        };
        AccountProof {
            address: *asked,
            account,
            proof,
        }
        .verify(&at.header.state_root)
        .map_err(|e| LightError::StateProof { reason: e.reason })?;
        Ok(VerifiedAccount {
            address: *asked,
            account,
            at,
        })
    }

    /// Checks a transaction answer for `asked`: the transaction hashes to it, its chain, header and
    /// certificate, then its inclusion at `index` under the header's `tx_root`.
    pub fn verify_tx(
        &self,
        asked: &Hash,
        answer: &TxProofResponse,
    ) -> Result<VerifiedTx, LightError> {
        self.check_envelope(answer.format, &answer.chain_id, answer.genesis_hash)?;
        if answer.hash != *asked {
            return Err(LightError::WrongKey {
                asked: asked.to_string(),
                got: answer.hash.to_string(),
            });
        }
        let computed = answer.transaction.hash();
        if computed != *asked {
            return Err(LightError::TxHashMismatch {
                claimed: *asked,
                computed,
            });
        }
        check_height(answer.height, &answer.header)?;
        let at = self.verify_header(&answer.header, &answer.commit)?;
        if answer.proof.index != u64::from(answer.index) {
            return Err(LightError::TxIndexMismatch {
                answer: u64::from(answer.index),
                proof: answer.proof.index,
            });
        }
        if answer.proof.total != u64::from(at.header.tx_count) {
            return Err(LightError::TxCountMismatch {
                header: at.header.tx_count,
                proof: answer.proof.total,
            });
        }
        merkle::verify_inclusion(&at.header.tx_root, asked, &answer.proof)
            .map_err(LightError::TxNotInBlock)?;
        Ok(VerifiedTx {
            hash: *asked,
            transaction: answer.transaction.clone(),
            index: answer.index,
            at,
        })
    }

    fn check_envelope(
        &self,
        format: u32,
        chain: &ChainId,
        genesis: Hash,
    ) -> Result<(), LightError> {
        if format != PROOF_FORMAT {
            return Err(LightError::UnsupportedFormat {
                got: format,
                supported: PROOF_FORMAT,
            });
        }
        if *chain != self.chain_id {
            return Err(LightError::WrongChain {
                expected: self.chain_id.clone(),
                got: chain.clone(),
            });
        }
        if genesis != self.genesis_hash {
            return Err(LightError::WrongGenesis {
                expected: self.genesis_hash,
                got: genesis,
            });
        }
        Ok(())
    }
}

fn check_height(answer: Height, header: &BlockHeader) -> Result<(), LightError> {
    if answer != header.height {
        return Err(LightError::HeightMismatch {
            answer,
            header: header.height,
        });
    }
    Ok(())
}

/// The state proof of an answer, from its canonical encoding (bounded before decoding).
pub fn decode_state_proof(bytes: &[u8]) -> Result<StateProof, LightError> {
    let max = crate::api::MAX_STATE_PROOF_BYTES;
    if bytes.len() > max {
        return Err(LightError::ProofTooLarge {
            got: bytes.len(),
            max,
        });
    }
    codec::decode(bytes).map_err(|e| LightError::MalformedProof {
        reason: e.to_string(),
    })
}

/// The canonical encoding of a state proof, as answers carry it.
pub fn encode_state_proof(proof: &StateProof) -> Vec<u8> {
    codec::encode(proof)
}
