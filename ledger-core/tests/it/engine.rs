//! The node's consensus engine (`ledger_core::engine`) driven directly, one validator, with real
//! signed transfers: the smallest end-to-end check of production, validation, commit and sync.
//! The simulator (`sim/`) drives many of these engines over a simulated network.

use std::collections::HashSet;
use std::sync::Arc;

use ledger_core::engine::{Effect, Engine, EngineConfig, Event, Head, Now};
use ledger_core::genesis::Genesis;
use ledger_core::validation::{ParentBlock, replay_block};
use ledger_core::{
    Amount, CommittedBlock, Keypair, Nonce, TimestampMs, Transaction, VerifiedTransaction,
};

fn transfers(genesis: &Genesis, count: u64) -> Vec<VerifiedTransaction> {
    let key = Keypair::dev("account", 0);
    (0..count)
        .map(|nonce| {
            Transaction {
                chain_id: genesis.chain_id().clone(),
                from: key.public(),
                to: Keypair::dev("account", 1 + (nonce % 3) as u32).address(),
                amount: Amount(10 + nonce),
                fee: Amount(1),
                nonce: Nonce(nonce),
                memo: Vec::new(),
            }
            .sign(&key)
            .verify(genesis.chain_id())
            .expect("valid transfer")
        })
        .collect()
}

/// Runs `engine` for `steps` deadlines on virtual time, answering its requests from `pool`;
/// returns what it committed.
fn drive(
    engine: &mut Engine,
    pool: &mut Vec<VerifiedTransaction>,
    steps: usize,
) -> Vec<CommittedBlock> {
    let t0 = engine.genesis().genesis_time_ms().0 + 1000;
    let mut committed = Vec::new();
    let mut queue = vec![Event::Start];
    let mut mono = 0u64;
    for _ in 0..steps {
        if queue.is_empty() {
            mono = mono.max(engine.next_deadline_ms());
            queue.push(Event::Time);
        }
        let now = Now {
            wall: TimestampMs(t0 + mono),
            mono_ms: mono,
        };
        let event = queue.remove(0);
        let effects = engine.handle(now, event).expect("no fatal error");
        if std::env::var_os("ENGINE_TRACE").is_some() {
            eprintln!(
                "{mono} {:?}",
                effects
                    .iter()
                    .map(|e| format!("{e:?}").chars().take(60).collect::<String>())
                    .collect::<Vec<_>>()
            );
        }
        for effect in effects {
            match effect {
                Effect::FetchCandidates { height, .. } => queue.push(Event::Candidates {
                    height,
                    txs: pool.clone(),
                }),
                Effect::LookupVerified { block_hash, .. } => queue.push(Event::VerifiedTxs {
                    block_hash,
                    verified: HashSet::new(),
                }),
                Effect::Commit(c) => {
                    let included: HashSet<_> = c.tx_hashes.iter().copied().collect();
                    pool.retain(|t| !included.contains(&t.hash()));
                    committed.push(CommittedBlock {
                        block: c.block.block().clone(),
                        commit: c.certificate.clone(),
                    });
                }
                Effect::InvalidProposal { error, .. } | Effect::BuildFailed { error, .. } => {
                    panic!("unexpected block error: {error}")
                }
                _ => {}
            }
        }
    }
    committed
}

