//! The engine at its limits and at its decoding edges, from an adversarial review of "One block,
//! one body" (ADR 0007): a validation request is never forgotten, whatever the number waiting, and
//! no decoding path (WAL, JSON) yields a block whose body is not its header's.

use std::collections::HashSet;
use std::sync::Arc;

use ledger_core::consensus::{ConsensusMessage, Proposal, SignedProposal, WalEntry};
use ledger_core::engine::{Effect, Engine, EngineConfig, Event, Head, Now};
use ledger_core::genesis::Genesis;
use ledger_core::validation::{ParentBlock, build_block};
use ledger_core::{
    Amount, Hash, Height, Keypair, Nonce, Round, SealedBlock, TimestampMs, Transaction,
    VerifiedTransaction, Vote, VoteKind,
};

fn transfer(genesis: &Genesis, nonce: u64, amount: u64) -> VerifiedTransaction {
    let key = Keypair::dev("account", 0);
    Transaction {
        chain_id: genesis.chain_id().clone(),
        from: key.public(),
        to: Keypair::dev("account", 1).address(),
        amount: Amount(amount),
        fee: Amount(1),
        nonce: Nonce(nonce),
        memo: Vec::new(),
    }
    .sign(&key)
    .verify(genesis.chain_id())
    .expect("valid transfer")
}

struct Net4 {
    genesis: Arc<Genesis>,
    keys: Vec<Keypair>,
    me: usize,
    engine: Engine,
    t0: u64,
}

impl Net4 {
    fn new() -> Net4 {
        let genesis = Arc::new(Genesis::dev("engine-limits", 4, 4).expect("valid genesis"));
        let keys: Vec<Keypair> = (0..4).map(|i| Keypair::dev("validator", i)).collect();
        let me = 0;
        let engine = Engine::new(
            EngineConfig {
                genesis: genesis.clone(),
                key: Some(keys[me].clone()),
            },
            genesis.initial_state(),
            Head::genesis(&genesis),
            Vec::new(),
            0,
        )
        .expect("engine");
        let t0 = genesis.genesis_time_ms().0 + 1000;
        Net4 {
            genesis,
            keys,
            me,
            engine,
            t0,
        }
    }

    fn now(&self, ms: u64) -> Now {
        Now {
            wall: TimestampMs(self.t0 + ms),
            mono_ms: ms,
        }
    }

    fn handle(&mut self, ms: u64, event: Event) -> Vec<Effect> {
        let now = self.now(ms);
        self.engine.handle(now, event).expect("no fatal error")
    }

    fn key_of(&self, height: u64, round: u32) -> Keypair {
        let a = self
            .engine
            .machine()
            .proposer(Height(height), Round(round))
            .expect("started");
        self.keys
            .iter()
            .find(|k| k.address() == a)
            .expect("a key")
            .clone()
    }

    fn others(&self) -> Vec<Keypair> {
        let me = self.keys[self.me].address();
        self.keys
            .iter()
            .filter(|k| k.address() != me)
            .cloned()
            .collect()
    }

    /// A valid height-1 block built by `proposer` with `txs`, stamped `ts` after t0.
    fn block(&self, proposer: &Keypair, txs: &[VerifiedTransaction], ts: u64) -> SealedBlock {
        build_block(
            self.genesis.chain_context(),
            &ParentBlock::genesis(&self.genesis),
            &mut self.genesis.initial_state(),
            txs,
            proposer.address(),
            TimestampMs(self.t0 + ts),
            None,
        )
        .expect("builds")
        .block
    }

    fn proposal(
        &self,
        key: &Keypair,
        round: u32,
        pol: Option<u32>,
        block: &SealedBlock,
    ) -> SignedProposal {
        Proposal {
            height: Height(1),
            round: Round(round),
            pol_round: pol.map(Round),
            proposer: key.address(),
            block: block.clone(),
        }
        .sign(self.genesis.chain_id(), key)
    }

