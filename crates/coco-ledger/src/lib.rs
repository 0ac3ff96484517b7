//! Coco's ledger: CCF's ledger format v1, byte for byte, so that CCF's own tooling
//! (`read_ledger.py`, `ccf.ledger`) can audit what Coco writes.
//!
//! **Owns**: entry framing ([`encode_entry`], [`decode_entry`]), encryption of the private
//! domain (AES-256-GCM, public domain as AAD, IV from seqno and view), commit evidence
//! ([`CommitEvidenceKey`]), chunk files, group-commit durability and the start-up scan
//! ([`Ledger`]). **Does not know maps**: the KV crate serialises the per-map bytes of
//! each domain and hands them over as opaque slices. Depends only on `coco-types` and
//! `coco-crypto`. The full layout, with offsets, is in `docs/design/ledger-format.md`.
//!
//! # Entry layout (all integers little-endian)
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | entry-format version = 1 |
//! | 1 | 1 | flags: 0x01 `FORCE_LEDGER_CHUNK_AFTER`, 0x02 `FORCE_LEDGER_CHUNK_BEFORE` |
//! | 2 | 6 | size of the rest of the entry (48-bit), ≥ 36 |
//! | 8 | 16 | AES-GCM tag |
//! | 24 | 12 | IV: seqno (u64) ‖ view (u32, 31 bits; top bit = snapshot) |
//! | 36 | 8 | public-domain length P (u64) |
//! | 44 | 1 | entry type = 4 (write set with commit evidence and claims) |
//! | 45 | 8 | seqno (i64), equal to the IV's |
//! | 53 | 32 | claims digest (zeros when none) |
//! | 85 | 32 | SHA-256 of the commit evidence string |
//! | 117 | 8 | max conflict version (i64) = 0 |
//! | 125 | P − 81 | public maps (opaque here) |
//! | 44 + P | rest | private maps, AES-256-GCM ciphertext, AAD = bytes 44..44+P |
//!
//! # Chunk files
//!
//! `ledger_<start>` (in progress) → `ledger_<start>-<end>` (complete, ends on a
//! signature) → `ledger_<start>-<end>.committed`. A file is `[u64 offset of the positions
//! table, 0 while in progress][entries from byte 8][u32 position of each entry]`.
//!
//! # Durability: what is on disk when
//!
//! ```text
//!  append ──► BufWriter (memory) ──► OS page cache ──flush()──► disk (fdatasync)
//!                 │ signature past chunk_bytes, or FORCE flag
//!                 └──► complete chunk: table + header, fdatasync, rename, dir fsync
//! ```
//!
//! * An entry is **durable once a [`Ledger::flush`] that started after its
//!   [`Ledger::append`] returned `Ok`**. Before that it may be lost, or torn, by a crash;
//!   the start-up scan cuts such a torn tail off the last in-progress chunk.
//! * Completing a chunk (inside `append`) is durable when `append` returns: the positions
//!   table and header are `fdatasync`ed, then the rename, then the directory is fsynced.
//!   This costs two syncs per chunk and keeps at most one in-progress file on disk.
//! * Creating a new in-progress file is durable at the next `flush` (directory fsync).
//! * [`Ledger::commit`] and [`Ledger::truncate`] are durable when they return.
//! * The node appends a batch of transactions and calls `flush` once before it
//!   acknowledges the batch (a backup before replying to the primary, the primary before
//!   counting itself toward a signature's quorum): that is the group commit.
//! * After any I/O error the ledger refuses further calls ([`Error::Failed`]); after a
//!   failed fsync the page cache cannot be trusted, so the node must reopen (rescan).
//!
//! The start-up scan ([`Ledger::open`]) checks framing, not content: the GCM tag needs
//! the ledger secret and the Merkle tree needs the signatures, which the node checks when
//! it replays [`Ledger::entries`].
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod chunk;
mod commit_evidence;
mod entry;
mod error;
mod ledger;
mod reader;
mod snapshot;
mod snapshot_dir;

pub use chunk::ChunkState;
pub use commit_evidence::{CommitEvidenceKey, commit_evidence};
pub use entry::{
    ENTRY_FLAGS_MASK, ENTRY_FORMAT_VERSION, ENTRY_HEADER_BYTES, ENTRY_SIZE_MAX, ENTRY_SIZE_MIN,
    ENTRY_TYPE_WRITE_SET, Entry, EntryParts, FORCE_LEDGER_CHUNK_AFTER, FORCE_LEDGER_CHUNK_BEFORE,
    PUBLIC_HEADER_BYTES, decode_entry, encode_entry, entry_iv, write_set_digest,
};
pub use error::{Error, Result};
pub use ledger::{ChunkInfo, Entries, Ledger, PendingSync};
pub use reader::{ChunkContents, ChunkFile, LedgerFiles};
pub use snapshot::{
    DecodedSnapshot, ENTRY_TYPE_SNAPSHOT, EncodedMaps, SnapshotMaps, SnapshotParts,
    decode_snapshot, encode_snapshot, encode_snapshot_into, split_committed_snapshot,
};
pub use snapshot_dir::{CommittedSnapshot, SnapshotDir};
