//! The maps of a KV snapshot in CCF's snapshot layout, one domain (public or private) at a
//! time: the ledger crate frames the two domains into a snapshot entry (public in the
//! clear, private encrypted) exactly as CCF's `ccf.ledger.Snapshot` reads them.
//!
//! Per map, in name order, all integers little-endian:
//!
//! | field | meaning |
//! |---|---|
//! | `u64 len`, name | the map's name |
//! | `u64` | the map's version: the seqno of its last write |
//! | `u64` | size in bytes of the entries that follow |
//! | per entry, in key order: `u64 klen`, key, zero padding to 8 bytes | |
//! | `u64 size`, `i64 version`, value, zero padding to 8 bytes (`size` = 8 + value) | |
//!
//! Restoring checks the structure, not just the lengths: each map in its domain, strictly
//! increasing names and keys, `1 <= version <= map version <= seqno`, zero padding, sizes
//! that add up, no trailing bytes. Integrity comes from the frame (the AES-GCM tag covers
//! both domains). A restored store has no rollback history: its compacted point is the
//! snapshot's seqno.

use coco_types::Seqno;
use imbl::OrdMap;

use crate::error::{DecodeError, Error, Result};
use crate::map_name::MapName;
use crate::reader::{Reader, put_bytes, put_u64};
use crate::snapshot::Snapshot;
use crate::state::{Key, MapState, State, VersionedValue};
use crate::store::Store;

/// Zero bytes that pad `len` to a multiple of 8.
fn padding(len: u64) -> u64 {
    len.wrapping_neg() % 8
}

fn put_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    let pad = usize::try_from(padding(bytes.len() as u64)).expect("padding is below 8");
    out.resize(out.len() + pad, 0);
}

/// Bytes of one map's entries in the snapshot layout.
fn entries_len(map: &MapState) -> u64 {
    map.entries
        .iter()
        .map(|(key, value)| {
            let (key, value) = (key.len() as u64, 8 + value.value.len() as u64);
            8 + key + padding(key) + 8 + value + padding(value)
        })
        .sum()
}

impl Snapshot {
    /// The public maps (`public == true`) or the private ones, in CCF's snapshot layout.
    #[must_use]
    pub fn encode_domain(&self, public: bool) -> Vec<u8> {
        // A capacity hint only: the bytes are in memory already, so the size fits.
        let len = usize::try_from(self.domain_len(public)).unwrap_or(0);
        let mut out = Vec::with_capacity(len);
        self.encode_domain_into(public, &mut out);
        out
    }

    /// Bytes of [`Snapshot::encode_domain`], computed without encoding: whole-state
    /// buffers are sized once rather than grown (growing one copied it several times
    /// over; measured as most of the snapshot thread's time under load).
    #[must_use]
    pub fn domain_len(&self, public: bool) -> u64 {
        self.domain(public)
            .map(|(name, map)| 24 + name.as_str().len() as u64 + entries_len(map))
            .sum()
    }

    /// Appends [`Snapshot::encode_domain`] to `out`.
    pub fn encode_domain_into(&self, public: bool, out: &mut Vec<u8>) {
        for (name, map) in self.domain(public) {
            put_bytes(out, name.as_str().as_bytes());
            put_u64(out, map.last_write.0);
            // The entries' size goes before them: written once they are, so the map is
            // walked once here (its size was already summed to size the buffer).
            put_u64(out, 0);
            let entries_at = out.len();
            for (key, value) in &map.entries {
                put_u64(out, key.len() as u64);
                put_padded(out, key);
                put_u64(out, 8 + value.value.len() as u64);
                out.extend_from_slice(&value.version.0.to_le_bytes());
                put_padded(out, &value.value);
            }
            let entries = (out.len() - entries_at) as u64;
            out[entries_at - 8..entries_at].copy_from_slice(&entries.to_le_bytes());
        }
    }

    fn domain(&self, public: bool) -> impl Iterator<Item = (&MapName, &MapState)> {
        self.state.maps.iter().filter(move |(name, _)| name.is_public() == public)
    }
}

