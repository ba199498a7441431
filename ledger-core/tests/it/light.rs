//! The light-client check (`ledger_core::light`): honest answers verify, and every alteration of
//! the value, the proof, the header or the certificate is refused with a typed error.
//!
//! The property tests use proptest (seed from `PROPTEST_RNG_SEED`, failures printed with their
//! input). Answers are built the way the node builds them: a real state tree's proof, a header
//! that commits to its root and to a block of real signed transfers, and real precommits.

use borsh::{BorshDeserialize, BorshSerialize};
use ledger_core::api::{AccountProofResponse, PROOF_FORMAT, TxProofResponse};
use ledger_core::genesis::Genesis;
use ledger_core::light::{LightError, TrustedChain, encode_state_proof};
use ledger_core::merkle::{merkle_root, prove_inclusion};
use ledger_core::state::{Account, State};
use ledger_core::vote::CommitSig;
use ledger_core::{
    Address, Amount, BlockHeader, ChainId, CommitCertificate, Hash, Height, Keypair, Nonce, Round,
    SignedTransaction, TimestampMs, Transaction, Vote, VoteKind, codec,
};
use proptest::prelude::*;

const VALIDATORS: u32 = 4;

/// A chain, a state at `HEIGHT`, a block of transfers and the certificate of its header.
struct Fixture {
    genesis: Genesis,
    state: State,
    txs: Vec<SignedTransaction>,
    header: BlockHeader,
    commit: CommitCertificate,
}

const HEIGHT: Height = Height(7);

fn genesis(chain: &str) -> Genesis {
    Genesis::dev(chain, VALIDATORS, 4).expect("dev genesis")
}

fn addr(i: u32) -> Address {
    Keypair::dev("light", i).address()
}

fn transfer(chain: &ChainId, i: u32) -> SignedTransaction {
    let key = Keypair::dev("light-sender", i);
    Transaction {
        chain_id: chain.clone(),
        from: key.public(),
        to: addr(i),
        amount: Amount(100 + u64::from(i)),
        fee: Amount(1),
        nonce: Nonce(u64::from(i)),
        memo: vec![i as u8; (i % 5) as usize],
    }
    .sign(&key)
}

/// Precommits of validators `signers` (dev validator indices) for `header`.
fn certify(genesis: &Genesis, header: &BlockHeader, signers: &[u32]) -> CommitCertificate {
    let hash = header.hash();
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            let key = Keypair::dev("validator", i);
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: Round(0),
                block_hash: Some(hash),
                validator: key.address(),
            }
            .sign(genesis.chain_id(), &key)
        })
        .collect();
    CommitCertificate::from_precommits(header.height, Round(0), hash, genesis.validators(), &votes)
}

fn fixture(accounts: u32, txs: u32, signers: &[u32]) -> Fixture {
    let genesis = genesis("light-test");
    let state = State::from_accounts((0..accounts).map(|i| {
        (
            addr(i),
            Account {
                balance: Amount(1_000 + u64::from(i)),
                nonce: Nonce(u64::from(i % 3)),
            },
        )
    }))
    .expect("state");
    let txs: Vec<SignedTransaction> = (0..txs).map(|i| transfer(genesis.chain_id(), i)).collect();
    let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
    let header = BlockHeader {
        chain_id: genesis.chain_id().clone(),
        height: HEIGHT,
        prev_hash: Hash::digest(b"previous"),
        timestamp_ms: TimestampMs(1_700_000_000_000),
        proposer: Keypair::dev("validator", 0).address(),
        tx_root: merkle_root(&hashes),
        tx_count: txs.len() as u32,
        state_root: state.root(),
        last_commit_hash: Hash::digest(b"last commit"),
    };
    let commit = certify(&genesis, &header, signers);
    Fixture {
        genesis,
        state,
        txs,
        header,
        commit,
    }
}

impl Fixture {
    fn trust(&self) -> TrustedChain {
        TrustedChain::new(&self.genesis)
    }

    /// The account answer the node gives for `address`.
    fn account_answer(&self, address: &Address) -> AccountProofResponse {
        let p = self.state.prove(address).expect("proof");
        AccountProofResponse {
            format: PROOF_FORMAT,
            chain_id: self.genesis.chain_id().clone(),
            genesis_hash: self.genesis.hash(),
            address: *address,
            balance: p.account.balance,
            nonce: p.account.nonce,
            height: self.header.height,
            header: self.header.clone(),
            commit: self.commit.clone(),
            proof: encode_state_proof(&p.proof),
        }
    }

