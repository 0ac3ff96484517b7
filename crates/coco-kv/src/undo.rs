//! The rollback history as undo logs: for each seqno above the compacted point, what its
//! write set overwrote (each touched key's previous value, each touched map's previous
//! last write). Rolling back replays these newest first; compacting drops them oldest
//! first.
//!
//! Keeping undo records rather than a persistent-tree state per seqno lets the current
//! state be mutated in place: no older state shares its nodes, so a commit copies no tree
//! path and a compaction frees no copied nodes. Entries of all records live in one ring
//! buffer, so a commit in steady state allocates nothing here.

use std::collections::VecDeque;

use coco_types::Seqno;

use crate::map_name::MapName;
use crate::state::{Key, VersionedValue};

/// One step to undo. A write set's entries are, per touched map, one `Key` per changed
/// key followed by the map's `Map` trailer, so undoing newest first meets the trailer
/// (which names the map) before its keys.
#[derive(Clone, Debug)]
pub(crate) enum UndoEntry {
    /// Restore `key` of the map named by the preceding (in undo order) trailer.
    Key {
        key: Key,
        /// The value before the write set; `None` when the key was absent.
        previous: Option<VersionedValue>,
    },
    /// A touched map's trailer.
    Map {
        name: MapName,
        /// The map's last write before the write set; `None` when the map was absent.
        last_write: Option<Seqno>,
    },
}

/// The undo entries of one seqno: the last `entries` entries of the log when it is the
/// newest record.
#[derive(Clone, Copy, Debug)]
struct UndoRecord {
    seqno: Seqno,
    entries: usize,
}

/// The undo records of every seqno from the compacted point (exclusive) to the current
/// seqno (inclusive), oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct UndoLog {
    entries: VecDeque<UndoEntry>,
    records: VecDeque<UndoRecord>,
    /// Entries pushed since the last record was closed.
    open: usize,
}

impl UndoLog {
    /// Records seqnos held (the rollback history's length).
    pub(crate) fn len(&self) -> u64 {
        self.records.len() as u64
    }

    /// Adds an entry to the record being built.
    pub(crate) fn push(&mut self, entry: UndoEntry) {
        self.entries.push_back(entry);
        self.open += 1;
    }

    /// Closes the record being built as seqno `seqno`'s.
    pub(crate) fn close(&mut self, seqno: Seqno) {
        if let Some(last) = self.records.back() {
            assert_eq!(last.seqno.next(), seqno, "undo records advance by one seqno");
        }
        self.records.push_back(UndoRecord { seqno, entries: self.open });
        self.open = 0;
    }

    /// Removes the newest record; returns its seqno and its entries, newest first (the
    /// order to undo them in).
    pub(crate) fn pop_newest(&mut self) -> Option<(Seqno, impl Iterator<Item = UndoEntry>)> {
        assert_eq!(self.open, 0, "no record is being built");
        let record = self.records.pop_back()?;
        let start = self.entries.len() - record.entries;
        Some((record.seqno, self.entries.drain(start..).rev()))
    }

    /// Drops the oldest record (its seqno became committed).
    pub(crate) fn pop_oldest(&mut self) -> Option<Seqno> {
        assert_eq!(self.open, 0, "no record is being built");
        let record = self.records.pop_front()?;
        self.entries.drain(..record.entries);
        Some(record.seqno)
    }

    /// Checks that the records cover consecutive seqnos ending at `current` and account
    /// for every entry; O(records).
    pub(crate) fn check_invariants(&self, current: Seqno) {
        assert_eq!(self.open, 0, "no record is left open");
        let total: usize = self.records.iter().map(|record| record.entries).sum();
        assert_eq!(total, self.entries.len(), "records account for every undo entry");
        let mut expected = Seqno(current.0 + 1 - self.len());
        for record in &self.records {
            assert_eq!(record.seqno, expected, "undo records cover consecutive seqnos");
            expected = expected.next();
        }
    }
}
