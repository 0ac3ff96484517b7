//! The Ethereum app over a real KV store, through its JSON-RPC: transactions of every
//! type, the cross-check vector, contracts, reverts, refusals that write nothing,
//! block seals, logs and filters.
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use alloy_consensus::{TxEip1559, TxEip2930, TxLegacy};
use alloy_eips::eip2718::Decodable2718 as _;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use coco_evm::sign::LocalKey;
use coco_evm::testdata::FixedNode as Clock;
use coco_evm::{EthApp, EthConfig, NodeServices};
use coco_kv::Store;
use serde_json::{Value, json};

const DEV0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const CHAIN_ID: u64 = 31_337;
const GWEI: u128 = 1_000_000_000;
const ETHER: u128 = 1_000_000_000_000_000_000;

struct Chain {
    app: EthApp,
    store: Store,
}

impl Chain {
    fn new() -> Self {
        let config = EthConfig { dev_accounts: true, ..EthConfig::default() };
        let app = EthApp::new(config);
        let mut store = Store::new();
        let mut tx = store.begin();
        app.genesis(&mut tx, Clock.now_ms()).unwrap();
        store.commit(tx).unwrap();
        Self { app, store }
    }

    /// One request as one transaction: returns the response and whether it wrote.
    fn request(&mut self, method: &str, params: Value) -> (Value, bool) {
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        )
        .unwrap();
        let mut tx = self.store.begin();
        let reply = self.app.handle(&body, &mut tx, &Clock);
        let wrote = !tx.write_set().is_empty();
        self.store.commit(tx).unwrap();
        (reply.response.unwrap(), wrote)
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let (response, _) = self.request(method, params);
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    fn error(&mut self, method: &str, params: Value) -> Value {
        let (response, wrote) = self.request(method, params);
        assert!(!wrote, "{method} was refused but wrote: {response}");
        response.get("error").cloned().unwrap_or_else(|| panic!("{method} succeeded: {response}"))
    }

    fn send(&mut self, raw: &[u8]) -> String {
        self.result("eth_sendRawTransaction", json!([hex(raw)])).as_str().unwrap().to_owned()
    }

    fn seal(&mut self) {
        let mut tx = self.store.begin();
        self.app.seal(&mut tx, Clock.now_ms() + 1000).unwrap();
        self.store.commit(tx).unwrap();
    }

    fn nonce(&mut self, who: Address) -> u64 {
        quantity(&self.result("eth_getTransactionCount", json!([who.to_string(), "pending"])))
    }

    fn balance(&mut self, who: Address) -> U256 {
        let value = self.result("eth_getBalance", json!([who.to_string(), "latest"]));
        U256::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    alloy_primitives::hex::encode_prefixed(bytes)
}

fn quantity(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn dev0() -> LocalKey {
    LocalKey::from_hex(DEV0).unwrap()
}

fn eip1559(nonce: u64, to: TxKind, value: u128, gas: u64, input: Vec<u8>) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 2 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to,
        value: U256::from(value),
        access_list: AccessList::default(),
        input: input.into(),
    }
}

