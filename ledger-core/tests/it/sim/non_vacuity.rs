//! Not vacuous: each checker, fed a constructed violating input, reports it; each byzantine
//! strategy, beyond the fault model or with the protection it targets switched off (where that can
//! be done in the simulation, outside ledger-core's code), leads to a violation the checker finds.

use std::sync::Arc;

use ledger_core::genesis::Genesis;
use ledger_core::state::{Account, State};
use ledger_core::validation::{ParentBlock, build_block};
use ledger_core::{
    Amount, Block, CommitCertificate, CommittedBlock, Hash, Height, Keypair, Nonce, Round,
    Transaction, VerifiedTransaction, Vote, VoteKind,
};

use super::byzantine::Variant;
use super::checker::{Checker, ViolationKind, check_supply};
use super::network::LinkConfig;
use super::scenario::Scenario;
use super::{Report, T0, account_keys, run, sim_genesis, validator_keys};

struct Fixture {
    genesis: Arc<Genesis>,
    keys: Vec<Keypair>,
}

fn fixture() -> Fixture {
    let keys = validator_keys(4);
    Fixture {
        genesis: Arc::new(sim_genesis(&keys, &[1, 1, 1, 1])),
        keys,
    }
}

impl Fixture {
    fn transfers(&self, count: u64) -> Vec<VerifiedTransaction> {
        let accounts = account_keys();
        (0..count)
            .map(|i| {
                let key = &accounts[(i % 3) as usize];
                Transaction {
                    chain_id: self.genesis.chain_id().clone(),
                    from: key.public(),
                    to: accounts[5].address(),
                    amount: Amount(10 + i),
                    fee: Amount(1),
                    nonce: Nonce(i / 3),
                    memo: Vec::new(),
                }
                .sign(key)
                .verify(self.genesis.chain_id())
                .expect("valid transfer")
            })
            .collect()
    }

    /// A valid block 1 with `txs` transfers.
    fn block1(&self, txs: u64) -> Block {
        build_block(
            self.genesis.chain_context(),
            &ParentBlock::genesis(&self.genesis),
            &mut self.genesis.initial_state(),
            &self.transfers(txs),
            self.keys[0].address(),
            ledger_core::TimestampMs(T0),
            None,
        )
        .expect("builds")
        .block
        .into_block()
    }

    /// `block` with a certificate every validator signed: final, whatever it holds.
    fn certify(&self, block: Block) -> CommittedBlock {
        let hash = block.hash();
        let h = block.header.height;
        let votes: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                Vote {
                    kind: VoteKind::Precommit,
                    height: h,
                    round: Round(0),
                    block_hash: Some(hash),
                    validator: k.address(),
                }
                .sign(self.genesis.chain_id(), k)
            })
            .collect();
        let commit = CommitCertificate::from_precommits(
            h,
            Round(0),
            hash,
            self.genesis.validators(),
            &votes,
        );
        CommittedBlock { block, commit }
    }

    fn checker(&self) -> Checker {
        Checker::new(self.genesis.clone(), vec![true; 4])
    }
}

fn reroot(block: &mut Block) {
    let hashes: Vec<Hash> = block.txs.iter().map(|t| t.hash()).collect();
    block.header.tx_root = ledger_core::merkle::merkle_root(&hashes);
    block.header.tx_count = block.txs.len() as u32;
}

#[test]
fn agreement_checker_compares_bytes_not_header_hashes() {
    let fx = fixture();
    let real = fx.certify(fx.block1(4));
    // The same header (and so the same hash and certificate) over another body.
    let mut other = real.clone();
    other.block.txs.reverse();
    assert_eq!(real.block.hash(), other.block.hash());
    let mut c = fx.checker();
    c.on_commit(0, std::slice::from_ref(&real), T0);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    c.on_commit(1, std::slice::from_ref(&other), T0);
    assert!(
        c.violations
            .iter()
            .any(|v| v.kind == ViolationKind::Agreement && v.detail.contains("one header hash")),
        "{:?}",
        c.violations
    );
}

