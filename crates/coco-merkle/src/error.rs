//! The one error type of `coco-merkle`.

/// Why a tree operation or a decode failed. Every variant carries the numbers needed to see
/// which bound was crossed; a failed operation leaves the tree unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A root or proof was asked of zero leaves; merklecpp has no root for an empty tree.
    #[error("a tree of 0 leaves has no root")]
    Empty,
    /// A size (prefix length or truncation point) beyond the leaves the tree holds.
    #[error("size {size} is beyond the tree's {len} leaves")]
    SizeBeyondEnd {
        /// The size asked for.
        size: u64,
        /// Leaves in the tree.
        len: u64,
    },
    /// A proof was asked for a leaf that is not inside the requested prefix.
    #[error("leaf {index} is not inside a prefix of {size} leaves")]
    IndexNotBelowSize {
        /// The leaf asked for.
        index: u64,
        /// The prefix size.
        size: u64,
    },
    /// The operation needs leaf hashes that [`crate::MerkleTree::flush_to`] already dropped.
    #[error("{operation} at {value} needs leaves below the {flushed} flushed ones")]
    Flushed {
        /// Which operation was refused (`"root"`, `"proof"`, `"truncate"`, ...).
        operation: &'static str,
        /// The index or size the caller passed.
        value: u64,
        /// Leaves flushed so far.
        flushed: u64,
    },
    /// [`crate::MerkleTree::flush_to`] must keep at least the last leaf, as merklecpp does:
    /// a tree with no retained leaf cannot be serialised in merklecpp's format.
    #[error("cannot flush to {flushed}: the tree has only {len} leaves and must keep one")]
    FlushBeyondLast {
        /// The flush point asked for.
        flushed: u64,
        /// Leaves in the tree.
        len: u64,
    },
    /// Serialised bytes end before the header or the hashes it announces.
    #[error("serialised tree is truncated: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes the header implies (or 16 for the header itself).
        needed: u64,
        /// Bytes given.
        got: u64,
    },
    /// Serialised bytes continue after the last announced hash.
    #[error("serialised tree has {got} bytes, expected exactly {expected}")]
    TrailingBytes {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// A serialised tree with flushed leaves but no retained leaf, which merklecpp and
    /// `ccf.merkletree` both reject: its root could not be rebuilt correctly.
    #[error("serialised tree flushes {num_flushed} leaves but retains none")]
    NoRetainedLeaves {
        /// The flushed count from the header.
        num_flushed: u64,
    },
    /// More leaves than [`crate::LEAVES_MAX`]; seqnos never get there, so the bytes are
    /// garbage.
    #[error("serialised tree claims {num_flushed} flushed + {num_leaves} leaves, over the limit")]
    TooManyLeaves {
        /// Retained leaves from the header.
        num_leaves: u64,
        /// Flushed leaves from the header.
        num_flushed: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
