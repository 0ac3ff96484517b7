//! Coco's Ethereum app: `revm` executes signed Ethereum transactions over private KV maps,
//! one Ethereum transaction per Coco transaction, and an Ethereum JSON-RPC lets
//! unmodified tools (ethers, web3.py, wallets) use the service.
//!
//! ```text
//!  eth_sendRawTransaction ─► decode + recover sender ─► revm over KvDb (reads = KV reads)
//!                                                         │ diff sorted by address
//!                                                         ▼
//!   coco.eth.{accounts,code,storage}  coco.eth.txs[hash]  coco.eth.pending[hash]
//!                                                         │ before each signature:
//!                                                         ▼ seal (order = seqno)
//!   coco.eth.blocks[n], block_hashes, block_numbers, tx_places ─► receipts, logs, blocks
//! ```
//!
//! Blocks: [`block`]. State layout: [`state`]. JSON-RPC: [`rpc`]. The node's side of the
//! interface: [`app`].

pub mod app;
pub mod block;
pub mod error;
pub mod execute;
pub mod maps;
pub mod records;
pub mod rpc;
pub mod sign;
pub mod state;
pub mod testdata;
pub mod transact;

pub use app::{
    Body, EthApp, EthConfig, NodeServices, PREPARED_GAS_MAX, PreparedSend, join_batch, split_batch,
};
pub use error::TxError;
pub use rpc::Reply;
