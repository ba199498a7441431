//! The transaction Merkle root of a block, with inclusion proofs (RFC 6962 / RFC 9162 shape).
//!
//! For the list `D = [d0, .., d(n-1)]` of transaction hashes, in block order, the RFC 6962 tree hash
//! is
//!
//! ```text
//! MTH([d]) = SHA-256(0x00 || d)
//! MTH(D)   = SHA-256(0x01 || MTH(D[0..k]) || MTH(D[k..n]))   for n > 1,
//! ```
//!
//! where `k` is the largest power of two smaller than `n`. The distinct prefixes for leaves and nodes
//! stop a node being passed off as a leaf (second-preimage attacks on unbalanced trees), and the
//! split rule makes the shape a function of `n` alone, so a proof is checked knowing only the index
//! and the count. The root we put in block headers also commits to the count:
//!
//! ```text
//! root([]) = Hash::ZERO
//! root(D)  = SHA-256(0x02 || n as u64 little-endian || MTH(D))  for n >= 1.
//! ```
//!
//! Why the count: RFC 6962 trusts the tree size from a signed tree head, and an audit path alone does
//! not pin it. The last leaf of 13 verifies against the same MTH as "leaf 3 of 4" (both climb as a
//! right child twice), so a proof against a bare MTH would not authenticate the position of a
//! transaction. Committing to `n` in the root makes `(index, total)` part of what a proof proves.
//! The empty list's root is the ledger's "nothing here" marker `Hash::ZERO`, as for the empty state
//! tree; no proof exists for it.

use crate::Hash;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Domain prefix of a leaf hash: `SHA-256(0x00 || leaf)`.
const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of a node hash: `SHA-256(0x01 || left || right)`.
const NODE_PREFIX: u8 = 0x01;
/// Domain prefix of the root, which binds the leaf count: `SHA-256(0x02 || n_u64_le || MTH)`.
const ROOT_PREFIX: u8 = 0x02;
/// A tree of at most 2^64 leaves is at most 64 levels deep, so no valid proof has more siblings.
pub const MAX_PROOF_SIBLINGS: usize = 64;

fn leaf_hash(leaf: &Hash) -> Hash {
    Hash::digest_parts(&[&[LEAF_PREFIX], leaf.as_bytes()])
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

fn root_hash(total: u64, tree_hash: &Hash) -> Hash {
    Hash::digest_parts(&[&[ROOT_PREFIX], &total.to_le_bytes(), tree_hash.as_bytes()])
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle root of `leaves` (`Hash::ZERO` for none).
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    root_hash(leaves.len() as u64, &subtree_root(leaves))
}

fn subtree_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Hash::ZERO,
        [leaf] => leaf_hash(leaf),
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&subtree_root(left), &subtree_root(right))
        }
    }
}

/// Proof that a leaf sits at `index` of a list of `total` leaves.
///
/// `siblings` is the RFC 6962 audit path: the roots of the subtrees next to the leaf's path, from the
/// leaf up to the root.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub total: u64,
    pub siblings: Vec<Hash>,
}

/// Why an inclusion proof does not prove what was claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionProofError {
    #[error("leaf index {index} is not below the leaf count {total}")]
    IndexOutOfRange { index: u64, total: u64 },
    #[error("proof for leaf {index} of {total} needs {expected} siblings, has {got}")]
    WrongSiblingCount {
        index: u64,
        total: u64,
        expected: usize,
        got: usize,
    },
    #[error("proof computes root {computed}, expected {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
}

/// The inclusion proof of `leaves[index]`, or `None` if `index` is out of range.
pub fn prove_inclusion(leaves: &[Hash], index: usize) -> Option<InclusionProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    audit_path(leaves, index, &mut siblings);
    Some(InclusionProof {
        index: index as u64,
        total: leaves.len() as u64,
        siblings,
    })
}

