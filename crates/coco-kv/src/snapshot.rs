//! Read-only views of the store at one seqno.

use std::ops::Bound;

use coco_types::Seqno;

use imbl::OrdMap;

use crate::map_name::MapName;
use crate::state::{Key, State, VersionedValue, prefix_end};

/// One page of a listing, for pagination.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Page {
    /// Keys and values, in key order.
    pub items: Vec<(Vec<u8>, Vec<u8>)>,
    /// The key to pass as `after` for the next page; `None` when this is the last page.
    pub next: Option<Vec<u8>>,
}

/// A consistent, immutable view of every map as of one seqno. Taking one is O(1) (it
/// shares the store's persistent trees), so read-only work runs on a snapshot outside
/// the store's lock while writers go on.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) state: State,
    pub(crate) seqno: Seqno,
    /// The store's rollback count when the snapshot was taken (see `Store::rollback`).
    pub(crate) epoch: u64,
}

/// One map's entries as of one seqno, O(1) to take: for readers that need a single map
/// without the lock that orders the store's writes. While one is held, the next write to
/// that map copies the path it changes (writes to other maps are unaffected), so it suits
/// maps that rarely change, such as a service's users.
#[derive(Clone, Debug, Default)]
pub struct MapView {
    pub(crate) entries: OrdMap<Key, VersionedValue>,
}

impl MapView {
    pub(crate) fn of(state: &State, map: &MapName) -> Self {
        Self { entries: state.map(map).map(|state| state.entries.clone()).unwrap_or_default() }
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|value| &*value.value)
    }

    /// True if this view shares `entries`' tree (none: the map has no keys), so their
    /// contents are equal; O(1). A write to a map copies the root any view of it holds, so
    /// a view taken before the write never shares with the map after it.
    pub(crate) fn shares_tree_with(&self, entries: Option<&OrdMap<Key, VersionedValue>>) -> bool {
        entries.map_or(self.entries.is_empty(), |entries| self.entries.ptr_eq(entries))
    }
}

impl Snapshot {
    /// `map` alone (empty if it has no keys).
    #[must_use]
    pub fn map_view(&self, map: &MapName) -> MapView {
        MapView::of(&self.state, map)
    }

    /// The seqno this snapshot reflects: every write set up to it, none after.
    #[must_use]
    pub fn seqno(&self) -> Seqno {
        self.seqno
    }

    /// The value of `map[key]`.
    #[must_use]
    pub fn get(&self, map: &MapName, key: &[u8]) -> Option<&[u8]> {
        self.state.get(map, key).map(|value| &*value.value)
    }

    /// The value of `map[key]` and the seqno that last wrote it.
    #[must_use]
    pub fn get_versioned(&self, map: &MapName, key: &[u8]) -> Option<(&[u8], Seqno)> {
        self.state.get(map, key).map(|value| (&*value.value, value.version))
    }

    /// Up to `limit` entries of `map` within the bounds, in key order.
    #[must_use]
    pub fn range(
        &self,
        map: &MapName,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state
            .range(map, start, end)
            .take(limit)
            .map(|(key, value)| (key.to_vec(), value.value.to_vec()))
            .collect()
    }

    /// Up to `limit` entries of `map` whose key starts with `prefix`, in key order.
    #[must_use]
    pub fn prefix(&self, map: &MapName, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let end = prefix_end(prefix);
        self.range(
            map,
            Bound::Included(prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            limit,
        )
    }

    /// Up to `limit` entries of `map` after key `after` (from the start if `None`). A
    /// `limit` of 0 is treated as 1 so that every page makes progress.
    #[must_use]
    pub fn page(&self, map: &MapName, after: Option<&[u8]>, limit: usize) -> Page {
        let limit = limit.max(1);
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        page_from(self.range(map, start, Bound::Unbounded, limit.saturating_add(1)), limit)
    }
}

/// Turns `limit + 1` fetched items into a page: the extra item only says a next page
/// exists.
pub(crate) fn page_from(mut items: Vec<(Vec<u8>, Vec<u8>)>, limit: usize) -> Page {
    assert!(limit >= 1, "a page holds at least one item");
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|(key, _)| key.clone());
        assert!(next.is_some(), "a truncated page has a last item");
        return Page { items, next };
    }
    Page { items, next: None }
}