#[test]
fn n1_engine_commits_real_transfers_and_a_replay_from_genesis_gives_its_state() {
    let genesis = Arc::new(Genesis::dev("engine-test", 1, 4).expect("valid genesis"));
    let mut engine = Engine::new(
        EngineConfig {
            genesis: genesis.clone(),
            key: Some(Keypair::dev("validator", 0)),
        },
        genesis.initial_state(),
        Head::genesis(&genesis),
        Vec::new(),
        0,
    )
    .expect("engine");
    let mut pool = transfers(&genesis, 25);
    let committed = drive(&mut engine, &mut pool, 3000);
    assert!(committed.len() >= 3, "committed {} blocks", committed.len());
    let txs: usize = committed.iter().map(|c| c.block.txs.len()).sum();
    assert_eq!(txs, 25, "every transfer is final");
    assert!(pool.is_empty());
    // The chain replays from genesis to the state the engine holds.
    let mut state = genesis.initial_state();
    let mut parent = ParentBlock::genesis(&genesis);
    for c in &committed {
        replay_block(genesis.chain_context(), &parent, &mut state, c).expect("replays");
        parent = ParentBlock::of(&c.block.clone().seal().expect("sealed"));
    }
    assert_eq!(state.root(), engine.state().root());
    assert_eq!(engine.head().height(), parent.height);
    assert_eq!(
        state.total_supply().expect("reads"),
        genesis.initial_state().total_supply().expect("reads")
    );
}

#[test]
fn a_follower_engine_applies_synced_blocks_and_refuses_a_swapped_body() {
    let genesis = Arc::new(Genesis::dev("engine-test", 1, 4).expect("valid genesis"));
    let config = |key| EngineConfig {
        genesis: genesis.clone(),
        key,
    };
    let mut producer = Engine::new(
        config(Some(Keypair::dev("validator", 0))),
        genesis.initial_state(),
        Head::genesis(&genesis),
        Vec::new(),
        0,
    )
    .expect("engine");
    let mut pool = transfers(&genesis, 12);
    let chain = drive(&mut producer, &mut pool, 3000);
    assert!(chain.len() >= 2);
    let mut follower = Engine::new(
        config(None),
        genesis.initial_state(),
        Head::genesis(&genesis),
        Vec::new(),
        0,
    )
    .expect("engine");
    let now = Now {
        wall: TimestampMs(genesis.genesis_time_ms().0 + 1000),
        mono_ms: 0,
    };
    follower.handle(now, Event::Start).expect("starts");
    // The first block with its body swapped for the second's transactions: refused, nothing
    // applied.
    let with_txs = chain
        .iter()
        .position(|c| !c.block.txs.is_empty())
        .expect("a block with transfers");
    let mut forged = chain[..=with_txs].to_vec();
    forged[with_txs].block.txs.pop();
    let effects = follower
        .handle(now, Event::Synced(forged))
        .expect("no fatal error");
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::SyncRefused {
            reason: ledger_core::engine::SyncRefusal::Body(_),
            ..
        }
    )));
    assert_eq!(follower.head().height().0, with_txs as u64);
    let effects = follower
        .handle(now, Event::Synced(chain.clone()))
        .expect("no fatal error");
    let commits = effects
        .iter()
        .filter(|e| matches!(e, Effect::Commit(_)))
        .count();
    assert_eq!(commits, chain.len() - with_txs);
    assert_eq!(follower.state().root(), producer.state().root());
}

