//! Step tables for the consensus state machine: each test is a list of (input, expected outputs,
//! expected state) steps that exercises one rule of Algorithm 1 ("The latest gossip on BFT
//! consensus", Buchman, Kwon, Milosevic 2018), with one validator (n = 1) or four (n = 4, f = 1).
//!
//! With four equal validators the proposer of (height 1, round r) is validator `(1 + r) mod 4` in
//! validator-set order: round 0 -> v1, round 1 -> v2, round 2 -> v3, round 3 -> v0.

use ledger_core::consensus::{
    ConsensusConfig, ConsensusMachine, ConsensusMessage, Evidence, Input, Output, Proposal,
    SignedProposal, Snapshot, Step, TimeoutKind, WalEntry,
};
use ledger_core::merkle::merkle_root;
use ledger_core::{
    Block, BlockHeader, ChainId, CommitCertificate, ConsensusParams, Hash, Height, Keypair, Round,
    SealedBlock, SignedVote, TimestampMs, Validator, ValidatorSet, Vote, VoteKind,
};

const H: Height = Height(1);

struct Fixture {
    chain: ChainId,
    params: ConsensusParams,
    /// In validator-set order.
    keys: Vec<Keypair>,
    set: ValidatorSet,
}

impl Fixture {
    fn new(n: u32) -> Fixture {
        let mut keys: Vec<Keypair> = (0..n).map(|i| Keypair::dev("steps", i)).collect();
        keys.sort_by_key(|k| k.address());
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.address(),
                    public_key: k.public(),
                    power: 1,
                })
                .collect(),
        )
        .expect("valid set");
        Fixture {
            chain: ChainId::new("steps-chain").expect("valid chain id"),
            params: ConsensusParams::default(),
            keys,
            set,
        }
    }

    fn config(&self, me: usize) -> ConsensusConfig {
        ConsensusConfig {
            chain_id: self.chain.clone(),
            params: self.params.clone(),
            key: Some(self.keys[me].clone()),
        }
    }

    fn machine(&self, me: usize) -> ConsensusMachine {
        ConsensusMachine::new(self.config(me))
    }

    fn start(&self) -> Input {
        Input::StartHeight {
            height: H,
            validators: self.set.clone(),
        }
    }

    /// A block of height 1 built by validator `by` at time `ts`.
    fn block(&self, by: usize, ts: u64) -> SealedBlock {
        Block {
            header: BlockHeader {
                chain_id: self.chain.clone(),
                height: H,
                prev_hash: Hash::ZERO,
                timestamp_ms: TimestampMs(ts),
                proposer: self.keys[by].address(),
                tx_root: merkle_root(&[]),
                tx_count: 0,
                state_root: Hash::ZERO,
                last_commit_hash: Hash::ZERO,
            },
            last_commit: None,
            txs: Vec::new(),
        }
        .seal()
        .expect("an empty body matches an empty header")
    }

    fn proposal(
        &self,
        by: usize,
        round: u32,
        pol_round: Option<u32>,
        block: &SealedBlock,
    ) -> SignedProposal {
        Proposal {
            height: H,
            round: Round(round),
            pol_round: pol_round.map(Round),
            proposer: self.keys[by].address(),
            block: block.clone(),
        }
        .sign(&self.chain, &self.keys[by])
    }

    fn vote(&self, by: usize, kind: VoteKind, round: u32, value: Option<Hash>) -> SignedVote {
        Vote {
            kind,
            height: H,
            round: Round(round),
            block_hash: value,
            validator: self.keys[by].address(),
        }
        .sign(&self.chain, &self.keys[by])
    }

    fn prevote(&self, by: usize, round: u32, value: Option<Hash>) -> SignedVote {
        self.vote(by, VoteKind::Prevote, round, value)
    }

    fn precommit(&self, by: usize, round: u32, value: Option<Hash>) -> SignedVote {
        self.vote(by, VoteKind::Precommit, round, value)
    }

    /// `timeoutPropose(r)` etc. as the machine computes them from `now`.
    fn timeout(&self, kind: TimeoutKind, round: u32, now: u64) -> Output {
        let mut wait = ledger_core::consensus::timeout_ms(&self.params, kind, Round(round));
        if kind == TimeoutKind::Propose && round == 0 {
            wait += self.params.empty_block_interval_ms;
        }
        Output::ScheduleTimeout {
            height: H,
            round: Round(round),
            kind,
            at: TimestampMs(now + wait),
        }
    }
}

fn sent_vote(v: &SignedVote) -> [Output; 2] {
    [
        Output::Persist(WalEntry::Vote(v.clone())),
        Output::Broadcast(ConsensusMessage::Vote(v.clone())),
    ]
}

fn sent_proposal(p: &SignedProposal) -> [Output; 2] {
    [
        Output::Persist(WalEntry::Proposal(p.clone())),
        Output::Broadcast(ConsensusMessage::Proposal(p.clone())),
    ]
}

fn validate(b: &SealedBlock) -> Output {
    Output::ValidateBlock {
        height: H,
        block: b.clone(),
    }
}

/// The logged valid value with its polka (the prevotes for it, in validator order).
fn valid_value(round: u32, b: &SealedBlock, polka: Vec<SignedVote>) -> Output {
    Output::Persist(WalEntry::ValidValue {
        height: H,
        round: Round(round),
        block: b.clone(),
        polka,
    })
}

fn state(
    round: u32,
    step: Step,
    locked: Option<(u32, Hash)>,
    valid: Option<(u32, Hash)>,
) -> Snapshot {
    Snapshot {
        height: H,
        round: Round(round),
        step,
        locked: locked.map(|(r, h)| (Round(r), h)),
        valid: valid.map(|(r, h)| (Round(r), h)),
    }
}

struct TestStep {
    desc: &'static str,
    now: u64,
    input: Input,
    expected: Vec<Output>,
    state: Snapshot,
}

fn step(
    desc: &'static str,
    now: u64,
    input: Input,
    expected: Vec<Output>,
    state: Snapshot,
) -> TestStep {
    TestStep {
        desc,
        now,
        input,
        expected,
        state,
    }
}

fn run_steps(m: &mut ConsensusMachine, steps: Vec<TestStep>) {
    for (i, s) in steps.into_iter().enumerate() {
        let out = m.handle(TimestampMs(s.now), s.input);
        assert_eq!(out, s.expected, "step {i} ({}): outputs", s.desc);
        assert_eq!(m.snapshot(), s.state, "step {i} ({}): state", s.desc);
    }
}

fn cat(parts: Vec<Vec<Output>>) -> Vec<Output> {
    parts.into_iter().flatten().collect()
}

fn certificate(
    fx: &Fixture,
    round: u32,
    block: &SealedBlock,
    votes: &[SignedVote],
) -> CommitCertificate {
    CommitCertificate::from_precommits(H, Round(round), block.hash(), &fx.set, votes)
}

// -------------------------------------------------------------------------------------------------
// n = 1
// -------------------------------------------------------------------------------------------------

