//! Snapshots through the binary: a sandbox with a short snapshot interval writes
//! `snapshot_<seqno>_<evidence>.committed` files that CCF's `ccf.ledger.Snapshot` parses
//! and whose embedded receipt it verifies against the service key; the node then starts
//! from its newest snapshot once the ledger chunks before it are deleted, and every record
//! written before is still there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coco_types::Limits;

use crate::block_on;
use crate::harness::{
    Launch, NodeProcess, Who, Workspace, describe, get_record, post_record, quick_limits,
    wait_committed,
};

const INTERVAL: u64 = 25;
const RECORDS: u64 = 80;

#[test]
fn snapshots_verify_with_ccf_and_replace_old_chunks() {
    let mut workspace = Workspace::new();
    workspace.prepare(Limits {
        snapshot_tx_interval: INTERVAL,
        ledger_chunk_bytes: 4096,
        ..quick_limits()
    });
    let node = workspace.start(Launch::Sandbox);
    write_records(&node, 1..=RECORDS);
    let snapshots = workspace.sandbox().join("node0").join("snapshots");
    wait_for_committed_snapshot(&snapshots);
    node.terminate();
    // Stopped: the newest committed snapshot stays (newer ones prune older ones).
    let newest = wait_for_committed_snapshot(&snapshots);
    if let Some(ccf) = crate::ccf::CcfPython::from_env("snapshots") {
        let output = ccf.read_snapshot(&newest);
        assert!(output.status.success(), "read_ledger.py --snapshot: {}", describe(&output));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("committed"), "a committed snapshot: {text}");
        // One altered byte in the state, and the embedded receipt no longer verifies.
        let altered = workspace.root().join("altered_snapshot_1_2.committed");
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes[200] ^= 1;
        std::fs::write(&altered, bytes).unwrap();
        let output = ccf.read_snapshot(&altered);
        assert!(!output.status.success(), "an altered snapshot verified: {}", describe(&output));
    }
    let removed = remove_chunks_up_to(&workspace.ledger_dir(), snapshot_seqno(&newest));
    assert!(removed > 0, "the snapshot's signature ends a chunk, so older chunks can go");
    let node = workspace.start(Launch::Sandbox);
    assert!(node.log_text().contains("starting from a snapshot"), "{}", node.log_text());
    block_on(async {
        for id in [1, RECORDS / 2, RECORDS] {
            let record = read_back(&node, id).await;
            assert_eq!(record, Some(format!("record {id}")), "record {id} after the restart");
        }
    });
    write_records(&node, RECORDS + 1..=RECORDS + 10);
    joiner_receives_the_snapshot(&workspace, &node);
    node.terminate();
}

/// This node holds nothing before its snapshot, so a node that joins now receives the
/// snapshot from it, then the entries after it, and serves every record.
fn joiner_receives_the_snapshot(workspace: &Workspace, node: &NodeProcess) {
    let joiner = crate::cluster::join_by_vote(workspace, node, 1);
    crate::cluster::wait_for(node, "2 voters", |network| {
        network["voters"].as_array().map(Vec::len) == Some(2)
    });
    write_records(node, RECORDS + 11..=RECORDS + 12);
    block_on(async {
        let mut user = joiner.connect(&Who::User).await;
        for id in [1, RECORDS + 12] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let record = get_record(&mut user, "private", id).await.unwrap();
                if record == Some(format!("record {id}")) {
                    break;
                }
                assert!(Instant::now() < deadline, "the joiner lacks record {id}: {record:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let log = joiner.log_text();
    assert!(log.contains("installing a snapshot from the primary"), "{log}");
    let ledger = crate::cluster::node_dir(workspace, 1).join("ledger");
    let first = crate::harness::files_under(&ledger).into_iter().filter_map(|path| {
        let name = path.file_name()?.to_str()?.strip_prefix("ledger_")?.to_owned();
        name.split(['-', '.']).next()?.parse::<u64>().ok()
    });
    assert!(first.min().is_some_and(|start| start > 1), "the joiner's ledger starts after it");
    joiner.terminate();
}

/// Removes the committed chunks that end at or before `seqno`; returns how many.
fn remove_chunks_up_to(ledger: &Path, seqno: u64) -> usize {
    let mut removed = 0;
    for chunk in crate::harness::committed_chunks(ledger) {
        let name = chunk.file_name().unwrap().to_string_lossy().into_owned();
        let range = name.strip_prefix("ledger_").and_then(|rest| rest.strip_suffix(".committed"));
        let end: u64 = range.and_then(|range| range.split('-').nth(1)?.parse().ok()).unwrap();
        if end <= seqno {
            std::fs::remove_file(&chunk).unwrap();
            removed += 1;
        }
    }
    removed
}

fn write_records(node: &NodeProcess, ids: std::ops::RangeInclusive<u64>) {
    block_on(async {
        let mut user = node.connect(&Who::User).await;
        let mut last = None;
        for id in ids {
            let message = format!("record {id}");
            last = Some(post_record(&mut user, "/app/log/private", id, &message).await.unwrap());
        }
        wait_committed(&mut user, last.expect("at least one record")).await;
    });
}

/// Waits for a committed snapshot in `dir` and returns the newest.
fn wait_for_committed_snapshot(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut committed: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        committed.retain(|path| path.to_string_lossy().ends_with(".committed"));
        committed.sort_by_key(|path| snapshot_seqno(path));
        if let Some(newest) = committed.pop() {
            return newest;
        }
        assert!(Instant::now() < deadline, "no committed snapshot in {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seqno in `snapshot_<seqno>_<evidence>.committed`.
fn snapshot_seqno(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let seqno = name.strip_prefix("snapshot_").and_then(|rest| rest.split('_').next());
    seqno.and_then(|seqno| seqno.parse().ok()).unwrap_or_else(|| panic!("bad name {name}"))
}

async fn read_back(node: &NodeProcess, id: u64) -> Option<String> {
    let mut user = node.connect(&Who::User).await;
    get_record(&mut user, "private", id).await.unwrap()
}
