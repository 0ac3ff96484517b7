//! Decoding signed transactions and running them, or calls, with revm over the KV.

use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::Typed2718 as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use coco_kv::Tx;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::result::{EVMError, ExecutionResult, InvalidTransaction};
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;
use revm::{ExecuteEvm, MainBuilder, MainContext};

use crate::error::TxError;
use crate::state::{CodeCache, KvDb, StateError};

/// The hard fork Coco runs: Prague (solc's default target up to 0.8.29, and what
/// anvil and Hardhat ran through 2025). Osaka would cap a transaction's gas at 2^24.
pub const SPEC: SpecId = SpecId::PRAGUE;

/// Largest signed transaction accepted, in bytes (geth's pool limit is 128 KiB).
pub const RAW_TX_BYTES_MAX: usize = 128 * 1024;

/// A signed transaction, decoded and with its sender recovered.
#[derive(Clone, Debug)]
pub struct SignedTx {
    /// The transaction.
    pub envelope: TxEnvelope,
    /// Its hash: Keccak-256 of the EIP-2718 bytes.
    pub hash: B256,
    /// Who signed it.
    pub sender: Address,
}

/// Decodes one EIP-2718 transaction (legacy with EIP-155, EIP-2930 or EIP-1559) and
/// recovers its sender. revm trusts the sender it is given, so this is where signatures
/// are checked.
///
/// # Errors
/// [`TxError`] for oversized or malformed bytes, another transaction type, a transaction
/// without replay protection, or a signature that does not recover (or has a high `s`).
pub fn decode(raw: &[u8]) -> Result<SignedTx, TxError> {
    if raw.len() > RAW_TX_BYTES_MAX {
        return Err(TxError::Oversized { bytes: raw.len() as u64, max: RAW_TX_BYTES_MAX as u64 });
    }
    let envelope =
        TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
    match &envelope {
        TxEnvelope::Legacy(signed) if signed.tx().chain_id.is_none() => {
            return Err(TxError::NotReplayProtected);
        }
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
        TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_) => {
            return Err(TxError::UnsupportedType(envelope.ty()));
        }
    }
    let signature = envelope.signature();
    if signature.s() > alloy_consensus::crypto::SECP256K1N_HALF {
        return Err(TxError::BadSignature);
    }
    let sender = signature
        .recover_address_from_prehash(&envelope.signature_hash())
        .map_err(|_| TxError::BadSignature)?;
    Ok(SignedTx { hash: *envelope.tx_hash(), envelope, sender })
}

/// revm's view of a signed transaction.
#[must_use]
pub fn tx_env(signed: &SignedTx) -> TxEnv {
    let envelope = &signed.envelope;
    TxEnv {
        tx_type: envelope.ty(),
        caller: signed.sender,
        gas_limit: envelope.gas_limit(),
        // Legacy and EIP-2930: the price; EIP-1559: the cap, with the tip beside it.
        gas_price: envelope.max_fee_per_gas(),
        gas_priority_fee: envelope.max_priority_fee_per_gas().filter(|_| envelope.ty() == 2),
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        ..TxEnv::default()
    }
}

/// The block a transaction or call executes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The open block's number.
    pub number: u64,
    /// The open block's timestamp (seconds).
    pub timestamp: u64,
    /// Base fee per gas (wei).
    pub base_fee: u64,
    /// Most gas one transaction may use.
    pub gas_limit: u64,
}

/// Who receives priority fees: nobody (the zero address, special-cased in [`KvDb`]).
pub const BENEFICIARY: Address = Address::ZERO;

/// What a run gave: the result and the state diff to apply.
pub struct Outcome {
    /// Success, revert or halt, with gas and logs.
    pub result: ExecutionResult,
    /// Accounts and slots the run touched.
    pub state: EvmState,
}