/// L11-19 (proposer asks for a value), L22, L34, L36, L49 all in one input: a single validator is
/// its own quorum.
#[test]
fn n1_single_validator_decides_its_own_block() {
    let fx = Fixture::new(1);
    let mut m = fx.machine(0);
    let b = fx.block(0, 5);
    let p = fx.proposal(0, 0, None, &b);
    let pv = fx.prevote(0, 0, Some(b.hash()));
    let pc = fx.precommit(0, 0, Some(b.hash()));
    run_steps(
        &mut m,
        vec![
            step(
                "start height: we propose, so ask the driver for a block (L17-18) and schedule \
                 the propose timeout (L21)",
                0,
                fx.start(),
                vec![
                    Output::BuildBlock {
                        height: H,
                        round: Round(0),
                        empty_block_at: TimestampMs(fx.params.empty_block_interval_ms),
                    },
                    fx.timeout(TimeoutKind::Propose, 0, 0),
                ],
                state(0, Step::Propose, None, None),
            ),
            step(
                "the block arrives: propose (L19), prevote (L22-24), polka any (L34), lock and \
                 precommit (L36-43), decide (L49)",
                5,
                Input::BlockBuilt(b.clone()),
                cat(vec![
                    sent_proposal(&p).to_vec(),
                    sent_vote(&pv).to_vec(),
                    vec![
                        fx.timeout(TimeoutKind::Prevote, 0, 5),
                        valid_value(0, &b, vec![pv.clone()]),
                    ],
                    sent_vote(&pc).to_vec(),
                    vec![Output::Decide {
                        block: b.clone(),
                        certificate: certificate(&fx, 0, &b, std::slice::from_ref(&pc)),
                    }],
                ]),
                state(0, Step::Commit, Some((0, b.hash())), Some((0, b.hash()))),
            ),
            step(
                "a late block answer after the decision is ignored",
                6,
                Input::BlockBuilt(fx.block(0, 6)),
                vec![],
                state(0, Step::Commit, Some((0, b.hash())), Some((0, b.hash()))),
            ),
        ],
    );
    // The certificate verifies.
    let mut m = fx.machine(0);
    m.handle(TimestampMs(0), fx.start());
    let out = m.handle(TimestampMs(5), Input::BlockBuilt(b.clone()));
    let Some(Output::Decide { block, certificate }) = out.last() else {
        panic!("no decision: {out:?}");
    };
    assert_eq!(
        certificate.verify(&fx.chain, &fx.set, H, &block.hash()),
        Ok(())
    );
}

/// L57: a proposer whose driver never answers prevotes nil at the timeout, then L34 + L44 with its
/// own vote, L47, L65 and the next round asks for a block again.
#[test]
fn n1_proposer_times_out_without_a_block_and_moves_on() {
    let fx = Fixture::new(1);
    let mut m = fx.machine(0);
    let pv = fx.prevote(0, 0, None);
    let pc = fx.precommit(0, 0, None);
    let t = 2000;
    run_steps(
        &mut m,
        vec![
            step(
                "start",
                0,
                fx.start(),
                vec![
                    Output::BuildBlock {
                        height: H,
                        round: Round(0),
                        empty_block_at: TimestampMs(1000),
                    },
                    fx.timeout(TimeoutKind::Propose, 0, 0),
                ],
                state(0, Step::Propose, None, None),
            ),
            step(
                "timeout propose: prevote nil (L57-60), polka any (L34), polka nil: precommit nil \
                 (L44-46), precommit any (L47-48)",
                t,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Propose,
                },
                cat(vec![
                    sent_vote(&pv).to_vec(),
                    vec![fx.timeout(TimeoutKind::Prevote, 0, t)],
                    sent_vote(&pc).to_vec(),
                    vec![fx.timeout(TimeoutKind::Precommit, 0, t)],
                ]),
                state(0, Step::Precommit, None, None),
            ),
            step(
                "timeout precommit: round 1 (L65-67); we propose again, at once",
                t + 500,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Precommit,
                },
                vec![
                    Output::BuildBlock {
                        height: H,
                        round: Round(1),
                        empty_block_at: TimestampMs(t + 500),
                    },
                    fx.timeout(TimeoutKind::Propose, 1, t + 500),
                ],
                state(1, Step::Propose, None, None),
            ),
            step(
                "a stale round-0 timeout does nothing",
                t + 600,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Propose,
                },
                vec![],
                state(1, Step::Propose, None, None),
            ),
        ],
    );
}

// -------------------------------------------------------------------------------------------------
// n = 4, f = 1. We are v0 unless said otherwise; v1 proposes round 0, v2 round 1, v3 round 2.
// -------------------------------------------------------------------------------------------------

fn started_n4(fx: &Fixture, me: usize) -> ConsensusMachine {
    let mut m = fx.machine(me);
    m.handle(TimestampMs(0), fx.start());
    m
}

