//! Disaster recovery through the binary: a sandbox service writes private records and
//! rekeys, its node is destroyed (`kill -9`, state directory deleted), and `coco node
//! recover` starts a new service from a copy of its ledger. Members accept the recovery and
//! submit shares with `coco gov recovery submit-share`: one share of a 2-of-3 split opens
//! nothing, stale shares are refused and cleared, two good shares bring every committed
//! private record back under a new service identity that names the previous one.

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::block_on;
use crate::governance::{Member, decrypted_shares, gov_get, now_s, post_cose};
use crate::harness::{
    Launch, NodeProcess, Who, Workspace, body_text, describe, expect_error, get_record,
    post_record, run_coco, wait_committed,
};

/// Private records written before the rekey, and after it.
const BEFORE: std::ops::Range<u64> = 1..6;
const AFTER: std::ops::Range<u64> = 100..105;

#[test]
fn a_destroyed_service_recovers_every_private_record_from_a_ledger_copy() {
    let mut workspace = Workspace::new();
    let dir = workspace.sandbox();
    let stale_shares = write_rekey_and_destroy(&mut workspace);

    write_recovered_config(&workspace);
    let node = workspace.start(Launch::Recover);
    let (previous, next) = recovering_identities(&node, 1);
    assert_users_refused(&node);
    let addr = block_on(async { node.connect(&Who::Anonymous).await.addr() }).to_string();
    let early = submit_share(&addr, &dir, "member0");
    assert_refused(&early, "ServiceNotWaitingForRecoveryShares");

    accept_recovery(&node, &dir, &previous, &next);
    submit_stale_shares(&node, &dir, &stale_shares);
    let one = submit_share_ok(&addr, &dir, "member0");
    assert_eq!(one["submittedCount"], 1, "{one}");
    assert_users_refused(&node);
    let two = submit_share_ok(&addr, &dir, "member1");
    assert!(two["message"].as_str().unwrap().contains("End of recovery"), "{two}");
    let last = block_on(async {
        let mut user = node.connect(&Who::User).await;
        check_every_record(&mut user).await;
        let info = gov_get(&mut user, "/gov/service/info").await;
        assert_eq!(info["status"], "Open", "{info}");
        let tx = post_record(&mut user, "/app/log/private", 999, "after recovery").await.unwrap();
        wait_committed(&mut user, tx).await;
        tx
    });
    node.terminate();

    // The recovered node restarts on its own state: every secret is sealed now.
    let node = workspace.start(Launch::RestartRecovered);
    block_on(async {
        let mut user = node.connect(&Who::User).await;
        check_every_record(&mut user).await;
        let after = get_record(&mut user, "private", 999).await.unwrap();
        assert_eq!(after.as_deref(), Some("after recovery"));
        assert_eq!(user.tx_status(last).await.unwrap(), coco_types::TxStatus::Committed);
    });
    node.kill9();
    audit(&workspace.recovered_ledger_dir());

    // Lost again: the second recovery walks the secrets back across the first one, with
    // the shares the first recovery issued (another pair of members this time).
    let copy = workspace.root().join("second_copy");
    crate::harness::copy_dir(&workspace.recovered_ledger_dir(), &copy);
    std::fs::remove_dir_all(workspace.old_ledger_dir()).unwrap();
    std::fs::remove_dir_all(workspace.recovered_config_file().parent().unwrap()).unwrap();
    std::fs::rename(&copy, workspace.old_ledger_dir()).unwrap();
    write_recovered_config(&workspace);
    let node = workspace.start(Launch::Recover);
    let (previous, next) = recovering_identities(&node, 2);
    accept_recovery(&node, &dir, &previous, &next);
    let addr = block_on(async { node.connect(&Who::Anonymous).await.addr() }).to_string();
    submit_share_ok(&addr, &dir, "member2");
    submit_share_ok(&addr, &dir, "member0");
    block_on(async {
        let mut user = node.connect(&Who::User).await;
        check_every_record(&mut user).await;
        let after = get_record(&mut user, "private", 999).await.unwrap();
        assert_eq!(after.as_deref(), Some("after recovery"));
    });
    node.terminate();
    audit(&workspace.recovered_ledger_dir());
}

