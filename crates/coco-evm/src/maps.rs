//! The app's KV maps. All are private: the ledger encrypts Ethereum state, transactions,
//! receipts and blocks like any private record; only members' governance is public.

use std::sync::LazyLock;

use coco_kv::MapName;

fn named(name: &str) -> MapName {
    MapName::new(name).expect("the app's map names are valid")
}

/// Address → account record (see [`crate::state`]).
pub static ACCOUNTS: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.accounts"));
/// Code hash → code.
pub static CODE: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.code"));
/// Address ‖ slot → value.
pub static STORAGE: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.storage"));
/// Transaction hash → what executing it gave ([`crate::records::TxRecord`]).
pub static TXS: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.txs"));
/// Transaction hash → its place in a sealed block ([`crate::records::TxPlace`]).
pub static TX_PLACES: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.tx_places"));
/// Transaction hash → empty: executed, waiting for the next block seal. The key's version
/// (the seqno that wrote it) orders the block.
pub static PENDING: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.pending"));
/// Block number (u64 BE) → sealed block ([`crate::records::BlockRecord`]).
pub static BLOCKS: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.blocks"));
/// Block number (u64 BE) → block hash (for `BLOCKHASH` without reading whole blocks).
pub static BLOCK_HASHES: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.block_hashes"));
/// Block hash → block number (u64 BE).
pub static BLOCK_NUMBERS: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.block_numbers"));
/// Singletons: the open block ([`crate::records::Head`]) and the chain's configuration.
pub static CHAIN: LazyLock<MapName> = LazyLock::new(|| named("coco.eth.chain"));
