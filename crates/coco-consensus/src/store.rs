//! openraft's storage traits over a [`Journal`]: the log store appends, truncates and reads
//! the ledger; the state machine only records what is committed, because entries were
//! already applied to the KV when they were appended (a primary executes before it
//! replicates, and backups must roll back a truncated suffix, as in CCF).

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use coco_types::{NodeId, Seqno, TxId};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

use crate::journal::{Journal, JournalError, SnapshotAt};
use crate::types::{Peer, TypeConfig, from_journal, log_id_of, to_journal, tx_of};

type Entry = openraft::Entry<TypeConfig>;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// The Raft log store: the journal's entries.
pub(crate) struct LogStore<J> {
    journal: Arc<J>,
    /// Reads give positions and configurations only ([`Journal::read_positions`]): true
    /// for the store openraft's core keeps, which reads entries only to apply committed
    /// ones and to find configurations; its log readers (replication) read them whole.
    positions_only: bool,
}

impl<J: Journal> LogStore<J> {
    /// The store for openraft's core.
    pub(crate) fn new(journal: Arc<J>) -> Self {
        Self { journal, positions_only: true }
    }
}

impl<J> Clone for LogStore<J> {
    fn clone(&self) -> Self {
        Self { journal: self.journal.clone(), positions_only: self.positions_only }
    }
}

fn snapshot_error(e: &JournalError) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

/// The journal's newest committed snapshot, as openraft's snapshot.
fn current_snapshot<J: Journal>(
    journal: &J,
) -> std::result::Result<Option<Snapshot<TypeConfig>>, JournalError> {
    let Some(snapshot) = journal.snapshot()? else {
        return Ok(None);
    };
    let meta = snapshot_meta(snapshot.at);
    Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(snapshot.bytes)) }))
}

fn snapshot_meta(at: SnapshotAt) -> SnapshotMeta<NodeId, Peer> {
    let membership = match at.membership {
        Some((tx, membership)) => StoredMembership::new(Some(log_id_of(tx)), membership.into()),
        None => StoredMembership::default(),
    };
    SnapshotMeta {
        last_log_id: Some(log_id_of(at.tx)),
        last_membership: membership,
        snapshot_id: format!("snapshot_{}", at.tx.seqno),
    }
}

fn read_error(e: &JournalError) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

fn write_error(e: &JournalError) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}

impl<J: Journal> RaftLogReader<TypeConfig> for LogStore<J> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>> {
        let from = match range.start_bound() {
            Bound::Included(from) => *from,
            Bound::Excluded(from) => from + 1,
            Bound::Unbounded => 0,
        };
        let (_, last) = self.journal.bounds().map_err(|e| read_error(&e))?;
        let end = last.map_or(0, |last| last.seqno.0 + 1);
        let to = match range.end_bound() {
            Bound::Included(to) => to + 1,
            Bound::Excluded(to) => *to,
            Bound::Unbounded => end,
        }
        .min(end);
        if from >= to {
            return Ok(Vec::new());
        }
        let (from, to) = (Seqno(from), Seqno(to));
        let entries = if self.positions_only {
            self.journal.read_positions(from, to)
        } else {
            self.journal.read(from, to)
        }
        .map_err(|e| read_error(&e))?;
        Ok(entries.into_iter().map(from_journal).collect())
    }
}

