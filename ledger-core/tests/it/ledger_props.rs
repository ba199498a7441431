//! Property tests of the ledger rules: supply, nonces, the canonical codec, signatures, block
//! validity and state proofs.
//!
//! Keys come from a small pool of precomputed dev keys, so a case costs a few signatures at most.
//! The case counts (`CASES_*`) add up to more than 10,000. proptest takes its seed from
//! `PROPTEST_RNG_SEED` when set, prints the minimal failing input, and keeps found failures in
//! `proptest-regressions/` to replay them first.

use std::sync::LazyLock;

use ledger_core::block::{Block, BlockHeader, CommittedBlock};
use ledger_core::codec;
use ledger_core::crypto::{Keypair, PublicKey, Signature};
use ledger_core::genesis::{Genesis, GenesisAccount};
use ledger_core::merkle::InclusionProof;
use ledger_core::state::{Account, AccountProof, ExecutedBlock, State, StateProof};
use ledger_core::validation::{self, BlockError, BuiltBlock, ParentBlock, none_verified};
use ledger_core::vote::{CommitSig, Vote, VoteKind};
use ledger_core::{
    Address, Amount, ChainId, CommitCertificate, ConsensusParams, Hash, Height, Nonce, Round,
    SignedTransaction, SignedVote, TimestampMs, Transaction, TxError, Validator,
    VerifiedTransaction,
};
use proptest::prelude::*;

const CASES_SUPPLY: u32 = 1_000;
const CASES_NONCE: u32 = 1_000;
const CASES_ROUND_TRIP: u32 = 600; // per type: tx, block, vote, certificate, account, genesis
const CASES_RANDOM_BYTES: u32 = 3_000;
const CASES_MUTATED_BYTES: u32 = 1_500;
const CASES_BYTE_FLIP: u32 = 2_000;
const CASES_INVALID_TX: u32 = 1_000;
const CASES_PROOFS: u32 = 500;

/// Pre-funded accounts of the test chain (the dev genesis' account keys).
const ACCOUNTS: u32 = 8;
const VALIDATORS: u32 = 4;
const BALANCE: u64 = ledger_core::genesis::DEV_ACCOUNT_BALANCE;

static GENESIS: LazyLock<Genesis> =
    LazyLock::new(|| Genesis::dev("props-chain", VALIDATORS, ACCOUNTS).expect("valid genesis"));
static KEYS: LazyLock<Vec<Keypair>> =
    LazyLock::new(|| (0..ACCOUNTS).map(|i| Keypair::dev("account", i)).collect());
static VALIDATOR_KEYS: LazyLock<Vec<Keypair>> = LazyLock::new(|| {
    (0..VALIDATORS)
        .map(|i| Keypair::dev("validator", i))
        .collect()
});

fn chain_id() -> &'static ChainId {
    GENESIS.chain_id()
}

/// Recipient `i`: a pool account, or (from `ACCOUNTS` up) an address nobody holds yet.
fn recipient(i: u32) -> Address {
    match KEYS.get(i as usize) {
        Some(k) => k.address(),
        None => Address(
            Hash::digest(&i.to_le_bytes()).0[..20]
                .try_into()
                .expect("20 bytes"),
        ),
    }
}

/// What a generated transfer should be, before nonces are known.
#[derive(Debug, Clone)]
struct Intent {
    from: u32,
    to: u32,
    amount: u64,
    fee: u64,
    /// Added to the sender's expected nonce: mostly 0, sometimes a gap or a replay.
    nonce_skew: i64,
}

fn intent() -> impl Strategy<Value = Intent> {
    (
        0..ACCOUNTS,
        0..ACCOUNTS + 3,
        prop_oneof![
            8 => 1..1_000_000u64,
            1 => BALANCE / 2..BALANCE * 2, // sometimes more than the sender has
        ],
        0..1_000u64,
        prop_oneof![10 => Just(0i64), 1 => Just(1i64), 1 => Just(-1i64)],
    )
        .prop_map(|(from, to, amount, fee, nonce_skew)| Intent {
            from,
            to,
            amount,
            fee,
            nonce_skew,
        })
}

