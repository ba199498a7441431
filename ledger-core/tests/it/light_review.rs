//! Adversarial review of the light-client check (`ledger_core::light`): a lying node or proxy that
//! holds real material (honest proofs of other keys, older final headers, other rounds' and
//! chains' signatures, other positions' audit paths) tries to make a wallet accept a value the
//! chain does not hold. Every attempt here must be refused; an honest answer must verify.
//!
//! State proofs are taken apart and rebuilt through their documented canonical encoding
//! (`leaf: Option<(key_hash, value_hash)>`, then `u32` count and siblings tagged `0` null,
//! `1 left right` internal, `2 key_hash value_hash` leaf).

use ledger_core::api::{
    AccountProofResponse, MAX_STATE_PROOF_BYTES, PROOF_FORMAT, TxProofResponse,
};
use ledger_core::genesis::Genesis;
use ledger_core::light::{LightError, TrustedChain, decode_state_proof, encode_state_proof};
use ledger_core::merkle::{InclusionProof, merkle_root, prove_inclusion, verify_inclusion};
use ledger_core::state::{Account, State};
use ledger_core::vote::CommitSig;
use ledger_core::{
    Address, Amount, BlockHeader, ChainId, CommitCertificate, ConsensusParams, Hash, Height,
    Keypair, Nonce, Round, SignedTransaction, TimestampMs, Transaction, Validator, Vote, VoteKind,
};
use proptest::prelude::*;

const CHAIN: &str = "light-review";

fn genesis() -> Genesis {
    Genesis::dev(CHAIN, 4, 4).expect("dev genesis")
}

fn addr(i: u32) -> Address {
    Keypair::dev("review", i).address()
}

fn absent(i: u32) -> Address {
    Keypair::dev("review-absent", i).address()
}

fn acc(balance: u64, nonce: u64) -> Account {
    Account {
        balance: Amount(balance),
        nonce: Nonce(nonce),
    }
}

fn header(
    chain: &ChainId,
    height: u64,
    state_root: Hash,
    txs: &[SignedTransaction],
) -> BlockHeader {
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    BlockHeader {
        chain_id: chain.clone(),
        height: Height(height),
        prev_hash: Hash::digest(&height.to_le_bytes()),
        timestamp_ms: TimestampMs(1_700_000_000_000 + height),
        proposer: Keypair::dev("validator", 0).address(),
        tx_root: merkle_root(&hashes),
        tx_count: txs.len() as u32,
        state_root,
        last_commit_hash: Hash::digest(b"last commit"),
    }
}

fn precommit(
    chain: &ChainId,
    i: u32,
    kind: VoteKind,
    height: Height,
    round: Round,
    h: Hash,
) -> ledger_core::SignedVote {
    let key = Keypair::dev("validator", i);
    Vote {
        kind,
        height,
        round,
        block_hash: Some(h),
        validator: key.address(),
    }
    .sign(chain, &key)
}

fn certify_round(
    g: &Genesis,
    header: &BlockHeader,
    signers: &[u32],
    round: Round,
) -> CommitCertificate {
    let hash = header.hash();
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            precommit(
                g.chain_id(),
                i,
                VoteKind::Precommit,
                header.height,
                round,
                hash,
            )
        })
        .collect();
    CommitCertificate::from_precommits(header.height, round, hash, g.validators(), &votes)
}

fn certify(g: &Genesis, header: &BlockHeader) -> CommitCertificate {
    certify_round(g, header, &[0, 1, 2, 3], Round(0))
}

fn account_answer(
    g: &Genesis,
    state: &State,
    header: &BlockHeader,
    commit: &CommitCertificate,
    who: &Address,
) -> AccountProofResponse {
    let p = state.prove(who).expect("proof");
    AccountProofResponse {
        format: PROOF_FORMAT,
        chain_id: g.chain_id().clone(),
        genesis_hash: g.hash(),
        address: *who,
        balance: p.account.balance,
        nonce: p.account.nonce,
        height: header.height,
        header: header.clone(),
        commit: commit.clone(),
        proof: encode_state_proof(&p.proof),
    }
}

/// A state of `n` accounts at `addr(0..n)`, its header at `height` and a full certificate.
struct Chain {
    g: Genesis,
    state: State,
    header: BlockHeader,
    commit: CommitCertificate,
}

