//! The Ethereum app through the binary: unmodified ethers and web3.py against a sandbox,
//! the Coco receipt of an Ethereum transaction verified offline (by `coco receipt verify`
//! and CCF's Python package), and bad requests refused with JSON-RPC errors.
//!
//! The client scripts need `tests/eth/node_modules` (`npm ci` in `tests/eth`) and a Python
//! with web3 and eth-account (`scripts/requirements-eth.txt`), which `.ci/run` installs into
//! the venv it names in `COCO_CCF_PYTHON`. In CI (`CI` set) their absence fails the test;
//! elsewhere those checks are skipped with a note.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use coco_client::Connection;
use coco_evm::sign::{Eip1559, LocalKey};
use serde_json::{Value, json};

use crate::block_on;
use crate::ccf::CcfPython;
use crate::harness::{Launch, NodeProcess, Who, Workspace, body_text, describe, run_coco};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// Development account 4 of the sandbox's genesis.
const DEV4: &str = "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
const GWEI: u128 = 1_000_000_000;

async fn rpc(conn: &mut Connection, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = conn.post_json("/app/eth", &request).await.unwrap();
    assert_eq!(response.status, 200, "{method}: {}", body_text(&response));
    serde_json::from_slice(&response.body).unwrap()
}

async fn result(conn: &mut Connection, method: &str, params: Value) -> Value {
    let response = rpc(conn, method, params).await;
    assert!(response.get("error").is_none(), "{method}: {response}");
    response["result"].clone()
}

/// Polls `method` until it returns something other than `null` or an error.
async fn poll(conn: &mut Connection, method: &str, params: Value) -> Value {
    for _ in 0..200 {
        let response = rpc(conn, method, params.clone()).await;
        if response.get("error").is_none() && !response["result"].is_null() {
            return response["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{method} {params} never answered");
}

fn client_env(command: &mut Command, node: &NodeProcess, workspace: &Workspace) {
    let dir = workspace.sandbox();
    command
        .env("COCO_ETH_URL", format!("https://{}/app/eth", node.addr()))
        .env("COCO_SERVICE_CERT", dir.join("service_cert.pem"))
        .env("COCO_USER_CERT", dir.join("user0_cert.pem"))
        .env("COCO_USER_KEY", dir.join("user0_privk.pem"))
        .current_dir(REPO)
        .stdin(Stdio::null());
}

/// Whether the pinned npm packages are installed; in CI they must be.
fn node_modules(test: &str) -> bool {
    let installed = Path::new(REPO).join("tests/eth/node_modules/ethers").is_dir();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but tests/eth has no node_modules"
        );
        eprintln!("note: {test}: run `npm ci` in tests/eth to run the ethers checks");
    }
    installed
}

#[test]
fn ethers_and_web3_py_run_unchanged_against_the_sandbox() {
    let test = "ethers_and_web3_py_run_unchanged_against_the_sandbox";
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    if !node_modules(test) {
        return;
    }
    let mut command = Command::new("node");
    command.arg("tests/eth/ethers_e2e.mjs");
    client_env(&mut command, &node, &workspace);
    let output = command.output().expect("node runs");
    assert!(output.status.success(), "ethers: {}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ethers e2e: ok"));
    // The same venv as CCF's tools: .ci/run installs web3 and eth-account beside them.
    if let Some(python) = CcfPython::from_env(test) {
        let mut command = Command::new(python.interpreter());
        command.arg("tests/eth/web3_e2e.py");
        client_env(&mut command, &node, &workspace);
        let output = command.output().expect("python runs");
        assert!(output.status.success(), "web3.py: {}", describe(&output));
        assert!(String::from_utf8_lossy(&output.stdout).contains("web3 e2e: ok"));
    }
}