/// Appends the audit path of `leaves[index]` (`index < leaves.len()`), deepest sibling first.
fn audit_path(leaves: &[Hash], index: usize, out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if index < k {
        audit_path(left, index, out);
        out.push(subtree_root(right));
    } else {
        audit_path(right, index - k, out);
        out.push(subtree_root(left));
    }
}

/// The number of siblings in the proof of leaf `index` of `total` (`index < total`): the steps of
/// the RFC 9162 section 2.1.3.2 walk until `sn` reaches 0.
fn expected_siblings(index: u64, total: u64) -> usize {
    let (mut fn_, mut sn) = (index, total - 1);
    let mut count = 0;
    while sn != 0 {
        if fn_ & 1 == 0 && fn_ == sn {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
        count += 1;
    }
    count
}

/// Checks that `leaf` is at `proof.index` of the `proof.total` leaves committed to by `root`.
///
/// Follows RFC 9162 section 2.1.3.2. Pure and total: malformed proofs give errors, never panics.
pub fn verify_inclusion(
    root: &Hash,
    leaf: &Hash,
    proof: &InclusionProof,
) -> Result<(), InclusionProofError> {
    let InclusionProof {
        index,
        total,
        ref siblings,
    } = *proof;
    if index >= total {
        return Err(InclusionProofError::IndexOutOfRange { index, total });
    }
    let expected = expected_siblings(index, total);
    if siblings.len() != expected {
        return Err(InclusionProofError::WrongSiblingCount {
            index,
            total,
            expected,
            got: siblings.len(),
        });
    }
    // fn_ is the position of the current node on its level, sn the last position on that level.
    let (mut fn_, mut sn) = (index, total - 1);
    let mut hash = leaf_hash(leaf);
    for sibling in siblings {
        if fn_ & 1 == 1 || fn_ == sn {
            hash = node_hash(sibling, &hash);
            // A last node with an even position has no right sibling on the levels below its
            // parent's: skip up to where it is a right child.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    let computed = root_hash(total, &hash);
    if computed != *root {
        return Err(InclusionProofError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| Hash::digest(&i.to_le_bytes()))
            .collect()
    }

    #[test]
    fn small_trees_follow_the_rfc_6962_shape() {
        let l = leaves(3);
        assert_eq!(merkle_root(&[]), Hash::ZERO);
        let a = Hash::digest(&[&[0u8][..], &l[0].0].concat());
        let one = Hash::digest(&[&[2u8][..], &1u64.to_le_bytes(), &a.0].concat());
        assert_eq!(merkle_root(&l[..1]), one);
        let (b, c) = (leaf_hash(&l[1]), leaf_hash(&l[2]));
        let ab = Hash::digest(&[&[1u8][..], &a.0, &b.0].concat());
        assert_eq!(merkle_root(&l[..2]), root_hash(2, &ab));
        // Three leaves split 2 + 1.
        assert_eq!(merkle_root(&l), root_hash(3, &node_hash(&ab, &c)));
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn out_of_range_index_has_no_proof() {
        assert_eq!(prove_inclusion(&[], 0), None);
        assert_eq!(prove_inclusion(&leaves(3), 3), None);
    }

    #[test]
    fn every_leaf_of_every_small_tree_verifies_with_the_expected_length() {
        for n in 1..=70 {
            let l = leaves(n);
            let root = merkle_root(&l);
            for (i, leaf) in l.iter().enumerate() {
                let proof = prove_inclusion(&l, i).expect("index in range");
                assert_eq!(
                    proof.siblings.len(),
                    expected_siblings(i as u64, n as u64),
                    "n={n} i={i}"
                );
                assert_eq!(verify_inclusion(&root, leaf, &proof), Ok(()), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn the_count_is_authenticated_even_where_the_audit_path_cannot_tell() {
        // Leaf 12 of 13 and leaf 3 of 4 climb the same way (right child, right child).
        let l = leaves(13);
        let proof = prove_inclusion(&l, 12).expect("index in range");
        assert_eq!(verify_inclusion(&merkle_root(&l), &l[12], &proof), Ok(()));
        let forged = InclusionProof {
            index: 3,
            total: 4,
            ..proof
        };
        assert!(matches!(
            verify_inclusion(&merkle_root(&l), &l[12], &forged),
            Err(InclusionProofError::RootMismatch { .. })
        ));
    }

    #[test]
    fn huge_claimed_totals_do_not_panic() {
        let siblings = vec![Hash::ZERO; expected_siblings(u64::MAX - 1, u64::MAX)];
        assert_eq!(siblings.len(), 63);
        let proof = InclusionProof {
            index: u64::MAX - 1,
            total: u64::MAX,
            siblings,
        };
        assert!(matches!(
            verify_inclusion(&Hash::ZERO, &Hash::ZERO, &proof),
            Err(InclusionProofError::RootMismatch { .. })
        ));
        let proof = InclusionProof {
            index: u64::MAX,
            total: u64::MAX,
            siblings: vec![],
        };
        assert_eq!(
            verify_inclusion(&Hash::ZERO, &Hash::ZERO, &proof),
            Err(InclusionProofError::IndexOutOfRange {
                index: u64::MAX,
                total: u64::MAX
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_proof_verifies_and_every_tampered_one_fails(
            n in 1usize..300,
            pick in any::<usize>(),
            byte in 0usize..32,
        ) {
            let l = leaves(n);
            let root = merkle_root(&l);
            let index = pick % n;
            let leaf = l[index];
            let proof = prove_inclusion(&l, index).expect("index in range");
            prop_assert_eq!(verify_inclusion(&root, &leaf, &proof), Ok(()));
            prop_assert!(proof.siblings.len() <= MAX_PROOF_SIBLINGS);

            for i in 0..proof.siblings.len() {
                let mut bad = proof.clone();
                bad.siblings[i].0[byte] ^= 0x01;
                prop_assert!(verify_inclusion(&root, &leaf, &bad).is_err(), "sibling {}", i);
            }
            let mut other_leaf = leaf;
            other_leaf.0[byte] ^= 0x01;
            prop_assert!(verify_inclusion(&root, &other_leaf, &proof).is_err());
            // Another leaf of the same tree is not at this index.
            let neighbour = l[(index + 1) % n];
            if n > 1 {
                prop_assert!(verify_inclusion(&root, &neighbour, &proof).is_err());
            }
            for other_index in [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2, u64::MAX as usize] {
                if other_index != index {
                    let mut bad = proof.clone();
                    bad.index = other_index as u64;
                    prop_assert!(verify_inclusion(&root, &leaf, &bad).is_err(), "index {}", other_index);
                }
            }
            for other_total in [0, n - 1, n + 1, 2 * n, n.next_power_of_two() + 1] {
                if other_total != n {
                    let mut bad = proof.clone();
                    bad.total = other_total as u64;
                    prop_assert!(verify_inclusion(&root, &leaf, &bad).is_err(), "total {}", other_total);
                }
            }
            let mut bad = proof.clone();
            bad.siblings.push(root);
            prop_assert!(verify_inclusion(&root, &leaf, &bad).is_err());
            if !proof.siblings.is_empty() {
                let mut bad = proof.clone();
                bad.siblings.pop();
                prop_assert!(verify_inclusion(&root, &leaf, &bad).is_err());
            }
        }

        #[test]
        fn garbage_proofs_never_panic(
            root in any::<[u8; 32]>().prop_map(Hash),
            leaf in any::<[u8; 32]>().prop_map(Hash),
            index in prop_oneof![any::<u64>(), 0u64..64],
            total in prop_oneof![any::<u64>(), 0u64..64],
            siblings in proptest::collection::vec(any::<[u8; 32]>().prop_map(Hash), 0..80),
        ) {
            let proof = InclusionProof { index, total, siblings };
            prop_assert!(verify_inclusion(&root, &leaf, &proof).is_err());
        }
    }
}
