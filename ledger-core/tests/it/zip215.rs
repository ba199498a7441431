//! Batch verification agrees with single verification under ZIP-215 (ADR 0014), on honest and on
//! adversarial signatures: keys and commitments of small order and of mixed order (a torsion
//! component on a large-order point), non-canonical point encodings, `k` hashed over reduced or
//! as-sent encodings, non-canonical `S`, and random bytes.
//!
//! For each random list of checks, [`crypto::verify_each`] must give every check its single
//! verdict (`PublicKey::verify_raw`), [`crypto::verify_all`] must report the first check whose
//! single verdict is false, and the constructions that satisfy the cofactored equation must
//! verify (so the generator is not producing only garbage). Seeds come from proptest
//! (`PROPTEST_RNG_SEED`); a failure prints the seed of the list.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ledger_core::crypto::{self, PublicKey, Signature, SignatureCheck};
use proptest::prelude::*;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha512};

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// One signature check with owned parts, and whether it was built to satisfy the cofactored
/// equation over canonical parts (then ZIP-215 must accept it).
#[derive(Debug, Clone)]
struct Item {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    built_valid: bool,
}

fn random_scalar(rng: &mut ChaCha20Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
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

/// Another encoding of the point `enc` names, if it has one: `y + p` when that still fits in 255
/// bits, or the sign bit set when `x` is 0.
fn non_canonical(enc: [u8; 32]) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(enc).decompress()?;
    // x = 0: the sign bit is free.
    let mut flipped = enc;
    flipped[31] ^= 0x80;
    if flipped != enc
        && CompressedEdwardsY(flipped)
            .decompress()
            .is_some_and(|p| p == point)
    {
        return Some(flipped);
    }
    // y + p, where p = 2^255 - 19: only for y < 19.
    let sign = enc[31] & 0x80;
    let mut y = enc;
    y[31] &= 0x7f;
    if y[1..].iter().all(|b| *b == 0) && y[0] < 19 {
        let mut out = [0xffu8; 32];
        out[0] = y[0] + 0xed;
        out[31] = 0x7f | sign;
        return Some(out);
    }
    None
}

fn torsion(rng: &mut ChaCha20Rng) -> EdwardsPoint {
    EIGHT_TORSION[rng.random_range(0..8)]
}

/// A point: of small order, of large (prime) order, or mixed, with its scalar part if it has one.
fn point(rng: &mut ChaCha20Rng) -> (EdwardsPoint, Option<Scalar>) {
    let s = random_scalar(rng);
    match rng.random_range(0..3) {
        0 => (torsion(rng), Some(Scalar::ZERO)),
        1 => (ED25519_BASEPOINT_POINT * s, Some(s)),
        _ => (ED25519_BASEPOINT_POINT * s + torsion(rng), Some(s)),
    }
}

/// One adversarial or honest check.
fn item(rng: &mut ChaCha20Rng) -> Item {
    let mut message = vec![0u8; rng.random_range(0..48)];
    rng.fill_bytes(&mut message);
    match rng.random_range(0..10) {
        // Random bytes: mostly keys or commitments that do not decode.
        0 => {
            let (mut key, mut sig) = ([0u8; 32], [0u8; 64]);
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut sig);
            Item {
                key: PublicKey(key),
                message,
                signature: Signature(sig),
                built_valid: false,
            }
        }
        kind => {
            // A = [a]B + torsion or small order, R likewise, S = r + k a, so that
            // [8][S]B = [8]R + [8][k]A holds over the points; then variations.
            let (a_point, a) = point(rng);
            let (r_point, r) = point(rng);
            let mut a_enc = a_point.compress().0;
            let mut r_enc = r_point.compress().0;
            let reencode_a = kind == 3 || kind == 5;
            let reencode_r = kind == 4 || kind == 5;
            // k over the encodings as sent, or (kind 6) over the canonical ones.
            let (a_sent, r_sent) = (
                if reencode_a {
                    non_canonical(a_enc).unwrap_or(a_enc)
                } else {
                    a_enc
                },
                if reencode_r {
                    non_canonical(r_enc).unwrap_or(r_enc)
                } else {
                    r_enc
                },
            );
            let k = if kind == 6 {
                k_of(&r_enc, &a_enc, &message)
            } else {
                k_of(&r_sent, &a_sent, &message)
            };
            (a_enc, r_enc) = (a_sent, r_sent);
            let s = r.unwrap_or(Scalar::ZERO) + k * a.unwrap_or(Scalar::ZERO);
            let mut s_bytes = s.to_bytes();
            let mut built_valid = kind != 6;
            match kind {
                // S + L: the same scalar, not canonical.
                7 => {
                    let mut carry = 0u16;
                    for (b, l) in s_bytes.iter_mut().zip(L) {
                        let t = u16::from(*b) + u16::from(l) + carry;
                        *b = t as u8;
                        carry = t >> 8;
                    }
                    built_valid = false;
                }
                // A wrong S.
                8 => {
                    s_bytes = (s + Scalar::ONE).to_bytes();
                    built_valid = false;
                }
                // Another message.
                9 => {
                    message.push(1);
                    built_valid = false;
                }
                _ => {}
            }
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_enc);
            sig[32..].copy_from_slice(&s_bytes);
            Item {
                key: PublicKey(a_enc),
                message,
                signature: Signature(sig),
                built_valid,
            }
        }
    }
}

