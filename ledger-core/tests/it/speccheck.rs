//! The ed25519-speccheck vectors ("Taming the many EdDSAs", Chalkias, Garillot, Nikolaenko, 2020),
//! pinned with the verdict of the ledger's rule, ZIP-215 (ADR 0014).
//!
//! The 12 cases (`tests/data/ed25519-speccheck-cases.txt`, verbatim from
//! novifinancial/ed25519-speccheck, see `tests/data/README.md`) probe where Ed25519 verifiers
//! disagree. A consensus rule must give every case the same verdict on every node, forever, so
//! the verdicts are pinned here for every path a signature can take: one at a time
//! (`PublicKey::verify_raw`: single transactions and votes), a batch ([`crypto::verify_all`]:
//! blocks and certificates) and per-item verdicts of a batch ([`crypto::verify_each`]: gossiped
//! and submitted transaction batches).
//!
//! Expected verdicts follow from the rule's definition (see `crypto.rs`): a canonical `S`
//! (`S < L`), any point encodings that decode (small order and non-canonical included), the
//! cofactored equation `[8][S]B = [8]R + [8][k]A` with `k` hashed over the encodings as sent.
//! They are the "Zebra" row of the speccheck repository's `results.md` (ed25519-zebra implements
//! ZIP-215): every case verifies but 6, 7 and 8.

use ledger_core::crypto::{self, PublicKey, Signature, SignatureCheck};

const CASES: &str = include_str!("../data/ed25519-speccheck-cases.txt");

/// (case, verifies under ZIP-215, why).
const EXPECTED: [(usize, bool, &str); 12] = [
    (
        0,
        true,
        "S = 0, A and R of small order: both sides are the identity once multiplied by 8",
    ),
    (
        1,
        true,
        "0 < S < L, A small order, R mixed order: the cofactored equation holds",
    ),
    (
        2,
        true,
        "0 < S < L, A mixed order, R small order: the cofactored equation holds",
    ),
    (
        3,
        true,
        "0 < S < L, A and R mixed order, cofactorless equation holds: so does the cofactored one",
    ),
    (
        4,
        true,
        "A and R mixed order, only the cofactored equation holds: cofactored is the rule",
    ),
    (
        5,
        true,
        "A mixed order, R of order L, only the cofactored equation holds: cofactored is the rule",
    ),
    (
        6,
        false,
        "S > L (equation holds for S mod L): non-canonical S rejected",
    ),
    (7, false, "S >> L (high bits set): non-canonical S rejected"),
    (
        8,
        false,
        "R = non-canonical encoding of a small-order point, k computed on the reduced R: k over the bytes as sent differs, the equation fails",
    ),
    (
        9,
        true,
        "R = non-canonical encoding of a small-order point, k on the bytes as sent: accepted",
    ),
    (
        10,
        true,
        "A = non-canonical encoding of a small-order point, k on the reduced A: [8][k]A is the identity whatever k",
    ),
    (
        11,
        true,
        "A = non-canonical encoding of a small-order point, k on the bytes as sent: accepted",
    ),
];

struct Case {
    message: Vec<u8>,
    key: PublicKey,
    signature: Signature,
}

fn field<'a>(line: Option<&'a str>, name: &str) -> &'a str {
    let line = line.unwrap_or_else(|| panic!("missing {name} line"));
    line.strip_prefix(name)
        .and_then(|l| l.strip_prefix('='))
        .unwrap_or_else(|| panic!("expected {name}=..., got {line}"))
}

fn cases() -> Vec<Case> {
    let mut lines = CASES.lines();
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("case count on the first line");
    let cases: Vec<Case> = (0..count)
        .map(|_| {
            let message = hex::decode(field(lines.next(), "msg")).expect("hex message");
            let key = field(lines.next(), "pbk").parse().expect("32-byte hex key");
            let signature = field(lines.next(), "sig")
                .parse()
                .expect("64-byte hex signature");
            Case {
                message,
                key,
                signature,
            }
        })
        .collect();
    assert_eq!(
        cases.len(),
        EXPECTED.len(),
        "the file holds the 12 published cases"
    );
    cases
}

fn check(c: &Case) -> SignatureCheck<'_> {
    SignatureCheck {
        key: &c.key,
        message: &c.message,
        signature: &c.signature,
    }
}

#[test]
fn single_path_verdicts_match_the_pinned_rule() {
    let cases = cases();
    let got: Vec<bool> = cases
        .iter()
        .map(|c| c.key.verify_raw(&c.message, &c.signature).is_ok())
        .collect();
    let expected: Vec<bool> = EXPECTED.iter().map(|(_, v, _)| *v).collect();
    for (i, (g, (_, e, why))) in got.iter().zip(EXPECTED.iter()).enumerate() {
        assert_eq!(g, e, "case {i}: {why}");
    }
    assert_eq!(got, expected);
}

#[test]
fn batch_path_verdicts_match_the_single_path() {
    let cases = cases();
    for (i, (c, (_, expected, why))) in cases.iter().zip(EXPECTED.iter()).enumerate() {
        let verdict = crypto::verify_all(&[check(c)]).is_ok();
        assert_eq!(verdict, *expected, "case {i} alone: {why}");
    }
    // All twelve at once: the first failure is reported, in input order, and each verdict of a
    // batch is the single one.
    let all: Vec<SignatureCheck<'_>> = cases.iter().map(check).collect();
    assert_eq!(crypto::verify_all(&all), Err(6));
    let each: Vec<bool> = EXPECTED.iter().map(|(_, v, _)| *v).collect();
    assert_eq!(crypto::verify_each(&all), each);
    // Each rejected case hidden among many copies of the accepted one is still found, at its index.
    let good = &cases[3];
    for (i, c) in cases.iter().enumerate() {
        let mut batch: Vec<SignatureCheck<'_>> = (0..64).map(|_| check(good)).collect();
        batch.insert(40, check(c));
        let expected = if EXPECTED[i].1 { Ok(()) } else { Err(40) };
        assert_eq!(
            crypto::verify_all(&batch),
            expected,
            "case {i} among valid ones"
        );
        let each = crypto::verify_each(&batch);
        assert_eq!(each[40], EXPECTED[i].1, "case {i} among valid ones");
        assert!(
            each.iter().enumerate().all(|(j, v)| j == 40 || *v),
            "case {i} rejected a neighbour"
        );
    }
}

#[test]
fn the_vectors_are_the_published_ones() {
    // Guards against an edited data file: the first and last case, byte for byte.
    let cases = cases();
    assert_eq!(
        hex::encode(&cases[0].message),
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6"
    );
    assert_eq!(
        cases[11].key.to_string(),
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    );
    assert_eq!(
        cases[3].signature.to_string(),
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f\
         87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"
    );
}