/// SHA-256 of the transaction hash and its outcome, as `coco_evm::transact::claims_digest`
/// documents it, recomputed from what JSON-RPC reports.
fn claims_digest_of(hash: &str, receipt: &Value) -> String {
    let bytes =
        |text: &Value| hex::decode(text.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let mut digest = coco_crypto::Sha256::new();
    digest.update(&bytes(&json!(hash)));
    digest.update(&[u8::from(receipt["status"] == "0x1")]);
    let gas =
        u64::from_str_radix(receipt["gasUsed"].as_str().unwrap().trim_start_matches("0x"), 16);
    digest.update(&gas.unwrap().to_be_bytes());
    for log in receipt["logs"].as_array().unwrap() {
        let topics = log["topics"].as_array().unwrap();
        digest.update(&bytes(&log["address"]));
        digest.update(&[u8::try_from(topics.len()).unwrap()]);
        topics.iter().for_each(|topic| digest.update(&bytes(topic)));
        let data = bytes(&log["data"]);
        digest.update(&(data.len() as u64).to_be_bytes());
        digest.update(&data);
    }
    digest.finish().to_hex()
}

/// 7 wei from development account 4 to 0x42…42: its EIP-2718 bytes (`0x` hex) and hash.
fn signed_transfer(nonce: u64) -> (String, String) {
    signed_transfer_with_gas(nonce, 21_000)
}

fn signed_transfer_with_gas(nonce: u64, gas_limit: u64) -> (String, String) {
    let key = LocalKey::from_hex(DEV4).unwrap();
    let (raw, hash) = key.sign_eip1559(&Eip1559 {
        chain_id: 31_337,
        nonce,
        to: Some([0x42; 20]),
        value: 7,
        gas_limit,
        max_fee_per_gas: 2 * GWEI,
        max_priority_fee_per_gas: GWEI,
        ..Eip1559::default()
    });
    (format!("0x{}", hex::encode(raw)), format!("0x{}", hex::encode(hash)))
}

#[test]
fn an_ethereum_transaction_has_a_coco_receipt_verifiable_offline() {
    let test = "an_ethereum_transaction_has_a_coco_receipt_verifiable_offline";
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let (raw, hash) = signed_transfer(0);
    let coco_receipt = block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let sent = result(&mut conn, "eth_sendRawTransaction", json!([raw])).await;
        assert_eq!(sent, json!(hash));
        let receipt = poll(&mut conn, "eth_getTransactionReceipt", json!([hash])).await;
        assert_eq!(receipt["status"], "0x1");
        let coco = poll(&mut conn, "coco_getTransactionReceipt", json!([hash])).await;
        let expected = claims_digest_of(&hash, &receipt);
        assert_eq!(coco["claimsDigest"], json!(expected));
        assert_eq!(coco["receipt"]["leaf_components"]["claims_digest"], json!(expected));
        coco["receipt"].clone()
    });
    let file = workspace.root().join("eth_receipt.json");
    std::fs::write(&file, serde_json::to_vec(&coco_receipt).unwrap()).unwrap();
    let cert = workspace.sandbox().join("service_cert.pem");
    let output = run_coco(&[
        "receipt",
        "verify",
        "--service-cert",
        &cert.to_string_lossy(),
        &file.to_string_lossy(),
    ]);
    assert!(output.status.success(), "coco receipt verify: {}", describe(&output));
    if let Some(python) = CcfPython::from_env(test) {
        let output = python.verify_receipts(&cert, &[file]);
        assert!(output.status.success(), "ccf.receipt: {}", describe(&output));
    }
}

fn request(id: u64, method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A batch's sends are proposed without waiting for each other, yet each runs after the
/// ones before it: consecutive nonces of one sender all succeed, a read in the middle sees
/// what precedes it, a send over the prepared gas bound (executed the usual way) and a
/// repeated one keep their places, and the node orders them as sent.
#[test]
fn a_batch_runs_in_order_each_part_seeing_the_parts_before_it() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let dev4 = LocalKey::from_hex(DEV4).unwrap().address().to_string();
        let sends = [
            signed_transfer(0),
            signed_transfer(1),
            signed_transfer_with_gas(2, coco_evm::PREPARED_GAS_MAX + 1),
            signed_transfer(3),
        ];
        let send = |id: u64, raw: &str| request(id, "eth_sendRawTransaction", &json!([raw]));
        let count = request(9, "eth_getTransactionCount", &json!([dev4, "pending"]));
        let batch = json!([
            send(0, &sends[0].0),
            send(1, &sends[1].0),
            count,
            send(2, &sends[2].0),
            send(5, &sends[1].0),
            send(3, &sends[3].0),
        ]);
        let response = conn.post_json("/app/eth", &batch).await.unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        let answers = body.as_array().unwrap_or_else(|| panic!("not a batch answer: {body}"));
        assert_eq!(answers.len(), 6, "{body}");
        for (answer, index) in answers.iter().zip([0, 1, 9, 2, 5, 3]) {
            assert_eq!(answer["id"], json!(index), "answers keep the batch's order: {body}");
        }
        assert_eq!(answers[0]["result"], json!(sends[0].1));
        assert_eq!(answers[1]["result"], json!(sends[1].1));
        assert_eq!(answers[2]["result"], "0x2", "the read sees the two sends before it");
        assert_eq!(answers[3]["result"], json!(sends[2].1));
        assert_eq!(answers[4]["error"]["message"], "already known");
        assert_eq!(answers[5]["result"], json!(sends[3].1));
        let mut places = Vec::new();
        for (_, hash) in &sends {
            let receipt = poll(&mut conn, "eth_getTransactionReceipt", json!([hash])).await;
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            let number = receipt["blockNumber"].as_str().unwrap().to_owned();
            let index = receipt["transactionIndex"].as_str().unwrap().to_owned();
            let number = u64::from_str_radix(number.trim_start_matches("0x"), 16).unwrap();
            let index = u64::from_str_radix(index.trim_start_matches("0x"), 16).unwrap();
            places.push((number, index));
        }
        assert!(places.is_sorted(), "blocks hold the sends in nonce order: {places:?}");
        let latest = result(&mut conn, "eth_getTransactionCount", json!([dev4, "latest"])).await;
        assert_eq!(latest, "0x4");
    });
}

