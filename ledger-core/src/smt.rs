//! The state root: a compressed binary sparse Merkle tree over 256-bit keys.
//!
//! Callers key accounts by `SHA-256(address)` and store `SHA-256(canonical account encoding)` as the
//! value hash, so the tree commits to every account and can prove both that an account has a given
//! state (membership) and that an address has no account (non-membership).
//!
//! ## Shape and hashing (the consensus rule; see `docs/adr/0002-state-root-sparse-merkle-tree.md`)
//!
//! Key bits are read most significant first: bit `i` is `(key[i / 8] >> (7 - i % 8)) & 1`, and bit 0
//! chooses the root's side (0 = left). For a set `S` of `(key, value_hash)` entries whose keys share
//! their first `d` bits, the subtree hash is
//!
//! ```text
//! root(S, d) = Hash::ZERO                                          if S is empty
//!            = SHA-256(0x00 || key || value_hash)                  if S = {(key, value_hash)}
//!            = SHA-256(0x01 || root(S0, d + 1) || root(S1, d + 1)) otherwise,
//! ```
//!
//! where `S0`/`S1` hold the entries whose bit `d` is 0/1. The state root is `root(S, 0)`. A subtree with
//! one entry is therefore that entry's leaf, placed as high as it can go (as in Diem's Jellyfish Merkle
//! tree), so a tree of `n` random keys is about `log2(n)` deep and an update rehashes `O(log n)` nodes.
//!
//! ## Storage
//!
//! Nodes live in arenas (`Vec`s of leaves and of internal nodes) addressed by `u32` ids, with free
//! lists, instead of a `Box` per node: cloning is a few `memcpy`s and a walk touches memory that was
//! allocated together. An internal node keeps its children's hashes, not its own, so a walk reads
//! one node per level: rehashing a path and collecting a proof's siblings never visit the siblings.
//! A million random accounts take about 64 MB of leaves and 105 MB of internal nodes.
//!
//! The tree is cut into 16 shards by the first 4 key bits, each with its own arenas; the 15 nodes
//! above the shards are recomputed from the shards' roots after each batch. The cut is invisible in
//! hashes and proofs; it exists so a batch can update the shards on rayon workers in parallel with
//! each worker owning its arenas (no `unsafe`, no locks).
//!
//! ## Batched updates
//!
//! [`SparseMerkleTree::apply`] sorts a batch by key and walks each affected path once, splitting the
//! sorted batch at every node, and rehashes on the way back up: an update of `k` keys in a tree of
//! `n` costs about `k * (log2(n) - log2(k) + 1)` node hashes plus `k` leaf hashes. The result is
//! deterministic: the shape depends only on the set of entries, never on update order or batching.

use crate::Hash;
use borsh::{BorshDeserialize, BorshSerialize};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Number of key bits, hence the largest possible depth of a leaf (two keys that differ only in their
/// last bit) and the largest number of siblings a valid proof can carry.
pub const KEY_BITS: usize = 256;

/// Domain prefix of a leaf hash: `SHA-256(0x00 || key || value_hash)`.
const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of an internal node hash: `SHA-256(0x01 || left || right)`.
const INTERNAL_PREFIX: u8 = 0x01;

/// The tree is split into `2^SHARD_BITS` shards by the leading key bits (see "Storage").
const SHARD_BITS: usize = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// Batches at least this large hash leaves and update shards on rayon workers; smaller ones are
/// cheaper on the calling thread than waking the pool.
const PARALLEL_MIN_BATCH: usize = 256;

/// The hash of the leaf holding `key -> value_hash`.
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    Hash::digest_parts(&[&[LEAF_PREFIX], key.as_bytes(), value_hash.as_bytes()])
}

