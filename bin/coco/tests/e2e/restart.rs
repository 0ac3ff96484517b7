//! Committed transactions survive a restart, whether the node was stopped cleanly (SIGTERM)
//! or killed (`kill -9`) while writes were in flight; a restart opens a new view, keeps the
//! service identity, and leaves a ledger CCF still verifies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coco_types::{Limits, TxId, TxStatus};
use serde_json::Value;

use crate::block_on;
use crate::ccf::CcfPython;
use crate::harness::{
    Launch, NodeProcess, Record, Who, Workspace, describe, get_record, post_record, quick_limits,
    random_hex, run_coco, wait_committed, write_all,
};

/// Records per map written (and committed) before the stop.
const RECORDS_PER_MAP: u64 = 40;

#[test]
fn restart_keeps_committed_sigterm() {
    restart_keeps_committed("restart_keeps_committed_sigterm", Stop::Terminate);
}

#[test]
fn restart_keeps_committed_kill9() {
    restart_keeps_committed("restart_keeps_committed_kill9", Stop::Kill);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// SIGTERM, then `coco sandbox` again on the same directory.
    Terminate,
    /// SIGKILL with writes in flight, then `coco node start` on the sandbox's config.
    Kill,
}

fn restart_keeps_committed(test: &str, stop: Stop) {
    let ccf = CcfPython::from_env(test);
    let mut workspace = Workspace::new();
    // The smallest chunks, so the restarts leave committed chunks for CCF to verify.
    workspace.prepare(Limits { ledger_chunk_bytes: 4096, ..quick_limits() });
    let node = workspace.start(Launch::Sandbox);
    let tag = random_hex();
    let records: Vec<Record> = ["private", "public"]
        .into_iter()
        .flat_map(|map| {
            let tag = &tag;
            (1..=RECORDS_PER_MAP).map(move |id| Record {
                map,
                id,
                msg: format!("{map} {id} {tag}"),
            })
        })
        .collect();
    let service_cert_before = workspace.service_cert_pem();

    // Phase 1: commit-blocking writes (each answer means committed), then the stop.
    let (committed, in_flight) = block_on(async {
        let committed = write_all(&node, &records, 4, true).await;
        let mut conn = node.connect(&Who::User).await;
        for (record, tx) in &committed {
            assert_eq!(
                conn.tx_status(*tx).await.unwrap(),
                TxStatus::Committed,
                "{record:?} at {tx}"
            );
        }
        let in_flight = match stop {
            Stop::Terminate => {
                node.terminate();
                Vec::new()
            }
            Stop::Kill => kill_while_writing(node).await,
        };
        (committed, in_flight)
    });
    let view_before = committed.iter().map(|(_, tx)| tx.view).max().unwrap();

    // Phase 2: restart on the same directory and check every committed record.
    let launch = match stop {
        Stop::Terminate => Launch::Sandbox,
        Stop::Kill => Launch::NodeStart,
    };
    let node = workspace.start(launch);
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let tx = post_record(&mut conn, "/app/log/private", 10_000, "after restart").await.unwrap();
        assert!(tx.view > view_before, "write after restart at {tx}, not after view {view_before}");
        wait_committed(&mut conn, tx).await;
        for (record, tx) in &committed {
            let msg = get_record(&mut conn, record.map, record.id).await.unwrap();
            assert_eq!(msg.as_deref(), Some(record.msg.as_str()), "{record:?} committed at {tx}");
            assert_eq!(
                conn.tx_status(*tx).await.unwrap(),
                TxStatus::Committed,
                "{record:?} at {tx}"
            );
        }
        check_in_flight(&mut conn, &in_flight).await;
        let network: Value =
            conn.get("/node/network").await.unwrap().json("/node/network").unwrap();
        assert_eq!(network["service_certificate"].as_str(), Some(service_cert_before.as_str()));
    });
    node.terminate();
    assert_eq!(workspace.service_cert_pem(), service_cert_before, "service_cert.pem changed");

    // Phase 3: the ledger left behind still verifies, with Coco's tool and CCF's.
    let output =
        run_coco(&["ledger", "verify", "--quiet", &workspace.ledger_dir().to_string_lossy()]);
    assert!(output.status.success(), "coco ledger verify: {}", describe(&output));
    if let Some(ccf) = &ccf {
        ccf.assert_ledger_verifies(&workspace.ledger_dir(), RECORDS_PER_MAP, 2 * RECORDS_PER_MAP);
    }
}

/// Writes non-blocking records (ids from 1000) as fast as one connection allows, kills the
/// node with SIGKILL once at least 20 were acknowledged, and returns the acknowledged ones.
async fn kill_while_writing(node: NodeProcess) -> Vec<(Record, TxId)> {
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut conn = node.connect(&Who::User).await;
    let counter = Arc::clone(&acknowledged);
    let writer = tokio::task::spawn(async move {
        let mut written = Vec::new();
        for id in 1000_u64.. {
            let record = Record {
                map: if id % 2 == 0 { "private" } else { "public" },
                id,
                msg: format!("in flight {id}"),
            };
            match post_record(&mut conn, &record.path(false), id, &record.msg).await {
                Ok(tx) => written.push((record, tx)),
                Err(_) => break,
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
        written
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the writer made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill9();
    let written = writer.await.unwrap();
    assert!(written.len() >= 20, "{written:?}");
    written
}

/// A write acknowledged before a crash is either committed (and readable) or invalid (and
/// gone): never half there.
async fn check_in_flight(conn: &mut coco_client::Connection, in_flight: &[(Record, TxId)]) {
    let mut kept = 0;
    for (record, tx) in in_flight {
        let status = conn.tx_status(*tx).await.unwrap();
        let msg = get_record(conn, record.map, record.id).await.unwrap();
        match status {
            TxStatus::Committed => {
                kept += 1;
                assert_eq!(
                    msg.as_deref(),
                    Some(record.msg.as_str()),
                    "{record:?} committed at {tx}"
                );
            }
            TxStatus::Invalid => {
                assert_eq!(msg, None, "{record:?} at {tx} is invalid but readable")
            }
            TxStatus::Pending | TxStatus::Unknown => {
                panic!("{record:?} at {tx} is {status:?} after a restart in a later view")
            }
        }
    }
    eprintln!(
        "kill -9: {kept} of {} acknowledged in-flight writes were committed",
        in_flight.len()
    );
}