fn sign(
    from: u32,
    to: Address,
    amount: u64,
    fee: u64,
    nonce: u64,
    chain: &ChainId,
) -> SignedTransaction {
    let key = &KEYS[from as usize];
    Transaction {
        chain_id: chain.clone(),
        from: key.public(),
        to,
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        memo: vec![],
    }
    .sign(key)
}

/// Signs the intents in order. Nonces follow each sender's committed nonce plus its earlier
/// intents in the batch, skewed as the intent says (so some candidates are invalid).
fn candidates(state: &State, intents: &[Intent]) -> Vec<VerifiedTransaction> {
    let mut next: Vec<u64> = (0..ACCOUNTS)
        .map(|i| state.get(&recipient(i)).expect("reads").nonce.0)
        .collect();
    intents
        .iter()
        .filter(|it| recipient(it.to) != recipient(it.from))
        .map(|it| {
            let expected = next[it.from as usize];
            next[it.from as usize] += 1;
            let nonce = expected.saturating_add_signed(it.nonce_skew);
            sign(
                it.from,
                recipient(it.to),
                it.amount,
                it.fee,
                nonce,
                chain_id(),
            )
            .verify(chain_id())
            .expect("stateless checks pass")
        })
        .collect()
}

fn certificate(block: &ledger_core::SealedBlock) -> CommitCertificate {
    let votes: Vec<SignedVote> = VALIDATOR_KEYS
        .iter()
        .map(|k| {
            Vote {
                kind: VoteKind::Precommit,
                height: block.header().height,
                round: Round(0),
                block_hash: Some(block.hash()),
                validator: k.address(),
            }
            .sign(chain_id(), k)
        })
        .collect();
    CommitCertificate::from_precommits(
        block.header().height,
        Round(0),
        block.hash(),
        GENESIS.validators(),
        &votes,
    )
}

/// A chain being grown by the properties: state, parent and the parent's certificate.
struct Chain {
    state: State,
    parent: ParentBlock,
    last_commit: Option<CommitCertificate>,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            state: GENESIS.initial_state(),
            parent: ParentBlock::genesis(&GENESIS),
            last_commit: None,
        }
    }

    fn build(&mut self, txs: &[VerifiedTransaction], proposer: u32) -> BuiltBlock {
        validation::build_block(
            GENESIS.chain_context(),
            &self.parent,
            &mut self.state,
            txs,
            VALIDATOR_KEYS[proposer as usize].address(),
            TimestampMs(self.parent.timestamp_ms.0 + 1000),
            self.last_commit.clone(),
        )
        .expect("builds")
    }

    fn validate(&mut self, block: &ledger_core::SealedBlock) -> Result<ExecutedBlock, BlockError> {
        validation::validate_block(
            GENESIS.chain_context(),
            &self.parent,
            &mut self.state,
            block,
            None,
            &none_verified,
        )
    }

    fn commit(&mut self, built: &BuiltBlock) {
        self.state.commit(&built.executed).expect("commits");
        self.last_commit = Some(certificate(&built.block));
        self.parent = ParentBlock::of(&built.block);
    }
}

