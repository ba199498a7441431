//! What travels on the gossip topics, and the validation that runs before a message is relayed.
//!
//! Checks run cheapest first, and nothing is verified twice:
//!
//! - Transactions topic: a borsh `Vec<SignedTransaction>` (a batch, at most
//!   [`MAX_TXS_PER_GOSSIP`]). Each transaction passes its stateless checks; then, before any
//!   signature is checked, transactions already seen here, already committed (nonce below the
//!   account's), from senders that cannot pay them, below this node's fee floor or beyond its nonce
//!   window are set aside. Only the rest have their signatures checked (in parallel), and only they
//!   go on to the mempool. A malformed or badly signed transaction rejects the batch, as does a
//!   batch that is mostly unfundable (honest nodes only relay what they admitted); a batch with
//!   nothing new is useless (charged to the sender, see [`Verdict::Useless`]).
//! - Consensus topic: a borsh [`ConsensusGossip`]: a proposal or vote (first publication, or a
//!   [`ConsensusGossip::Resend`] of it when its round makes no progress), or equivocation evidence.
//!   The height is read from a fixed place in the bytes before anything is decoded: messages of
//!   heights already committed are useless, those more than one height ahead are ignored (the node
//!   syncs instead). A message verified before is not verified again. Proposer schedule, rounds and
//!   block validity are the consensus machine's business; here only decoding and signatures.
//!
//! Gossip message ids are content hashes (see `behaviour.rs`): a copy of the same bytes is one
//! message, dropped by gossipsub before it reaches this code. A resend differs from the first
//! publication by the second it carries, which must be within [`RESEND_WINDOW_SECS`] of this
//! node's clock, so each signed message has a bounded number of distinct resends at any time.
//!
//! Every signature check here is timed into `ledger_signature_verify_seconds` (a batch is one
//! observation) and counted in `ledger_gossip_signature_checks_total`. Rejections and skips carry
//! a short reason code, a metric label.

use std::collections::HashMap;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use moka::sync::Cache;

use ledger_core::consensus::{ConsensusMessage, Evidence, VerifiedMessage};
use ledger_core::state::Account;
use ledger_core::{
    Address, ChainId, Hash, IdentifiedSet, SignedTransaction, ValidatorSet, VerifiedTransaction,
    codec,
};

use super::{MAX_GOSSIP_BYTES, Topic, Validator, Verdict};
use crate::metrics::Metrics;

/// Most transactions in one gossip message.
pub const MAX_TXS_PER_GOSSIP: usize = 2_000;
/// A resend's second may be this far from the receiver's clock, either way.
pub const RESEND_WINDOW_SECS: u64 = 30;
/// Transaction hashes remembered as verified (32-byte keys; about 100 bytes each with the
/// cache's bookkeeping: ~20 MB at most).
const SEEN_TXS: u64 = 200_000;
/// Consensus messages remembered as verified (a few heights' proposals and votes).
const SEEN_CONSENSUS: u64 = 8_192;
/// A resend of a message verified this many seconds ago or more is verified and handed on again:
/// the consensus machine drops messages it cannot use yet (rounds too far ahead, too many for the
/// next height) and counts on re-broadcasts to bring them back, so deduplication must not outlive
/// a tick (ledger-core `consensus` module docs).
const REVERIFY_AFTER_SECS: u64 = 1;

/// What the consensus seen cache knows of a message: when it was (or is being) verified, and
/// whether it passed. An entry is made before the signature check, so copies that arrive together
/// are checked once.
#[derive(Debug, Clone, Copy)]
struct SeenMessage {
    at_secs: u64,
    valid: bool,
}

/// A message on the consensus topic.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum ConsensusGossip {
    /// A proposal or vote, as first published by its signer.
    Message(ConsensusMessage),
    Evidence(Evidence),
    /// A proposal or vote sent again (by its signer or anyone) because the round made no
    /// progress; `sent_at_secs` (Unix seconds) makes the bytes differ from earlier copies.
    Resend {
        sent_at_secs: u64,
        message: ConsensusMessage,
    },
}

/// The borsh tags of [`ConsensusGossip`], read before decoding.
const TAG_MESSAGE: u8 = 0;
const TAG_EVIDENCE: u8 = 1;
const TAG_RESEND: u8 = 2;

/// What gossip validation hands on: checked consensus messages and transactions.
#[derive(Debug, Clone)]
pub enum Gossiped {
    Consensus(VerifiedMessage),
    Transactions(Vec<VerifiedTransaction>),
}

pub fn encode_txs(txs: &[SignedTransaction]) -> Vec<u8> {
    codec::encode(txs)
}

pub fn encode_consensus(message: &ConsensusGossip) -> Vec<u8> {
    codec::encode(message)
}

/// What gossip validation reads of the committed chain. Blocking calls.
pub trait LedgerView: Send + Sync + 'static {
    /// Height of the last committed block.
    fn head_height(&self) -> u64;
    /// The committed account (the default when absent); `None` when it cannot be read, in which
    /// case the state checks are skipped and the signature decides.
    fn account(&self, address: &Address) -> Option<Account>;
}

