//! The node's error type.

use std::path::PathBuf;

use coco_types::{Seqno, TxId};

/// What went wrong in the node. Client mistakes and environment failures are separate
/// variants so the host can map them to 4xx and 5xx.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A key, certificate or signature failed.
    #[error("{what}: {source}")]
    Crypto {
        /// What was being processed.
        what: String,
        /// The crypto error.
        source: coco_crypto::Error,
    },
    /// Persistent state is present but unusable.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which state.
        what: String,
        /// Why.
        reason: String,
    },
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] coco_ledger::Error),
    /// The KV store refused an operation.
    #[error("kv: {0}")]
    Kv(#[from] coco_kv::Error),
    /// The Merkle tree refused an operation.
    #[error("merkle: {0}")]
    Merkle(#[from] coco_merkle::Error),
    /// Too many transactions wait for a signature; the client should retry later.
    #[error("{pending} transactions are pending, the limit is {limit}")]
    Backpressure {
        /// Transactions executed but not committed.
        pending: u64,
        /// The configured bound.
        limit: u64,
    },
    /// A transaction's write set exceeds the configured bound.
    #[error("write set of {bytes} bytes exceeds the limit of {limit}")]
    WriteSetTooLarge {
        /// Encoded size.
        bytes: u64,
        /// The configured bound.
        limit: u64,
    },
    /// The transaction kept conflicting with concurrent ones.
    #[error("transaction conflicted {attempts} times; giving up")]
    TooManyConflicts {
        /// Attempts made.
        attempts: u64,
    },
    /// No receipt exists for this transaction (unknown, invalid, or not yet committed).
    #[error("no receipt for {tx}: {reason}")]
    NoReceipt {
        /// The transaction.
        tx: TxId,
        /// Its status, as text.
        reason: &'static str,
    },
    /// The ledger does not hold this seqno.
    #[error("seqno {0} is not in the ledger")]
    UnknownSeqno(Seqno),
    /// A recovery cannot start, or its shares do not rebuild the old ledger secrets.
    #[error("recovery: {0}")]
    Recovery(String),
}

/// The node's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a crypto error with what was being processed, for `map_err`.
pub(crate) fn crypto(what: &'static str) -> impl FnOnce(coco_crypto::Error) -> Error {
    move |source| Error::Crypto { what: what.to_owned(), source }
}