#[test]
fn the_cross_check_vector_gets_the_agreed_hash_and_moves_one_ether() {
    let mut chain = Chain::new();
    let key = dev0();
    assert_eq!(key.address(), address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
    let before = chain.balance(DEV1);
    let (raw, _) = key.sign(eip1559(0, TxKind::Call(DEV1), ETHER, 21_000, Vec::new()));
    let hash = chain.send(&raw);
    assert_eq!(hash, "0x7d4c13ed95c0cee830d7457ec5a5976db1fc301cfa7a23fef0039a7ccf6aea87");
    assert_eq!(chain.balance(DEV1), before + U256::from(ETHER));
    // Executed, not yet sealed: the transaction is known, its receipt is not.
    assert!(chain.result("eth_getTransactionReceipt", json!([hash])).is_null());
    assert!(chain.result("eth_getTransactionByHash", json!([hash]))["blockHash"].is_null());
    chain.seal();
    let receipt = chain.result("eth_getTransactionReceipt", json!([hash]));
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(receipt["gasUsed"], "0x5208");
    assert_eq!(receipt["blockNumber"], "0x1");
    assert_eq!(chain.result("eth_blockNumber", json!([])), "0x1");
    let block = chain.result("eth_getBlockByNumber", json!(["0x1", false]));
    assert_eq!(block["transactions"], json!([hash]));
    assert_eq!(block["hash"], receipt["blockHash"]);
    let by_hash = chain.result("eth_getBlockByHash", json!([block["hash"], true]));
    assert_eq!(by_hash["transactions"][0]["hash"], json!(hash));
    assert_eq!(
        by_hash["parentHash"],
        chain.result("eth_getBlockByNumber", json!(["0x0", false]))["hash"]
    );
}

#[test]
fn legacy_and_access_list_transactions_run_and_report_their_types() {
    let mut chain = Chain::new();
    let key = dev0();
    let legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 0,
        gas_price: 2 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(DEV1),
        value: U256::from(5u64),
        input: Bytes::new(),
    };
    let access = TxEip2930 {
        chain_id: CHAIN_ID,
        nonce: 1,
        gas_price: 2 * GWEI,
        gas_limit: 30_000,
        to: TxKind::Call(DEV1),
        value: U256::from(6u64),
        access_list: AccessList(vec![AccessListItem {
            address: DEV1,
            storage_keys: vec![B256::ZERO],
        }]),
        input: Bytes::new(),
    };
    let first = chain.send(&key.sign(legacy).0);
    let second = chain.send(&key.sign(access).0);
    chain.seal();
    let tx = chain.result("eth_getTransactionByHash", json!([first]));
    assert_eq!(tx["type"], "0x0");
    // EIP-155: v = chain id × 2 + 35 + y parity.
    assert!(["0xf4f5", "0xf4f6"].contains(&tx["v"].as_str().unwrap()), "{tx}");
    let receipt = chain.result("eth_getTransactionReceipt", json!([second]));
    assert_eq!((receipt["type"].as_str(), receipt["status"].as_str()), (Some("0x1"), Some("0x1")));
    assert_eq!(quantity(&receipt["gasUsed"]), 21_000 + 2_400 + 1_900);
    assert_eq!(quantity(&receipt["cumulativeGasUsed"]), 21_000 + 21_000 + 2_400 + 1_900);
    assert_eq!(quantity(&receipt["transactionIndex"]), 1);
}

#[test]
fn invalid_transactions_are_refused_with_geth_errors_and_write_nothing() {
    let mut chain = Chain::new();
    let key = dev0();
    let (raw, _) = key.sign(eip1559(0, TxKind::Call(DEV1), 1, 21_000, Vec::new()));
    chain.send(&raw);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (raw.clone(), "already known"),
        (key.sign(eip1559(0, TxKind::Call(DEV1), 2, 21_000, Vec::new())).0, "nonce too low"),
        (key.sign(eip1559(5, TxKind::Call(DEV1), 2, 21_000, Vec::new())).0, "nonce too high"),
        (
            key.sign(TxEip1559 {
                chain_id: 1,
                ..eip1559(1, TxKind::Call(DEV1), 2, 21_000, Vec::new())
            })
            .0,
            "invalid chain id",
        ),
        (
            key.sign(eip1559(1, TxKind::Call(DEV1), 20_000 * ETHER, 21_000, Vec::new())).0,
            "insufficient funds",
        ),
        (
            key.sign(eip1559(1, TxKind::Call(DEV1), 2, 20_000, Vec::new())).0,
            "intrinsic gas too low",
        ),
        (
            key.sign(TxEip1559 {
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 0,
                ..eip1559(1, TxKind::Call(DEV1), 2, 21_000, Vec::new())
            })
            .0,
            "less than block base fee",
        ),
        (
            key.sign(eip1559(1, TxKind::Call(DEV1), 2, 31_000_000, Vec::new())).0,
            "exceeds block gas limit",
        ),
        (
            key.sign(TxLegacy {
                chain_id: None,
                nonce: 1,
                gas_price: 2 * GWEI,
                gas_limit: 21_000,
                to: TxKind::Call(DEV1),
                value: U256::from(1u64),
                input: Bytes::new(),
            })
            .0,
            "replay-protected",
        ),
        (vec![0x02, 0xc0], "could not be decoded"),
    ];
    for (raw, expected) in cases {
        let error = chain.error("eth_sendRawTransaction", json!([hex(&raw)]));
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "expected {expected:?}, got {error}");
        assert!(error["code"].as_i64().unwrap() < 0, "{error}");
    }
    // A flipped signature byte recovers another sender (who has no funds) or none at all.
    let mut forged = key.sign(eip1559(1, TxKind::Call(DEV1), 2, 21_000, Vec::new())).0;
    let at = forged.len() - 2;
    forged[at] ^= 0x01;
    chain.error("eth_sendRawTransaction", json!([hex(&forged)]));
    assert_eq!(chain.nonce(key.address()), 1);
}

