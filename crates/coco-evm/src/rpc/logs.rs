//! `eth_getLogs` and polling filters. Filters are the node's own memory, as in
//! go-ethereum: they are not replicated, expire when not polled, and are bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use alloy_primitives::{Address, B256};
use coco_kv::Tx;
use serde_json::Value;

use super::params::{self, BlockId, RpcError, RpcResult, hex, qty};
use super::views::{self, Located};
use crate::block;
use crate::maps;
use crate::records::{self, TxPlace, TxRecord};

/// Most blocks one `eth_getLogs` may span.
pub const LOG_BLOCKS_MAX: u64 = 10_000;
/// Most logs one answer may hold.
pub const LOGS_MAX: usize = 10_000;
/// Most filters a node keeps.
pub const FILTERS_MAX: usize = 1_000;
/// A filter not polled for this long is dropped (go-ethereum's five minutes).
pub const FILTER_IDLE_MS: u64 = 5 * 60 * 1000;
/// Most addresses, and most values per topic position, one query may list.
pub const QUERY_ITEMS_MAX: usize = 1_000;

/// What a log query asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// First block.
    pub from: BlockId,
    /// Last block.
    pub to: BlockId,
    /// Emitting contracts (any, when empty).
    pub addresses: Vec<Address>,
    /// Per topic position, the accepted values (any, when empty).
    pub topics: Vec<Vec<B256>>,
}

/// Reads a filter object.
///
/// # Errors
/// -32602 for a field that does not parse.
pub fn query(value: &Value) -> Result<LogQuery, RpcError> {
    let object =
        value.as_object().ok_or_else(|| RpcError::invalid("filter: expected an object"))?;
    let get = |name: &str| object.get(name).unwrap_or(&Value::Null);
    let (from, to) = match get("blockHash") {
        Value::Null => (params::block_id(get("fromBlock"))?, params::block_id(get("toBlock"))?),
        hash @ (Value::Bool(_)
        | Value::Number(_)
        | Value::String(_)
        | Value::Array(_)
        | Value::Object(_)) => {
            let id = BlockId::Hash(params::hash(hash, "blockHash")?);
            (id, id)
        }
    };
    let too_many = |what: &str| RpcError::invalid(format!("{what}: at most {QUERY_ITEMS_MAX}"));
    let addresses = match get("address") {
        Value::Array(items) if items.len() > QUERY_ITEMS_MAX => return Err(too_many("address")),
        Value::Null => Vec::new(),
        Value::Array(items) => {
            items.iter().map(|a| params::address(a, "address")).collect::<Result<_, _>>()?
        }
        one @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_)) => {
            vec![params::address(one, "address")?]
        }
    };
    let topics = match get("topics") {
        Value::Null => Vec::new(),
        Value::Array(positions) if positions.len() <= 4 => {
            positions.iter().map(topic_alternatives).collect::<Result<_, _>>()?
        }
        Value::Array(_)
        | Value::Bool(_)
        | Value::Number(_)
        | Value::String(_)
        | Value::Object(_) => {
            return Err(RpcError::invalid("topics: expected an array of at most 4 positions"));
        }
    };
    Ok(LogQuery { from, to, addresses, topics })
}

fn topic_alternatives(value: &Value) -> Result<Vec<B256>, RpcError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) if items.len() > QUERY_ITEMS_MAX => {
            Err(RpcError::invalid(format!("topics: at most {QUERY_ITEMS_MAX} per position")))
        }
        Value::Array(items) => items.iter().map(|t| params::hash(t, "topic")).collect(),
        one @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Object(_)) => {
            Ok(vec![params::hash(one, "topic")?])
        }
    }
}

fn resolve(tx: &mut Tx, id: BlockId, latest: u64) -> Result<u64, RpcError> {
    match id {
        BlockId::Latest | BlockId::Pending => Ok(latest),
        BlockId::Number(number) => Ok(number),
        BlockId::Hash(hash) => block::number_of(tx, &hash)
            .filter(|number| *number <= latest)
            .ok_or_else(|| RpcError::refused(format!("unknown block {hash}"))),
    }
}

