//! The append-only tree: complete nodes stored per level, right edge computed on demand.

mod serialise;
#[cfg(test)]
mod tests;

use coco_types::Digest;

use crate::digests::interior_digest;
use crate::error::{Error, Result};
use crate::proof::{Proof, ProofStep};

/// The most leaves a tree may hold. Seqnos are CCF `int64`s and never get near; the bound
/// lets decoding reject garbage counts and keeps every shift and `+ 1` below overflow.
pub const LEAVES_MAX: u64 = 1 << 62;

const _: () = assert!(LEAVES_MAX.leading_zeros() > 0, "len + 1 must not overflow u64");

/// An append-only SHA-256 Merkle tree in CCF's (merklecpp's) shape; leaf index = seqno.
///
/// Storage: `levels[h]` holds the digests of the *complete* nodes of height `h`, i.e. of the
/// power-of-two-aligned ranges `[j·2ʰ, (j+1)·2ʰ)` that are fully appended. Such a node never
/// changes again, so `append` only pushes (one hash amortised) and the root or a proof of any
/// prefix needs at most one node per level plus the partial right edge, which is folded on
/// demand: O(log n) hashes.
///
/// After [`Self::flush_to`]`(f)`, level `h` keeps nodes from index `(f >> h) & !1` on: the
/// nodes that still overlap leaves `≥ f`, plus, where bit `h` of `f` is set, the complete
/// left neighbour that merklecpp serialises as a "flushed subtree root".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// Complete nodes per height, from [`level_first`] on; `levels.len()` is the bit length
    /// of `len`, so the top level holds the largest complete subtree.
    levels: Vec<Vec<Digest>>,
    /// Leaves appended, flushed ones included: the next leaf's index.
    len: u64,
    /// Leaves below this index were dropped by [`Self::flush_to`].
    flushed: u64,
}

/// Absolute index of the first node level `height` stores once `flushed` leaves are gone.
const fn level_first(flushed: u64, height: usize) -> u64 {
    (flushed >> height) & !1
}

/// Number of levels a tree of `len` leaves has (the bit length of `len`).
fn level_count(len: u64) -> usize {
    to_usize(u64::from(u64::BITS - len.leading_zeros()))
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).expect("node counts are bounded by memory, so they fit in usize")
}

/// Bits of `size` strictly below `height`.
const fn bits_below(size: u64, height: usize) -> u64 {
    if height >= 64 { size } else { size & ((1 << height) - 1) }
}

impl MerkleTree {
    /// An empty tree. The node appends leaf 0 = [`Digest::ZERO`] itself at genesis, as CCF
    /// does, so that leaf indices equal seqnos.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves appended so far, flushed ones included: the index the next leaf gets.
    #[must_use]
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// True before the first append.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leaves below this index were dropped by [`Self::flush_to`]; roots of prefixes at least
    /// this long and proofs of leaves from here on are still available.
    #[must_use]
    pub const fn flushed(&self) -> u64 {
        self.flushed
    }