/// Minimal assembler: enough for a contract that stores, logs and reverts with a reason.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: std::collections::BTreeMap<&'static str, u8>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn op(&mut self, op: u8) -> &mut Self {
        self.code.push(op);
        self
    }
    fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.push(0x5f + u8::try_from(bytes.len()).unwrap());
        self.code.extend_from_slice(bytes);
        self
    }
    fn push_label(&mut self, label: &'static str) -> &mut Self {
        self.code.push(0x60);
        self.fixups.push((self.code.len(), label));
        self.code.push(0);
        self
    }
    fn label(&mut self, label: &'static str) -> &mut Self {
        self.labels.insert(label, u8::try_from(self.code.len()).unwrap());
        self.op(0x5b)
    }
    fn finish(&mut self) -> Vec<u8> {
        for (at, label) in &self.fixups {
            self.code[*at] = self.labels[label];
        }
        self.code.clone()
    }
}

const STORED_TOPIC: [u8; 32] = [0x11; 32];

/// Empty calldata: return slot 0. First byte 0xff: revert `Error("bad value")`.
/// Otherwise: slot 0 = calldata[0..32], and LOG1(topic 0x11…, data = the value).
fn runtime() -> Vec<u8> {
    let mut a = Asm::default();
    a.op(0x36).op(0x15).push_label("get").op(0x57);
    a.push(&[0]).op(0x35);
    a.op(0x80).push(&[248]).op(0x1c).push(&[0xff]).op(0x14).push_label("bad").op(0x57);
    a.op(0x80).push(&[0]).op(0x55);
    a.push(&[0]).op(0x52);
    a.push(&STORED_TOPIC).push(&[32]).push(&[0]).op(0xa1);
    a.op(0x00);
    a.label("get").push(&[0]).op(0x54).push(&[0]).op(0x52).push(&[32]).push(&[0]).op(0xf3);
    a.label("bad");
    let mut selector = [0u8; 32];
    selector[..4].copy_from_slice(&[0x08, 0xc3, 0x79, 0xa0]);
    a.push(&selector).push(&[0]).op(0x52);
    a.push(&[0x20]).push(&[0x04]).op(0x52);
    a.push(&[9]).push(&[0x24]).op(0x52);
    let mut message = [0u8; 32];
    message[..9].copy_from_slice(b"bad value");
    a.push(&message).push(&[0x44]).op(0x52);
    a.push(&[100]).push(&[0]).op(0xfd);
    a.finish()
}

/// Init code: slot 0 = 42, then return the runtime code.
fn init_code(runtime: &[u8]) -> Vec<u8> {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![0x60, 42, 0x60, 0, 0x55];
    code.extend_from_slice(&[0x60, len, 0x80, 0x60, 16, 0x60, 0, 0x39, 0x60, 0, 0xf3]);
    code.extend_from_slice(runtime);
    code
}

fn word(value: u8) -> Vec<u8> {
    let mut word = vec![0u8; 32];
    word[31] = value;
    word
}