/// Four validators, seen from validator 0's engine: round 0's proposal (with transfers) is
/// validated once, with the signatures the mempool verified skipped; round 0 ends without a
/// decision; the same block is re-proposed in round 1 and decided without a second validation; the
/// commit carries exactly the validated body and its execution.
#[test]
fn n4_engine_decides_a_reproposed_block_with_the_body_it_validated() {
    use ledger_core::consensus::{ConsensusMessage, Proposal};
    use ledger_core::{Round, Vote, VoteKind};

    let genesis = Arc::new(Genesis::dev("engine-test", 4, 4).expect("valid genesis"));
    let keys: Vec<Keypair> = (0..4).map(|i| Keypair::dev("validator", i)).collect();
    let me = keys
        .iter()
        .position(|k| genesis.validators().index_of(&k.address()) == Some(0))
        .expect("a key for index 0");
    let mut engine = Engine::new(
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
    let at = |ms: u64| Now {
        wall: TimestampMs(t0 + ms),
        mono_ms: ms,
    };
    engine.handle(at(0), Event::Start).expect("starts");
    let key_of = |round: u32| {
        let address = engine
            .machine()
            .proposer(ledger_core::Height(1), Round(round))
            .expect("started");
        keys.iter()
            .find(|k| k.address() == address)
            .expect("a validator key")
            .clone()
    };
    let (p0, p1) = (key_of(0), key_of(1));
    assert_ne!(
        p0.address(),
        keys[me].address(),
        "validator 0 is not round 0's proposer"
    );
    // Round 0's proposer builds a block with transfers on its own copy of the chain.
    let txs = transfers(&genesis, 6);
    let built = ledger_core::validation::build_block(
        genesis.chain_context(),
        &ParentBlock::genesis(&genesis),
        &mut genesis.initial_state(),
        &txs,
        p0.address(),
        TimestampMs(t0 + 5),
        None,
    )
    .expect("builds");
    let block = built.block.clone();
    let proposal = |round: u32, key: &Keypair| {
        ConsensusMessage::Proposal(
            Proposal {
                height: ledger_core::Height(1),
                round: Round(round),
                pol_round: None,
                proposer: key.address(),
                block: block.clone(),
            }
            .sign(genesis.chain_id(), key),
        )
    };
    let effects = engine
        .handle(at(10), Event::Message(proposal(0, &p0)))
        .expect("handles");
    let lookup: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::LookupVerified {
                block_hash,
                tx_hashes,
            } => Some((*block_hash, tx_hashes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(lookup, vec![(block.hash(), block.tx_hashes().to_vec())]);
    // The mempool verified half of them.
    let verified: HashSet<_> = block.tx_hashes()[..3].iter().copied().collect();
    let effects = engine
        .handle(
            at(11),
            Event::VerifiedTxs {
                block_hash: block.hash(),
                verified,
            },
        )
        .expect("handles");
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Broadcast(ConsensusMessage::Vote(v)) if v.vote.kind == VoteKind::Prevote && v.vote.block_hash == Some(block.hash()))),
        "prevotes the valid block: {effects:?}"
    );
    let vote = |key: &Keypair, kind, round: u32, value| {
        ConsensusMessage::Vote(
            Vote {
                kind,
                height: ledger_core::Height(1),
                round: Round(round),
                block_hash: value,
                validator: key.address(),
            }
            .sign(genesis.chain_id(), key),
        )
    };
    // Round 0 ends without a decision.
    for k in keys.iter().filter(|k| k.address() != keys[me].address()) {
        engine
            .handle(
                at(12),
                Event::Message(vote(k, VoteKind::Precommit, 0, None)),
            )
            .expect("handles");
    }
    // Time passes until the precommit timeout moves it to round 1.
    let mut deadline = 12;
    for _ in 0..100 {
        if engine.machine().round() == Round(1) {
            break;
        }
        deadline = engine.next_deadline_ms().max(deadline);
        engine.handle(at(deadline), Event::Time).expect("handles");
    }
    assert_eq!(engine.machine().round(), Round(1));
    // Round 1: the same block again; no second validation.
    let effects = engine
        .handle(at(deadline + 1), Event::Message(proposal(1, &p1)))
        .expect("handles");
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::LookupVerified { .. })),
        "{effects:?}"
    );
    let mut commits = Vec::new();
    for k in keys.iter().filter(|k| k.address() != keys[me].address()) {
        let effects = engine
            .handle(
                at(deadline + 2),
                Event::Message(vote(k, VoteKind::Precommit, 1, Some(block.hash()))),
            )
            .expect("handles");
        commits.extend(effects.into_iter().filter_map(|e| match e {
            Effect::Commit(c) => Some(c),
            _ => None,
        }));
    }
    assert_eq!(commits.len(), 1);
    let c = &commits[0];
    assert_eq!(
        ledger_core::codec::encode(c.block.block()),
        ledger_core::codec::encode(block.block())
    );
    assert_eq!(c.tx_hashes, block.tx_hashes());
    assert_eq!(c.accounts, built.executed.changes());
    assert_eq!(c.decided_in_round, Some(Round(1)));
    assert_eq!(engine.state().root(), block.header().state_root);
}
