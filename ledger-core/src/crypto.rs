//! Keys and signatures: ed25519 under one pinned verification rule.
//!
//! # The verification rule: ZIP-215
//!
//! Every signature in the ledger is checked under ZIP-215 (Zcash Improvement Proposal 215, the
//! rule written for consensus; ADR 0014), and only under it:
//! - `S` must be canonical (`S < L`);
//! - the public key `A` and the commitment `R` must be valid point encodings, and non-canonical
//!   encodings of a point are accepted (decoded as the point they name);
//! - small-order `A` and `R` are accepted;
//! - the cofactored equation `[8][S]B = [8]R + [8][k]A` must hold, with `k` hashed from the
//!   encodings of `R` and `A` as given.
//!
//! The same rule decides one signature ([`PublicKey::verify_raw`], `ed25519-zebra`'s check) and a
//! batch ([`verify_all`], [`verify_each`]): the batch equation (written here over curve25519-dalek,
//! as `ed25519-zebra` writes it, but over cached decoded keys) is the sum of the single cofactored
//! equations with random 128-bit weights, so a batch passes exactly when every signature in it
//! does (but with probability 2^-128). The weights are drawn in input order from a ChaCha20
//! stream keyed by a hash of the whole batch, so no one can choose a batch knowing its weights,
//! and the same batch gives the same equation everywhere. A batch of valid signatures always
//! passes, and a batch that fails is checked one signature at a time, which finds the bad ones
//! without rejecting their neighbours. The ed25519-speccheck vectors of "Taming the many EdDSAs"
//! (Chalkias et al., 2020) are pinned with ZIP-215's verdicts in the tests, for both paths, and
//! every verdict is compared with `ed25519-zebra` called directly.
//!
//! Keys and signing stay with `ed25519-dalek`: only verification is ZIP-215.
//!
//! # Domain separation
//!
//! A signature covers `domain prefix || chain id || payload`, with a distinct prefix per message kind,
//! so a signature made for one chain or one kind of message is worthless for any other.

use borsh::{BorshDeserialize, BorshSerialize};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signer, SigningKey};
use ed25519_zebra::VerificationKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256, Sha512};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use crate::ChainId;

/// What a signature is for. Each kind has its own prefix in the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Transaction,
    Vote,
    Proposal,
}

impl Domain {
    fn prefix(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"ledger/v1/transaction\0",
            Domain::Vote => b"ledger/v1/vote\0",
            Domain::Proposal => b"ledger/v1/proposal\0",
        }
    }
}

/// The exact bytes a signature of `domain` on `chain_id` covers for `payload`.
pub fn signing_bytes(domain: Domain, chain_id: &ChainId, payload: &[u8]) -> Vec<u8> {
    let prefix = domain.prefix();
    let chain = chain_id.as_str().as_bytes();
    let mut out = Vec::with_capacity(prefix.len() + 1 + chain.len() + payload.len());
    out.extend_from_slice(prefix);
    // Chain ids are at most 64 bytes (ChainId enforces it), so one length byte is enough and
    // makes the split between chain id and payload unambiguous.
    out.push(chain.len() as u8);
    out.extend_from_slice(chain);
    out.extend_from_slice(payload);
    out
}

/// An ed25519 public key, as its 32-byte compressed encoding. Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (R || S). Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// The signature did not verify under the pinned rule (or the key is not a valid point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad signature")]
pub struct BadSignature;

impl PublicKey {
    /// Verifies `sig` over `signing_bytes(domain, chain_id, payload)` under ZIP-215.
    pub fn verify(
        &self,
        domain: Domain,
        chain_id: &ChainId,
        payload: &[u8],
        sig: &Signature,
    ) -> Result<(), BadSignature> {
        self.verify_raw(&signing_bytes(domain, chain_id, payload), sig)
    }

    /// ZIP-215 on a raw message (no domain prefix): the pinned rule itself.
    pub fn verify_raw(&self, message: &[u8], sig: &Signature) -> Result<(), BadSignature> {
        let key = decoded_key(self).ok_or(BadSignature)?;
        key.single
            .verify(&ed25519_zebra::Signature::from_bytes(&sig.0), message)
            .map_err(|_| BadSignature)
    }
}

/// One signature check for [`verify_all`] and [`verify_each`].
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// The most signatures in one batch. A batch's cost per signature falls with its size: on this
/// project's reference machine (see docs/BENCHMARKS.md) 35 us at 64, 26 us at 256 and 24 us at
/// 1,024, against 57 us for a single check, because above about 190 points the multiscalar
/// multiplication switches from Straus to Pippenger. A failed batch costs its size in single
/// checks, so batches stop growing where the gain flattens.
pub const MAX_BATCH: usize = 256;

/// The batch size for `n` checks: as large as [`MAX_BATCH`] allows while every rayon worker gets
/// a batch, so a few hundred signatures are not left to one core.
pub fn batch_size(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1))
        .clamp(MIN_BATCH, MAX_BATCH)
}