fn checks(items: &[Item]) -> Vec<SignatureCheck<'_>> {
    items
        .iter()
        .map(|i| SignatureCheck {
            key: &i.key,
            message: &i.message,
            signature: &i.signature,
        })
        .collect()
}

/// Where the batch paths disagree with `single` (the single-signature verdict) on `items`, if
/// anywhere: the invariant this file checks.
fn disagreement(items: &[Item], single: impl Fn(&Item) -> bool) -> Option<String> {
    let single: Vec<bool> = items.iter().map(single).collect();
    let list = checks(items);
    let each = crypto::verify_each(&list);
    if each != single {
        let at = each.iter().zip(&single).position(|(a, b)| a != b);
        return Some(format!("verify_each differs at {at:?}"));
    }
    let first_bad = single.iter().position(|ok| !ok);
    if crypto::verify_all(&list).err() != first_bad {
        return Some(format!("verify_all does not report {first_bad:?}"));
    }
    None
}

/// The single verdict, from `ed25519-zebra` directly (the reference), checked to be the ledger's
/// single verdict too (which goes through its decoded-key cache).
fn zip215_single(i: &Item) -> bool {
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

fn assert_batch_agrees(seed: u64, len: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let items: Vec<Item> = (0..len).map(|_| item(&mut rng)).collect();
    for (n, i) in items.iter().enumerate() {
        assert!(
            !i.built_valid || zip215_single(i),
            "seed {seed}: item {n} satisfies the cofactored equation but was rejected: {i:?}"
        );
    }
    if let Some(d) = disagreement(&items, zip215_single) {
        panic!("seed {seed}: {d}");
    }
    // The valid ones alone: one batch (or more) that must pass whole.
    let valid: Vec<Item> = items.iter().filter(|i| zip215_single(i)).cloned().collect();
    assert_eq!(
        crypto::verify_all(&checks(&valid)),
        Ok(()),
        "seed {seed}: the valid ones alone"
    );
}

/// The check can fail: against `verify_strict` (cofactorless, no small-order points), the rule
/// the ledger used before ZIP-215, the batch verdicts disagree on these inputs.
#[test]
fn the_agreement_check_catches_a_single_rule_the_batch_does_not_follow() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let items: Vec<Item> = (0..200).map(|_| item(&mut rng)).collect();
    assert_eq!(disagreement(&items, zip215_single), None);
    let strict = |i: &Item| {
        ed25519_dalek::VerifyingKey::from_bytes(&i.key.0).is_ok_and(|k| {
            k.verify_strict(
                &i.message,
                &ed25519_dalek::Signature::from_bytes(&i.signature.0),
            )
            .is_ok()
        })
    };
    assert!(disagreement(&items, strict).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_and_single_verdicts_agree_on_adversarial_signatures(
        seed in any::<u64>(),
        len in 1usize..3 * crypto::MAX_BATCH,
    ) {
        assert_batch_agrees(seed, len);
    }
}

/// The generator reaches every kind of edge: small-order and mixed keys and commitments that
/// verify, non-canonical encodings that verify, and items that must fail.
#[test]
fn the_generator_makes_edge_cases_that_verify_and_ones_that_do_not() {
    let mut rng = ChaCha20Rng::seed_from_u64(215);
    let items: Vec<Item> = (0..2_000).map(|_| item(&mut rng)).collect();
    let verifies = |i: &Item| i.key.verify_raw(&i.message, &i.signature).is_ok();
    let small_order = |enc: &[u8]| {
        let mut e = [0u8; 32];
        e.copy_from_slice(enc);
        CompressedEdwardsY(e)
            .decompress()
            .is_some_and(|p| p.is_small_order())
    };
    let canonical = |enc: &[u8]| {
        let mut e = [0u8; 32];
        e.copy_from_slice(enc);
        CompressedEdwardsY(e)
            .decompress()
            .is_some_and(|p| p.compress().0 == e)
    };
    let has = |f: &dyn Fn(&Item) -> bool| items.iter().any(f);
    assert!(has(&|i| verifies(i) && small_order(&i.key.0)));
    assert!(has(&|i| verifies(i) && small_order(&i.signature.0[..32])));
    assert!(has(&|i| verifies(i) && !canonical(&i.key.0)));
    assert!(has(&|i| verifies(i) && !canonical(&i.signature.0[..32])));
    assert!(has(&|i| !verifies(i) && !i.built_valid));
    assert!(items.iter().filter(|i| verifies(i)).count() > 500);
}
