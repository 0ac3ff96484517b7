//! The Ethereum app as the node sees it: genesis, one JSON-RPC request per Coco
//! transaction, batches split into their elements, and a block seal before each signature.
//! The node never names this crate; the `coco` binary adapts it to the node's app
//! interface.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use coco_kv::Tx;
use serde::Deserialize;
use serde_json::Value;

use crate::block;
use crate::error::{CODE_INVALID_REQUEST, CODE_PARSE_ERROR, TxError};
use crate::execute::{self, SignedTx};
use crate::records::ChainRecord;
use crate::rpc::{self, Reply, params::RpcError};
use crate::state::{self, StateError};
use crate::transact;

/// Most requests in one JSON-RPC batch.
pub const BATCH_MAX: usize = 1_000;

/// What the app asks of the node it runs in.
pub trait NodeServices {
    /// The node's clock, in milliseconds since the Unix epoch (block timestamps).
    fn now_ms(&self) -> u64;
    /// The node's commit point: blocks and receipts are served once committed.
    fn committed_seqno(&self) -> u64;
    /// The Coco receipt (CCF JSON) of the transaction at `seqno`, once committed.
    ///
    /// # Errors
    /// Why there is none yet (not committed, or unknown), in words for the client.
    fn receipt(&self, seqno: u64) -> Result<Value, String>;
}

/// The chain's settings: the node configuration's `[apps.eth]` table. They are written
/// into the chain at genesis; later nodes take them from the ledger, not their own file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthConfig {
    /// EIP-155 chain id (31337, as anvil and Hardhat, so wallets' local-network presets
    /// work).
    #[serde(default = "default_chain_id")]
    pub chain_id: u64,
    /// Base fee per gas, in wei. Constant: there is no block space to auction.
    #[serde(default = "default_base_fee")]
    pub base_fee: u64,
    /// Most gas one transaction may use.
    #[serde(default = "default_gas_limit")]
    pub gas_limit: u64,
    /// Fund the ten development accounts of the `test … junk` mnemonic with 10,000 ETH
    /// each (never on a service holding value: their keys are public).
    #[serde(default)]
    pub dev_accounts: bool,
    /// Genesis balances: address → wei (decimal or `0x` hex).
    #[serde(default)]
    pub alloc: BTreeMap<String, String>,
}

fn default_chain_id() -> u64 {
    31_337
}

fn default_base_fee() -> u64 {
    1_000_000_000
}

fn default_gas_limit() -> u64 {
    30_000_000
}

