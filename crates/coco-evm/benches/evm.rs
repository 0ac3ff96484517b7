//! Where an Ethereum transaction's time goes inside the app: decoding and recovering the
//! sender, executing an ERC-20 transfer with revm over the KV and writing its effects,
//! the whole JSON-RPC request, and sealing a block of 1,000 transactions.
#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a bug here")]

use std::hint::black_box;

use coco_evm::sign::{Eip1559, LocalKey};
use coco_evm::testdata::FixedNode as Clock;
use coco_evm::{EthApp, EthConfig, NodeServices};
use coco_kv::Store;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;

const DEV0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const GWEI: u128 = 1_000_000_000;

fn tx(nonce: u64, to: Option<[u8; 20]>, gas_limit: u64, input: Vec<u8>) -> Eip1559 {
    Eip1559 {
        chain_id: 31_337,
        nonce,
        to,
        value: 0,
        gas_limit,
        max_fee_per_gas: 2 * GWEI,
        max_priority_fee_per_gas: GWEI,
        input,
    }
}

fn request(raw: &[u8]) -> Vec<u8> {
    let raw = format!("0x{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]});
    serde_json::to_vec(&body).unwrap()
}

/// A chain with the token deployed by development account 0; returns the token address.
fn chain_with_token(app: &EthApp, store: &mut Store, key: &LocalKey) -> [u8; 20] {
    let mut tx0 = store.begin();
    app.genesis(&mut tx0, Clock.now_ms()).unwrap();
    store.commit(tx0).unwrap();
    let code = coco_evm::testdata::coco_token_creation_code([0xff; 32]);
    let (raw, _) = key.sign_eip1559(&tx(0, None, 3_000_000, code));
    let mut deploy = store.begin();
    let reply = app.handle(&request(&raw), &mut deploy, &Clock);
    assert!(reply.response.unwrap().get("error").is_none());
    store.commit(deploy).unwrap();
    let mut seal = store.begin();
    app.seal(&mut seal, Clock.now_ms()).unwrap();
    store.commit(seal).unwrap();
    // The first contract of development account 0.
    let address = "5fbdb2315678afecb367f032d93f642f64180aa3";
    let bytes: Vec<u8> =
        (0..20).map(|i| u8::from_str_radix(&address[2 * i..2 * i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
}

fn transfers(key: &LocalKey, token: [u8; 20], count: u64) -> Vec<Vec<u8>> {
    (1..=count)
        .map(|nonce| {
            let mut to = [0u8; 20];
            to[..8].copy_from_slice(&nonce.to_be_bytes());
            let input = coco_evm::testdata::transfer_input(&to, 1);
            key.sign_eip1559(&tx(nonce, Some(token), 100_000, input)).0
        })
        .collect()
}

fn per_transaction(c: &mut Criterion) {
    let key = LocalKey::from_hex(DEV0).unwrap();
    let app = EthApp::new(EthConfig { dev_accounts: true, ..EthConfig::default() });
    let mut store = Store::new();
    let token = chain_with_token(&app, &mut store, &key);
    let raws = transfers(&key, token, 1);
    c.bench_function("evm/decode_and_recover_sender", |b| {
        b.iter(|| app.decode(black_box(&raws[0])).unwrap());
    });
    let body = request(&raws[0]);
    c.bench_function("evm/erc20_transfer (JSON-RPC, decode, recover, execute, write)", |b| {
        b.iter_batched(
            || store.begin(),
            |mut tx| {
                let reply = app.handle(&body, &mut tx, &Clock);
                black_box((reply, tx))
            },
            BatchSize::SmallInput,
        );
    });
    let signed = app.decode(&raws[0]).unwrap();
    let codes = coco_evm::state::CodeCache::default();
    c.bench_function("evm/erc20_transfer (execute, write; sender known)", |b| {
        b.iter_batched(
            || store.begin(),
            |mut tx| {
                let sent =
                    coco_evm::transact::send(&mut tx, &codes, &signed, &raws[0], 1_700_000_000)
                        .unwrap();
                black_box((sent, tx))
            },
            BatchSize::SmallInput,
        );
    });
}

fn seal(c: &mut Criterion) {
    let key = LocalKey::from_hex(DEV0).unwrap();
    let app = EthApp::new(EthConfig { dev_accounts: true, ..EthConfig::default() });
    let mut store = Store::new();
    let token = chain_with_token(&app, &mut store, &key);
    for raw in transfers(&key, token, 1_000) {
        let mut tx = store.begin();
        app.handle(&request(&raw), &mut tx, &Clock);
        store.commit(tx).unwrap();
    }
    c.bench_function("evm/seal a block of 1,000 ERC-20 transfers", |b| {
        b.iter_batched(
            || store.begin(),
            |mut tx| {
                app.seal(&mut tx, Clock.now_ms()).unwrap();
                black_box(tx)
            },
            BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, per_transaction, seal);
criterion_main!(benches);
