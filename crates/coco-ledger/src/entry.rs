//! One ledger entry in CCF's entry format v1: framing, public domain header, and the
//! AES-256-GCM private domain. The byte layout is in `docs/design/ledger-format.md`.

use coco_crypto::{AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, Aes256GcmKey, sha256};
use coco_types::{Digest, Seqno, View};

use crate::{Error, Result};

/// The only entry-format version CCF has written; readers refuse any other.
pub const ENTRY_FORMAT_VERSION: u8 = 1;
/// Header flag: the chunk must end after this entry (which must be a signature).
pub const FORCE_LEDGER_CHUNK_AFTER: u8 = 0x01;
/// Header flag: the chunk must end before this entry (the previous one is a signature).
pub const FORCE_LEDGER_CHUNK_BEFORE: u8 = 0x02;
/// All flag bits a valid header may carry.
pub const ENTRY_FLAGS_MASK: u8 = FORCE_LEDGER_CHUNK_AFTER | FORCE_LEDGER_CHUNK_BEFORE;
/// Public-domain entry type "write set with commit evidence and claims", the only type
/// Coco writes (CCF's `WriteSetWithCommitEvidenceAndClaims`).
pub const ENTRY_TYPE_WRITE_SET: u8 = 4;

/// Bytes of the entry header: version, flags, 48-bit size.
pub const ENTRY_HEADER_BYTES: usize = 8;
/// Smallest value of the header's size field: GCM tag + IV + public-domain length.
pub const ENTRY_SIZE_MIN: u64 = 36;
/// Largest entry Coco writes (size field): CCF's verifier refuses entries over 1 GiB.
pub const ENTRY_SIZE_MAX: u64 = 1 << 30;
/// Bytes of the fixed part of the public domain: type, seqno, claims digest, commit
/// evidence digest, max conflict version. The per-map bytes follow.
pub const PUBLIC_HEADER_BYTES: usize = 1 + 8 + 32 + 32 + 8;

const TAG_AT: usize = ENTRY_HEADER_BYTES;
const IV_AT: usize = TAG_AT + AES_GCM_TAG_BYTES;
const PUBLIC_LEN_AT: usize = IV_AT + AES_GCM_IV_BYTES;
const PUBLIC_AT: usize = PUBLIC_LEN_AT + 8;
/// Top bit of the last IV byte: set for snapshots, clear for ledger entries.
const IV_SNAPSHOT_BIT: u32 = 0x8000_0000;

const _: () = assert!((PUBLIC_AT - ENTRY_HEADER_BYTES) as u64 == ENTRY_SIZE_MIN);
const _: () = assert!(PUBLIC_HEADER_BYTES == 81);
const _: () = assert!(ENTRY_SIZE_MAX < 1 << 48);

/// What the KV layer hands the ledger for one transaction: ids, digests and the two
/// already-serialised per-map domains, which this crate treats as opaque bytes.
#[derive(Clone, Copy, Debug)]
pub struct EntryParts<'a> {
    /// View in which the transaction was ordered.
    pub view: View,
    /// The transaction's seqno.
    pub seqno: Seqno,
    /// Header flags, a subset of [`ENTRY_FLAGS_MASK`].
    pub flags: u8,
    /// Application claims digest; [`Digest::ZERO`] when the app set none.
    pub claims_digest: Digest,
    /// SHA-256 of the commit evidence string (see [`crate::CommitEvidenceKey`]).
    pub commit_evidence_digest: Digest,
    /// Serialised public maps (may be empty).
    pub public_maps: &'a [u8],
    /// Serialised private maps, encrypted by [`encode_entry`] (may be empty).
    pub private_maps: &'a [u8],
}

/// The deterministic AES-GCM IV of a ledger entry: seqno (u64 LE) ‖ view (u32 LE).
///
/// # Panics
/// If `view` exceeds [`View::MAX`] (31 bits): callers check it first.
#[must_use]
pub fn entry_iv(seqno: Seqno, view: View) -> [u8; AES_GCM_IV_BYTES] {
    assert!(view <= View::MAX, "view {view} exceeds 31 bits");
    let view = u32::try_from(view.0).expect("views up to View::MAX fit 31 bits");
    let mut iv = [0u8; AES_GCM_IV_BYTES];
    iv[..8].copy_from_slice(&seqno.0.to_le_bytes());
    iv[8..].copy_from_slice(&view.to_le_bytes());
    iv
}