#[test]
fn contracts_deploy_store_log_revert_and_fail_with_status_zero() {
    let mut chain = Chain::new();
    let key = dev0();
    let filter = chain.result("eth_newFilter", json!([{"topics": [hex(STORED_TOPIC)]}]));
    let deploy =
        chain.send(&key.sign(eip1559(0, TxKind::Create, 0, 200_000, init_code(&runtime()))).0);
    chain.seal();
    let contract =
        chain.result("eth_getTransactionReceipt", json!([deploy]))["contractAddress"].clone();
    assert_eq!(contract, "0x5fbdb2315678afecb367f032d93f642f64180aa3");
    assert_eq!(chain.result("eth_getCode", json!([contract, "latest"])), hex(runtime()));
    let call = json!({"to": contract, "data": "0x"});
    assert_eq!(chain.result("eth_call", json!([call, "latest"])), hex(word(42)));
    // A call may come from a contract (go-ethereum allows it; wallets simulate so).
    let from_contract = json!({"from": contract, "to": contract, "data": "0x"});
    assert_eq!(chain.result("eth_call", json!([from_contract, "latest"])), hex(word(42)));

    let estimate = quantity(&chain.result(
        "eth_estimateGas",
        json!([{"from": key.address().to_string(), "to": contract, "data": hex(word(9))}]),
    ));
    let set = chain.send(
        &key.sign(eip1559(
            1,
            TxKind::Call(contract.as_str().unwrap().parse().unwrap()),
            0,
            estimate,
            word(9),
        ))
        .0,
    );
    let mut bad = word(0);
    bad[0] = 0xff;
    let reverted = chain.error("eth_call", json!([{"to": contract, "data": hex(&bad)}, "latest"]));
    assert_eq!(reverted["code"], 3);
    assert_eq!(reverted["message"], "execution reverted: bad value");
    let failing = chain.send(
        &key.sign(eip1559(
            2,
            TxKind::Call(contract.as_str().unwrap().parse().unwrap()),
            0,
            100_000,
            bad,
        ))
        .0,
    );
    chain.seal();
    assert_eq!(chain.result("eth_getTransactionReceipt", json!([set]))["status"], "0x1");
    assert_eq!(chain.result("eth_getTransactionReceipt", json!([failing]))["status"], "0x0");
    assert_eq!(chain.nonce(key.address()), 3, "a failed transaction still uses its nonce");
    assert_eq!(chain.result("eth_getStorageAt", json!([contract, "0x0", "latest"])), hex(word(9)));

    let logs = chain.result(
        "eth_getLogs",
        json!([{"address": contract, "fromBlock": "0x0", "toBlock": "latest"}]),
    );
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(logs[0]["transactionHash"], json!(set));
    assert_eq!(logs[0]["data"], json!(hex(word(9))));
    // A poller asking from the block after the newest gets nothing, not the newest again.
    let after = json!([{"address": contract, "fromBlock": "0x3", "toBlock": "latest"}]);
    assert_eq!(chain.result("eth_getLogs", after), json!([]));
    let none =
        chain.result("eth_getLogs", json!([{"topics": [hex([0x22; 32])], "fromBlock": "0x0"}]));
    assert_eq!(none, json!([]));
    let changes = chain.result("eth_getFilterChanges", json!([filter]));
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(chain.result("eth_getFilterChanges", json!([filter])), json!([]));
    assert_eq!(chain.result("eth_uninstallFilter", json!([filter])), json!(true));
    assert_eq!(chain.result("eth_uninstallFilter", json!([filter])), json!(false));
}

#[test]
fn requests_that_are_not_json_rpc_get_its_error_codes() {
    let mut chain = Chain::new();
    assert_eq!(chain.error("eth_nothing", json!([]))["code"], -32601);
    assert_eq!(chain.error("eth_getBalance", json!(["0x12"]))["code"], -32602);
    chain.send(&dev0().sign(eip1559(0, TxKind::Call(DEV1), 1, 21_000, Vec::new())).0);
    chain.seal();
    // Only the latest state is kept: an older block's state is refused, not guessed.
    assert_eq!(chain.error("eth_getBalance", json!([DEV1.to_string(), "0x0"]))["code"], -32000);
    let mut tx = chain.store.begin();
    let reply = chain.app.handle(b"{not json", &mut tx, &Clock);
    assert_eq!(reply.response.unwrap()["error"]["code"], -32700);
    assert!(matches!(coco_evm::split_batch(b"[]"), coco_evm::Body::Refused(_)));
    let batch = coco_evm::split_batch(b" [{}, {}]");
    assert!(matches!(batch, coco_evm::Body::Batch(items) if items.len() == 2));
    assert!(matches!(coco_evm::split_batch(b"{}"), coco_evm::Body::Single));
}