impl<J: Journal> RaftLogStorage<TypeConfig> for LogStore<J> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let (purged, last) = self.journal.bounds().map_err(|e| read_error(&e))?;
        let last = last.or(purged);
        Ok(LogState { last_purged_log_id: purged.map(log_id_of), last_log_id: last.map(log_id_of) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        Self { journal: self.journal.clone(), positions_only: false }
    }

    async fn save_vote(&mut self, vote: &openraft::Vote<NodeId>) -> Result<()> {
        self.journal.save_vote(&(*vote).into()).map_err(|e| {
            StorageError::from(StorageIOError::write_vote(AnyError::error(e.to_string())))
        })
    }

    async fn read_vote(&mut self) -> Result<Option<openraft::Vote<NodeId>>> {
        let vote = self.journal.read_vote().map_err(|e| {
            StorageError::from(StorageIOError::read_vote(AnyError::error(e.to_string())))
        })?;
        Ok(vote.map(Into::into))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().map(to_journal).collect();
        let flush = self.journal.append(entries).map_err(|e| write_error(&e))?;
        // openraft 0.9 waits for this callback before it takes the next write, so the
        // journal's work must be quick (Coco's hands the fsync to its own thread).
        let result = flush().map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(result);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.journal.truncate(Seqno(log_id.index)).map_err(|e| write_error(&e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.journal.purge(tx_of(&log_id)).map_err(|e| write_error(&e))
    }
}

/// The Raft state machine: records the commit point and the configuration in force.
pub(crate) struct StateMachine<J> {
    journal: Arc<J>,
    applied: Arc<Mutex<Applied>>,
}

#[derive(Clone, Debug, Default)]
struct Applied {
    last: Option<TxId>,
    membership: StoredMembership<NodeId, Peer>,
}

impl<J: Journal> StateMachine<J> {
    pub(crate) fn new(journal: Arc<J>) -> std::result::Result<Self, JournalError> {
        let committed = journal.committed()?;
        let last = committed.upto;
        let membership = match committed.membership {
            Some((tx, membership)) => StoredMembership::new(Some(log_id_of(tx)), membership.into()),
            None => StoredMembership::default(),
        };
        let applied = Arc::new(Mutex::new(Applied { last, membership }));
        Ok(Self { journal, applied })
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().expect("the applied state lock is never poisoned")
    }
}

impl<J: Journal> RaftStateMachine<TypeConfig> for StateMachine<J> {
    type SnapshotBuilder = SnapshotBuilder<J>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Peer>)> {
        let applied = self.applied().clone();
        Ok((applied.last.map(log_id_of), applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut count = 0;
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            count += 1;
            if let EntryPayload::Membership(config) = &entry.payload {
                membership = Some(StoredMembership::new(Some(entry.log_id), config.clone()));
            }
            last = Some(entry.log_id);
        }
        if let Some(last) = last {
            self.journal.commit(tx_of(&last)).map_err(|e| {
                StorageError::from(StorageIOError::apply(last, AnyError::error(e.to_string())))
            })?;
            let mut applied = self.applied();
            applied.last = Some(tx_of(&last));
            if let Some(membership) = membership {
                applied.membership = membership;
            }
        }
        Ok(vec![(); count])
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { journal: self.journal.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Peer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let failed = |e: JournalError| -> StorageError<NodeId> {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(e.to_string()))
                .into()
        };
        let at = meta.last_log_id.as_ref().map(tx_of).ok_or_else(|| {
            failed(JournalError::new("installing a snapshot", "it names no log position"))
        })?;
        self.journal.install_snapshot(at, snapshot.into_inner()).map_err(failed)?;
        let mut applied = self.applied();
        applied.last = Some(at);
        applied.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        current_snapshot(self.journal.as_ref()).map_err(|e| snapshot_error(&e))
    }
}

/// Nodes write their snapshots themselves, at signatures (see the node's snapshot
/// module); "building" one hands openraft the newest committed one.
pub(crate) struct SnapshotBuilder<J> {
    journal: Arc<J>,
}

impl<J: Journal> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<J> {
    /// openraft keeps only the position of a snapshot it builds (its bytes are dropped:
    /// [`RaftStateMachine::get_current_snapshot`] reads them when a node needs them).
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let at = self.journal.snapshot_at().map_err(|e| snapshot_error(&e))?;
        let at = at.ok_or_else(|| {
            let reason = AnyError::error("no committed snapshot yet");
            StorageError::from(StorageIOError::write_snapshot(None, reason))
        })?;
        Ok(Snapshot { meta: snapshot_meta(at), snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}
