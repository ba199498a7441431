//! Adversarial review of commit ec6e74d: the hand-written ZIP-215 batch equation over
//! curve25519-dalek, the process-wide decoded-key cache, and adaptive batch sizes.
//!
//! The reference is always `ed25519_zebra::VerificationKey::try_from(bytes)?.verify(sig, msg)`,
//! called directly (it never touches the ledger's cache). Every test checks that
//! `crypto::verify_each`, `crypto::verify_all` and `PublicKey::verify_raw` give the reference
//! verdict, with keys first seen in a batch (the batch runs before any single check), under
//! several rayon pool sizes (so `batch_size(n)` cuts chunks differently), around cache overflow
//! (more than 16,384 distinct keys, then old keys again), and with many threads verifying at once
//! while the cache is being flooded and cleared.
//!
//! Seeds: `REVIEW_SEED` replays a run; the seed is printed on failure.

use std::sync::atomic::{AtomicBool, Ordering};

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ledger_core::crypto::{self, PublicKey, Signature, SignatureCheck};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha512};

/// The cache's capacity in `crypto.rs` (`KEY_CACHE_MAX`, private): past it the cache is cleared.
const KEY_CACHE_MAX: usize = 16_384;

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn seed() -> u64 {
    std::env::var("REVIEW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(11, |d| d.as_nanos() as u64)
        })
}

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

/// ed25519-zebra's single verdict, without the ledger's cache.
fn reference(i: &Owned) -> bool {
    ed25519_zebra::VerificationKey::try_from(i.key.0).is_ok_and(|k| {
        k.verify(
            &ed25519_zebra::Signature::from_bytes(&i.signature.0),
            &i.message,
        )
        .is_ok()
    })
}

