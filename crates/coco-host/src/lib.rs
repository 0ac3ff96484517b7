//! Coco's host adapters: TCP and TLS sockets (rustls), the HTTP server (hyper + axum,
//! HTTP/1.1 and HTTP/2), and the clock. Everything non-deterministic lives here; the node
//! it drives (`coco-node`) takes time as an input and does no IO but its ledger files.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
// The host is where Coco meets the OS: it may read clocks and spawn tasks.
#![allow(clippy::disallowed_methods)]

mod api_error;
mod batch;
mod error;
mod execute;
mod forward;
mod gov_routes;
mod join;
mod ordering;
mod peers;
mod routes;
mod server;
mod tls;

pub use error::{Error, Result};
pub use join::join_service;
pub use routes::TX_ID_HEADER;
pub use server::{RunningNode, recover, start};
pub use tls::{install_crypto_provider, server_config};