/// The hash of an internal node with the given child hashes (`Hash::ZERO` for an empty child).
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[INTERNAL_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// Bit `depth` of `key`, most significant bit first. `depth` must be below [`KEY_BITS`].
fn bit(key: &Hash, depth: usize) -> bool {
    (key.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Whether `a` and `b` agree on their first `depth` bits (`depth <= KEY_BITS`).
fn shares_prefix(a: &Hash, b: &Hash, depth: usize) -> bool {
    let whole = depth / 8;
    if a.0[..whole] != b.0[..whole] {
        return false;
    }
    let rest = depth % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a.0[whole] ^ b.0[whole]) & mask == 0
}

/// The shard holding `key`: its first `SHARD_BITS` bits.
fn shard_of(key: &Hash) -> usize {
    usize::from(key.0[0] >> (8 - SHARD_BITS))
}

/// A reference to a node: empty, or an index into the leaf or the internal arena of a shard.
///
/// Packed into a `u32` to keep internal nodes small: the high bit tells a leaf from an internal node
/// and `u32::MAX` is the empty subtree. That caps each arena at 2^31 - 1 nodes, far beyond the memory
/// of any machine this runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct NodeId(u32);

const LEAF_BIT: u32 = 1 << 31;
/// Largest index either arena may use (`u32::MAX` itself is [`NodeId::EMPTY`]).
const MAX_INDEX: u32 = LEAF_BIT - 2;

enum Node {
    Empty,
    Leaf(usize),
    Internal(usize),
}

impl NodeId {
    const EMPTY: NodeId = NodeId(u32::MAX);

    fn leaf(index: u32) -> NodeId {
        NodeId(index | LEAF_BIT)
    }

    fn internal(index: u32) -> NodeId {
        NodeId(index)
    }

    fn node(self) -> Node {
        if self == NodeId::EMPTY {
            Node::Empty
        } else if self.0 & LEAF_BIT != 0 {
            Node::Leaf((self.0 & !LEAF_BIT) as usize)
        } else {
            Node::Internal(self.0 as usize)
        }
    }
}

/// A node id with the hash of the subtree it roots: how parents hold their children.
type Child = (NodeId, Hash);

const EMPTY_CHILD: Child = (NodeId::EMPTY, Hash::ZERO);

#[derive(Clone, Debug)]
struct Leaf {
    key: Hash,
    value: Hash,
}

#[derive(Clone, Debug)]
struct Internal {
    left: NodeId,
    right: NodeId,
    left_hash: Hash,
    right_hash: Hash,
}

/// One update of a sorted, deduplicated batch. The new value comes with its leaf hash, computed
/// before the tree walk (in parallel for large batches).
struct Update {
    key: Hash,
    new: Option<(Hash, Hash)>,
}

/// What the nodes above the shards need to know about a subtree: its hash, and whether it is empty
/// or a single leaf (those collapse upwards, see [`join_summaries`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Summary {
    Empty,
    /// A lone leaf, which is the root of shard `shard`.
    Leaf {
        hash: Hash,
        shard: usize,
    },
    Internal(Hash),
}

impl Summary {
    fn hash(&self) -> Hash {
        match self {
            Summary::Empty => Hash::ZERO,
            Summary::Leaf { hash, .. } | Summary::Internal(hash) => *hash,
        }
    }
}

/// The canonical parent of two subtrees: empty over two empty ones, the lone leaf over a leaf and an
/// empty one, an internal node otherwise.
fn join_summaries(left: Summary, right: Summary) -> Summary {
    match (left, right) {
        (Summary::Empty, Summary::Empty) => Summary::Empty,
        (Summary::Leaf { .. }, Summary::Empty) => left,
        (Summary::Empty, Summary::Leaf { .. }) => right,
        _ => Summary::Internal(internal_hash(&left.hash(), &right.hash())),
    }
}

/// An authenticated map from 32-byte keys to 32-byte value hashes; see the module documentation.
#[derive(Clone, Debug)]
pub struct SparseMerkleTree {
    /// `shards[s]` holds the keys whose first `SHARD_BITS` bits are `s`; its root sits at depth
    /// `SHARD_BITS`.
    shards: Vec<Shard>,
    /// `top[(1 << d) | p]` summarizes the subtree of the `d`-bit prefix `p`, for `d < SHARD_BITS`
    /// (heap order: the root is `top[1]`, the children of `top[i]` are `2i` and `2i + 1`, and
    /// positions `SHARDS..2 * SHARDS` are the shards). `top[0]` is unused.
    top: [Summary; SHARDS],
    len: usize,
}

impl Default for SparseMerkleTree {
    fn default() -> Self {
        SparseMerkleTree::new()
    }
}

impl SparseMerkleTree {
    /// An empty tree; its root is `Hash::ZERO`.
    pub fn new() -> SparseMerkleTree {
        SparseMerkleTree {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            top: [Summary::Empty; SHARDS],
            len: 0,
        }
    }

    /// The commitment to all entries: `Hash::ZERO` when empty.
    pub fn root(&self) -> Hash {
        self.summary(1).hash()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value hash stored under `key`, if any.
    pub fn get(&self, key: &Hash) -> Option<Hash> {
        let shard = &self.shards[shard_of(key)];
        let mut node = shard.root.0;
        let mut depth = SHARD_BITS;
        loop {
            match node.node() {
                Node::Empty => return None,
                Node::Leaf(i) => {
                    let leaf = &shard.leaves[i];
                    return (leaf.key == *key).then_some(leaf.value);
                }
                Node::Internal(i) => {
                    let n = &shard.internals[i];
                    // Internal nodes split two distinct keys, so they exist only above depth 256
                    // and `depth` stays a valid bit index.
                    node = if bit(key, depth) { n.right } else { n.left };
                    depth += 1;
                }
            }
        }
    }

    /// Applies a batch of updates: `Some(value_hash)` inserts or replaces, `None` deletes (deleting an
    /// absent key does nothing). When a key appears more than once the last update wins, exactly as if
    /// the updates had been applied one by one.
    ///
    /// # Panics
    ///
    /// If a shard would need more than 2^31 - 1 leaves or internal nodes (hundreds of GB of memory).
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (Hash, Option<Hash>)>) {
        let batch = prepare_batch(updates.into_iter().collect());
        if batch.is_empty() {
            return;
        }
        // The batch is sorted, so each shard's updates are one contiguous run.
        let mut runs: Vec<&[Update]> = Vec::with_capacity(SHARDS);
        let mut rest = &batch[..];
        for s in 0..SHARDS {
            let (run, tail) = rest.split_at(rest.partition_point(|u| shard_of(&u.key) <= s));
            runs.push(run);
            rest = tail;
        }
        if batch.len() >= PARALLEL_MIN_BATCH {
            self.shards
                .par_iter_mut()
                .zip(runs)
                .for_each(|(shard, run)| shard.apply(run));
        } else {
            self.shards
                .iter_mut()
                .zip(runs)
                .for_each(|(shard, run)| shard.apply(run));
        }
        self.len = self.shards.iter().map(|s| s.len).sum();
        for i in (1..SHARDS).rev() {
            self.top[i] = join_summaries(self.summary(2 * i), self.summary(2 * i + 1));
        }
    }

    /// A proof of the value stored under `key`, or of its absence; check it with [`verify`].
    pub fn prove(&self, key: &Hash) -> Proof {
        let mut siblings = Vec::new();
        // Down the nodes above the shards, which may already end the path.
        let mut index = 1;
        for depth in 0..SHARD_BITS {
            match self.summary(index) {
                Summary::Empty => {
                    return Proof {
                        leaf: None,
                        siblings,
                    };
                }
                Summary::Leaf { shard, .. } => {
                    let leaf = self.shards[shard].root_leaf();
                    return Proof { leaf, siblings };
                }
                Summary::Internal(_) => {
                    let child = 2 * index + usize::from(bit(key, depth));
                    siblings.push(self.summary(child ^ 1).hash());
                    index = child;
                }
            }
        }
        self.shards[shard_of(key)].prove(key, siblings)
    }

    /// The subtree at heap position `index` (see `top`), `1 <= index < 2 * SHARDS`.
    fn summary(&self, index: usize) -> Summary {
        if index < SHARDS {
            return self.top[index];
        }
        let shard = index - SHARDS;
        let (root, hash) = self.shards[shard].root;
        match root.node() {
            Node::Empty => Summary::Empty,
            Node::Leaf(_) => Summary::Leaf { hash, shard },
            Node::Internal(_) => Summary::Internal(hash),
        }
    }
}

/// The subtree of one `SHARD_BITS`-bit key prefix, with its own arenas.
#[derive(Debug)]
struct Shard {
    leaves: Vec<Leaf>,
    internals: Vec<Internal>,
    free_leaves: Vec<u32>,
    free_internals: Vec<u32>,
    root: Child,
    len: usize,
}

/// Keeps the arenas' spare capacity: a derived `clone` would trim it, and the clone's first insert
/// would then copy a whole arena to grow it.
impl Clone for Shard {
    fn clone(&self) -> Self {
        Shard {
            leaves: clone_with_capacity(&self.leaves),
            internals: clone_with_capacity(&self.internals),
            free_leaves: self.free_leaves.clone(),
            free_internals: self.free_internals.clone(),
            root: self.root,
            len: self.len,
        }
    }
}

fn clone_with_capacity<T: Clone>(v: &Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.capacity());
    out.extend_from_slice(v);
    out
}