/// Below this many checks a batch does not pay for its setup: they are checked one by one.
const MIN_BATCH: usize = 4;

/// Whether every check of `chunk` verifies, as one batch (or singly, when it is small).
///
/// The batch equation of ZIP-215, as `ed25519-zebra`'s batch verifier writes it, with the keys
/// taken from the [decoded-key cache](decoded_key) instead of decompressed for every batch (that
/// was a third of a batch's cost), and the weights drawn in input order:
///
/// `[8]( [-sum(z_i s_i)]B + sum([z_i]R_i) + sum_A([sum over A's checks of z_i k_i]A) ) = 0`,
///
/// where `k_i` is hashed from `R_i`, `A_i` and the message as encoded, and the `z_i` are 128-bit
/// weights. A signature the single check rejects for its encoding (non-canonical `S`, `R` or `A`
/// not a point) fails the batch.
fn batch_verifies(chunk: &[SignatureCheck<'_>]) -> bool {
    if chunk.len() < MIN_BATCH {
        return chunk
            .iter()
            .all(|c| c.key.verify_raw(c.message, c.signature).is_ok());
    }
    // The weights' seed: a hash of everything in the batch, so no one picks the items after
    // seeing their weights (see the module docs).
    let mut seed = Sha256::new();
    for c in chunk {
        seed.update(c.key.0);
        seed.update(c.signature.0);
        seed.update((c.message.len() as u64).to_le_bytes());
        seed.update(c.message);
    }
    let mut rng = ChaCha20Rng::from_seed(seed.finalize().into());

    let mut b_coeff = Scalar::ZERO;
    let mut r_points = Vec::with_capacity(chunk.len());
    let mut r_coeffs = Vec::with_capacity(chunk.len());
    // Each distinct key once, in order of first appearance, with its summed coefficient.
    let mut key_slot: HashMap<[u8; 32], usize> = HashMap::with_capacity(chunk.len());
    let mut a_points = Vec::new();
    let mut a_coeffs: Vec<Scalar> = Vec::new();
    for c in chunk {
        let Some(key) = decoded_key(c.key) else {
            return false;
        };
        let (r_bytes, s_bytes) = c.signature.0.split_at(32);
        let (r_bytes, s_bytes): ([u8; 32], [u8; 32]) =
            match (r_bytes.try_into(), s_bytes.try_into()) {
                (Ok(r), Ok(s)) => (r, s),
                _ => return false,
            };
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(c.key.0)
                .chain_update(c.message),
        );
        let mut weight = [0u8; 16];
        rng.fill_bytes(&mut weight);
        let z = Scalar::from(u128::from_le_bytes(weight));
        b_coeff -= z * s;
        r_points.push(r);
        r_coeffs.push(z);
        let slot = *key_slot.entry(c.key.0).or_insert_with(|| {
            a_points.push(key.point);
            a_coeffs.push(Scalar::ZERO);
            a_points.len() - 1
        });
        a_coeffs[slot] += z * k;
    }
    EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&b_coeff).chain(&a_coeffs).chain(&r_coeffs),
        std::iter::once(&ED25519_BASEPOINT_POINT)
            .chain(&a_points)
            .chain(&r_points),
    )
    .mul_by_cofactor()
    .is_identity()
}

/// A public key decoded once: its point for the batch equation and `ed25519-zebra`'s key for the
/// single check.
#[derive(Clone, Copy)]
struct DecodedKey {
    point: EdwardsPoint,
    single: VerificationKey,
}

/// The most keys [`decoded_key`] remembers (about 6 MB). Past it the cache starts over: a flood
/// of new keys costs what it would without a cache, never more.
const KEY_CACHE_MAX: usize = 16_384;

