//! Write sets: what one transaction changed, and their ledger codec (CCF's per-map
//! layout, `ccf-formats.md` §1.6).
//!
//! One domain is, for each map in name order (all integers `u64` little-endian):
//!
//! | field | meaning |
//! |---|---|
//! | `len`, name | map name |
//! | `read_version` | always 0 (see below) |
//! | `read_count` | always 0 |
//! | `write_count`, then (`klen`, key, `vlen`, value) × n | keys written, increasing |
//! | `remove_count`, then (`klen`, key) × n | keys removed, increasing |
//!
//! `read_version` is 0 because Coco checks conflicts on the primary before a write set
//! exists; backups and replay apply write sets unconditionally, so read information in
//! the ledger would carry nothing, and a constant keeps the encoding canonical (digests
//! and signatures are computed over these bytes). The decoder therefore accepts exactly
//! one encoding per write set: sorted unique names and keys, no empty maps, zero read
//! fields.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{DecodeError, Error, Result};
use crate::map_name::MapName;
use crate::reader::{Reader, put_bytes, put_u64};

/// The two ledger domains: public maps in clear, private maps encrypted by the ledger.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Domain {
    /// Maps named `public:*`.
    Public,
    /// Every other map.
    Private,
}

impl Domain {
    /// The domain a map belongs to.
    #[must_use]
    pub fn of(map: &MapName) -> Self {
        if map.is_public() { Self::Public } else { Self::Private }
    }
}

/// The writes of one transaction to one map. A key is in at most one of `writes` and
/// `removes` (the last operation on it wins), which the methods maintain.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MapWrites {
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    removes: BTreeSet<Vec<u8>>,
}

impl MapWrites {
    /// Records `key = value`, replacing an earlier write or remove of the key.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.removes.remove(&key);
        self.writes.insert(key, value);
    }

    /// Records the removal of `key`, replacing an earlier write of it.
    pub fn remove(&mut self, key: Vec<u8>) {
        self.writes.remove(&key);
        self.removes.insert(key);
    }

    /// Keys written and their new values, in key order.
    #[must_use]
    pub fn writes(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.writes
    }

    /// Keys removed, in key order.
    #[must_use]
    pub fn removes(&self) -> &BTreeSet<Vec<u8>> {
        &self.removes
    }

    /// Whether nothing is written or removed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.removes.is_empty()
    }

    fn encoded_len(&self, name: &MapName) -> u64 {
        let writes: u64 =
            self.writes.iter().map(|(k, v)| 16 + k.len() as u64 + v.len() as u64).sum();
        let removes: u64 = self.removes.iter().map(|k| 8 + k.len() as u64).sum();
        8 + name.as_str().len() as u64 + 8 + 8 + 8 + writes + 8 + removes
    }

    fn encode(&self, name: &MapName, out: &mut Vec<u8>) {
        put_bytes(out, name.as_str().as_bytes());
        put_u64(out, 0); // read_version, see the module doc
        put_u64(out, 0); // read_count
        put_u64(out, self.writes.len() as u64);
        for (key, value) in &self.writes {
            put_bytes(out, key);
            put_bytes(out, value);
        }
        put_u64(out, self.removes.len() as u64);
        for key in &self.removes {
            put_bytes(out, key);
        }
    }
}

/// Everything one transaction wrote, by map in name order: the unit the ledger records
/// and backups apply.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct WriteSet {
    maps: BTreeMap<MapName, MapWrites>,
}

impl WriteSet {
    /// An empty write set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no map is written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Records `map[key] = value`.
    pub fn put(&mut self, map: &MapName, key: Vec<u8>, value: Vec<u8>) {
        self.map_writes_mut(map).put(key, value);
    }

    /// Records the removal of `map[key]`.
    pub fn remove(&mut self, map: &MapName, key: Vec<u8>) {
        self.map_writes_mut(map).remove(key);
    }

    fn map_writes_mut(&mut self, map: &MapName) -> &mut MapWrites {
        if !self.maps.contains_key(map) {
            self.maps.insert(map.clone(), MapWrites::default());
        }
        self.maps.get_mut(map).expect("inserted just above")
    }

    /// The writes to one map, if any.
    #[must_use]
    pub fn get(&self, map: &MapName) -> Option<&MapWrites> {
        self.maps.get(map)
    }

