//! A hostile peer's payloads: the bytes a misbehaving peer gossips and the forged chain it serves.
//!
//! Shared by the `ledger-rogue` harness (`src/bin/rogue/`, run against real testnets by
//! `scripts/bench-attacks.sh`) and the bad-peer integration tests, so that both attack with the
//! same bytes. Everything is built from ledger-core's public types and the network's public wire
//! encoders ([`crate::network::wire`]); nothing here reaches into the network task, so the harness
//! follows changes of the gossip layer by construction.
//!
//! Every builder that takes a counter `i` returns different bytes for each `i`: gossip drops a
//! message it has seen, so a flood must not repeat itself by accident. (Replaying on purpose goes
//! through [`replay_bytes`].)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use borsh::BorshSerialize;
use rayon::prelude::*;

use ledger_core::consensus::{ConsensusMessage, Proposal, SignedProposal};
use ledger_core::genesis::Genesis;
use ledger_core::merkle::merkle_root;
use ledger_core::validation::{ParentBlock, build_block};
use ledger_core::vote::CommitSig;
use ledger_core::{
    Address, Amount, Block, BlockHeader, ChainId, CommitCertificate, CommittedBlock, Hash, Height,
    Keypair, Nonce, Round, SealedBlock, Signature, SignedTransaction, TimestampMs, Transaction,
    ValidatorSet, Vote, VoteKind, codec,
};

use crate::network::wire::{self, ConsensusGossip, MAX_TXS_PER_GOSSIP};
use crate::network::{BlockSource, MAX_GOSSIP_BYTES};

/// First byte of every garbage message: no valid tag of a `ConsensusGossip` and a batch length
/// far beyond the bound of a transaction batch, so garbage never decodes by chance.
pub const GARBAGE_TAG: u8 = 0xFF;

/// Sizes garbage messages cycle through, in bytes.
const GARBAGE_SIZES: [usize; 4] = [64, 1024, 16 * 1024, 64 * 1024];

