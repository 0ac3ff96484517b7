//! Reading JSON-RPC parameters: Ethereum's hex quantities, data, addresses, block tags.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde_json::Value;

use crate::error::{CODE_INVALID_PARAMS, CODE_REFUSED};
use crate::execute::CallParams;

/// A JSON-RPC error object's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data (revert data for reverted calls).
    pub data: Option<Value>,
}

impl RpcError {
    /// -32602 with `message`.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { code: CODE_INVALID_PARAMS, message: message.into(), data: None }
    }

    /// -32000 with `message`.
    #[must_use]
    pub fn refused(message: impl Into<String>) -> Self {
        Self { code: CODE_REFUSED, message: message.into(), data: None }
    }
}

/// Result of a method.
pub type RpcResult = Result<Value, RpcError>;

/// The `index`th parameter (`null` when absent).
#[must_use]
pub fn param(params: &Value, index: usize) -> &Value {
    params.get(index).unwrap_or(&Value::Null)
}

fn text<'a>(value: &'a Value, what: &str) -> Result<&'a str, RpcError> {
    value.as_str().ok_or_else(|| RpcError::invalid(format!("{what}: expected a hex string")))
}

fn hex_digits<'a>(value: &'a Value, what: &str) -> Result<&'a str, RpcError> {
    let text = text(value, what)?;
    text.strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| RpcError::invalid(format!("{what}: hex string without 0x prefix")))
}

/// Bytes from `0x…` data.
///
/// # Errors
/// -32602 for anything else.
pub fn data(value: &Value, what: &str) -> Result<Vec<u8>, RpcError> {
    alloy_primitives::hex::decode(hex_digits(value, what)?)
        .map_err(|e| RpcError::invalid(format!("{what}: {e}")))
}

/// A 20-byte address.
///
/// # Errors
/// -32602 for anything else.
pub fn address(value: &Value, what: &str) -> Result<Address, RpcError> {
    let bytes = data(value, what)?;
    if bytes.len() != 20 {
        return Err(RpcError::invalid(format!("{what}: an address has 20 bytes")));
    }
    Ok(Address::from_slice(&bytes))
}

/// A 32-byte hash.
///
/// # Errors
/// -32602 for anything else.
pub fn hash(value: &Value, what: &str) -> Result<B256, RpcError> {
    let bytes = data(value, what)?;
    if bytes.len() != 32 {
        return Err(RpcError::invalid(format!("{what}: a hash has 32 bytes")));
    }
    Ok(B256::from_slice(&bytes))
}

/// A quantity (`0x` and at most 64 hex digits).
///
/// # Errors
/// -32602 for anything else.
pub fn quantity(value: &Value, what: &str) -> Result<U256, RpcError> {
    let digits = hex_digits(value, what)?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(RpcError::invalid(format!("{what}: a quantity has 1 to 64 hex digits")));
    }
    U256::from_str_radix(digits, 16).map_err(|e| RpcError::invalid(format!("{what}: {e}")))
}

/// A quantity that fits 64 bits.
///
/// # Errors
/// -32602 for anything else.
pub fn quantity_u64(value: &Value, what: &str) -> Result<u64, RpcError> {
    u64::try_from(quantity(value, what)?)
        .map_err(|_| RpcError::invalid(format!("{what}: does not fit 64 bits")))
}

/// A block named by a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    /// The newest sealed block (`latest`, `safe`, `finalized`: sealed blocks are final
    /// once their signature commits, moments later).
    Latest,
    /// The open block (`pending`).
    Pending,
    /// A height (`earliest` is 0).
    Number(u64),
    /// A hash.
    Hash(B256),
}

/// A block parameter; `null` (absent) means `latest`.
///
/// # Errors
/// -32602 for anything else.
pub fn block_id(value: &Value) -> Result<BlockId, RpcError> {
    match value {
        Value::Null => Ok(BlockId::Latest),
        Value::String(tag) => match tag.as_str() {
            "latest" | "safe" | "finalized" => Ok(BlockId::Latest),
            "pending" => Ok(BlockId::Pending),
            "earliest" => Ok(BlockId::Number(0)),
            _ => quantity_u64(value, "block").map(BlockId::Number),
        },
        Value::Object(object) => {
            if let Some(hash_value) = object.get("blockHash") {
                return hash(hash_value, "blockHash").map(BlockId::Hash);
            }
            object
                .get("blockNumber")
                .map(|number| quantity_u64(number, "blockNumber").map(BlockId::Number))
                .unwrap_or_else(|| {
                    Err(RpcError::invalid("block: expected blockHash or blockNumber"))
                })
        }
        Value::Bool(_) | Value::Number(_) | Value::Array(_) => {
            Err(RpcError::invalid("block: expected a tag, a hex number or an object"))
        }
    }
}

/// A call object (`eth_call`, `eth_estimateGas`).
///
/// # Errors
/// -32602 when a field does not parse.
pub fn call(value: &Value) -> Result<CallParams, RpcError> {
    let object = value.as_object().ok_or_else(|| RpcError::invalid("call: expected an object"))?;
    let field = |name: &str| object.get(name).filter(|v| !v.is_null());
    let data_field = field("input").or_else(|| field("data"));
    Ok(CallParams {
        from: field("from").map(|v| address(v, "from")).transpose()?,
        to: field("to").map(|v| address(v, "to")).transpose()?,
        gas: field("gas").map(|v| quantity_u64(v, "gas")).transpose()?,
        value: field("value").map(|v| quantity(v, "value")).transpose()?.unwrap_or_default(),
        data: Bytes::from(data_field.map(|v| data(v, "input")).transpose()?.unwrap_or_default()),
    })
}

/// State is only kept as of now: a request for another block's state is refused rather
/// than answered with today's values.
///
/// # Errors
/// -32000 for a block before the newest sealed one.
pub fn current_state(block: BlockId, latest: u64) -> Result<(), RpcError> {
    match block {
        BlockId::Latest | BlockId::Pending => Ok(()),
        BlockId::Number(number) if number >= latest => Ok(()),
        BlockId::Number(_) | BlockId::Hash(_) => Err(RpcError::refused(
            "historical state is not available: Coco keeps the latest state only",
        )),
    }
}

/// `0x`-prefixed lowercase hex of a quantity, without leading zeros.
#[must_use]
pub fn qty(value: impl std::fmt::LowerHex) -> Value {
    Value::String(format!("{value:#x}"))
}

/// `0x`-prefixed hex of bytes.
#[must_use]
pub fn hex(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(alloy_primitives::hex::encode_prefixed(bytes))
}