#[test]
fn blocks_are_deterministic_and_chain_by_parent_hash() {
    let hashes: Vec<Value> = (0..2)
        .map(|_| {
            let mut chain = Chain::new();
            let raw = dev0().sign(eip1559(0, TxKind::Call(DEV1), 1, 21_000, Vec::new())).0;
            chain.send(&raw);
            chain.seal();
            // The transactions root is alloy's, over the decoded transactions.
            let envelope = alloy_consensus::TxEnvelope::decode_2718_exact(&raw).unwrap();
            let root = alloy_consensus::proofs::calculate_transaction_root(&[envelope]);
            let one = chain.result("eth_getBlockByNumber", json!(["0x1", false]));
            assert_eq!(one["transactionsRoot"], json!(root.to_string()));
            chain.send(&dev0().sign(eip1559(1, TxKind::Call(DEV1), 1, 21_000, Vec::new())).0);
            chain.seal();
            let two = chain.result("eth_getBlockByNumber", json!(["0x2", false]));
            let one = chain.result("eth_getBlockByNumber", json!(["0x1", false]));
            assert_eq!(two["parentHash"], one["hash"]);
            two["hash"].clone()
        })
        .collect();
    assert_eq!(hashes[0], hashes[1]);
}

fn token_code() -> Vec<u8> {
    // Initial supply: all of it to the deployer.
    coco_evm::testdata::coco_token_creation_code([0xff; 32])
}

/// Transfers from different senders to different recipients touch different slots: under
/// optimistic concurrency they must both commit, not conflict on the token's account or
/// code (which revm reports as touched on every call).
#[test]
fn calls_to_one_contract_from_different_senders_do_not_conflict() {
    let mut chain = Chain::new();
    let dev0 = dev0();
    let dev1 =
        LocalKey::from_hex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
            .unwrap();
    let deploy = chain.send(&dev0.sign(eip1559(0, TxKind::Create, 0, 2_000_000, token_code())).0);
    chain.seal();
    let receipt = chain.result("eth_getTransactionReceipt", json!([deploy]));
    let token: Address = receipt["contractAddress"].as_str().unwrap().parse().unwrap();
    let fund = coco_evm::testdata::transfer_input(&dev1.address().0.0, 1_000);
    chain.send(&dev0.sign(eip1559(1, TxKind::Call(token), 0, 100_000, fund)).0);
    let first = dev0.sign(eip1559(
        2,
        TxKind::Call(token),
        0,
        100_000,
        coco_evm::testdata::transfer_input(&[1; 20], 1),
    ));
    let second = dev1.sign(eip1559(
        0,
        TxKind::Call(token),
        0,
        100_000,
        coco_evm::testdata::transfer_input(&[2; 20], 1),
    ));
    let mut a = chain.store.begin();
    let mut b = chain.store.begin();
    let body = |raw: &[u8]| {
        let method = "eth_sendRawTransaction";
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [hex(raw)]});
        serde_json::to_vec(&request).unwrap()
    };
    for (tx, raw) in [(&mut a, &first.0), (&mut b, &second.0)] {
        let reply = chain.app.handle(&body(raw), tx, &Clock).response.unwrap();
        assert!(reply.get("error").is_none(), "{reply}");
    }
    chain.store.commit(a).unwrap();
    chain
        .store
        .commit(b)
        .expect("a transfer by another sender to another recipient does not conflict");
}

/// A node whose commit point is behind everything: nothing sealed is final yet.
struct NothingCommitted;

impl NodeServices for NothingCommitted {
    fn now_ms(&self) -> u64 {
        Clock.now_ms()
    }
    fn committed_seqno(&self) -> u64 {
        0
    }
    fn receipt(&self, _: u64) -> Result<Value, String> {
        Err("not committed".to_owned())
    }
}

