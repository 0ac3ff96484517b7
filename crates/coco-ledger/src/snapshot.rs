//! Snapshots in CCF's format: one entry (the ledger's framing, entry type 1, the IV's
//! snapshot bit set) holding the whole KV state at a signature, so a node can start there
//! instead of replaying the ledger from seqno 1, and `ccf.ledger.Snapshot` can read it.
//!
//! Public domain: type 1 (u8), seqno (i64), max conflict version (i64) = 0, the hash at
//! the snapshot (`u64 len` + bytes: the Merkle leaf of the snapshot's own signature), the
//! view history (`u64 len` in bytes + u64 per view: the first seqno of that view), then
//! the public maps. The private maps follow, AES-256-GCM sealed like an entry's. No claims
//! or commit evidence digests: a snapshot is not a transaction. A committed snapshot file
//! has the receipt of its evidence transaction appended (see [`crate::SnapshotDir`]).

use coco_crypto::{AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, Aes256GcmKey};
use coco_types::{Seqno, View};

use crate::entry::{ENTRY_FORMAT_VERSION, ENTRY_HEADER_BYTES, ENTRY_SIZE_MAX, decode_header};
use crate::{Error, Result};

/// Public-domain entry type of a snapshot (CCF's `Snapshot`).
pub const ENTRY_TYPE_SNAPSHOT: u8 = 1;
/// Top bit of the IV's view word: set for snapshots.
const IV_SNAPSHOT_BIT: u32 = 0x8000_0000;
const TAG_AT: usize = ENTRY_HEADER_BYTES;
const IV_AT: usize = TAG_AT + AES_GCM_TAG_BYTES;
const PUBLIC_LEN_AT: usize = IV_AT + AES_GCM_IV_BYTES;
const PUBLIC_AT: usize = PUBLIC_LEN_AT + 8;
/// Type, seqno and max conflict version.
const FIXED_PUBLIC_BYTES: usize = 1 + 8 + 8;

/// What a snapshot holds: its header fields and the KV's maps.
#[derive(Clone, Copy)]
pub struct SnapshotParts<'a> {
    /// The view of the snapshot's signature.
    pub view: View,
    /// The seqno of the snapshot's signature: the state after applying it.
    pub seqno: Seqno,
    /// The Merkle leaf of the entry at `seqno`.
    pub hash_at_snapshot: &'a [u8],
    /// CCF's view history: entry `v` is the first seqno of view `v`.
    pub view_history: &'a [u64],
    /// Both domains' maps in CCF's snapshot layout (the private ones are sealed by
    /// [`encode_snapshot`]).
    pub maps: &'a dyn SnapshotMaps,
}

/// The maps of a snapshot, written straight into the snapshot's buffer: a snapshot is
/// the whole state, and staging each domain in a buffer of its own copied it twice more.
pub trait SnapshotMaps {
    /// Bytes of the public (`public == true`) or the private maps in CCF's layout.
    fn domain_len(&self, public: bool) -> u64;
    /// Appends exactly [`SnapshotMaps::domain_len`] bytes: that domain's maps.
    fn write_domain(&self, public: bool, out: &mut Vec<u8>);
}

/// Domains already serialised.
#[derive(Clone, Copy, Debug)]
pub struct EncodedMaps<'a> {
    /// The public maps in CCF's snapshot layout.
    pub public: &'a [u8],
    /// The private maps in CCF's snapshot layout.
    pub private: &'a [u8],
}

impl SnapshotMaps for EncodedMaps<'_> {
    fn domain_len(&self, public: bool) -> u64 {
        (if public { self.public } else { self.private }).len() as u64
    }

    fn write_domain(&self, public: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(if public { self.public } else { self.private });
    }
}