/// A batch running alone prepares its second half on another worker; answers, visibility
/// and order are as if every part were prepared in turn: a read in that half sees exactly
/// the sends before it, and a repeated send is refused where it stands.
#[test]
fn a_large_batch_prepared_on_two_workers_keeps_order_and_visibility() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let dev4 = LocalKey::from_hex(DEV4).unwrap().address().to_string();
        let sends: Vec<_> = (0..36).map(signed_transfer).collect();
        let send = |id: u64, raw: &str| request(id, "eth_sendRawTransaction", &json!([raw]));
        let numbered = || (0u64..).zip(&sends).map(|(id, (raw, _))| send(id, raw));
        let mut batch: Vec<Value> = numbered().take(30).collect();
        batch.push(request(100, "eth_getTransactionCount", &json!([dev4, "pending"])));
        batch.extend(numbered().skip(30));
        batch.push(send(101, &sends[5].0));
        let response = conn.post_json("/app/eth", &json!(batch)).await.unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        let answers = body.as_array().unwrap_or_else(|| panic!("not a batch answer: {body}"));
        assert_eq!(answers.len(), 38, "{body}");
        for (answer, part) in answers.iter().zip(&batch) {
            assert_eq!(answer["id"], part["id"], "answers keep the batch's order: {body}");
        }
        let hashes = answers.iter().filter(|a| a["id"].as_u64() < Some(100));
        for (answer, (_, hash)) in hashes.zip(&sends) {
            assert_eq!(answer["result"], json!(hash), "{answer}");
        }
        assert_eq!(answers[30]["result"], "0x1e", "the read sees the 30 sends before it");
        assert_eq!(answers[37]["error"]["message"], "already known");
        let last = poll(&mut conn, "eth_getTransactionReceipt", json!([sends[35].1])).await;
        assert_eq!(last["status"], "0x1", "{last}");
        let latest = result(&mut conn, "eth_getTransactionCount", json!([dev4, "latest"])).await;
        assert_eq!(latest, "0x24");
    });
}

#[test]
fn bad_ethereum_requests_get_json_rpc_errors_and_change_nothing() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let dev4 = LocalKey::from_hex(DEV4).unwrap().address().to_string();
        let method = "eth_sendRawTransaction";
        let send = |raw: &str| request(1, method, &json!([raw]));
        let cases = [
            (json!({"jsonrpc": "2.0", "id": 1, "method": "eth_nope"}), -32601),
            (json!({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}), -32600),
            (
                json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x12"]}),
                -32602,
            ),
            (send("0x02c0"), -32602),
            (send("zz"), -32602),
        ];
        for (request, code) in cases {
            let response = conn.post_json("/app/eth", &request).await.unwrap();
            let body: Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(body["error"]["code"], json!(code), "{request} -> {body}");
        }
        let garbage = conn
            .request(http::Method::POST, "/app/eth", None, b"{not json".to_vec().into())
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&garbage.body).unwrap();
        assert_eq!(body["error"]["code"], -32700);
        let batch: Vec<Value> = (0..1001)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}))
            .collect();
        let response = conn.post_json("/app/eth", &batch).await.unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["code"], -32600, "{body}");
        let get = conn.get("/app/eth").await.unwrap();
        assert_eq!(get.status, 405);
        assert_eq!(
            result(&mut conn, "eth_getTransactionCount", json!([dev4, "latest"])).await,
            "0x0"
        );
        assert_eq!(result(&mut conn, "eth_blockNumber", json!([])).await, "0x0");
        let mut stranger = node.connect(&Who::Anonymous).await;
        let refused = stranger
            .post_json("/app/eth", &json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}))
            .await
            .unwrap();
        assert_eq!(refused.status, 401);
    });
}

