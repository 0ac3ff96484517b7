//! What the app keeps per transaction and per block, CBOR-encoded in its private maps.

use alloy_primitives::{Address, B256, Bloom, Bytes, Log, LogData};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// One log, as a receipt carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The contract that emitted it.
    #[serde(with = "serde_bytes")]
    pub address: Vec<u8>,
    /// Up to four 32-byte topics, concatenated.
    #[serde(with = "serde_bytes")]
    pub topics: Vec<u8>,
    /// The data.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl LogRecord {
    /// From revm's log.
    #[must_use]
    pub fn from_log(log: &Log) -> Self {
        Self {
            address: log.address.to_vec(),
            topics: log.data.topics().iter().flat_map(|t| t.0).collect(),
            data: log.data.data.to_vec(),
        }
    }

    /// Back to alloy's log (for blooms and receipt roots).
    ///
    /// # Errors
    /// [`StateError`] for an address or topics of the wrong size (a corrupt record).
    pub fn to_log(&self) -> Result<Log, StateError> {
        if self.address.len() != 20
            || !self.topics.len().is_multiple_of(32)
            || self.topics.len() > 128
        {
            return Err(StateError("a log record of the wrong shape".to_owned()));
        }
        let topics = self.topics.chunks_exact(32).map(B256::from_slice).collect();
        Ok(Log {
            address: Address::from_slice(&self.address),
            data: LogData::new_unchecked(topics, Bytes::from(self.data.clone())),
        })
    }

    /// The topics.
    pub fn topics(&self) -> impl Iterator<Item = B256> + '_ {
        self.topics.chunks_exact(32).map(B256::from_slice)
    }
}

/// What executing one transaction gave; written by the transaction itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// The signed transaction as submitted (EIP-2718 bytes).
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
    /// The recovered sender.
    #[serde(with = "serde_bytes")]
    pub from: Vec<u8>,
    /// True when execution succeeded (receipt status 1).
    pub success: bool,
    /// Gas used, after refunds.
    pub gas_used: u64,
    /// Price paid per gas, in wei.
    pub effective_gas_price: u128,
    /// The created contract, for a successful creation.
    #[serde(with = "serde_bytes")]
    pub contract_address: Vec<u8>,
    /// Logs (none when the transaction failed).
    pub logs: Vec<LogRecord>,
}

/// Where a transaction landed; written when its block is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxPlace {
    /// The block.
    pub block_number: u64,
    /// Position in the block.
    pub index: u64,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Block-wide index of this transaction's first log.
    pub first_log_index: u64,
}

/// A sealed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Height (genesis is 0).
    pub number: u64,
    /// Keccak-256 of the RLP header.
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// The previous block's hash (zero for genesis).
    #[serde(with = "serde_bytes")]
    pub parent_hash: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Sum of the transactions' gas.
    pub gas_used: u64,
    /// The per-transaction gas limit in force.
    pub gas_limit: u64,
    /// Base fee per gas, in wei.
    pub base_fee: u64,
    /// OR of the receipts' blooms (256 bytes).
    #[serde(with = "serde_bytes")]
    pub logs_bloom: Vec<u8>,
    /// Trie root of the transactions.
    #[serde(with = "serde_bytes")]
    pub transactions_root: Vec<u8>,
    /// Trie root of the receipts.
    #[serde(with = "serde_bytes")]
    pub receipts_root: Vec<u8>,
    /// Bytes of the RLP header (a block's `size` counts the header and transactions).
    pub size: u64,
    /// The transactions' hashes, in order (32 bytes each).
    #[serde(with = "serde_bytes")]
    pub tx_hashes: Vec<u8>,
}

impl BlockRecord {
    /// The block hash (zero if the record is corrupt: [`decode`] checks the shape).
    #[must_use]
    pub fn hash(&self) -> B256 {
        B256::try_from(self.hash.as_slice()).unwrap_or_default()
    }

    /// The transactions' hashes.
    pub fn tx_hashes(&self) -> impl ExactSizeIterator<Item = B256> + '_ {
        self.tx_hashes.chunks_exact(32).map(B256::from_slice)
    }

    /// The bloom (all bits set if the record is corrupt, so nothing is skipped).
    #[must_use]
    pub fn bloom(&self) -> Bloom {
        Bloom::try_from(self.logs_bloom.as_slice()).unwrap_or(Bloom::repeat_byte(0xff))
    }
}

/// The open block: what transactions executing now see as their block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The open block's number.
    pub number: u64,
    /// The last sealed block's hash.
    #[serde(with = "serde_bytes")]
    pub parent_hash: Vec<u8>,
    /// The last sealed block's timestamp.
    pub parent_timestamp: u64,
    /// The open block's timestamp; 0 until its first transaction stamps it.
    pub timestamp: u64,
    /// The last sealed block held transactions: the next seal makes a block even if empty,
    /// so a client that waits for "a new block" after its transaction's (ethers'
    /// `waitForTransaction` starts from the block number it first sees) gets one on a
    /// chain that then goes idle.
    #[serde(default)]
    pub follow_up: bool,
}

/// The chain's parameters, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRecord {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Base fee per gas, in wei (constant: there is no fee market to price).
    pub base_fee: u64,
    /// Most gas one transaction may use.
    pub gas_limit: u64,
}

/// A 32-byte hash read from storage.
///
/// # Errors
/// [`StateError`] naming `what` for any other length.
pub fn hash32(bytes: &[u8], what: &str) -> Result<B256, StateError> {
    B256::try_from(bytes).map_err(|_| StateError(format!("{what}: {} bytes, not 32", bytes.len())))
}

/// CBOR bytes of a record.
///
/// # Panics
/// Never: these records always serialise.
#[must_use]
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    ciborium::into_writer(record, &mut bytes).expect("records serialise to a Vec");
    bytes
}

/// Reads a record.
///
/// # Errors
/// [`StateError`] naming `what` when the bytes are not such a record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StateError> {
    ciborium::from_reader(bytes).map_err(|e| StateError(format!("{what}: {e}")))
}
