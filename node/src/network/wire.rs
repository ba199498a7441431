//! What travels on the gossip topics, and the validation that runs before a message is relayed.
//!
//! - Transactions topic: a borsh `Vec<SignedTransaction>` (a batch, at most
//!   [`MAX_TXS_PER_GOSSIP`]). Every transaction must pass the stateless checks and its signature
//!   (checked in parallel); one bad transaction rejects the batch and penalises the sender, since
//!   honest nodes only gossip transactions they admitted.
//! - Consensus topic: a borsh [`ConsensusGossip`]: a proposal, a vote, or equivocation evidence,
//!   signed by a validator of the (fixed, genesis) validator set. Proposer schedule, rounds and
//!   block validity are the consensus machine's business; here only decoding and signatures.
//!
//! Every signature check here is timed into `ledger_signature_verify_seconds` (a batch is one
//! observation). Rejections carry a short reason code, the label of
//! `ledger_gossip_messages_rejected_total`.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use rayon::prelude::*;

use ledger_core::consensus::{ConsensusMessage, Evidence};
use ledger_core::{ChainId, SignedTransaction, ValidatorSet, codec};

use super::{MAX_GOSSIP_BYTES, Topic, Validator, Verdict};
use crate::metrics::Metrics;
use crate::net_types::NetInbound;

/// Most transactions in one gossip message.
pub const MAX_TXS_PER_GOSSIP: usize = 2_000;

/// A message on the consensus topic.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum ConsensusGossip {
    Message(ConsensusMessage),
    Evidence(Evidence),
}

pub fn encode_txs(txs: &[SignedTransaction]) -> Vec<u8> {
    codec::encode(txs)
}

pub fn encode_consensus(message: &ConsensusGossip) -> Vec<u8> {
    codec::encode(message)
}

/// The gossip validator of a node on `chain_id` with validator set `validators`.
pub fn validator(
    chain_id: ChainId,
    validators: Arc<ValidatorSet>,
    metrics: Arc<Metrics>,
) -> Validator<NetInbound> {
    Arc::new(move |topic, data| match topic {
        Topic::Transactions => validate_txs(&chain_id, &metrics, data),
        Topic::Consensus => validate_consensus(&chain_id, &validators, &metrics, data),
    })
}

fn validate_txs(chain_id: &ChainId, metrics: &Metrics, data: &[u8]) -> Verdict<NetInbound> {
    let Ok(txs) = codec::decode_bounded::<Vec<SignedTransaction>>(data, MAX_GOSSIP_BYTES) else {
        return Verdict::Reject("undecodable");
    };
    if txs.is_empty() || txs.len() > MAX_TXS_PER_GOSSIP {
        return Verdict::Reject("batch_size");
    }
    // Verified here, once: the mempool admits them without checking the signatures again.
    let verified: Result<Vec<_>, _> =
        metrics.time_signatures(|| txs.into_par_iter().map(|tx| tx.verify(chain_id)).collect());
    match verified {
        Ok(v) => Verdict::Accept(NetInbound::VerifiedTransactions(v)),
        Err(_) => Verdict::Reject("invalid_tx"),
    }
}

fn validate_consensus(
    chain_id: &ChainId,
    validators: &ValidatorSet,
    metrics: &Metrics,
    data: &[u8],
) -> Verdict<NetInbound> {
    let Ok(message) = codec::decode_bounded::<ConsensusGossip>(data, MAX_GOSSIP_BYTES) else {
        return Verdict::Reject("undecodable");
    };
    match message {
        ConsensusGossip::Message(m) => {
            let ok = metrics.time_signatures(|| match &m {
                ConsensusMessage::Proposal(p) => p.verify(chain_id, validators).is_ok(),
                ConsensusMessage::Vote(v) => v.verify(chain_id, validators).is_ok(),
            });
            if ok {
                Verdict::Accept(NetInbound::Consensus(m))
            } else {
                // A bad signature or a signer outside the validator set.
                Verdict::Reject("bad_signature")
            }
        }
        ConsensusGossip::Evidence(e) => {
            if metrics.time_signatures(|| e.verify(chain_id, validators).is_ok()) {
                tracing::warn!(?e, "equivocation evidence received");
                // Relayed so every node learns of it; the driver has nothing to do with it.
                Verdict::Ignore
            } else {
                Verdict::Reject("invalid_evidence")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::{Amount, Keypair, Nonce, Transaction, Validator as V};

    fn setup() -> (ChainId, Arc<ValidatorSet>) {
        let k = Keypair::dev("validator", 0);
        let set = ValidatorSet::new(vec![V {
            address: k.address(),
            public_key: k.public(),
            power: 1,
        }])
        .expect("valid set");
        (ChainId::new("wire-test").expect("valid"), Arc::new(set))
    }

    fn tx(chain: &ChainId, nonce: u64) -> SignedTransaction {
        let k = Keypair::dev("account", 0);
        Transaction {
            chain_id: chain.clone(),
            from: k.public(),
            to: Keypair::dev("account", 1).address(),
            amount: Amount(5),
            fee: Amount(1),
            nonce: Nonce(nonce),
            memo: vec![],
        }
        .sign(&k)
    }

    #[test]
    fn a_valid_batch_is_accepted_and_one_bad_signature_rejects_it() {
        let (chain, set) = setup();
        let metrics = Arc::new(Metrics::new());
        let v = validator(chain.clone(), set, metrics.clone());
        let mut txs: Vec<SignedTransaction> = (0..10).map(|n| tx(&chain, n)).collect();
        assert!(
            matches!(v(Topic::Transactions, &encode_txs(&txs)), Verdict::Accept(NetInbound::VerifiedTransactions(t)) if t.len() == 10)
        );
        txs[7].signature.0[3] ^= 1;
        assert!(matches!(
            v(Topic::Transactions, &encode_txs(&txs)),
            Verdict::Reject("invalid_tx")
        ));
        // One observation per batch.
        assert_eq!(
            metrics.sample("ledger_signature_verify_seconds_count"),
            Some(2.0)
        );
    }

    #[test]
    fn garbage_and_empty_batches_are_rejected_on_both_topics() {
        let (chain, set) = setup();
        let v = validator(chain, set, Arc::new(Metrics::new()));
        for data in [vec![], vec![0xFF; 40], vec![1, 2, 3]] {
            assert!(matches!(
                v(Topic::Transactions, &data),
                Verdict::Reject("undecodable")
            ));
            assert!(matches!(
                v(Topic::Consensus, &data),
                Verdict::Reject("undecodable")
            ));
        }
        assert!(matches!(
            v(Topic::Transactions, &encode_txs(&[])),
            Verdict::Reject("batch_size")
        ));
    }
}