#[test]
fn the_bench_token_is_what_solc_compiles_from_the_repository_source() {
    let test = "the_bench_token_is_what_solc_compiles_from_the_repository_source";
    if !node_modules(test) {
        return;
    }
    let workspace = Workspace::new();
    let out = workspace.root().join("token.json");
    let output = Command::new("node")
        .arg("tests/eth/compile.mjs")
        .arg(&out)
        .current_dir(REPO)
        .output()
        .expect("node runs");
    assert!(output.status.success(), "compile.mjs: {}", describe(&output));
    let compiled: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let embedded =
        std::fs::read_to_string(Path::new(REPO).join("tests/eth/contracts/CocoToken.bin"));
    let embedded = format!("0x{}", embedded.unwrap().trim());
    assert_eq!(
        compiled["bytecode"],
        json!(embedded),
        "regenerate tests/eth/contracts/CocoToken.bin with compile.mjs"
    );
}

#[test]
fn coco_bench_eth_drives_erc20_transfers_to_commit() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let target = node.addr().to_string();
    let dir = workspace.sandbox();
    let args = ["bench", "eth", "--target", &target, "--dir", &dir.to_string_lossy()];
    let sizes = ["--txs", "96", "--senders", "8", "--connections", "2", "--batch", "16", "--json"];
    let output = run_coco(&[&args[..], &sizes[..]].concat());
    assert!(output.status.success(), "coco bench eth: {}", describe(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["txs"], 96, "{report}");
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        // Setup (1 deploy, 2 per sender) and 96 transfers, all executed and in blocks.
        let blocks = result(&mut conn, "eth_blockNumber", json!([])).await;
        let latest = u64::from_str_radix(blocks.as_str().unwrap().trim_start_matches("0x"), 16);
        let mut executed = 0;
        for number in 0..=latest.unwrap() {
            let block =
                result(&mut conn, "eth_getBlockByNumber", json!([format!("{number:#x}"), false]));
            executed += block.await["transactions"].as_array().map_or(0, Vec::len);
        }
        assert_eq!(executed, 1 + 2 * 8 + 96);
    });
}

/// What one Ethereum transfer left: its hash and block.
pub(crate) struct EthTransfer {
    /// Block number.
    pub(crate) block: u64,
    /// Block hash.
    pub(crate) block_hash: Value,
}

/// Sends 7 wei from development account 4 (nonce `nonce`) to 0x42…42 through `via`, then
/// waits until `witness` (another node) has its receipt and its Coco receipt (committed).
pub(crate) fn transfer_across_nodes(
    via: &NodeProcess,
    witness: &NodeProcess,
    nonce: u64,
) -> EthTransfer {
    let (raw, hash) = signed_transfer(nonce);
    block_on(async {
        let mut sender = via.connect(&Who::User).await;
        let sent = result(&mut sender, "eth_sendRawTransaction", json!([raw])).await;
        assert_eq!(sent, json!(hash));
        let mut reader = witness.connect(&Who::User).await;
        let receipt = poll(&mut reader, "eth_getTransactionReceipt", json!([hash])).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        poll(&mut reader, "coco_getTransactionReceipt", json!([hash])).await;
        let number = receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x");
        EthTransfer {
            block: u64::from_str_radix(number, 16).unwrap(),
            block_hash: receipt["blockHash"].clone(),
        }
    })
}

/// On `node`: blocks link by parent hash from `later` back to `earlier`, and the recipient
/// of every transfer so far holds `transfers` × 7 wei.
pub(crate) fn assert_chain_continues(
    node: &NodeProcess,
    earlier: &EthTransfer,
    later: &EthTransfer,
    transfers: u64,
) {
    assert!(
        later.block > earlier.block,
        "block numbers go on: {} then {}",
        earlier.block,
        later.block
    );
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let mut hash = later.block_hash.clone();
        for number in (earlier.block..=later.block).rev() {
            let block =
                result(&mut conn, "eth_getBlockByNumber", json!([format!("{number:#x}"), false]))
                    .await;
            assert_eq!(block["hash"], hash, "block {number} is the one its child names");
            hash = block["parentHash"].clone();
        }
        let balance = result(
            &mut conn,
            "eth_getBalance",
            json!([format!("0x{}", "42".repeat(20)), "latest"]),
        )
        .await;
        assert_eq!(balance, json!(format!("{:#x}", transfers * 7)));
    });
}

#[test]
fn the_chain_survives_a_restart_and_goes_on() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let before = transfer_across_nodes(&node, &node, 0);
    node.terminate();
    let node = workspace.start(Launch::Sandbox);
    let later = transfer_across_nodes(&node, &node, 1);
    assert_chain_continues(&node, &before, &later, 2);
}