impl Default for EthConfig {
    fn default() -> Self {
        Self {
            chain_id: default_chain_id(),
            base_fee: default_base_fee(),
            gas_limit: default_gas_limit(),
            dev_accounts: false,
            alloc: BTreeMap::new(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The table does not parse.
    #[error("[apps.eth]: {0}")]
    Parse(String),
    /// A genesis entry is not an address and an amount.
    #[error("[apps.eth] alloc: {0}")]
    Alloc(String),
}

/// The ten development accounts (`test test test test test test test test test test test
/// junk`, derivation path m/44'/60'/0'/0/i): private key, address.
pub const DEV_ACCOUNTS: [(&str, &str); 10] = [
    (
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    ),
    (
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "70997970C51812dc3A010C7d01b50e0d17dc79C8",
    ),
    (
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    ),
    (
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "90F79bf6EB2c4f870365E785982E1f101E93b906",
    ),
    (
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    ),
    (
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    ),
    (
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "976EA74026E726554dB657fA54763abd0C3a0aa9",
    ),
    (
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    ),
    (
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
        "23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    ),
    (
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
        "a0Ee7A142d267C1f36714E4a8F75612F20a79720",
    ),
];

/// What each development account starts with: 10,000 ETH.
pub const DEV_BALANCE_ETH: u64 = 10_000;

impl EthConfig {
    /// Reads `[apps.eth]` (absent: the defaults).
    ///
    /// # Errors
    /// [`ConfigError`] for unknown keys, wrong types or a bad genesis entry.
    pub fn from_value(value: Option<&Value>) -> Result<Self, ConfigError> {
        let config: Self = match value {
            None => Self::default(),
            Some(value) => {
                Self::deserialize(value).map_err(|e| ConfigError::Parse(e.to_string()))?
            }
        };
        config.balances()?;
        Ok(config)
    }

    /// Genesis balances, the development accounts' included.
    ///
    /// # Panics
    /// Never: the development addresses are constants that parse.
    ///
    /// # Errors
    /// [`ConfigError::Alloc`] for an entry that is not an address and an amount.
    pub fn balances(&self) -> Result<BTreeMap<Address, U256>, ConfigError> {
        let mut balances = BTreeMap::new();
        if self.dev_accounts {
            let wei = U256::from(DEV_BALANCE_ETH) * U256::from(10u64).pow(U256::from(18u64));
            for (_, address) in DEV_ACCOUNTS {
                let address: Address = address.parse().expect("the development addresses parse");
                balances.insert(address, wei);
            }
        }
        for (address, amount) in &self.alloc {
            let parsed: Address =
                address.parse().map_err(|e| ConfigError::Alloc(format!("{address}: {e}")))?;
            let wei = match amount.strip_prefix("0x") {
                Some(hex) => U256::from_str_radix(hex, 16),
                None => U256::from_str_radix(amount, 10),
            }
            .map_err(|e| ConfigError::Alloc(format!("{address} = {amount}: {e}")))?;
            balances.insert(parsed, wei);
        }
        Ok(balances)
    }
}

/// The Ethereum app.
#[derive(Debug)]
pub struct EthApp {
    config: EthConfig,
    block_txs_max: usize,
    pub(crate) filters: rpc::logs::Filters,
    pub(crate) codes: state::CodeCache,
}

impl EthApp {
    /// An app that creates its chain from `config` at genesis, and seals blocks whose
    /// write sets fit the node's default bound.
    #[must_use]
    pub fn new(config: EthConfig) -> Self {
        let block_txs_max = block::block_txs_max(coco_types::Limits::default().write_set_bytes_max);
        Self {
            config,
            block_txs_max,
            filters: rpc::logs::Filters::default(),
            codes: state::CodeCache::default(),
        }
    }

    /// Seals blocks whose write sets fit `write_set_bytes_max` (the node's `[limits]`):
    /// a seal the node refuses as too large would never succeed, and blocks would stop.
    #[must_use]
    pub fn with_write_set_bytes_max(mut self, write_set_bytes_max: u64) -> Self {
        self.block_txs_max = block::block_txs_max(write_set_bytes_max);
        self
    }

    /// Writes the chain's genesis: parameters, balances and block 0.
    ///
    /// # Errors
    /// [`ConfigError`] for a bad genesis entry (checked when the config was read).
    pub fn genesis(&self, tx: &mut Tx, now_ms: u64) -> Result<(), ConfigError> {
        let chain = ChainRecord {
            chain_id: self.config.chain_id,
            base_fee: self.config.base_fee,
            gas_limit: self.config.gas_limit,
        };
        for (address, balance) in self.config.balances()? {
            state::put_genesis_account(tx, &address, balance, None, &[]);
        }
        block::genesis(tx, &chain, now_ms / 1000);
        Ok(())
    }

    /// Decodes a signed transaction and recovers its sender (the expensive part: ~46 µs).
    ///
    /// # Errors
    /// As [`execute::decode`].
    pub fn decode(&self, raw: &[u8]) -> Result<SignedTx, TxError> {
        execute::decode(raw)
    }

    /// Prepares a request that sends a transaction: the checks that need no state (JSON,
    /// RLP, the sender's recovery, most of a transfer's cost) run here, beside other
    /// requests; [`EthApp::execute_prepared`] runs the rest at the transaction's seqno.
    /// `None` for any other request, one that is refused (the usual path answers it), or
    /// one allowed more than [`PREPARED_GAS_MAX`] gas.
    #[must_use]
    pub fn prepare_send(&self, body: &[u8]) -> Option<PreparedSend> {
        let request: Value = serde_json::from_slice(body).ok()?;
        let (method, params) = rpc::request_parts(&request).ok()?;
        if method != "eth_sendRawTransaction" {
            return None;
        }
        let raw = rpc::params::data(rpc::params::param(params, 0), "transaction").ok()?;
        let signed = self.decode(&raw).ok()?;
        if alloy_consensus::Transaction::gas_limit(&signed.envelope) > PREPARED_GAS_MAX {
            return None;
        }
        Some(PreparedSend { id: request.get("id").cloned(), raw, signed })
    }

    /// Sends a prepared transaction in `tx`, as `eth_sendRawTransaction` would; refusals
    /// (nonce, funds, fees) are JSON-RPC errors and write nothing.
    pub fn execute_prepared(&self, prepared: &PreparedSend, tx: &mut Tx, now_ms: u64) -> Reply {
        let sent = transact::send(tx, &self.codes, &prepared.signed, &prepared.raw, now_ms / 1000);
        rpc::sent_reply(prepared.id.clone(), sent)
    }

    /// Answers one JSON-RPC request (not a batch: see [`split_batch`]). The request's
    /// writes, if any, are one Coco transaction; a refused request writes nothing.
    pub fn handle(&self, body: &[u8], tx: &mut Tx, node: &dyn NodeServices) -> Reply {
        match serde_json::from_slice::<Value>(body) {
            Ok(request @ Value::Object(_)) => rpc::handle(self, &request, tx, node),
            Ok(_) => whole_body_error(CODE_INVALID_REQUEST, "invalid request: expected an object"),
            Err(e) => whole_body_error(CODE_PARSE_ERROR, &format!("parse error: {e}")),
        }
    }

    /// Seals the block of everything executed since the last seal; the node calls it right
    /// before each signature transaction. Writes nothing when nothing is pending.
    ///
    /// # Errors
    /// [`StateError`] for corrupt records.
    pub fn seal(&self, tx: &mut Tx, now_ms: u64) -> Result<(), StateError> {
        block::seal(tx, now_ms / 1000, self.block_txs_max).map(drop)
    }

    /// Whether a seal has anything to do.
    pub fn has_pending(&self, tx: &mut Tx) -> bool {
        block::has_pending(tx)
    }
}

/// Most gas a prepared transaction may be allowed ([`EthApp::prepare_send`]): it runs
/// under the node's lock, on the path every transaction takes, so its execution must stay
/// short (an ERC-20 transfer needs 35,000–52,000; 200,000 gas of the cheapest instructions
/// runs in about a millisecond). Larger ones execute on a snapshot first, as any request.
pub const PREPARED_GAS_MAX: u64 = 200_000;

/// An `eth_sendRawTransaction` checked before it is ordered: parsed, decoded, its sender
/// recovered.
#[derive(Debug)]
pub struct PreparedSend {
    id: Option<Value>,
    raw: Vec<u8>,
    signed: SignedTx,
}

fn whole_body_error(code: i64, message: &str) -> Reply {
    let error = RpcError { code, message: message.to_owned(), data: None };
    Reply { response: Some(rpc::error_response(&Value::Null, &error)), claims_digest: None }
}

/// A body's shape: one request, or a batch of them.
#[derive(Debug)]
pub enum Body {
    /// Run as one request.
    Single,
    /// A batch: each element runs as a request (and Coco transaction) of its own, in
    /// order; join their responses with [`join_batch`].
    Batch(Vec<Vec<u8>>),
    /// A batch that cannot run (empty, too large); answer with this body.
    Refused(Vec<u8>),
}

/// Splits a batch into its requests.
#[must_use]
pub fn split_batch(body: &[u8]) -> Body {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Body::Single;
    }
    let refuse = |code, message: String| {
        let error = RpcError { code, message, data: None };
        Body::Refused(
            serde_json::to_vec(&rpc::error_response(&Value::Null, &error)).unwrap_or_default(),
        )
    };
    // Each element's own bytes: the handler parses them once, nothing is re-serialised.
    match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body) {
        Err(e) => refuse(CODE_PARSE_ERROR, format!("parse error: {e}")),
        Ok(items) if items.is_empty() => {
            refuse(CODE_INVALID_REQUEST, "invalid request: empty batch".into())
        }
        Ok(items) if items.len() > BATCH_MAX => refuse(
            CODE_INVALID_REQUEST,
            format!("batch of {} requests: at most {BATCH_MAX}", items.len()),
        ),
        Ok(items) => Body::Batch(items.iter().map(|item| item.get().as_bytes().to_vec()).collect()),
    }
}

/// The batch response: the elements' response objects (already JSON) in an array; empty
/// (no body at all, as JSON-RPC 2.0 requires) when every element was a notification.
#[must_use]
pub fn join_batch(responses: &[Vec<u8>]) -> Vec<u8> {
    let responses: Vec<&Vec<u8>> = responses.iter().filter(|r| !r.is_empty()).collect();
    if responses.is_empty() {
        return Vec::new();
    }
    let mut body = Vec::with_capacity(responses.iter().map(|r| r.len() + 1).sum::<usize>() + 1);
    body.push(b'[');
    for (index, response) in responses.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(response);
    }
    body.push(b']');
    body
}