/// Runs `env` in `block` without writing anything.
///
/// # Errors
/// [`TxError`] for a transaction the chain refuses (nothing may be written then), or
/// corrupt state.
pub fn run(
    tx: &mut Tx,
    codes: &CodeCache,
    block: &BlockContext,
    env: TxEnv,
    call: bool,
) -> Result<Outcome, TxError> {
    let mut cfg = CfgEnv::new_with_spec(SPEC).with_chain_id(block.chain_id);
    // A call is not a signed transaction: no nonce to match, no fee (so no base fee), and
    // it may come from a contract (EIP-3607 guards signatures, which a call has none of).
    cfg.disable_nonce_check = call;
    cfg.disable_eip3607 = call;
    let block_env = BlockEnv {
        number: U256::from(block.number),
        timestamp: U256::from(block.timestamp),
        basefee: if call { 0 } else { block.base_fee },
        gas_limit: block.gas_limit,
        beneficiary: BENEFICIARY,
        ..BlockEnv::default()
    };
    let db = KvDb { tx, codes, beneficiary: BENEFICIARY };
    let mut evm =
        Context::mainnet().with_db(db).with_cfg(cfg).with_block(block_env).build_mainnet();
    match evm.transact(env) {
        Ok(out) => Ok(Outcome { result: out.result, state: out.state }),
        Err(EVMError::Transaction(invalid)) => Err(invalid_tx(invalid)),
        Err(EVMError::Database(StateError(reason))) => Err(TxError::State(reason)),
        Err(EVMError::Header(e)) => Err(TxError::State(format!("block context: {e}"))),
        Err(EVMError::Custom(e)) => Err(TxError::State(e)),
        Err(EVMError::CustomAny(e)) => Err(TxError::State(e.to_string())),
    }
}

/// A call's parameters (`eth_call`, `eth_estimateGas`).
#[derive(Clone, Debug, Default)]
pub struct CallParams {
    /// The caller (zero when absent).
    pub from: Option<Address>,
    /// The callee; `None` runs `data` as creation code.
    pub to: Option<Address>,
    /// Gas to give (the chain's limit when absent).
    pub gas: Option<u64>,
    /// Value to send.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
}

/// revm's view of a call.
#[must_use]
pub fn call_env(params: &CallParams, block: &BlockContext, nonce: u64) -> TxEnv {
    TxEnv {
        tx_type: 2,
        caller: params.from.unwrap_or_default(),
        gas_limit: params.gas.unwrap_or(block.gas_limit).min(block.gas_limit),
        gas_price: 0,
        gas_priority_fee: Some(0),
        kind: params.to.map_or(TxKind::Create, TxKind::Call),
        value: params.value,
        data: params.data.clone(),
        nonce,
        chain_id: Some(block.chain_id),
        ..TxEnv::default()
    }
}

#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "revm's enum grows with each fork; the rest are refused in revm's own words"
)]
fn invalid_tx(invalid: InvalidTransaction) -> TxError {
    use InvalidTransaction as I;
    match invalid {
        I::NonceTooLow { tx, state } => TxError::NonceTooLow { tx, state },
        I::NonceTooHigh { tx, state } => TxError::NonceTooHigh { tx, state },
        I::InvalidChainId | I::MissingChainId => TxError::WrongChainId,
        I::LackOfFundForMaxFee { fee, balance } => {
            TxError::InsufficientFunds { cost: fee.to_string(), balance: balance.to_string() }
        }
        I::CallGasCostMoreThanGasLimit { initial_gas, gas_limit } => {
            TxError::IntrinsicGasTooLow { needed: initial_gas, limit: gas_limit }
        }
        I::GasFloorMoreThanGasLimit { gas_floor, gas_limit } => {
            TxError::IntrinsicGasTooLow { needed: gas_floor, limit: gas_limit }
        }
        I::GasPriceLessThanBasefee => TxError::FeeBelowBaseFee,
        I::PriorityFeeGreaterThanMaxFee => TxError::TipAboveFeeCap,
        I::CallerGasLimitMoreThanBlock | I::TxGasLimitGreaterThanCap { .. } => {
            TxError::GasLimitTooHigh
        }
        I::RejectCallerWithCode => TxError::SenderHasCode,
        other => TxError::Refused(other.to_string()),
    }
}