/// Batch paths first (so keys may be first seen in a batch), then the single path, all against
/// the reference.
fn assert_agree(items: &[Owned], refs: &[bool], what: &str) {
    let checks = as_checks(items);
    let each = crypto::verify_each(&checks);
    if each != refs {
        let at = each.iter().zip(refs).position(|(a, b)| a != b);
        let at = at.expect("differs somewhere");
        panic!(
            "{what}: verify_each differs from ed25519-zebra at {at} (got {}, reference {}): {:?}",
            each[at], refs[at], items[at]
        );
    }
    let first_bad = refs.iter().position(|ok| !ok);
    assert_eq!(
        crypto::verify_all(&checks).err(),
        first_bad,
        "{what}: verify_all does not report the first bad check"
    );
    for (n, (i, r)) in items.iter().zip(refs).enumerate() {
        assert_eq!(
            i.key.verify_raw(&i.message, &i.signature).is_ok(),
            *r,
            "{what}: verify_raw differs from ed25519-zebra at {n}: {i:?}"
        );
    }
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

/// Every other encoding of the point `enc` names: sign bit flipped when x = 0, `y + p` when
/// y < 19, and both.
fn other_encodings(enc: [u8; 32]) -> Vec<[u8; 32]> {
    let Some(point) = CompressedEdwardsY(enc).decompress() else {
        return vec![];
    };
    let mut candidates = Vec::new();
    let mut flipped = enc;
    flipped[31] ^= 0x80;
    candidates.push(flipped);
    let mut y = enc;
    y[31] &= 0x7f;
    let sign = enc[31] & 0x80;
    if y[1..].iter().all(|b| *b == 0) && y[0] < 19 {
        let mut plus_p = [0xffu8; 32];
        plus_p[0] = y[0] + 0xed;
        plus_p[31] = 0x7f | sign;
        candidates.push(plus_p);
        let mut both = plus_p;
        both[31] ^= 0x80;
        candidates.push(both);
    }
    // Also the reverse direction: an encoding of y + p maps back to y.
    let mut low = enc;
    low[31] &= 0x7f;
    if low[0] >= 0xed && low[1..31].iter().all(|b| *b == 0xff) && low[31] == 0x7f {
        let mut canon = [0u8; 32];
        canon[0] = low[0] - 0xed;
        canon[31] |= sign;
        candidates.push(canon);
        let mut canon_flipped = canon;
        canon_flipped[31] ^= 0x80;
        candidates.push(canon_flipped);
    }
    candidates
        .into_iter()
        .filter(|c| *c != enc && CompressedEdwardsY(*c).decompress() == Some(point))
        .collect()
}

/// A point of small, large or mixed order with its scalar part.
fn point(rng: &mut ChaCha20Rng) -> (EdwardsPoint, Scalar) {
    let s = random_scalar(rng);
    let t = EIGHT_TORSION[rng.random_range(0..8)];
    match rng.random_range(0..4) {
        0 => (t, Scalar::ZERO),
        1 => (B * s, s),
        _ => (B * s + t, s),
    }
}

/// One check, honest or hostile, over fresh random keys (never seen by the cache before).
fn item(rng: &mut ChaCha20Rng) -> Owned {
    let mut message = vec![0u8; rng.random_range(0..40)];
    rng.fill_bytes(&mut message);
    let kind = rng.random_range(0..14);
    if kind == 0 {
        let (mut key, mut sig) = ([0u8; 32], [0u8; 64]);
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut sig);
        return Owned {
            key: PublicKey(key),
            message,
            signature: Signature(sig),
        };
    }
    let (a_point, a) = point(rng);
    let (r_point, r) = point(rng);
    let mut a_enc = a_point.compress().0;
    let mut r_enc = r_point.compress().0;
    // Sometimes sent under another encoding of the same point.
    if kind == 3 || kind == 5 {
        let alts = other_encodings(a_enc);
        if !alts.is_empty() {
            a_enc = alts[rng.random_range(0..alts.len())];
        }
    }
    if kind == 4 || kind == 5 {
        let alts = other_encodings(r_enc);
        if !alts.is_empty() {
            r_enc = alts[rng.random_range(0..alts.len())];
        }
    }
    let canon_k = k_of(&r_point.compress().0, &a_point.compress().0, &message);
    let k = if kind == 6 {
        canon_k
    } else {
        k_of(&r_enc, &a_enc, &message)
    };
    let s = r + k * a;
    let mut s_bytes = s.to_bytes();
    match kind {
        7 => {
            // S + L.
            let mut carry = 0u16;
            for (b, l) in s_bytes.iter_mut().zip(L) {
                let t = u16::from(*b) + u16::from(l) + carry;
                *b = t as u8;
                carry = t >> 8;
            }
        }
        8 => s_bytes = (s + Scalar::ONE).to_bytes(),
        9 => message.push(1),
        10 => {
            // An undecodable R (y = 2 is not on the curve).
            r_enc = [0u8; 32];
            r_enc[0] = 2;
        }
        11 => {
            // S with the top bit set.
            s_bytes[31] |= 0x80;
        }
        _ => {}
    }
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_enc);
    sig[32..].copy_from_slice(&s_bytes);
    Owned {
        key: PublicKey(a_enc),
        message,
        signature: Signature(sig),
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

// ---------------------------------------------------------------------------------------------
// Sizes, chunk edges and pool sizes, keys first seen in a batch.

/// For n around 4, 256 and 512, under pools of 1, 2 and 3 threads (so `batch_size(n)` is n, n/2
/// or n/3 clamped to [4, 256]): fresh hostile checks, with honest-looking valid ones moved onto
/// every chunk edge, run through the batch paths before anything else has seen their keys.
#[test]
fn review_fresh_keys_first_seen_in_a_batch_agree_at_every_size_and_chunk_edge() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for threads in [1usize, 2, 3] {
        pool(threads).install(|| {
            for n in [4usize, 5, 8, 255, 256, 257, 512, 513] {
                let size = crypto::batch_size(n);
                assert!((4..=crypto::MAX_BATCH).contains(&size));
                let items: Vec<Owned> = (0..n).map(|_| item(&mut rng)).collect();
                // The reference never touches the ledger's cache: the batch sees the keys first.
                let refs: Vec<bool> = items.iter().map(reference).collect();
                let what = format!("seed {seed}, {threads} threads, n {n}, chunks of {size}");
                assert_agree(&items, &refs, &what);
                // The valid ones alone must pass whole, and each single bad one at a chunk edge
                // must be reported in place.
                let valid: Vec<Owned> = items
                    .iter()
                    .zip(&refs)
                    .filter(|(_, r)| **r)
                    .map(|(i, _)| i.clone())
                    .collect();
                let m = valid.len();
                if m == 0 {
                    continue;
                }
                let msize = crypto::batch_size(m);
                let all_ok = vec![true; m];
                assert_agree(&valid, &all_ok, &format!("{what}: valid ones"));
                let bads: Vec<&Owned> = items
                    .iter()
                    .zip(&refs)
                    .filter(|(_, r)| !**r)
                    .map(|(i, _)| i)
                    .collect();
                for (j, p) in [0, 1, msize - 1, msize, msize + 1, 2 * msize - 1, m - 1]
                    .into_iter()
                    .filter(|p| *p < m)
                    .enumerate()
                {
                    let Some(bad) = bads.get(j % bads.len().max(1)) else {
                        break;
                    };
                    let mut list = valid.clone();
                    list[p] = (*bad).clone();
                    let mut r = all_ok.clone();
                    r[p] = false;
                    assert_agree(&list, &r, &format!("{what}: one bad at {p}"));
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Cache state: overflow and clearing, then old keys again.

/// `n` distinct decodable keys the test has not used elsewhere, each pushed through the cache by
/// a single check that fails cheaply (S not canonical).
fn flood(rng: &mut ChaCha20Rng, n: usize) {
    let bad_s = Signature([0xff; 64]);
    let mut done = 0;
    while done < n {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        if CompressedEdwardsY(key).decompress().is_none() {
            continue;
        }
        assert!(PublicKey(key).verify_raw(b"flood", &bad_s).is_err());
        done += 1;
    }
}

/// Hostile checks over a small set of keys (small-order keys under every encoding, mixed-order
/// keys, honest keys), so the same key bytes come back in every phase.
fn recurring_items(rng: &mut ChaCha20Rng, n: usize) -> Vec<Owned> {
    let mut keys: Vec<(Scalar, [u8; 32], [u8; 32])> = Vec::new(); // (a, enc, canonical enc)
    for t in EIGHT_TORSION {
        let c = t.compress().0;
        keys.push((Scalar::ZERO, c, c));
        for alt in other_encodings(c) {
            keys.push((Scalar::ZERO, alt, c));
        }
    }
    for _ in 0..6 {
        let a = random_scalar(rng);
        let t = EIGHT_TORSION[rng.random_range(0..8)];
        let c = (B * a + t).compress().0;
        keys.push((a, c, c));
    }
    (0..n)
        .map(|_| {
            let (a, a_enc, a_canon) = keys[rng.random_range(0..keys.len())];
            let mut message = vec![0u8; rng.random_range(0..16)];
            rng.fill_bytes(&mut message);
            let (r_point, r) = point(rng);
            let r_enc = r_point.compress().0;
            // k over the bytes sent, or (a third of the time) over another encoding of the key.
            let k_key = if rng.random_range(0..3) == 0 {
                a_canon
            } else {
                a_enc
            };
            let k = k_of(&r_enc, &k_key, &message);
            let mut s = r + k * a;
            if rng.random_range(0..4) == 0 {
                s += Scalar::ONE;
            }
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_enc);
            sig[32..].copy_from_slice(s.as_bytes());
            Owned {
                key: PublicKey(a_enc),
                message,
                signature: Signature(sig),
            }
        })
        .collect()
}

#[test]
fn review_verdicts_hold_across_cache_overflow_and_old_keys_again() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let items = recurring_items(&mut rng, 300);
    let refs: Vec<bool> = items.iter().map(reference).collect();
    assert!(refs.iter().any(|r| *r) && refs.iter().any(|r| !*r));
    let what = |phase: &str| format!("seed {seed}: {phase}");
    // Keys first seen through single checks of the other encoding, then in a batch.
    for i in items.iter().step_by(7) {
        let _ = i.key.verify_raw(&i.message, &i.signature);
    }
    assert_agree(&items, &refs, &what("warm"));
    // Fill the cache to one below its bound: the next new key clears it.
    flood(&mut rng, KEY_CACHE_MAX);
    assert_agree(&items, &refs, &what("after one overflow"));
    flood(&mut rng, KEY_CACHE_MAX - 3);
    assert_agree(&items, &refs, &what("right at the bound"));
    flood(&mut rng, 5);
    assert_agree(&items, &refs, &what("after a second clear"));
    // Old keys again through a batch that also carries new keys, in several orders.
    let mut mixed = items.clone();
    mixed.extend((0..300).map(|_| item(&mut rng)));
    let mixed_refs: Vec<bool> = mixed.iter().map(reference).collect();
    for shift in [0usize, 1, 129, 255, 256, 257] {
        let mut m = mixed.clone();
        m.rotate_left(shift);
        let mut r = mixed_refs.clone();
        r.rotate_left(shift);
        assert_agree(&m, &r, &what(&format!("old and new keys, rotated {shift}")));
    }
}

/// An undecodable key is never cached as valid, and a valid key never as invalid, whatever was
/// asked before: same bytes checked singly, in a batch and after the cache was cleared.
#[test]
fn review_undecodable_keys_stay_undecodable_across_cache_states() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Keys with y < 19 or y >= p (non-canonical), every sign: each decodes or not.
    let mut encodings = Vec::new();
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut canon = [0u8; 32];
            canon[0] = y;
            canon[31] = sign;
            encodings.push(canon);
            let mut plus_p = [0xffu8; 32];
            plus_p[0] = y + 0xed;
            plus_p[31] = 0x7f | sign;
            encodings.push(plus_p);
        }
    }
    let decodable = encodings
        .iter()
        .filter(|e| CompressedEdwardsY(**e).decompress().is_some())
        .count();
    assert!(decodable > 4 && decodable < encodings.len());
    let mut items = Vec::new();
    for (n, enc) in encodings.iter().enumerate() {
        // R of small order and S = 0: valid whenever [8][k]A = 0, i.e. A of small order.
        for t in [0usize, 1, 4, 5] {
            let r_enc = EIGHT_TORSION[t].compress().0;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_enc);
            items.push(Owned {
                key: PublicKey(*enc),
                message: (n as u64 * 8 + t as u64).to_le_bytes().to_vec(),
                signature: Signature(sig),
            });
        }
        items.push(item(&mut rng));
    }
    let refs: Vec<bool> = items.iter().map(reference).collect();
    assert!(refs.iter().any(|r| *r), "small-order keys sign with S = 0");
    assert_agree(&items, &refs, &format!("seed {seed}: first"));
    flood(&mut rng, KEY_CACHE_MAX + 1);
    let mut rev = items.clone();
    rev.reverse();
    let mut rrev = refs.clone();
    rrev.reverse();
    assert_agree(
        &rev,
        &rrev,
        &format!("seed {seed}: reversed, after a clear"),
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency: many threads, overlapping keys, the cache cleared under them.

#[test]
fn review_concurrent_batches_over_shared_keys_while_the_cache_churns() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut items = recurring_items(&mut rng, 260);
    items.extend((0..260).map(|_| item(&mut rng)));
    let refs: Vec<bool> = items.iter().map(reference).collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A flooder: distinct new keys, so the cache is cleared again and again.
        let flooder = s.spawn(|| {
            let mut r = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) && rounds < 40 {
                flood(&mut r, 2_000);
                rounds += 1;
            }
        });
        let workers: Vec<_> = (0..6usize)
            .map(|w| {
                let (items, refs) = (&items, &refs);
                s.spawn(move || {
                    for round in 0..6usize {
                        let shift = (w * 37 + round * 101) % items.len();
                        let mut m = items.clone();
                        m.rotate_left(shift);
                        let mut r = refs.clone();
                        r.rotate_left(shift);
                        // Different lengths: different chunk sizes and edges.
                        let len = items.len() - (w * 13 + round * 7) % 200;
                        assert_agree(
                            &m[..len],
                            &r[..len],
                            &format!("seed {seed}: worker {w} round {round} shift {shift}"),
                        );
                    }
                })
            })
            .collect();
        let mut failed = None;
        for w in workers {
            if let Err(e) = w.join() {
                failed = Some(e);
            }
        }
        stop.store(true, Ordering::Relaxed);
        flooder.join().expect("the flooder");
        if let Some(e) = failed {
            std::panic::resume_unwind(e);
        }
    });
}

/// A panic in a rayon task that is verifying (here: a panicking caller around `verify_each`
/// inside the pool) must not leave the cache unusable for anyone else.
#[test]
fn review_a_panicking_verifier_thread_does_not_break_the_cache() {
    let seed = seed();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let items: Vec<Owned> = (0..300).map(|_| item(&mut rng)).collect();
    let refs: Vec<bool> = items.iter().map(reference).collect();
    for _ in 0..4 {
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                let checks = as_checks(&items);
                let _ = crypto::verify_each(&checks);
                panic!("a verifier thread dies after using the cache");
            })
            .join()
        });
        assert!(r.is_err());
    }
    assert_agree(&items, &refs, &format!("seed {seed}: after panics"));
}