impl Shard {
    fn new() -> Shard {
        Shard {
            leaves: Vec::new(),
            internals: Vec::new(),
            free_leaves: Vec::new(),
            free_internals: Vec::new(),
            root: EMPTY_CHILD,
            len: 0,
        }
    }

    fn apply(&mut self, run: &[Update]) {
        let (root, hash) = self.root;
        let (root, _changed) = self.update((root, hash), SHARD_BITS, run);
        self.root = root;
    }

    /// The shard's root as a proof leaf, if the root is a leaf.
    fn root_leaf(&self) -> Option<ProofLeaf> {
        match self.root.0.node() {
            Node::Leaf(i) => {
                let leaf = &self.leaves[i];
                Some(ProofLeaf {
                    key: leaf.key,
                    value_hash: leaf.value,
                })
            }
            Node::Empty | Node::Internal(_) => None,
        }
    }

    /// Continues a proof from the shard's root (depth `SHARD_BITS`) down the path of `key`.
    fn prove(&self, key: &Hash, mut siblings: Vec<Hash>) -> Proof {
        let mut node = self.root.0;
        let mut depth = SHARD_BITS;
        loop {
            match node.node() {
                Node::Empty => {
                    return Proof {
                        leaf: None,
                        siblings,
                    };
                }
                Node::Leaf(i) => {
                    let leaf = &self.leaves[i];
                    let leaf = ProofLeaf {
                        key: leaf.key,
                        value_hash: leaf.value,
                    };
                    return Proof {
                        leaf: Some(leaf),
                        siblings,
                    };
                }
                Node::Internal(i) => {
                    let n = &self.internals[i];
                    let (next, sibling) = if bit(key, depth) {
                        (n.right, n.left_hash)
                    } else {
                        (n.left, n.right_hash)
                    };
                    siblings.push(sibling);
                    node = next;
                    depth += 1;
                }
            }
        }
    }