    /// Maps and their writes, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&MapName, &MapWrites)> {
        self.maps.iter()
    }

    /// Size of both encoded domains together, in bytes, without encoding: for checking
    /// `Limits::write_set_bytes_max` before a transaction is committed.
    #[must_use]
    pub fn encoded_len(&self) -> u64 {
        self.maps.iter().map(|(name, writes)| writes.encoded_len(name)).sum()
    }

    /// Encodes the public and the private domain (maps split by
    /// [`MapName::is_public`]). Either may be empty.
    ///
    /// # Panics
    /// Only on a broken internal invariant (an empty map entry, which the methods never
    /// create).
    #[must_use]
    pub fn encode_domains(&self) -> (Vec<u8>, Vec<u8>) {
        let (mut public_len, mut private_len) = (0, 0);
        for (name, writes) in &self.maps {
            match Domain::of(name) {
                Domain::Public => public_len += writes.encoded_len(name),
                Domain::Private => private_len += writes.encoded_len(name),
            }
        }
        // Sizes are of bytes already in memory, so they fit usize.
        let capacity = |len: u64| usize::try_from(len).expect("in-memory sizes fit usize");
        let mut public = Vec::with_capacity(capacity(public_len));
        let mut private = Vec::with_capacity(capacity(private_len));
        for (name, writes) in &self.maps {
            assert!(!writes.is_empty(), "write sets never hold an empty map: {name}");
            match Domain::of(name) {
                Domain::Public => writes.encode(name, &mut public),
                Domain::Private => writes.encode(name, &mut private),
            }
        }
        assert_eq!(public.len() as u64, public_len, "encoded_len is exact");
        assert_eq!(private.len() as u64, private_len, "encoded_len is exact");
        (public, private)
    }

    /// Decodes one domain. The domain of each map is not checked; use
    /// [`WriteSet::decode_domains`] for a whole ledger entry.
    ///
    /// # Errors
    /// [`Error::MalformedWriteSet`] for anything but Coco's canonical encoding: truncation,
    /// counts or lengths past the end, non-zero read fields, bad or unsorted map names,
    /// unsorted keys, a key both written and removed, an empty map.
    pub fn decode_domain(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes);
        decode_maps(&mut reader)
            .map_err(|kind| Error::MalformedWriteSet { offset: reader.offset(), kind })
    }

    /// Decodes the public and the (decrypted) private domain of one entry and merges them.
    ///
    /// # Errors
    /// As [`WriteSet::decode_domain`], plus [`Error::MapInWrongDomain`] if a map's name
    /// does not match the domain it was found in.
    pub fn decode_domains(public: &[u8], private: &[u8]) -> Result<Self> {
        let public = Self::decode_domain(public)?;
        let private = Self::decode_domain(private)?;
        for (name, expected) in public
            .maps
            .keys()
            .map(|name| (name, Domain::Public))
            .chain(private.maps.keys().map(|name| (name, Domain::Private)))
        {
            if Domain::of(name) != expected {
                return Err(Error::MapInWrongDomain(name.clone()));
            }
        }
        public.merge(private)
    }

    /// Joins two write sets over disjoint maps (the two domains of one entry).
    ///
    /// # Errors
    /// [`Error::MapInBothDomains`] if a map is in both.
    pub fn merge(mut self, other: Self) -> Result<Self> {
        if let Some(name) = other.maps.keys().find(|name| self.maps.contains_key(*name)) {
            return Err(Error::MapInBothDomains(name.clone()));
        }
        self.maps.extend(other.maps);
        Ok(self)
    }
}

fn decode_maps(reader: &mut Reader<'_>) -> Result<WriteSet, DecodeError> {
    let mut maps: BTreeMap<MapName, MapWrites> = BTreeMap::new();
    while !reader.is_empty() {
        let name = MapName::from_bytes(reader.bytes()?).map_err(DecodeError::BadMapName)?;
        if maps.last_key_value().is_some_and(|(last, _)| *last >= name) {
            return Err(DecodeError::MapNamesNotSorted);
        }
        let read_version = reader.u64()?;
        if read_version != 0 {
            return Err(DecodeError::ReadVersionNonZero(read_version));
        }
        let read_count = reader.u64()?;
        if read_count != 0 {
            return Err(DecodeError::ReadCountNonZero(read_count));
        }
        let writes = decode_map_writes(reader)?;
        maps.insert(name, writes);
    }
    Ok(WriteSet { maps })
}

fn decode_map_writes(reader: &mut Reader<'_>) -> Result<MapWrites, DecodeError> {
    let mut writes = MapWrites::default();
    // Each write is at least two length fields; each remove at least one.
    let write_count = reader.count(16)?;
    for _ in 0..write_count {
        let key = reader.bytes()?;
        let value = reader.bytes()?;
        if writes.writes.last_key_value().is_some_and(|(last, _)| last.as_slice() >= key) {
            return Err(DecodeError::KeysNotSorted);
        }
        writes.writes.insert(key.to_vec(), value.to_vec());
    }
    let remove_count = reader.count(8)?;
    for _ in 0..remove_count {
        let key = reader.bytes()?;
        if writes.removes.last().is_some_and(|last| last.as_slice() >= key) {
            return Err(DecodeError::KeysNotSorted);
        }
        if writes.writes.contains_key(key) {
            return Err(DecodeError::KeyWrittenAndRemoved);
        }
        writes.removes.insert(key.to_vec());
    }
    if writes.is_empty() {
        return Err(DecodeError::EmptyMap);
    }
    Ok(writes)
}

#[cfg(test)]
mod tests;