/// The local admission policy the pre-checks apply (the mempool's: `min_fee`, `nonce_window`).
#[derive(Debug, Clone, Copy)]
pub struct TxPolicy {
    pub min_fee: u64,
    pub nonce_window: u64,
}

/// Everything the gossip validator needs.
pub struct GossipChecks {
    pub chain_id: ChainId,
    pub validators: Arc<ValidatorSet>,
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<dyn LedgerView>,
    pub policy: TxPolicy,
    /// Unix seconds now (the wall clock; a parameter so tests can set it).
    pub now_secs: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for GossipChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipChecks")
            .field("chain_id", &self.chain_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The wall clock in Unix seconds.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct State {
    chain_id: ChainId,
    validators: IdentifiedSet,
    metrics: Arc<Metrics>,
    ledger: Arc<dyn LedgerView>,
    policy: TxPolicy,
    now_secs: Arc<dyn Fn() -> u64 + Send + Sync>,
    seen_txs: Cache<Hash, ()>,
    /// (sender, nonce) of verified transactions -> the highest fee verified for it: a conflicting
    /// transaction must pay more to be worth a check (the mempool's replacement rule).
    seen_nonces: Cache<(Address, ledger_core::Nonce), u64>,
    seen_consensus: Cache<Hash, SeenMessage>,
}

/// The gossip validator of a node.
pub fn validator(checks: GossipChecks) -> Validator<Gossiped> {
    let state = Arc::new(State {
        chain_id: checks.chain_id,
        // The set's id is hashed once, not per message.
        validators: IdentifiedSet::new(checks.validators.as_ref().clone()),
        metrics: checks.metrics,
        ledger: checks.ledger,
        policy: checks.policy,
        now_secs: checks.now_secs,
        seen_txs: Cache::new(SEEN_TXS),
        seen_nonces: Cache::new(SEEN_TXS),
        seen_consensus: Cache::new(SEEN_CONSENSUS),
    });
    Arc::new(move |topic, data| match topic {
        Topic::Transactions => state.validate_txs(data),
        Topic::Consensus => state.validate_consensus(data),
    })
}

/// One sender's part of a batch being checked: its committed account (`None` when unreadable),
/// what its candidates so far cost, and the fee of each nonce seen so far.
struct BatchSender {
    account: Option<Account>,
    spent: ledger_core::Amount,
    fees: HashMap<ledger_core::Nonce, u64>,
}

/// Where a transaction of a batch stands after the checks that need no signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precheck {
    /// Worth a signature check.
    Candidate,
    /// Verified here before.
    Known,
    /// Its nonce is below the account's: included already, or never includable.
    Committed,
    /// The sender's committed balance does not cover amount + fee.
    Unfunded,
    /// Below this node's `min_fee`.
    BelowFeeFloor,
    /// Above the account's nonce + this node's `nonce_window`.
    BeyondNonceWindow,
    /// Another transaction of the sender with this nonce and at least this fee was verified here
    /// before (a conflict, not necessarily the relayer's fault).
    NonceTaken,
    /// Earlier in the same batch is a transaction of the sender with this nonce and at least this
    /// fee: an honest relayer's pool never holds both.
    DuplicateNonce,
}

impl Precheck {
    fn label(self) -> &'static str {
        match self {
            Precheck::Candidate => "candidate",
            Precheck::Known => "known",
            Precheck::Committed => "committed",
            Precheck::Unfunded => "unfunded",
            Precheck::BelowFeeFloor => "below_fee_floor",
            Precheck::BeyondNonceWindow => "beyond_nonce_window",
            Precheck::NonceTaken => "nonce_taken",
            Precheck::DuplicateNonce => "duplicate_nonce",
        }
    }

    /// Whether an honest relayer's batch is (almost) never like this: it admitted every
    /// transaction of the batch against its state, which is ours give or take a block.
    fn suspect(self) -> bool {
        matches!(self, Precheck::Unfunded | Precheck::DuplicateNonce)
    }
}