/// L21, L22-24 (valid, unlocked), L34, L36-43, L47, L49.
#[test]
fn n4_happy_path_prevote_lock_precommit_decide() {
    let fx = Fixture::new(4);
    let mut m = fx.machine(0);
    let b = fx.block(1, 10);
    let p = fx.proposal(1, 0, None, &b);
    let id = Some(b.hash());
    let pcs = [
        fx.precommit(0, 0, id),
        fx.precommit(1, 0, id),
        fx.precommit(2, 0, id),
    ];
    run_steps(
        &mut m,
        vec![
            step(
                "start: not the proposer, schedule timeout propose (L21)",
                0,
                fx.start(),
                vec![fx.timeout(TimeoutKind::Propose, 0, 0)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "proposal from v1: ask the driver whether the block is valid",
                10,
                Input::Proposal(p.clone()),
                vec![validate(&b)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "valid: prevote id(v) (L22-24, L27)",
                11,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: true,
                },
                sent_vote(&fx.prevote(0, 0, id)).to_vec(),
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v1 prevotes v",
                12,
                Input::Vote(fx.prevote(1, 0, id)),
                vec![],
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v2 prevotes v: polka any (L34) and polka for v: lock, precommit (L36-43)",
                13,
                Input::Vote(fx.prevote(2, 0, id)),
                cat(vec![
                    vec![
                        fx.timeout(TimeoutKind::Prevote, 0, 13),
                        valid_value(0, &b, (0..3).map(|v| fx.prevote(v, 0, id)).collect()),
                    ],
                    sent_vote(&pcs[0]).to_vec(),
                ]),
                state(0, Step::Precommit, Some((0, b.hash())), Some((0, b.hash()))),
            ),
            step(
                "v1 precommits v",
                14,
                Input::Vote(pcs[1].clone()),
                vec![],
                state(0, Step::Precommit, Some((0, b.hash())), Some((0, b.hash()))),
            ),
            step(
                "v2 precommits v: decide (L49-54) with the three precommits",
                15,
                Input::Vote(pcs[2].clone()),
                vec![Output::Decide {
                    block: b.clone(),
                    certificate: certificate(&fx, 0, &b, &pcs),
                }],
                state(0, Step::Commit, Some((0, b.hash())), Some((0, b.hash()))),
            ),
        ],
    );
}

/// L22-26: an invalid block gets a nil prevote; so does a block whose timestamp is too far ahead
/// of our clock; and a block of another height is invalid without asking the driver.
#[test]
fn n4_invalid_or_future_block_gets_nil_prevote() {
    let fx = Fixture::new(4);
    let b = fx.block(1, 10);
    let p = fx.proposal(1, 0, None, &b);

    let mut m = started_n4(&fx, 0);
    run_steps(
        &mut m,
        vec![
            step(
                "proposal",
                10,
                Input::Proposal(p.clone()),
                vec![validate(&b)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "the driver says invalid: prevote nil (L26)",
                11,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: false,
                },
                sent_vote(&fx.prevote(0, 0, None)).to_vec(),
                state(0, Step::Prevote, None, None),
            ),
        ],
    );

    let far = fx.block(1, 10 + fx.params.max_clock_drift_ms + 1);
    let mut m = started_n4(&fx, 0);
    run_steps(
        &mut m,
        vec![
            step(
                "proposal with a timestamp beyond our clock + drift",
                10,
                Input::Proposal(fx.proposal(1, 0, None, &far)),
                vec![validate(&far)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "valid for the driver, but too far ahead of our clock: prevote nil",
                10,
                Input::BlockValidated {
                    block_hash: far.hash(),
                    valid: true,
                },
                sent_vote(&fx.prevote(0, 0, None)).to_vec(),
                state(0, Step::Prevote, None, None),
            ),
        ],
    );

    let mut wrong = fx.block(1, 10).into_block();
    wrong.header.height = Height(7);
    let wrong = wrong.seal().expect("body unchanged");
    let mut m = started_n4(&fx, 0);
    run_steps(
        &mut m,
        vec![step(
            "a block of another height: invalid at once, prevote nil",
            10,
            Input::Proposal(fx.proposal(1, 0, None, &wrong)),
            sent_vote(&fx.prevote(0, 0, None)).to_vec(),
            state(0, Step::Prevote, None, None),
        )],
    );
}

/// Messages that must not count: wrong proposer, bad signature, unknown validator, other chain.
#[test]
fn n4_messages_with_wrong_proposer_or_bad_signature_are_ignored() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let b = fx.block(2, 10);
    let mut forged = fx.prevote(1, 0, Some(b.hash()));
    forged.signature.0[3] ^= 1;
    let outsider = Keypair::dev("outsider", 0);
    let foreign = Vote {
        kind: VoteKind::Prevote,
        height: H,
        round: Round(0),
        block_hash: None,
        validator: outsider.address(),
    }
    .sign(&fx.chain, &outsider);
    let other_chain = ChainId::new("other").expect("valid");
    let replayed = Vote {
        kind: VoteKind::Prevote,
        height: H,
        round: Round(0),
        block_hash: None,
        validator: fx.keys[2].address(),
    }
    .sign(&other_chain, &fx.keys[2]);
    let mut bad_proposal = fx.proposal(1, 0, None, &fx.block(1, 10));
    bad_proposal.signature.0[0] ^= 1;
    run_steps(
        &mut m,
        vec![
            step(
                "v2 proposes in round 0, whose proposer is v1: ignored",
                10,
                Input::Proposal(fx.proposal(2, 0, None, &b)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "proposal from v1 with a broken signature: ignored",
                10,
                Input::Proposal(bad_proposal),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "forged vote: ignored",
                11,
                Input::Vote(forged),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "outsider vote: ignored",
                12,
                Input::Vote(foreign),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "vote signed for another chain: ignored",
                13,
                Input::Vote(replayed),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "v3 prevotes nil: the only vote that counted, so nothing",
                14,
                Input::Vote(fx.prevote(3, 0, None)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
        ],
    );
    let Err(e) = m.verify_message(ConsensusMessage::Proposal(fx.proposal(2, 0, None, &b))) else {
        panic!("wrong proposer accepted");
    };
    assert!(e.to_string().contains("not the proposer"), "{e}");
}

/// L34 + L61: a polka of mixed prevotes schedules timeout prevote; at the timeout, precommit nil.
/// L47 + L65: mixed precommits schedule timeout precommit; at the timeout, round 1.
#[test]
fn n4_mixed_votes_time_out_into_the_next_round() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let b = fx.block(1, 10);
    let id = Some(b.hash());
    let t0 = 2000;
    run_steps(
        &mut m,
        vec![
            step(
                "timeout propose, no proposal: prevote nil (L57-60)",
                t0,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Propose,
                },
                sent_vote(&fx.prevote(0, 0, None)).to_vec(),
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v1 prevotes v",
                t0 + 1,
                Input::Vote(fx.prevote(1, 0, id)),
                vec![],
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v2 prevotes v: 2f+1 prevotes for anything, schedule timeout prevote (L34-35)",
                t0 + 2,
                Input::Vote(fx.prevote(2, 0, id)),
                vec![fx.timeout(TimeoutKind::Prevote, 0, t0 + 2)],
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v3 prevotes nil: no second timeout (L34 fires once per round)",
                t0 + 3,
                Input::Vote(fx.prevote(3, 0, None)),
                vec![],
                state(0, Step::Prevote, None, None),
            ),
            step(
                "timeout prevote: precommit nil (L61-64)",
                t0 + 502,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Prevote,
                },
                sent_vote(&fx.precommit(0, 0, None)).to_vec(),
                state(0, Step::Precommit, None, None),
            ),
            step(
                "v1 precommits v",
                t0 + 503,
                Input::Vote(fx.precommit(1, 0, id)),
                vec![],
                state(0, Step::Precommit, None, None),
            ),
            step(
                "v2 precommits nil: 2f+1 precommits for anything, schedule timeout precommit (L47-48)",
                t0 + 504,
                Input::Vote(fx.precommit(2, 0, None)),
                vec![fx.timeout(TimeoutKind::Precommit, 0, t0 + 504)],
                state(0, Step::Precommit, None, None),
            ),
            step(
                "timeout precommit: StartRound(1) (L65-67); v2 proposes, we wait (L21)",
                t0 + 1004,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Precommit,
                },
                vec![fx.timeout(TimeoutKind::Propose, 1, t0 + 1004)],
                state(1, Step::Propose, None, None),
            ),
        ],
    );
}

/// L44-46: 2f+1 nil prevotes while in prevote: precommit nil at once.
#[test]
fn n4_polka_for_nil_precommits_nil() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let t0 = 2000;
    run_steps(
        &mut m,
        vec![
            step(
                "v1 and v2 prevote nil before we do",
                t0 - 10,
                Input::Vote(fx.prevote(1, 0, None)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "",
                t0 - 9,
                Input::Vote(fx.prevote(2, 0, None)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "timeout propose: our nil prevote completes a nil polka: timeout prevote (L34), \
                 precommit nil (L44-46)",
                t0,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Propose,
                },
                cat(vec![
                    sent_vote(&fx.prevote(0, 0, None)).to_vec(),
                    vec![fx.timeout(TimeoutKind::Prevote, 0, t0)],
                    sent_vote(&fx.precommit(0, 0, None)).to_vec(),
                ]),
                state(0, Step::Precommit, None, None),
            ),
        ],
    );
}