    /// The transaction answer the node gives for the transaction at `index`.
    fn tx_answer(&self, index: usize) -> TxProofResponse {
        let hashes: Vec<Hash> = self.txs.iter().map(|t| t.hash()).collect();
        TxProofResponse {
            format: PROOF_FORMAT,
            chain_id: self.genesis.chain_id().clone(),
            genesis_hash: self.genesis.hash(),
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

/// `bytes` with byte `at` xor-ed with `mask` (non-zero), decoded again; `None` when the result
/// does not decode (a client that decodes first refuses it there).
fn flipped<T: BorshDeserialize + BorshSerialize>(bytes: &[u8], at: usize, mask: u8) -> Option<T> {
    let mut b = bytes.to_vec();
    b[at] ^= mask;
    codec::decode(&b).ok()
}

#[test]
fn present_and_absent_accounts_verify_with_their_values() {
    let f = fixture(50, 0, &[0, 1, 2, 3]);
    let trust = f.trust();
    let present = trust
        .verify_account(&addr(7), &f.account_answer(&addr(7)))
        .expect("present account verifies");
    assert_eq!(present.account.balance, Amount(1_007));
    assert_eq!(present.account.nonce, Nonce(1));
    assert_eq!((present.at.signers, present.at.validators), (4, 4));
    let absent = trust
        .verify_account(&addr(999), &f.account_answer(&addr(999)))
        .expect("absent account verifies");
    assert_eq!(absent.account, Account::EMPTY);
}

#[test]
fn every_transaction_of_a_block_verifies_at_its_index() {
    let f = fixture(3, 13, &[1, 2, 3]);
    let trust = f.trust();
    for i in 0..13 {
        let a = f.tx_answer(i);
        let v = trust.verify_tx(&a.hash, &a).expect("tx verifies");
        assert_eq!(v.index, i as u32);
        assert_eq!(v.at.signers, 3);
    }
}

#[test]
fn a_lied_balance_or_nonce_fails_the_state_proof() {
    let f = fixture(20, 0, &[0, 1, 2]);
    let trust = f.trust();
    let mut a = f.account_answer(&addr(3));
    a.balance = Amount(a.balance.0 + 1);
    assert!(matches!(
        trust.verify_account(&addr(3), &a),
        Err(LightError::StateProof { .. })
    ));
    // An existing account passed off as absent, and an absent one as funded.
    let mut a = f.account_answer(&addr(3));
    (a.balance, a.nonce) = (Amount(0), Nonce(0));
    assert!(matches!(
        trust.verify_account(&addr(3), &a),
        Err(LightError::StateProof { .. })
    ));
    let mut a = f.account_answer(&addr(500));
    a.balance = Amount(5);
    assert!(matches!(
        trust.verify_account(&addr(500), &a),
        Err(LightError::StateProof { .. })
    ));
}

#[test]
fn a_certificate_below_two_thirds_is_refused() {
    let f = fixture(5, 0, &[0, 3]);
    assert_eq!(
        f.trust()
            .verify_account(&addr(1), &f.account_answer(&addr(1))),
        Err(LightError::BelowThreshold {
            signed: 2 * f.genesis.validators().validators()[0].power,
            total: f.genesis.validators().total_power(),
        })
    );
}

#[test]
fn a_signer_outside_the_validator_set_is_refused() {
    let f = fixture(5, 0, &[0, 1, 2]);
    let mut a = f.account_answer(&addr(1));
    let outsider = Keypair::dev("not-a-validator", 0);
    let vote = Vote {
        kind: VoteKind::Precommit,
        height: HEIGHT,
        round: Round(0),
        block_hash: Some(f.header.hash()),
        validator: outsider.address(),
    }
    .sign(f.genesis.chain_id(), &outsider);
    a.commit.signatures[0] = CommitSig {
        validator: outsider.address(),
        signature: vote.signature,
    };
    assert_eq!(
        f.trust().verify_account(&addr(1), &a),
        Err(LightError::NotAValidator {
            signer: outsider.address()
        })
    );
}

#[test]
fn another_chains_answer_is_refused_as_wrong_chain() {
    let f = fixture(5, 2, &[0, 1, 2, 3]);
    let other = TrustedChain::new(&genesis("another-chain"));
    assert!(matches!(
        other.verify_account(&addr(1), &f.account_answer(&addr(1))),
        Err(LightError::WrongChain { .. })
    ));
    // A node that claims the trusted chain's id and genesis but serves the other chain's header.
    let mut a = f.account_answer(&addr(1));
    a.chain_id = other.chain_id().clone();
    a.genesis_hash = other.genesis_hash();
    assert!(matches!(
        other.verify_account(&addr(1), &a),
        Err(LightError::WrongChain { .. })
    ));
    // Same chain id, another genesis: the node says so.
    let mut a = f.account_answer(&addr(1));
    a.genesis_hash = Hash::digest(b"another genesis");
    assert!(matches!(
        f.trust().verify_account(&addr(1), &a),
        Err(LightError::WrongGenesis { .. })
    ));
}

#[test]
fn a_proof_from_another_state_does_not_match_the_header() {
    let f = fixture(30, 0, &[0, 1, 2, 3]);
    let g = fixture(31, 0, &[0, 1, 2, 3]);
    let mut a = f.account_answer(&addr(4));
    a.proof = g.account_answer(&addr(4)).proof;
    assert!(matches!(
        f.trust().verify_account(&addr(4), &a),
        Err(LightError::StateProof { .. })
    ));
}

#[test]
fn an_answer_about_another_key_is_refused() {
    let f = fixture(10, 3, &[0, 1, 2, 3]);
    let trust = f.trust();
    assert!(matches!(
        trust.verify_account(&addr(2), &f.account_answer(&addr(3))),
        Err(LightError::WrongKey { .. })
    ));
    // The address swapped too: the proof is for the other key.
    let mut a = f.account_answer(&addr(3));
    a.address = addr(2);
    assert!(matches!(
        trust.verify_account(&addr(2), &a),
        Err(LightError::StateProof { .. })
    ));
    let t1 = f.tx_answer(1);
    assert!(matches!(
        trust.verify_tx(&f.tx_answer(0).hash, &t1),
        Err(LightError::WrongKey { .. })
    ));
}

#[test]
fn a_transaction_answer_with_altered_parts_is_refused() {
    let f = fixture(3, 6, &[0, 1, 2, 3]);
    let trust = f.trust();
    let honest = f.tx_answer(2);
    let mut a = honest.clone();
    a.transaction.tx.amount = Amount(1);
    assert!(matches!(
        trust.verify_tx(&honest.hash, &a),
        Err(LightError::TxHashMismatch { .. })
    ));
    let mut a = honest.clone();
    a.index = 3;
    assert!(matches!(
        trust.verify_tx(&honest.hash, &a),
        Err(LightError::TxIndexMismatch { .. })
    ));
    // The transaction moved to another position, proof and all: not at that place in the block.
    let mut a = honest.clone();
    a.index = 3;
    a.proof.index = 3;
    assert!(matches!(
        trust.verify_tx(&honest.hash, &a),
        Err(LightError::TxNotInBlock(_))
    ));
    let mut a = honest.clone();
    a.proof.total = 7;
    assert!(matches!(
        trust.verify_tx(&honest.hash, &a),
        Err(LightError::TxCountMismatch { .. })
    ));
    let mut a = honest.clone();
    a.height = Height(8);
    assert!(matches!(
        trust.verify_tx(&honest.hash, &a),
        Err(LightError::HeightMismatch { .. })
    ));
    let mut a = honest;
    a.format = PROOF_FORMAT + 1;
    assert!(matches!(
        trust.verify_tx(&a.hash.clone(), &a),
        Err(LightError::UnsupportedFormat { .. })
    ));
}

#[test]
fn an_oversized_or_undecodable_proof_is_refused_before_use() {
    let f = fixture(3, 0, &[0, 1, 2, 3]);
    let mut a = f.account_answer(&addr(1));
    a.proof = vec![0; ledger_core::api::MAX_STATE_PROOF_BYTES + 1];
    assert!(matches!(
        f.trust().verify_account(&addr(1), &a),
        Err(LightError::ProofTooLarge { .. })
    ));
    let mut a = f.account_answer(&addr(1));
    a.proof.push(0);
    assert!(matches!(
        f.trust().verify_account(&addr(1), &a),
        Err(LightError::MalformedProof { .. })
    ));
}

/// Every byte of every part, altered, is caught: the check cannot be passing by default.
fn assert_every_flip_fails_account(f: &Fixture, who: &Address, mask: u8) {
    let trust = f.trust();
    let honest = f.account_answer(who);
    trust.verify_account(who, &honest).expect("honest verifies");
    let value = codec::encode(&Account {
        balance: honest.balance,
        nonce: honest.nonce,
    });
    for at in 0..value.len() {
        let Some(acc) = flipped::<Account>(&value, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        (a.balance, a.nonce) = (acc.balance, acc.nonce);
        assert!(
            trust.verify_account(who, &a).is_err(),
            "value byte {at} ^ {mask:#04x} passed"
        );
    }
    for at in 0..honest.proof.len() {
        let mut a = honest.clone();
        a.proof[at] ^= mask;
        assert!(
            trust.verify_account(who, &a).is_err(),
            "proof byte {at} ^ {mask:#04x} passed"
        );
    }
    let header = codec::encode(&honest.header);
    for at in 0..header.len() {
        let Some(h) = flipped::<BlockHeader>(&header, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.header = h;
        assert!(
            trust.verify_account(who, &a).is_err(),
            "header byte {at} ^ {mask:#04x} passed"
        );
    }
    let commit = codec::encode(&honest.commit);
    for at in 0..commit.len() {
        let Some(c) = flipped::<CommitCertificate>(&commit, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.commit = c;
        assert!(
            trust.verify_account(who, &a).is_err(),
            "certificate byte {at} ^ {mask:#04x} passed"
        );
    }
}

fn assert_every_flip_fails_tx(f: &Fixture, index: usize, mask: u8) {
    let trust = f.trust();
    let honest = f.tx_answer(index);
    let hash = honest.hash;
    trust.verify_tx(&hash, &honest).expect("honest verifies");
    let tx = codec::encode(&honest.transaction);
    for at in 0..tx.len() {
        let Some(t) = flipped::<SignedTransaction>(&tx, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.transaction = t;
        assert!(
            trust.verify_tx(&hash, &a).is_err(),
            "tx byte {at} ^ {mask:#04x} passed"
        );
    }
    let proof = codec::encode(&honest.proof);
    for at in 0..proof.len() {
        let Some(p) = flipped(&proof, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.proof = p;
        assert!(
            trust.verify_tx(&hash, &a).is_err(),
            "inclusion proof byte {at} ^ {mask:#04x} passed"
        );
    }
    let header = codec::encode(&honest.header);
    for at in 0..header.len() {
        let Some(h) = flipped::<BlockHeader>(&header, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.header = h;
        assert!(
            trust.verify_tx(&hash, &a).is_err(),
            "header byte {at} ^ {mask:#04x} passed"
        );
    }
    let commit = codec::encode(&honest.commit);
    for at in 0..commit.len() {
        let Some(c) = flipped::<CommitCertificate>(&commit, at, mask) else {
            continue;
        };
        let mut a = honest.clone();
        a.commit = c;
        assert!(
            trust.verify_tx(&hash, &a).is_err(),
            "certificate byte {at} ^ {mask:#04x} passed"
        );
    }
}

/// The signer subsets that make a quorum of 4 equal-power validators.
fn quorum() -> impl Strategy<Value = Vec<u32>> {
    prop_oneof![
        Just(vec![0, 1, 2, 3]),
        Just(vec![0, 1, 2]),
        Just(vec![0, 1, 3]),
        Just(vec![0, 2, 3]),
        Just(vec![1, 2, 3]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn honest_account_answers_verify_and_every_flipped_byte_fails(
        accounts in 0u32..300,
        who in 0u32..400,
        signers in quorum(),
        mask in 1u8..=255,
    ) {
        let f = fixture(accounts, 0, &signers);
        assert_every_flip_fails_account(&f, &addr(who), mask);
    }

    #[test]
    fn honest_tx_answers_verify_and_every_flipped_byte_fails(
        txs in 1u32..40,
        pick in any::<prop::sample::Index>(),
        signers in quorum(),
        mask in 1u8..=255,
    ) {
        let f = fixture(2, txs, &signers);
        assert_every_flip_fails_tx(&f, pick.index(txs as usize), mask);
    }
}