impl Store {
    /// Rebuilds the store a snapshot at `seqno` describes, from its two domains in the
    /// layout of [`Snapshot::encode_domain`].
    ///
    /// # Errors
    /// [`Error::MalformedSnapshot`] naming the domain offset of the first problem.
    pub fn restore_snapshot(seqno: Seqno, public: &[u8], private: &[u8]) -> Result<Self> {
        let mut state = State::default();
        for (domain, is_public) in [(public, true), (private, false)] {
            let mut reader = Reader::new(domain);
            decode_domain(&mut reader, is_public, seqno.0, &mut state)
                .map_err(|kind| Error::MalformedSnapshot { offset: reader.offset(), kind })?;
        }
        let store = Self::at(state, seqno);
        store.check_invariants();
        Ok(store)
    }

    /// The current state in [`Store::restore_snapshot`]'s input form: the seqno and the
    /// public and private domains.
    #[must_use]
    pub fn encode_snapshot(&self) -> (Seqno, Vec<u8>, Vec<u8>) {
        let snapshot = self.snapshot();
        (snapshot.seqno, snapshot.encode_domain(true), snapshot.encode_domain(false))
    }
}

fn decode_domain(
    reader: &mut Reader<'_>,
    public: bool,
    seqno: u64,
    state: &mut State,
) -> Result<(), DecodeError> {
    let mut previous: Option<MapName> = None;
    while !reader.is_empty() {
        let name = MapName::from_bytes(reader.bytes()?).map_err(DecodeError::BadMapName)?;
        if name.is_public() != public {
            return Err(DecodeError::BadMapName("a map in the wrong domain"));
        }
        if previous.as_ref().is_some_and(|previous| *previous >= name) {
            return Err(DecodeError::MapNamesNotSorted);
        }
        let last_write = reader.u64()?;
        if last_write == 0 || last_write > seqno {
            return Err(DecodeError::LastWriteOutOfRange { last_write, seqno });
        }
        let size = reader.u64()?;
        let mut entries_reader = Reader::new(reader.take(size)?);
        let entries = decode_entries(&mut entries_reader, last_write)?;
        state.maps.insert(name.clone(), MapState { entries, last_write: Seqno(last_write) });
        previous = Some(name);
    }
    Ok(())
}

fn take_padded<'a>(reader: &mut Reader<'a>, len: u64) -> Result<&'a [u8], DecodeError> {
    let bytes = reader.take(len)?;
    if reader.take(padding(len))?.iter().any(|byte| *byte != 0) {
        return Err(DecodeError::NonZeroPadding);
    }
    Ok(bytes)
}