/// Locks (L36-41) in round 0; in round 1 a different fresh value gets a nil prevote (L23, L26);
/// in round 2 a re-proposal with a polka of a round >= lockedRound is prevoted (L28-30), and one
/// whose polka is older than the lock is not (L32).
#[test]
fn n4_lock_blocks_other_values_until_a_newer_polka() {
    let fx = Fixture::new(4);
    let mut m = fx.machine(0);
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let b = fx.block(2, 20);
    let idb = Some(b.hash());
    let locked_a = Some((0, a.hash()));
    let t1 = 3000;
    run_steps(
        &mut m,
        vec![
            step(
                "start",
                0,
                fx.start(),
                vec![fx.timeout(TimeoutKind::Propose, 0, 0)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "proposal A",
                10,
                Input::Proposal(fx.proposal(1, 0, None, &a)),
                vec![validate(&a)],
                state(0, Step::Propose, None, None),
            ),
            step(
                "A valid: prevote A",
                11,
                Input::BlockValidated {
                    block_hash: a.hash(),
                    valid: true,
                },
                sent_vote(&fx.prevote(0, 0, ida)).to_vec(),
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v1 prevotes A",
                12,
                Input::Vote(fx.prevote(1, 0, ida)),
                vec![],
                state(0, Step::Prevote, None, None),
            ),
            step(
                "v3 prevotes A: polka, lock on A and precommit A (L36-43)",
                13,
                Input::Vote(fx.prevote(3, 0, ida)),
                cat(vec![
                    vec![
                        fx.timeout(TimeoutKind::Prevote, 0, 13),
                        valid_value(0, &a, [0, 1, 3].map(|v| fx.prevote(v, 0, ida)).to_vec()),
                    ],
                    sent_vote(&fx.precommit(0, 0, ida)).to_vec(),
                ]),
                state(0, Step::Precommit, locked_a, locked_a),
            ),
            step(
                "f+1 (two) validators are in round 1: skip to round 1 (L55-56)",
                t1,
                Input::Vote(fx.prevote(2, 1, idb)),
                vec![],
                state(0, Step::Precommit, locked_a, locked_a),
            ),
            step(
                "second round-1 message: StartRound(1) (L55), proposal B of round 1 was not seen \
                 yet, so schedule timeout propose",
                t1 + 1,
                Input::Vote(fx.prevote(3, 1, idb)),
                vec![fx.timeout(TimeoutKind::Propose, 1, t1 + 1)],
                state(1, Step::Propose, locked_a, locked_a),
            ),
            step(
                "fresh proposal B in round 1",
                t1 + 2,
                Input::Proposal(fx.proposal(2, 1, None, &b)),
                vec![validate(&b)],
                state(1, Step::Propose, locked_a, locked_a),
            ),
            step(
                "B is valid but we are locked on A: prevote nil (L23, L26); with v2's and v3's \
                 prevotes that is 2f+1 for anything (L34)",
                t1 + 3,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: true,
                },
                cat(vec![
                    sent_vote(&fx.prevote(0, 1, None)).to_vec(),
                    vec![fx.timeout(TimeoutKind::Prevote, 1, t1 + 3)],
                ]),
                state(1, Step::Prevote, locked_a, locked_a),
            ),
            step(
                "v1 prevotes B: a polka for B in round 1 while we are in prevote: the lock moves \
                 to B (L36-43)",
                t1 + 4,
                Input::Vote(fx.prevote(1, 1, idb)),
                cat(vec![
                    vec![valid_value(
                        1,
                        &b,
                        [1, 2, 3].map(|v| fx.prevote(v, 1, idb)).to_vec(),
                    )],
                    sent_vote(&fx.precommit(0, 1, idb)).to_vec(),
                ]),
                state(1, Step::Precommit, Some((1, b.hash())), Some((1, b.hash()))),
            ),
        ],
    );
}

