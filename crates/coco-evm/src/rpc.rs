//! Ethereum JSON-RPC 2.0: one request object in, one response object out. Batches are
//! split by the caller ([`crate::app::split_batch`]) so each element runs as a Coco
//! transaction of its own.

pub mod logs;
pub mod params;
pub mod views;

use alloy_primitives::B256;
use coco_kv::Tx;
use serde_json::{Value, json};

use crate::app::{EthApp, NodeServices};
use crate::block;
use crate::error::{CODE_INVALID_REQUEST, CODE_METHOD_NOT_FOUND, CODE_REVERTED, TxError};
use crate::maps;
use crate::records::{self, TxRecord};
use crate::state;
use crate::transact::{self, CallOutcome};
use logs::internal;
use params::{BlockId, RpcError, RpcResult, hex, param, qty};
use views::Located;

/// The answer to one request.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// The response object; `None` for a notification (a request without an id).
    pub response: Option<Value>,
    /// For a sent transaction: the digest its Coco receipt proves (see
    /// [`transact::claims_digest`]).
    pub claims_digest: Option<[u8; 32]>,
}

/// What one call of a method needs.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a EthApp,
    pub(crate) tx: &'a mut Tx,
    pub(crate) node: &'a dyn NodeServices,
    pub(crate) claims_digest: Option<[u8; 32]>,
}

impl Ctx<'_> {
    fn now_s(&self) -> u64 {
        self.node.now_ms() / 1000
    }
}

/// Answers one JSON-RPC request object.
pub(crate) fn handle(app: &EthApp, request: &Value, tx: &mut Tx, node: &dyn NodeServices) -> Reply {
    let id = request.get("id").cloned();
    let mut ctx = Ctx { app, tx, node, claims_digest: None };
    let result = match request_parts(request) {
        Ok((method, params)) => dispatch(&mut ctx, method, params),
        Err(e) => Err(e),
    };
    reply(id, result, ctx.claims_digest)
}

/// The answer to a request with `id` (none for a notification).
fn reply(id: Option<Value>, result: RpcResult, claims_digest: Option<[u8; 32]>) -> Reply {
    let Some(id) = id else {
        return Reply { response: None, claims_digest };
    };
    let response = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => error_response(&id, &error),
    };
    Reply { response: Some(response), claims_digest }
}

/// The answer to `eth_sendRawTransaction` (request `id`) once [`transact::send`] ran.
pub(crate) fn sent_reply(id: Option<Value>, sent: Result<transact::Sent, TxError>) -> Reply {
    match sent {
        Ok(sent) => {
            let claims = transact::claims_digest(&sent.hash, &sent.record);
            reply(id, Ok(hex(sent.hash)), Some(claims))
        }
        Err(e) => reply(id, Err(tx_error(e)), None),
    }
}

/// A JSON-RPC error response.
#[must_use]
pub fn error_response(id: &Value, error: &RpcError) -> Value {
    let mut object = json!({"code": error.code, "message": error.message});
    if let Some(data) = &error.data {
        object["data"] = data.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": object})
}

/// The method and params of a request object, checked as JSON-RPC 2.0 asks.
pub(crate) fn request_parts(request: &Value) -> Result<(&str, &Value), RpcError> {
    let invalid = |message: &str| RpcError {
        code: CODE_INVALID_REQUEST,
        message: message.to_owned(),
        data: None,
    };
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("invalid request: jsonrpc must be \"2.0\""));
    }
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("invalid request: no method"))?;
    let params = request.get("params").unwrap_or(&Value::Null);
    if !(params.is_array() || params.is_null()) {
        return Err(invalid("invalid request: params must be an array"));
    }
    Ok((method, params))
}

