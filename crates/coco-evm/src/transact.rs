//! The three ways the app runs the EVM: a signed transaction (writes state, one Coco
//! transaction each), a call (reads only) and a gas estimate (calls, searching the gas).

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, Bytes};
use coco_kv::Tx;
use revm::context_interface::result::{ExecutionResult, Output};

use crate::block::{self, open_block};
use crate::error::TxError;
use crate::execute::{self, BENEFICIARY, BlockContext, CallParams, SignedTx};
use crate::maps;
use crate::records::{LogRecord, TxRecord};
use crate::state::{self, CodeCache, apply_state};

/// What sending a signed transaction did.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The transaction's hash.
    pub hash: B256,
    /// Its record (status, gas, logs), as stored.
    pub record: TxRecord,
}

/// Executes a signed transaction in the open block and writes its effects: state, its
/// record, and its place in the queue for the next seal. On any error nothing is written.
///
/// # Errors
/// [`TxError`] for a transaction the chain refuses.
pub fn send(
    tx: &mut Tx,
    codes: &CodeCache,
    signed: &SignedTx,
    raw: &[u8],
    now_s: u64,
) -> Result<Sent, TxError> {
    if tx.get(&maps::TXS, signed.hash.as_slice()).is_some() {
        return Err(TxError::AlreadyKnown);
    }
    let (block, stamp) = open_block(tx, now_s)?;
    let outcome = execute::run(tx, codes, &block, execute::tx_env(signed), false)?;
    let price = signed.envelope.effective_gas_price(Some(block.base_fee));
    let record = record_of(&outcome.result, raw, &signed.sender, price);
    state::check_clearable(tx, &outcome.state)?;
    apply_state(tx, outcome.state, &BENEFICIARY);
    block::add_pending(tx, &signed.hash, &record, stamp);
    Ok(Sent { hash: signed.hash, record })
}

fn record_of(result: &ExecutionResult, raw: &[u8], from: &Address, price: u128) -> TxRecord {
    let contract = match result {
        ExecutionResult::Success { output: Output::Create(_, Some(address)), .. } => {
            address.to_vec()
        }
        ExecutionResult::Success { .. }
        | ExecutionResult::Revert { .. }
        | ExecutionResult::Halt { .. } => Vec::new(),
    };
    TxRecord {
        raw: raw.to_vec(),
        from: from.to_vec(),
        success: result.is_success(),
        gas_used: result.tx_gas_used(),
        effective_gas_price: price,
        contract_address: contract,
        logs: result.logs().iter().map(LogRecord::from_log).collect(),
    }
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// It returned this data, using this much gas.
    Returned {
        /// The return data.
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// It reverted with this data (an `Error(string)` reason, a custom error, or empty).
    Reverted(Bytes),
    /// It stopped abnormally (out of gas, invalid opcode, …).
    Halted(String),
}

/// Runs a call in the open block against current state, writing nothing.
///
/// # Errors
/// [`TxError`] when the call cannot start (for example the sender cannot pay the value).
pub fn call(
    tx: &mut Tx,
    codes: &CodeCache,
    params: &CallParams,
    now_s: u64,
) -> Result<CallOutcome, TxError> {
    let (block, _) = open_block(tx, now_s)?;
    call_in(tx, codes, params, &block)
}

fn call_in(
    tx: &mut Tx,
    codes: &CodeCache,
    params: &CallParams,
    block: &BlockContext,
) -> Result<CallOutcome, TxError> {
    let from = params.from.unwrap_or_default();
    let nonce = state::account(tx, &from)?.map_or(0, |a| a.nonce);
    let outcome = execute::run(tx, codes, block, execute::call_env(params, block, nonce), true)?;
    let gas_used = outcome.result.tx_gas_used();
    Ok(match outcome.result {
        ExecutionResult::Success { output, .. } => {
            CallOutcome::Returned { output: output.into_data(), gas_used }
        }
        ExecutionResult::Revert { output, .. } => CallOutcome::Reverted(output),
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halted(format!("{reason:?}")),
    })
}

/// The least gas with which the call succeeds: a binary search between what a run with
/// the most gas used and that most (gas refunds and the 63/64 rule make the used amount
/// too little for some calls), as go-ethereum does. Returns the failing outcome when the
/// call fails even with the most gas.
///
/// # Errors
/// As [`call`].
pub fn estimate_gas(
    tx: &mut Tx,
    codes: &CodeCache,
    params: &CallParams,
    now_s: u64,
) -> Result<Result<u64, CallOutcome>, TxError> {
    let (block, _) = open_block(tx, now_s)?;
    let mut params = params.clone();
    let cap = params.gas.unwrap_or(block.gas_limit).min(block.gas_limit);
    params.gas = Some(cap);
    let used = match call_in(tx, codes, &params, &block)? {
        CallOutcome::Returned { gas_used, .. } => gas_used,
        failed @ (CallOutcome::Reverted(_) | CallOutcome::Halted(_)) => return Ok(Err(failed)),
    };
    let (mut low, mut high) = (used.saturating_sub(1), cap);
    // The common case first: what it used is enough.
    params.gas = Some(used);
    if matches!(call_in(tx, codes, &params, &block), Ok(CallOutcome::Returned { .. })) {
        return Ok(Ok(used));
    }
    low = low.max(used);
    while low + 1 < high {
        let mid = low + (high - low) / 2;
        params.gas = Some(mid);
        match call_in(tx, codes, &params, &block) {
            Ok(CallOutcome::Returned { .. }) => high = mid,
            Ok(CallOutcome::Reverted(_) | CallOutcome::Halted(_)) | Err(_) => low = mid,
        }
    }
    Ok(Ok(high))
}

/// Decodes an `Error(string)` revert payload (selector `0x08c379a0`) into its reason.
#[must_use]
pub fn revert_reason(output: &[u8]) -> Option<String> {
    let data = output.strip_prefix(&[0x08, 0xc3, 0x79, 0xa0])?;
    let word = |at: usize| -> Option<usize> {
        let bytes = data.get(at..at.checked_add(32)?)?;
        let value = alloy_primitives::U256::from_be_slice(bytes);
        usize::try_from(value).ok()
    };
    let offset = word(0)?;
    let len = word(offset)?;
    let start = offset.checked_add(32)?;
    let bytes = data.get(start..start.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// What a Coco receipt of an Ethereum transaction proves: the SHA-256 of its hash and its
/// outcome, `hash (32) ‖ status (1) ‖ gas used (8, BE) ‖` then per log `address (20) ‖
/// topic count (1) ‖ topics (32 each) ‖ data length (8, BE) ‖ data`. The node commits it
/// as the transaction's claims digest, so the receipt's Merkle leaf binds the outcome a
/// client sees over JSON-RPC; anyone can recompute it offline.
///
/// # Panics
/// Never: the EVM emits at most four topics per log.
#[must_use]
pub fn claims_digest(hash: &B256, record: &TxRecord) -> [u8; 32] {
    let mut digest = coco_crypto::Sha256::new();
    digest.update(hash.as_slice());
    digest.update(&[u8::from(record.success)]);
    digest.update(&record.gas_used.to_be_bytes());
    for log in &record.logs {
        digest.update(&log.address);
        let topics = u8::try_from(log.topics.len() / 32).expect("a log has at most 4 topics");
        digest.update(&[topics]);
        digest.update(&log.topics);
        digest.update(&(log.data.len() as u64).to_be_bytes());
        digest.update(&log.data);
    }
    digest.finish().0
}