fn total_supply() -> u128 {
    u128::from(ACCOUNTS) * u128::from(BALANCE)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_SUPPLY))]

    /// Whatever blocks are built from whatever candidates, the sum of balances never changes,
    /// and every block a proposer builds is valid for the others.
    #[test]
    fn total_supply_is_conserved_over_random_blocks(
        blocks in prop::collection::vec((prop::collection::vec(intent(), 0..12), 0..VALIDATORS), 1..4)
    ) {
        let mut chain = Chain::new();
        prop_assert_eq!(chain.state.total_supply().expect("reads"), total_supply());
        for (intents, proposer) in blocks {
            let txs = candidates(&chain.state, &intents);
            let built = chain.build(&txs, proposer);
            let executed = chain.validate(&built.block).expect("a built block is valid");
            prop_assert_eq!(&executed, &built.executed);
            let fees: u64 = built.block.block().txs.iter().map(|t| t.tx.fee.0).sum();
            prop_assert_eq!(executed.total_fees(), Amount(fees));
            chain.commit(&built);
            prop_assert_eq!(chain.state.total_supply().expect("reads"), total_supply());
            prop_assert_eq!(chain.state.root(), built.block.header().state_root);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_NONCE))]

    /// Each applied transaction moves its sender's nonce by exactly one, and carries the nonce the
    /// sender had just before it; accounts that sent nothing keep their nonce.
    #[test]
    fn each_applied_tx_moves_its_senders_nonce_by_exactly_one(
        blocks in prop::collection::vec(prop::collection::vec(intent(), 0..12), 1..4)
    ) {
        let mut chain = Chain::new();
        for intents in blocks {
            let before: Vec<Nonce> = (0..ACCOUNTS).map(|i| chain.state.get(&recipient(i)).expect("reads").nonce).collect();
            let txs = candidates(&chain.state, &intents);
            let built = chain.build(&txs, 0);
            let mut sent = vec![0u64; ACCOUNTS as usize];
            for tx in &built.block.block().txs {
                let i = KEYS.iter().position(|k| k.public() == tx.tx.from).expect("pool key");
                prop_assert_eq!(tx.tx.nonce.0, before[i].0 + sent[i]);
                sent[i] += 1;
            }
            chain.commit(&built);
            for i in 0..ACCOUNTS as usize {
                let after = chain.state.get(&recipient(i as u32)).expect("reads").nonce;
                prop_assert_eq!(after.0, before[i].0 + sent[i]);
            }
            for r in &built.rejected {
                prop_assert!(matches!(
                    r.error,
                    TxError::NonceTooHigh { .. } | TxError::NonceTooLow { .. } | TxError::InsufficientFunds { .. }
                ), "unexpected rejection {:?}", r.error);
            }
        }
    }
}

// ---- Arbitrary values of every encoded type ------------------------------------------------

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn chain() -> impl Strategy<Value = ChainId> {
    "[a-z0-9._-]{1,64}".prop_map(|s| ChainId::new(s).expect("matches the chain id rule"))
}

fn transaction() -> impl Strategy<Value = SignedTransaction> {
    (
        chain(),
        any::<[u8; 32]>(),
        address(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..=256),
        signature(),
    )
        .prop_map(
            |(chain_id, from, to, amount, fee, nonce, memo, signature)| SignedTransaction {
                tx: Transaction {
                    chain_id,
                    from: PublicKey(from),
                    to,
                    amount: Amount(amount),
                    fee: Amount(fee),
                    nonce: Nonce(nonce),
                    memo,
                },
                signature,
            },
        )
}

fn vote() -> impl Strategy<Value = SignedVote> {
    (
        any::<bool>(),
        any::<u64>(),
        any::<u32>(),
        prop::option::of(hash()),
        address(),
        signature(),
    )
        .prop_map(
            |(pre, height, round, block_hash, validator, signature)| SignedVote {
                vote: Vote {
                    kind: if pre {
                        VoteKind::Prevote
                    } else {
                        VoteKind::Precommit
                    },
                    height: Height(height),
                    round: Round(round),
                    block_hash,
                    validator,
                },
                signature,
            },
        )
}