#[test]
fn blocks_and_receipts_are_served_once_committed() {
    let mut chain = Chain::new();
    let hash = chain.send(&dev0().sign(eip1559(0, TxKind::Call(DEV1), 1, 21_000, Vec::new())).0);
    chain.seal();
    let ask = |chain: &mut Chain, services: &dyn NodeServices, method: &str, params: Value| {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut tx = chain.store.begin();
        let body = serde_json::to_vec(&request).unwrap();
        chain.app.handle(&body, &mut tx, services).response.unwrap()["result"].clone()
    };
    // Sealed but not committed: a primary failing now would take the block along.
    assert!(
        ask(&mut chain, &NothingCommitted, "eth_getTransactionReceipt", json!([hash])).is_null()
    );
    assert_eq!(ask(&mut chain, &NothingCommitted, "eth_blockNumber", json!([])), "0x0");
    assert!(
        ask(&mut chain, &NothingCommitted, "eth_getBlockByNumber", json!(["0x1", false])).is_null()
    );
    // Committed: served.
    assert_eq!(
        ask(&mut chain, &Clock, "eth_getTransactionReceipt", json!([hash]))["blockNumber"],
        "0x1"
    );
}

#[test]
fn a_block_takes_the_oldest_pending_transactions_when_there_are_more_than_fit() {
    let config = EthConfig { dev_accounts: true, ..EthConfig::default() };
    // Room for two transactions per seal.
    let app = EthApp::new(config).with_write_set_bytes_max((2 + 64) * 256);
    let mut chain = Chain::new();
    chain.app = app;
    let hashes: Vec<String> = (0..5)
        .map(|nonce| {
            chain.send(&dev0().sign(eip1559(nonce, TxKind::Call(DEV1), 1, 21_000, Vec::new())).0)
        })
        .collect();
    for _ in 0..3 {
        chain.seal();
    }
    let blocks: Vec<Value> = hashes
        .iter()
        .map(|hash| chain.result("eth_getTransactionReceipt", json!([hash]))["blockNumber"].clone())
        .collect();
    assert_eq!(blocks, [json!("0x1"), json!("0x1"), json!("0x2"), json!("0x2"), json!("0x3")]);
}

fn send_body(id: u64, raw: &[u8]) -> Vec<u8> {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction",
        "params": [hex(raw)]});
    serde_json::to_vec(&request).unwrap()
}

#[test]
fn a_prepared_send_answers_and_writes_as_the_usual_path_does() {
    let key = dev0();
    let (raw, hash) = key.sign(eip1559(0, TxKind::Call(DEV1), ETHER, 21_000, Vec::new()));
    let mut usual = Chain::new();
    let usual_response = usual.request("eth_sendRawTransaction", json!([hex(&raw)])).0;
    let mut prepared_chain = Chain::new();
    let prepared = prepared_chain.app.prepare_send(&send_body(7, &raw)).unwrap();
    let mut tx = prepared_chain.store.begin();
    let reply = prepared_chain.app.execute_prepared(&prepared, &mut tx, Clock.now_ms());
    let (digest, write_set) = (reply.claims_digest, tx.write_set().clone());
    prepared_chain.store.commit(tx).unwrap();
    assert_eq!(reply.response.unwrap(), usual_response);
    assert_eq!(usual_response["result"], json!(hex(hash)));
    assert!(digest.is_some(), "a sent transaction's receipt proves its outcome");
    assert!(!write_set.is_empty());
    assert_eq!(prepared_chain.balance(DEV1), usual.balance(DEV1));
    // The same transaction again: refused as the usual path refuses it, nothing written.
    let again = prepared_chain.app.prepare_send(&send_body(8, &raw)).unwrap();
    let mut tx = prepared_chain.store.begin();
    let reply = prepared_chain.app.execute_prepared(&again, &mut tx, Clock.now_ms());
    assert!(tx.write_set().is_empty());
    assert_eq!(reply.response.unwrap()["error"]["message"], "already known");
    assert!(reply.claims_digest.is_none());
}

#[test]
fn only_sends_within_the_gas_bound_are_prepared() {
    let chain = Chain::new();
    let key = dev0();
    let within = key.sign(eip1559(0, TxKind::Call(DEV1), 1, coco_evm::PREPARED_GAS_MAX, vec![])).0;
    assert!(chain.app.prepare_send(&send_body(1, &within)).is_some());
    let over = key.sign(eip1559(0, TxKind::Call(DEV1), 1, coco_evm::PREPARED_GAS_MAX + 1, vec![]));
    assert!(chain.app.prepare_send(&send_body(1, &over.0)).is_none(), "runs the usual way");
    let other = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"});
    assert!(chain.app.prepare_send(&serde_json::to_vec(&other).unwrap()).is_none());
    assert!(
        chain.app.prepare_send(&send_body(1, &[0x02, 0xc0])).is_none(),
        "refused the usual way"
    );
    assert!(chain.app.prepare_send(b"{not json").is_none());
}