/// L28-33 in detail, from a machine locked on A in round 0 (set up by the same steps as above).
#[test]
fn n4_reproposal_with_polka_round_respects_the_lock_round() {
    let fx = Fixture::new(4);
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let b = fx.block(2, 20);
    let idb = Some(b.hash());

    // Locked on A at round 0.
    let lock_on_a = |m: &mut ConsensusMachine| {
        m.handle(TimestampMs(0), fx.start());
        m.handle(
            TimestampMs(10),
            Input::Proposal(fx.proposal(1, 0, None, &a)),
        );
        m.handle(
            TimestampMs(11),
            Input::BlockValidated {
                block_hash: a.hash(),
                valid: true,
            },
        );
        m.handle(TimestampMs(12), Input::Vote(fx.prevote(1, 0, ida)));
        m.handle(TimestampMs(13), Input::Vote(fx.prevote(3, 0, ida)));
        assert_eq!(m.snapshot().locked, Some((Round(0), a.hash())));
    };

    // Case 1: round 2 (proposer v3) re-proposes B with pol_round 1, and B had a polka in round 1:
    // lockedRound 0 <= vr 1, so prevote B (L29-30) although locked on A.
    let mut m = fx.machine(0);
    lock_on_a(&mut m);
    let t = 5000;
    for v in [1, 2, 3] {
        m.handle(TimestampMs(t), Input::Vote(fx.prevote(v, 1, idb)));
    }
    // f+1 messages of round 2: skip there (L55).
    m.handle(TimestampMs(t), Input::Vote(fx.precommit(2, 2, None)));
    m.handle(TimestampMs(t), Input::Vote(fx.precommit(3, 2, None)));
    assert_eq!(m.snapshot().round, Round(2));
    // Round 1's prevotes are kept (past rounds within the window).
    run_steps(
        &mut m,
        vec![
            step(
                "re-proposal of B with pol_round 1",
                t + 1,
                Input::Proposal(fx.proposal(3, 2, Some(1), &b)),
                vec![validate(&b)],
                state(2, Step::Propose, Some((0, a.hash())), Some((0, a.hash()))),
            ),
            step(
                "valid, polka in round 1 >= lockedRound 0: prevote B (L28-30)",
                t + 2,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: true,
                },
                sent_vote(&fx.prevote(0, 2, idb)).to_vec(),
                state(2, Step::Prevote, Some((0, a.hash())), Some((0, a.hash()))),
            ),
        ],
    );

    // Case 2: locked on A at round 0, a re-proposal of B claims pol_round 0 but the polka of round
    // 0 was for A: no 2f+1 prevotes for B in round 0, so L28 does not fire and the timeout gives nil.
    let mut m = fx.machine(0);
    lock_on_a(&mut m);
    m.handle(TimestampMs(t), Input::Vote(fx.precommit(2, 1, None)));
    m.handle(TimestampMs(t), Input::Vote(fx.precommit(3, 1, None)));
    assert_eq!(m.snapshot().round, Round(1));
    run_steps(
        &mut m,
        vec![
            step(
                "re-proposal of B with pol_round 0 (no such polka)",
                t + 1,
                Input::Proposal(fx.proposal(2, 1, Some(0), &b)),
                vec![validate(&b)],
                state(1, Step::Propose, Some((0, a.hash())), Some((0, a.hash()))),
            ),
            step(
                "valid, but no polka for B in round 0: wait",
                t + 2,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: true,
                },
                vec![],
                state(1, Step::Propose, Some((0, a.hash())), Some((0, a.hash()))),
            ),
            step(
                "timeout propose: prevote nil (L57)",
                t + 10_000,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(1),
                    kind: TimeoutKind::Propose,
                },
                sent_vote(&fx.prevote(0, 1, None)).to_vec(),
                state(1, Step::Prevote, Some((0, a.hash())), Some((0, a.hash()))),
            ),
        ],
    );

    // Case 3: locked on A in round 1 (higher than vr = 0), a re-proposal of B with a real polka in
    // round 0 for B: lockedRound 1 > vr 0 and lockedValue != B, so prevote nil (L32).
    let mut m = fx.machine(0);
    m.handle(TimestampMs(0), fx.start());
    for v in [1, 2, 3] {
        m.handle(TimestampMs(1), Input::Vote(fx.prevote(v, 0, idb)));
    }
    // Round 1: v2 proposes A, we lock on it.
    m.handle(TimestampMs(2), Input::Vote(fx.precommit(2, 1, None)));
    m.handle(TimestampMs(2), Input::Vote(fx.precommit(3, 1, None)));
    assert_eq!(m.snapshot().round, Round(1));
    m.handle(TimestampMs(3), Input::Proposal(fx.proposal(2, 1, None, &a)));
    m.handle(
        TimestampMs(3),
        Input::BlockValidated {
            block_hash: a.hash(),
            valid: true,
        },
    );
    m.handle(TimestampMs(4), Input::Vote(fx.prevote(1, 1, ida)));
    m.handle(TimestampMs(4), Input::Vote(fx.prevote(2, 1, ida)));
    assert_eq!(m.snapshot().locked, Some((Round(1), a.hash())));
    // Round 2 (v3 proposes B with pol_round 0).
    m.handle(TimestampMs(5), Input::Vote(fx.precommit(2, 2, None)));
    m.handle(TimestampMs(5), Input::Vote(fx.precommit(3, 2, None)));
    assert_eq!(m.snapshot().round, Round(2));
    run_steps(
        &mut m,
        vec![
            step(
                "re-proposal of B with pol_round 0",
                6,
                Input::Proposal(fx.proposal(3, 2, Some(0), &b)),
                vec![validate(&b)],
                state(2, Step::Propose, Some((1, a.hash())), Some((1, a.hash()))),
            ),
            step(
                "polka for B in round 0 exists, but we locked on A in round 1 > 0: prevote nil (L32)",
                7,
                Input::BlockValidated {
                    block_hash: b.hash(),
                    valid: true,
                },
                sent_vote(&fx.prevote(0, 2, None)).to_vec(),
                state(2, Step::Prevote, Some((1, a.hash())), Some((1, a.hash()))),
            ),
        ],
    );
}

/// L36 + L42-43 in the precommit step: a late polka only updates the valid value, no lock, no
/// second precommit. Then, as proposer of a later round, we re-propose the valid value with its
/// polka round (L14-16).
#[test]
fn n4_late_polka_sets_valid_value_which_the_proposer_reproposes() {
    let fx = Fixture::new(4);
    // We are v3: proposer of round 2.
    let mut m = fx.machine(3);
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let t0 = 2000;
    m.handle(TimestampMs(0), fx.start());
    // No proposal in time: prevote nil, then 2f+1 mixed prevotes, timeout prevote, precommit nil.
    m.handle(
        TimestampMs(t0),
        Input::TimeoutElapsed {
            height: H,
            round: Round(0),
            kind: TimeoutKind::Propose,
        },
    );
    m.handle(TimestampMs(t0 + 1), Input::Vote(fx.prevote(1, 0, ida)));
    m.handle(TimestampMs(t0 + 2), Input::Vote(fx.prevote(2, 0, ida)));
    m.handle(
        TimestampMs(t0 + 600),
        Input::TimeoutElapsed {
            height: H,
            round: Round(0),
            kind: TimeoutKind::Prevote,
        },
    );
    assert_eq!(m.snapshot(), state(0, Step::Precommit, None, None));
    let p2 = fx.proposal(3, 2, Some(0), &a);
    run_steps(
        &mut m,
        vec![
            step(
                "late proposal A",
                t0 + 601,
                Input::Proposal(fx.proposal(1, 0, None, &a)),
                vec![validate(&a)],
                state(0, Step::Precommit, None, None),
            ),
            step(
                "A valid: v0 is still needed for the polka",
                t0 + 602,
                Input::BlockValidated {
                    block_hash: a.hash(),
                    valid: true,
                },
                vec![],
                state(0, Step::Precommit, None, None),
            ),
            step(
                "v0 prevotes A: polka for A while in precommit: valid value only (L36, L42-43)",
                t0 + 603,
                Input::Vote(fx.prevote(0, 0, ida)),
                vec![valid_value(
                    0,
                    &a,
                    (0..3).map(|v| fx.prevote(v, 0, ida)).collect(),
                )],
                state(0, Step::Precommit, None, Some((0, a.hash()))),
            ),
            step(
                "f+1 messages of round 2 ...",
                t0 + 700,
                Input::Vote(fx.precommit(0, 2, None)),
                vec![],
                state(0, Step::Precommit, None, Some((0, a.hash()))),
            ),
            step(
                "... skip to round 2 (L55), where we propose the valid value with validRound \
                 (L14-16, L19) and prevote it (L28: polka in round 0, not locked)",
                t0 + 701,
                Input::Vote(fx.precommit(1, 2, None)),
                cat(vec![
                    sent_proposal(&p2).to_vec(),
                    vec![fx.timeout(TimeoutKind::Propose, 2, t0 + 701)],
                    sent_vote(&fx.prevote(3, 2, ida)).to_vec(),
                ]),
                state(2, Step::Prevote, None, Some((0, a.hash()))),
            ),
        ],
    );
}