#[test]
fn validity_checker_replays_state_root_funds_and_signatures() {
    let fx = fixture();
    let cases: Vec<(&str, Block)> = vec![
        ("state root", {
            let mut b = fx.block1(3);
            b.header.state_root = Hash::digest(b"not the state");
            b
        }),
        ("insufficient funds", {
            let mut b = fx.block1(0);
            let key = &account_keys()[0];
            let tx = Transaction {
                chain_id: fx.genesis.chain_id().clone(),
                from: key.public(),
                to: account_keys()[1].address(),
                amount: Amount(super::ACCOUNT_BALANCE),
                fee: Amount(1),
                nonce: Nonce(0),
                memo: Vec::new(),
            }
            .sign(key);
            b.txs.push(tx);
            reroot(&mut b);
            b
        }),
        ("bad signature", {
            let mut b = fx.block1(3);
            b.txs[1].signature.0[3] ^= 1;
            reroot(&mut b);
            b
        }),
        ("proposer", {
            let mut b = fx.block1(0);
            b.header.proposer = Keypair::dev("nobody", 0).address();
            b
        }),
    ];
    for (what, block) in cases {
        let mut c = fx.checker();
        c.on_commit(0, &[fx.certify(block)], T0);
        assert!(
            c.violations
                .iter()
                .any(|v| v.kind == ViolationKind::Validity),
            "{what}: {:?}",
            c.violations
        );
        println!("{what}: {}", c.violations[0]);
    }
    // And a valid block passes.
    let mut c = fx.checker();
    c.on_commit(0, &[fx.certify(fx.block1(5))], T0);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn supply_checker_sees_a_coin_from_nowhere() {
    let fx = fixture();
    assert!(check_supply(&fx.genesis.initial_state(), &fx.genesis).is_ok());
    let mut accounts = fx.genesis.initial_accounts();
    accounts[0].1.balance = Amount(accounts[0].1.balance.0 + 1);
    let inflated = State::from_accounts(accounts).expect("a state");
    let err = check_supply(&inflated, &fx.genesis).expect_err("one coin more");
    println!("{err}");
    let mut fewer = fx.genesis.initial_accounts();
    fewer[1].1 = Account {
        balance: Amount(1),
        nonce: Nonce(0),
    };
    assert!(check_supply(&State::from_accounts(fewer).expect("a state"), &fx.genesis).is_err());
}

#[test]
fn timestamp_checker_sees_a_block_from_the_future() {
    let fx = fixture();
    let mut b = fx.block1(0);
    b.header.timestamp_ms = ledger_core::TimestampMs(T0 + 60_000);
    let mut c = fx.checker();
    c.on_commit(0, &[fx.certify(b)], T0);
    assert!(
        c.violations
            .iter()
            .any(|v| v.kind == ViolationKind::Timestamp),
        "{:?}",
        c.violations
    );
}

/// Runs `make(seed)` for seeds in `seeds` until one has a violation of one of `kinds`.
fn find(
    what: &str,
    seeds: std::ops::Range<u64>,
    kinds: &[ViolationKind],
    make: impl Fn(u64) -> Scenario,
) -> Report {
    for seed in seeds.clone() {
        let r = run(&make(seed));
        if kinds.iter().any(|k| r.has(*k)) {
            println!("{what}: found as expected at seed {seed}:\n{}", r.failure());
            return r;
        }
    }
    panic!("{what}: no violation of {kinds:?} in seeds {seeds:?}: the checker is blind");
}

fn lossy(mut s: Scenario) -> Scenario {
    s.links_before_gst = LinkConfig {
        loss: 0.05,
        ..LinkConfig::good(10, 30)
    };
    s.gst_ms = 3_000;
    s
}

/// Two flooders of four (more than f): their far-future rounds are f+1 of the power, so honest
/// nodes skip to rounds whose timeouts never end.
#[test]
fn more_than_f_flooders_stall_the_chain_and_the_checker_sees_it() {
    find(
        "2 flooders of 4",
        0..20,
        &[ViolationKind::Liveness],
        |seed| {
            let mut s = lossy(Scenario::clean(seed, 4));
            s.byzantine = vec![(0, Variant::Flooder), (1, Variant::Flooder)];
            s
        },
    );
}

/// The mempool's answer to `LookupVerified` lets validation skip signatures; a mempool that claims
/// every hash (the protection switched off in the simulation) lets a proposal with a forged
/// transfer signature be validated, decided and committed, which the replay finds.
#[test]
fn forged_signature_proposer_with_a_lying_mempool_is_caught_by_replay() {
    find(
        "forged-signature proposer, lying mempools",
        0..20,
        &[ViolationKind::Validity],
        |seed| {
            let mut s = lossy(Scenario::clean(seed, 4));
            s.byzantine = vec![(seed as usize % 4, Variant::InvalidProposerOnly(5))];
            s.lying_mempool = true;
            s
        },
    );
}

/// The clock-drift check gates prevotes on the local clock. Honest clocks all far ahead (beyond
/// the fault model: a majority beyond the drift bound) switch it off in effect: a proposer stamping
/// its blocks beyond the drift bound gets them decided, and the timestamp check sees it.
#[test]
fn far_future_timestamps_with_a_majority_of_fast_clocks_are_caught() {
    find(
        "far-timestamp proposer, fast clocks",
        0..20,
        &[ViolationKind::Timestamp],
        |seed| {
            let mut s = lossy(Scenario::clean(seed, 4));
            let b = seed as usize % 4;
            s.byzantine = vec![(b, Variant::InvalidProposerOnly(4))];
            // Honest clocks 1.5 s ahead: their own blocks stay within the checker's bound
            // (drift + slack = 2 s), but they accept stamps up to 2.5 s ahead. The proposer's
            // clock is 0.9 s ahead; it stamps drift + 500 ms more: 2.4 s ahead.
            s.clock_offsets = (0..4).map(|i| if i == b { 900 } else { 1_500 }).collect();
            s
        },
    );
}

/// Strategies whose target protection lives in ledger-core's code (decoding seals a block; the
/// machine checks signatures, the polka behind `pol_round` and the proposer): even two of four
/// (more than f) cannot make the honest nodes commit anything wrong. Safety is checked here, not
/// liveness (two silent-ish validators of four may stall the chain, as they may).
#[test]
fn more_than_f_body_swappers_tamperers_and_false_pol_rounds_still_break_nothing_safety() {
    for v in [
        Variant::BodySwapper,
        Variant::Tamperer,
        Variant::FalsePolRound,
        Variant::InvalidProposer,
    ] {
        for seed in 0..3 {
            let mut s = lossy(Scenario::clean(300 + seed, 4));
            s.byzantine = vec![(0, v), (1, v)];
            let r = run(&s);
            for k in [
                ViolationKind::Agreement,
                ViolationKind::Validity,
                ViolationKind::Supply,
                ViolationKind::Timestamp,
                ViolationKind::DoubleSign,
                ViolationKind::Evidence,
                ViolationKind::Engine,
            ] {
                assert!(!r.has(k), "{v:?} x2: {}", r.failure());
            }
            println!(
                "{v:?} x2 seed {}: {} heights, {} txs, violations: {:?}",
                s.seed,
                r.heights,
                r.txs,
                r.violations.iter().map(|v| v.kind).collect::<Vec<_>>()
            );
        }
    }
    let _ = Height(0);
}