/// Builds alloy's receipt from what `eth_getTransactionReceipt` serves, its bloom computed
/// by alloy from the logs.
fn alloy_receipt(served: &Value) -> alloy_consensus::ReceiptEnvelope {
    let logs = (served["logs"].as_array().unwrap().iter())
        .map(|log| {
            let topics = (log["topics"].as_array().unwrap().iter())
                .map(|t| t.as_str().unwrap().parse::<B256>().unwrap())
                .collect();
            let data: Bytes = log["data"].as_str().unwrap().parse().unwrap();
            alloy_primitives::Log::new_unchecked(
                log["address"].as_str().unwrap().parse().unwrap(),
                topics,
                data,
            )
        })
        .collect();
    let receipt = alloy_consensus::Receipt {
        status: alloy_consensus::Eip658Value::Eip658(served["status"] == "0x1"),
        cumulative_gas_used: quantity(&served["cumulativeGasUsed"]),
        logs,
    };
    let ty = u8::try_from(quantity(&served["type"])).unwrap();
    let ty = alloy_consensus::TxType::try_from(ty).unwrap();
    alloy_consensus::ReceiptEnvelope::from_typed(ty, receipt.with_bloom())
}

/// The seal builds receipts and blooms its own way (each receipt when the trie asks for
/// it, log hashes shared across the block): the roots and blooms must be alloy's.
#[test]
fn a_sealed_block_has_alloys_receipts_root_and_blooms() {
    let mut chain = Chain::new();
    let dev0 = dev0();
    let deploy = chain.send(&dev0.sign(eip1559(0, TxKind::Create, 0, 2_000_000, token_code())).0);
    chain.seal();
    let receipt = chain.result("eth_getTransactionReceipt", json!([deploy]));
    let token: Address = receipt["contractAddress"].as_str().unwrap().parse().unwrap();
    // Repeated recipients and one failing transfer: shared log
    // hashes, a receipt without logs, and an ETH send of another type.
    let mut hashes = Vec::new();
    for (nonce, (to, amount)) in [([1; 20], 5), ([2; 20], 7), ([1; 20], 9)].iter().enumerate() {
        let input = coco_evm::testdata::transfer_input(to, *amount);
        let raw = dev0.sign(eip1559(nonce as u64 + 1, TxKind::Call(token), 0, 100_000, input));
        hashes.push(chain.send(&raw.0));
    }
    // The second development account holds no tokens: its transfer reverts.
    let dev1 =
        LocalKey::from_hex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
            .unwrap();
    let unfunded = coco_evm::testdata::transfer_input(&[3; 20], 1);
    hashes.push(chain.send(&dev1.sign(eip1559(0, TxKind::Call(token), 0, 100_000, unfunded)).0));
    let legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 4,
        gas_price: 2 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(DEV1),
        value: U256::from(1),
        input: Bytes::new(),
    };
    hashes.push(chain.send(&dev0.sign(legacy).0));
    chain.seal();
    let served: Vec<Value> =
        hashes.iter().map(|h| chain.result("eth_getTransactionReceipt", json!([h]))).collect();
    assert_eq!(served[3]["status"], "0x0");
    let receipts: Vec<_> = served.iter().map(alloy_receipt).collect();
    let block = chain.result("eth_getBlockByNumber", json!(["0x2", false]));
    assert_eq!(block["transactions"].as_array().unwrap().len(), receipts.len());
    let root = alloy_consensus::proofs::calculate_receipt_root(&receipts);
    assert_eq!(block["receiptsRoot"], json!(root.to_string()));
    let mut bloom = alloy_primitives::Bloom::ZERO;
    for (receipt, served) in receipts.iter().zip(&served) {
        assert_eq!(served["logsBloom"], json!(receipt.logs_bloom().to_string()));
        bloom |= *receipt.logs_bloom();
    }
    assert_ne!(bloom, alloy_primitives::Bloom::ZERO);
    assert_eq!(block["logsBloom"], json!(bloom.to_string()));
}