/// The logs matching `query` in committed blocks up to `latest`, in block and log order; a
/// range starting after `latest` is empty (not clamped: a poller must not see a block
/// twice).
///
/// # Errors
/// -32000 when the range spans more than [`LOG_BLOCKS_MAX`] blocks or the answer would
/// hold more than [`LOGS_MAX`] logs.
pub fn logs(tx: &mut Tx, query: &LogQuery, latest: u64) -> RpcResult {
    let from = resolve(tx, query.from, latest)?;
    let to = resolve(tx, query.to, latest)?.min(latest);
    if to >= from && to - from >= LOG_BLOCKS_MAX {
        let message = format!("query spans more than {LOG_BLOCKS_MAX} blocks: narrow the range");
        return Err(RpcError::refused(message));
    }
    let mut found = Vec::new();
    for number in from..=to {
        collect_block(tx, number, query, &mut found)?;
    }
    Ok(Value::Array(found))
}

fn collect_block(
    tx: &mut Tx,
    number: u64,
    query: &LogQuery,
    found: &mut Vec<Value>,
) -> Result<(), RpcError> {
    let Some(block) = block::block(tx, number).map_err(internal)? else {
        return Ok(());
    };
    let bloom = block.bloom();
    if bloom.is_zero() || !views::bloom_may_match(&bloom, &query.addresses, &query.topics) {
        return Ok(());
    }
    let block_hash = block.hash();
    for hash in block.tx_hashes() {
        let (record, place) = sealed(tx, &hash)?;
        let located = Located { hash: &hash, block_hash: Some(&block_hash), place: Some(&place) };
        for (index, entry) in (place.first_log_index..).zip(&record.logs) {
            if matches(entry, query) {
                if found.len() == LOGS_MAX {
                    let message = format!("query returned more than {LOGS_MAX} results");
                    return Err(RpcError::refused(message));
                }
                found.push(views::log(entry, &located, index));
            }
        }
    }
    Ok(())
}

fn matches(log: &records::LogRecord, query: &LogQuery) -> bool {
    let address_ok = query.addresses.is_empty()
        || query.addresses.iter().any(|a| a.as_slice() == log.address.as_slice());
    let topics: Vec<B256> = log.topics().collect();
    address_ok
        && query.topics.iter().enumerate().all(|(position, alternatives)| {
            alternatives.is_empty()
                || topics.get(position).is_some_and(|t| alternatives.contains(t))
        })
}

/// A sealed transaction's record and place.
///
/// # Errors
/// -32603 when a sealed block names a transaction without them (corrupt state).
pub fn sealed(tx: &mut Tx, hash: &B256) -> Result<(TxRecord, TxPlace), RpcError> {
    let record = tx.get(&maps::TXS, hash.as_slice()).map(|b| records::decode(b, "transaction"));
    let place = tx.get(&maps::TX_PLACES, hash.as_slice()).map(|b| records::decode(b, "place"));
    match (record, place) {
        (Some(record), Some(place)) => Ok((record.map_err(internal)?, place.map_err(internal)?)),
        (None, _) | (_, None) => Err(internal(format!("sealed transaction {hash} has no record"))),
    }
}

/// A failure of the node's state, not the client's.
pub fn internal(error: impl std::fmt::Display) -> RpcError {
    RpcError { code: crate::error::CODE_INTERNAL, message: error.to_string(), data: None }
}

/// What a filter watches.
#[derive(Clone, Debug)]
enum Watch {
    Logs(LogQuery),
    Blocks,
}

#[derive(Clone, Debug)]
struct Filter {
    watch: Watch,
    /// The newest block already reported.
    seen: u64,
    polled_ms: u64,
}

/// The filters of the node serving `/app/eth` writes (the primary: every POST goes there).
/// Ids mix the creation time into the counter, so a filter id from a node that failed is
/// not answered with another client's filter by the next primary.
#[derive(Debug, Default)]
pub struct Filters {
    inner: Mutex<FilterTable>,
}

#[derive(Debug, Default)]
struct FilterTable {
    next: u64,
    filters: BTreeMap<u64, Filter>,
}

impl FilterTable {
    fn expire(&mut self, now_ms: u64) {
        self.filters.retain(|_, f| now_ms.saturating_sub(f.polled_ms) < FILTER_IDLE_MS);
    }
}