fn dispatch(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> RpcResult {
    match method {
        "web3_clientVersion" => Ok(json!(concat!("coco/v", env!("CARGO_PKG_VERSION")))),
        "net_version" => Ok(json!(chain(ctx)?.chain_id.to_string())),
        "net_listening" => Ok(json!(true)),
        "net_peerCount" => Ok(qty(0u64)),
        "eth_chainId" => Ok(qty(chain(ctx)?.chain_id)),
        "eth_blockNumber" => Ok(qty(latest(ctx)?)),
        "eth_syncing" | "eth_mining" => Ok(json!(false)),
        "eth_accounts" => Ok(json!([])),
        "eth_gasPrice" => Ok(qty(chain(ctx)?.base_fee)),
        "eth_maxPriorityFeePerGas" => Ok(qty(0u64)),
        "eth_feeHistory" => fee_history(ctx, p),
        "eth_getBalance" | "eth_getTransactionCount" | "eth_getCode" => {
            account_field(ctx, method, p)
        }
        "eth_getStorageAt" => storage_at(ctx, p),
        "eth_call" => call(ctx, p),
        "eth_estimateGas" => estimate_gas(ctx, p),
        "eth_sendRawTransaction" => send_raw(ctx, p),
        "eth_getTransactionByHash" => transaction_by_hash(ctx, p),
        "eth_getTransactionReceipt" => receipt(ctx, p),
        "eth_getBlockByNumber" | "eth_getBlockByHash" => block_by(ctx, p),
        "eth_getBlockTransactionCountByNumber" | "eth_getBlockTransactionCountByHash" => {
            block_tx_count(ctx, p)
        }
        "eth_getLogs"
        | "eth_newFilter"
        | "eth_newBlockFilter"
        | "eth_getFilterChanges"
        | "eth_getFilterLogs" => log_method(ctx, method, p),
        "eth_uninstallFilter" => ctx.app.filters.uninstall(param(p, 0)),
        "coco_getTransactionReceipt" => coco_receipt(ctx, p),
        _ => Err(RpcError {
            code: CODE_METHOD_NOT_FOUND,
            message: format!("the method {method} does not exist/is not available"),
            data: None,
        }),
    }
}

/// The log and filter methods: each sees blocks up to the newest committed one.
fn log_method(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> RpcResult {
    let latest = latest(ctx)?;
    let (filters, now_ms) = (&ctx.app.filters, ctx.node.now_ms());
    match method {
        "eth_getLogs" => logs::logs(ctx.tx, &logs::query(param(p, 0))?, latest),
        "eth_newFilter" => filters.new_log_filter(param(p, 0), latest, now_ms),
        "eth_newBlockFilter" => filters.new_block_filter(latest, now_ms),
        "eth_getFilterChanges" => filters.changes(ctx.tx, param(p, 0), latest, now_ms),
        _ => filters.all_logs(ctx.tx, param(p, 0), latest, now_ms),
    }
}

fn chain(ctx: &mut Ctx<'_>) -> Result<records::ChainRecord, RpcError> {
    block::chain(ctx.tx).map_err(internal)
}

fn latest(ctx: &mut Ctx<'_>) -> Result<u64, RpcError> {
    block::latest(ctx.tx, ctx.node.committed_seqno()).map_err(internal)
}

/// Refuses a block parameter (at `index`) that names a block older than the newest: only
/// the latest state is kept.
fn require_current_state(ctx: &mut Ctx<'_>, p: &Value, index: usize) -> Result<(), RpcError> {
    let block = params::block_id(param(p, index))?;
    params::current_state(block, latest(ctx)?)
}

fn account_field(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> RpcResult {
    let address = params::address(param(p, 0), "address")?;
    require_current_state(ctx, p, 1)?;
    let account = state::account(ctx.tx, &address).map_err(internal)?.unwrap_or_default();
    Ok(match method {
        "eth_getBalance" => qty(account.balance),
        "eth_getTransactionCount" => qty(account.nonce),
        _ => hex(state::code_of(ctx.tx, &address).map_err(internal)?),
    })
}

fn storage_at(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let address = params::address(param(p, 0), "address")?;
    let slot = params::quantity(param(p, 1), "slot")?;
    require_current_state(ctx, p, 2)?;
    let value = state::storage_at(ctx.tx, &address, &slot);
    Ok(hex(value.to_be_bytes::<32>()))
}

fn call(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let call = params::call(param(p, 0))?;
    require_current_state(ctx, p, 1)?;
    let now_s = ctx.now_s();
    match transact::call(ctx.tx, &ctx.app.codes, &call, now_s).map_err(tx_error)? {
        CallOutcome::Returned { output, .. } => Ok(hex(output)),
        failed @ (CallOutcome::Reverted(_) | CallOutcome::Halted(_)) => Err(call_failed(&failed)),
    }
}

fn estimate_gas(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let call = params::call(param(p, 0))?;
    require_current_state(ctx, p, 1)?;
    let now_s = ctx.now_s();
    match transact::estimate_gas(ctx.tx, &ctx.app.codes, &call, now_s).map_err(tx_error)? {
        Ok(gas) => Ok(qty(gas)),
        Err(failed) => Err(call_failed(&failed)),
    }
}

/// go-ethereum's shape for a failed call: a revert is code 3 with the reason in the
/// message and the revert data in `data` (ethers and web3.py decode both).
fn call_failed(outcome: &CallOutcome) -> RpcError {
    match outcome {
        CallOutcome::Reverted(output) => {
            let message = match transact::revert_reason(output) {
                Some(reason) => format!("execution reverted: {reason}"),
                None => "execution reverted".to_owned(),
            };
            RpcError { code: CODE_REVERTED, message, data: Some(hex(output)) }
        }
        CallOutcome::Halted(reason) => RpcError::refused(format!("execution halted: {reason}")),
        CallOutcome::Returned { .. } => RpcError::refused("the call succeeded"),
    }
}

fn tx_error(error: TxError) -> RpcError {
    RpcError { code: error.code(), message: error.to_string(), data: None }
}

fn send_raw(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let raw = params::data(param(p, 0), "transaction")?;
    let signed = ctx.app.decode(&raw).map_err(tx_error)?;
    let now_s = ctx.now_s();
    let sent = transact::send(ctx.tx, &ctx.app.codes, &signed, &raw, now_s).map_err(tx_error)?;
    ctx.claims_digest = Some(transact::claims_digest(&sent.hash, &sent.record));
    Ok(hex(sent.hash))
}

/// A transaction's record and, once sealed, its place and block hash.
type Found = (TxRecord, Option<(records::TxPlace, B256)>);

/// Looks a transaction up.
fn find(tx: &mut Tx, hash: &B256, committed: u64) -> Result<Option<Found>, RpcError> {
    let Some(bytes) = tx.get(&maps::TXS, hash.as_slice()) else {
        return Ok(None);
    };
    let record: TxRecord = records::decode(bytes, "transaction").map_err(internal)?;
    // Placed in a block that is not committed yet: still pending, as clients see it.
    let place = tx
        .get_versioned(&maps::TX_PLACES, hash.as_slice())
        .filter(|(_, version)| version.is_some_and(|seqno| seqno.0 <= committed))
        .map(|(bytes, _)| bytes);
    let place = match place {
        None => None,
        Some(bytes) => {
            let place: records::TxPlace = records::decode(bytes, "place").map_err(internal)?;
            let block_hash = block::hash_of(tx, place.block_number)
                .ok_or_else(|| internal(format!("block {} has no hash", place.block_number)))?;
            Some((place, block_hash))
        }
    };
    Ok(Some((record, place)))
}

fn transaction_by_hash(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let hash = params::hash(param(p, 0), "transaction hash")?;
    let committed = ctx.node.committed_seqno();
    let Some((record, place)) = find(ctx.tx, &hash, committed)? else {
        return Ok(Value::Null);
    };
    let located = Located {
        hash: &hash,
        block_hash: place.as_ref().map(|(_, h)| h),
        place: place.as_ref().map(|(p, _)| p),
    };
    views::transaction(&record, &located).map_err(internal)
}

fn receipt(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let hash = params::hash(param(p, 0), "transaction hash")?;
    // Executed but not sealed yet: no receipt, as for a pending transaction.
    let committed = ctx.node.committed_seqno();
    let Some((record, Some((place, block_hash)))) = find(ctx.tx, &hash, committed)? else {
        return Ok(Value::Null);
    };
    let located = Located { hash: &hash, block_hash: Some(&block_hash), place: Some(&place) };
    views::receipt(&record, &located, &place).map_err(internal)
}

fn resolve_block(ctx: &mut Ctx<'_>, id: BlockId) -> Result<Option<records::BlockRecord>, RpcError> {
    let latest = latest(ctx)?;
    let number = match id {
        BlockId::Latest => Some(latest),
        // The open block has no hash or contents yet: as a node without pending blocks.
        BlockId::Pending => None,
        BlockId::Number(number) => Some(number),
        BlockId::Hash(hash) => block::number_of(ctx.tx, &hash),
    }
    .filter(|number| *number <= latest);
    match number {
        Some(number) => block::block(ctx.tx, number).map_err(internal),
        None => Ok(None),
    }
}

fn block_param(p: &Value) -> Result<BlockId, RpcError> {
    let first = param(p, 0);
    // eth_getBlockByHash passes a bare 32-byte hash.
    match first.as_str() {
        Some(text) if text.len() == 66 => params::hash(first, "block hash").map(BlockId::Hash),
        Some(_) | None => params::block_id(first),
    }
}

fn block_by(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let id = block_param(p)?;
    let full = param(p, 1).as_bool().unwrap_or(false);
    let Some(block) = resolve_block(ctx, id)? else {
        return Ok(Value::Null);
    };
    let block_hash = block.hash();
    let mut transactions = Vec::with_capacity(block.tx_hashes().len());
    for hash in block.tx_hashes() {
        if full {
            let (record, place) = logs::sealed(ctx.tx, &hash)?;
            let located =
                Located { hash: &hash, block_hash: Some(&block_hash), place: Some(&place) };
            transactions.push(views::transaction(&record, &located).map_err(internal)?);
        } else {
            transactions.push(hex(hash));
        }
    }
    Ok(views::block(&block, transactions))
}

fn block_tx_count(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let id = block_param(p)?;
    Ok(resolve_block(ctx, id)?.map_or(Value::Null, |block| qty(block.tx_hashes().len() as u64)))
}

fn fee_history(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let count = params::quantity_u64(param(p, 0), "blockCount")?.clamp(1, 1024);
    let latest = latest(ctx)?;
    let newest = match params::block_id(param(p, 1))? {
        BlockId::Number(number) => number.min(latest),
        BlockId::Latest | BlockId::Pending | BlockId::Hash(_) => latest,
    };
    let oldest = newest.saturating_sub(count - 1);
    let percentiles = fee_percentiles(param(p, 2))?;
    let chain = chain(ctx)?;
    let mut ratios = Vec::new();
    for number in oldest..=newest {
        let used = block::block(ctx.tx, number).map_err(internal)?.map_or(0, |b| b.gas_used);
        ratios.push(json!((used as f64 / chain.gas_limit as f64).min(1.0)));
    }
    let fees = vec![qty(chain.base_fee); ratios.len() + 1];
    // Tips are burnt: the reward at every percentile is zero.
    let reward = vec![vec![qty(0u64); percentiles]; ratios.len()];
    let mut answer =
        json!({"oldestBlock": qty(oldest), "baseFeePerGas": fees, "gasUsedRatio": ratios});
    if percentiles > 0 {
        answer["reward"] = json!(reward);
    }
    Ok(answer)
}

/// go-ethereum's rule: at most 100 reward percentiles, numbers from 0 to 100, ascending.
fn fee_percentiles(value: &Value) -> Result<usize, RpcError> {
    let Some(items) = value.as_array() else {
        return Ok(0);
    };
    let numbers: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
    let numbers =
        numbers.ok_or_else(|| RpcError::invalid("rewardPercentiles: numbers expected"))?;
    let ascending = numbers.windows(2).all(|pair| pair[0] <= pair[1]);
    let in_range = numbers.iter().all(|p| (0.0..=100.0).contains(p));
    if numbers.len() > 100 || !ascending || !in_range {
        return Err(RpcError::invalid("rewardPercentiles: at most 100, ascending, within 0..=100"));
    }
    Ok(numbers.len())
}

fn coco_receipt(ctx: &mut Ctx<'_>, p: &Value) -> RpcResult {
    let hash = params::hash(param(p, 0), "transaction hash")?;
    let Some((bytes, version)) = ctx.tx.get_versioned(&maps::TXS, hash.as_slice()) else {
        return Ok(Value::Null);
    };
    let record: TxRecord = records::decode(bytes, "transaction").map_err(internal)?;
    let seqno = version.ok_or_else(|| internal("a stored record has a version"))?;
    let receipt = ctx.node.receipt(seqno.0).map_err(RpcError::refused)?;
    let digest = transact::claims_digest(&hash, &record);
    Ok(json!({
        "transactionHash": hex(hash),
        "receipt": receipt,
        "claimsDigest": alloy_primitives::hex::encode(digest),
    }))
}
