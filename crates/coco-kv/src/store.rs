//! The store: the current state, its rollback history (undo records), commit with
//! optimistic concurrency control, ledger replay, rollback and compaction.

use std::ops::Bound;
use std::sync::Mutex;

use coco_types::Seqno;

use crate::error::{Conflict, Error, Result};
use crate::map_name::MapName;
use crate::snapshot::{MapView, Snapshot};
use crate::state::State;
use crate::tx::{RangeRead, ReadSet, Tx};
use crate::undo::UndoLog;
use crate::write_set::WriteSet;

/// Default bound on the rollback history, in seqnos above the compacted point. The node
/// sets its own (from `Limits::pending_txs_max`) with [`Store::set_history_max`].
pub const HISTORY_MAX_DEFAULT: u64 = 1 << 20;

/// What a successful commit did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CommitOutcome {
    /// The transaction wrote nothing: it was validated and gets no seqno.
    ReadOnly,
    /// The transaction's writes were applied as `seqno`; `write_set` goes to the ledger.
    Written {
        /// The seqno the write set was applied at (`current_seqno` now).
        seqno: Seqno,
        /// The writes, for the ledger entry.
        write_set: WriteSet,
    },
}

/// Coco's ordered, transactional, versioned key-value store. A plain, deterministic data
/// structure: the node wraps it in a mutex (see the crate documentation).
#[derive(Clone, Debug)]
pub struct Store {
    /// The state at `current`, mutated in place: with no snapshot sharing its trees, an
    /// update copies nothing; snapshots still held keep their version (copy-on-write).
    state: State,
    /// The seqno of the last applied write set.
    current: Seqno,
    /// How to undo each seqno from `compacted` (exclusive) to `current` (inclusive).
    undo: UndoLog,
    /// The oldest seqno rollback can reach (the committed point the node reported).
    compacted: Seqno,
    /// Rollbacks so far; snapshots remember it so that a transaction that began before a
    /// rollback is refused (versions above the rollback point get reused).
    epoch: u64,
    /// Bound on the undo records held (`current - compacted`).
    history_max: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store at seqno 0.
    #[must_use]
    pub fn new() -> Self {
        Self::at(State::default(), Seqno(0))
    }

    pub(crate) fn at(state: State, seqno: Seqno) -> Self {
        Self {
            state,
            current: seqno,
            undo: UndoLog::default(),
            compacted: seqno,
            epoch: 0,
            history_max: HISTORY_MAX_DEFAULT,
        }
    }

    /// Sets the bound on the rollback history (seqnos above the compacted point). Writes
    /// beyond it fail with [`Error::HistoryFull`] until the node compacts.
    ///
    /// # Panics
    /// If `history_max` is 0: no write could ever be applied.
    pub fn set_history_max(&mut self, history_max: u64) {
        assert!(history_max >= 1, "history_max must allow one write");
        self.history_max = history_max;
    }

    /// The seqno of the last applied write set (0 for an empty store).
    #[must_use]
    pub fn current_seqno(&self) -> Seqno {
        self.current
    }

    /// The oldest seqno [`Store::rollback`] can reach.
    #[must_use]
    pub fn compacted_seqno(&self) -> Seqno {
        self.compacted
    }

    pub(crate) fn current(&self) -> &State {
        &self.state
    }

