//! Partitions through the binary. Three nodes; a backup cut off (stopped, as a partition
//! leaves it) does not stop the majority from committing, and catches up once back. Then
//! the primary is left alone — both backups cut off: it cannot commit, and once the
//! election timeout passes without a majority answering it refuses writes with 503
//! `NoQuorum` instead of accepting what it cannot commit; after healing, writes commit
//! again and the backups serve them.

use std::time::{Duration, Instant};

use coco_client::Connection;
use coco_types::{Limits, TxId};

use crate::block_on;
use crate::cluster::{join_by_vote, wait_for};
use crate::harness::{
    Launch, NodeProcess, Who, Workspace, body_text, get_record, post_record, quick_limits,
    wait_committed,
};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_minority_cannot_commit_and_catches_up_after_healing() {
    let mut workspace = Workspace::new();
    workspace.prepare(Limits { ..quick_limits() });
    let primary = workspace.start(Launch::Sandbox);
    let backups: Vec<NodeProcess> =
        (1..=2).map(|n| join_by_vote(&workspace, &primary, n)).collect();
    wait_for(&primary, "3 voters", |network| network["voters"].as_array().map(Vec::len) == Some(3));
    block_on(async {
        let mut user = primary.connect(&Who::User).await;
        backups[0].signal("STOP");
        let tx = post_record(&mut user, "/app/log/private", 1, "with one backup away").await;
        wait_committed(&mut user, tx.unwrap()).await;
        backups[1].signal("STOP");
        let accepted = until_no_quorum(&mut user).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for tx in &accepted {
            let status = tx_status(&mut user, *tx).await;
            assert_ne!(status, "Committed", "{tx} committed without a majority");
        }
        for backup in &backups {
            backup.signal("CONT");
        }
        let tx = retry_write(&mut user, 3, "after healing").await;
        wait_committed(&mut user, tx).await;
        for backup in &backups {
            let mut conn = backup.connect(&Who::User).await;
            wait_committed(&mut conn, tx).await;
            for id in [1, 3] {
                assert!(get_record(&mut conn, "private", id).await.unwrap().is_some(), "{id}");
            }
        }
    });
    for backup in backups {
        backup.terminate();
    }
    primary.terminate();
}

/// Writes to the lone primary until it refuses with `NoQuorum`; returns what it accepted
/// before it noticed.
async fn until_no_quorum(user: &mut Connection) -> Vec<TxId> {
    let deadline = Instant::now() + WAIT;
    let mut accepted = Vec::new();
    loop {
        let body = serde_json::json!({"id": 2, "msg": "without a majority"});
        let response = user.post_json("/app/log/private", &body).await.unwrap();
        if response.status == 503 && body_text(&response).contains("NoQuorum") {
            return accepted;
        }
        assert_eq!(response.status, 200, "{}", body_text(&response));
        accepted.push(response.tx_id().unwrap());
        assert!(Instant::now() < deadline, "the lone primary kept accepting writes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tx_status(user: &mut Connection, tx: TxId) -> String {
    let response = user.get(&format!("/node/tx?transaction_id={tx}")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    body["status"].as_str().unwrap_or_default().to_owned()
}

/// Writes record `id` once the service takes writes again (a new election may be running).
async fn retry_write(user: &mut Connection, id: u64, message: &str) -> TxId {
    let deadline = Instant::now() + WAIT;
    loop {
        match post_record(user, "/app/log/private", id, message).await {
            Ok(tx) => return tx,
            Err(e) => assert!(Instant::now() < deadline, "no write accepted after healing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
