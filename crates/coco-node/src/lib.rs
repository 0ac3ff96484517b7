//! The Coco node: wires the KV store, the ledger, the Merkle tree, signatures and apps
//! into one state machine.
//!
//! Owns the node's lifecycle (genesis, replay after restart), the commit path
//! ([`Node::commit`]), signature transactions, transaction status, receipts, CCF's table
//! names, the node configuration and the [`App`] interface with the logging app.
//! It does no networking and reads no clock: the host (`coco-host`) passes time in and
//! owns sockets, TLS and HTTP. Apps plug in through [`App`]; the node never names one
//! beyond the logging sample.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(clippy::iter_over_hash_type, clippy::float_arithmetic)]

mod app;
pub mod apps;
mod audit;
mod config;
mod error;
mod gov;
mod identity;
mod join;
mod journal;
mod node;
mod node_secrets;
mod published;
mod receipt;
mod recover;
mod recovery;
mod secrets;
pub mod tables;
mod work_queue;

/// Consensus, as the host starts it over this node (`coco-consensus`).
pub mod consensus {
    pub use coco_consensus::{
        Consensus, ConsensusError, Peer, Proposal, Rpc, Settings, Status, Transport, TransportError,
    };
}

/// Attestation evidence, as the host produces it for a joining node (`coco-attestation`).
pub mod attestation {
    pub use coco_attestation::{Evidence, virtual_evidence};
}

pub use app::{
    App, AppError, AppRequest, AppResponse, Caller, Method, NodeQueries, Prepared, Split,
};
pub use audit::{AuditError, AuditReport, verify_ledger};
pub use coco_kv::Tx;
pub use config::{ConfigError, NetworkConfig, NodeConfig, ServiceConfig, StorageConfig};
pub use error::{Error, Result};
pub use gov::{GovCall, GovFailure, GovRead, GovReply};
pub use identity::{CERT_VALIDITY_DAYS, write_private};
pub use join::{JoinError, JoinMaterial, JoinRequest, JoinState, node_id_of};
pub use journal::{NodeGuard, OnCommit, SharedNode};
pub use node::{Commit, Metrics, Node, NodeState, ServiceStatus, SignatureRecord, Work};
pub use node_secrets::ENCRYPTED_LEDGER_SECRETS;
pub use published::Published;
pub use receipt::{JsonReceipt, LeafComponents};
pub use recover::SUBMITTED_SHARES;
pub use recovery::{RECOVERY_AAD, RECOVERY_SHARES, WRAPPED_LEDGER_SECRET};
