//! Checking what the node says instead of believing it: ledger-core's light client
//! ([`ledger_core::light`]) against the trust root of [`crate::trust`].
//!
//! [`Verifier::connect`] settles which chain is trusted before anything is asked: the root's
//! genesis (fetched from `/v1/genesis` and checked against the hash when the root is only a hash),
//! and the node's `/v1/status` must name that same genesis. A node of another chain is
//! [`Error::WrongChain`]; an answer that fails the check is [`Error::Unverified`]; both exit 5.
//!
//! What is checked: an account's balance and nonce at a final height, and a final transaction at
//! its place in a final block, each under a header that validators holding more than two thirds of
//! the voting power signed. What cannot be: pending, rejected and dropped transactions and the
//! mempool's next nonce are in no signed block, so they stay the node's word and are labelled so.

use std::io::{self, Write};

use ledger_core::api::{StatusResponse, TxProofResponse};
use ledger_core::genesis::Genesis;
use ledger_core::light::{LightError, TrustedChain, VerifiedAccount, VerifiedHeader, VerifiedTx};
use ledger_core::units::Token;
use ledger_core::{Address, ChainId, Hash, Height};
use serde::Serialize;

use crate::client::NodeClient;
use crate::error::{ChainMismatch, Error, NodeChain, Served};
use crate::trust::{Anchor, TrustRoot};

/// The trusted chain, settled for one node.
#[derive(Debug)]
pub struct Verifier {
    chain: TrustedChain,
    genesis: Genesis,
    root: TrustRoot,
    url: String,
}

impl Verifier {
    /// Settles the trusted genesis for the node behind `client` whose status is `status`: the
    /// root's genesis (from the node and checked against the pinned hash, when the root is a hash),
    /// which must be the genesis the node says it runs.
    pub fn connect(
        client: &NodeClient,
        root: TrustRoot,
        status: &StatusResponse,
    ) -> Result<Verifier, Error> {
        let url = client.url().to_string();
        let genesis = match &root.anchor {
            Anchor::Genesis(g) => (**g).clone(),
            Anchor::Hash { hash, .. } => {
                let text = client.genesis_json()?;
                let g = Genesis::from_json(&text).map_err(|source| Error::BadNodeGenesis {
                    url: url.clone(),
                    source,
                })?;
                if g.hash() != *hash {
                    return Err(wrong_chain(
                        &url,
                        &root,
                        NodeChain::Serves {
                            genesis: g.hash(),
                            chain_id: g.chain_id().clone(),
                        },
                    ));
                }
                g
            }
        };
        if status.genesis_hash != genesis.hash() {
            return Err(wrong_chain(
                &url,
                &root,
                NodeChain::Serves {
                    genesis: status.genesis_hash,
                    chain_id: status.chain_id.clone(),
                },
            ));
        }
        Ok(Verifier {
            chain: TrustedChain::new(&genesis),
            genesis,
            root,
            url,
        })
    }

    /// The trusted chain's id: what a transfer is signed for.
    pub fn chain_id(&self) -> &ChainId {
        self.chain.chain_id()
    }

    /// The trusted genesis' display unit.
    pub fn token(&self) -> Option<&Token> {
        self.genesis.token()
    }

    /// The account at the node's final head, checked.
    pub fn account(
        &self,
        client: &NodeClient,
        address: &Address,
    ) -> Result<VerifiedAccount, Error> {
        let answer = client.account_proof(address)?;
        self.chain
            .verify_account(address, &answer)
            .map_err(|e| self.failed(Served::Balance, e))
    }

    /// A final transaction, checked; the node must have a proof of it.
    pub fn tx(&self, client: &NodeClient, hash: &Hash) -> Result<VerifiedTx, Error> {
        match client.tx_proof(hash)? {
            Some(answer) => self.check_tx(hash, &answer),
            None => Err(self.no_proof(hash)),
        }
    }