/// Undecodable bytes of one of [`GARBAGE_SIZES`]: [`GARBAGE_TAG`], `i` (little-endian), then
/// pseudo-random filler derived from `i`.
pub fn garbage(i: u64) -> Vec<u8> {
    let len = GARBAGE_SIZES[(i % GARBAGE_SIZES.len() as u64) as usize];
    let mut out = Vec::with_capacity(len);
    out.push(GARBAGE_TAG);
    out.extend_from_slice(&i.to_le_bytes());
    // xorshift64: cheap filler, so the flood costs the attacker nothing.
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The bytes to send for the `n`-th replay of `recorded`, a consensus message an honest node
/// gossiped, at `now_secs` (Unix seconds).
///
/// Gossip ids are content hashes, so the recorded bytes themselves would be dropped as a copy.
/// A proposal or vote goes out instead as a [`ConsensusGossip::Resend`], the envelope nodes use to
/// re-broadcast a round that makes no progress: its second varies over the whole window a node
/// accepts (`now ± RESEND_WINDOW_SECS`), so each recorded message yields that many distinct
/// messages at any time. Evidence, and bytes that do not decode, go out unchanged.
pub fn replay_bytes(recorded: &[u8], n: u64, now_secs: u64) -> Vec<u8> {
    let message = match codec::decode_bounded::<ConsensusGossip>(recorded, MAX_GOSSIP_BYTES) {
        Ok(ConsensusGossip::Message(m)) | Ok(ConsensusGossip::Resend { message: m, .. }) => m,
        _ => return recorded.to_vec(),
    };
    let window = 2 * wire::RESEND_WINDOW_SECS + 1;
    let sent_at_secs = now_secs.saturating_sub(wire::RESEND_WINDOW_SECS) + n % window;
    wire::encode_consensus(&ConsensusGossip::Resend {
        sent_at_secs,
        message,
    })
}

/// A proposal's wire layout inside a [`ConsensusGossip`] with an unchecked block: what a relayer
/// that alters a proposal's body sends (a [`SignedProposal`] can only hold a sealed block).
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

/// `real`'s header and signature around another body: `extra` appended to its transactions, at
/// `height` and `round` (gossip sets aside heights a node has committed before decoding anything,
/// and a distinct round makes each copy distinct). Decoding it fails with a body mismatch.
pub fn tampered_proposal(
    real: &SignedProposal,
    extra: SignedTransaction,
    round: Round,
    height: Height,
) -> Vec<u8> {
    let mut body = real.proposal.block.block().clone();
    body.txs.push(extra);
    codec::encode(&WireProposal {
        gossip_tag: 0,
        message_tag: 0,
        height,
        round,
        pol_round: None,
        proposer: real.proposal.proposer,
        block: body,
        signature: real.signature,
    })
}

/// Builds forged messages and blocks for one chain. Its signatures come from keys outside the
/// validator set ([`Forger::impostor`]) while the messages name genesis validators, so every one of
/// them fails a signature check and none can ever be accepted.
#[derive(Debug)]
pub struct Forger {
    chain: ChainId,
    validators: ValidatorSet,
    genesis_time: TimestampMs,
    /// An empty block at height 1 built on genesis by validator 0: the body of forged proposals.
    block: SealedBlock,
    impostor: Keypair,
}

impl Forger {
    /// A forger for `genesis`'s chain. Builds one empty block on genesis (cheap for any genesis
    /// whose accounts fit in memory, which every node's does).
    pub fn new(genesis: &Genesis) -> Result<Forger, ledger_core::validation::BlockError> {
        let validators = genesis.validators().clone();
        let proposer = validators.validators()[0].address;
        let block = build_block(
            genesis.chain_context(),
            &ParentBlock::genesis(genesis),
            &mut genesis.initial_state(),
            [],
            proposer,
            TimestampMs(genesis.genesis_time_ms().0 + 1),
            None,
        )?
        .block;
        Ok(Forger {
            chain: genesis.chain_id().clone(),
            validators,
            genesis_time: genesis.genesis_time_ms(),
            block,
            impostor: Keypair::dev("rogue-impostor", 0),
        })
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain
    }

    /// The key that signs every forgery: not a validator.
    pub fn impostor(&self) -> &Keypair {
        &self.impostor
    }

    /// The empty height-1 block inside forged proposals.
    pub fn block(&self) -> &SealedBlock {
        &self.block
    }

    fn validator_address(&self, i: u64) -> Address {
        let all = self.validators.validators();
        all[(i % all.len() as u64) as usize].address
    }

    /// A transfer from DEV account 0 (funded on the dev chains) to DEV account 1 with the memo `i`
    /// and one bit of its signature flipped: well formed, signed, and invalid.
    pub fn badly_signed_tx(&self, i: u64) -> SignedTransaction {
        let from = Keypair::dev("account", 0);
        let mut tx = Transaction {
            chain_id: self.chain.clone(),
            from: from.public(),
            to: Keypair::dev("account", 1).address(),
            amount: Amount(5),
            fee: Amount(1),
            nonce: Nonce(0),
            memo: i.to_le_bytes().to_vec(),
        }
        .sign(&from);
        tx.signature.0[7] ^= 0x01;
        tx
    }

    /// A prevote at `height` (round `i`) that names a genesis validator and is signed by the
    /// impostor.
    pub fn badly_signed_vote(&self, i: u64, height: Height) -> Vec<u8> {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height,
            round: Round(u32::try_from(i % u64::from(u32::MAX)).unwrap_or(0)),
            block_hash: Some(Hash::digest(&i.to_le_bytes())),
            validator: self.validator_address(i),
        }
        .sign(&self.chain, &self.impostor);
        wire::encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Vote(vote)))
    }

    /// A proposal of [`Forger::block`] at `height`, round `i`, that claims a genesis validator as
    /// its proposer and is signed by the impostor.
    pub fn forged_proposal(&self, i: u64, height: Height) -> Vec<u8> {
        let proposal = Proposal {
            height,
            round: Round(u32::try_from(i % u64::from(u32::MAX)).unwrap_or(0)),
            pol_round: None,
            proposer: self.validator_address(i),
            block: self.block.clone(),
        }
        .sign(&self.chain, &self.impostor);
        wire::encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Proposal(
            proposal,
        )))
    }

    /// The `i`-th bad-signature message and its topic: a badly signed transfer (transactions
    /// topic), a vote and a proposal signed by the impostor at `height` (consensus topic; the
    /// height the network is deciding, or nodes set them aside unchecked), in turn.
    pub fn bad_signature(&self, i: u64, height: Height) -> (crate::network::Topic, Vec<u8>) {
        use crate::network::Topic;
        match i % 3 {
            0 => (
                Topic::Transactions,
                wire::encode_txs(&[self.badly_signed_tx(i)]),
            ),
            1 => (Topic::Consensus, self.badly_signed_vote(i, height)),
            _ => (Topic::Consensus, self.forged_proposal(i, height)),
        }
    }

    /// A full gossip batch ([`MAX_TXS_PER_GOSSIP`] transfers) from `keys` (one transfer each, nonce
    /// `batch`), validly signed; the keys are expected to hold no funds. Signed in parallel.
    pub fn unfunded_batch(&self, keys: &[Keypair], batch: u64) -> Vec<u8> {
        let to = Keypair::dev("account", 1).address();
        let txs: Vec<SignedTransaction> = keys
            .par_iter()
            .take(MAX_TXS_PER_GOSSIP)
            .map(|k| {
                Transaction {
                    chain_id: self.chain.clone(),
                    from: k.public(),
                    to,
                    amount: Amount(1),
                    fee: Amount(1),
                    nonce: Nonce(batch),
                    memo: vec![],
                }
                .sign(k)
            })
            .collect();
        wire::encode_txs(&txs)
    }

    /// A committed block at `height` that no honest node can accept, encoded as sync serves it.
    /// Even heights carry a well-formed empty block whose certificate names every validator with
    /// the impostor's signatures (caught by the certificate check); odd heights carry a header
    /// that promises a transaction the body does not have (caught before any signature check).
    pub fn forged_committed_block(&self, height: u64) -> Vec<u8> {
        let forged_body = height % 2 == 1;
        let header = BlockHeader {
            chain_id: self.chain.clone(),
            height: Height(height),
            prev_hash: Hash::digest(&(height.wrapping_sub(1)).to_le_bytes()),
            timestamp_ms: TimestampMs(self.genesis_time.0.saturating_add(height * 1000)),
            proposer: self.validator_address(height),
            tx_root: if forged_body {
                Hash::digest(b"a transaction that is not there")
            } else {
                merkle_root(&[])
            },
            tx_count: u32::from(forged_body),
            state_root: Hash::digest(&height.to_le_bytes()),
            last_commit_hash: Hash::ZERO,
        };
        let block_hash = header.hash();
        let signatures = self
            .validators
            .validators()
            .iter()
            .map(|v| {
                let signed = Vote {
                    kind: VoteKind::Precommit,
                    height: Height(height),
                    round: Round(0),
                    block_hash: Some(block_hash),
                    validator: v.address,
                }
                .sign(&self.chain, &self.impostor);
                CommitSig {
                    validator: v.address,
                    signature: signed.signature,
                }
            })
            .collect();
        codec::encode(&CommittedBlock {
            block: Block {
                header,
                last_commit: None,
                txs: vec![],
            },
            commit: CommitCertificate {
                height: Height(height),
                round: Round(0),
                block_hash,
                signatures,
            },
        })
    }
}