impl State {
    fn validate_txs(&self, data: &[u8]) -> Verdict<Gossiped> {
        let Ok(txs) = codec::decode_bounded::<Vec<SignedTransaction>>(data, MAX_GOSSIP_BYTES)
        else {
            return Verdict::Reject("undecodable");
        };
        if txs.is_empty() || txs.len() > MAX_TXS_PER_GOSSIP {
            return Verdict::Reject("batch_size");
        }
        let total = txs.len();
        let mut senders: HashMap<Address, BatchSender> = HashMap::new();
        let mut candidates = Vec::with_capacity(total);
        let mut suspect = 0usize;
        for tx in txs {
            let Ok(tx) = tx.precheck(&self.chain_id) else {
                return Verdict::Reject("invalid_tx");
            };
            let verdict = if self.seen_txs.contains_key(&tx.hash()) {
                Precheck::Known
            } else {
                let sender = senders.entry(tx.sender()).or_insert_with(|| BatchSender {
                    account: self.ledger.account(&tx.sender()),
                    spent: ledger_core::Amount(0),
                    fees: HashMap::new(),
                });
                self.precheck(&tx, sender)
            };
            match verdict {
                Precheck::Candidate => candidates.push(tx),
                other => {
                    suspect += usize::from(other.suspect());
                    self.metrics.gossip_tx_skipped(other.label());
                }
            }
        }
        // Honest nodes relay only what they admitted: a batch that is mostly unfundable (its
        // senders cannot pay, or it repeats their nonces) was made to waste our time, not
        // delayed by a block.
        if suspect * 2 > total {
            return Verdict::Reject("unfundable");
        }
        if candidates.is_empty() {
            return Verdict::Useless("no_new_txs");
        }
        let chain = &self.chain_id;
        self.metrics
            .gossip_signature_checks(Topic::Transactions.label(), candidates.len() as u64);
        let verified: Result<Vec<VerifiedTransaction>, _> = self.metrics.time_signatures(|| {
            ledger_core::tx::verify_signatures(candidates, chain)
                .into_iter()
                .collect()
        });
        match verified {
            Ok(v) => {
                for tx in &v {
                    self.seen_txs.insert(tx.hash(), ());
                    let fee = tx.tx().fee.0;
                    self.seen_nonces
                        .entry((tx.sender(), tx.tx().nonce))
                        .or_insert_with_if(|| fee, |old| *old < fee);
                }
                Verdict::Accept(Gossiped::Transactions(v))
            }
            Err(_) => Verdict::Reject("invalid_tx"),
        }
    }

    fn precheck(&self, tx: &ledger_core::Prechecked, sender: &mut BatchSender) -> Precheck {
        let t = tx.tx();
        // Earlier in the batch with at least this fee (a replacement pays more).
        match sender.fees.get(&t.nonce) {
            Some(fee) if *fee >= t.fee.0 => return Precheck::DuplicateNonce,
            _ => {
                sender.fees.insert(t.nonce, t.fee.0);
            }
        }
        if self
            .seen_nonces
            .get(&(tx.sender(), t.nonce))
            .is_some_and(|fee| fee >= t.fee.0)
        {
            return Precheck::NonceTaken;
        }
        let Some(account) = sender.account else {
            return Precheck::Candidate;
        };
        if t.nonce < account.nonce {
            return Precheck::Committed;
        }
        // What the sender's transactions of this batch cost together must fit its balance.
        // `check_stateless` already refused an overflowing cost.
        match t
            .total_cost()
            .ok()
            .and_then(|cost| cost.checked_add(sender.spent))
        {
            Some(total) if total <= account.balance => sender.spent = total,
            _ => return Precheck::Unfunded,
        }
        if t.fee.0 < self.policy.min_fee {
            return Precheck::BelowFeeFloor;
        }
        if t.nonce.0 > account.nonce.0.saturating_add(self.policy.nonce_window) {
            return Precheck::BeyondNonceWindow;
        }
        Precheck::Candidate
    }

    fn validate_consensus(&self, data: &[u8]) -> Verdict<Gossiped> {
        let (inner, resend) = match data.first() {
            Some(&TAG_MESSAGE) => (&data[1..], false),
            Some(&TAG_RESEND) => {
                let Some(secs) = data.get(1..9) else {
                    return Verdict::Reject("undecodable");
                };
                let mut le = [0u8; 8];
                le.copy_from_slice(secs);
                let sent = u64::from_le_bytes(le);
                if sent.abs_diff((self.now_secs)()) > RESEND_WINDOW_SECS {
                    return Verdict::Useless("resend_window");
                }
                (&data[9..], true)
            }
            Some(&TAG_EVIDENCE) => return self.validate_evidence(data),
            _ => return Verdict::Reject("undecodable"),
        };
        let Some(height) = peek_height(inner) else {
            return Verdict::Reject("undecodable");
        };
        let head = self.ledger.head_height();
        if height <= head {
            // A resend of a committed height comes from a node a block or two behind, which
            // re-broadcasts every tick until it catches up: not held against the relayer unless
            // it delivers the same message more often than that.
            return if resend {
                Verdict::Resent("stale_resend", Hash::digest(inner))
            } else {
                Verdict::Useless("stale")
            };
        }
        // The machine keeps messages of its height and the next; beyond, the node syncs.
        if height > head.saturating_add(2) {
            return Verdict::Ignore("future");
        }
        let id = Hash::digest(inner);
        let now = (self.now_secs)();
        // Claimed before the signature check, so that copies arriving together are checked once;
        // claimed again once the last check is a second old (see `REVERIFY_AFTER_SECS`).
        let claim = self.seen_consensus.entry(id).or_insert_with_if(
            || SeenMessage {
                at_secs: now,
                valid: true,
            },
            |old| old.valid && now >= old.at_secs.saturating_add(REVERIFY_AFTER_SECS),
        );
        if !claim.is_fresh() {
            let seen = claim.into_value();
            if !seen.valid {
                return Verdict::Reject("bad_signature");
            }
            // A resend of a message we have: the sender could not know (it is how retransmission
            // reaches nodes that missed the first copy). A first publication we have already is
            // not something an honest peer sends twice.
            return if resend {
                Verdict::Resent("known", id)
            } else {
                Verdict::Useless("known")
            };
        }
        let message = match codec::decode_bounded::<ConsensusMessage>(inner, MAX_GOSSIP_BYTES) {
            Ok(m) => m,
            // A proposal whose transactions or previous commit are not the ones its (signed)
            // header commits to: a forgery by the proposer or by a relayer. Never relayed, never
            // seen by the machine, and the sender is penalised like for any invalid message.
            Err(codec::DecodeError::BlockBody(e)) => {
                tracing::debug!(error = %e, "proposal body does not match its header");
                self.mark_invalid(id, now);
                return Verdict::Reject("body_mismatch");
            }
            Err(_) => {
                self.mark_invalid(id, now);
                return Verdict::Reject("undecodable");
            }
        };
        self.metrics
            .gossip_signature_checks(Topic::Consensus.label(), 1);
        match self
            .metrics
            .time_signatures(|| message.verified_in(&self.chain_id, &self.validators))
        {
            // Checked once, here: the machine trusts it for this validator set.
            Ok(v) => Verdict::Accept(Gossiped::Consensus(v)),
            // A bad signature or a signer outside the validator set.
            Err(_) => {
                self.mark_invalid(id, now);
                Verdict::Reject("bad_signature")
            }
        }
    }