impl Filters {
    fn table(&self) -> std::sync::MutexGuard<'_, FilterTable> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn install(&self, watch: Watch, seen: u64, now_ms: u64) -> RpcResult {
        let mut table = self.table();
        table.expire(now_ms);
        if table.filters.len() >= FILTERS_MAX {
            return Err(RpcError::refused(format!("too many filters: at most {FILTERS_MAX}")));
        }
        table.next += 1;
        let id = (now_ms << 16) ^ table.next;
        table.filters.insert(id, Filter { watch, seen, polled_ms: now_ms });
        Ok(qty(id))
    }

    /// `eth_newFilter`: logs from blocks committed after `latest` (or from `fromBlock`).
    ///
    /// # Errors
    /// As [`query`]; -32602 for a `blockHash` filter (it has nothing to poll); -32000 when
    /// the node holds [`FILTERS_MAX`] filters.
    pub fn new_log_filter(&self, value: &Value, latest: u64, now_ms: u64) -> RpcResult {
        let query = query(value)?;
        let seen = match query.from {
            BlockId::Number(number) => number.saturating_sub(1),
            BlockId::Latest | BlockId::Pending => latest,
            BlockId::Hash(_) => {
                return Err(RpcError::invalid("a filter cannot poll one block: use eth_getLogs"));
            }
        };
        self.install(Watch::Logs(query), seen, now_ms)
    }

    /// `eth_newBlockFilter`: hashes of blocks committed after `latest`.
    ///
    /// # Errors
    /// -32000 when the node holds [`FILTERS_MAX`] filters.
    pub fn new_block_filter(&self, latest: u64, now_ms: u64) -> RpcResult {
        self.install(Watch::Blocks, latest, now_ms)
    }

    /// `eth_uninstallFilter`.
    ///
    /// # Errors
    /// -32602 for an id that does not parse.
    pub fn uninstall(&self, id: &Value) -> RpcResult {
        let id = params::quantity_u64(id, "filter id")?;
        Ok(Value::Bool(self.table().filters.remove(&id).is_some()))
    }

    fn get(&self, id: &Value, now_ms: u64) -> Result<(u64, Filter), RpcError> {
        let id = params::quantity_u64(id, "filter id")?;
        let mut table = self.table();
        table.expire(now_ms);
        let filter =
            table.filters.get_mut(&id).ok_or_else(|| RpcError::refused("filter not found"))?;
        filter.polled_ms = now_ms;
        Ok((id, filter.clone()))
    }

    /// `eth_getFilterChanges`: what committed since the last poll, at most
    /// [`LOG_BLOCKS_MAX`] blocks per poll (the rest at the next). The filter moves on only
    /// once the answer is built, so a refused poll loses nothing.
    ///
    /// # Errors
    /// -32000 for an unknown (or expired) filter; as [`logs`].
    pub fn changes(&self, tx: &mut Tx, id: &Value, latest: u64, now_ms: u64) -> RpcResult {
        let (id, filter) = self.get(id, now_ms)?;
        let mut to = latest.min(filter.seen.saturating_add(LOG_BLOCKS_MAX));
        if let Watch::Logs(LogQuery { to: BlockId::Number(last), .. }) = filter.watch {
            to = to.min(last);
        }
        if to <= filter.seen {
            return Ok(Value::Array(Vec::new()));
        }
        let (from, upto) = (BlockId::Number(filter.seen + 1), BlockId::Number(to));
        let answer = match filter.watch {
            Watch::Logs(query) => logs(tx, &LogQuery { from, to: upto, ..query }, latest)?,
            Watch::Blocks => {
                let hashes = (filter.seen + 1..=to).filter_map(|n| block::hash_of(tx, n));
                Value::Array(hashes.map(hex).collect())
            }
        };
        if let Some(stored) = self.table().filters.get_mut(&id) {
            stored.seen = stored.seen.max(to);
        }
        Ok(answer)
    }

    /// `eth_getFilterLogs`: every log the filter matches.
    ///
    /// # Errors
    /// -32000 for an unknown filter or a block filter; as [`logs`].
    pub fn all_logs(&self, tx: &mut Tx, id: &Value, latest: u64, now_ms: u64) -> RpcResult {
        match self.get(id, now_ms)?.1.watch {
            Watch::Logs(query) => logs(tx, &query, latest),
            Watch::Blocks => Err(RpcError::refused("not a log filter")),
        }
    }
}