    /// A read-only view of the current state; O(1).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { state: self.current().clone(), seqno: self.current_seqno(), epoch: self.epoch }
    }

    /// `map` alone as it is now; O(1) (see [`MapView`]).
    #[must_use]
    pub fn map_view(&self, map: &MapName) -> MapView {
        MapView::of(self.current(), map)
    }

    /// True if `view` is `map` as it is now (they share its tree); O(1), without taking a
    /// view. Any write to `map` since `view` was taken makes it false.
    #[must_use]
    pub fn map_is(&self, map: &MapName, view: &MapView) -> bool {
        view.shares_tree_with(self.current().map(map).map(|state| &state.entries))
    }

    /// Begins a transaction reading the current state; O(1).
    #[must_use]
    pub fn begin(&self) -> Tx {
        Tx::new(self.snapshot())
    }

    /// Begins a transaction for a caller that commits it before anything else commits
    /// (under the lock that orders commits): it records no reads, which then need no
    /// checking, and [`Store::commit`] refuses it if anything committed since it began.
    #[must_use]
    pub fn begin_exclusive(&self) -> Tx {
        Tx { exclusive: true, ..Tx::new(self.snapshot()) }
    }

    /// Commits a transaction: validates its reads against the current state, then applies
    /// its writes as seqno `current_seqno + 1`. Committed transactions are serializable in
    /// seqno order.
    ///
    /// # Errors
    /// [`Error::Conflict`] if a key it read has another version now (written, created or
    /// removed since its snapshot), if a range it read changed, or if the store rolled
    /// back since it began; [`Error::HistoryFull`] if it writes and the rollback history
    /// is full. Either way the store is unchanged.
    pub fn commit(&mut self, tx: Tx) -> Result<CommitOutcome> {
        let Tx { snapshot, reads, writes, exclusive } = tx;
        let checked = if exclusive {
            self.commit_check_exclusive(&snapshot)
        } else {
            self.commit_check_conflicts(&snapshot, &reads)
        };
        checked.map_err(|conflict| Error::Conflict(Box::new(conflict)))?;
        // Release the transaction's copy of the state before applying: with no other
        // copy sharing the trees, the writes then mutate them in place, copying nothing.
        drop(snapshot);
        drop(reads);
        if writes.is_empty() {
            return Ok(CommitOutcome::ReadOnly);
        }
        let seqno = self.current_seqno().next();
        self.apply(seqno, &writes)?;
        Ok(CommitOutcome::Written { seqno, write_set: writes })
    }

    fn commit_check_exclusive(&self, snapshot: &Snapshot) -> Result<(), Conflict> {
        let read_seqno = snapshot.seqno;
        if snapshot.epoch != self.epoch {
            return Err(Conflict::RolledBack { read_seqno });
        }
        if read_seqno != self.current_seqno() {
            return Err(Conflict::NotExclusive { read_seqno, current: self.current_seqno() });
        }
        Ok(())
    }

    fn commit_check_conflicts(&self, snapshot: &Snapshot, reads: &ReadSet) -> Result<(), Conflict> {
        let read_seqno = snapshot.seqno;
        if snapshot.epoch != self.epoch {
            return Err(Conflict::RolledBack { read_seqno });
        }
        assert!(read_seqno <= self.current_seqno(), "snapshot from the future in one epoch");
        let (then, now) = (&snapshot.state, self.current());
        for (map, keys) in &reads.points {
            if map_unchanged(then, now, map, read_seqno) {
                continue;
            }
            for (key, read) in keys {
                let current = now.get(map, key).map(|value| value.version);
                if current != *read {
                    let (map, key, read) = (map.clone(), key.clone(), *read);
                    return Err(Conflict::Key { map, key, read, current });
                }
            }
        }
        for range in &reads.ranges {
            if !map_unchanged(then, now, &range.map, read_seqno) && range_changed(then, now, range)
            {
                return Err(Conflict::Range { map: range.map.clone(), read_seqno });
            }
        }
        Ok(())
    }

    /// Applies a write set from the ledger (replay at start, or a backup following the
    /// primary) without conflict checks: the primary already made those.
    ///
    /// # Errors
    /// [`Error::SeqnoNotNext`] unless `seqno == current_seqno + 1`;
    /// [`Error::HistoryFull`] when the rollback history is full. The store is unchanged.
    ///
    /// # Panics
    /// Only on a broken internal invariant (the seqno not advancing by one).
    pub fn apply(&mut self, seqno: Seqno, write_set: &WriteSet) -> Result<()> {
        let expected = self.current_seqno().next();
        if seqno != expected {
            return Err(Error::SeqnoNotNext { got: seqno, expected });
        }
        if self.undo.len() >= self.history_max {
            return Err(Error::HistoryFull { max: self.history_max });
        }
        self.state.apply(seqno, write_set, &mut self.undo);
        self.current = seqno;
        Ok(())
    }

    /// Restores the state as of seqno `to`, discarding every write set after it (the node
    /// does this when a new primary truncates uncommitted entries). Transactions begun
    /// before a rollback that discarded anything will conflict.
    ///
    /// # Errors
    /// [`Error::RollbackBelowCompacted`] below the compacted point (committed state is
    /// never rolled back); [`Error::RollbackAboveCurrent`] past the current seqno.
    ///
    /// # Panics
    /// Only on a broken internal invariant (the undo records and seqnos disagreeing).
    pub fn rollback(&mut self, to: Seqno) -> Result<()> {
        if to < self.compacted {
            return Err(Error::RollbackBelowCompacted { to, compacted: self.compacted });
        }
        let current = self.current_seqno();
        if to > current {
            return Err(Error::RollbackAboveCurrent { to, current });
        }
        if to == current {
            return Ok(());
        }
        while self.current > to {
            let (seqno, entries) =
                self.undo.pop_newest().expect("a record for every seqno above compacted");
            assert_eq!(seqno, self.current, "undo records are popped newest first");
            self.state.undo(entries);
            self.current = Seqno(seqno.0 - 1);
        }
        self.epoch += 1;
        assert_eq!(self.current_seqno(), to, "rollback lands exactly on its target");
        Ok(())
    }

    /// Replaces the whole contents with `other`'s (the node does this when recovery
    /// decrypts the private state of an old ledger and rebuilds the store from it).
    /// Transactions begun on the old contents conflict, as after a rollback.
    pub fn replace(&mut self, other: Self) {
        let epoch = self.epoch.max(other.epoch) + 1;
        let history_max = self.history_max;
        *self = other;
        self.epoch = epoch;
        self.history_max = history_max.max(self.undo.len());
    }

    /// Drops the undo records at and below `committed` (oldest first, O(records
    /// dropped)): the node calls this as the committed point advances, after which
    /// rolling back below `committed` is an error. Compacting to a seqno at or below the
    /// compacted point does nothing.
    ///
    /// # Errors
    /// [`Error::CompactAboveCurrent`] past the current seqno.
    ///
    /// # Panics
    /// Only on a broken internal invariant (the undo records and seqnos disagreeing).
    pub fn compact(&mut self, committed: Seqno) -> Result<()> {
        let current = self.current_seqno();
        if committed > current {
            return Err(Error::CompactAboveCurrent { to: committed, current });
        }
        while self.compacted < committed {
            let seqno = self.undo.pop_oldest().expect("a record for every seqno above compacted");
            self.compacted = self.compacted.next();
            assert_eq!(seqno, self.compacted, "undo records are popped oldest first");
        }
        assert_eq!(self.current_seqno(), current, "compaction keeps the current seqno");
        Ok(())
    }

    /// Checks the store's invariants; O(keys), for tests and the simulator.
    ///
    /// # Panics
    /// If an invariant is broken: the undo records do not cover exactly the seqnos above
    /// the compacted point or exceed their bound, a map is empty, or a version or
    /// last-write seqno is 0 or above the current seqno.
    pub fn check_invariants(&self) {
        assert!(self.compacted <= self.current, "compacted point above current");
        assert_eq!(self.undo.len(), self.current.0 - self.compacted.0, "a record per seqno");
        assert!(self.undo.len() <= self.history_max, "history above its bound");
        self.undo.check_invariants(self.current);
        self.state.check_invariants(self.current);
    }
}

