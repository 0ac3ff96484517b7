//! Transactions: reads from a snapshot plus the transaction's own writes, with every read
//! recorded for the optimistic conflict check at commit.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use coco_types::Seqno;

use crate::map_name::MapName;
use crate::snapshot::{Page, Snapshot, page_from};
use crate::state::{bounds_empty, prefix_end};
use crate::write_set::WriteSet;

/// What a transaction read, to be validated against the state at commit.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadSet {
    /// Point reads: the version seen per key, `None` when the key was absent.
    pub(crate) points: BTreeMap<MapName, BTreeMap<Vec<u8>, Option<Seqno>>>,
    /// Range reads, narrowed to the part actually observed.
    pub(crate) ranges: Vec<RangeRead>,
}

/// A range of a map whose every key (present or absent) the transaction observed.
#[derive(Clone, Debug)]
pub(crate) struct RangeRead {
    pub(crate) map: MapName,
    pub(crate) start: Bound<Vec<u8>>,
    pub(crate) end: Bound<Vec<u8>>,
}

impl ReadSet {
    fn record_point(&mut self, map: &MapName, key: &[u8], version: Option<Seqno>) {
        if !self.points.contains_key(map) {
            self.points.insert(map.clone(), BTreeMap::new());
        }
        let keys = self.points.get_mut(map).expect("inserted just above");
        if !keys.contains_key(key) {
            keys.insert(key.to_vec(), version);
        }
    }
}

/// A transaction: reads see the snapshot it began at plus its own writes
/// (read-your-writes); writes are buffered in a [`WriteSet`] until
/// [`Store::commit`](crate::Store::commit), which refuses it if anything it read has
/// changed since its snapshot. A `Tx` owns its snapshot, so it can run without the store.
#[derive(Clone, Debug)]
pub struct Tx {
    pub(crate) snapshot: Snapshot,
    pub(crate) reads: ReadSet,
    pub(crate) writes: WriteSet,
    /// Begun by [`crate::Store::begin_exclusive`]: records no reads, and commits only if
    /// nothing committed since it began.
    pub(crate) exclusive: bool,
}

impl Tx {
    pub(crate) fn new(snapshot: Snapshot) -> Self {
        Self { snapshot, reads: ReadSet::default(), writes: WriteSet::new(), exclusive: false }
    }

    /// The seqno of the snapshot this transaction reads.
    #[must_use]
    pub fn read_seqno(&self) -> Seqno {
        self.snapshot.seqno
    }

    /// The writes so far (for example to check their encoded size against the limit).
    #[must_use]
    pub fn write_set(&self) -> &WriteSet {
        &self.writes
    }

    /// The value of `map[key]`, including this transaction's own writes.
    pub fn get(&mut self, map: &MapName, key: &[u8]) -> Option<&[u8]> {
        self.get_versioned(map, key).map(|(value, _)| value)
    }

    /// The value of `map[key]` and its version: the seqno that last wrote it, or `None`
    /// when the value is this transaction's own, not yet committed, write.
    pub fn get_versioned(&mut self, map: &MapName, key: &[u8]) -> Option<(&[u8], Option<Seqno>)> {
        if let Some(writes) = self.writes.get(map) {
            if let Some(value) = writes.writes().get(key) {
                return Some((value.as_slice(), None));
            }
            if writes.removes().contains(key) {
                return None;
            }
        }
        let found = self.snapshot.state.get(map, key);
        if !self.exclusive {
            self.reads.record_point(map, key, found.map(|value| value.version));
        }
        found.map(|value| (&*value.value, Some(value.version)))
    }

    /// Writes `map[key] = value`.
    pub fn put(&mut self, map: &MapName, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.put(map, key.into(), value.into());
    }

    /// Removes `map[key]` (recorded even if the key is absent).
    pub fn remove(&mut self, map: &MapName, key: impl Into<Vec<u8>>) {
        self.writes.remove(map, key.into());
    }

    /// Up to `limit` entries of `map` within the bounds, in key order, including this
    /// transaction's own writes. Records the observed part of the range: up to the last
    /// key returned when the limit was reached, the whole range otherwise.
    pub fn range(
        &mut self,
        map: &MapName,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        if limit == 0 || bounds_empty(start, end) {
            return Vec::new();
        }
        let items = self.range_merge_own_writes(map, start, end, limit);
        let observed_end = match items.last() {
            Some((last, _)) if items.len() == limit => Bound::Included(last.clone()),
            Some(_) | None => end.map(<[u8]>::to_vec),
        };
        if !self.exclusive {
            self.reads.ranges.push(RangeRead {
                map: map.clone(),
                start: start.map(<[u8]>::to_vec),
                end: observed_end,
            });
        }
        items
    }

    /// Up to `limit` entries of `map` whose key starts with `prefix`.
    pub fn prefix(
        &mut self,
        map: &MapName,
        prefix: &[u8],
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let end = prefix_end(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range(map, Bound::Included(prefix), end, limit)
    }

    /// Up to `limit` entries of `map` after key `after` (from the start if `None`). A
    /// `limit` of 0 is treated as 1 so that every page makes progress.
    pub fn page(&mut self, map: &MapName, after: Option<&[u8]>, limit: usize) -> Page {
        let limit = limit.max(1);
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        page_from(self.range(map, start, Bound::Unbounded, limit.saturating_add(1)), limit)
    }

    /// Merges the snapshot's entries with this transaction's writes and removes.
    fn range_merge_own_writes(
        &self,
        map: &MapName,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let own = self.writes.get(map);
        let mut committed = self.snapshot.state.range(map, start, end).peekable();
        let mut written =
            own.into_iter().flat_map(|own| own.writes().range::<[u8], _>((start, end))).peekable();
        let mut items = Vec::new();
        while items.len() < limit {
            let order = match (committed.peek(), written.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((committed_key, _)), Some((written_key, _))) => {
                    committed_key.cmp(&written_key.as_slice())
                }
            };
            if order == Ordering::Less {
                let (key, value) = committed.next().expect("peeked above");
                if !own.is_some_and(|own| own.removes().contains(key)) {
                    items.push((key.to_vec(), value.value.to_vec()));
                }
                continue;
            }
            if order == Ordering::Equal {
                committed.next();
            }
            let (key, value) = written.next().expect("peeked above");
            items.push((key.clone(), value.clone()));
        }
        items
    }
}