    /// Applies the sorted, deduplicated `batch` (all keys of which share their first `depth` bits
    /// with every key below `node`) to the subtree `node`, rehashing on the way back up. Returns the
    /// new subtree and whether anything changed.
    fn update(&mut self, node: Child, depth: usize, batch: &[Update]) -> (Child, bool) {
        if batch.is_empty() {
            return (node, false);
        }
        let (left, right) = match node.0.node() {
            Node::Empty => {
                if let [only] = batch {
                    return match only.new {
                        None => (node, false),
                        Some((value, hash)) => {
                            let leaf = self.alloc_leaf(Leaf {
                                key: only.key,
                                value,
                            });
                            self.len += 1;
                            ((leaf, hash), true)
                        }
                    };
                }
                (EMPTY_CHILD, EMPTY_CHILD)
            }
            Node::Leaf(i) => {
                if let [only] = batch
                    && only.key == self.leaves[i].key
                {
                    return match only.new {
                        None => {
                            self.free_leaves.push(i as u32);
                            self.len -= 1;
                            (EMPTY_CHILD, true)
                        }
                        Some((value, _)) if value == self.leaves[i].value => (node, false),
                        Some((value, hash)) => {
                            self.leaves[i].value = value;
                            ((node.0, hash), true)
                        }
                    };
                }
                // Other keys land in this leaf's subtree: push the leaf one level down (a one-leaf
                // subtree hashes the same at any height) and split the batch around it.
                if bit(&self.leaves[i].key, depth) {
                    (EMPTY_CHILD, node)
                } else {
                    (node, EMPTY_CHILD)
                }
            }
            Node::Internal(i) => {
                let n = &self.internals[i];
                ((n.left, n.left_hash), (n.right, n.right_hash))
            }
        };
        // Two or more distinct keys, or a leaf and a different key, share the first `depth` bits
        // here, so they differ at some bit at or after `depth`: `depth < KEY_BITS`.
        let mid = batch.partition_point(|u| !bit(&u.key, depth));
        let (left_batch, right_batch) = batch.split_at(mid);
        let (new_left, left_changed) = self.update(left, depth + 1, left_batch);
        let (new_right, right_changed) = self.update(right, depth + 1, right_batch);
        if !left_changed && !right_changed {
            return (node, false);
        }
        let existing = match node.0.node() {
            Node::Internal(i) => Some(i),
            Node::Empty | Node::Leaf(_) => None,
        };
        (self.join(existing, new_left, new_right), true)
    }

    /// The canonical node over two (new) children: empty if both are, the single leaf if the other
    /// side is empty (never an internal node over one leaf), otherwise an internal node, reusing the
    /// `existing` slot when there is one.
    fn join(&mut self, existing: Option<usize>, left: Child, right: Child) -> Child {
        let collapsed = match (left.0.node(), right.0.node()) {
            (Node::Empty, Node::Empty) => Some(EMPTY_CHILD),
            (Node::Leaf(_), Node::Empty) => Some(left),
            (Node::Empty, Node::Leaf(_)) => Some(right),
            _ => None,
        };
        if let Some(child) = collapsed {
            if let Some(i) = existing {
                self.free_internals.push(i as u32);
            }
            return child;
        }
        let hash = internal_hash(&left.1, &right.1);
        let node = Internal {
            left: left.0,
            right: right.0,
            left_hash: left.1,
            right_hash: right.1,
        };
        let id = match existing {
            Some(i) => {
                self.internals[i] = node;
                NodeId::internal(i as u32)
            }
            None => self.alloc_internal(node),
        };
        (id, hash)
    }

    fn alloc_leaf(&mut self, leaf: Leaf) -> NodeId {
        if let Some(i) = self.free_leaves.pop() {
            self.leaves[i as usize] = leaf;
            return NodeId::leaf(i);
        }
        let i = arena_index(self.leaves.len());
        self.leaves.push(leaf);
        NodeId::leaf(i)
    }

    fn alloc_internal(&mut self, node: Internal) -> NodeId {
        if let Some(i) = self.free_internals.pop() {
            self.internals[i as usize] = node;
            return NodeId::internal(i);
        }
        let i = arena_index(self.internals.len());
        self.internals.push(node);
        NodeId::internal(i)
    }
}

/// The arena index for a new node at position `len`.
fn arena_index(len: usize) -> u32 {
    match u32::try_from(len) {
        Ok(i) if i <= MAX_INDEX => i,
        // A capacity limit of the process, not reachable from input: 2^31 leaves are ~140 GB.
        _ => panic!("sparse Merkle tree arena is full ({len} nodes)"),
    }
}

/// Sorts a batch by key, keeps the last update of each key and computes the new leaf hashes.
fn prepare_batch(mut raw: Vec<(Hash, Option<Hash>)>) -> Vec<Update> {
    // Stable sort: equal keys keep their order, so the last one of each run is the last one given.
    raw.sort_by_key(|u| u.0);
    let mut last: Vec<(Hash, Option<Hash>)> = Vec::with_capacity(raw.len());
    for update in raw {
        match last.last_mut() {
            Some(prev) if prev.0 == update.0 => *prev = update,
            _ => last.push(update),
        }
    }
    let with_hash = |(key, value): (Hash, Option<Hash>)| Update {
        key,
        new: value.map(|v| (v, leaf_hash(&key, &v))),
    };
    if last.len() >= PARALLEL_MIN_BATCH {
        last.into_par_iter().map(with_hash).collect()
    } else {
        last.into_iter().map(with_hash).collect()
    }
}