fn certificate_value() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        prop::collection::vec((address(), signature()), 0..6),
    )
        .prop_map(|(height, round, block_hash, sigs)| CommitCertificate {
            height: Height(height),
            round: Round(round),
            block_hash,
            signatures: sigs
                .into_iter()
                .map(|(validator, signature)| CommitSig {
                    validator,
                    signature,
                })
                .collect(),
        })
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        chain(),
        any::<u64>(),
        hash(),
        any::<u64>(),
        address(),
        hash(),
        any::<u32>(),
        hash(),
        hash(),
    )
        .prop_map(
            |(
                chain_id,
                height,
                prev_hash,
                ts,
                proposer,
                tx_root,
                tx_count,
                state_root,
                last_commit_hash,
            )| {
                BlockHeader {
                    chain_id,
                    height: Height(height),
                    prev_hash,
                    timestamp_ms: TimestampMs(ts),
                    proposer,
                    tx_root,
                    tx_count,
                    state_root,
                    last_commit_hash,
                }
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (
        header(),
        prop::option::of(certificate_value()),
        prop::collection::vec(transaction(), 0..4),
    )
        .prop_map(|(header, last_commit, txs)| Block {
            header,
            last_commit,
            txs,
        })
}

fn account() -> impl Strategy<Value = Account> {
    (any::<u64>(), any::<u64>()).prop_map(|(b, n)| Account {
        balance: Amount(b),
        nonce: Nonce(n),
    })
}

fn params() -> impl Strategy<Value = ConsensusParams> {
    (
        1..=3_600_000u64,
        1..=3_600_000u64,
        1..=3_600_000u64,
        1..=3_600_000u64,
        1..=3_600_000u64,
        1..=3_600_000u64,
        1..=1_000_000u32,
        1..=ledger_core::params::MAX_BLOCK_BYTES_LIMIT,
        1..=3_600_000u64,
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i)| ConsensusParams {
            timeout_propose_ms: a,
            timeout_prevote_ms: b,
            timeout_precommit_ms: c,
            timeout_delta_ms: d,
            block_fill_pause_ms: e,
            empty_block_interval_ms: f,
            max_block_txs: g,
            max_block_bytes: h,
            max_clock_drift_ms: i,
        })
}

/// Valid geneses: validators from the pool with random powers, distinct random accounts.
fn genesis() -> impl Strategy<Value = Genesis> {
    (
        chain(),
        any::<u64>(),
        prop::option::of("[ -~]{0,80}"),
        params(),
        prop::collection::btree_map(0..VALIDATORS, 1..1_000_000u64, 1..=VALIDATORS as usize),
        prop::collection::btree_map(address(), 1..u64::MAX / 64, 0..8),
    )
        .prop_map(
            |(chain_id, time, description, params, validators, accounts)| {
                let validators = validators
                    .into_iter()
                    .map(|(i, power)| {
                        let k = &VALIDATOR_KEYS[i as usize];
                        Validator {
                            address: k.address(),
                            public_key: k.public(),
                            power,
                        }
                    })
                    .collect();
                let accounts = accounts
                    .into_iter()
                    .map(|(address, balance)| GenesisAccount {
                        address,
                        balance: Amount(balance),
                    })
                    .collect();
                Genesis::new(
                    chain_id,
                    TimestampMs(time),
                    description,
                    params,
                    validators,
                    accounts,
                )
                .expect("generated genesis is valid")
            },
        )
}

fn round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: borsh::BorshSerialize + borsh::BorshDeserialize + PartialEq + std::fmt::Debug,
{
    let bytes = codec::encode(value);
    let back: T = codec::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_ROUND_TRIP))]

    #[test]
    fn encode_then_decode_is_the_identity_for_transactions(t in transaction()) {
        round_trips(&t)?;
        round_trips(&t.tx)?;
        let json = serde_json::to_string(&t).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<SignedTransaction>(&json).expect("parses"), t);
    }

    #[test]
    fn encode_then_decode_is_the_identity_for_blocks(b in block(), commit in certificate_value()) {
        round_trips(&b)?;
        round_trips(&b.header)?;
        round_trips(&CommittedBlock { block: b, commit })?;
    }

    #[test]
    fn encode_then_decode_is_the_identity_for_votes(v in vote()) {
        round_trips(&v)?;
        round_trips(&v.vote)?;
    }

    #[test]
    fn encode_then_decode_is_the_identity_for_certificates(c in certificate_value()) {
        round_trips(&c)?;
    }

    #[test]
    fn encode_then_decode_is_the_identity_for_accounts(a in account(), addr in address()) {
        round_trips(&a)?;
        let json = serde_json::to_string(&a).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Account>(&json).expect("parses"), a);
        let proof = State::from_accounts([]).expect("empty").prove(&addr).expect("proves").proof;
        round_trips(&AccountProof { address: addr, account: a, proof })?;
    }

    #[test]
    fn encode_then_decode_is_the_identity_for_genesis(g in genesis()) {
        round_trips(&g)?;
        let back = Genesis::from_json(&g.to_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.hash(), g.hash());
        prop_assert_eq!(back, g);
    }
}

