//! The KV's state at one seqno: persistent ordered trees, so a copy (a snapshot) is O(1).
//! An update mutates the trees in place where no copy shares them, and copies only the
//! path to the changed key where one does, so copies never see later updates.

use std::ops::Bound;

use coco_types::Seqno;
use imbl::OrdMap;

use crate::bytes::Bytes;
use crate::map_name::MapName;
use crate::undo::{UndoEntry, UndoLog};
use crate::write_set::WriteSet;

/// A key as stored (inline when short, see [`Bytes`]).
pub(crate) type Key = Bytes;

/// A value and the seqno of the write set that last wrote its key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct VersionedValue {
    pub(crate) value: Bytes,
    pub(crate) version: Seqno,
}

/// One map: its keys in order, and the seqno of the last write set that touched it (lets
/// conflict checks skip maps untouched since a snapshot).
#[derive(Clone, Debug)]
pub(crate) struct MapState {
    pub(crate) entries: OrdMap<Key, VersionedValue>,
    pub(crate) last_write: Seqno,
}

/// All maps. A map with no keys is absent, so equal contents mean equal shapes.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub(crate) maps: OrdMap<MapName, MapState>,
}

impl State {
    pub(crate) fn map(&self, map: &MapName) -> Option<&MapState> {
        self.maps.get(map)
    }

    pub(crate) fn get(&self, map: &MapName, key: &[u8]) -> Option<&VersionedValue> {
        self.maps.get(map)?.entries.get(key)
    }

    /// The entries of `map` within the bounds, in key order. Inverted or empty bounds
    /// (which come from clients) give nothing rather than a panic.
    pub(crate) fn range<'a>(
        &'a self,
        map: &MapName,
        start: Bound<&'a [u8]>,
        end: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a [u8], &'a VersionedValue)> + 'a {
        let entries = if bounds_empty(start, end) { None } else { self.maps.get(map) };
        entries
            .into_iter()
            .flat_map(move |state| state.entries.range::<_, [u8]>((start, end)))
            .map(|(key, value)| (&**key, value))
    }

    /// Applies a write set as seqno `seqno`, in place: written keys get version `seqno`.
    /// Records in `undo` what it overwrote and closes the record as `seqno`'s.
    pub(crate) fn apply(&mut self, seqno: Seqno, write_set: &WriteSet, undo: &mut UndoLog) {
        for (name, writes) in write_set.iter() {
            let last_write = match self.maps.get(name) {
                Some(state) => Some(state.last_write),
                None if writes.writes().is_empty() => continue, // Removes change nothing.
                None => {
                    let state = MapState { entries: OrdMap::new(), last_write: seqno };
                    self.maps.insert(name.clone(), state);
                    None
                }
            };
            let state = self.maps.get_mut(name).expect("present or inserted just above");
            for (key, value) in writes.writes() {
                let key = Bytes::from(key.as_slice());
                let value = VersionedValue { value: Bytes::from(value.as_slice()), version: seqno };
                let previous = state.entries.insert(key.clone(), value);
                undo.push(UndoEntry::Key { key, previous });
            }
            for key in writes.removes() {
                if let Some(previous) = state.entries.remove(key.as_slice()) {
                    let key = Bytes::from(key.as_slice());
                    undo.push(UndoEntry::Key { key, previous: Some(previous) });
                }
            }
            state.last_write = seqno;
            if state.entries.is_empty() {
                self.maps.remove(name);
            }
            undo.push(UndoEntry::Map { name: name.clone(), last_write });
        }
        undo.close(seqno);
    }

    /// Undoes one write set: `entries` are its undo entries, newest first.
    pub(crate) fn undo(&mut self, entries: impl Iterator<Item = UndoEntry>) {
        let mut map: Option<(MapName, Option<Seqno>)> = None;
        for entry in entries {
            match entry {
                UndoEntry::Map { name, last_write } => {
                    self.undo_finish_map(map.take());
                    if !self.maps.contains_key(&name) {
                        let state = MapState { entries: OrdMap::new(), last_write: Seqno(0) };
                        self.maps.insert(name.clone(), state);
                    }
                    map = Some((name, last_write));
                }
                UndoEntry::Key { key, previous } => {
                    let (name, _) = map.as_ref().expect("a map's keys follow its trailer");
                    let state = self.maps.get_mut(name).expect("inserted at the trailer");
                    match previous {
                        Some(previous) => state.entries.insert(key, previous),
                        None => state.entries.remove(&*key),
                    };
                }
            }
        }
        self.undo_finish_map(map);
    }

    /// Restores an undone map's last write, or removes it if it did not exist before.
    fn undo_finish_map(&mut self, map: Option<(MapName, Option<Seqno>)>) {
        let Some((name, last_write)) = map else { return };
        let state = self.maps.get_mut(&name).expect("inserted at the trailer");
        match last_write {
            Some(last_write) => {
                assert!(!state.entries.is_empty(), "map {name} existed, so had keys");
                state.last_write = last_write;
            }
            None => {
                assert!(state.entries.is_empty(), "map {name} did not exist, so had no keys");
                self.maps.remove(&name);
            }
        }
    }

    /// Checks the state's invariants as of `seqno`; O(keys).
    pub(crate) fn check_invariants(&self, seqno: Seqno) {
        for (name, state) in &self.maps {
            assert!(!state.entries.is_empty(), "map {name} is present but empty");
            assert!(state.last_write.0 >= 1, "map {name} has last write 0");
            assert!(
                state.last_write <= seqno,
                "map {name} last write {} > seqno {seqno}",
                state.last_write
            );
            for (key, value) in &state.entries {
                assert!(value.version.0 >= 1, "map {name} key {key:02x?} has version 0");
                assert!(
                    value.version <= state.last_write,
                    "map {name} key version {} > last write {}",
                    value.version,
                    state.last_write
                );
            }
        }
    }
}

/// Whether no key can lie within the bounds (start after end, or equal with an exclusion).
pub(crate) fn bounds_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
    }
}

/// The smallest key greater than every key starting with `prefix`, if there is one: the
/// exclusive end of a prefix scan.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_empty_matches_the_definition() {
        let (a, b): (&[u8], &[u8]) = (b"a", b"b");
        assert!(!bounds_empty(Bound::Included(a), Bound::Included(a)));
        assert!(bounds_empty(Bound::Included(a), Bound::Excluded(a)));
        assert!(bounds_empty(Bound::Excluded(a), Bound::Included(a)));
        assert!(bounds_empty(Bound::Included(b), Bound::Included(a)));
        assert!(!bounds_empty(Bound::Excluded(a), Bound::Excluded(b)));
        assert!(!bounds_empty(Bound::Unbounded, Bound::Excluded(a)));
        assert!(!bounds_empty(Bound::Included(b), Bound::Unbounded));
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn inverted_range_is_empty_not_a_panic() {
        let map = MapName::new("m").unwrap();
        let mut write_set = WriteSet::new();
        write_set.put(&map, b"k".to_vec(), b"v".to_vec());
        let mut state = State::default();
        state.apply(Seqno(1), &write_set, &mut UndoLog::default());
        state.check_invariants(Seqno(1));
        let (start, end): (&[u8], &[u8]) = (b"z", b"a");
        assert_eq!(state.range(&map, Bound::Included(start), Bound::Included(end)).count(), 0);
        assert_eq!(state.range(&map, Bound::Unbounded, Bound::Unbounded).count(), 1);
    }
}
