//! JSON views of transactions, receipts, logs and blocks, with go-ethereum's field names.

use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::Typed2718 as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bloom};
use serde_json::{Map, Value, json};

use super::params::{hex, qty};
use crate::records::{BlockRecord, LogRecord, TxPlace, TxRecord};
use crate::state::StateError;

/// Where a transaction is, for the views (`None` fields are `null`).
#[derive(Clone, Copy, Debug)]
pub struct Located<'a> {
    /// Its hash.
    pub hash: &'a B256,
    /// Its block's hash, once sealed.
    pub block_hash: Option<&'a B256>,
    /// Its place, once sealed.
    pub place: Option<&'a TxPlace>,
}

fn envelope_of(record: &TxRecord) -> Result<TxEnvelope, StateError> {
    TxEnvelope::decode_2718_exact(&record.raw)
        .map_err(|e| StateError(format!("recorded transaction: {e}")))
}

fn placed(located: &Located<'_>, object: &mut Map<String, Value>) {
    let (block_hash, number, index) = match (located.block_hash, located.place) {
        (Some(hash), Some(place)) => (hex(hash), qty(place.block_number), qty(place.index)),
        (None, _) | (_, None) => (Value::Null, Value::Null, Value::Null),
    };
    object.insert("blockHash".into(), block_hash);
    object.insert("blockNumber".into(), number);
    object.insert("transactionIndex".into(), index);
}

/// `eth_getTransactionByHash`'s object.
///
/// # Errors
/// [`StateError`] for a corrupt record.
pub fn transaction(record: &TxRecord, located: &Located<'_>) -> Result<Value, StateError> {
    let envelope = envelope_of(record)?;
    let signature = envelope.signature();
    let y_parity = u64::from(signature.v());
    let ty = envelope.ty();
    let v = match envelope.chain_id() {
        Some(chain_id) if ty == 0 => chain_id * 2 + 35 + y_parity,
        Some(_) | None => y_parity,
    };
    let mut object = Map::new();
    object.insert("hash".into(), hex(located.hash));
    object.insert("type".into(), qty(ty));
    object.insert("from".into(), hex(&record.from));
    object.insert("to".into(), envelope.to().map_or(Value::Null, hex));
    object.insert("nonce".into(), qty(envelope.nonce()));
    object.insert("gas".into(), qty(envelope.gas_limit()));
    object.insert("value".into(), qty(envelope.value()));
    object.insert("input".into(), hex(envelope.input()));
    object.insert("gasPrice".into(), qty(record.effective_gas_price));
    if ty == 2 {
        object.insert("maxFeePerGas".into(), qty(envelope.max_fee_per_gas()));
        let tip = envelope.max_priority_fee_per_gas().unwrap_or_default();
        object.insert("maxPriorityFeePerGas".into(), qty(tip));
    }
    if let Some(chain_id) = envelope.chain_id() {
        object.insert("chainId".into(), qty(chain_id));
    }
    if let Some(list) = envelope.access_list() {
        let items = list.iter().map(|item| {
            let keys: Vec<Value> = item.storage_keys.iter().map(hex).collect();
            json!({"address": hex(item.address), "storageKeys": keys})
        });
        object.insert("accessList".into(), Value::Array(items.collect()));
        object.insert("yParity".into(), qty(y_parity));
    }
    object.insert("v".into(), qty(v));
    object.insert("r".into(), qty(signature.r()));
    object.insert("s".into(), qty(signature.s()));
    placed(located, &mut object);
    Ok(Value::Object(object))
}

/// One log in a receipt or `eth_getLogs` answer.
#[must_use]
pub fn log(log: &LogRecord, located: &Located<'_>, log_index: u64) -> Value {
    let topics: Vec<Value> = log.topics().map(hex).collect();
    let mut object = Map::new();
    object.insert("address".into(), hex(&log.address));
    object.insert("topics".into(), Value::Array(topics));
    object.insert("data".into(), hex(&log.data));
    object.insert("logIndex".into(), qty(log_index));
    object.insert("transactionHash".into(), hex(located.hash));
    object.insert("removed".into(), Value::Bool(false));
    placed(located, &mut object);
    Value::Object(object)
}

/// `eth_getTransactionReceipt`'s object (only for sealed transactions).
///
/// # Errors
/// [`StateError`] for a corrupt record.
pub fn receipt(
    record: &TxRecord,
    located: &Located<'_>,
    place: &TxPlace,
) -> Result<Value, StateError> {
    let envelope = envelope_of(record)?;
    let receipt = crate::block::receipt_envelope(envelope.ty(), record, place.cumulative_gas_used)?;
    let logs: Vec<Value> = (place.first_log_index..)
        .zip(&record.logs)
        .map(|(index, entry)| log(entry, located, index))
        .collect();
    let contract = if record.contract_address.is_empty() {
        Value::Null
    } else {
        hex(&record.contract_address)
    };
    let mut object = Map::new();
    object.insert("transactionHash".into(), hex(located.hash));
    object.insert("type".into(), qty(envelope.ty()));
    object.insert("from".into(), hex(&record.from));
    object.insert("to".into(), envelope.to().map_or(Value::Null, hex));
    object.insert("status".into(), qty(u64::from(record.success)));
    object.insert("gasUsed".into(), qty(record.gas_used));
    object.insert("cumulativeGasUsed".into(), qty(place.cumulative_gas_used));
    object.insert("effectiveGasPrice".into(), qty(record.effective_gas_price));
    object.insert("contractAddress".into(), contract);
    object.insert("logs".into(), Value::Array(logs));
    object.insert("logsBloom".into(), hex(receipt.logs_bloom()));
    placed(located, &mut object);
    Ok(Value::Object(object))
}

/// A block object; `transactions` holds hashes or full objects.
#[must_use]
pub fn block(block: &BlockRecord, transactions: Vec<Value>) -> Value {
    json!({
        "number": qty(block.number),
        "hash": hex(&block.hash),
        "parentHash": hex(&block.parent_hash),
        "nonce": "0x0000000000000000",
        "mixHash": hex(B256::ZERO),
        "sha3Uncles": hex(alloy_consensus::EMPTY_OMMER_ROOT_HASH),
        "logsBloom": hex(block.bloom()),
        "transactionsRoot": hex(&block.transactions_root),
        "stateRoot": hex(B256::ZERO),
        "receiptsRoot": hex(&block.receipts_root),
        "miner": hex(Address::ZERO),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": qty(block.size),
        "gasLimit": qty(block.gas_limit),
        "gasUsed": qty(block.gas_used),
        "timestamp": qty(block.timestamp),
        "baseFeePerGas": qty(block.base_fee),
        "transactions": transactions,
        "uncles": [],
    })
}

/// Whether a bloom may hold a log matching `addresses` (any of, or all when empty) and
/// every position of `topics` (any of each, or all when empty).
#[must_use]
pub fn bloom_may_match(bloom: &Bloom, addresses: &[Address], topics: &[Vec<B256>]) -> bool {
    use alloy_primitives::BloomInput;
    let address_ok = addresses.is_empty()
        || addresses.iter().any(|a| bloom.contains_input(BloomInput::Raw(a.as_slice())));
    address_ok
        && topics.iter().all(|alternatives| {
            alternatives.is_empty()
                || alternatives.iter().any(|t| bloom.contains_input(BloomInput::Raw(t.as_slice())))
        })
}