/// The IV of a snapshot: seqno (u64 LE) ‖ view (u32 LE) with the top bit set.
fn snapshot_iv(seqno: Seqno, view: View) -> Result<[u8; AES_GCM_IV_BYTES]> {
    let view32 = u32::try_from(view.0)
        .ok()
        .filter(|view| view & IV_SNAPSHOT_BIT == 0)
        .ok_or(Error::OutOfRange { field: "view", value: view.0 })?;
    let mut iv = [0u8; AES_GCM_IV_BYTES];
    iv[..8].copy_from_slice(&seqno.0.to_le_bytes());
    iv[8..].copy_from_slice(&(view32 | IV_SNAPSHOT_BIT).to_le_bytes());
    Ok(iv)
}

/// Serialises a snapshot, sealing the private maps under `key` with the public domain as
/// AAD. Deterministic: the same state, secret and TxId give the same bytes on every node.
///
/// # Errors
/// [`Error::OutOfRange`] for a view over 31 bits, a seqno over `i64::MAX` or a snapshot
/// over [`ENTRY_SIZE_MAX`]; [`Error::Crypto`] if sealing fails.
pub fn encode_snapshot(parts: &SnapshotParts<'_>, key: &Aes256GcmKey) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_snapshot_into(parts, key, &mut out)?;
    Ok(out)
}

/// [`encode_snapshot`] into `out` (cleared first), so a writer of many snapshots reuses
/// one buffer: fresh memory for a whole-state buffer is paid for again in page faults
/// and zeroed pages on every snapshot.
///
/// # Errors
/// As [`encode_snapshot`].
///
/// # Panics
/// If `parts.maps` writes another number of bytes than it announced.
pub fn encode_snapshot_into(
    parts: &SnapshotParts<'_>,
    key: &Aes256GcmKey,
    out: &mut Vec<u8>,
) -> Result<()> {
    let seqno = i64::try_from(parts.seqno.0)
        .map_err(|_| Error::OutOfRange { field: "seqno", value: parts.seqno.0 })?;
    let iv = snapshot_iv(parts.seqno, parts.view)?;
    let (public_maps, private_maps) = (parts.maps.domain_len(true), parts.maps.domain_len(false));
    let header = (FIXED_PUBLIC_BYTES + 16 + parts.hash_at_snapshot.len()) as u64
        + parts.view_history.len() as u64 * 8;
    let public_len = header + public_maps;
    let size = (PUBLIC_AT - ENTRY_HEADER_BYTES) as u64 + public_len + private_maps;
    if size > ENTRY_SIZE_MAX {
        return Err(Error::OutOfRange { field: "snapshot size", value: size });
    }
    let total = usize::try_from(size).expect("below ENTRY_SIZE_MAX") + ENTRY_HEADER_BYTES;
    out.clear();
    out.reserve(total);
    out.push(ENTRY_FORMAT_VERSION);
    out.push(0);
    out.extend_from_slice(&size.to_le_bytes()[..6]);
    out.extend_from_slice(&[0u8; AES_GCM_TAG_BYTES]);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&public_len.to_le_bytes());
    out.push(ENTRY_TYPE_SNAPSHOT);
    out.extend_from_slice(&seqno.to_le_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(&(parts.hash_at_snapshot.len() as u64).to_le_bytes());
    out.extend_from_slice(parts.hash_at_snapshot);
    out.extend_from_slice(&(parts.view_history.len() as u64 * 8).to_le_bytes());
    for first in parts.view_history {
        out.extend_from_slice(&first.to_le_bytes());
    }
    parts.maps.write_domain(true, out);
    let private_at = out.len();
    assert_eq!(private_at as u64, PUBLIC_AT as u64 + public_len, "public maps as announced");
    parts.maps.write_domain(false, out);
    assert_eq!(out.len(), total, "private maps as announced");
    let (head, private) = out.split_at_mut(private_at);
    let tag = key.seal_in_place(iv, &head[PUBLIC_AT..], private)?;
    out[TAG_AT..IV_AT].copy_from_slice(&tag);
    Ok(())
}