/// The leaf where the search for a key ended.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProofLeaf {
    pub key: Hash,
    pub value_hash: Hash,
}

/// A membership or non-membership proof for one key.
///
/// The search for the key walks from the root down, taking the side given by each key bit, until it
/// meets a leaf or an empty subtree at depth `siblings.len()`. `siblings[i]` is the hash of the
/// subtree next to the path at depth `i + 1` (so `siblings[0]` is a child of the root), `Hash::ZERO`
/// when that subtree is empty. `leaf` is the leaf met, or `None` for an empty subtree. The proof shows
/// membership when `leaf` holds the key itself, non-membership when it is `None` or holds a different
/// key (which then shares the path's prefix: the key would have had to be in that one-leaf subtree).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub leaf: Option<ProofLeaf>,
    pub siblings: Vec<Hash>,
}

/// Why a proof does not prove what was claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof has {got} siblings, at most {max} are possible")]
    TooManySiblings { got: usize, max: usize },
    #[error(
        "proof ends at a leaf for key {leaf_key} that is not on the path of key {key} at depth {depth}"
    )]
    LeafNotOnPath {
        key: Hash,
        leaf_key: Hash,
        depth: usize,
    },
    #[error("claimed value {claimed:?} for the key, but the proof shows {proven:?}")]
    ValueMismatch {
        claimed: Option<Hash>,
        proven: Option<Hash>,
    },
    #[error("proof computes root {computed}, expected {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
}

