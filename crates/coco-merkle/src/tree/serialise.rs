//! merklecpp's byte format, stored in `public:ccf.internal.tree` by every signature
//! transaction and read back by `ccf.merkletree.MerkleTree.deserialise`.
//!
//! | bytes | field |
//! |---|---|
//! | 8 | `num_leaves`: u64 BE, leaves *retained* in this serialisation |
//! | 8 | `num_flushed`: u64 BE, leaves before them (the first retained leaf's index) |
//! | 32 × `num_leaves` | the retained leaf digests, in index order |
//! | 32 × popcount(`num_flushed`) | roots of the flushed subtrees, one per set bit of `num_flushed`, **smallest first** |
//!
//! The flushed subtree for bit `h` of `num_flushed` is the complete node of height `h` just
//! left of leaf `num_flushed`'s path (merklecpp walks the left edge top-down and writes the
//! list reversed; `ccf.merkletree` reads bit 0 first). The tree so described has
//! `num_flushed + num_leaves` leaves.
#![warn(clippy::indexing_slicing)]

use coco_types::Digest;

use super::{MerkleTree, level_count, level_first, to_usize};
use crate::LEAVES_MAX;
use crate::digests::interior_digest;
use crate::error::{Error, Result};

const HEADER_BYTES: u64 = 16;
const DIGEST_BYTES: u64 = 32;

impl MerkleTree {
    /// The whole tree in merklecpp's format (see the module table), `num_flushed` =
    /// [`Self::flushed`].
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    #[must_use]
    pub fn serialise(&self) -> Vec<u8> {
        self.serialise_prefix(self.len)
            .expect("a tree keeps at least one unflushed leaf unless it is empty")
    }

    /// The prefix of the first `size` leaves in merklecpp's format: what CCF's signature at
    /// seqno `N` writes to `public:ccf.internal.tree` with `size = N` (merklecpp
    /// `serialise(begin_index, N - 1)`).
    ///
    /// # Errors
    /// [`Error::SizeBeyondEnd`] past [`Self::len`]; [`Error::Flushed`] unless the prefix keeps
    /// an unflushed leaf (a tree that never flushed may serialise the empty prefix).
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn serialise_prefix(&self, size: u64) -> Result<Vec<u8>> {
        self.serialise_prefix_flushed(self.flushed, size)
    }

    /// Like [`Self::serialise_prefix`], but written as if the tree had been flushed to
    /// `flushed` (≥ the tree's own flush point): leaves `flushed..size` and the roots of the
    /// flushed subtrees. The node uses it to keep each signature's serialised tree small
    /// (flushed to the previous signature) while it keeps every leaf for receipts.
    ///
    /// # Errors
    /// As [`Self::serialise_prefix`]; [`Error::Flushed`] if `flushed` is below the tree's
    /// own flush point or does not keep a leaf before `size`.
    ///
    /// # Panics
    /// Only if the tree's invariants are broken (a bug in this module).
    pub fn serialise_prefix_flushed(&self, flushed: u64, size: u64) -> Result<Vec<u8>> {
        if size > self.len {
            return Err(Error::SizeBeyondEnd { size, len: self.len });
        }
        let keeps_a_leaf = flushed == 0 || size > flushed;
        if flushed < self.flushed || !keeps_a_leaf {
            return Err(Error::Flushed { operation: "serialise", value: size, flushed });
        }
        let num_leaves = size - flushed;
        let hashes = num_leaves + u64::from(flushed.count_ones());
        let mut bytes = Vec::with_capacity(to_usize(HEADER_BYTES + DIGEST_BYTES * hashes));
        bytes.extend_from_slice(&num_leaves.to_be_bytes());
        bytes.extend_from_slice(&flushed.to_be_bytes());
        if let Some(leaves) = self.levels.first() {
            let first = level_first(self.flushed, 0);
            let retained = to_usize(flushed - first)..to_usize(size - first);
            for leaf in leaves.get(retained).expect("retained leaves are stored") {
                bytes.extend_from_slice(leaf.as_bytes());
            }
        }
        let mut bits = flushed;
        while bits != 0 {
            let height = to_usize(u64::from(bits.trailing_zeros()));
            bits &= bits - 1;
            let subtree = self.node(height, (flushed >> height) - 1);
            bytes.extend_from_slice(subtree.as_bytes());
        }
        assert_eq!(bytes.len() as u64, HEADER_BYTES + DIGEST_BYTES * hashes, "size as announced");
        Ok(bytes)
    }