/// L49 for an earlier round: precommits of round 0 decide even after we moved to round 1.
#[test]
fn n4_decides_with_precommits_of_an_earlier_round() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let pcs = [
        fx.precommit(1, 0, ida),
        fx.precommit(2, 0, ida),
        fx.precommit(3, 0, ida),
    ];
    m.handle(TimestampMs(5000), Input::Vote(fx.prevote(2, 1, None)));
    m.handle(TimestampMs(5000), Input::Vote(fx.prevote(3, 1, None)));
    assert_eq!(m.snapshot().round, Round(1));
    run_steps(
        &mut m,
        vec![
            step(
                "precommit v1 r0",
                5001,
                Input::Vote(pcs[0].clone()),
                vec![],
                state(1, Step::Propose, None, None),
            ),
            step(
                "precommit v2 r0",
                5002,
                Input::Vote(pcs[1].clone()),
                vec![],
                state(1, Step::Propose, None, None),
            ),
            step(
                "precommit v3 r0: 2f+1 for A but no proposal: cannot decide yet",
                5003,
                Input::Vote(pcs[2].clone()),
                vec![],
                state(1, Step::Propose, None, None),
            ),
            step(
                "the round-0 proposal arrives late",
                5004,
                Input::Proposal(fx.proposal(1, 0, None, &a)),
                vec![validate(&a)],
                state(1, Step::Propose, None, None),
            ),
            step(
                "valid: decide A in round 0 (L49)",
                5005,
                Input::BlockValidated {
                    block_hash: a.hash(),
                    valid: true,
                },
                vec![Output::Decide {
                    block: a.clone(),
                    certificate: certificate(&fx, 0, &a, &pcs),
                }],
                state(1, Step::Commit, None, None),
            ),
        ],
    );
}

/// L55 needs f+1 of the power: one validator alone cannot drag us into a higher round, and a
/// round far beyond the kept window still counts.
#[test]
fn n4_round_skip_needs_more_than_a_third() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    run_steps(
        &mut m,
        vec![
            step(
                "one validator at round 1000: not enough",
                10,
                Input::Vote(fx.prevote(1, 1000, None)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "the same validator again: still one",
                11,
                Input::Vote(fx.precommit(1, 1000, None)),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "a second validator at round 6: two have been seen at rounds >= 6, skip to 6",
                12,
                Input::Vote(fx.prevote(2, 6, None)),
                vec![fx.timeout(TimeoutKind::Propose, 6, 12)],
                state(6, Step::Propose, None, None),
            ),
        ],
    );
}

/// Two different votes from one validator at one height, round and step: evidence, once; the first
/// vote keeps counting.
#[test]
fn n4_conflicting_votes_are_reported_as_evidence() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let a = fx.block(1, 10);
    let first = fx.prevote(2, 0, Some(a.hash()));
    let second = fx.prevote(2, 0, None);
    let third = fx.prevote(2, 0, Some(Hash::digest(b"x")));
    run_steps(
        &mut m,
        vec![
            step(
                "v2 prevotes A",
                10,
                Input::Vote(first.clone()),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "the same vote again: nothing",
                11,
                Input::Vote(first.clone()),
                vec![],
                state(0, Step::Propose, None, None),
            ),
            step(
                "v2 prevotes nil as well: evidence",
                12,
                Input::Vote(second.clone()),
                vec![Output::Evidence(Evidence::ConflictingVotes {
                    first: first.clone(),
                    second: second.clone(),
                })],
                state(0, Step::Propose, None, None),
            ),
            step(
                "a third one: already reported",
                13,
                Input::Vote(third),
                vec![],
                state(0, Step::Propose, None, None),
            ),
        ],
    );
    let ev = Evidence::ConflictingVotes { first, second };
    assert_eq!(ev.verify(&fx.chain, &fx.set), Ok(()));
    assert_eq!(ev.offender(), fx.keys[2].address());
}

/// A proposer that signs two blocks for one round is reported; the first proposal stays.
#[test]
fn n4_conflicting_proposals_are_reported_and_the_first_one_counts() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let a = fx.block(1, 10);
    let b = fx.block(1, 11);
    let pa = fx.proposal(1, 0, None, &a);
    let pb = fx.proposal(1, 0, None, &b);
    let out = m.handle(TimestampMs(10), Input::Proposal(pa.clone()));
    assert_eq!(out, vec![validate(&a)]);
    let out = m.handle(TimestampMs(10), Input::Proposal(pb.clone()));
    let ev = Evidence::ConflictingProposals {
        first: pa.signed_summary(a.hash()),
        second: pb.signed_summary(b.hash()),
    };
    assert_eq!(out, vec![Output::Evidence(ev.clone()), validate(&b)]);
    assert_eq!(ev.verify(&fx.chain, &fx.set), Ok(()));
    // B answered first, but A is the round's proposal.
    let out = m.handle(
        TimestampMs(11),
        Input::BlockValidated {
            block_hash: b.hash(),
            valid: true,
        },
    );
    assert_eq!(out, vec![]);
    let out = m.handle(
        TimestampMs(11),
        Input::BlockValidated {
            block_hash: a.hash(),
            valid: true,
        },
    );
    assert_eq!(out, sent_vote(&fx.prevote(0, 0, Some(a.hash()))).to_vec());
}

