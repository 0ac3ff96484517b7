//! Coco's consensus: Raft (`openraft` 0.9) with the ledger as its log.
//!
//! **Owns**: the mapping of Raft onto Coco's words (a term is a view, an index a seqno, a
//! log id a TxId — one leader per term, openraft's `single-term-leader`), the storage
//! adapters over a [`Journal`] the node implements, and the encoding of node-to-node
//! calls over a [`Transport`] the host implements. **Does not know** the KV, the ledger's
//! bytes, signatures or TLS: the node seals, applies and rolls back; the host carries
//! bytes. No other crate names an openraft type, so openraft's 0.10 upgrade is this
//! crate's alone.
//!
//! ```text
//!  node ── propose(ticket) ──▶ Raft (primary) ── append ──▶ Journal::append (execute,
//!                                  │                         seal, apply to KV)
//!                                  │ AppendEntries (sealed bytes, via Transport)
//!                                  ▼
//!                              Raft (backup) ── append ──▶ Journal::append (check, apply)
//!  majority durable ──▶ Journal::commit(upto) on every node
//! ```
//!
//! A transaction is committed by consensus once a majority holds it durably; Coco reports
//! it `Committed` only once a signature transaction at or after it is (the node's rule).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod consensus;
mod journal;
mod network;
mod prevote;
mod runtime;
mod store;
mod types;

pub use consensus::{Consensus, ConsensusError, Proposal, Settings, Status};
pub use journal::{Committed, Flush, Journal, JournalError, JournalSnapshot, SnapshotAt};
pub use network::{Rpc, Transport, TransportError};
pub use runtime::seed_thread_rng;
pub use types::{JournalEntry, JournalPayload, Membership, Peer, Vote};