/// The recovering service's (previous, new) identities, checking it is Recovering.
fn recovering_identities(node: &NodeProcess, recovery_count: u64) -> (String, String) {
    let (info, nodes) = block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        (
            gov_get(&mut conn, "/gov/service/info").await,
            gov_get(&mut conn, "/gov/service/nodes").await,
        )
    });
    let statuses: Vec<&str> =
        nodes["value"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap()).collect();
    let trusted = statuses.iter().filter(|status| **status == "Trusted").count();
    let retired = statuses.iter().filter(|status| **status == "Retired").count();
    assert_eq!((trusted, retired), (1, usize::try_from(recovery_count).unwrap()), "{nodes}");
    assert_eq!(info["status"], "Recovering", "{info}");
    assert_eq!(info["recoveryCount"], recovery_count, "{info}");
    let previous = info["previousServiceIdentity"].as_str().unwrap().to_owned();
    let next = info["certificate"].as_str().unwrap().to_owned();
    assert_ne!(previous, next, "the recovered service has a new identity");
    (previous, next)
}

/// Runs the sandbox: private records, a rekey, more records; keeps members' shares of the
/// first split (stale after the rekey); then destroys the node and keeps a ledger copy.
fn write_rekey_and_destroy(workspace: &mut Workspace) -> Vec<coco_crypto::Share> {
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let stale = block_on(async {
        let mut user = node.connect(&Who::User).await;
        for id in BEFORE {
            post_record(&mut user, "/app/log/private", id, &format!("secret {id}")).await.unwrap();
        }
        post_record(&mut user, "/app/log/public", 1, "public 1").await.unwrap();
        let mut conn = node.connect(&Who::Anonymous).await;
        let stale = decrypted_shares(&mut conn, &dir).await;
        let rekey = json!({"actions": [{"name": "trigger_ledger_rekey", "args": {}}]});
        pass_proposal(&mut conn, &dir, &rekey).await;
        let mut last = None;
        for id in AFTER {
            let msg = format!("secret {id}");
            last = Some(post_record(&mut user, "/app/log/private", id, &msg).await.unwrap());
        }
        wait_committed(&mut user, last.unwrap()).await;
        stale
    });
    node.kill9();
    crate::harness::copy_dir(&workspace.ledger_dir(), &workspace.old_ledger_dir());
    std::fs::remove_dir_all(dir.join("node0")).unwrap();
    stale
}

/// member0 proposes, member1 votes: a majority of the sandbox's three members.
async fn pass_proposal(conn: &mut coco_client::Connection, dir: &Path, proposal: &Value) {
    let member0 = Member::load(dir, "member0");
    let signed = member0.sign("proposal", now_s(), None, proposal);
    let response = post_cose(conn, "/gov/members/proposals:create", signed).await;
    assert_eq!(response.status, 200, "{}", body_text(&response));
    let info: Value = serde_json::from_slice(&response.body).unwrap();
    let proposal_id = info["proposalId"].as_str().unwrap().to_owned();
    let member1 = Member::load(dir, "member1");
    let ballot = json!({"ballot": "export function vote (proposal, proposerId) { return true }"});
    let signed = member1.sign("ballot", now_s(), Some(&proposal_id), &ballot);
    let path = format!("/gov/members/proposals/{proposal_id}/ballots/{}:submit", member1.id);
    let response = post_cose(conn, &path, signed).await;
    assert_eq!(response.status, 200, "{}", body_text(&response));
    let info: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(info["proposalState"], "Accepted", "{info}");
}

fn write_recovered_config(workspace: &Workspace) {
    let config = format!(
        r#"
[network]
listen_address = "127.0.0.1:0"
[storage]
ledger_dir = "ledger"
state_dir = "state"
service_cert_file = "../sandbox/service_cert.pem"
[service]
members = ["../sandbox/member0_cert.pem"]
[limits]
{}
"#,
        "sig_ms_interval = 20"
    );
    let path = workspace.recovered_config_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, config).unwrap();
}

/// A recovering service refuses users until it is open again.
fn assert_users_refused(node: &NodeProcess) {
    block_on(async {
        let mut user = node.connect(&Who::User).await;
        let response = user.get("/app/log/private?id=1").await.unwrap();
        expect_error(&response, 503, "FrontendNotOpen");
    });
}

