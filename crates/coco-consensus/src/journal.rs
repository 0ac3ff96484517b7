//! The journal: what consensus needs from the node that owns the ledger. The ledger *is*
//! the Raft log: appending an entry seals it into the ledger (and applies it to the KV),
//! truncating rolls both back, and committing marks it durable for good. Consensus calls
//! these under its own ordering; the node implements them under its lock.

use coco_types::{Seqno, TxId};

use crate::types::{JournalEntry, Membership, Vote};

/// The work that makes appended entries count as held, returned by [`Journal::append`]
/// and run before consensus takes its next write: it must be quick (hand an `fsync` to a
/// thread of its own rather than wait for it).
pub type Flush = Box<dyn FnOnce() -> Result<(), JournalError> + Send>;

/// The node side of consensus.
///
/// Seqno 0 (view 0) is special: it holds the configuration a new service starts with
/// (Raft's first entry), and is not a ledger entry — the node keeps it beside the ledger.
/// Every other seqno is the ledger entry at that seqno.
pub trait Journal: Send + Sync + 'static {
    /// Appends `entries`, in order, right after the last entry held (Raft truncates a
    /// conflicting suffix first). A [`crate::JournalPayload::Local`] entry executes the
    /// ticketed transaction at that position; a sealed one is checked and applied. The
    /// entries are visible at once; consensus counts them as held by this node once the
    /// returned work has run (the node decides how durable that is: Coco's node hands them
    /// to the OS first and makes its own commit point wait for the `fdatasync`).
    ///
    /// # Errors
    /// A malformed entry or a storage failure: consensus stops this node.
    fn append(&self, entries: Vec<JournalEntry>) -> Result<Flush, JournalError>;

    /// Removes every entry at and after `from` (never a committed one), rolling their
    /// effects back.
    ///
    /// # Errors
    /// Storage failures.
    fn truncate(&self, from: Seqno) -> Result<(), JournalError>;

    /// Allows dropping entries up to and including `upto` (a snapshot covers them).
    ///
    /// # Errors
    /// Storage failures.
    fn purge(&self, upto: TxId) -> Result<(), JournalError>;

    /// The entries at `from..to` as held: sealed bytes, or the configuration an entry
    /// records (Raft reads configurations back from its log).
    ///
    /// # Errors
    /// Storage failures, or a range outside what is held.
    fn read(&self, from: Seqno, to: Seqno) -> Result<Vec<JournalEntry>, JournalError>;

    /// The entries at `from..to` as consensus applies committed ones: their positions,
    /// with a payload only where consensus reads one (a configuration); any other entry
    /// may come back as [`crate::JournalPayload::Blank`]. Every committed entry is applied,
    /// and reading its sealed bytes back from the ledger only to drop them cost a read per
    /// transaction. The default reads them whole.
    ///
    /// # Errors
    /// As [`Journal::read`].
    fn read_positions(&self, from: Seqno, to: Seqno) -> Result<Vec<JournalEntry>, JournalError> {
        self.read(from, to)
    }

    /// The last purged entry and the last entry held.
    ///
    /// # Errors
    /// Storage failures.
    fn bounds(&self) -> Result<(Option<TxId>, Option<TxId>), JournalError>;

    /// Persists this node's vote before returning.
    ///
    /// # Errors
    /// Storage failures.
    fn save_vote(&self, vote: &Vote) -> Result<(), JournalError>;

    /// The last persisted vote.
    ///
    /// # Errors
    /// Storage failures or a corrupt vote file.
    fn read_vote(&self) -> Result<Option<Vote>, JournalError>;

    /// Consensus committed every entry up to and including `upto`: none of them will ever
    /// be truncated.
    ///
    /// # Errors
    /// Storage failures.
    fn commit(&self, upto: TxId) -> Result<(), JournalError>;

    /// The newest committed snapshot this node holds, if any. A node that started from a
    /// snapshot reports it as purged in [`Journal::bounds`]: consensus then sends this to
    /// nodes that need what precedes it.
    ///
    /// # Errors
    /// Storage failures.
    fn snapshot(&self) -> Result<Option<JournalSnapshot>, JournalError>;

    /// Where the newest committed snapshot is, without its bytes: all consensus keeps
    /// when it takes one (a snapshot can be the whole state; reading it only to drop it
    /// cost a full read per snapshot). The default reads the snapshot.
    ///
    /// # Errors
    /// Storage failures.
    fn snapshot_at(&self) -> Result<Option<SnapshotAt>, JournalError> {
        Ok(self.snapshot()?.map(|snapshot| snapshot.at))
    }

    /// Replaces this node's state with `bytes`, a committed snapshot another node sent at
    /// `at` (this node lacks entries that node no longer replicates). The node checks it
    /// before anything changes; afterwards it holds no entry at or before `at`.
    ///
    /// # Errors
    /// A snapshot that does not verify, or storage failures.
    fn install_snapshot(&self, at: TxId, bytes: Vec<u8>) -> Result<(), JournalError>;

    /// What a restarted node knows to be committed, and the last configuration at or
    /// before it.
    ///
    /// # Errors
    /// Storage failures.
    fn committed(&self) -> Result<Committed, JournalError>;
}

/// A committed snapshot as consensus hands it to a lagging node: where it is, and the
/// file (snapshot and receipt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSnapshot {
    /// Where it is.
    pub at: SnapshotAt,
    /// The committed snapshot file's bytes.
    pub bytes: Vec<u8>,
}

/// Where a committed snapshot is: its signature and the configuration in force there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotAt {
    /// The snapshot's signature.
    pub tx: TxId,
    /// The last configuration at or before it, and where it is.
    pub membership: Option<(TxId, Membership)>,
}

/// What a node knows to be committed when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The last entry known committed.
    pub upto: Option<TxId>,
    /// The last configuration at or before it, and where it is.
    pub membership: Option<(TxId, Membership)>,
}

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct JournalError {
    /// What was being done.
    pub what: String,
    /// What went wrong.
    pub reason: String,
}

impl JournalError {
    /// An error while doing `what`.
    pub fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self { what: what.into(), reason: reason.to_string() }
    }
}