fn chain_with(accounts: Vec<(Address, Account)>, height: u64) -> Chain {
    let g = genesis();
    let state = State::from_accounts(accounts).expect("state");
    let header = header(g.chain_id(), height, state.root(), &[]);
    let commit = certify(&g, &header);
    Chain {
        g,
        state,
        header,
        commit,
    }
}

fn chain(n: u32) -> Chain {
    chain_with(
        (0..n)
            .map(|i| (addr(i), acc(1_000 + u64::from(i), u64::from(i % 4))))
            .collect(),
        9,
    )
}

impl Chain {
    fn answer(&self, who: &Address) -> AccountProofResponse {
        account_answer(&self.g, &self.state, &self.header, &self.commit, who)
    }
    fn trust(&self) -> TrustedChain {
        TrustedChain::new(&self.g)
    }
}

// ---------------------------------------------------------------------------------------------
// The state proof's encoding, taken apart and put together again.

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Null,
    Internal([u8; 32], [u8; 32]),
    Leaf([u8; 32], [u8; 32]),
}

#[derive(Clone, Debug, PartialEq)]
struct Parts {
    leaf: Option<([u8; 32], [u8; 32])>,
    siblings: Vec<Node>,
}

fn take32(b: &[u8], at: &mut usize) -> [u8; 32] {
    let out: [u8; 32] = b[*at..*at + 32].try_into().expect("32 bytes");
    *at += 32;
    out
}

fn parts(bytes: &[u8]) -> Parts {
    let mut at = 1;
    let leaf = match bytes[0] {
        0 => None,
        _ => {
            let k = take32(bytes, &mut at);
            let v = take32(bytes, &mut at);
            Some((k, v))
        }
    };
    let n = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
    at += 4;
    let mut siblings = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = bytes[at];
        at += 1;
        siblings.push(match tag {
            0 => Node::Null,
            1 => {
                let l = take32(bytes, &mut at);
                Node::Internal(l, take32(bytes, &mut at))
            }
            _ => {
                let k = take32(bytes, &mut at);
                Node::Leaf(k, take32(bytes, &mut at))
            }
        });
    }
    assert_eq!(at, bytes.len(), "the whole proof was read");
    Parts { leaf, siblings }
}

