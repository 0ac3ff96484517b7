//! The KV's state at one seqno: persistent ordered trees, so a copy is O(1) and an update
//! copies only the path to the changed key.

use std::ops::Bound;

use coco_types::Seqno;
use imbl::OrdMap;

use crate::bytes::Bytes;
use crate::map_name::MapName;
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

    /// Applies a write set as seqno `seqno`: written keys get version `seqno`.
    pub(crate) fn apply(&mut self, seqno: Seqno, write_set: &WriteSet) {
        for (name, writes) in write_set.iter() {
            if !self.maps.contains_key(name) {
                if writes.writes().is_empty() {
                    continue; // Removes from an absent map change nothing.
                }
                let state = MapState { entries: OrdMap::new(), last_write: seqno };
                self.maps.insert(name.clone(), state);
            }
            let state = self.maps.get_mut(name).expect("inserted just above");
            for (key, value) in writes.writes() {
                let value = VersionedValue { value: Bytes::from(value.as_slice()), version: seqno };
                state.entries.insert(Bytes::from(key.as_slice()), value);
            }
            for key in writes.removes() {
                state.entries.remove(key.as_slice());
            }
            state.last_write = seqno;
            if state.entries.is_empty() {
                self.maps.remove(name);
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
        state.apply(Seqno(1), &write_set);
        state.check_invariants(Seqno(1));
        let (start, end): (&[u8], &[u8]) = (b"z", b"a");
        assert_eq!(state.range(&map, Bound::Included(start), Bound::Included(end)).count(), 0);
        assert_eq!(state.range(&map, Bound::Unbounded, Bound::Unbounded).count(), 1);
    }
}