    /// Checks a transaction answer for `hash` (the hash the wallet asked about, so a verified
    /// answer is that very transaction).
    pub fn check_tx(&self, hash: &Hash, answer: &TxProofResponse) -> Result<VerifiedTx, Error> {
        self.chain
            .verify_tx(hash, answer)
            .map_err(|e| self.failed(Served::Transaction(*hash), e))
    }

    /// The error for a node that calls a transaction final and serves no proof of it.
    pub fn no_proof(&self, hash: &Hash) -> Error {
        Error::NoProof {
            url: self.url.clone(),
            hash: *hash,
        }
    }

    /// An answer that failed the check: of another chain (the trust root does not match the node),
    /// or not signed by the validators.
    fn failed(&self, what: Served, e: LightError) -> Error {
        match e {
            LightError::WrongChain { .. } | LightError::WrongGenesis { .. } => {
                wrong_chain(&self.url, &self.root, NodeChain::Answered(e))
            }
            source => Error::Unverified {
                url: self.url.clone(),
                what,
                source: Box::new(source),
            },
        }
    }
}

fn wrong_chain(url: &str, root: &TrustRoot, node: NodeChain) -> Error {
    Error::WrongChain(Box::new(ChainMismatch {
        url: url.to_string(),
        node,
        trusted: root.hash(),
        trusted_chain: root.chain_id().cloned(),
        trusted_from: root.source.clone(),
    }))
}

/// Who vouched for an answer: the `verified_by` of `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedBy {
    /// Validators whose precommit signatures the certificate carries.
    pub signers: usize,
    /// Validators of the trusted genesis.
    pub validators: usize,
    /// The final height the answer was proven at.
    pub height: Height,
}

/// Whether an answer was checked, as every reading command reports it: `"verified": true` with
/// `verified_by`, or `false` with `unverified_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<VerifiedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified_reason: Option<String>,
}

/// The reason `--no-verify` gives.
pub const SKIPPED: &str = "--no-verify: the node's answer was not checked";

impl Verification {
    pub fn by(header: &VerifiedHeader) -> Verification {
        Verification {
            verified: true,
            verified_by: Some(VerifiedBy {
                signers: header.signers,
                validators: header.validators,
                height: header.header.height,
            }),
            unverified_reason: None,
        }
    }

    pub fn not(reason: impl Into<String>) -> Verification {
        Verification {
            verified: false,
            verified_by: None,
            unverified_reason: Some(reason.into()),
        }
    }

    /// "signed by 3 of 4 validators at height 7", or "no (<reason>)".
    pub fn describe(&self) -> String {
        match (&self.verified_by, &self.unverified_reason) {
            (Some(by), _) if self.verified => format!(
                "signed by {} of {} validators at height {}",
                by.signers, by.validators, by.height
            ),
            (_, Some(reason)) => format!("no ({reason})"),
            _ => "no".to_string(),
        }
    }

    /// The human line: "verified: signed by 3 of 4 validators at height 7".
    pub fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "verified: {}", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_reads_plainly_and_serializes_flat() {
        let v = Verification {
            verified: true,
            verified_by: Some(VerifiedBy {
                signers: 3,
                validators: 4,
                height: Height(7),
            }),
            unverified_reason: None,
        };
        assert_eq!(v.describe(), "signed by 3 of 4 validators at height 7");
        let j = serde_json::to_value(&v).expect("serializes");
        assert_eq!(
            j,
            serde_json::json!({"verified": true, "verified_by": {"signers": 3, "validators": 4, "height": 7}})
        );
        let n = Verification::not(SKIPPED);
        assert_eq!(
            n.describe(),
            "no (--no-verify: the node's answer was not checked)"
        );
        let j = serde_json::to_value(&n).expect("serializes");
        assert_eq!(j["verified"], false);
        assert_eq!(j["unverified_reason"], SKIPPED);
        assert!(j.get("verified_by").is_none());
    }
}