/// A snapshot read back, borrowing its bytes. Decoding checks the framing; the tag (over
/// both domains) is checked by [`DecodedSnapshot::decrypt_private`].
#[derive(Clone, Debug)]
pub struct DecodedSnapshot<'a> {
    /// The view of the snapshot's signature (from the IV).
    pub view: View,
    /// The snapshot's seqno.
    pub seqno: Seqno,
    /// The Merkle leaf of the entry at the snapshot's seqno.
    pub hash_at_snapshot: &'a [u8],
    /// CCF's view history (entry `v` = first seqno of view `v`).
    pub view_history: Vec<u64>,
    /// The public maps.
    pub public_maps: &'a [u8],
    public_domain: &'a [u8],
    private_ciphertext: &'a [u8],
    iv: [u8; AES_GCM_IV_BYTES],
    tag: [u8; AES_GCM_TAG_BYTES],
}

fn malformed(offset: usize, reason: &'static str) -> Error {
    Error::MalformedSnapshot { offset: offset as u64, reason }
}

/// Splits `n` bytes off the front of `rest`, whose first byte is at `offset`.
fn take<'a>(rest: &mut &'a [u8], n: u64, offset: usize, what: &'static str) -> Result<&'a [u8]> {
    let n = usize::try_from(n).map_err(|_| malformed(offset, what))?;
    if n > rest.len() {
        return Err(malformed(offset, what));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_u64(rest: &mut &[u8], offset: usize, what: &'static str) -> Result<u64> {
    let bytes = take(rest, 8, offset, what)?;
    Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
}

/// Decodes a snapshot entry: exactly its bytes (a committed file's receipt removed, see
/// [`crate::split_committed_snapshot`]).
///
/// # Errors
/// [`Error::MalformedSnapshot`] (or a framing error) naming the offset of the problem.
///
/// # Panics
/// Never: lengths are checked before the fixed-size fields are read.
pub fn decode_snapshot(bytes: &[u8]) -> Result<DecodedSnapshot<'_>> {
    let header = decode_header(bytes)?;
    if header.total_len() != bytes.len() as u64 || bytes.len() < PUBLIC_AT {
        return Err(malformed(2, "size does not match the bytes"));
    }
    let iv: [u8; AES_GCM_IV_BYTES] = bytes[IV_AT..PUBLIC_LEN_AT].try_into().expect("12 bytes");
    let tag: [u8; AES_GCM_TAG_BYTES] = bytes[TAG_AT..IV_AT].try_into().expect("16 bytes");
    let view_word = u32::from_le_bytes(iv[8..].try_into().expect("4 bytes"));
    if view_word & IV_SNAPSHOT_BIT == 0 {
        return Err(malformed(IV_AT + 11, "the IV's snapshot bit is clear"));
    }
    let mut rest = &bytes[PUBLIC_LEN_AT..];
    let public_len = take_u64(&mut rest, PUBLIC_LEN_AT, "public domain length")?;
    let public_domain = take(&mut rest, public_len, PUBLIC_LEN_AT, "public domain length")?;
    let private_ciphertext = rest;
    let mut public = public_domain;
    let fixed = take(&mut public, FIXED_PUBLIC_BYTES as u64, PUBLIC_AT, "public header")?;
    if fixed[0] != ENTRY_TYPE_SNAPSHOT {
        return Err(Error::UnsupportedEntryType { offset: PUBLIC_AT as u64, entry_type: fixed[0] });
    }
    let seqno = u64::from_le_bytes(fixed[1..9].try_into().expect("8 bytes"));
    let iv_seqno = u64::from_le_bytes(iv[..8].try_into().expect("8 bytes"));
    if seqno != iv_seqno || seqno > i64::MAX as u64 {
        return Err(malformed(PUBLIC_AT + 1, "public seqno differs from the IV's"));
    }
    let at = PUBLIC_AT + FIXED_PUBLIC_BYTES;
    let hash_len = take_u64(&mut public, at, "hash length")?;
    let hash_at_snapshot = take(&mut public, hash_len, at + 8, "hash")?;
    let at = at + 8 + hash_at_snapshot.len();
    let history_len = take_u64(&mut public, at, "view history length")?;
    if history_len % 8 != 0 {
        return Err(malformed(at, "view history length is not a multiple of 8"));
    }
    let history = take(&mut public, history_len, at + 8, "view history")?;
    let view_history = history
        .chunks_exact(8)
        .map(|first| u64::from_le_bytes(first.try_into().expect("8 bytes")))
        .collect();
    Ok(DecodedSnapshot {
        view: View(u64::from(view_word & !IV_SNAPSHOT_BIT)),
        seqno: Seqno(seqno),
        hash_at_snapshot,
        view_history,
        public_maps: public,
        public_domain,
        private_ciphertext,
        iv,
        tag,
    })
}

impl DecodedSnapshot<'_> {
    /// Decrypts the private maps, checking the tag over them and the public domain.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the key is wrong or any authenticated byte was altered.
    pub fn decrypt_private(&self, key: &Aes256GcmKey) -> Result<Vec<u8>> {
        let mut plain = self.private_ciphertext.to_vec();
        key.open_in_place(self.iv, self.public_domain, &mut plain, &self.tag)
            .map_err(|_| Error::Decrypt { seqno: self.seqno.0 })?;
        Ok(plain)
    }
}