static KEYS: LazyLock<Mutex<HashMap<[u8; 32], DecodedKey>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Empties the decoded-key cache: the next checks decode every key again. For benchmarks that
/// measure keys never seen before; nothing else needs it.
#[doc(hidden)]
pub fn forget_decoded_keys() {
    KEYS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

/// `key` decoded (`None`: not a point), from a process-wide cache. Decompressing a point costs
/// about 6 us, a fifth of a signature check, and a busy chain sees the same senders and
/// validators again and again.
fn decoded_key(key: &PublicKey) -> Option<DecodedKey> {
    let lock = || {
        KEYS.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(hit) = lock().get(&key.0) {
        return Some(*hit);
    }
    let decoded = DecodedKey {
        point: CompressedEdwardsY(key.0).decompress()?,
        single: VerificationKey::try_from(key.0).ok()?,
    };
    let mut cache = lock();
    if cache.len() >= KEY_CACHE_MAX {
        cache.clear();
    }
    cache.insert(key.0, decoded);
    Some(decoded)
}

/// The verdict of each check under ZIP-215, in input order: batches ([`batch_size`]) in
/// parallel; the checks of a batch that fails are decided one by one.
pub fn verify_each(checks: &[SignatureCheck<'_>]) -> Vec<bool> {
    checks
        .par_chunks(batch_size(checks.len()))
        .flat_map_iter(|chunk| {
            let all = batch_verifies(chunk);
            chunk
                .iter()
                .map(move |c| all || c.key.verify_raw(c.message, c.signature).is_ok())
        })
        .collect()
}

/// Verifies every check under ZIP-215, in batches in parallel. On failure returns the index of
/// the first failing check in input order, so the verdict does not depend on thread scheduling.
pub fn verify_all(checks: &[SignatureCheck<'_>]) -> Result<(), usize> {
    let size = batch_size(checks.len());
    let bad = checks
        .par_chunks(size)
        .enumerate()
        .filter(|(_, chunk)| !batch_verifies(chunk))
        .filter_map(|(n, chunk)| {
            chunk
                .iter()
                .position(|c| c.key.verify_raw(c.message, c.signature).is_err())
                .map(|i| n * size + i)
        })
        .min();
    match bad {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// A signing key. Never serialized by the ledger; the wallet stores the 32-byte seed itself.
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// The key whose secret seed is `seed` (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// A deterministic development key:
    /// seed = SHA-256("ledger dev key\0" || label || "\0" || index as u32 little-endian).
    /// DEV ONLY: anyone can derive these keys; they exist so the default genesis, the wallet and the
    /// testnet agree on pre-funded accounts and validators without shipping secrets.
    pub fn dev(label: &str, index: u32) -> Keypair {
        let seed = crate::Hash::digest_parts(&[
            b"ledger dev key\0",
            label.as_bytes(),
            b"\0",
            &index.to_le_bytes(),
        ]);
        Keypair::from_seed(seed.0)
    }

    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn address(&self) -> crate::Address {
        crate::Address::from_public_key(&self.public())
    }

    /// Signs `payload` for `domain` on `chain_id`.
    pub fn sign(&self, domain: Domain, chain_id: &ChainId, payload: &[u8]) -> Signature {
        self.sign_raw(&signing_bytes(domain, chain_id, payload))
    }

    pub fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({:?})", self.public())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair::from_seed(self.seed())
    }
}

macro_rules! hex_bytes_type {
    ($ty:ident, $len:expr, $name:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({})"), &hex::encode(self.0)[..16])
            }
        }
        impl FromStr for $ty {
            type Err = ParseBytesError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.strip_prefix("0x").unwrap_or(s);
                if s.len() != 2 * $len {
                    return Err(ParseBytesError::WrongLength {
                        what: $name,
                        expected: 2 * $len,
                        got: s.len(),
                    });
                }
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| ParseBytesError::NotHex { what: $name })?;
                Ok($ty(out))
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Why a hex key or signature did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseBytesError {
    #[error("{what} must be {expected} hex characters, got {got}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{what} is not hex")]
    NotHex { what: &'static str },
}

hex_bytes_type!(PublicKey, 32, "public key");
hex_bytes_type!(Signature, 64, "signature");

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("test-chain").expect("valid chain id")
    }

    #[test]
    fn signature_verifies_only_for_its_domain_and_chain() {
        let k = Keypair::dev("test", 0);
        let sig = k.sign(Domain::Transaction, &chain(), b"payload");
        assert_eq!(
            k.public()
                .verify(Domain::Transaction, &chain(), b"payload", &sig),
            Ok(())
        );
        assert_eq!(
            k.public().verify(Domain::Vote, &chain(), b"payload", &sig),
            Err(BadSignature)
        );
        let other = ChainId::new("other-chain").expect("valid chain id");
        assert_eq!(
            k.public()
                .verify(Domain::Transaction, &other, b"payload", &sig),
            Err(BadSignature)
        );
    }

    #[test]
    fn dev_keys_are_deterministic_and_distinct() {
        assert_eq!(Keypair::dev("a", 1).public(), Keypair::dev("a", 1).public());
        assert_ne!(Keypair::dev("a", 1).public(), Keypair::dev("a", 2).public());
        assert_ne!(Keypair::dev("a", 1).public(), Keypair::dev("b", 1).public());
    }

    #[test]
    fn verify_all_reports_the_first_bad_index() {
        let k = Keypair::dev("test", 1);
        let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = msgs.iter().map(|m| k.sign_raw(m)).collect();
        let pk = k.public();
        let checks = |sigs: &[Signature]| -> Vec<(usize, Signature)> {
            sigs.iter().copied().enumerate().collect()
        };
        let run = |sigs: &[Signature]| {
            let pairs = checks(sigs);
            let list: Vec<SignatureCheck<'_>> = pairs
                .iter()
                .map(|(i, s)| SignatureCheck {
                    key: &pk,
                    message: &msgs[*i],
                    signature: s,
                })
                .collect();
            verify_all(&list)
        };
        assert_eq!(run(&sigs), Ok(()));
        sigs[31].0[0] ^= 1;
        sigs[40].0[5] ^= 1;
        assert_eq!(run(&sigs), Err(31));
    }
}
