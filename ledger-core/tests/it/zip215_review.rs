//! Adversarial review of ZIP-215 batch verification (ADR 0014, commit 4cbb9f9).
//!
//! Every test checks that the batch paths (`crypto::verify_each`, `crypto::verify_all`, block
//! validation with and without `already_verified`) give exactly the single verdict
//! (`PublicKey::verify_raw`) on inputs built to break them: batch and chunk boundaries, empty and
//! tiny batches, many signatures under one key (the zebra verifier coalesces by key bytes),
//! several encodings of one point (separate coalescing entries), undecodable keys and
//! commitments, non-canonical `S`, duplicates, and bad signatures whose errors are made to cancel.

use std::collections::HashSet;
use std::sync::LazyLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ledger_core::crypto::{self, Keypair, PublicKey, Signature, SignatureCheck};
use ledger_core::genesis::Genesis;
use ledger_core::validation::{self, BlockError, ParentBlock};
use ledger_core::{
    Amount, ChainId, Hash, Nonce, SignedTransaction, TimestampMs, Transaction, TxError,
    VerifiedTransaction,
};
use sha2::{Digest, Sha512};

// ---------------------------------------------------------------------------------------------
// Helpers: owned checks, hand-made signatures over points of any order.

#[derive(Debug, Clone)]
struct Owned {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
}

fn as_checks(items: &[Owned]) -> Vec<SignatureCheck<'_>> {
    items
        .iter()
        .map(|i| SignatureCheck {
            key: &i.key,
            message: &i.message,
            signature: &i.signature,
        })
        .collect()
}

/// The single verdict, from `ed25519-zebra` directly (the reference), checked to be the ledger's
/// single verdict too (which goes through its decoded-key cache).
fn single(i: &Owned) -> bool {
    let reference = ed25519_zebra::VerificationKey::try_from(i.key.0).is_ok_and(|k| {
        k.verify(
            &ed25519_zebra::Signature::from_bytes(&i.signature.0),
            &i.message,
        )
        .is_ok()
    });
    assert_eq!(
        i.key.verify_raw(&i.message, &i.signature).is_ok(),
        reference,
        "verify_raw differs from ed25519-zebra on {i:?}"
    );
    reference
}

/// Every path must give every check its single verdict, on every run (thread scheduling).
fn assert_paths_agree(items: &[Owned], what: &str) {
    let singles: Vec<bool> = items.iter().map(single).collect();
    let first_bad = singles.iter().position(|ok| !ok);
    for run in 0..3 {
        let checks = as_checks(items);
        assert_eq!(
            crypto::verify_each(&checks),
            singles,
            "{what}: verify_each differs from the single verdicts (run {run})"
        );
        assert_eq!(
            crypto::verify_all(&checks).err(),
            first_bad,
            "{what}: verify_all does not report the first bad check (run {run})"
        );
    }
}

