//! Coco's own serialised KV snapshot (CCF's snapshot format is a later layer).
//!
//! Version 1, all integers `u64` little-endian:
//!
//! | field | meaning |
//! |---|---|
//! | `"COCOKVS\0"` | magic, 8 bytes |
//! | `format_version` | 1 |
//! | `seqno` | seqno of the last write set included |
//! | `map_count`, then maps in name order | |
//! | per map: `len`, name; `last_write`; `entry_count` (≥ 1) | |
//! | per entry in key order: `klen`, key; `version`; `vlen`, value | |
//! | SHA-256 of everything above, 32 bytes | detects corruption, not tampering |
//!
//! Restoring checks the checksum first, then the structure: strictly increasing names and
//! keys, `1 <= version <= last_write <= seqno`, no trailing bytes. A restored store has
//! no rollback history: its compacted point is the snapshot's seqno.

use coco_types::Seqno;
use imbl::OrdMap;

use crate::error::{DecodeError, Error, Result};
use crate::map_name::MapName;
use crate::reader::{Reader, put_bytes, put_u64};
use crate::state::{MapState, State, VersionedValue};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"COCOKVS\0";
const FORMAT_VERSION: u64 = 1;
const CHECKSUM_BYTES: usize = 32;

impl Store {
    /// Serialises the current state, its seqno and every key's version.
    #[must_use]
    pub fn serialise_snapshot(&self) -> Vec<u8> {
        let snapshot = self.snapshot();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, FORMAT_VERSION);
        put_u64(&mut out, snapshot.seqno.0);
        put_u64(&mut out, snapshot.state.maps.len() as u64);
        for (name, map) in &snapshot.state.maps {
            put_bytes(&mut out, name.as_str().as_bytes());
            put_u64(&mut out, map.last_write.0);
            put_u64(&mut out, map.entries.len() as u64);
            for (key, value) in &map.entries {
                put_bytes(&mut out, key);
                put_u64(&mut out, value.version.0);
                put_bytes(&mut out, &value.value);
            }
        }
        let checksum = coco_crypto::sha256(&out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    /// Rebuilds a store from [`Store::serialise_snapshot`]'s output.
    ///
    /// # Errors
    /// [`Error::MalformedSnapshot`] if the bytes are truncated, corrupted (checksum),
    /// of another format version, or structurally invalid.
    pub fn restore_snapshot(bytes: &[u8]) -> Result<Self> {
        let malformed = |offset: u64, kind| Error::MalformedSnapshot { offset, kind };
        let Some(body_len) = bytes.len().checked_sub(CHECKSUM_BYTES) else {
            let remaining = bytes.len() as u64;
            return Err(malformed(0, DecodeError::Truncated { needed: 32, remaining }));
        };
        let (body, checksum) = bytes.split_at(body_len);
        if coco_crypto::sha256(body).as_bytes() != checksum {
            return Err(malformed(body_len as u64, DecodeError::ChecksumMismatch));
        }
        let mut reader = Reader::new(body);
        let (state, seqno) =
            decode_body(&mut reader).map_err(|kind| malformed(reader.offset(), kind))?;
        let store = Self::at(state, seqno);
        store.check_invariants();
        Ok(store)
    }
}

fn decode_body(reader: &mut Reader<'_>) -> Result<(State, Seqno), DecodeError> {
    if reader.take(8)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = reader.u64()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let seqno = reader.u64()?;
    // A map takes at least name length, last write, entry count and one 24-byte entry.
    let map_count = reader.count(48)?;
    let mut state = State::default();
    let mut previous: Option<MapName> = None;
    for _ in 0..map_count {
        let name = MapName::from_bytes(reader.bytes()?).map_err(DecodeError::BadMapName)?;
        if previous.as_ref().is_some_and(|previous| *previous >= name) {
            return Err(DecodeError::MapNamesNotSorted);
        }
        let last_write = reader.u64()?;
        if last_write == 0 || last_write > seqno {
            return Err(DecodeError::LastWriteOutOfRange { last_write, seqno });
        }
        let entries = decode_entries(reader, last_write)?;
        state.maps.insert(name.clone(), MapState { entries, last_write: Seqno(last_write) });
        previous = Some(name);
    }
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes(reader.remaining() as u64));
    }
    Ok((state, Seqno(seqno)))
}