/// Splits a committed snapshot file into the snapshot entry and the receipt after it
/// (`ccf.ledger.Snapshot` finds the receipt the same way: right after the entry).
///
/// # Errors
/// A framing error if the header is bad or declares more bytes than the file has;
/// [`Error::MalformedSnapshot`] if no receipt follows.
pub fn split_committed_snapshot(file: &[u8]) -> Result<(&[u8], &[u8])> {
    let header = decode_header(file)?;
    let len = usize::try_from(header.total_len()).map_err(|_| malformed(2, "size"))?;
    if len >= file.len() {
        return Err(malformed(len, "no receipt after the snapshot"));
    }
    Ok(file.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Aes256GcmKey {
        Aes256GcmKey::new(&[7u8; 32]).unwrap()
    }

    fn sample() -> Vec<u8> {
        let parts = SnapshotParts {
            view: View(3),
            seqno: Seqno(42),
            hash_at_snapshot: &[9u8; 32],
            view_history: &[1, 1, 1, 20],
            maps: &EncodedMaps { public: b"public maps", private: b"private maps" },
        };
        encode_snapshot(&parts, &key()).unwrap()
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let bytes = sample();
        assert_eq!(bytes, sample());
        let snapshot = decode_snapshot(&bytes).unwrap();
        assert_eq!((snapshot.view, snapshot.seqno), (View(3), Seqno(42)));
        assert_eq!(snapshot.hash_at_snapshot, &[9u8; 32]);
        assert_eq!(snapshot.view_history, vec![1, 1, 1, 20]);
        assert_eq!(snapshot.public_maps, b"public maps");
        assert_eq!(snapshot.decrypt_private(&key()).unwrap(), b"private maps");
        let wrong = Aes256GcmKey::new(&[8u8; 32]).unwrap();
        assert!(matches!(snapshot.decrypt_private(&wrong), Err(Error::Decrypt { seqno: 42 })));
    }

    #[test]
    fn truncations_and_altered_bytes_never_decode_to_a_valid_snapshot() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for index in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[index] ^= 0x40;
            let verified = decode_snapshot(&altered).and_then(|s| s.decrypt_private(&key()));
            assert!(verified.is_err(), "a flip at {index} went unnoticed");
        }
    }

    #[test]
    fn a_committed_file_splits_at_the_end_of_the_entry() {
        let bytes = sample();
        let mut file = bytes.clone();
        file.extend_from_slice(b"\xd2receipt");
        let (snapshot, receipt) = split_committed_snapshot(&file).unwrap();
        assert_eq!((snapshot, receipt), (&bytes[..], &b"\xd2receipt"[..]));
        assert!(split_committed_snapshot(&bytes).is_err());
    }
}