    fn vote(&self, key: &Keypair, kind: VoteKind, round: u32, value: Option<Hash>) -> Event {
        Event::Message(ConsensusMessage::Vote(
            Vote {
                kind,
                height: Height(1),
                round: Round(round),
                block_hash: value,
                validator: key.address(),
            }
            .sign(self.genesis.chain_id(), key),
        ))
    }
}

fn lookups(effects: &[Effect]) -> Vec<Hash> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::LookupVerified { block_hash, .. } => Some(*block_hash),
            _ => None,
        })
        .collect()
}

fn commits(effects: &[Effect]) -> Vec<Hash> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Commit(c) => Some(c.block.hash()),
            _ => None,
        })
        .collect()
}

/// The machine asks for a block's validation once per height, so an engine that drops a waiting
/// request leaves that block unvalidated (never prevoted, never decided) for the whole height.
/// Found: the cap evicted the request with the smallest hash, not the oldest. Now a request past
/// the cap is validated at once (every signature checked).
///
/// Here: a byzantine proposer's junk proposals of past rounds wait for their lookup (a caller that
/// answers lookups late); then the honest proposal of the current round arrives with a small hash,
/// and one more proposal after it. Every lookup is then answered and 2f+1 precommits for the honest
/// block arrive: it must be decided.
#[test]
fn n4_validation_requests_past_the_cap_are_validated_at_once_not_forgotten() {
    let mut n = Net4::new();
    n.handle(0, Event::Start);
    let others = n.others();
    let mut pending: Vec<Hash> = Vec::new();
    let mut ts = 10u64;
    let mut round = 0u32;
    // Junk: two proposals per round (the maximum the machine keeps), hashes not starting 0x00.
    while pending.len() < 63 {
        if round > 0 {
            for k in &others[..2] {
                let ev = n.vote(k, VoteKind::Prevote, round, None);
                n.handle(ts, ev);
            }
            assert_eq!(
                n.engine.machine().round(),
                Round(round),
                "skipped to {round}"
            );
        }
        let p = n.key_of(1, round);
        if p.address() != n.keys[n.me].address() {
            let mut sent = 0;
            while sent < 2 && pending.len() < 63 {
                ts += 1;
                let b = n.block(&p, &[transfer(&n.genesis, 0, 10 + ts)], ts);
                if b.hash().as_bytes()[0] == 0 {
                    continue;
                }
                let ev =
                    Event::Message(ConsensusMessage::Proposal(n.proposal(&p, round, None, &b)));
                let effects = n.handle(ts, ev);
                assert_eq!(lookups(&effects), vec![b.hash()]);
                pending.push(b.hash());
                sent += 1;
            }
        }
        round += 1;
    }
    // Move to a round whose proposer is honest and not us, and has room for two proposals.
    loop {
        for k in &others[..2] {
            let ev = n.vote(k, VoteKind::Prevote, round, None);
            n.handle(ts, ev);
        }
        if n.key_of(1, round).address() != n.keys[n.me].address() {
            break;
        }
        round += 1;
    }
    let honest_key = n.key_of(1, round);
    // The honest proposal: its hash happens to be small (1 in 256 blocks).
    let honest = loop {
        ts += 1;
        let b = n.block(&honest_key, &[transfer(&n.genesis, 0, 5)], ts);
        if b.hash().as_bytes()[0] == 0 {
            break b;
        }
    };
    let ev = Event::Message(ConsensusMessage::Proposal(n.proposal(
        &honest_key,
        round,
        None,
        &honest,
    )));
    assert_eq!(lookups(&n.handle(ts, ev)), vec![honest.hash()]);
    // One more request (round+1 is in the future window; its proposer, or this round's again).
    let extra_key = n.key_of(1, round);
    let extra = loop {
        ts += 1;
        let b = n.block(&extra_key, &[transfer(&n.genesis, 0, 7 + ts)], ts);
        if b.hash().as_bytes()[0] != 0 {
            break b;
        }
    };
    let ev = Event::Message(ConsensusMessage::Proposal(
        n.proposal(&extra_key, round, None, &extra),
    ));
    // Past the cap: validated at once rather than waiting (and nothing waiting is dropped).
    assert_eq!(lookups(&n.handle(ts, ev)), Vec::<Hash>::new());
    // Every lookup is answered: the honest block's first.
    let mut all = vec![honest.hash()];
    all.extend(pending.iter().copied());
    for h in all {
        n.handle(
            ts,
            Event::VerifiedTxs {
                block_hash: h,
                verified: HashSet::new(),
            },
        );
    }
    // 2f+1 precommit the honest block in its round: a node that validated it decides it.
    let mut decided = Vec::new();
    for k in &others {
        let ev = n.vote(k, VoteKind::Precommit, round, Some(honest.hash()));
        decided.extend(commits(&n.handle(ts, ev)));
    }
    assert_eq!(
        decided,
        vec![honest.hash()],
        "the honest block was never validated"
    );
}

