//! Coco's Rust client: TLS to a node, requests, offline receipt verification and a load
//! generator.
//!
//! Depends only on `coco-types`, `coco-crypto` and `coco-merkle` among Coco's crates (the
//! node is reached over HTTPS, never linked). Modules:
//!
//! - [`tls`] ([`ClientConfig`], [`ClientIdentity`]): rustls on the aws-lc-rs provider,
//!   trusting only the service certificate, optionally presenting a user or member
//!   certificate.
//! - [`client`] ([`Client`], [`Connection`], [`Response`]): HTTP/1.1 or HTTP/2 connections
//!   over that TLS, `get`/`post_json`/`delete`, the `x-ms-ccf-transaction-id` header and
//!   waiting for a transaction to commit by polling `/node/tx`.
//! - [`receipt`]: verification of CCF-shaped JSON receipts (leaf, Merkle proof, node
//!   signature, endorsement chain to the service certificate) and COSE receipts, offline.
//! - [`bench`](mod@bench): a bounded load generator (HTTP/2 streams or pipelined
//!   HTTP/1.1) reporting
//!   throughput, committed throughput and latency percentiles; progress goes to a callback
//!   so the binary can draw it.
//! - [`histogram`]: the fixed-bucket latency histogram `bench` records into.
//! - [`gov`] ([`GovClient`], [`MemberSigner`]): a member's COSE-signed governance requests
//!   (propose, vote, withdraw, ack) and the `/gov` reads.
//!
//! ```text
//!   ClientConfig ──► Client::connect(addr, Protocol) ──► Connection ──► Response
//!        │                                                  │
//!        └──────────────► bench::run(BenchConfig, progress) ┘──► BenchReport
//!   receipt bytes + service_cert.pem ──► verify_receipt_bytes ──► VerifiedReceipt
//! ```
//!
//! Nothing here prints; results are return values and callbacks.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod bench;
pub mod client;
mod error;
pub mod gov;
pub mod histogram;
pub mod receipt;
pub mod tls;

#[cfg(test)]
mod test_server;

pub use client::{Client, Connection, Protocol, Response, TX_ID_HEADER, parse_tx_id_header};
pub use error::{Error, ReceiptError, Result};
pub use gov::{GovClient, GovMessage, MemberSigner, vote_script};
pub use receipt::{
    JsonLeafComponents, JsonReceipt, ReceiptForm, VerifiedReceipt, verify_cose_receipt_bytes,
    verify_json_receipt, verify_json_receipt_value, verify_receipt_bytes,
};
pub use tls::{ClientConfig, ClientIdentity};