/// Checks that under `root`, `key` maps to `value` (`Some`) or is absent (`None`), as `proof` claims.
///
/// Pure and total: any proof, however malformed, yields `Ok` or an error, never a panic.
pub fn verify(
    root: &Hash,
    key: &Hash,
    value: Option<&Hash>,
    proof: &Proof,
) -> Result<(), ProofError> {
    let depth = proof.siblings.len();
    if depth > KEY_BITS {
        return Err(ProofError::TooManySiblings {
            got: depth,
            max: KEY_BITS,
        });
    }
    let (proven, mut hash) = match &proof.leaf {
        None => (None, Hash::ZERO),
        Some(leaf) => {
            if !shares_prefix(&leaf.key, key, depth) {
                return Err(ProofError::LeafNotOnPath {
                    key: *key,
                    leaf_key: leaf.key,
                    depth,
                });
            }
            let proven = (leaf.key == *key).then_some(leaf.value_hash);
            (proven, leaf_hash(&leaf.key, &leaf.value_hash))
        }
    };
    if proven.as_ref() != value {
        return Err(ProofError::ValueMismatch {
            claimed: value.copied(),
            proven,
        });
    }
    for (d, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, d) {
            internal_hash(sibling, &hash)
        } else {
            internal_hash(&hash, sibling)
        };
    }
    if hash != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed: hash,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn h(n: u64) -> Hash {
        Hash::digest(&n.to_le_bytes())
    }

    /// The hashing rule of the module documentation, computed from scratch over a sorted map: the
    /// reference the arena tree must agree with.
    fn reference_root(entries: &[(Hash, Hash)], depth: usize) -> Hash {
        match entries {
            [] => Hash::ZERO,
            [(k, v)] => leaf_hash(k, v),
            _ => {
                let mid = entries.partition_point(|(k, _)| !bit(k, depth));
                let (l, r) = entries.split_at(mid);
                internal_hash(&reference_root(l, depth + 1), &reference_root(r, depth + 1))
            }
        }
    }

    fn reference(map: &BTreeMap<Hash, Hash>) -> Hash {
        let entries: Vec<(Hash, Hash)> = map.iter().map(|(k, v)| (*k, *v)).collect();
        reference_root(&entries, 0)
    }

    /// Keys built from a single byte at each end: they share 240 or more bits, so trees of them are
    /// ~256 deep and proofs carry up to the maximum of 256 siblings.
    fn close_key(first: u8, last: u8) -> Hash {
        let mut k = [0u8; 32];
        k[0] = first;
        k[31] = last;
        Hash(k)
    }

    fn key_strategy() -> impl Strategy<Value = Hash> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(Hash),
            // First bytes in the same shard, in neighbouring shards and across the root's halves.
            (
                prop::sample::select(vec![0x00u8, 0x01, 0x10, 0x70, 0x80, 0xff]),
                0u8..8
            )
                .prop_map(|(a, b)| close_key(a, b)),
        ]
    }

    fn map_strategy(max: usize) -> impl Strategy<Value = BTreeMap<Hash, Hash>> {
        proptest::collection::btree_map(key_strategy(), any::<[u8; 32]>().prop_map(Hash), 0..max)
    }

    fn tree_of(map: &BTreeMap<Hash, Hash>) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new();
        t.apply(map.iter().map(|(k, v)| (*k, Some(*v))));
        t
    }

    #[test]
    fn empty_tree_root_is_zero_and_proves_absence() {
        let t = SparseMerkleTree::new();
        assert_eq!(t.root(), Hash::ZERO);
        assert_eq!(t.len(), 0);
        assert_eq!(t.get(&h(1)), None);
        let proof = t.prove(&h(1));
        assert_eq!(
            proof,
            Proof {
                leaf: None,
                siblings: vec![]
            }
        );
        assert_eq!(verify(&Hash::ZERO, &h(1), None, &proof), Ok(()));
    }

    #[test]
    fn single_entry_root_is_its_leaf_hash() {
        let mut t = SparseMerkleTree::new();
        t.apply([(h(1), Some(h(2)))]);
        assert_eq!(t.root(), leaf_hash(&h(1), &h(2)));
        assert_eq!(
            leaf_hash(&h(1), &h(2)),
            Hash::digest(&[&[0u8][..], &h(1).0, &h(2).0].concat())
        );
    }

    #[test]
    fn two_keys_that_differ_in_the_first_bit_hash_as_one_internal_node() {
        let (a, b) = (close_key(0x00, 0), close_key(0x80, 0));
        let mut t = SparseMerkleTree::new();
        t.apply([(b, Some(h(2))), (a, Some(h(1)))]);
        let expected =
            Hash::digest(&[&[1u8][..], &leaf_hash(&a, &h(1)).0, &leaf_hash(&b, &h(2)).0].concat());
        assert_eq!(t.root(), expected);
    }

    #[test]
    fn keys_differing_only_in_the_last_bit_give_256_sibling_proofs() {
        let (a, b) = (close_key(0, 0), close_key(0, 1));
        let mut t = SparseMerkleTree::new();
        t.apply([(a, Some(h(1))), (b, Some(h(2)))]);
        let proof = t.prove(&a);
        assert_eq!(proof.siblings.len(), KEY_BITS);
        assert_eq!(verify(&t.root(), &a, Some(&h(1)), &proof), Ok(()));
        assert_eq!(t.root(), reference(&BTreeMap::from([(a, h(1)), (b, h(2))])));
    }

    #[test]
    fn insert_update_delete_round_trip() {
        let mut t = SparseMerkleTree::new();
        t.apply([(h(1), Some(h(10))), (h(2), Some(h(20)))]);
        let two = t.root();
        assert_eq!(
            (t.len(), t.get(&h(1)), t.get(&h(2)), t.get(&h(3))),
            (2, Some(h(10)), Some(h(20)), None)
        );

        t.apply([(h(1), Some(h(11)))]);
        assert_eq!((t.len(), t.get(&h(1))), (2, Some(h(11))));
        assert_ne!(t.root(), two);

        t.apply([(h(1), Some(h(10)))]);
        assert_eq!(t.root(), two, "restoring a value restores the root");

        t.apply([(h(3), None)]);
        assert_eq!(
            (t.len(), t.root()),
            (2, two),
            "deleting an absent key changes nothing"
        );

        t.apply([(h(1), None)]);
        assert_eq!((t.len(), t.get(&h(1))), (1, None));
        assert_eq!(
            t.root(),
            leaf_hash(&h(2), &h(20)),
            "a lone leaf collapses to the root"
        );

        t.apply([(h(2), None)]);
        assert_eq!((t.len(), t.root()), (0, Hash::ZERO));
    }

    #[test]
    fn last_update_of_a_key_in_a_batch_wins() {
        let mut t = SparseMerkleTree::new();
        t.apply([
            (h(1), Some(h(10))),
            (h(1), None),
            (h(2), None),
            (h(2), Some(h(20))),
            (h(1), Some(h(11))),
        ]);
        assert_eq!(
            (t.len(), t.get(&h(1)), t.get(&h(2))),
            (2, Some(h(11)), Some(h(20)))
        );
    }

    #[test]
    fn root_is_independent_of_order_and_batching() {
        let entries: Vec<(Hash, Hash)> = (0..500).map(|i| (h(i), h(i + 1000))).collect();
        let mut all_at_once = SparseMerkleTree::new();
        all_at_once.apply(entries.iter().map(|(k, v)| (*k, Some(*v))));

        let mut one_by_one_reversed = SparseMerkleTree::new();
        for (k, v) in entries.iter().rev() {
            one_by_one_reversed.apply([(*k, Some(*v))]);
        }
        assert_eq!(all_at_once.root(), one_by_one_reversed.root());
        let map: BTreeMap<Hash, Hash> = entries.iter().copied().collect();
        assert_eq!(all_at_once.root(), reference(&map));

        // Delete every other key in one batch vs. one by one, then everything.
        let mut batched = all_at_once.clone();
        batched.apply(entries.iter().step_by(2).map(|(k, _)| (*k, None)));
        for (k, _) in entries.iter().step_by(2) {
            one_by_one_reversed.apply([(*k, None)]);
        }
        assert_eq!(batched.root(), one_by_one_reversed.root());
        assert_eq!(batched.len(), 250);

        batched.apply(entries.iter().map(|(k, _)| (*k, None)));
        assert_eq!((batched.len(), batched.root()), (0, Hash::ZERO));
    }

    #[test]
    fn large_mixed_batches_match_the_reference() {
        // Batches above PARALLEL_MIN_BATCH take the rayon path.
        let mut t = SparseMerkleTree::new();
        let mut expected = BTreeMap::new();
        for round in 0..4u64 {
            let batch: Vec<(Hash, Option<Hash>)> = (0..1500u64)
                .map(|i| {
                    let k = h(i * 3 + round);
                    let v = (i % 4 != round).then(|| h(i ^ round));
                    (k, v)
                })
                .collect();
            for (k, v) in &batch {
                match v {
                    Some(v) => expected.insert(*k, *v),
                    None => expected.remove(k),
                };
            }
            t.apply(batch);
            assert_eq!((t.root(), t.len()), (reference(&expected), expected.len()));
        }
        let root = t.root();
        for k in (0..200).map(h) {
            let proof = t.prove(&k);
            assert_eq!(verify(&root, &k, expected.get(&k), &proof), Ok(()));
        }
    }

    #[test]
    fn arena_slots_are_reused_after_deletes() {
        let mut t = SparseMerkleTree::new();
        t.apply((0..1000).map(|i| (h(i), Some(h(i)))));
        let arenas = |t: &SparseMerkleTree| -> (usize, usize) {
            let leaves = t.shards.iter().map(|s| s.leaves.len()).sum();
            (leaves, t.shards.iter().map(|s| s.internals.len()).sum())
        };
        let (leaves, internals) = arenas(&t);
        for round in 0..5 {
            t.apply((0..1000).map(|i| (h(i + round), None)));
            assert_eq!(t.root(), Hash::ZERO);
            t.apply((0..1000).map(|i| (h(i + round + 1), Some(h(i)))));
        }
        let (leaves_after, internals_after) = arenas(&t);
        assert!(leaves_after <= leaves + 16 && internals_after <= internals + 64);
    }

    #[test]
    fn malformed_proofs_are_errors_not_panics() {
        let mut t = SparseMerkleTree::new();
        t.apply((0..100).map(|i| (h(i), Some(h(i)))));
        let root = t.root();
        let long = Proof {
            leaf: None,
            siblings: vec![Hash::ZERO; 300],
        };
        assert_eq!(
            verify(&root, &h(1), None, &long),
            Err(ProofError::TooManySiblings {
                got: 300,
                max: KEY_BITS
            })
        );
        let max = Proof {
            leaf: Some(ProofLeaf {
                key: h(1),
                value_hash: h(1),
            }),
            siblings: vec![h(7); 256],
        };
        assert!(matches!(
            verify(&root, &h(1), Some(&h(1)), &max),
            Err(ProofError::RootMismatch { .. })
        ));
        let off_path = Proof {
            leaf: Some(ProofLeaf {
                key: close_key(0x80, 0),
                value_hash: h(1),
            }),
            siblings: vec![h(7)],
        };
        assert!(matches!(
            verify(&root, &close_key(0, 0), None, &off_path),
            Err(ProofError::LeafNotOnPath { depth: 1, .. })
        ));
    }

    #[test]
    fn proofs_round_trip_through_borsh_and_json() {
        let mut t = SparseMerkleTree::new();
        t.apply((0..50).map(|i| (h(i), Some(h(i)))));
        for key in [h(3), h(77)] {
            let proof = t.prove(&key);
            let bytes = borsh::to_vec(&proof).expect("encode");
            assert_eq!(Proof::try_from_slice(&bytes).expect("decode"), proof);
            let json = serde_json::to_string(&proof).expect("encode");
            assert_eq!(serde_json::from_str::<Proof>(&json).expect("decode"), proof);
        }
    }

    /// Claims that `proof` must not prove under `root`, derived from one that does prove `key -> value`.
    fn assert_tampered_proofs_fail(
        root: &Hash,
        key: &Hash,
        value: Option<&Hash>,
        proof: &Proof,
        byte: usize,
    ) {
        // Flip one byte of each sibling in turn.
        for i in 0..proof.siblings.len() {
            let mut bad = proof.clone();
            bad.siblings[i].0[byte % 32] ^= 0x01;
            assert!(
                verify(root, key, value, &bad).is_err(),
                "flipped sibling {i}"
            );
        }
        // Truncate and extend the siblings.
        if !proof.siblings.is_empty() {
            let mut bad = proof.clone();
            bad.siblings.pop();
            assert!(verify(root, key, value, &bad).is_err(), "truncated");
            let mut bad = proof.clone();
            bad.siblings.remove(0);
            assert!(
                verify(root, key, value, &bad).is_err(),
                "dropped the top sibling"
            );
        }
        for extra in [Hash::ZERO, *root] {
            let mut bad = proof.clone();
            bad.siblings.push(extra);
            assert!(
                verify(root, key, value, &bad).is_err(),
                "extended with {extra}"
            );
            let mut bad = proof.clone();
            bad.siblings.insert(0, extra);
            assert!(
                verify(root, key, value, &bad).is_err(),
                "prefixed with {extra}"
            );
        }
        // Claim a different value (or presence for an absent key).
        let mut other = value.copied().unwrap_or(Hash::ZERO);
        other.0[byte % 32] ^= 0x80;
        assert!(
            verify(root, key, Some(&other), proof).is_err(),
            "other value"
        );
        // Claim absence for a present key.
        if value.is_some() {
            assert!(
                verify(root, key, None, proof).is_err(),
                "absence of a present key"
            );
        }
        // Tamper with the leaf the proof carries.
        if let Some(leaf) = &proof.leaf {
            let mut bad = proof.clone();
            bad.leaf = Some(ProofLeaf {
                key: leaf.key,
                value_hash: other,
            });
            assert!(
                verify(root, key, value, &bad).is_err(),
                "leaf value changed"
            );
            let mut bad = proof.clone();
            bad.leaf = None;
            assert!(verify(root, key, None, &bad).is_err(), "leaf dropped");
        } else {
            let mut bad = proof.clone();
            bad.leaf = Some(ProofLeaf {
                key: *key,
                value_hash: other,
            });
            assert!(
                verify(root, key, Some(&other), &bad).is_err(),
                "leaf invented"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(700))]

        #[test]
        fn root_matches_reference_after_random_batches(
            initial in map_strategy(64),
            updates in proptest::collection::vec(
                (key_strategy(), proptest::option::of(any::<[u8; 32]>().prop_map(Hash))), 0..64),
            split in 0usize..64,
        ) {
            let mut tree = tree_of(&initial);
            prop_assert_eq!(tree.root(), reference(&initial));
            prop_assert_eq!(tree.len(), initial.len());

            let mut expected = initial.clone();
            for (k, v) in &updates {
                match v {
                    Some(v) => expected.insert(*k, *v),
                    None => expected.remove(k),
                };
            }
            // Apply in two batches, split at a random point: batching must not matter.
            let split = split.min(updates.len());
            tree.apply(updates[..split].iter().copied());
            tree.apply(updates[split..].iter().copied());
            prop_assert_eq!(tree.root(), reference(&expected));
            prop_assert_eq!(tree.len(), expected.len());
            for (k, v) in &expected {
                prop_assert_eq!(tree.get(k), Some(*v));
            }
            for (k, _) in &updates {
                prop_assert_eq!(tree.get(k), expected.get(k).copied());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(700))]

        #[test]
        fn proofs_of_present_and_absent_keys_verify(
            map in map_strategy(48),
            absent in proptest::collection::vec(key_strategy(), 1..16),
        ) {
            let tree = tree_of(&map);
            let root = tree.root();
            for (k, v) in &map {
                let proof = tree.prove(k);
                prop_assert_eq!(verify(&root, k, Some(v), &proof), Ok(()));
            }
            for k in absent.iter().filter(|k| !map.contains_key(k)) {
                let proof = tree.prove(k);
                prop_assert_eq!(verify(&root, k, None, &proof), Ok(()));
                // A key absent from the tree has no membership proof, whatever value is claimed.
                prop_assert!(verify(&root, k, Some(&Hash::ZERO), &proof).is_err());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        #[test]
        fn tampered_proofs_fail(
            map in map_strategy(32),
            probe in key_strategy(),
            other_key in key_strategy(),
            byte in 0usize..32,
        ) {
            let tree = tree_of(&map);
            let root = tree.root();
            let value = map.get(&probe);
            let proof = tree.prove(&probe);
            prop_assert_eq!(verify(&root, &probe, value, &proof), Ok(()));
            assert_tampered_proofs_fail(&root, &probe, value, &proof, byte);

            // The proof for one key says nothing about a different key's value: claiming the probe's
            // value (or, for a present other key, its absence) under another key fails.
            if other_key != probe {
                if value.is_some() {
                    prop_assert!(verify(&root, &other_key, value, &proof).is_err());
                }
                if map.contains_key(&other_key) {
                    prop_assert!(verify(&root, &other_key, None, &proof).is_err());
                }
            }
            // A present key of the map cannot be proven absent with any other key's proof.
            if let Some((present, _)) = map.iter().next() {
                let proof = tree.prove(&other_key);
                prop_assert!(verify(&root, present, None, &proof).is_err());
            }
            // The wrong root fails.
            let mut wrong_root = root;
            wrong_root.0[byte] ^= 0x01;
            prop_assert!(verify(&wrong_root, &probe, value, &proof).is_err());
        }

        #[test]
        fn garbage_proofs_never_panic(
            root in any::<[u8; 32]>().prop_map(Hash),
            key in key_strategy(),
            value in proptest::option::of(any::<[u8; 32]>().prop_map(Hash)),
            leaf in proptest::option::of((key_strategy(), any::<[u8; 32]>().prop_map(Hash))),
            siblings in proptest::collection::vec(any::<[u8; 32]>().prop_map(Hash), 0..300),
        ) {
            let proof = Proof {
                leaf: leaf.map(|(key, value_hash)| ProofLeaf { key, value_hash }),
                siblings,
            };
            prop_assert!(verify(&root, &key, value.as_ref(), &proof).is_err());
        }
    }
}