/// A proposal naming the wrong identities cannot open the service; the right one moves it
/// to `WaitingForRecoveryShares`.
fn accept_recovery(node: &NodeProcess, dir: &Path, previous: &str, next: &str) {
    block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let open = |previous: &str| {
            json!({"actions": [{"name": "transition_service_to_open", "args": {
                "previous_service_identity": previous, "next_service_identity": next}}]})
        };
        let member0 = Member::load(dir, "member0");
        let wrong = member0.sign("proposal", now_s(), None, &open(next));
        let response = post_cose(&mut conn, "/gov/members/proposals:create", wrong).await;
        let info: Value = serde_json::from_slice(&response.body).unwrap();
        let proposal_id = info["proposalId"].as_str().unwrap().to_owned();
        let member1 = Member::load(dir, "member1");
        let ballot = json!({"ballot": "export function vote (p, id) { return true }"});
        let signed = member1.sign("ballot", now_s(), Some(&proposal_id), &ballot);
        let path = format!("/gov/members/proposals/{proposal_id}/ballots/{}:submit", member1.id);
        expect_error(&post_cose(&mut conn, &path, signed).await, 400, "InvalidServiceIdentity");
        let info = gov_get(&mut conn, "/gov/service/info").await;
        assert_eq!(info["status"], "Recovering", "{info}");
        pass_proposal(&mut conn, dir, &open(previous)).await;
        let info = gov_get(&mut conn, "/gov/service/info").await;
        assert_eq!(info["status"], "WaitingForRecoveryShares", "{info}");
    });
}

/// Shares of the split before the rekey reach the threshold but rebuild the wrong key:
/// the node says so and clears them, and the service keeps waiting.
fn submit_stale_shares(node: &NodeProcess, dir: &Path, stale: &[coco_crypto::Share]) {
    block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        for (index, share) in stale.iter().take(2).enumerate() {
            let member = Member::load(dir, &format!("member{index}"));
            let share = base64::engine::general_purpose::STANDARD.encode(share.to_bytes());
            let body = json!({ "share": share });
            let signed = member.sign("recovery_share", now_s(), None, &body);
            let path = format!("/gov/recovery/members/{}:recover", member.id);
            let response = post_cose(&mut conn, &path, signed).await;
            if index == 0 {
                assert_eq!(response.status, 200, "{}", body_text(&response));
            } else {
                expect_error(&response, 400, "RecoveryFailed");
            }
        }
        let garbage = Member::load(dir, "member2").sign(
            "recovery_share",
            now_s(),
            None,
            &json!({"share": "AAAA"}),
        );
        let path = format!("/gov/recovery/members/{}:recover", Member::load(dir, "member2").id);
        expect_error(&post_cose(&mut conn, &path, garbage).await, 400, "InvalidInput");
        let info = gov_get(&mut conn, "/gov/service/info").await;
        assert_eq!(info["status"], "WaitingForRecoveryShares", "{info}");
    });
}

async fn check_every_record(user: &mut coco_client::Connection) {
    for id in BEFORE.chain(AFTER) {
        let record = get_record(user, "private", id).await.unwrap();
        assert_eq!(record.as_deref(), Some(format!("secret {id}").as_str()), "record {id}");
    }
    let public = get_record(user, "public", 1).await.unwrap();
    assert_eq!(public.as_deref(), Some("public 1"));
}

fn submit_share(addr: &str, dir: &Path, member: &str) -> Output {
    let dir = dir.to_string_lossy();
    run_coco(&[
        "gov",
        "recovery",
        "submit-share",
        "--address",
        addr,
        "--dir",
        &dir,
        "--member",
        member,
    ])
}

fn submit_share_ok(addr: &str, dir: &Path, member: &str) -> Value {
    let output = submit_share(addr, dir, member);
    assert!(output.status.success(), "submit-share {member}: {}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_refused(output: &Output, code: &str) {
    assert!(!output.status.success(), "expected {code}: {}", describe(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with(&format!("error: {code}: ")), "{}", describe(output));
}

/// Coco's auditor and CCF's `read_ledger.py` accept the ledger across the recovery.
fn audit(ledger: &Path) {
    let verify = run_coco(&["ledger", "verify", "--quiet", &ledger.to_string_lossy()]);
    assert!(verify.status.success(), "coco ledger verify: {}", describe(&verify));
    if let Some(ccf) = crate::ccf::CcfPython::from_env("recovery") {
        let output = ccf.read_ledger(ledger, true);
        assert!(output.status.success(), "read_ledger.py: {}", describe(&output));
    }
}
