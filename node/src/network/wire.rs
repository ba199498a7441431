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
use ledger_core::{ChainId, IdentifiedSet, SignedTransaction, ValidatorSet, codec};

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
    // The set's id is hashed once, not per message.
    let validators = IdentifiedSet::new(validators.as_ref().clone());
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
    validators: &IdentifiedSet,
    metrics: &Metrics,
    data: &[u8],
) -> Verdict<NetInbound> {
    let message = match codec::decode_bounded::<ConsensusGossip>(data, MAX_GOSSIP_BYTES) {
        Ok(m) => m,
        // A proposal whose transactions or previous commit are not the ones its (signed) header
        // commits to: a forgery by the proposer or by a relayer. Never relayed, never seen by the
        // machine, and the sender is penalised like for any invalid message.
        Err(codec::DecodeError::BlockBody(e)) => {
            tracing::debug!(error = %e, "proposal body does not match its header");
            return Verdict::Reject("body_mismatch");
        }
        Err(_) => return Verdict::Reject("undecodable"),
    };
    match message {
        ConsensusGossip::Message(m) => {
            match metrics.time_signatures(|| m.verified_in(chain_id, validators)) {
                // Checked once, here: the machine trusts it for this validator set.
                Ok(v) => Verdict::Accept(NetInbound::VerifiedConsensus(v)),
                // A bad signature or a signer outside the validator set.
                Err(_) => Verdict::Reject("bad_signature"),
            }
        }
        ConsensusGossip::Evidence(e) => {
            if metrics.time_signatures(|| e.verify(chain_id, validators.set()).is_ok()) {
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
    use ledger_core::consensus::Proposal;
    use ledger_core::merkle::merkle_root;
    use ledger_core::{
        Address, Amount, Block, BlockHeader, Hash, Height, Keypair, Nonce, Round, Signature,
        TimestampMs, Transaction, Validator as V,
    };

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

    /// A signed proposal's wire layout with an unchecked block, as a forger would send it.
    #[derive(BorshSerialize)]
    struct WireProposal {
        gossip_tag: u8,
        message_tag: u8,
        height: Height,
        round: Round,
        pol_round: Option<Round>,
        proposer: Address,
        block: Block,
        signature: Signature,
    }

    /// A gossiped proposal whose body is not its header's (a relayer dropped a transaction) is
    /// rejected as `body_mismatch`, so gossipsub penalises the sender and the machine never sees
    /// it; the real proposal, arriving after it, is accepted (its bytes, and so its gossip message
    /// id, differ from the forgery's) and handed on verified.
    #[test]
    fn a_proposal_with_a_swapped_body_is_rejected_and_the_real_one_still_accepted() {
        let key = Keypair::dev("validator", 0);
        let (chain, set) = setup();
        let txs = vec![tx(&chain, 0), tx(&chain, 1)];
        let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        let block = Block {
            header: BlockHeader {
                chain_id: chain.clone(),
                height: Height(1),
                prev_hash: Hash::ZERO,
                timestamp_ms: TimestampMs(1),
                proposer: key.address(),
                tx_root: merkle_root(&hashes),
                tx_count: 2,
                state_root: Hash::ZERO,
                last_commit_hash: Hash::ZERO,
            },
            last_commit: None,
            txs,
        };
        let sealed = block.clone().seal().expect("header made from the body");
        let real = Proposal {
            height: Height(1),
            round: Round(0),
            pol_round: None,
            proposer: key.address(),
            block: sealed,
        }
        .sign(&chain, &key);
        let mut forged_block = block;
        forged_block.txs.truncate(1);
        forged_block.header.tx_count = 1;
        let forged = codec::encode(&WireProposal {
            gossip_tag: 0,
            message_tag: 0,
            height: Height(1),
            round: Round(0),
            pol_round: None,
            proposer: key.address(),
            block: forged_block,
            signature: real.signature,
        });
        // A proposal is its block plus 99 bytes (tags, height, round, pol round, proposer,
        // signature; 103 with a POL round): the room `ledger_core::params::GOSSIP_FRAME_OVERHEAD`
        // keeps is enough.
        let real_len = encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Proposal(
            real.clone(),
        )))
        .len();
        assert_eq!(
            real_len - codec::encode(real.proposal.block.block()).len(),
            99
        );
        let v = validator(chain, set, Arc::new(Metrics::new()));
        assert!(matches!(
            v(Topic::Consensus, &forged),
            Verdict::Reject("body_mismatch")
        ));
        let real_bytes = encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Proposal(
            real.clone(),
        )));
        assert_ne!(real_bytes, forged);
        match v(Topic::Consensus, &real_bytes) {
            Verdict::Accept(NetInbound::VerifiedConsensus(m)) => {
                assert_eq!(m.message(), &ConsensusMessage::Proposal(real));
            }
            other => panic!("the real proposal was not accepted: {other:?}"),
        }
    }
}