/// Keys that hold nothing on the dev chains (`Keypair::dev("rogue-unfunded", j)`), one per transfer
/// of a full gossip batch.
pub fn unfunded_keys() -> Vec<Keypair> {
    (0..MAX_TXS_PER_GOSSIP as u32)
        .into_par_iter()
        .map(|j| Keypair::dev("rogue-unfunded", j))
        .collect()
}

/// A peer that serves no blocks and claims height 0.
#[derive(Debug, Clone, Copy)]
pub struct NoBlocks;

impl BlockSource for NoBlocks {
    fn head_height(&self) -> u64 {
        0
    }
    fn encoded_blocks(&self, _from: u64, _to: u64, _max_bytes: usize) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// A peer that claims to be [`ForgedChain::lead_blocks`] ahead of the honest head it is told
/// about, and serves forged blocks ([`Forger::forged_committed_block`]) for any range asked.
#[derive(Debug)]
pub struct ForgedChain {
    forger: Forger,
    /// The highest head of the honest peers, kept current by the harness (0 = not known yet:
    /// then it claims nothing).
    pub honest_head: Arc<AtomicU64>,
    pub lead_blocks: u64,
    /// Range requests answered.
    pub chunks_served: Arc<AtomicU64>,
    /// Forged blocks handed out.
    pub blocks_served: Arc<AtomicU64>,
}

impl ForgedChain {
    pub fn new(forger: Forger, lead_blocks: u64) -> ForgedChain {
        ForgedChain {
            forger,
            honest_head: Arc::new(AtomicU64::new(0)),
            lead_blocks,
            chunks_served: Arc::new(AtomicU64::new(0)),
            blocks_served: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl BlockSource for ForgedChain {
    fn head_height(&self) -> u64 {
        match self.honest_head.load(Ordering::Relaxed) {
            0 => 0,
            h => h.saturating_add(self.lead_blocks),
        }
    }

    fn encoded_blocks(&self, from: u64, to: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let to = to.min(self.head_height());
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for h in from.max(1)..=to {
            let b = self.forger.forged_committed_block(h);
            bytes += b.len();
            if bytes > max_bytes {
                break;
            }
            out.push(b);
        }
        self.chunks_served.fetch_add(1, Ordering::Relaxed);
        self.blocks_served
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::network::wire::{GossipChecks, Gossiped, LedgerView, TxPolicy};
    use crate::network::{Topic, Verdict};
    use ledger_core::state::Account;

    const NOW_SECS: u64 = 1_000_000;

    fn genesis() -> Genesis {
        Genesis::dev("rogue-test", 4, 2).expect("dev genesis")
    }

    /// A chain at height 0 whose accounts cannot be read: the state pre-checks are skipped and
    /// signatures decide, so every payload reaches the check it was made for.
    struct Unread;

    impl LedgerView for Unread {
        fn head_height(&self) -> u64 {
            0
        }
        fn account(&self, _address: &Address) -> Option<Account> {
            None
        }
    }

    /// A node's gossip validator for `g`.
    fn node_validator(g: &Genesis) -> crate::network::Validator<Gossiped> {
        wire::validator(GossipChecks {
            chain_id: g.chain_id().clone(),
            validators: Arc::new(g.validators().clone()),
            metrics: Arc::new(Metrics::new()),
            ledger: Arc::new(Unread),
            policy: TxPolicy {
                min_fee: 1,
                nonce_window: 64,
            },
            now_secs: Arc::new(|| NOW_SECS),
        })
    }

    fn rejected(v: &Verdict<Gossiped>) -> Option<&'static str> {
        match v {
            Verdict::Reject(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn garbage_is_distinct_per_counter_and_rejected_as_undecodable_on_both_topics() {
        let g = genesis();
        let v = node_validator(&g);
        for i in 0..8 {
            let bytes = garbage(i);
            assert_ne!(bytes, garbage(i + 1));
            assert_eq!(bytes.len(), GARBAGE_SIZES[(i % 4) as usize]);
            for topic in [Topic::Transactions, Topic::Consensus] {
                assert_eq!(rejected(&v(topic, &bytes)), Some("undecodable"));
            }
        }
    }

    #[test]
    fn every_bad_signature_message_is_rejected_by_a_nodes_gossip_validator() {
        let g = genesis();
        let forger = Forger::new(&g).expect("forger");
        let v = node_validator(&g);
        for i in 0..6 {
            let (topic, bytes) = forger.bad_signature(i, Height(1));
            let expected = if topic == Topic::Transactions {
                "invalid_tx"
            } else {
                "bad_signature"
            };
            assert_eq!(rejected(&v(topic, &bytes)), Some(expected), "message {i}");
        }
    }

    #[test]
    fn an_unfunded_batch_is_full_and_validly_signed() {
        let g = genesis();
        let forger = Forger::new(&g).expect("forger");
        let keys = unfunded_keys();
        let batch = forger.unfunded_batch(&keys, 3);
        assert_ne!(batch, forger.unfunded_batch(&keys, 4));
        match node_validator(&g)(Topic::Transactions, &batch) {
            Verdict::Accept(Gossiped::Transactions(txs)) => {
                assert_eq!(txs.len(), MAX_TXS_PER_GOSSIP);
            }
            other => panic!("an unfunded batch is not signature-valid: {other:?}"),
        }
    }

    /// A replayed proposal or vote goes out as a resend whose second sweeps the window a node
    /// accepts: distinct bytes each time (so gossip cannot drop them as copies), and none of them
    /// held against the sender by a node at that height.
    #[test]
    fn replays_are_distinct_resends_inside_the_window_and_never_held_against_the_sender() {
        let g = genesis();
        let key = Keypair::dev("validator", 0);
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: Height(1),
            round: Round(0),
            block_hash: Some(Hash::digest(b"block")),
            validator: key.address(),
        }
        .sign(g.chain_id(), &key);
        let recorded =
            wire::encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Vote(vote)));
        let v = node_validator(&g);
        let mut seen = std::collections::HashSet::new();
        for n in 0..(2 * wire::RESEND_WINDOW_SECS + 1) {
            let bytes = replay_bytes(&recorded, n, NOW_SECS);
            assert!(
                seen.insert(bytes.clone()),
                "replay {n} repeats an earlier one"
            );
            match codec::decode_bounded::<ConsensusGossip>(&bytes, MAX_GOSSIP_BYTES) {
                Ok(ConsensusGossip::Resend { sent_at_secs, .. }) => {
                    assert!(sent_at_secs.abs_diff(NOW_SECS) <= wire::RESEND_WINDOW_SECS);
                }
                other => panic!("replay {n} is not a resend: {other:?}"),
            }
            // The first is checked and handed on; later ones are resends of a message the node
            // has (checked once).
            match (n, v(Topic::Consensus, &bytes)) {
                (0, Verdict::Accept(_)) | (1.., Verdict::Resent("known", _)) => {}
                (n, other) => panic!("replay {n}: {other:?}"),
            }
        }
        // The window wraps: the next replay repeats the first.
        assert!(!seen.insert(replay_bytes(
            &recorded,
            2 * wire::RESEND_WINDOW_SECS + 1,
            NOW_SECS
        )));
        // What is not a proposal or vote goes out as it came.
        assert_eq!(replay_bytes(&[1, 2, 3], 0, NOW_SECS), vec![1, 2, 3]);
    }

    /// Both kinds of forged block decode as sync decodes them and fail the engine's checks of a
    /// synced block (`check_synced`: seal, then the certificate): the odd one its body, the even one
    /// its certificate.
    #[test]
    fn forged_committed_blocks_decode_and_fail_the_checks_of_a_synced_block() {
        let g = genesis();
        let forger = Forger::new(&g).expect("forger");
        let source = ForgedChain::new(forger, 1000);
        assert_eq!(
            source.head_height(),
            0,
            "claims nothing before a head is known"
        );
        source.honest_head.store(5, Ordering::Relaxed);
        assert_eq!(source.head_height(), 1005);
        let raw = source.encoded_blocks(1, 2, usize::MAX);
        assert_eq!(raw.len(), 2);
        assert_eq!(source.chunks_served.load(Ordering::Relaxed), 1);
        assert_eq!(source.blocks_served.load(Ordering::Relaxed), 2);
        let decode =
            |b: &[u8]| -> CommittedBlock { codec::decode_bounded(b, 1 << 20).expect("decodes") };
        let odd = decode(&raw[0]);
        assert_eq!(odd.block.header.height, Height(1));
        assert!(odd.block.seal().is_err(), "the forged body was sealed");
        let even = decode(&raw[1]);
        assert_eq!(even.block.header.height, Height(2));
        let sealed = even.block.seal().expect("a well-formed body");
        assert!(
            even.commit
                .verify(g.chain_id(), g.validators(), Height(2), &sealed.hash())
                .is_err(),
            "the forged certificate verified"
        );
        // Bounded by the byte budget the server passes.
        assert!(source.encoded_blocks(1, 64, raw[0].len()).len() <= 1);
    }
}