    /// The digest of leaf `index`, if it was appended and not flushed.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Digest> {
        if index < self.flushed || index >= self.len {
            return None;
        }
        Some(self.node(0, index))
    }

    /// Appends the next leaf (its index is the old [`Self::len`]). Amortised O(1): one
    /// interior hash per append on average, no allocation beyond the levels' doubling.
    ///
    /// # Panics
    /// If the tree already holds [`LEAVES_MAX`] leaves.
    pub fn append(&mut self, leaf: Digest) {
        assert!(self.len < LEAVES_MAX, "tree is full at {} leaves", self.len);
        let mut index = self.len;
        let mut node = leaf;
        let mut height = 0;
        loop {
            if height == self.levels.len() {
                self.levels.push(Vec::new());
            }
            self.levels[height].push(node);
            // An odd index completes its pair: the parent becomes a complete node too.
            if index & 1 == 0 {
                break;
            }
            node = interior_digest(&self.node(height, index - 1), &node);
            index >>= 1;
            height += 1;
        }
        self.len += 1;
        assert_eq!(self.levels.len(), level_count(self.len), "levels follow the bit length");
    }

    /// The root over all leaves.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty tree.
    pub fn root(&self) -> Result<Digest> {
        self.root_at(self.len)
    }

    /// The root of the prefix of the first `size` leaves, `0..size`: the signature at seqno
    /// `N` signs `root_at(N)`. O(log n).
    ///
    /// # Errors
    /// [`Error::Empty`] for `size == 0`, [`Error::SizeBeyondEnd`] past [`Self::len`],
    /// [`Error::Flushed`] below [`Self::flushed`].
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn root_at(&self, size: u64) -> Result<Digest> {
        self.check_prefix("root", size)?;
        Ok(self.fold_right_edge(size, 64).expect("a prefix of at least one leaf has a root"))
    }

    /// The path from leaf `index` to [`Self::root_at`]`(size)`. O(log n).
    ///
    /// # Errors
    /// As [`Self::root_at`] for `size`; [`Error::IndexNotBelowSize`] unless `index < size`;
    /// [`Error::Flushed`] for a flushed leaf.
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn proof(&self, index: u64, size: u64) -> Result<Proof> {
        self.check_prefix("proof", size)?;
        if index >= size {
            return Err(Error::IndexNotBelowSize { index, size });
        }
        if index < self.flushed {
            return Err(Error::Flushed { operation: "proof", value: index, flushed: self.flushed });
        }
        let mut steps = Vec::with_capacity(level_count(size));
        let mut position = index;
        let mut height = 0;
        // Nodes on this level of the prefix tree, the partial right-edge node included.
        let mut count = size;
        while count > 1 {
            let complete = size >> height;
            if position & 1 == 1 {
                steps.push(ProofStep::Left(self.node(height, position - 1)));
            } else if position + 1 < complete {
                steps.push(ProofStep::Right(self.node(height, position + 1)));
            } else if position + 1 < count {
                let partial = self.fold_right_edge(size, height);
                steps.push(ProofStep::Right(partial.expect("a partial node covers some leaves")));
            } else {
                // The last node of an odd level is promoted unchanged: no step.
            }
            position >>= 1;
            height += 1;
            count = count.div_ceil(2);
        }
        Ok(Proof(steps))
    }

    /// Drops leaves `size..` (rollback of an uncommitted suffix). Truncating to the current
    /// length is a no-op. O(log n).
    ///
    /// # Errors
    /// [`Error::SizeBeyondEnd`] past [`Self::len`]; [`Error::Flushed`] unless at least one
    /// unflushed leaf stays (or the tree never flushed). The tree is unchanged on error.
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        if size > self.len {
            return Err(Error::SizeBeyondEnd { size, len: self.len });
        }
        if self.flushed > 0 && size <= self.flushed {
            return Err(Error::Flushed {
                operation: "truncate",
                value: size,
                flushed: self.flushed,
            });
        }
        for (height, nodes) in self.levels.iter_mut().enumerate() {
            nodes.truncate(to_usize((size >> height) - level_first(self.flushed, height)));
        }
        self.levels.truncate(level_count(size));
        self.len = size;
        assert_eq!(self.levels.len(), level_count(self.len), "levels follow the bit length");
        Ok(())
    }

    /// Forgets leaves below `flushed` (committed history nobody will ask proofs of), keeping
    /// what roots of prefixes `≥ flushed` and proofs of leaves `≥ flushed` need. Flushing to
    /// a point at or below the current one is a no-op, as in merklecpp. O(retained), a
    /// memmove of the retained nodes.
    ///
    /// # Errors
    /// [`Error::FlushBeyondLast`] unless `flushed < len`: the last leaf is always kept.
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn flush_to(&mut self, flushed: u64) -> Result<()> {
        if flushed <= self.flushed {
            return Ok(());
        }
        if flushed >= self.len {
            return Err(Error::FlushBeyondLast { flushed, len: self.len });
        }
        for (height, nodes) in self.levels.iter_mut().enumerate() {
            let dropped = level_first(flushed, height) - level_first(self.flushed, height);
            nodes.drain(..to_usize(dropped));
        }
        self.flushed = flushed;
        assert!(self.flushed < self.len, "flush keeps the last leaf");
        Ok(())
    }

    /// Checks the structural invariants in O(log n); tests call it after every mutation.
    ///
    /// # Panics
    /// If an invariant is broken (a bug in this module).
    pub fn check_invariants(&self) {
        assert!(self.len <= LEAVES_MAX, "len {} over the limit", self.len);
        if self.len == 0 {
            assert_eq!(self.flushed, 0, "an empty tree flushed nothing");
        } else {
            assert!(self.flushed < self.len, "flushed {} >= len {}", self.flushed, self.len);
        }
        assert_eq!(self.levels.len(), level_count(self.len), "levels follow the bit length");
        for (height, nodes) in self.levels.iter().enumerate() {
            let expected = (self.len >> height) - level_first(self.flushed, height);
            assert_eq!(nodes.len() as u64, expected, "node count at height {height}");
        }
    }

    /// [`Self::check_invariants`] plus every stored interior node recomputed from its
    /// children. O(n): for tests and the simulator, not the hot path.
    ///
    /// # Panics
    /// If an invariant is broken or a stored digest is wrong.
    pub fn check_invariants_full(&self) {
        self.check_invariants();
        for height in 1..self.levels.len() {
            // Nodes below `flushed >> height` are flushed-subtree roots with no children left.
            for index in (self.flushed >> height)..(self.len >> height) {
                let left = self.node(height - 1, 2 * index);
                let right = self.node(height - 1, 2 * index + 1);
                assert_eq!(
                    self.node(height, index),
                    interior_digest(&left, &right),
                    "node {index} at height {height}"
                );
            }
        }
    }

    /// The stored complete node `index` at `height`; callers only ask for retained ones.
    fn node(&self, height: usize, index: u64) -> Digest {
        let first = level_first(self.flushed, height);
        assert!(index >= first, "node {index} at height {height} was flushed");
        self.levels[height][to_usize(index - first)]
    }

    /// The node covering the leaves of the prefix `0..size` that are left over once the
    /// complete nodes of height `height` are taken, i.e. the partial right-edge node of that
    /// height (`height = 64` gives the whole prefix's root). In the promote-odd shape it is
    /// the complete subtrees for the set bits of `size` below `height`, combined right to
    /// left. `None` when no leaf is left over.
    fn fold_right_edge(&self, size: u64, height: usize) -> Option<Digest> {
        let mut bits = bits_below(size, height);
        let mut accumulator: Option<Digest> = None;
        while bits != 0 {
            let subtree_height = to_usize(u64::from(bits.trailing_zeros()));
            bits &= bits - 1;
            let subtree = self.node(subtree_height, (size >> subtree_height) - 1);
            accumulator = Some(match accumulator {
                None => subtree,
                Some(right) => interior_digest(&subtree, &right),
            });
        }
        accumulator
    }

    fn check_prefix(&self, operation: &'static str, size: u64) -> Result<()> {
        if size == 0 {
            return Err(Error::Empty);
        }
        if size > self.len {
            return Err(Error::SizeBeyondEnd { size, len: self.len });
        }
        if size < self.flushed {
            return Err(Error::Flushed { operation, value: size, flushed: self.flushed });
        }
        Ok(())
    }
}