/// Whether `map` certainly has the same entries now as in the snapshot `then`. Sound
/// because `now` descends from `then` in one epoch: any write set touching `map` after
/// `read_seqno` set its last write above `read_seqno`.
fn map_unchanged(then: &State, now: &State, map: &MapName, read_seqno: Seqno) -> bool {
    match (then.map(map), now.map(map)) {
        (None, None) => true,
        (Some(then), Some(now)) => {
            then.entries.ptr_eq(&now.entries) || now.last_write <= read_seqno
        }
        (None, Some(_)) | (Some(_), None) => false,
    }
}

/// Whether any key in the range was written, created or removed between the two states:
/// the (key, version) sequences of the range must be equal. Costs the size of the range
/// read, which the reader already paid.
fn range_changed(then: &State, now: &State, range: &RangeRead) -> bool {
    let (start, end) = (as_slice_bound(&range.start), as_slice_bound(&range.end));
    let then = then.range(&range.map, start, end).map(|(key, value)| (key, value.version));
    let now = now.range(&range.map, start, end).map(|(key, value)| (key, value.version));
    !then.eq(now)
}

fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

/// Runs `f` in a transaction against the store behind `store`, re-executing it on
/// conflict up to `retries_max` times. This is the node's pattern: the lock is held only
/// to begin (O(1)) and to commit; `f` runs unlocked on its own snapshot, so other
/// transactions commit meanwhile and may make this one conflict.
///
/// A poisoned lock (a panic while committing) is taken over: store operations validate
/// before they mutate, so the store is consistent even then.
///
/// # Errors
/// `f`'s own error (nothing is committed); [`Error::RetriesExhausted`] after
/// `retries_max + 1` conflicting executions; any other commit error.
pub fn run_tx<T, E, F>(
    store: &Mutex<Store>,
    retries_max: u64,
    mut f: F,
) -> Result<(T, CommitOutcome), E>
where
    F: FnMut(&mut Tx) -> Result<T, E>,
    E: From<Error>,
{
    let lock = || store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut attempts: u64 = 0;
    loop {
        attempts += 1;
        let mut tx = lock().begin();
        let value = f(&mut tx)?;
        match lock().commit(tx) {
            Ok(outcome) => return Ok((value, outcome)),
            Err(error) if error.is_conflict() && attempts <= retries_max => {}
            Err(error) if error.is_conflict() => {
                return Err(Error::RetriesExhausted { attempts }.into());
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_test;