/// Decodes `bytes` as every decodable type: each either fails, or yields a value that re-encodes
/// to exactly `bytes`. Never panics.
fn decodes_canonically_or_not_at_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    fn check<T: borsh::BorshSerialize + borsh::BorshDeserialize>(
        bytes: &[u8],
    ) -> Result<(), TestCaseError> {
        if let Ok(v) = codec::decode::<T>(bytes) {
            prop_assert_eq!(codec::encode(&v), bytes);
        }
        if let Ok(v) = borsh::from_slice::<T>(bytes) {
            // Plain borsh may accept non-canonical input; the ledger's decode must then refuse it.
            if codec::encode(&v) != bytes {
                prop_assert!(codec::decode::<T>(bytes).is_err());
            }
        }
        Ok(())
    }
    check::<Transaction>(bytes)?;
    check::<SignedTransaction>(bytes)?;
    check::<BlockHeader>(bytes)?;
    check::<Block>(bytes)?;
    check::<CommittedBlock>(bytes)?;
    check::<Vote>(bytes)?;
    check::<SignedVote>(bytes)?;
    check::<CommitCertificate>(bytes)?;
    check::<Account>(bytes)?;
    check::<AccountProof>(bytes)?;
    check::<StateProof>(bytes)?;
    check::<InclusionProof>(bytes)?;
    check::<Genesis>(bytes)?;
    check::<ChainId>(bytes)?;
    check::<Address>(bytes)?;
    check::<Hash>(bytes)?;
    Ok(())
}

/// Valid encodings of several types, for mutation.
fn valid_encoding() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        transaction().prop_map(|t| codec::encode(&t)),
        block().prop_map(|b| codec::encode(&b)),
        vote().prop_map(|v| codec::encode(&v)),
        certificate_value().prop_map(|c| codec::encode(&c)),
        account().prop_map(|a| codec::encode(&a)),
        Just(codec::encode(&*GENESIS)),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    Remove(usize),
    Insert(usize, u8),
}

fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let len = bytes.len().max(1);
    match m {
        Mutation::Set(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x = *b;
            }
        }
        Mutation::Truncate(n) => bytes.truncate(n % len),
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
        Mutation::Remove(i) => {
            if !bytes.is_empty() {
                bytes.remove(i % len);
            }
        }
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), *b),
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_RANDOM_BYTES))]

    #[test]
    fn random_bytes_never_decode_into_a_value_that_re_encodes_differently(
        bytes in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        decodes_canonically_or_not_at_all(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_MUTATED_BYTES))]

    /// Near-valid input reaches much deeper into the decoders than random bytes.
    #[test]
    fn mutated_encodings_never_decode_into_a_value_that_re_encodes_differently(
        bytes in valid_encoding(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutations.iter().fold(bytes, mutate);
        decodes_canonically_or_not_at_all(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_BYTE_FLIP))]

    /// Changing any one byte of a signed transaction's encoding makes it invalid: it no longer
    /// decodes, or it decodes to a transaction with another hash whose signature fails.
    #[test]
    fn changing_any_byte_of_a_signed_transaction_invalidates_it(
        from in 0..ACCOUNTS,
        to in 0..ACCOUNTS + 3,
        amount in 1..u64::MAX / 4,
        fee in any::<u32>(),
        nonce in any::<u64>(),
        memo in prop::collection::vec(any::<u8>(), 0..40),
        position in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        prop_assume!(recipient(to) != recipient(from));
        let key = &KEYS[from as usize];
        let stx = Transaction {
            chain_id: chain_id().clone(),
            from: key.public(),
            to: recipient(to),
            amount: Amount(amount),
            fee: Amount(u64::from(fee)),
            nonce: Nonce(nonce),
            memo,
        }
        .sign(key);
        prop_assert!(stx.clone().verify(chain_id()).is_ok());
        let mut bytes = codec::encode(&stx);
        let i = position.index(bytes.len());
        bytes[i] ^= xor;
        if let Ok(changed) = codec::decode::<SignedTransaction>(&bytes) {
            prop_assert_ne!(changed.hash(), stx.hash());
            let own_chain = changed.tx.chain_id.clone();
            prop_assert!(changed.clone().verify(chain_id()).is_err());
            prop_assert!(changed.verify(&own_chain).is_err());
        }
    }
}

