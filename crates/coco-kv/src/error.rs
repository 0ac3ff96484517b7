//! The crate's error enum: caller mistakes and malformed bytes, never panics.

use coco_types::Seqno;

use crate::map_name::MapName;

/// Convenience alias: every fallible function of this crate returns [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a KV operation was refused. No variant is a partial success: a failed operation
/// leaves the store as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A map name broke the naming rule (see [`MapName::new`]).
    #[error("invalid map name {name:?}: {reason}")]
    InvalidMapName {
        /// The refused name, truncated to 64 characters for the message.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// Optimistic concurrency control refused the transaction: something it read changed
    /// after its snapshot. The handler should be re-executed on a fresh snapshot.
    #[error("transaction conflict: {0}")]
    Conflict(Box<Conflict>),
    /// A transaction conflicted on every attempt allowed by the caller's bound.
    #[error("transaction conflicted on all {attempts} attempts")]
    RetriesExhausted {
        /// Executions attempted (retries plus the first one).
        attempts: u64,
    },
    /// A write set was applied out of order: the ledger must be replayed seqno by seqno.
    #[error("write set for seqno {got} cannot be applied: next seqno is {expected}")]
    SeqnoNotNext {
        /// The seqno the caller gave.
        got: Seqno,
        /// `current_seqno + 1`.
        expected: Seqno,
    },
    /// Rollback below the compacted (globally committed) point: that history is gone, and
    /// committed transactions are never rolled back.
    #[error("cannot roll back to seqno {to}: history starts at seqno {compacted}")]
    RollbackBelowCompacted {
        /// The requested seqno.
        to: Seqno,
        /// The oldest seqno still in the history.
        compacted: Seqno,
    },
    /// Rollback to a seqno this store has not reached.
    #[error("cannot roll back to seqno {to}: current seqno is {current}")]
    RollbackAboveCurrent {
        /// The requested seqno.
        to: Seqno,
        /// The store's current seqno.
        current: Seqno,
    },
    /// Compaction past the current seqno: the committed point cannot be ahead of what was
    /// applied here.
    #[error("cannot compact to seqno {to}: current seqno is {current}")]
    CompactAboveCurrent {
        /// The requested seqno.
        to: Seqno,
        /// The store's current seqno.
        current: Seqno,
    },
    /// The rollback history reached its bound; the caller must compact (advance the
    /// committed point) before more writes are accepted. Backpressure, not silent growth.
    #[error("rollback history holds {max} seqnos, its maximum; compact first")]
    HistoryFull {
        /// The configured bound.
        max: u64,
    },
    /// A map appears in two domains being merged.
    #[error("map {0} appears in both domains of a write set")]
    MapInBothDomains(MapName),
    /// A public map in the private domain or the reverse.
    #[error("map {0} is in the wrong domain of a write set")]
    MapInWrongDomain(MapName),
    /// Bytes claimed to be a write set domain are not one.
    #[error("malformed write set at byte {offset}: {kind}")]
    MalformedWriteSet {
        /// Where decoding stopped.
        offset: u64,
        /// What was wrong.
        kind: DecodeError,
    },
    /// Bytes claimed to be a serialised KV snapshot are not one.
    #[error("malformed kv snapshot at byte {offset}: {kind}")]
    MalformedSnapshot {
        /// Where decoding stopped.
        offset: u64,
        /// What was wrong.
        kind: DecodeError,
    },
}

impl Error {
    /// Whether re-executing the transaction on a fresh snapshot may succeed.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

/// What a transaction read that changed before it committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A point read saw a version (or absence) that is no longer current.
    #[error("key {key:02x?} of map {map} was at version {read:?}, now {current:?}")]
    Key {
        /// The map read.
        map: MapName,
        /// The key read.
        key: Vec<u8>,
        /// The version seen (`None`: absent).
        read: Option<Seqno>,
        /// The version now (`None`: absent).
        current: Option<Seqno>,
    },
    /// A key in a range the transaction listed was written, created or removed.
    #[error("a range of map {map} read at seqno {read_seqno} changed")]
    Range {
        /// The map read.
        map: MapName,
        /// The seqno of the transaction's snapshot.
        read_seqno: Seqno,
    },
    /// The store rolled back after the transaction's snapshot was taken; versions seen
    /// before a rollback may be reused for different values, so nothing can be trusted.
    #[error("store rolled back after the snapshot at seqno {read_seqno}")]
    RolledBack {
        /// The seqno of the transaction's snapshot.
        read_seqno: Seqno,
    },
    /// An exclusive transaction ([`crate::Store::begin_exclusive`]) recorded no reads,
    /// and something committed after it began.
    #[error("an exclusive transaction began at seqno {read_seqno}, the store is at {current}")]
    NotExclusive {
        /// The seqno of the transaction's snapshot.
        read_seqno: Seqno,
        /// The store's seqno now.
        current: Seqno,
    },
}

/// What was wrong with bytes being decoded (write set domain or KV snapshot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes remain than a field needs.
    #[error("truncated: {needed} bytes needed, {remaining} remain")]
    Truncated {
        /// Bytes the next field needs.
        needed: u64,
        /// Bytes left in the input.
        remaining: u64,
    },
    /// An element count cannot fit in the bytes that remain.
    #[error("count {count} cannot fit in the {remaining} remaining bytes")]
    CountTooLarge {
        /// The count read.
        count: u64,
        /// Bytes left in the input.
        remaining: u64,
    },
    /// CCF's read count must be 0 in a ledger write set.
    #[error("read count is {0}, must be 0")]
    ReadCountNonZero(u64),
    /// Coco always writes read version 0; anything else is not its canonical encoding.
    #[error("read version is {0}, must be 0")]
    ReadVersionNonZero(u64),
    /// A map name broke the naming rule.
    #[error("bad map name: {0}")]
    BadMapName(&'static str),
    /// Map names must be strictly increasing (sorted, no duplicates).
    #[error("map names are not strictly increasing")]
    MapNamesNotSorted,
    /// Keys of one map's writes or removes must be strictly increasing.
    #[error("keys are not strictly increasing")]
    KeysNotSorted,
    /// A key may be written or removed by one write set, not both.
    #[error("a key is both written and removed")]
    KeyWrittenAndRemoved,
    /// A map entry with nothing in it is never written, so it is not canonical.
    #[error("a map has no writes and no removes")]
    EmptyMap,
    /// A snapshot's padding to 8 bytes must be zeros.
    #[error("non-zero padding")]
    NonZeroPadding,
    /// A key's version is 0 or above the map's last write.
    #[error("key version {version} outside 1..={last_write}")]
    VersionOutOfRange {
        /// The key's version.
        version: u64,
        /// The map's last-write seqno.
        last_write: u64,
    },
    /// A map's last write is 0 or above the snapshot's seqno.
    #[error("map last write {last_write} outside 1..={seqno}")]
    LastWriteOutOfRange {
        /// The map's last-write seqno.
        last_write: u64,
        /// The snapshot's seqno.
        seqno: u64,
    },
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes")]
    TrailingBytes(u64),
}