fn scalar(label: &[u8], i: u64) -> Scalar {
    let h = Sha512::new()
        .chain_update(label)
        .chain_update(i.to_le_bytes())
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn k_of(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let h = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(m)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A signature by the holder of `a` (with `a_enc` the key bytes as sent; the key point may carry a
/// torsion component the holder does not need to know), commitment `r`B + `r_torsion`, and `S`
/// shifted by `s_error` (zero: valid under the cofactored equation).
fn forge(
    a: Scalar,
    a_enc: [u8; 32],
    r: Scalar,
    r_torsion: EdwardsPoint,
    message: &[u8],
    s_error: Scalar,
) -> Owned {
    let r_enc = (B * r + r_torsion).compress().0;
    let k = k_of(&r_enc, &a_enc, message);
    let s = r + k * a + s_error;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_enc);
    sig[32..].copy_from_slice(s.as_bytes());
    Owned {
        key: PublicKey(a_enc),
        message: message.to_vec(),
        signature: Signature(sig),
    }
}

fn honest(key: &Keypair, message: &[u8]) -> Owned {
    Owned {
        key: key.public(),
        message: message.to_vec(),
        signature: key.sign_raw(message),
    }
}

fn broken(mut i: Owned) -> Owned {
    i.signature.0[3] ^= 0x10;
    i
}

/// The encodings of the identity point (y = 1, x = 0): canonical, sign bit set, y + p, both.
fn identity_encodings() -> Vec<[u8; 32]> {
    let mut canon = [0u8; 32];
    canon[0] = 1;
    let mut signed = canon;
    signed[31] |= 0x80;
    let mut plus_p = [0xffu8; 32];
    plus_p[0] = 0xee; // 1 + (2^255 - 19)
    plus_p[31] = 0x7f;
    let mut plus_p_signed = plus_p;
    plus_p_signed[31] |= 0x80;
    let out = vec![canon, signed, plus_p, plus_p_signed];
    for e in &out {
        assert_eq!(
            CompressedEdwardsY(*e).decompress(),
            Some(EdwardsPoint::default()),
            "every one names the identity"
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Batch boundaries, sizes and positions.

#[test]
fn zip215_review_sizes_boundaries_and_positions_agree() {
    let keys: Vec<Keypair> = (0..3).map(|i| Keypair::dev("review", i)).collect();
    let max = crypto::MAX_BATCH;
    for n in [
        0usize,
        1,
        2,
        3,
        4,
        5,
        63,
        64,
        65,
        127,
        128,
        129,
        200,
        2 * max - 1,
        2 * max,
        2 * max + 1,
        3 * max + 7,
    ] {
        let good: Vec<Owned> = (0..n)
            .map(|i| honest(&keys[i % 3], &(i as u64).to_le_bytes()))
            .collect();
        assert_paths_agree(&good, &format!("{n} good"));
        // The edges of the chunks this many checks are cut into, and a few fixed places.
        let size = crypto::batch_size(n);
        let mut positions: Vec<usize> = [0, 1, 3, 4, 63, 64, 65, n.saturating_sub(1)]
            .into_iter()
            .chain([size - 1, size, size + 1, 2 * size - 1, 2 * size])
            .filter(|p| *p < n)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        for &p in &positions {
            let mut items = good.clone();
            items[p] = broken(items[p].clone());
            assert_paths_agree(&items, &format!("{n} with bad at {p}"));
            // A second bad one later, in another chunk: the first is still reported.
            let later = p + size + 6;
            if later < n {
                items[later] = broken(items[later].clone());
                assert_paths_agree(&items, &format!("{n} with bad at {p} and {later}"));
            }
        }
    }
}

#[test]
fn zip215_review_every_check_bad_and_bad_only_in_a_later_chunk() {
    let key = Keypair::dev("review", 9);
    let all_bad: Vec<Owned> = (0..130u64)
        .map(|i| broken(honest(&key, &i.to_le_bytes())))
        .collect();
    assert_paths_agree(&all_bad, "all bad");
    // The first chunk good, the second and third bad: the first bad is 64, not the lowest
    // index of whichever failing chunk finishes first.
    let mut items: Vec<Owned> = (0..192u64)
        .map(|i| honest(&key, &i.to_le_bytes()))
        .collect();
    for i in [64usize, 100, 128, 191] {
        items[i] = broken(items[i].clone());
    }
    for _ in 0..20 {
        assert_eq!(crypto::verify_all(&as_checks(&items)), Err(64));
    }
}

// ---------------------------------------------------------------------------------------------
// Coalescing by key bytes.

#[test]
fn zip215_review_many_signatures_under_one_key_with_duplicates() {
    let key = Keypair::dev("review", 1);
    let mut items: Vec<Owned> = (0..300u64)
        .map(|i| honest(&key, &i.to_le_bytes()))
        .collect();
    // Exact duplicates (same key, message and signature) and the same key with a message whose
    // signature belongs to another one.
    for i in (0..300).step_by(7) {
        items[i] = items[i / 2].clone();
    }
    items[150].message = items[151].message.clone();
    items[299].signature = items[0].signature;
    assert_paths_agree(&items, "one key, 300 signatures, duplicates and swaps");
    // A batch made of one good signature 64 times.
    let same: Vec<Owned> = (0..64).map(|_| items[1].clone()).collect();
    assert_paths_agree(&same, "one signature 64 times");
    // One bad signature 64 times.
    let same_bad: Vec<Owned> = (0..64).map(|_| broken(items[1].clone())).collect();
    assert_paths_agree(&same_bad, "one bad signature 64 times");
}

/// Four encodings of the identity are four keys in the coalescing map, with four different `k`
/// for one message. Anyone can sign for the identity; the verdicts must be the single ones, and
/// a signature made for one encoding must not pass for another (its `k` differs) unless the
/// cofactored equation holds for that encoding too.
#[test]
fn zip215_review_non_canonical_encodings_of_one_point_are_separate_keys() {
    let encs = identity_encodings();
    let mut items = Vec::new();
    for round in 0..20u64 {
        for (e, enc) in encs.iter().enumerate() {
            let r = scalar(b"r", round * 8 + e as u64);
            let msg = round.to_le_bytes();
            // Valid for its encoding (the key is the identity: [k]A = 0, any S = r works).
            items.push(forge(
                Scalar::ZERO,
                *enc,
                r,
                EdwardsPoint::default(),
                &msg,
                Scalar::ZERO,
            ));
            // The same signature, claimed under every other encoding of the point.
            let sig = items.last().expect("pushed").signature;
            for other in &encs {
                items.push(Owned {
                    key: PublicKey(*other),
                    message: msg.to_vec(),
                    signature: sig,
                });
            }
            // Bad: S off by one.
            items.push(forge(
                Scalar::ZERO,
                *enc,
                r,
                EIGHT_TORSION[3],
                &msg,
                Scalar::ONE,
            ));
        }
    }
    assert!(items.iter().filter(|i| single(i)).count() > 80);
    assert!(items.iter().any(|i| !single(i)));
    assert_paths_agree(&items, "identity under four encodings");
    // The same, each chunk full of one point under several names, then rotated so the bad ones
    // move across chunk boundaries.
    for shift in [1usize, 17, 63] {
        let mut rotated = items.clone();
        rotated.rotate_left(shift);
        assert_paths_agree(&rotated, &format!("rotated by {shift}"));
    }
}

/// Mixed-order keys (a large-order point plus torsion): the holder of `a` signs for all eight
/// `aB + T`, each a different key in the map; torsion in `R` too. Bad ones: `S` shifted.
#[test]
fn zip215_review_mixed_order_keys_coalesce_without_combining() {
    let mut items = Vec::new();
    for i in 0..40u64 {
        let a = scalar(b"a", i % 3);
        let t = EIGHT_TORSION[(i % 8) as usize];
        let a_enc = (B * a + t).compress().0;
        let r = scalar(b"mixed r", i);
        let rt = EIGHT_TORSION[((i / 8) % 8) as usize];
        let msg = (i % 5).to_le_bytes();
        items.push(forge(a, a_enc, r, rt, &msg, Scalar::ZERO));
        if i % 6 == 0 {
            items.push(forge(a, a_enc, r, rt, &msg, Scalar::from(i + 1)));
        }
        // Signed as if the key were `aB` (k over the other encoding): single says no under
        // the mixed-order key bytes unless the torsion is zero.
        let plain = (B * a).compress().0;
        let mut wrong_k = forge(a, plain, r, rt, &msg, Scalar::ZERO);
        wrong_k.key = PublicKey(a_enc);
        items.push(wrong_k);
    }
    assert!(items.iter().any(|i| !single(i)) && items.iter().any(single));
    assert_paths_agree(&items, "mixed-order keys");
}

// ---------------------------------------------------------------------------------------------
// Hostile encodings.

#[test]
fn zip215_review_undecodable_keys_commitments_and_non_canonical_s_do_not_fail_neighbours() {
    let key = Keypair::dev("review", 2);
    let mut items: Vec<Owned> = (0..140u64)
        .map(|i| honest(&key, &i.to_le_bytes()))
        .collect();
    // A key that does not decode (y = 2 is not on the curve: checked below).
    let mut undecodable = [0u8; 32];
    undecodable[0] = 2;
    assert!(CompressedEdwardsY(undecodable).decompress().is_none());
    items[5].key = PublicKey(undecodable);
    items[70].key = PublicKey(undecodable);
    // A commitment that does not decode.
    items[66].signature.0[..32].copy_from_slice(&undecodable);
    // S + L (non-canonical S, same scalar), when it fits in 256 bits with the top bit clear.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for (j, out) in s_plus_l.iter_mut().enumerate() {
        let v = u16::from(items[90].signature.0[32 + j]) + u16::from(L[j]) + carry;
        *out = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    items[90].signature.0[32..].copy_from_slice(&s_plus_l);
    assert!(!single(&items[90]), "S + L is refused");
    // All-zero and all-0xff signatures and keys.
    items[100].signature = Signature([0; 64]);
    items[101].signature = Signature([0xff; 64]);
    items[102].key = PublicKey([0xff; 32]);
    items[103].key = PublicKey([0; 32]);
    assert_paths_agree(&items, "hostile encodings among good signatures");
    let verdicts = crypto::verify_each(&as_checks(&items));
    for i in [0usize, 4, 6, 64, 65, 67, 69, 71, 89, 91, 139] {
        assert!(verdicts[i], "good neighbour {i} rejected");
    }
}

// ---------------------------------------------------------------------------------------------
// Batch soundness: errors made to cancel.

/// Bad signatures whose errors cancel with equal weights (S + d and S - d, under one key and
/// under two), or whose error is pure torsion (killed by the cofactor: such a signature is valid,
/// and must be so on every path).
#[test]
fn zip215_review_cancelling_errors_do_not_pass_a_batch() {
    let mut items = Vec::new();
    for i in 0..32u64 {
        let a = scalar(b"cancel a", i % 2);
        let a_enc = (B * a).compress().0;
        let b = scalar(b"cancel b", i);
        let b_enc = (B * b).compress().0;
        let d = scalar(b"d", i);
        let r1 = scalar(b"r1", i);
        let r2 = scalar(b"r2", i);
        let msg = i.to_le_bytes();
        items.push(forge(a, a_enc, r1, EdwardsPoint::default(), &msg, d));
        items.push(forge(a, a_enc, r2, EdwardsPoint::default(), &msg, -d));
        items.push(forge(b, b_enc, r1, EdwardsPoint::default(), &msg, d));
        items.push(forge(a, a_enc, r2, EdwardsPoint::default(), b"other", -d));
    }
    assert!(items.iter().all(|i| !single(i)));
    assert_paths_agree(&items, "cancelling errors");
    // Duplicated bad items (equal errors, equal everything): still bad everywhere.
    let dup: Vec<Owned> = (0..64).map(|_| items[0].clone()).collect();
    assert_paths_agree(&dup, "one bad item 64 times");
    assert_eq!(crypto::verify_all(&as_checks(&dup)), Err(0));
}

// ---------------------------------------------------------------------------------------------
// Block validation with `already_verified`.

static GENESIS: LazyLock<Genesis> =
    LazyLock::new(|| Genesis::dev("zip215-review", 4, 8).expect("valid genesis"));

fn account(i: u32) -> Keypair {
    Keypair::dev("account", i)
}

fn chain_id() -> &'static ChainId {
    GENESIS.chain_id()
}

/// A valid block of `n` transfers, round-robin over the eight dev accounts.
fn block_txs(n: usize) -> Vec<SignedTransaction> {
    (0..n)
        .map(|i| {
            let from = account((i % 8) as u32);
            Transaction {
                chain_id: chain_id().clone(),
                from: from.public(),
                to: account(((i + 1) % 8) as u32).address(),
                amount: Amount(1),
                fee: Amount(0),
                nonce: Nonce((i / 8) as u64),
                memo: vec![],
            }
            .sign(&from)
        })
        .collect()
}

fn validate(
    txs: Vec<SignedTransaction>,
    already: &HashSet<Hash>,
) -> Result<ledger_core::state::ExecutedBlock, BlockError> {
    let verified: Vec<VerifiedTransaction> = block_txs(txs.len())
        .iter()
        .map(|t| t.clone().verify(chain_id()).expect("built valid"))
        .collect();
    // The header of a valid block of the good transactions, then the body as given.
    let parent = ParentBlock::genesis(&GENESIS);
    let mut state = GENESIS.initial_state();
    let mut block = validation::build_block(
        GENESIS.chain_context(),
        &parent,
        &mut state,
        &verified,
        Keypair::dev("validator", 0).address(),
        TimestampMs(parent.timestamp_ms.0 + 1000),
        None,
    )
    .expect("builds")
    .block
    .block()
    .clone();
    let mut state = GENESIS.initial_state();
    block.txs = txs;
    let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
    block.header.tx_root = ledger_core::merkle::merkle_root(&hashes);
    block.header.tx_count = block.txs.len() as u32;
    let sealed = block.seal().expect("the header was made from the body");
    let already = already.clone();
    validation::validate_block(
        GENESIS.chain_context(),
        &parent,
        &mut state,
        &sealed,
        None,
        &move |h: &Hash| already.contains(h),
    )
}

fn bad_index(r: Result<ledger_core::state::ExecutedBlock, BlockError>) -> Option<usize> {
    match r {
        Ok(_) => None,
        Err(BlockError::InvalidTx {
            index,
            error: TxError::BadSignature,
        }) => Some(index),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn zip215_review_block_reports_the_first_bad_signature_with_some_already_verified() {
    let n = 150;
    let good = block_txs(n);
    let all_good_hashes: HashSet<Hash> = good.iter().map(SignedTransaction::hash).collect();
    assert_eq!(bad_index(validate(good.clone(), &HashSet::new())), None);
    assert_eq!(bad_index(validate(good.clone(), &all_good_hashes)), None);
    for bads in [
        vec![0usize],
        vec![149],
        vec![63, 64],
        vec![70, 20],
        vec![130, 65, 66],
    ] {
        let mut txs = good.clone();
        for &b in &bads {
            txs[b].signature.0[40] ^= 0x01;
        }
        let first = *bads.iter().min().expect("non-empty");
        // The mempool verified: nothing; every other good one; the first 100 good ones; all
        // good ones. The verified ones are good, so the first bad one is the answer each time.
        let every_other: HashSet<Hash> = good
            .iter()
            .step_by(2)
            .map(SignedTransaction::hash)
            .collect();
        let first_100: HashSet<Hash> = good[..100].iter().map(SignedTransaction::hash).collect();
        for (name, already) in [
            ("none", HashSet::new()),
            ("every other", every_other),
            ("first 100", first_100),
            ("all good", all_good_hashes.clone()),
        ] {
            assert_eq!(
                bad_index(validate(txs.clone(), &already)),
                Some(first),
                "bad at {bads:?}, already verified: {name}"
            );
        }
    }
}