/// Outside the clean transactions' amounts (1 to 1000), so a spliced transaction never repeats one.
const BAD_AMOUNT: u64 = 5_000;

#[derive(Debug, Clone, Copy)]
enum Defect {
    BadSignature,
    NonceGap,
    NonceReplay,
    InsufficientFunds,
    WrongChain,
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        Just(Defect::BadSignature),
        Just(Defect::NonceGap),
        Just(Defect::NonceReplay),
        Just(Defect::InsufficientFunds),
        Just(Defect::WrongChain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_INVALID_TX))]

    /// A valid block with one invalid transaction spliced in (and its transaction root and count
    /// fixed, so nothing else gives it away) is rejected, naming that transaction.
    #[test]
    fn a_block_containing_any_invalid_transaction_is_invalid(
        intents in prop::collection::vec(intent(), 1..10),
        defect in defect(),
        from in 0..ACCOUNTS,
        position in any::<prop::sample::Index>(),
    ) {
        let mut chain = Chain::new();
        let clean: Vec<Intent> = intents.into_iter().map(|i| Intent { nonce_skew: 0, amount: i.amount % 1000 + 1, ..i }).collect();
        let txs = candidates(&chain.state, &clean);
        let built = chain.build(&txs, 0);
        let block_txs = built.block.block().txs.clone();
        let sender = KEYS[from as usize].public();
        // The sender's nonce at each position, from its transactions before it in the block.
        let pos = position.index(block_txs.len() + 1);
        let used = block_txs[..pos].iter().filter(|t| t.tx.from == sender).count() as u64;
        let to = recipient((from + 1) % ACCOUNTS);
        let bad = match defect {
            Defect::BadSignature => {
                let mut t = sign(from, to, BAD_AMOUNT, 0, used, chain_id());
                t.signature.0[7] ^= 0x20;
                t
            }
            Defect::NonceGap => sign(from, to, BAD_AMOUNT, 0, used + 1, chain_id()),
            Defect::NonceReplay => {
                prop_assume!(used > 0);
                sign(from, to, BAD_AMOUNT, 0, used - 1, chain_id())
            }
            // More than the whole supply, so whatever the sender received before, it is too much.
            Defect::InsufficientFunds => sign(from, to, u64::MAX / 2, 1, used, chain_id()),
            Defect::WrongChain => {
                let other = ChainId::new("other-chain").expect("valid");
                sign(from, to, BAD_AMOUNT, 0, used, &other)
            }
        };
        let mut block = built.block.block().clone();
        block.txs.insert(pos, bad.clone());
        let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
        block.header.tx_root = ledger_core::merkle::merkle_root(&hashes);
        block.header.tx_count = block.txs.len() as u32;
        let sealed = block.seal().expect("the header was made from the body");
        let err = chain.validate(&sealed).expect_err("must be rejected");
        match (&defect, &err) {
            (Defect::BadSignature, BlockError::InvalidTx { index, error: TxError::BadSignature })
            | (Defect::NonceGap, BlockError::InvalidTx { index, error: TxError::NonceTooHigh { .. } })
            | (Defect::NonceReplay, BlockError::InvalidTx { index, error: TxError::NonceTooLow { .. } })
            | (Defect::InsufficientFunds, BlockError::InvalidTx { index, error: TxError::InsufficientFunds { .. } })
            | (Defect::WrongChain, BlockError::InvalidTx { index, error: TxError::WrongChain { .. } }) => {
                prop_assert_eq!(*index, pos);
            }
            _ => prop_assert!(false, "{:?} gave {:?}", defect, err),
        }
        // The proposer's side never includes it either.
        if let Ok(verified) = bad.verify(chain_id()) {
            let mut with_bad: Vec<VerifiedTransaction> = txs.clone();
            with_bad.insert(pos.min(with_bad.len()), verified);
            let rebuilt = chain.build(&with_bad, 0);
            prop_assert!(!rebuilt.block.block().txs.contains(&sealed.block().txs[pos]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_PROOFS))]

    /// Account proofs from the state verify against its root (for existing and absent accounts)
    /// and fail once anything in them is changed.
    #[test]
    fn state_proofs_verify_and_tampered_ones_fail(
        accounts in prop::collection::btree_map(address(), (1..u64::MAX / 64, any::<u32>()), 0..40),
        probe in address(),
        pick in any::<prop::sample::Index>(),
        tamper in 0..4u8,
    ) {
        let state = State::from_accounts(accounts.iter().map(|(a, (b, n))| {
            (*a, Account { balance: Amount(*b), nonce: Nonce(u64::from(*n)) })
        }))
        .expect("valid");
        let root = state.root();
        let keys: Vec<Address> = accounts.keys().copied().chain([probe]).collect();
        let address = keys[pick.index(keys.len())];
        let proof = state.prove(&address).expect("proves");
        prop_assert_eq!(proof.account, state.get(&address).expect("reads"));
        prop_assert_eq!(proof.verify(&root), Ok(()));
        let mut bad = proof.clone();
        match tamper {
            0 => bad.account.balance = Amount(bad.account.balance.0 ^ 1),
            1 => bad.account.nonce = Nonce(bad.account.nonce.0.wrapping_add(1)),
            // Another address: for an absent account this may still be a valid absence proof
            // (an empty tree proves every absence), so only a member's proof is moved.
            2 if !bad.account.is_empty() => bad.address.0[19] ^= 1,
            2 => bad.account.balance = Amount(1),
            // A bit of the proof itself: the sibling hashes end its encoding.
            _ => {
                let mut bytes = borsh::to_vec(&bad.proof).expect("encodes");
                let n = bytes.len();
                bytes[n - 1] ^= 1;
                match borsh::from_slice::<StateProof>(&bytes) {
                    Ok(p) => bad.proof = p,
                    Err(_) => bad.account.balance = Amount(bad.account.balance.0.wrapping_add(7)),
                }
            }
        }
        prop_assert!(bad.verify(&root).is_err());
    }

    /// After a committed block, the recipient's account proof verifies against the state root in
    /// the block's header.
    #[test]
    fn account_proofs_verify_against_the_blocks_state_root(intents in prop::collection::vec(intent(), 1..8)) {
        let mut chain = Chain::new();
        let txs = candidates(&chain.state, &intents);
        let built = chain.build(&txs, 1);
        chain.commit(&built);
        let root = built.block.header().state_root;
        for tx in &built.block.block().txs {
            let proof = chain.state.prove(&tx.tx.to).expect("proves");
            prop_assert_eq!(proof.verify(&root), Ok(()));
            prop_assert!(!proof.account.is_empty());
        }
        let proposer = chain.state.prove(&VALIDATOR_KEYS[1].address()).expect("proves");
        prop_assert_eq!(proposer.verify(&root), Ok(()));
        prop_assert_eq!(proposer.account.balance, built.executed.total_fees());
    }
}