/// Serialises one entry, encrypting `private_maps` under `key` with the public domain as
/// AAD. The private domain is sealed even when empty, so the tag always authenticates
/// the public domain. Allocates once, with the exact size, and encrypts in place.
///
/// # Errors
/// [`Error::OutOfRange`] if the view exceeds 31 bits, the seqno exceeds `i64::MAX`, the
/// flags have unknown bits or the entry exceeds [`ENTRY_SIZE_MAX`]; [`Error::Crypto`] if
/// sealing fails.
///
/// # Panics
/// Never: the length assertions state the single-allocation invariant.
pub fn encode_entry(parts: &EntryParts<'_>, key: &Aes256GcmKey) -> Result<Vec<u8>> {
    if parts.view > View::MAX {
        return Err(Error::OutOfRange { field: "view", value: parts.view.0 });
    }
    let seqno = i64::try_from(parts.seqno.0)
        .map_err(|_| Error::OutOfRange { field: "seqno", value: parts.seqno.0 })?;
    if parts.flags & !ENTRY_FLAGS_MASK != 0 {
        return Err(Error::OutOfRange { field: "flags", value: u64::from(parts.flags) });
    }
    let public_len = PUBLIC_HEADER_BYTES + parts.public_maps.len();
    let size = (PUBLIC_AT - ENTRY_HEADER_BYTES) + public_len + parts.private_maps.len();
    let size_u64 = size as u64;
    if size_u64 > ENTRY_SIZE_MAX {
        return Err(Error::OutOfRange { field: "entry size", value: size_u64 });
    }
    let total = ENTRY_HEADER_BYTES + size;
    let iv = entry_iv(parts.seqno, parts.view);

    let mut out = Vec::with_capacity(total);
    out.push(ENTRY_FORMAT_VERSION);
    out.push(parts.flags);
    out.extend_from_slice(&size_u64.to_le_bytes()[..6]);
    out.extend_from_slice(&[0u8; AES_GCM_TAG_BYTES]);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&(public_len as u64).to_le_bytes());
    out.push(ENTRY_TYPE_WRITE_SET);
    out.extend_from_slice(&seqno.to_le_bytes());
    out.extend_from_slice(parts.claims_digest.as_bytes());
    out.extend_from_slice(parts.commit_evidence_digest.as_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(parts.public_maps);
    out.extend_from_slice(parts.private_maps);
    assert_eq!(out.len(), total, "entry length");
    assert_eq!(out.capacity(), total, "entry allocated once");

    let (head, private) = out.split_at_mut(PUBLIC_AT + public_len);
    let tag = key.seal_in_place(iv, &head[PUBLIC_AT..], private)?;
    out[TAG_AT..IV_AT].copy_from_slice(&tag);
    Ok(out)
}

/// SHA-256 of the raw entry bytes including the 8-byte header: the first term of the
/// entry's Merkle leaf (CCF's `write_set_digest`).
#[must_use]
pub fn write_set_digest(raw_entry: &[u8]) -> Digest {
    sha256(raw_entry)
}

/// The 8-byte header of an entry, checked for version, flags and minimum size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    /// Header flags.
    pub(crate) flags: u8,
    /// Bytes after the header.
    pub(crate) size: u64,
}

impl EntryHeader {
    /// Entry length including the header.
    pub(crate) fn total_len(self) -> u64 {
        self.size + ENTRY_HEADER_BYTES as u64
    }
}

/// Reads the raw (version, flags, size) of a header without validating it.
pub(crate) fn raw_header(bytes: &[u8]) -> Option<(u8, u8, u64)> {
    let header: &[u8; ENTRY_HEADER_BYTES] = bytes.get(..ENTRY_HEADER_BYTES)?.try_into().ok()?;
    let mut size = [0u8; 8];
    size[..6].copy_from_slice(&header[2..]);
    Some((header[0], header[1], u64::from_le_bytes(size)))
}

/// Parses and validates the header at the start of `bytes`.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<EntryHeader> {
    let (version, flags, size) = raw_header(bytes).ok_or(Error::Truncated {
        offset: 0,
        needed: ENTRY_HEADER_BYTES as u64,
        available: bytes.len() as u64,
    })?;
    if version != ENTRY_FORMAT_VERSION {
        return Err(Error::BadVersion { offset: 0, version });
    }
    if flags & !ENTRY_FLAGS_MASK != 0 {
        return Err(Error::BadFlags { offset: 1, flags });
    }
    if size < ENTRY_SIZE_MIN {
        return Err(Error::EntryTooSmall { offset: 2, size });
    }
    Ok(EntryHeader { flags, size })
}

/// A decoded entry borrowing the bytes it came from. Decoding checks the framing only;
/// [`Entry::decrypt_private`] checks the tag, which covers the public domain too.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    flags: u8,
    view: View,
    seqno: Seqno,
    is_snapshot: bool,
    entry_type: u8,
    claims_digest: Digest,
    commit_evidence_digest: Digest,
    tag: [u8; AES_GCM_TAG_BYTES],
    iv: [u8; AES_GCM_IV_BYTES],
    public_domain: &'a [u8],
    private_ciphertext: &'a [u8],
}

/// Reads `N` bytes at `at`; callers have checked the length.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("caller checked the length")
}

