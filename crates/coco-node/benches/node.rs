//! The node's per-transaction path and receipts, without networking: what one logging
//! write costs from JSON body to sealed ledger entry (parse, execute, KV commit,
//! serialise, encrypt, hash, Merkle append, buffered ledger append), what a signature
//! costs, and what building a receipt costs.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;

use coco_crypto::{Certificate, SigningKey};
use coco_node::apps::logging::LoggingApp;
use coco_node::{
    App, AppRequest, Caller, Commit, Method, NetworkConfig, Node, NodeConfig, ServiceConfig,
    StorageConfig,
};
use coco_types::{Digest, Limits, Seqno, TxId, UserId};
use criterion::{Criterion, criterion_group, criterion_main};

/// The same allocator as the `coco` binary, so the numbers are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW_MS: u64 = 1_790_000_000_000;

fn open(dir: &Path) -> Node {
    open_with(dir, Limits { pending_txs_max: 1 << 24, ..Limits::default() })
}

fn open_with(dir: &Path, limits: Limits) -> Node {
    let key = SigningKey::generate_p384().unwrap();
    let cert = Certificate::self_signed_identity(&key, "member0", NOW_MS / 1000, 30).unwrap();
    let member = dir.join("member0_cert.pem");
    std::fs::write(&member, cert.to_pem()).unwrap();
    let config = NodeConfig {
        network: NetworkConfig::loopback(0),
        storage: StorageConfig::under(dir, dir.join("service_cert.pem")),
        service: ServiceConfig {
            members: vec![member],
            users: vec![],
            member_encryption_keys: vec![],
            recovery_threshold: 1,
        },
        limits,
        apps: std::collections::BTreeMap::new(),
    };
    Node::open(&config, NOW_MS).unwrap()
}

/// The logging app asks the node for nothing.
struct NoReceipts;

impl coco_node::NodeQueries for NoReceipts {
    fn committed(&self) -> Seqno {
        Seqno(0)
    }

    fn receipt(&self, seqno: Seqno) -> Result<serde_json::Value, coco_node::AppError> {
        Err(coco_node::AppError::not_found(format!("no receipt for {seqno} in a benchmark")))
    }
}

fn logging_write(node: &mut Node, app: &LoggingApp, id: u64) -> Commit {
    let body =
        format!(r#"{{"id": {id}, "msg": "a message of some sixty bytes, like a log line's"}}"#);
    let request = AppRequest {
        method: Method::Post,
        path: "/log/private",
        query: "",
        body: body.as_bytes(),
        caller: Caller::User(UserId(Digest::ZERO)),
        page_items_max: 100,
        now_ms: NOW_MS,
        node: &NoReceipts,
    };
    let mut tx = node.begin().unwrap();
    app.handle(&request, &mut tx).unwrap();
    node.commit(tx).unwrap()
}

fn per_transaction(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(dir.path());
    let app = LoggingApp::default();
    let mut id = 0u64;
    c.bench_function("node/logging_write_private (parse+execute+commit+seal)", |b| {
        b.iter(|| {
            id += 1;
            if node.signature_due(NOW_MS) {
                node.emit_signature(NOW_MS).unwrap();
                node.flush().unwrap();
            }
            black_box(logging_write(&mut node, &app, id))
        });
    });
    c.bench_function("node/signature (ECDSA + COSE + tree, 100 txs)", |b| {
        b.iter(|| {
            for _ in 0..100 {
                id += 1;
                logging_write(&mut node, &app, id);
            }
            black_box(node.emit_signature(NOW_MS).unwrap())
        });
    });
    node.flush().unwrap();
}

fn receipts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(dir.path());
    let app = LoggingApp::default();
    let mut last = TxId::default();
    for id in 0..10_000 {
        if let Commit::Ordered(tx) = logging_write(&mut node, &app, id) {
            last = tx;
        }
    }
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    c.bench_function("node/json_receipt (10k-tx ledger)", |b| {
        b.iter(|| black_box(node.receipt(last).unwrap()));
    });
    c.bench_function("node/cose_receipt (10k-tx ledger)", |b| {
        b.iter(|| black_box(node.cose_receipt(last).unwrap()));
    });
}

/// A signature that is a snapshot point (interval 1: every one is) over 100k records:
/// what writing a snapshot adds to the signature under the node lock.
fn snapshots(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { pending_txs_max: 1 << 24, snapshot_tx_interval: 1, ..Limits::default() };
    let mut node = open_with(dir.path(), limits);
    let app = LoggingApp::default();
    for id in 0..100_000 {
        logging_write(&mut node, &app, id);
        if node.signature_due(NOW_MS) {
            node.emit_signature(NOW_MS).unwrap();
            node.flush().unwrap();
        }
    }
    let mut group = c.benchmark_group("node");
    group.sample_size(20);
    let mut id = 100_000;
    group.bench_function("signature_with_snapshot (100k records)", |b| {
        b.iter(|| {
            id += 1;
            logging_write(&mut node, &app, id);
            black_box(node.emit_signature(NOW_MS).unwrap())
        });
    });
    group.finish();
}

criterion_group!(benches, per_transaction, receipts, snapshots);
criterion_main!(benches);