fn decode_entries(
    reader: &mut Reader<'_>,
    last_write: u64,
) -> Result<OrdMap<Key, VersionedValue>, DecodeError> {
    let mut entries = OrdMap::new();
    let mut previous: Option<&[u8]> = None;
    while !reader.is_empty() {
        let key_len = reader.u64()?;
        let key = take_padded(reader, key_len)?;
        if previous.is_some_and(|previous| previous >= key) {
            return Err(DecodeError::KeysNotSorted);
        }
        let size = reader.u64()?;
        if size < 8 {
            return Err(DecodeError::Truncated { needed: 8, remaining: size });
        }
        let versioned = take_padded(reader, size)?;
        let (version, value) = versioned.split_at(8);
        let version = u64::from_le_bytes(version.try_into().expect("split at 8"));
        if version == 0 || version > last_write {
            return Err(DecodeError::VersionOutOfRange { version, last_write });
        }
        entries.insert(key.into(), VersionedValue { value: value.into(), version: Seqno(version) });
        previous = Some(key);
    }
    if entries.is_empty() {
        return Err(DecodeError::EmptyMap);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn sample() -> Store {
        let mut store = Store::new();
        let public = MapName::new("public:a").unwrap();
        let private = MapName::new("b").unwrap();
        for round in 0_u8..5 {
            let mut tx = store.begin();
            tx.put(&public, vec![round], vec![round; 3]);
            tx.put(&private, vec![0], vec![round]);
            if round == 3 {
                tx.remove(&public, vec![1]);
            }
            store.commit(tx).unwrap();
        }
        store
    }

    fn restore(store: &Store) -> Result<Store> {
        let (seqno, public, private) = store.encode_snapshot();
        Store::restore_snapshot(seqno, &public, &private)
    }

    #[test]
    fn round_trips_seqno_values_and_versions() {
        let store = sample();
        let restored = restore(&store).unwrap();
        restored.check_invariants();
        assert_eq!(restored.current_seqno(), Seqno(5));
        assert_eq!(restored.compacted_seqno(), Seqno(5));
        let snapshot = restored.snapshot();
        let public = MapName::new("public:a").unwrap();
        assert_eq!(snapshot.get_versioned(&public, &[2]), Some((&[2_u8; 3][..], Seqno(3))));
        assert_eq!(snapshot.get(&public, &[1]), None);
        assert_eq!(restored.encode_snapshot(), store.encode_snapshot());
        let empty = restore(&Store::new()).unwrap();
        assert_eq!(empty.current_seqno(), Seqno(0));
    }

    #[test]
    fn announced_lengths_match_the_encoding() {
        let snapshot = sample().snapshot();
        for public in [true, false] {
            let encoded = snapshot.encode_domain(public);
            assert_eq!(snapshot.domain_len(public), encoded.len() as u64, "public: {public}");
            let mut appended = b"head".to_vec();
            snapshot.encode_domain_into(public, &mut appended);
            assert_eq!(appended[4..], encoded[..]);
        }
    }

    #[test]
    fn domains_hold_only_their_own_maps() {
        let (seqno, public, private) = sample().encode_snapshot();
        assert!(Store::restore_snapshot(seqno, &private, &public).is_err());
        assert!(Store::restore_snapshot(seqno, &public, &[]).is_ok());
    }

    #[test]
    fn refuses_every_truncation_and_padding_flip() {
        let (seqno, public, private) = sample().encode_snapshot();
        for len in 0..public.len() {
            let result = Store::restore_snapshot(seqno, &public[..len], &private);
            // A cut exactly between two maps is a valid (smaller) domain.
            if result.is_ok() {
                let (_, whole, _) =
                    Store::restore_snapshot(seqno, &public[..len], &[]).unwrap().encode_snapshot();
                assert_eq!(whole, public[..len], "truncated to {len}");
            }
        }
        for len in 0..private.len() {
            let result = Store::restore_snapshot(seqno, &public, &private[..len]);
            assert!(result.is_err() || len == 0, "truncated to {len}");
        }
        // Key `[0]` of map `b` is padded with 7 zero bytes after its length.
        let mut bad = private;
        let pad = 8 + 1 + 8 + 8 + 8 + 1;
        bad[pad] = 1;
        let kind = match Store::restore_snapshot(seqno, &public, &bad) {
            Err(Error::MalformedSnapshot { kind, .. }) => kind,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert_eq!(kind, DecodeError::NonZeroPadding);
    }

    #[test]
    fn refuses_versions_outside_the_map_and_the_snapshot() {
        let map = |last_write: u64, version: u64| {
            let mut entries = Vec::new();
            put_u64(&mut entries, 1);
            put_padded(&mut entries, b"k");
            put_u64(&mut entries, 9);
            let mut versioned = version.to_le_bytes().to_vec();
            versioned.push(b'v');
            put_padded(&mut entries, &versioned);
            let mut out = Vec::new();
            put_bytes(&mut out, b"m");
            put_u64(&mut out, last_write);
            put_u64(&mut out, entries.len() as u64);
            out.extend_from_slice(&entries);
            out
        };
        let kind = |bytes: Vec<u8>| match Store::restore_snapshot(Seqno(5), &[], &bytes) {
            Err(Error::MalformedSnapshot { kind, .. }) => kind,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert!(Store::restore_snapshot(Seqno(5), &[], &map(5, 5)).is_ok());
        assert_eq!(kind(map(6, 5)), DecodeError::LastWriteOutOfRange { last_write: 6, seqno: 5 });
        assert_eq!(kind(map(4, 5)), DecodeError::VersionOutOfRange { version: 5, last_write: 4 });
        assert_eq!(kind(map(4, 0)), DecodeError::VersionOutOfRange { version: 0, last_write: 4 });
    }
}
