//! Coco's shared vocabulary.
//!
//! This crate owns the names every other crate uses for the same concept (see
//! `docs/GLOSSARY.md`): [`View`], [`Seqno`], [`TxId`], [`TxStatus`], [`Digest`] and the
//! participant ids. It depends on nothing of Coco's, so everything may depend on it.
//!
//! Wire and disk integers are `u64`; `usize` never crosses a crate boundary as a
//! seqno or a size on disk.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(clippy::iter_over_hash_type, clippy::float_arithmetic)]

mod digest;
mod ids;
mod limits;
mod tx;

pub use digest::{Digest, DigestParseError};
pub use ids::{MemberId, NodeId, UserId};
pub use limits::{Limits, LimitsError};
pub use tx::{Seqno, TxId, TxIdParseError, TxStatus, View};