fn bytes(p: &Parts) -> Vec<u8> {
    let mut out = Vec::new();
    match &p.leaf {
        None => out.push(0),
        Some((k, v)) => {
            out.push(1);
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
    }
    out.extend_from_slice(&(p.siblings.len() as u32).to_le_bytes());
    for s in &p.siblings {
        match s {
            Node::Null => out.push(0),
            Node::Internal(l, r) => {
                out.push(1);
                out.extend_from_slice(l);
                out.extend_from_slice(r);
            }
            Node::Leaf(k, v) => {
                out.push(2);
                out.extend_from_slice(k);
                out.extend_from_slice(v);
            }
        }
    }
    out
}

#[test]
fn light_review_the_encoding_helpers_round_trip_honest_proofs() {
    let c = chain(64);
    for who in [addr(3), absent(3)] {
        let a = c.answer(&who);
        assert_eq!(bytes(&parts(&a.proof)), a.proof);
        assert!(c.trust().verify_account(&who, &a).is_ok());
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts.

/// Every honest proof in the tree (of every present account and of many absent keys), presented
/// as the absence or as another value of an existing account: all refused.
#[test]
fn light_review_no_honest_proof_of_any_key_makes_an_existing_account_absent_or_another_value() {
    let c = chain(120);
    let trust = c.trust();
    let keys: Vec<Address> = (0..120).map(addr).chain((0..300).map(absent)).collect();
    let proofs: Vec<Vec<u8>> = keys.iter().map(|k| c.answer(k).proof).collect();
    for victim in (0..120).step_by(7).map(addr) {
        let real = c.state.get(&victim).expect("get");
        for (k, proof) in keys.iter().zip(&proofs) {
            for claim in [
                Account::EMPTY,
                acc(real.balance.0 + 1, real.nonce.0),
                acc(real.balance.0, real.nonce.0 + 1),
            ] {
                let mut a = c.answer(&victim);
                a.proof = proof.clone();
                (a.balance, a.nonce) = (claim.balance, claim.nonce);
                let got = trust.verify_account(&victim, &a);
                assert!(
                    matches!(got, Err(LightError::StateProof { .. })),
                    "victim {victim} shown as {claim:?} with the proof of {k}: {got:?}"
                );
            }
        }
    }
}

/// A non-inclusion proof that ends at a leaf sharing a prefix with the asked key, cut short or
/// lengthened (so the common-prefix rule would let it through), still has to climb to the root.
#[test]
fn light_review_reshaped_non_inclusion_proofs_do_not_hide_an_account() {
    let c = chain(200);
    let trust = c.trust();
    for victim in (0..200).step_by(11).map(addr) {
        let own = parts(&c.answer(&victim).proof);
        let leaf = own.leaf.expect("a present account's proof has its leaf");
        let mut variants = Vec::new();
        // The victim's leaf itself, claimed absent.
        variants.push(own.clone());
        // Without the leaf: "an empty subtree" at every depth.
        for depth in 0..=own.siblings.len() {
            variants.push(Parts {
                leaf: None,
                siblings: own.siblings[own.siblings.len() - depth..].to_vec(),
            });
        }
        // The leaf moved up or down the path, its key tweaked so that only the common prefix counts.
        for cut in 0..own.siblings.len() {
            let mut other = leaf;
            other.0[31] ^= 1;
            variants.push(Parts {
                leaf: Some(other),
                siblings: own.siblings[cut..].to_vec(),
            });
        }
        let mut deeper = own.clone();
        deeper.siblings.insert(0, Node::Null);
        variants.push(deeper);
        let mut deeper_none = own.clone();
        deeper_none.leaf = None;
        deeper_none.siblings.insert(0, Node::Leaf(leaf.0, leaf.1));
        variants.push(deeper_none);
        for v in variants {
            let mut a = c.answer(&victim);
            a.proof = bytes(&v);
            (a.balance, a.nonce) = (Amount(0), Nonce(0));
            let got = trust.verify_account(&victim, &a);
            assert!(
                got.is_err(),
                "victim {victim} shown absent by {v:?}: {got:?}"
            );
        }
    }
}

/// balance 0 with a nonce, and a balance with nonce 0, are present accounts, proven as such; each
/// is refused as absent and as the other.
#[test]
fn light_review_zero_balance_or_zero_nonce_accounts_are_present_and_distinct() {
    let (a0, a1, a2) = (addr(0), addr(1), addr(2));
    let c = chain_with(vec![(a0, acc(0, 5)), (a1, acc(5, 0)), (a2, acc(0, 1))], 4);
    let trust = c.trust();
    for (who, real) in [(a0, acc(0, 5)), (a1, acc(5, 0)), (a2, acc(0, 1))] {
        let v = trust.verify_account(&who, &c.answer(&who)).expect("honest");
        assert_eq!(v.account, real);
        for lie in [
            Account::EMPTY,
            acc(5, 0),
            acc(0, 5),
            acc(real.nonce.0, real.balance.0),
            acc(0, 0),
        ] {
            if lie == real {
                continue;
            }
            let mut a = c.answer(&who);
            (a.balance, a.nonce) = (lie.balance, lie.nonce);
            assert!(
                matches!(
                    trust.verify_account(&who, &a),
                    Err(LightError::StateProof { .. })
                ),
                "{who} {real:?} passed as {lie:?}"
            );
        }
    }
}

/// The proof for key A, with A's value, answered for B (with `address` set to A or to B).
#[test]
fn light_review_a_proof_for_one_key_is_refused_for_another() {
    let c = chain(50);
    let trust = c.trust();
    for (a, b) in [
        (addr(1), addr(2)),
        (addr(3), absent(9)),
        (absent(4), addr(5)),
        (absent(1), absent(2)),
    ] {
        let ans = c.answer(&a);
        assert!(matches!(
            trust.verify_account(&b, &ans),
            Err(LightError::WrongKey { .. })
        ));
        let mut relabelled = ans.clone();
        relabelled.address = b;
        let got = trust.verify_account(&b, &relabelled);
        assert!(got.is_err(), "{a}'s proof accepted for {b}: {got:?}");
    }
}

/// A value of an older state under the newer header (and the newer value under the older one).
/// An older *final* header with its own proof does verify: the check proves a value the chain held
/// at a final height and says which height; freshness is the caller's to judge.
#[test]
fn light_review_a_stale_value_fails_under_the_newer_header_and_an_old_answer_names_its_height() {
    let who = addr(1);
    let old = chain_with(vec![(addr(0), acc(10, 0)), (who, acc(500, 0))], 5);
    let new = chain_with(vec![(addr(0), acc(10, 0)), (who, acc(100, 1))], 6);
    let trust = new.trust();
    let stale_proof = old.answer(&who);
    let mut a = new.answer(&who);
    (a.balance, a.nonce, a.proof) = (
        stale_proof.balance,
        stale_proof.nonce,
        stale_proof.proof.clone(),
    );
    assert!(matches!(
        trust.verify_account(&who, &a),
        Err(LightError::StateProof { .. })
    ));
    // The old header with the new height in the answer.
    let mut b = stale_proof.clone();
    b.height = Height(6);
    assert!(matches!(
        trust.verify_account(&who, &b),
        Err(LightError::HeightMismatch { .. })
    ));
    // The old answer as it is: a value held at final height 5, and it says so.
    let v = trust
        .verify_account(&who, &stale_proof)
        .expect("an older final answer is true");
    assert_eq!((v.at.header.height, v.account), (Height(5), acc(500, 0)));
}

/// Undecodable, non-canonical, oversized and over-deep proofs are refused without a panic or a
/// large allocation.
#[test]
fn light_review_hostile_proof_encodings_are_refused() {
    let c = chain(30);
    let trust = c.trust();
    let who = addr(2);
    let honest = c.answer(&who).proof;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // A sibling count of u32::MAX with nothing after it.
    cases.push(("huge count", [&[0u8][..], &u32::MAX.to_le_bytes()].concat()));
    // A leaf tag of 2 (non-canonical option).
    let mut t = honest.clone();
    t[0] = 2;
    cases.push(("option tag 2", t));
    // A node tag of 3.
    let mut p = parts(&honest);
    p.siblings.push(Node::Null);
    let mut t = bytes(&p);
    let last = t.len() - 1;
    t[last] = 3;
    cases.push(("node tag 3", t));
    // A trailing byte.
    let mut t = honest.clone();
    t.push(0);
    cases.push(("trailing", t));
    // Truncated.
    cases.push(("truncated", honest[..honest.len() - 1].to_vec()));
    cases.push(("empty", Vec::new()));
    // One byte over the bound, and the bound itself full of garbage.
    cases.push(("oversized", vec![1u8; MAX_STATE_PROOF_BYTES + 1]));
    cases.push(("max garbage", vec![0xffu8; MAX_STATE_PROOF_BYTES]));
    // 257 null siblings (decodes; jmt refuses more than 256).
    cases.push((
        "257 siblings",
        bytes(&Parts {
            leaf: None,
            siblings: vec![Node::Null; 257],
        }),
    ));
    // The largest well-formed proof: a leaf and 256 internal siblings, exactly the bound.
    let max = bytes(&Parts {
        leaf: Some(([7; 32], [8; 32])),
        siblings: vec![Node::Internal([1; 32], [2; 32]); 256],
    });
    assert_eq!(
        max.len(),
        MAX_STATE_PROOF_BYTES,
        "the bound is the largest proof"
    );
    assert!(
        decode_state_proof(&max).is_ok(),
        "the largest proof decodes"
    );
    cases.push(("largest wrong", max));
    for (what, proof) in cases {
        let mut a = c.answer(&who);
        a.proof = proof;
        let got = trust.verify_account(&who, &a);
        assert!(
            matches!(
                got,
                Err(LightError::MalformedProof { .. }
                    | LightError::ProofTooLarge { .. }
                    | LightError::StateProof { .. })
            ),
            "{what}: {got:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Headers and certificates.

fn expect_refused(
    trust: &TrustedChain,
    who: &Address,
    a: &AccountProofResponse,
    what: &str,
) -> LightError {
    match trust.verify_account(who, a) {
        Ok(v) => panic!("{what}: accepted {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn light_review_certificate_games_are_refused() {
    let c = chain(10);
    let trust = c.trust();
    let who = addr(1);
    let honest = c.answer(&who);
    trust.verify_account(&who, &honest).expect("honest");

    // Duplicated signer appended (5 signatures of 4 validators) and replacing another.
    let mut a = honest.clone();
    a.commit.signatures.push(a.commit.signatures[0].clone());
    assert!(matches!(
        expect_refused(&trust, &who, &a, "dup appended"),
        LightError::TooManySignatures { .. }
    ));
    let mut a = honest.clone();
    a.commit.signatures = vec![
        a.commit.signatures[0].clone(),
        a.commit.signatures[0].clone(),
        a.commit.signatures[1].clone(),
    ];
    assert!(matches!(
        expect_refused(&trust, &who, &a, "dup"),
        LightError::UnorderedSigners
    ));
    // Two real signatures of a 2-of-4 minority, each given twice (4 entries "of 4").
    let mut a = honest.clone();
    let (s0, s1) = (
        a.commit.signatures[0].clone(),
        a.commit.signatures[1].clone(),
    );
    a.commit.signatures = vec![s0.clone(), s0, s1.clone(), s1];
    assert!(matches!(
        expect_refused(&trust, &who, &a, "dup pairs"),
        LightError::UnorderedSigners
    ));
    // Out of order.
    let mut a = honest.clone();
    a.commit.signatures.reverse();
    assert!(matches!(
        expect_refused(&trust, &who, &a, "reversed"),
        LightError::UnorderedSigners
    ));
    // Another height on the certificate (block hash right).
    let mut a = honest.clone();
    a.commit.height = Height(a.commit.height.0 + 1);
    assert!(matches!(
        expect_refused(&trust, &who, &a, "cert height"),
        LightError::CertificateHeight { .. }
    ));
    // The header's height changed with the answer's (the certificate signs the old hash).
    let mut a = honest.clone();
    a.header.height = Height(a.header.height.0 + 1);
    a.height = a.header.height;
    a.commit.height = a.header.height;
    assert!(matches!(
        expect_refused(&trust, &who, &a, "header height"),
        LightError::CertificateBlock { .. }
    ));
    // ... and the certificate's block hash set to the new header's hash: signatures do not cover it.
    a.commit.block_hash = a.header.hash();
    assert!(matches!(
        expect_refused(&trust, &who, &a, "re-hashed"),
        LightError::BadSignature { .. }
    ));
    // Another round on the certificate.
    let mut a = honest.clone();
    a.commit.round = Round(1);
    assert!(matches!(
        expect_refused(&trust, &who, &a, "round"),
        LightError::BadSignature { .. }
    ));
    // Signatures from two rounds mixed (each genuine for its round).
    let r1 = certify_round(&c.g, &c.header, &[0, 1, 2, 3], Round(1));
    let mut a = honest.clone();
    a.commit.signatures[2] = r1.signatures[2].clone();
    assert!(matches!(
        expect_refused(&trust, &who, &a, "mixed rounds"),
        LightError::BadSignature { .. }
    ));
    // Prevotes for the header passed as precommits.
    let hash = c.header.hash();
    let prevotes: Vec<CommitSig> = (0..4)
        .map(|i| {
            let v = precommit(
                c.g.chain_id(),
                i,
                VoteKind::Prevote,
                c.header.height,
                Round(0),
                hash,
            );
            CommitSig {
                validator: v.vote.validator,
                signature: v.signature,
            }
        })
        .collect();
    let mut sorted = prevotes.clone();
    sorted.sort_by_key(|s| c.g.validators().index_of(&s.validator));
    let mut a = honest.clone();
    a.commit.signatures = sorted;
    assert!(matches!(
        expect_refused(&trust, &who, &a, "prevotes"),
        LightError::BadSignature { .. }
    ));
    // Two of four (exactly half) and no signatures at all.
    let mut a = honest.clone();
    a.commit.signatures.truncate(2);
    assert!(matches!(
        expect_refused(&trust, &who, &a, "two of four"),
        LightError::BelowThreshold { .. }
    ));
    a.commit.signatures.clear();
    assert!(matches!(
        expect_refused(&trust, &who, &a, "none"),
        LightError::BelowThreshold { .. }
    ));
    // A signer that is not a validator (a real precommit of another key).
    let stranger = Keypair::dev("not-a-validator", 0);
    let sv = Vote {
        kind: VoteKind::Precommit,
        height: c.header.height,
        round: Round(0),
        block_hash: Some(hash),
        validator: stranger.address(),
    }
    .sign(c.g.chain_id(), &stranger);
    let mut a = honest.clone();
    a.commit.signatures[3] = CommitSig {
        validator: sv.vote.validator,
        signature: sv.signature,
    };
    assert!(matches!(
        expect_refused(&trust, &who, &a, "stranger"),
        LightError::NotAValidator { .. }
    ));
}

/// A genesis whose validators have unequal power: three of four signers by count, below two
/// thirds by power, are refused; the one heavy validator and one more suffice.
#[test]
fn light_review_quorum_is_by_power_not_by_count() {
    let dev = genesis();
    let powers = [100u64, 10, 10, 10];
    let validators: Vec<Validator> = (0..4)
        .map(|i| {
            let k = Keypair::dev("validator", i);
            Validator {
                address: k.address(),
                public_key: k.public(),
                power: powers[i as usize],
            }
        })
        .collect();
    let g = Genesis::new(
        dev.chain_id().clone(),
        dev.genesis_time_ms(),
        None,
        ConsensusParams::default(),
        validators,
        dev.accounts().to_vec(),
    )
    .expect("genesis");
    let state = State::from_accounts([(addr(0), acc(1, 0))]).expect("state");
    let h = header(g.chain_id(), 3, state.root(), &[]);
    let trust = TrustedChain::new(&g);
    let light_ones: Vec<u32> = (1..4).collect();
    let cert = certify_round(&g, &h, &light_ones, Round(0));
    assert_eq!(cert.signatures.len(), 3);
    assert!(matches!(
        trust.verify_header(&h, &cert),
        Err(LightError::BelowThreshold { .. })
    ));
    let cert = certify_round(&g, &h, &[0, 1], Round(0));
    let v = trust
        .verify_header(&h, &cert)
        .expect("110 of 130 is more than two thirds");
    assert_eq!(v.signed_power, 110);
}

/// A chain with another id and the very same validator keys: its genuinely certified header is
/// refused, whatever chain id and genesis hash the answer claims.
#[test]
fn light_review_another_chains_certified_header_is_refused() {
    let c = chain(10);
    let who = addr(1);
    let other = Genesis::dev("light-review-fork", 4, 4).expect("dev genesis");
    let h = header(other.chain_id(), 9, c.state.root(), &[]);
    let commit = certify(&other, &h);
    assert!(TrustedChain::new(&other).verify_header(&h, &commit).is_ok());
    let mut a = account_answer(&c.g, &c.state, &h, &commit, &who);
    // The answer claims our chain and genesis; the header is the other chain's.
    a.chain_id = c.g.chain_id().clone();
    a.genesis_hash = c.g.hash();
    assert!(matches!(
        c.trust().verify_account(&who, &a),
        Err(LightError::WrongChain { .. })
    ));
    // The header relabelled with our chain id: the other chain's signatures do not cover it.
    let mut a2 = a.clone();
    a2.header.chain_id = c.g.chain_id().clone();
    a2.commit.block_hash = a2.header.hash();
    assert!(matches!(
        c.trust().verify_account(&who, &a2),
        Err(LightError::BadSignature { .. })
    ));
    // Format and envelope.
    let mut a3 = c.answer(&who);
    a3.format = 2;
    assert!(matches!(
        c.trust().verify_account(&who, &a3),
        Err(LightError::UnsupportedFormat { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Transactions.

fn txs(chain: &ChainId, n: u32) -> Vec<SignedTransaction> {
    (0..n)
        .map(|i| {
            let key = Keypair::dev("review-sender", i);
            Transaction {
                chain_id: chain.clone(),
                from: key.public(),
                to: addr(i),
                amount: Amount(10 + u64::from(i)),
                fee: Amount(1),
                nonce: Nonce(0),
                memo: vec![],
            }
            .sign(&key)
        })
        .collect()
}

struct TxBlock {
    g: Genesis,
    txs: Vec<SignedTransaction>,
    header: BlockHeader,
    commit: CommitCertificate,
}

fn tx_block(n: u32, height: u64) -> TxBlock {
    let g = genesis();
    let txs = txs(g.chain_id(), n);
    let header = header(g.chain_id(), height, Hash::digest(b"some state"), &txs);
    let commit = certify(&g, &header);
    TxBlock {
        g,
        txs,
        header,
        commit,
    }
}

impl TxBlock {
    fn answer(&self, index: usize) -> TxProofResponse {
        let hashes: Vec<Hash> = self.txs.iter().map(SignedTransaction::hash).collect();
        TxProofResponse {
            format: PROOF_FORMAT,
            chain_id: self.g.chain_id().clone(),
            genesis_hash: self.g.hash(),
            hash: hashes[index],
            transaction: self.txs[index].clone(),
            height: self.header.height,
            index: index as u32,
            header: self.header.clone(),
            commit: self.commit.clone(),
            proof: prove_inclusion(&hashes, index).expect("in range"),
        }
    }
}

/// The last leaf of 13 and leaf 3 of 4 climb the same way; the root binds the count, and the
/// header's count is checked too.
#[test]
fn light_review_index_and_total_games_are_refused() {
    let b = tx_block(13, 20);
    let trust = TrustedChain::new(&b.g);
    let honest = b.answer(12);
    trust.verify_tx(&honest.hash, &honest).expect("honest");
    // Leaf 3 of 4 with the same audit path: fails the count against the header, and the root alone.
    let mut a = honest.clone();
    (a.index, a.proof.index, a.proof.total) = (3, 3, 4);
    assert!(matches!(
        trust.verify_tx(&a.hash, &a),
        Err(LightError::TxCountMismatch { .. })
    ));
    assert!(verify_inclusion(&b.header.tx_root, &honest.hash, &a.proof).is_err());
    // Every (index, total) the path could be passed off with, against the root.
    for total in 1..=40u64 {
        for index in 0..total {
            if (index, total) == (12, 13) {
                continue;
            }
            let p = InclusionProof {
                index,
                total,
                siblings: honest.proof.siblings.clone(),
            };
            assert!(
                verify_inclusion(&b.header.tx_root, &honest.hash, &p).is_err(),
                "{index} of {total}"
            );
        }
    }
    // The answer's index against the proof's: 3 said, 12 proven.
    let mut a = honest.clone();
    a.index = 3;
    assert!(matches!(
        trust.verify_tx(&a.hash, &a),
        Err(LightError::TxIndexMismatch { .. })
    ));
    // Extreme numbers: no panic, refused.
    for (index, total) in [
        (u64::MAX, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (u64::MAX, 13),
        (12, 0),
        (0, 0),
        (u64::from(u32::MAX), 13),
    ] {
        let mut a = honest.clone();
        a.proof.index = index;
        a.proof.total = total;
        a.index = u32::try_from(index).unwrap_or(u32::MAX);
        assert!(trust.verify_tx(&a.hash, &a).is_err(), "{index} of {total}");
        let p = InclusionProof {
            index,
            total,
            siblings: vec![Hash::ZERO; 64],
        };
        assert!(verify_inclusion(&b.header.tx_root, &honest.hash, &p).is_err());
        let p = InclusionProof {
            index,
            total,
            siblings: vec![Hash::ZERO; 100],
        };
        assert!(verify_inclusion(&b.header.tx_root, &honest.hash, &p).is_err());
    }
}

#[test]
fn light_review_transaction_and_hash_games_are_refused() {
    let b = tx_block(6, 21);
    let trust = TrustedChain::new(&b.g);
    let (x, y) = (b.answer(1), b.answer(4));
    // The transaction of y under x's hash and proof.
    let mut a = x.clone();
    a.transaction = y.transaction.clone();
    assert!(matches!(
        trust.verify_tx(&x.hash, &a),
        Err(LightError::TxHashMismatch { .. })
    ));
    // y's hash and transaction with x's proof and index.
    let mut a = x.clone();
    (a.hash, a.transaction) = (y.hash, y.transaction.clone());
    assert!(matches!(
        trust.verify_tx(&y.hash, &a),
        Err(LightError::TxNotInBlock(_))
    ));
    // x's answer for y's question.
    assert!(matches!(
        trust.verify_tx(&y.hash, &x),
        Err(LightError::WrongKey { .. })
    ));
    // A transaction that is in no block, with a real block's proof of another.
    let stray = txs(b.g.chain_id(), 7).pop().expect("one");
    let mut a = x.clone();
    (a.hash, a.transaction) = (stray.hash(), stray.clone());
    assert!(trust.verify_tx(&stray.hash(), &a).is_err());
    // The transaction with its signature changed: another hash.
    let mut a = x.clone();
    a.transaction.signature.0[0] ^= 1;
    assert!(trust.verify_tx(&x.hash, &a).is_err());
    // An empty block's header (tx_root zero, count 0), certified: nothing is in it.
    let empty = header(b.g.chain_id(), 22, Hash::digest(b"s"), &[]);
    let mut a = x.clone();
    a.commit = certify(&b.g, &empty);
    a.header = empty;
    a.height = Height(22);
    for (index, total) in [(0u64, 0u64), (1, 1), (0, 1)] {
        a.proof = InclusionProof {
            index,
            total,
            siblings: vec![],
        };
        a.index = index as u32;
        assert!(trust.verify_tx(&x.hash, &a).is_err());
    }
    // A one-transaction block: the root is not the leaf hash.
    let one = tx_block(1, 23);
    let ans = one.answer(0);
    TrustedChain::new(&one.g)
        .verify_tx(&ans.hash, &ans)
        .expect("single tx verifies");
    assert!(ans.proof.siblings.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Property tests: a prover with real material and random choices.

fn pool(c: &Chain) -> Vec<Parts> {
    (0..40)
        .map(addr)
        .chain((0..40).map(absent))
        .map(|k| parts(&c.answer(&k).proof))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A proof spliced from honest proofs' leaves and sibling runs never shows a value the
    /// account does not hold.
    #[test]
    fn light_review_spliced_honest_material_never_proves_a_lie(
        victim in 0u32..60,
        leaf_from in 0usize..80,
        sib_from in 0usize..80,
        cut in 0usize..12,
        keep_leaf in any::<bool>(),
        extra_null in 0usize..3,
        lie in prop_oneof![Just(0u8), Just(1), Just(2)],
    ) {
        thread_local! {
            static C: (Chain, Vec<Parts>) = { let c = chain(40); let p = pool(&c); (c, p) };
        }
        C.with(|(c, pool)| {
            let who = if victim < 40 { addr(victim) } else { absent(victim) };
            let real = c.state.get(&who).expect("get");
            let claim = match lie {
                0 => if real.is_empty() { acc(1, 0) } else { Account::EMPTY },
                1 => acc(real.balance.0.wrapping_add(1), real.nonce.0),
                _ => acc(real.balance.0, real.nonce.0 + 1),
            };
            let src = &pool[sib_from];
            let cut = cut.min(src.siblings.len());
            let mut siblings = vec![Node::Null; extra_null];
            siblings.extend_from_slice(&src.siblings[cut..]);
            let forged = Parts {
                leaf: if keep_leaf { pool[leaf_from].leaf } else { None },
                siblings,
            };
            let mut a = c.answer(&who);
            a.proof = bytes(&forged);
            (a.balance, a.nonce) = (claim.balance, claim.nonce);
            let got = c.trust().verify_account(&who, &a);
            prop_assert!(got.is_err(), "{who}: {real:?} shown as {claim:?}");
            Ok(())
        })?;
    }

    /// Any bytes as a proof: no panic, never a lie accepted.
    #[test]
    fn light_review_random_proof_bytes_never_verify(raw in prop::collection::vec(any::<u8>(), 0..600), victim in 0u32..10) {
        thread_local! {
            static C: Chain = chain(10);
        }
        C.with(|c| {
            let who = addr(victim);
            let mut a = c.answer(&who);
            a.proof = raw.clone();
            a.balance = Amount(a.balance.0 + 1);
            prop_assert!(c.trust().verify_account(&who, &a).is_err());
            Ok(())
        })?;
    }
}