/// Decodes one whole entry (exactly one: trailing bytes are an error) without copying.
///
/// # Errors
/// A typed error with the byte offset, relative to the entry, for: truncation, a bad
/// version or flags, a size below 36 or different from the bytes given, a public domain
/// longer than the entry, an unsupported entry type, or public seqno ≠ IV seqno.
///
/// # Panics
/// Never: every length is checked before the bytes are sliced.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry<'_>> {
    let header = decode_header(bytes)?;
    let actual = (bytes.len() - ENTRY_HEADER_BYTES) as u64;
    if header.size > actual {
        return Err(Error::Truncated { offset: 8, needed: header.size, available: actual });
    }
    if header.size < actual {
        return Err(Error::SizeMismatch {
            offset: header.total_len(),
            declared: header.size,
            actual,
        });
    }
    let public_len = u64::from_le_bytes(array(bytes, PUBLIC_LEN_AT));
    let available = (bytes.len() - PUBLIC_AT) as u64;
    if public_len > available {
        return Err(Error::PublicDomainTooLong {
            offset: PUBLIC_LEN_AT as u64,
            length: public_len,
            available,
        });
    }
    let public_len = usize::try_from(public_len).expect("public length is below the slice length");
    if public_len < PUBLIC_HEADER_BYTES {
        return Err(Error::Truncated {
            offset: PUBLIC_AT as u64,
            needed: PUBLIC_HEADER_BYTES as u64,
            available: public_len as u64,
        });
    }
    let public_domain = &bytes[PUBLIC_AT..PUBLIC_AT + public_len];
    let entry_type = public_domain[0];
    if entry_type != ENTRY_TYPE_WRITE_SET {
        return Err(Error::UnsupportedEntryType { offset: PUBLIC_AT as u64, entry_type });
    }
    let iv: [u8; AES_GCM_IV_BYTES] = array(bytes, IV_AT);
    let iv_seqno = u64::from_le_bytes(array(&iv, 0));
    let iv_view = u32::from_le_bytes(array(&iv, 8));
    let public_seqno = u64::from_le_bytes(array(public_domain, 1));
    if public_seqno != iv_seqno {
        return Err(Error::SeqnoMismatch { offset: PUBLIC_AT as u64 + 1, iv_seqno, public_seqno });
    }
    Ok(Entry {
        flags: header.flags,
        view: View(u64::from(iv_view & !IV_SNAPSHOT_BIT)),
        seqno: Seqno(iv_seqno),
        is_snapshot: iv_view & IV_SNAPSHOT_BIT != 0,
        entry_type,
        claims_digest: Digest(array(public_domain, 9)),
        commit_evidence_digest: Digest(array(public_domain, 41)),
        tag: array(bytes, TAG_AT),
        iv,
        public_domain,
        private_ciphertext: &bytes[PUBLIC_AT + public_len..],
    })
}

impl<'a> Entry<'a> {
    /// Header flags ([`FORCE_LEDGER_CHUNK_AFTER`], [`FORCE_LEDGER_CHUNK_BEFORE`]).
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.flags
    }
    /// View, from the IV (31 bits), as CCF's reader takes it.
    #[must_use]
    pub fn view(&self) -> View {
        self.view
    }
    /// Seqno, from the IV (equal to the public domain's, checked by decoding).
    #[must_use]
    pub fn seqno(&self) -> Seqno {
        self.seqno
    }
    /// Whether the IV's snapshot bit is set (never for entries Coco writes to the ledger).
    #[must_use]
    pub fn is_snapshot(&self) -> bool {
        self.is_snapshot
    }
    /// Public-domain entry type (always [`ENTRY_TYPE_WRITE_SET`] after decoding).
    #[must_use]
    pub fn entry_type(&self) -> u8 {
        self.entry_type
    }
    /// Claims digest from the public domain.
    #[must_use]
    pub fn claims_digest(&self) -> Digest {
        self.claims_digest
    }
    /// SHA-256 of the commit evidence, from the public domain.
    #[must_use]
    pub fn commit_evidence_digest(&self) -> Digest {
        self.commit_evidence_digest
    }
    /// The serialised public maps, after the fixed public header.
    #[must_use]
    pub fn public_maps(&self) -> &'a [u8] {
        &self.public_domain[PUBLIC_HEADER_BYTES..]
    }
    /// The whole public domain (the AAD of the private domain).
    #[must_use]
    pub fn public_domain(&self) -> &'a [u8] {
        self.public_domain
    }
    /// The encrypted private domain.
    #[must_use]
    pub fn private_ciphertext(&self) -> &'a [u8] {
        self.private_ciphertext
    }
    /// The AES-GCM tag.
    #[must_use]
    pub fn tag(&self) -> &[u8; AES_GCM_TAG_BYTES] {
        &self.tag
    }
    /// The AES-GCM IV.
    #[must_use]
    pub fn iv(&self) -> &[u8; AES_GCM_IV_BYTES] {
        &self.iv
    }

    /// Decrypts the private domain, checking the tag over it and the public domain.
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

#[cfg(test)]
mod tests;