    /// Parses merklecpp's format, rebuilding the interior nodes: O(retained leaves).
    /// Accepts exactly what `ccf.merkletree` accepts, except that trailing bytes after the
    /// last hash are an error here (a stored value is one tree).
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::TrailingBytes`], [`Error::NoRetainedLeaves`] or
    /// [`Error::TooManyLeaves`].
    ///
    /// # Panics
    /// Never on any input; only if the length arithmetic here were wrong (a bug).
    pub fn deserialise(bytes: &[u8]) -> Result<Self> {
        let got = bytes.len() as u64;
        let (Some(num_leaves), Some(num_flushed)) = (read_u64_be(bytes, 0), read_u64_be(bytes, 8))
        else {
            return Err(Error::Truncated { needed: HEADER_BYTES, got });
        };
        if num_leaves == 0 && num_flushed != 0 {
            return Err(Error::NoRetainedLeaves { num_flushed });
        }
        let len = match num_flushed.checked_add(num_leaves) {
            Some(len) if len <= LEAVES_MAX => len,
            Some(_) | None => return Err(Error::TooManyLeaves { num_leaves, num_flushed }),
        };
        // len ≤ 2^62, so these products cannot overflow.
        let leaf_end = HEADER_BYTES + DIGEST_BYTES * num_leaves;
        let expected = leaf_end + DIGEST_BYTES * u64::from(num_flushed.count_ones());
        if got < expected {
            return Err(Error::Truncated { needed: expected, got });
        }
        if got > expected {
            return Err(Error::TrailingBytes { expected, got });
        }
        let (leaf_bytes, subtree_bytes) = bytes
            .get(to_usize(HEADER_BYTES)..)
            .and_then(|body| body.split_at_checked(to_usize(leaf_end - HEADER_BYTES)))
            .expect("the length check above covers the header and the leaves");
        let tree = Self::rebuild(len, num_flushed, leaf_bytes, subtree_bytes);
        tree.check_invariants();
        Ok(tree)
    }

    /// Builds the levels of a tree of `len` leaves of which `flushed` are gone, from the
    /// retained leaves and the flushed subtree roots (both already length-checked).
    fn rebuild(len: u64, flushed: u64, leaf_bytes: &[u8], subtree_bytes: &[u8]) -> Self {
        let mut subtrees = subtree_bytes.chunks_exact(32).map(digest_from_chunk);
        let mut levels: Vec<Vec<Digest>> = Vec::with_capacity(level_count(len));
        for height in 0..level_count(len) {
            let first = level_first(flushed, height);
            let mut nodes = Vec::with_capacity(to_usize((len >> height) - first));
            if (flushed >> height) & 1 == 1 {
                nodes.push(subtrees.next().expect("one subtree root per set bit, length-checked"));
            }
            match levels.last() {
                None => nodes.extend(leaf_bytes.chunks_exact(32).map(digest_from_chunk)),
                Some(below) => {
                    let below_first = level_first(flushed, height - 1);
                    // Children of node j are 2j and 2j+1, both stored from `flushed >> height`.
                    let children = below.get(to_usize(2 * (flushed >> height) - below_first)..);
                    let children = children.expect("children of unflushed nodes are stored");
                    nodes.extend(children.chunks_exact(2).map(|pair| match pair {
                        [left, right] => interior_digest(left, right),
                        _ => unreachable!("chunks_exact(2) yields pairs"),
                    }));
                }
            }
            levels.push(nodes);
        }
        assert!(subtrees.next().is_none(), "every flushed subtree root was placed");
        Self { levels, len, flushed }
    }
}

fn read_u64_be(bytes: &[u8], offset: usize) -> Option<u64> {
    let field: [u8; 8] = bytes.get(offset..offset + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(field))
}

fn digest_from_chunk(chunk: &[u8]) -> Digest {
    Digest::from_slice(chunk).expect("chunks_exact(32) yields 32-byte chunks")
}