/// Crash safety: a machine restored from its log resumes in the logged round and step,
/// re-broadcasts its logged votes instead of signing new ones, and keeps its lock.
#[test]
fn n4_restore_after_crash_resends_logged_votes_and_keeps_the_lock() {
    let fx = Fixture::new(4);
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let mut m = fx.machine(0);
    let mut wal: Vec<WalEntry> = Vec::new();
    let mut feed = |m: &mut ConsensusMachine, now: u64, input: Input| {
        let out = m.handle(TimestampMs(now), input);
        for o in &out {
            if let Output::Persist(e) = o {
                wal.push(e.clone());
            }
        }
        out
    };
    feed(&mut m, 0, fx.start());
    feed(&mut m, 10, Input::Proposal(fx.proposal(1, 0, None, &a)));
    feed(
        &mut m,
        11,
        Input::BlockValidated {
            block_hash: a.hash(),
            valid: true,
        },
    );
    feed(&mut m, 12, Input::Vote(fx.prevote(1, 0, ida)));
    feed(&mut m, 13, Input::Vote(fx.prevote(2, 0, ida)));
    let before = m.snapshot();
    assert_eq!(
        before,
        state(0, Step::Precommit, Some((0, a.hash())), Some((0, a.hash())))
    );
    drop(m);
    // The log: prevote A, valid value A, precommit A.
    assert_eq!(wal.len(), 3, "{wal:?}");

    let mut m = ConsensusMachine::restore(fx.config(0), wal.clone()).expect("own log");
    let pv = fx.prevote(0, 0, ida);
    let pc = fx.precommit(0, 0, ida);
    run_steps(
        &mut m,
        vec![
            step(
                "restart at the logged height: round 0, after our precommit; re-send both votes",
                100,
                fx.start(),
                vec![
                    fx.timeout(TimeoutKind::Propose, 0, 100),
                    Output::Broadcast(ConsensusMessage::Vote(pv.clone())),
                    Output::Broadcast(ConsensusMessage::Vote(pc.clone())),
                ],
                state(0, Step::Precommit, Some((0, a.hash())), Some((0, a.hash()))),
            ),
            step(
                "a stale propose timeout of the old life does not make us prevote again",
                2100,
                Input::TimeoutElapsed {
                    height: H,
                    round: Round(0),
                    kind: TimeoutKind::Propose,
                },
                vec![],
                state(0, Step::Precommit, Some((0, a.hash())), Some((0, a.hash()))),
            ),
            step(
                "the proposal again: A is our logged valid value, so no validation and no new \
                 prevote",
                2101,
                Input::Proposal(fx.proposal(1, 0, None, &a)),
                vec![],
                state(0, Step::Precommit, Some((0, a.hash())), Some((0, a.hash()))),
            ),
        ],
    );
    // Round 1, v2 proposes B: locked on A from the log, we prevote nil.
    let b = fx.block(2, 20);
    m.handle(TimestampMs(3000), Input::Vote(fx.precommit(2, 1, None)));
    m.handle(TimestampMs(3000), Input::Vote(fx.precommit(3, 1, None)));
    m.handle(
        TimestampMs(3001),
        Input::Proposal(fx.proposal(2, 1, None, &b)),
    );
    let out = m.handle(
        TimestampMs(3002),
        Input::BlockValidated {
            block_hash: b.hash(),
            valid: true,
        },
    );
    assert_eq!(out, sent_vote(&fx.prevote(0, 1, None)).to_vec());

    // A log from another validator, or a corrupt one with two different votes, is refused.
    let foreign = vec![WalEntry::Vote(fx.prevote(1, 0, ida))];
    assert!(ConsensusMachine::restore(fx.config(0), foreign).is_err());
    let conflicting = vec![
        WalEntry::Vote(fx.prevote(0, 0, ida)),
        WalEntry::Vote(fx.prevote(0, 0, None)),
    ];
    assert!(ConsensusMachine::restore(fx.config(0), conflicting).is_err());
    // A log of an older height is ignored when the next height starts.
    let mut m = ConsensusMachine::restore(fx.config(0), wal).expect("own log");
    let out = m.handle(
        TimestampMs(0),
        Input::StartHeight {
            height: Height(2),
            validators: fx.set.clone(),
        },
    );
    assert!(
        out.iter().all(|o| !matches!(o, Output::Broadcast(_))),
        "{out:?}"
    );
    assert_eq!(m.snapshot().step, Step::Propose);
    assert_eq!(m.snapshot().locked, None);
}

/// A restored proposer re-sends its logged proposal instead of asking for a new block.
#[test]
fn n4_restored_proposer_resends_its_logged_proposal() {
    let fx = Fixture::new(4);
    let mut m = fx.machine(1);
    let a = fx.block(1, 10);
    m.handle(TimestampMs(0), fx.start());
    let out = m.handle(TimestampMs(10), Input::BlockBuilt(a.clone()));
    let wal: Vec<WalEntry> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    // Crash right after logging the proposal, before anything else.
    let wal = wal[..1].to_vec();
    let p = fx.proposal(1, 0, None, &a);
    assert_eq!(wal, vec![WalEntry::Proposal(p.clone())]);
    let mut m = ConsensusMachine::restore(fx.config(1), wal).expect("own log");
    let out = m.handle(TimestampMs(50), fx.start());
    assert_eq!(
        out,
        cat(vec![
            vec![
                Output::Broadcast(ConsensusMessage::Proposal(p)),
                fx.timeout(TimeoutKind::Propose, 0, 50),
            ],
            sent_vote(&fx.prevote(1, 0, Some(a.hash()))).to_vec(),
        ])
    );
}

/// Messages for the next height are buffered and replayed when it starts.
#[test]
fn n4_next_height_messages_are_buffered_until_it_starts() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let h2 = Height(2);
    let mut b2 = fx.block(2, 30).into_block();
    b2.header.height = h2;
    let b2 = b2.seal().expect("body unchanged");
    // Height 2 round 0 proposer: slot (2 + 0) mod 4 = v2.
    let p2 = Proposal {
        height: h2,
        round: Round(0),
        pol_round: None,
        proposer: fx.keys[2].address(),
        block: b2.clone(),
    }
    .sign(&fx.chain, &fx.keys[2]);
    assert_eq!(m.handle(TimestampMs(5), Input::Proposal(p2)), vec![]);
    let out = m.handle(
        TimestampMs(6),
        Input::StartHeight {
            height: h2,
            validators: fx.set.clone(),
        },
    );
    assert_eq!(
        out,
        vec![
            Output::ScheduleTimeout {
                height: h2,
                round: Round(0),
                kind: TimeoutKind::Propose,
                at: TimestampMs(6 + 2000),
            },
            Output::ValidateBlock {
                height: h2,
                block: b2,
            },
        ]
    );
}

/// Tick: nothing the first time (progress is measured between ticks), then the round's own
/// messages are sent again while stuck.
#[test]
fn n4_tick_resends_own_messages_when_stuck() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let pv = fx.prevote(0, 0, None);
    m.handle(
        TimestampMs(2000),
        Input::TimeoutElapsed {
            height: H,
            round: Round(0),
            kind: TimeoutKind::Propose,
        },
    );
    assert_eq!(m.handle(TimestampMs(2500), Input::Tick), vec![]);
    assert_eq!(
        m.handle(TimestampMs(3000), Input::Tick),
        vec![Output::Broadcast(ConsensusMessage::Vote(pv))]
    );
}

/// An observer (no key) follows and decides without ever signing.
#[test]
fn n4_observer_decides_without_voting() {
    let fx = Fixture::new(4);
    let mut m = ConsensusMachine::new(ConsensusConfig {
        chain_id: fx.chain.clone(),
        params: fx.params.clone(),
        key: None,
    });
    let a = fx.block(1, 10);
    let ida = Some(a.hash());
    let mut all = Vec::new();
    all.extend(m.handle(TimestampMs(0), fx.start()));
    all.extend(m.handle(TimestampMs(1), Input::Proposal(fx.proposal(1, 0, None, &a))));
    all.extend(m.handle(
        TimestampMs(2),
        Input::BlockValidated {
            block_hash: a.hash(),
            valid: true,
        },
    ));
    for v in 1..4 {
        all.extend(m.handle(TimestampMs(3), Input::Vote(fx.prevote(v, 0, ida))));
    }
    for v in 1..4 {
        all.extend(m.handle(TimestampMs(4), Input::Vote(fx.precommit(v, 0, ida))));
    }
    assert!(
        all.iter()
            .all(|o| !matches!(o, Output::Persist(_) | Output::Broadcast(_))),
        "{all:?}"
    );
    assert!(matches!(all.last(), Some(Output::Decide { .. })), "{all:?}");
}

// -------------------------------------------------------------------------------------------------
// One block, one body (ADR 0007): a header's hash names exactly one body.
// -------------------------------------------------------------------------------------------------

/// The borsh layout of a [`SignedProposal`] inside a [`ConsensusMessage`], with an unchecked
/// block: what a byzantine proposer or a relayer can put on the wire.
#[derive(borsh::BorshSerialize)]
struct WireProposal {
    tag: u8,
    height: Height,
    round: Round,
    pol_round: Option<Round>,
    proposer: ledger_core::Address,
    block: Block,
    signature: ledger_core::Signature,
}