    /// Remembers that the message with this id failed, so copies are refused without a check.
    fn mark_invalid(&self, id: Hash, now: u64) {
        self.seen_consensus.insert(
            id,
            SeenMessage {
                at_secs: now,
                valid: false,
            },
        );
    }

    fn validate_evidence(&self, data: &[u8]) -> Verdict<Gossiped> {
        let Ok(ConsensusGossip::Evidence(e)) =
            codec::decode_bounded::<ConsensusGossip>(data, MAX_GOSSIP_BYTES)
        else {
            return Verdict::Reject("undecodable");
        };
        self.metrics
            .gossip_signature_checks(Topic::Consensus.label(), 2);
        if self
            .metrics
            .time_signatures(|| e.verify(&self.chain_id, self.validators.set()).is_ok())
        {
            tracing::warn!(?e, "equivocation evidence received");
            // Logged; the driver has nothing to do with it, and it is not relayed.
            Verdict::Ignore("evidence")
        } else {
            Verdict::Reject("invalid_evidence")
        }
    }
}

/// The height of an encoded [`ConsensusMessage`], read without decoding it: after the message's
/// tag, a proposal starts with its height; a vote with its kind's tag, then its height (borsh: u8
/// tags, u64 little-endian). Pinned against the encoding by a test.
fn peek_height(message: &[u8]) -> Option<u64> {
    let at = match message.first()? {
        0 => 1,
        1 => 2,
        _ => return None,
    };
    let bytes = message.get(at..at + 8)?;
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    Some(u64::from_le_bytes(le))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    use ledger_core::consensus::Proposal;
    use ledger_core::merkle::merkle_root;
    use ledger_core::{
        Amount, Block, BlockHeader, Height, Keypair, Nonce, Round, SignedVote, TimestampMs,
        Transaction, Validator as V, Vote, VoteKind,
    };

    /// The committed chain as the validator sees it: a head height and funded dev accounts 0-3.
    struct FakeLedger {
        head: AtomicU64,
    }

    impl LedgerView for FakeLedger {
        fn head_height(&self) -> u64 {
            self.head.load(Ordering::SeqCst)
        }
        fn account(&self, address: &Address) -> Option<Account> {
            let funded = (0..4).any(|i| Keypair::dev("account", i).address() == *address);
            Some(Account {
                balance: Amount(if funded { 1_000_000 } else { 0 }),
                nonce: Nonce(0),
            })
        }
    }

    const NOW_SECS: u64 = 1_000_000;

    struct Setup {
        chain: ChainId,
        validators: Arc<ValidatorSet>,
        ledger: Arc<FakeLedger>,
        metrics: Arc<Metrics>,
        v: Validator<Gossiped>,
    }

    fn setup() -> Setup {
        let k = Keypair::dev("validator", 0);
        let set = ValidatorSet::new(vec![V {
            address: k.address(),
            public_key: k.public(),
            power: 1,
        }])
        .expect("valid set");
        let chain = ChainId::new("wire-test").expect("valid");
        let validators = Arc::new(set);
        let ledger = Arc::new(FakeLedger {
            head: AtomicU64::new(0),
        });
        let metrics = Arc::new(Metrics::new());
        let v = validator(GossipChecks {
            chain_id: chain.clone(),
            validators: validators.clone(),
            metrics: metrics.clone(),
            ledger: ledger.clone(),
            policy: TxPolicy {
                min_fee: 1,
                nonce_window: 64,
            },
            now_secs: Arc::new(|| NOW_SECS),
        });
        Setup {
            chain,
            validators,
            ledger,
            metrics,
            v,
        }
    }

    impl Setup {
        fn signature_checks(&self, topic: &str) -> f64 {
            self.metrics
                .sample(&format!(
                    "ledger_gossip_signature_checks_total{{topic=\"{topic}\"}}"
                ))
                .unwrap_or(0.0)
        }
    }

    fn transfer(chain: &ChainId, from: &str, i: u32, nonce: u64, fee: u64) -> SignedTransaction {
        let k = Keypair::dev(from, i);
        Transaction {
            chain_id: chain.clone(),
            from: k.public(),
            to: Keypair::dev("account", 9).address(),
            amount: Amount(5),
            fee: Amount(fee),
            nonce: Nonce(nonce),
            memo: vec![],
        }
        .sign(&k)
    }

    fn tx(chain: &ChainId, nonce: u64) -> SignedTransaction {
        transfer(chain, "account", 0, nonce, 1)
    }

    fn vote(chain: &ChainId, height: u64) -> ConsensusMessage {
        let k = Keypair::dev("validator", 0);
        ConsensusMessage::Vote(
            Vote {
                kind: VoteKind::Prevote,
                height: Height(height),
                round: Round(0),
                block_hash: None,
                validator: k.address(),
            }
            .sign(chain, &k),
        )
    }

    fn message(m: &ConsensusMessage) -> Vec<u8> {
        encode_consensus(&ConsensusGossip::Message(m.clone()))
    }

    fn resend(m: &ConsensusMessage, sent_at_secs: u64) -> Vec<u8> {
        encode_consensus(&ConsensusGossip::Resend {
            sent_at_secs,
            message: m.clone(),
        })
    }

    #[test]
    fn a_valid_batch_is_accepted_and_one_bad_signature_rejects_it() {
        let s = setup();
        let mut txs: Vec<SignedTransaction> = (0..10).map(|n| tx(&s.chain, n)).collect();
        assert!(
            matches!((s.v)(Topic::Transactions, &encode_txs(&txs)), Verdict::Accept(Gossiped::Transactions(t)) if t.len() == 10)
        );
        let mut fresh: Vec<SignedTransaction> = (10..20).map(|n| tx(&s.chain, n)).collect();
        fresh[7].signature.0[3] ^= 1;
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&fresh)),
            Verdict::Reject("invalid_tx")
        ));
        // One observation per batch; one check per transaction.
        assert_eq!(
            s.metrics.sample("ledger_signature_verify_seconds_count"),
            Some(2.0)
        );
        assert_eq!(s.signature_checks("txs"), 20.0);
        // A badly signed transaction is refused even among known ones.
        let mut bad = tx(&s.chain, 30);
        bad.signature.0[3] ^= 1;
        txs.truncate(3);
        txs.push(bad);
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&txs)),
            Verdict::Reject("invalid_tx")
        ));
        // A conflicting transaction (a nonce verified before, no higher fee) is not checked at
        // all: a user's double spend, relayed in good faith, is set aside without blame.
        let mut conflicting = tx(&s.chain, 5);
        conflicting.tx.amount = Amount(6);
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&[conflicting])),
            Verdict::Useless("no_new_txs")
        ));
        assert_eq!(s.signature_checks("txs"), 21.0);
    }

    /// The flood of the issue: 2,000 validly signed transfers from keys that own nothing, with
    /// zero fee and any nonce, are refused on the committed state alone: no signature is checked.
    #[test]
    fn a_batch_from_unfunded_senders_is_rejected_before_any_signature_check() {
        let s = setup();
        let flood: Vec<SignedTransaction> = (0..2_000u32)
            .map(|i| transfer(&s.chain, "nobody", i, u64::from(i) * 7, 0))
            .collect();
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&flood)),
            Verdict::Reject("unfundable")
        ));
        assert_eq!(s.signature_checks("txs"), 0.0);
    }

    #[test]
    fn below_the_fee_floor_beyond_the_nonce_window_or_committed_is_skipped_unverified() {
        let s = setup();
        let cheap = transfer(&s.chain, "account", 1, 0, 0);
        let far = transfer(&s.chain, "account", 2, 65, 1);
        let good = transfer(&s.chain, "account", 3, 0, 1);
        match (s.v)(
            Topic::Transactions,
            &encode_txs(&[cheap.clone(), far.clone(), good]),
        ) {
            Verdict::Accept(Gossiped::Transactions(t)) => assert_eq!(t.len(), 1),
            other => panic!("expected the one good transfer: {other:?}"),
        }
        assert_eq!(s.signature_checks("txs"), 1.0);
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&[cheap, far])),
            Verdict::Useless("no_new_txs")
        ));
        assert_eq!(s.signature_checks("txs"), 1.0);
        for reason in ["below_fee_floor", "beyond_nonce_window"] {
            assert_eq!(
                s.metrics.sample(&format!(
                    "ledger_gossip_txs_skipped_total{{reason=\"{reason}\"}}"
                )),
                Some(2.0),
                "{reason}"
            );
        }
    }

    /// Repacking transactions already verified into a new batch (new bytes, so a new gossip id)
    /// costs no signature check: the batch has nothing new.
    #[test]
    fn known_transactions_in_a_new_batch_are_not_verified_again() {
        let s = setup();
        let txs: Vec<SignedTransaction> = (0..50).map(|n| tx(&s.chain, n)).collect();
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&txs)),
            Verdict::Accept(_)
        ));
        let mut repacked = txs.clone();
        repacked.reverse();
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&repacked)),
            Verdict::Useless("no_new_txs")
        ));
        assert_eq!(s.signature_checks("txs"), 50.0);
    }

    #[test]
    fn garbage_and_empty_batches_are_rejected_on_both_topics() {
        let s = setup();
        for data in [vec![], vec![0xFF; 40], vec![1, 2, 3]] {
            assert!(matches!(
                (s.v)(Topic::Transactions, &data),
                Verdict::Reject("undecodable")
            ));
            assert!(matches!(
                (s.v)(Topic::Consensus, &data),
                Verdict::Reject("undecodable")
            ));
        }
        assert!(matches!(
            (s.v)(Topic::Transactions, &encode_txs(&[])),
            Verdict::Reject("batch_size")
        ));
    }

    /// The height is read at a fixed place before decoding; this pins that place to the encoding.
    #[test]
    fn peek_height_reads_the_height_of_proposals_and_votes() {
        let s = setup();
        let v = vote(&s.chain, 77);
        assert_eq!(peek_height(&codec::encode(&v)), Some(77));
        let p = proposal(&s.chain, 1, 0).0;
        assert_eq!(peek_height(&codec::encode(&p)), Some(1));
        assert_eq!(peek_height(&[]), None);
        assert_eq!(peek_height(&[2, 0, 0]), None);
    }

    #[test]
    fn stale_and_far_future_consensus_messages_cost_no_signature_check() {
        let s = setup();
        s.ledger.head.store(10, Ordering::SeqCst);
        assert!(matches!(
            (s.v)(Topic::Consensus, &message(&vote(&s.chain, 10))),
            Verdict::Useless("stale")
        ));
        assert!(matches!(
            (s.v)(Topic::Consensus, &message(&vote(&s.chain, 13))),
            Verdict::Ignore("future")
        ));
        // Even with a broken signature: staleness is decided first.
        let mut bad = vote(&s.chain, 3);
        if let ConsensusMessage::Vote(v) = &mut bad {
            v.signature.0[0] ^= 1;
        }
        assert!(matches!(
            (s.v)(Topic::Consensus, &message(&bad)),
            Verdict::Useless("stale")
        ));
        assert_eq!(s.signature_checks("consensus"), 0.0);
        for h in [11, 12] {
            assert!(matches!(
                (s.v)(Topic::Consensus, &message(&vote(&s.chain, h))),
                Verdict::Accept(Gossiped::Consensus(_))
            ));
        }
        assert_eq!(s.signature_checks("consensus"), 2.0);
    }

    #[test]
    fn a_resent_message_is_verified_once_and_only_within_the_window() {
        let s = setup();
        let v = vote(&s.chain, 1);
        assert!(matches!(
            (s.v)(Topic::Consensus, &resend(&v, NOW_SECS - 3)),
            Verdict::Accept(_)
        ));
        // Another copy with another second: new bytes, same message, no second check.
        assert!(matches!(
            (s.v)(Topic::Consensus, &resend(&v, NOW_SECS)),
            Verdict::Resent("known", _)
        ));
        // The first publication after a resend: a peer that knew it should not send it again.
        assert!(matches!(
            (s.v)(Topic::Consensus, &message(&v)),
            Verdict::Useless("known")
        ));
        assert_eq!(s.signature_checks("consensus"), 1.0);
        for sent in [
            NOW_SECS - RESEND_WINDOW_SECS - 1,
            NOW_SECS + RESEND_WINDOW_SECS + 1,
        ] {
            assert!(matches!(
                (s.v)(Topic::Consensus, &resend(&vote(&s.chain, 2), sent)),
                Verdict::Useless("resend_window")
            ));
        }
        assert!(matches!(
            (s.v)(
                Topic::Consensus,
                &resend(&vote(&s.chain, 2), NOW_SECS + RESEND_WINDOW_SECS)
            ),
            Verdict::Accept(_)
        ));
        // A resend too short to hold its second.
        assert!(matches!(
            (s.v)(Topic::Consensus, &[TAG_RESEND, 1, 2]),
            Verdict::Reject("undecodable")
        ));
        let _ = &s.validators;
    }

    /// A real proposal at `height` carrying two transfers, and its unsealed block.
    fn proposal(chain: &ChainId, height: u64, first_nonce: u64) -> (ConsensusMessage, Block) {
        let key = Keypair::dev("validator", 0);
        let txs = vec![tx(chain, first_nonce), tx(chain, first_nonce + 1)];
        let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        let block = Block {
            header: BlockHeader {
                chain_id: chain.clone(),
                height: Height(height),
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
            height: Height(height),
            round: Round(0),
            pol_round: None,
            proposer: key.address(),
            block: sealed,
        }
        .sign(chain, &key);
        (ConsensusMessage::Proposal(real), block)
    }

    /// A gossiped proposal whose body is not its header's (a relayer added a transaction) is
    /// rejected as `body_mismatch`, so gossipsub penalises the sender and the machine never sees
    /// it; the real proposal, arriving after it, is accepted (its bytes, and so its gossip message
    /// id, differ from the forgery's) and handed on verified.
    #[test]
    fn a_proposal_with_a_swapped_body_is_rejected_and_the_real_one_still_accepted() {
        let s = setup();
        let (real, _) = proposal(&s.chain, 1, 0);
        let ConsensusMessage::Proposal(real) = real else {
            unreachable!("made as a proposal")
        };
        // The real header and signature around a body with one transfer more.
        let forged = crate::rogue::tampered_proposal(&real, tx(&s.chain, 2), Round(0), Height(1));
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
        assert!(matches!(
            (s.v)(Topic::Consensus, &forged),
            Verdict::Reject("body_mismatch")
        ));
        let real_bytes = encode_consensus(&ConsensusGossip::Message(ConsensusMessage::Proposal(
            real.clone(),
        )));
        assert_ne!(real_bytes, forged);
        match (s.v)(Topic::Consensus, &real_bytes) {
            Verdict::Accept(Gossiped::Consensus(m)) => {
                assert_eq!(m.message(), &ConsensusMessage::Proposal(real));
            }
            other => panic!("the real proposal was not accepted: {other:?}"),
        }
    }

    #[test]
    fn a_vote_signed_by_someone_else_is_rejected() {
        let s = setup();
        let mut v = vote(&s.chain, 1);
        if let ConsensusMessage::Vote(SignedVote { signature, .. }) = &mut v {
            *signature = Keypair::dev("validator", 5).sign(
                ledger_core::crypto::Domain::Vote,
                &s.chain,
                b"something else",
            );
        }
        assert!(matches!(
            (s.v)(Topic::Consensus, &message(&v)),
            Verdict::Reject("bad_signature")
        ));
    }

    // ---------------------------------------------------------------------------------------------
    // Adversarial review (ADR 0010)
    // ---------------------------------------------------------------------------------------------

    /// The flood with one funded key instead of 2,000 empty ones: 2,000 transfers from
    /// one sender, all with nonce 0 (only one of them can ever be included), each affordable on
    /// its own. The pre-checks compare every transfer with the committed balance separately and
    /// never look at the other transfers of the batch, so all 2,000 signatures are checked and the
    /// batch is accepted, hence relayed by every node. An honest node relays what its mempool
    /// admitted: at most one transfer per sender and nonce (and never more than the nonce window).
    /// The attacker repeats with new amounts at no cost: nothing is ever committed or charged.
    #[test]
    fn one_funded_sender_with_two_thousand_same_nonce_transfers_is_not_verified_and_relayed_in_full()
     {
        let s = setup();
        let k = Keypair::dev("account", 0);
        let batch: Vec<SignedTransaction> = (0..2_000u64)
            .map(|i| {
                Transaction {
                    chain_id: s.chain.clone(),
                    from: k.public(),
                    to: Keypair::dev("account", 9).address(),
                    amount: Amount(1 + i),
                    fee: Amount(1),
                    nonce: Nonce(0),
                    memo: vec![],
                }
                .sign(&k)
            })
            .collect();
        let verdict = (s.v)(Topic::Transactions, &encode_txs(&batch));
        let checks = s.signature_checks("txs");
        assert!(
            !matches!(verdict, Verdict::Accept(_)) && checks <= 65.0,
            "a batch of 2,000 conflicting transfers from one sender was {} after {checks} \
             signature checks (at most one per nonce of the window, 65, could be admitted)",
            match verdict {
                Verdict::Accept(_) => "accepted (relayed)",
                Verdict::Ignore(r)
                | Verdict::Useless(r)
                | Verdict::Resent(r, _)
                | Verdict::Reject(r) => r,
            }
        );
    }

    /// The consensus machine drops verified messages it cannot use yet (rounds beyond
    /// `MAX_FUTURE_ROUNDS`, more than `NEXT_HEIGHT_MSGS_PER_VALIDATOR` for the next height) and
    /// relies on the signer's re-broadcast on `Tick` to get them again (ledger-core
    /// consensus/mod.rs: "a gossip layer that drops repeated messages as duplicates must let these
    /// through (e.g. by not deduplicating consensus messages older than a tick)"). Here the
    /// seen cache has no age: a vote of round 5 delivered while this node was in round 0 (and so
    /// dropped by its machine) is answered `Resent("known", _)` on every resend, minutes later, and
    /// never reaches the machine again.
    #[test]
    fn a_resend_long_after_the_first_copy_is_delivered_to_the_machine_again() {
        let k = Keypair::dev("validator", 0);
        let set = ValidatorSet::new(vec![V {
            address: k.address(),
            public_key: k.public(),
            power: 1,
        }])
        .expect("valid set");
        let chain = ChainId::new("wire-test").expect("valid");
        let clock = Arc::new(AtomicU64::new(NOW_SECS));
        let now = clock.clone();
        let v = validator(GossipChecks {
            chain_id: chain.clone(),
            validators: Arc::new(set),
            metrics: Arc::new(Metrics::new()),
            ledger: Arc::new(FakeLedger {
                head: AtomicU64::new(0),
            }),
            policy: TxPolicy {
                min_fee: 1,
                nonce_window: 64,
            },
            now_secs: Arc::new(move || now.load(Ordering::SeqCst)),
        });
        let round5 = ConsensusMessage::Vote(
            Vote {
                kind: VoteKind::Prevote,
                height: Height(1),
                round: Round(5),
                block_hash: None,
                validator: k.address(),
            }
            .sign(&chain, &k),
        );
        assert!(matches!(
            v(Topic::Consensus, &message(&round5)),
            Verdict::Accept(_)
        ));
        // The machine (round 0) dropped it. Minutes later, the node has reached round 5 and the
        // signer, stuck there, re-broadcasts its vote.
        clock.fetch_add(300, Ordering::SeqCst);
        let verdict = v(Topic::Consensus, &resend(&round5, NOW_SECS + 300));
        assert!(
            matches!(verdict, Verdict::Accept(_)),
            "a re-broadcast five minutes after the first copy was {verdict:?}: the machine never \
             gets the vote it dropped"
        );
    }

    /// "A message verified before is not verified again", and a resend of a known message is not
    /// relayed. The seen cache is filled only after the signature check, and validation runs in
    /// parallel (up to 256 consensus messages), so resends of one vote stamped with different
    /// seconds (61 distinct ones fit the window) arriving together are each verified, each
    /// accepted and each relayed, on every node.
    #[test]
    fn concurrent_resends_of_one_vote_are_verified_and_relayed_once() {
        let s = setup();
        let accepted = std::sync::atomic::AtomicUsize::new(0);
        let attempts = 20u64;
        for h in 1..=attempts {
            // Heights 1 and 2 are current; fresh votes by kind/round would do as well.
            let v = vote(&s.chain, 1 + h % 2);
            let v = match v {
                ConsensusMessage::Vote(mut sv) => {
                    sv.vote.round = Round(h as u32);
                    sv.vote.validator = Keypair::dev("validator", 0).address();
                    ConsensusMessage::Vote(sv.vote.sign(&s.chain, &Keypair::dev("validator", 0)))
                }
                other => other,
            };
            let copies: Vec<Vec<u8>> = (0..16).map(|i| resend(&v, NOW_SECS - i)).collect();
            let barrier = std::sync::Barrier::new(copies.len());
            std::thread::scope(|scope| {
                for data in &copies {
                    let (validate, barrier, accepted) = (&s.v, &barrier, &accepted);
                    scope.spawn(move || {
                        barrier.wait();
                        if matches!(validate(Topic::Consensus, data), Verdict::Accept(_)) {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
        }
        let accepted = accepted.load(Ordering::SeqCst) as u64;
        let checks = s.signature_checks("consensus");
        assert!(
            accepted == attempts && checks == attempts as f64,
            "{attempts} votes, each arriving as 16 resends at once: {accepted} accepted \
             (relayed), {checks} signature checks"
        );
    }

    /// A faulty validator signs a vote for every round of a height and hands two honest nodes
    /// differently stamped copies of each: P relays its copies to X, which has them already. P
    /// did nothing but relay what it verified, so X must not hold it against P, however many
    /// distinct messages there are (found by review: a budget per peer would block P).
    #[test]
    fn an_honest_relayer_of_many_distinct_known_messages_is_never_charged() {
        let (p, x) = (setup(), setup());
        let key = Keypair::dev("validator", 0);
        let mut redeliveries = crate::network::Redeliveries::new();
        let p_id = libp2p::PeerId::random();
        let t0 = std::time::Instant::now();
        for r in 0..1_000u32 {
            let m = ConsensusMessage::Vote(
                Vote {
                    kind: VoteKind::Prevote,
                    height: Height(1),
                    round: Round(r),
                    block_hash: None,
                    validator: key.address(),
                }
                .sign(&p.chain, &key),
            );
            assert!(matches!(
                (x.v)(Topic::Consensus, &resend(&m, NOW_SECS)),
                Verdict::Accept(_)
            ));
            let relayed = resend(&m, NOW_SECS - 1);
            assert!(matches!(
                (p.v)(Topic::Consensus, &relayed),
                Verdict::Accept(_)
            ));
            let Verdict::Resent("known", id) = (x.v)(Topic::Consensus, &relayed) else {
                panic!("round {r}: the relayed copy is not a known resend");
            };
            let now = t0 + std::time::Duration::from_millis(u64::from(r));
            assert!(
                !redeliveries.beyond_honest(p_id, id, now),
                "round {r}: the honest relayer was charged"
            );
        }
    }
}