/// A change to a block's body, keeping its header (what a byzantine proposer or a relayer can do
/// without re-signing).
#[derive(Debug, Clone)]
enum BodyEdit {
    DropTx(prop::sample::Index),
    SwapTxs(prop::sample::Index, prop::sample::Index),
    DuplicateTx(prop::sample::Index),
    FlipSignatureBit(prop::sample::Index, u8),
    ReplaceTx(prop::sample::Index, Intent),
    AddTx(Intent),
    DropLastCommit,
    OtherLastCommit,
}

fn body_edit() -> impl Strategy<Value = BodyEdit> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(BodyEdit::DropTx),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| BodyEdit::SwapTxs(a, b)),
        any::<prop::sample::Index>().prop_map(BodyEdit::DuplicateTx),
        (any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(i, bit)| BodyEdit::FlipSignatureBit(i, bit)),
        (any::<prop::sample::Index>(), intent()).prop_map(|(i, x)| BodyEdit::ReplaceTx(i, x)),
        intent().prop_map(BodyEdit::AddTx),
        Just(BodyEdit::DropLastCommit),
        Just(BodyEdit::OtherLastCommit),
    ]
}

/// Applies `edit` to `block`'s body; `extra` is a signed transaction the edit may put in.
fn edit_body(block: &mut Block, edit: &BodyEdit, extra: Option<SignedTransaction>) {
    let n = block.txs.len();
    match edit {
        BodyEdit::DropTx(i) if n > 0 => {
            block.txs.remove(i.index(n));
        }
        BodyEdit::SwapTxs(a, b) if n > 0 => block.txs.swap(a.index(n), b.index(n)),
        BodyEdit::DuplicateTx(i) if n > 0 => block.txs.push(block.txs[i.index(n)].clone()),
        BodyEdit::FlipSignatureBit(i, bit) if n > 0 => {
            let sig = &mut block.txs[i.index(n)].signature.0;
            sig[usize::from(*bit) % 64] ^= 1 << (bit % 8);
        }
        BodyEdit::ReplaceTx(i, _) if n > 0 => {
            if let Some(tx) = extra {
                block.txs[i.index(n)] = tx;
            }
        }
        BodyEdit::AddTx(_) => block.txs.extend(extra),
        BodyEdit::DropLastCommit => block.last_commit = None,
        BodyEdit::OtherLastCommit => {
            // Another valid-looking certificate of the same block: one more signer.
            if let Some(cert) = &block.last_commit {
                let mut other = cert.clone();
                other.round = Round(other.round.0 + 1);
                block.last_commit = Some(other);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_INVALID_TX))]

    /// A block's hash names exactly one body: any change to the transactions or the previous
    /// commit under the same header fails sealing (and so decoding), so a cache keyed by a sealed
    /// block's hash can only answer for the body it checked.
    #[test]
    fn a_sealed_blocks_hash_names_exactly_one_body(
        intents in prop::collection::vec(intent(), 1..10),
        second in any::<bool>(),
        edit in body_edit(),
    ) {
        let mut chain = Chain::new();
        if second {
            let first = chain.build(&[], 0);
            chain.commit(&first);
        }
        let txs = candidates(&chain.state, &intents);
        let built = chain.build(&txs, 1);
        let extra = match &edit {
            BodyEdit::ReplaceTx(_, x) | BodyEdit::AddTx(x) => candidates(&chain.state, std::slice::from_ref(x))
                .into_iter()
                .next()
                .map(VerifiedTransaction::into_signed),
            _ => None,
        };
        let mut block = built.block.block().clone();
        edit_body(&mut block, &edit, extra);
        let bytes = codec::encode(&block);
        if block == *built.block.block() {
            // The edit was a no-op here (e.g. swapping a transaction with itself).
            prop_assert!(block.seal().is_ok());
            return Ok(());
        }
        prop_assert_eq!(block.hash(), built.block.hash(), "the header is unchanged");
        prop_assert!(block.clone().seal().is_err(), "{:?} sealed", edit);
        let decoded = codec::decode::<ledger_core::SealedBlock>(&bytes);
        prop_assert!(matches!(decoded, Err(codec::DecodeError::BlockBody(_))), "{:?}", decoded);
    }
}
