//! The crate's error type.

use std::path::PathBuf;

/// What went wrong while encoding, decoding, writing or scanning the ledger.
///
/// Decode errors carry the byte offset, relative to the start of the entry, at which the
/// entry was refused; [`Error::Corrupt`] carries the file and the absolute offset in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The entry is shorter than a field it must contain.
    #[error("entry byte {offset}: truncated, need {needed} bytes, have {available}")]
    Truncated {
        /// Where the missing field starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes that were left.
        available: u64,
    },
    /// The entry-format version byte is not 1.
    #[error("entry byte {offset}: entry format version {version}, expected 1")]
    BadVersion {
        /// Offset of the version byte.
        offset: u64,
        /// The version found.
        version: u8,
    },
    /// The flags byte has bits other than the two chunking flags.
    #[error("entry byte {offset}: unknown flag bits in {flags:#04x}")]
    BadFlags {
        /// Offset of the flags byte.
        offset: u64,
        /// The flags found.
        flags: u8,
    },
    /// The header's size is below the 36-byte minimum (GCM header + public length).
    #[error("entry byte {offset}: size {size} is below the minimum of 36")]
    EntryTooSmall {
        /// Offset of the size field.
        offset: u64,
        /// The size found.
        size: u64,
    },
    /// The entry has bytes beyond the size its header declares.
    #[error("entry byte {offset}: header declares {declared} bytes, entry has {actual}")]
    SizeMismatch {
        /// Where the undeclared bytes start.
        offset: u64,
        /// Size from the header (excluding the 8-byte header).
        declared: u64,
        /// Bytes actually present after the header.
        actual: u64,
    },
    /// The public-domain length exceeds what is left of the entry.
    #[error("entry byte {offset}: public domain of {length} bytes, only {available} left")]
    PublicDomainTooLong {
        /// Offset of the length field.
        offset: u64,
        /// The declared public-domain length.
        length: u64,
        /// Bytes left in the entry after the length field.
        available: u64,
    },
    /// The public domain's entry type is not 4 (write set with commit evidence and claims),
    /// the only type Coco writes.
    #[error("entry byte {offset}: unsupported entry type {entry_type}")]
    UnsupportedEntryType {
        /// Offset of the entry-type byte.
        offset: u64,
        /// The type found.
        entry_type: u8,
    },
    /// A snapshot's framing is wrong.
    #[error("snapshot byte {offset}: {reason}")]
    MalformedSnapshot {
        /// Where the problem is.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The seqno in the public domain differs from the seqno in the IV.
    #[error("entry byte {offset}: public-domain seqno {public_seqno} != IV seqno {iv_seqno}")]
    SeqnoMismatch {
        /// Offset of the public-domain seqno.
        offset: u64,
        /// Seqno from the IV.
        iv_seqno: u64,
        /// Seqno from the public domain (its i64 bits read as u64).
        public_seqno: u64,
    },
    /// A value given to [`crate::encode_entry`] does not fit the format.
    #[error("cannot encode entry: {field} {value} is out of range")]
    OutOfRange {
        /// The field (view, seqno, entry size).
        field: &'static str,
        /// The value refused.
        value: u64,
    },
    /// The private domain did not authenticate: wrong key, or the entry was tampered with.
    #[error("private domain of seqno {seqno} failed authentication")]
    Decrypt {
        /// Seqno of the entry.
        seqno: u64,
    },
    /// AES-GCM sealing failed.
    #[error("encrypting private domain: {0}")]
    Crypto(#[from] coco_crypto::Error),
    /// The caller appended a seqno that does not follow the last one.
    #[error("append of seqno {got}, expected {expected}")]
    NotContiguous {
        /// The seqno the ledger expects next.
        expected: u64,
        /// The seqno given.
        got: u64,
    },
    /// The seqno argument of `append` differs from the seqno inside the entry.
    #[error("append of seqno {seqno} with an entry for seqno {entry_seqno}")]
    WrongEntry {
        /// The seqno argument.
        seqno: u64,
        /// The seqno inside the entry.
        entry_seqno: u64,
    },
    /// A chunk boundary was requested where it would not end on a signature.
    #[error("seqno {seqno}: a chunk may only end on a signature transaction")]
    ChunkEndNotSignature {
        /// The entry carrying the flag.
        seqno: u64,
    },
    /// An entry would start past the 4 GiB a u32 positions table can address.
    #[error("seqno {seqno}: chunk is {chunk_len} bytes, past the u32 positions table range")]
    ChunkTooLarge {
        /// The entry refused.
        seqno: u64,
        /// Current chunk length.
        chunk_len: u64,
    },
    /// `commit` was asked to commit past the last entry.
    #[error("commit of seqno {committed} past the last seqno {last}")]
    CommitBeyondLast {
        /// Seqno asked for.
        committed: u64,
        /// Last seqno in the ledger.
        last: u64,
    },
    /// `truncate` was asked to drop committed entries.
    #[error("truncate to {to} would drop committed entries (committed up to {committed})")]
    TruncateCommitted {
        /// Seqno asked for.
        to: u64,
        /// Highest committed seqno known to the ledger.
        committed: u64,
    },
    /// `start_after` was called on a ledger that already has entries.
    #[error("the ledger is not empty (last seqno {last})")]
    NotEmpty {
        /// Last seqno in the ledger.
        last: u64,
    },
    /// No entry with that seqno is stored here.
    #[error("no entry for seqno {seqno}")]
    NotFound {
        /// The seqno asked for.
        seqno: u64,
    },
    /// A chunk file is damaged in a way that is not a torn tail; the node must not start.
    #[error("corrupt ledger file {}: byte {offset}: {reason}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Absolute byte offset in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (open, write, fsync…).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An earlier I/O failure left files and memory possibly out of step; reopen the ledger.
    #[error("the ledger failed earlier and must be reopened")]
    Failed,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation and path, for `map_err`.
    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { op, path, source }
    }

    /// The offset inside the entry for decode errors, so a chunk scan can report the
    /// absolute offset in the file.
    pub(crate) fn entry_offset(&self) -> Option<u64> {
        match self {
            Self::Truncated { offset, .. }
            | Self::BadVersion { offset, .. }
            | Self::BadFlags { offset, .. }
            | Self::EntryTooSmall { offset, .. }
            | Self::SizeMismatch { offset, .. }
            | Self::PublicDomainTooLong { offset, .. }
            | Self::UnsupportedEntryType { offset, .. }
            | Self::SeqnoMismatch { offset, .. }
            | Self::MalformedSnapshot { offset, .. } => Some(*offset),
            Self::OutOfRange { .. }
            | Self::Decrypt { .. }
            | Self::Crypto(_)
            | Self::NotContiguous { .. }
            | Self::WrongEntry { .. }
            | Self::ChunkEndNotSignature { .. }
            | Self::ChunkTooLarge { .. }
            | Self::CommitBeyondLast { .. }
            | Self::TruncateCommitted { .. }
            | Self::NotEmpty { .. }
            | Self::NotFound { .. }
            | Self::Corrupt { .. }
            | Self::Io { .. }
            | Self::Failed => None,
        }
    }
}