/// `signed`, with its block replaced by `block`, as bytes of a consensus message.
fn wire_bytes_with_body(signed: &SignedProposal, block: Block) -> Vec<u8> {
    let p = &signed.proposal;
    ledger_core::codec::encode(&WireProposal {
        tag: 0,
        height: p.height,
        round: p.round,
        pol_round: p.pol_round,
        proposer: p.proposer,
        block,
        signature: signed.signature,
    })
}

fn transfer(fx: &Fixture, from: u32, nonce: u64) -> ledger_core::SignedTransaction {
    let key = Keypair::dev("steps-account", from);
    ledger_core::Transaction {
        chain_id: fx.chain.clone(),
        from: key.public(),
        to: Keypair::dev("steps-account", from + 1).address(),
        amount: ledger_core::Amount(5),
        fee: ledger_core::Amount(1),
        nonce: ledger_core::Nonce(nonce),
        memo: Vec::new(),
    }
    .sign(&key)
}

impl Fixture {
    /// A block of height 1 by `by` at `ts` carrying `txs` (header made from the body).
    fn block_with(
        &self,
        by: usize,
        ts: u64,
        txs: Vec<ledger_core::SignedTransaction>,
    ) -> SealedBlock {
        let mut b = self.block(by, ts).into_block();
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
        b.header.tx_root = merkle_root(&hashes);
        b.header.tx_count = txs.len() as u32;
        b.txs = txs;
        b.seal().expect("header made from the body")
    }
}

fn decode_message(bytes: &[u8]) -> Result<Input, ledger_core::codec::DecodeError> {
    Ok(
        match ledger_core::codec::decode::<ConsensusMessage>(bytes)? {
            ConsensusMessage::Proposal(p) => Input::Proposal(p),
            ConsensusMessage::Vote(v) => Input::Vote(v),
        },
    )
}

fn has_validate(out: &[Output]) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::ValidateBlock { .. }))
}

/// The reproduced defect: round 0's block B is validated but not decided; the round-1 proposer
/// re-proposes B's header with another body. That body cannot reach the machine (it does not seal
/// and its bytes do not decode), and what the machine decides is B's own body, byte for byte, with
/// no second validation.
#[test]
fn n4_round1_proposer_swapping_the_body_under_a_validated_header_cannot_get_it_decided() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let b = fx.block(1, 10);
    let h = b.hash();
    let out = m.handle(
        TimestampMs(10),
        Input::Proposal(fx.proposal(1, 0, None, &b)),
    );
    assert_eq!(out, vec![validate(&b)], "round 0: B is validated once");
    let out = m.handle(
        TimestampMs(11),
        Input::BlockValidated {
            block_hash: h,
            valid: true,
        },
    );
    assert_eq!(out, sent_vote(&fx.prevote(0, 0, Some(h))).to_vec());
    // Round 0 ends without a decision.
    for i in 1..4 {
        m.handle(TimestampMs(12), Input::Vote(fx.precommit(i, 0, None)));
    }
    m.handle(
        TimestampMs(20),
        Input::TimeoutElapsed {
            height: H,
            round: Round(0),
            kind: TimeoutKind::Precommit,
        },
    );
    assert_eq!(m.round(), Round(1));

    // The round-1 proposer (v2) signs B's header hash and ships another body.
    let honest = fx.proposal(2, 1, None, &b);
    let swapped = Block {
        txs: vec![transfer(&fx, 0, 0)],
        ..b.block().clone()
    };
    assert!(matches!(
        swapped.clone().seal(),
        Err(ledger_core::BodyError::TxCountMismatch { header: 0, got: 1 })
    ));
    let mut swapped_counted = swapped.clone();
    swapped_counted.header.tx_count = 1;
    assert!(matches!(
        swapped_counted.clone().seal(),
        Err(ledger_core::BodyError::TxRootMismatch { .. })
    ));
    for body in [swapped, swapped_counted] {
        let bytes = wire_bytes_with_body(&honest, body);
        assert!(
            matches!(
                decode_message(&bytes),
                Err(ledger_core::codec::DecodeError::BlockBody(_))
            ),
            "a proposal whose body is not its header's does not decode"
        );
    }

    // What does reach the machine is B with B's body: no second validation, and the decision
    // carries B byte for byte.
    let input = decode_message(&ledger_core::codec::encode(&ConsensusMessage::Proposal(
        honest,
    )))
    .expect("the honest re-proposal decodes");
    let out = m.handle(TimestampMs(21), input);
    assert!(!has_validate(&out), "h is known valid: {out:?}");
    let mut decided = None;
    for i in 1..4 {
        for o in m.handle(TimestampMs(22), Input::Vote(fx.precommit(i, 1, Some(h)))) {
            if let Output::Decide { block, .. } = o {
                decided = Some(block);
            }
        }
    }
    let decided = decided.expect("decided in round 1");
    assert_eq!(
        ledger_core::codec::encode(decided.block()),
        ledger_core::codec::encode(b.block())
    );
    assert!(decided.block().txs.is_empty());
}

/// A relayer without a key alters the body of an honest proposal and races it ahead of the real
/// one. The copy is refused when it is decoded, so the real proposal is still the round's first:
/// it is validated with its own body and voted for.
#[test]
fn n4_tampered_copy_of_a_proposal_arriving_first_does_not_stop_the_real_one() {
    let fx = Fixture::new(4);
    let mut m = started_n4(&fx, 0);
    let b = fx.block_with(1, 10, vec![transfer(&fx, 0, 0), transfer(&fx, 2, 0)]);
    let real = fx.proposal(1, 0, None, &b);
    let tampered_bodies = [
        // One transaction dropped, header kept.
        Block {
            txs: vec![b.block().txs[0].clone()],
            ..b.block().clone()
        },
        // Order swapped.
        Block {
            txs: vec![b.block().txs[1].clone(), b.block().txs[0].clone()],
            ..b.block().clone()
        },
        // A signature bit flipped.
        {
            let mut x = b.block().clone();
            x.txs[1].signature.0[0] ^= 1;
            x
        },
    ];
    for body in tampered_bodies {
        assert!(matches!(
            decode_message(&wire_bytes_with_body(&real, body)),
            Err(ledger_core::codec::DecodeError::BlockBody(_))
        ));
    }
    let input = decode_message(&ledger_core::codec::encode(&ConsensusMessage::Proposal(
        real,
    )))
    .expect("the real proposal decodes");
    let out = m.handle(TimestampMs(11), input);
    assert_eq!(
        out,
        vec![validate(&b)],
        "the real body is the one validated"
    );
    let out = m.handle(
        TimestampMs(12),
        Input::BlockValidated {
            block_hash: b.hash(),
            valid: true,
        },
    );
    assert_eq!(out, sent_vote(&fx.prevote(0, 0, Some(b.hash()))).to_vec());
}