/// The same honest proposal, answered, without the junk requests, is decided on 2f+1 precommits.
#[test]
fn n4_an_answered_validation_request_is_decided() {
    let mut n = Net4::new();
    n.handle(0, Event::Start);
    let others = n.others();
    let mut round = 0;
    while n.key_of(1, round).address() == n.keys[n.me].address() {
        round += 1;
        for k in &others[..2] {
            let ev = n.vote(k, VoteKind::Prevote, round, None);
            n.handle(5, ev);
        }
    }
    let key = n.key_of(1, round);
    let b = n.block(&key, &[transfer(&n.genesis, 0, 5)], 10);
    let ev = Event::Message(ConsensusMessage::Proposal(
        n.proposal(&key, round, None, &b),
    ));
    assert_eq!(lookups(&n.handle(10, ev)), vec![b.hash()]);
    n.handle(
        10,
        Event::VerifiedTxs {
            block_hash: b.hash(),
            verified: HashSet::new(),
        },
    );
    let mut decided = Vec::new();
    for k in &others {
        let ev = n.vote(k, VoteKind::Precommit, round, Some(b.hash()));
        decided.extend(commits(&n.handle(10, ev)));
    }
    assert_eq!(decided, vec![b.hash()]);
}

/// No decoding path yields a sealed block whose body is not its header's.
/// A write-ahead-log entry (borsh) with one signature byte of its valid value's last transaction
/// flipped fails with `DecodeError::BlockBody`, and so does a JSON (serde) proposal whose
/// transaction was swapped for another.
#[test]
fn wal_and_json_paths_refuse_a_swapped_body() {
    let n = Net4::new();
    let key = n.keys[1].clone();
    let b = n.block(
        &key,
        &[transfer(&n.genesis, 0, 5), transfer(&n.genesis, 1, 6)],
        10,
    );
    let entry = WalEntry::ValidValue {
        height: Height(1),
        round: Round(0),
        block: b.clone(),
        polka: Vec::new(),
    };
    let mut bytes = ledger_core::codec::encode(&entry);
    let block_bytes = ledger_core::codec::encode(b.block());
    let at = bytes
        .windows(block_bytes.len())
        .position(|w| w == block_bytes.as_slice())
        .expect("the block is in the entry");
    bytes[at + block_bytes.len() - 1] ^= 1;
    assert!(matches!(
        ledger_core::codec::decode::<WalEntry>(&bytes),
        Err(ledger_core::codec::DecodeError::BlockBody(_))
    ));

    let p = n.proposal(&key, 0, None, &b);
    let mut json = serde_json::to_value(&p).expect("serialises");
    let other = serde_json::to_value(transfer(&n.genesis, 0, 99).signed()).expect("serialises");
    json["proposal"]["block"]["txs"][0] = other;
    assert!(serde_json::from_value::<SignedProposal>(json.clone()).is_err());
    // Untouched, it round-trips.
    let back: SignedProposal =
        serde_json::from_value(serde_json::to_value(&p).expect("ser")).expect("de");
    assert_eq!(back, p);
}
