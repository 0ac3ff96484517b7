//! Coco's ordered, transactional, versioned key-value store.
//!
//! This crate owns maps, transactions, per-key versions, conflict checks, the write-set
//! codec and the snapshot layout (CCF's per-map formats), rollback and compaction. It
//! depends only on `coco-types`; it knows nothing of the
//! ledger, consensus or encryption — it only classifies maps as public or private
//! ([`MapName::is_public`]).
//!
//! Key types: [`Store`], [`Snapshot`], [`Tx`], [`WriteSet`], [`MapName`].
//!
//! ```
//! use coco_kv::{CommitOutcome, MapName, Store};
//!
//! let records = MapName::new("public:records")?;
//! let mut store = Store::new();
//! let mut tx = store.begin();
//! tx.put(&records, b"alice", b"1");
//! let CommitOutcome::Written { seqno, write_set } = store.commit(tx)? else { unreachable!() };
//! assert_eq!(seqno.0, 1);
//! let (public, private) = write_set.encode_domains(); // ledger entry domains
//! assert!(private.is_empty());
//!
//! // A transaction that read a key another transaction changed meanwhile is refused.
//! let mut reader = store.begin();
//! reader.get(&records, b"alice");
//! reader.put(&records, b"bob", b"2");
//! let mut writer = store.begin();
//! writer.put(&records, b"alice", b"3");
//! store.commit(writer)?;
//! assert!(store.commit(reader).unwrap_err().is_conflict());
//! # let _ = public;
//! # Ok::<(), coco_kv::Error>(())
//! ```
//!
//! # Concurrency model
//!
//! The store is a plain, deterministic data structure with no internal locking; the node
//! wraps it in a mutex. State is held in persistent ordered trees (`imbl::OrdMap`), so a
//! snapshot is an O(1) copy that later writes never disturb.
//!
//! ```text
//!   lock ─ begin() ─ unlock          (O(1): the Tx owns a snapshot at read seqno r)
//!          handler runs on the Tx    (reads recorded; writes buffered; others commit)
//!   lock ─ commit(tx) ─ unlock       (validate reads at r against current; apply at s+1)
//!            │
//!            ├─ a read changed ──▶ Error::Conflict: re-execute the handler (bounded)
//!            └─ ok ──▶ CommitOutcome::Written { seqno, write_set } ─▶ ledger entry
//!                      or CommitOutcome::ReadOnly (no writes, no seqno)
//! ```
//!
//! Validation (optimistic concurrency control): every point read records the version it
//! saw (or "absent"); commit refuses the transaction if the key's current version differs
//! (written, created or removed since). Every range read records the part of the range it
//! observed (up to the last key returned when its limit was reached); commit refuses the
//! transaction if any key in that part was written, created or removed — precise, not
//! map-wide, and skipped for maps untouched since the snapshot. Reads of the
//! transaction's own writes depend on nothing and are not recorded. Hence committed
//! transactions are serializable in seqno order. [`run_tx`] packages the
//! begin/run/commit/retry loop over a `Mutex<Store>`.
//!
//! # Rollback and compaction
//!
//! Every applied write set gets the next seqno; each key carries the seqno that last wrote
//! it. The store keeps one current state, mutated in place, and an undo record per seqno
//! above its compacted point (each touched key's previous value and version).
//! [`Store::rollback`] returns to the state at any of those seqnos — the node
//! does this when consensus truncates uncommitted entries — and makes transactions begun
//! earlier conflict. [`Store::compact`] is called as the committed point advances: it
//! drops the history below it, after which rolling back below it is an error (committed
//! transactions are never rolled back). The history is bounded
//! ([`Store::set_history_max`]); at the bound writes fail with [`Error::HistoryFull`]
//! until the node compacts.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(clippy::iter_over_hash_type, clippy::float_arithmetic)]

mod bytes;
mod error;
mod map_name;
mod reader;
mod snapshot;
mod snapshot_format;
mod state;
mod store;
mod tx;
mod undo;
mod write_set;

pub use error::{Conflict, DecodeError, Error, Result};
pub use map_name::{MAP_NAME_BYTES_MAX, MapName, PUBLIC_PREFIX};
pub use snapshot::{MapView, Page, Snapshot};
pub use store::{CommitOutcome, HISTORY_MAX_DEFAULT, Store, run_tx};
pub use tx::Tx;
pub use write_set::{Domain, MapWrites, WriteSet};