fn decode_entries(
    reader: &mut Reader<'_>,
    last_write: u64,
) -> Result<OrdMap<crate::state::Key, VersionedValue>, DecodeError> {
    let entry_count = reader.count(24)?;
    if entry_count == 0 {
        return Err(DecodeError::EmptyMap);
    }
    let mut entries = OrdMap::new();
    let mut previous: Option<&[u8]> = None;
    for _ in 0..entry_count {
        let key = reader.bytes()?;
        if previous.is_some_and(|previous| previous >= key) {
            return Err(DecodeError::KeysNotSorted);
        }
        let version = reader.u64()?;
        if version == 0 || version > last_write {
            return Err(DecodeError::VersionOutOfRange { version, last_write });
        }
        let value = reader.bytes()?;
        entries.insert(key.into(), VersionedValue { value: value.into(), version: Seqno(version) });
        previous = Some(key);
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

    fn same(left: &Store, right: &Store) -> bool {
        left.serialise_snapshot() == right.serialise_snapshot()
    }

    #[test]
    fn round_trips_seqno_values_and_versions() {
        let store = sample();
        let bytes = store.serialise_snapshot();
        let restored = Store::restore_snapshot(&bytes).unwrap();
        restored.check_invariants();
        assert_eq!(restored.current_seqno(), Seqno(5));
        assert_eq!(restored.compacted_seqno(), Seqno(5));
        let snapshot = restored.snapshot();
        let public = MapName::new("public:a").unwrap();
        assert_eq!(snapshot.get_versioned(&public, &[2]), Some((&[2_u8; 3][..], Seqno(3))));
        assert_eq!(snapshot.get(&public, &[1]), None);
        assert!(same(&store, &restored));
        let empty = Store::restore_snapshot(&Store::new().serialise_snapshot()).unwrap();
        assert_eq!(empty.current_seqno(), Seqno(0));
    }

    #[test]
    fn refuses_every_truncation_and_byte_flip() {
        let bytes = sample().serialise_snapshot();
        for len in 0..bytes.len() {
            assert!(Store::restore_snapshot(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for index in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[index] ^= 0x01;
            assert!(Store::restore_snapshot(&corrupt).is_err(), "flip at {index}");
        }
    }

    fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
        let checksum = coco_crypto::sha256(&body);
        body.extend_from_slice(checksum.as_bytes());
        body
    }

    #[test]
    fn refuses_structural_errors_behind_a_valid_checksum() {
        let header = |version: u64, seqno: u64, maps: u64| {
            let mut out = MAGIC.to_vec();
            put_u64(&mut out, version);
            put_u64(&mut out, seqno);
            put_u64(&mut out, maps);
            out
        };
        let kind = |bytes: Vec<u8>| match Store::restore_snapshot(&with_checksum(bytes)) {
            Err(Error::MalformedSnapshot { kind, .. }) => kind,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert_eq!(kind(header(2, 0, 0)), DecodeError::UnsupportedVersion(2));
        let mut bad_magic = header(1, 0, 0);
        bad_magic[0] = b'X';
        assert_eq!(kind(bad_magic), DecodeError::BadMagic);
        let mut trailing = header(1, 0, 0);
        trailing.push(0);
        assert_eq!(kind(trailing), DecodeError::TrailingBytes(1));
        let map = |last_write: u64, version: u64| {
            let mut out = header(1, 5, 1);
            put_bytes(&mut out, b"m");
            put_u64(&mut out, last_write);
            put_u64(&mut out, 1);
            put_bytes(&mut out, b"k");
            put_u64(&mut out, version);
            put_bytes(&mut out, b"v");
            out
        };
        assert!(Store::restore_snapshot(&with_checksum(map(5, 5))).is_ok());
        assert_eq!(kind(map(6, 5)), DecodeError::LastWriteOutOfRange { last_write: 6, seqno: 5 });
        assert_eq!(kind(map(4, 5)), DecodeError::VersionOutOfRange { version: 5, last_write: 4 });
        assert_eq!(kind(map(4, 0)), DecodeError::VersionOutOfRange { version: 0, last_write: 4 });
    }
}
