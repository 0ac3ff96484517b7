//! Governance over `/gov` with COSE Sign1 envelopes: a member acks the state digest,
//! proposes a new user, the constitution accepts it, and the new user
//! can transact; forged, replayed and mistyped envelopes are refused and change nothing.

use bytes::Bytes;
use coco_client::Connection;
use coco_crypto::{Certificate, SigningKey, sign_gov_envelope};
use http::Method;
use serde_json::{Value, json};

use crate::block_on;
use crate::harness::{Launch, Who, Workspace, body_text, expect_error, quick_limits};

pub(crate) const API: &str = "api-version=2024-07-01";

pub(crate) struct Member {
    key: SigningKey,
    pub(crate) id: String,
}

impl Member {
    pub(crate) fn load(dir: &std::path::Path, name: &str) -> Self {
        let pem = |suffix: &str| std::fs::read_to_string(dir.join(format!("{name}_{suffix}.pem")));
        let key = SigningKey::from_pkcs8_pem(&pem("privk").unwrap()).unwrap();
        let cert = Certificate::from_pem(&pem("cert").unwrap()).unwrap();
        Self { key, id: cert.sha256_der().to_hex() }
    }

    pub(crate) fn sign(
        &self,
        msg_type: &str,
        created_at: u64,
        proposal_id: Option<&str>,
        body: &Value,
    ) -> Bytes {
        let payload = serde_json::to_vec(body).unwrap();
        Bytes::from(sign_gov_envelope(
            &self.key,
            &self.id,
            msg_type,
            created_at,
            proposal_id,
            &payload,
        ))
    }
}

pub(crate) async fn post_cose(
    conn: &mut Connection,
    path: &str,
    body: Bytes,
) -> coco_client::Response {
    let path = format!("{path}?{API}");
    conn.request(Method::POST, &path, Some("application/cose"), body).await.unwrap()
}

/// The service read endpoints reflect an open service whose only member is Active.
async fn check_service_reads(conn: &mut Connection, member_id: &str) {
    let info = gov_get(conn, "/gov/service/info").await;
    assert_eq!(info["status"], "Open", "{info}");
    let members = gov_get(conn, "/gov/service/members").await;
    assert_eq!(members["value"][0]["memberId"], member_id);
    assert_eq!(members["value"][0]["status"], "Active");
    let unknown = conn.get(&format!("/gov/service/members/{}?{API}", "0".repeat(64))).await;
    expect_error(&unknown.unwrap(), 404, "ResourceNotFound");
    let one = gov_get(conn, &format!("/gov/service/members/{member_id}")).await;
    assert_eq!(one["memberId"], member_id, "{one}");
    let users = gov_get(conn, "/gov/service/users").await;
    let user_id = users["value"][0]["userId"].as_str().unwrap().to_owned();
    assert!(users["value"][0]["certificate"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    let user = gov_get(conn, &format!("/gov/service/users/{user_id}")).await;
    assert_eq!(user["userId"], user_id.as_str(), "{user}");
    let nodes = gov_get(conn, "/gov/service/nodes").await;
    assert_eq!(nodes["value"][0]["status"], "Trusted", "{nodes}");
    let node_id = nodes["value"][0]["nodeId"].as_str().unwrap().to_owned();
    let node = gov_get(conn, &format!("/gov/service/nodes/{node_id}")).await;
    assert!(node["certificate"].as_str().unwrap().contains("BEGIN CERTIFICATE"), "{node}");
    let unknown = conn.get(&format!("/gov/service/nodes/{}?{API}", "0".repeat(64))).await;
    expect_error(&unknown.unwrap(), 404, "ResourceNotFound");
}

pub(crate) async fn gov_get(conn: &mut Connection, path: &str) -> Value {
    let response = conn.get(&format!("{path}?{API}")).await.unwrap();
    assert_eq!(response.status, 200, "GET {path}: {}", body_text(&response));
    serde_json::from_slice(&response.body).unwrap()
}

pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_member_acks_proposes_a_user_and_the_user_transacts() {
    let mut workspace = Workspace::new();
    workspace.prepare(quick_limits());
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let member = Member::load(&dir, "member0");
    let newcomer = SigningKey::generate_p384().unwrap();
    let newcomer_cert = Certificate::self_signed_identity(&newcomer, "user1", now_s(), 30).unwrap();
    std::fs::write(dir.join("user1_cert.pem"), newcomer_cert.to_pem()).unwrap();
    std::fs::write(dir.join("user1_privk.pem"), newcomer.to_pkcs8_pem()).unwrap();
    block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let id = &member.id;

        // The sandbox's members acked when it opened the service; acking again is a no-op.
        let proposal =
            json!({"actions": [{"name": "set_user", "args": {"cert": newcomer_cert.to_pem()}}]});

        let update = member.sign("state_digest", now_s(), None, &json!({}));
        let path = format!("/gov/members/state-digests/{id}:update");
        let response = post_cose(&mut conn, &path, update).await;
        assert_eq!(response.status, 200, "{}", body_text(&response));
        let digest: Value = serde_json::from_slice(&response.body).unwrap();
        let ack = member.sign("ack", now_s(), None, &json!({"stateDigest": digest["stateDigest"]}));
        let path = format!("/gov/members/state-digests/{id}:ack");
        let response = post_cose(&mut conn, &path, ack).await;
        assert_eq!(response.status, 204, "{}", body_text(&response));

        // Refused envelopes change nothing.
        let wrong_type = member.sign("ballot", now_s(), None, &proposal);
        let response = post_cose(&mut conn, "/gov/members/proposals:create", wrong_type).await;
        expect_error(&response, 400, "InvalidCoseMessageType");
        let mut forged = member.sign("proposal", now_s(), None, &proposal).to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let response = post_cose(&mut conn, "/gov/members/proposals:create", forged.into()).await;
        expect_error(&response, 401, "InvalidAuthenticationInfo");
        let unversioned = conn
            .request(
                Method::POST,
                "/gov/members/proposals:create",
                Some("application/cose"),
                Bytes::new(),
            )
            .await
            .unwrap();
        expect_error(&unversioned, 400, "MissingApiVersionParameter");

        // Not a user yet: the user route refuses the certificate.
        let mut early = node.connect(&Who::Named(dir.clone(), "user1".to_owned())).await;
        let refused = early.post_json("/app/log/private", &json!({"id": 1, "msg": "early"})).await;
        expect_error(&refused.unwrap(), 401, "Unauthorized");

        // The member, now Active and the only one, passes the proposal alone.
        let signed = member.sign("proposal", now_s(), None, &proposal);
        let response = post_cose(&mut conn, "/gov/members/proposals:create", signed.clone()).await;
        assert_eq!(response.status, 200, "{}", body_text(&response));
        assert!(response.tx_id().is_ok(), "a proposal is a transaction");
        let info: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(info["proposalState"], "Accepted", "{info}");
        let replay = post_cose(&mut conn, "/gov/members/proposals:create", signed).await;
        expect_error(&replay, 400, "ProposalReplay");

        let proposal_id = info["proposalId"].as_str().unwrap();
        let path = format!("/gov/members/proposals/{proposal_id}?{API}");
        let fetched = conn.get(&path).await.unwrap();
        assert_eq!(fetched.status, 200, "{}", body_text(&fetched));
        let constitution = conn.get(&format!("/gov/service/constitution?{API}")).await.unwrap();
        assert_eq!(constitution.status, 200);
        check_service_reads(&mut conn, &member.id).await;

        let tx = response.tx_id().unwrap();
        let mut user = node.connect(&Who::Named(dir.clone(), "user1".to_owned())).await;
        user.wait_for_commit(tx, crate::harness::COMMIT_TIMEOUT).await.unwrap();
        let write =
            user.post_json("/app/log/private", &json!({"id": 1, "msg": "from user1"})).await;
        assert_eq!(write.unwrap().status, 200, "the voted-in user can transact");
        let status = gov_get(&mut conn, &format!("/gov/service/transactions/{tx}")).await;
        assert_eq!(status["status"], "Committed", "{status}");
        let commit = gov_get(&mut conn, "/gov/service/transactions/commit").await;
        assert_eq!(commit["status"], "Committed");
    });
}

/// CCF's own signing tool (`ccf_cose_sign1` from the pinned `ccf` package) produces a
/// proposal and a ballot that Coco accepts, on the default three-member sandbox where a
/// proposal needs a second vote.
#[test]
fn ccf_cose_sign1_signs_a_proposal_and_a_ballot_coco_accepts() {
    let Some(ccf) = crate::ccf::CcfPython::from_env("ccf_cose_sign1") else { return };
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let identity =
        |name: &str| (dir.join(format!("{name}_privk.pem")), dir.join(format!("{name}_cert.pem")));
    let user = SigningKey::generate_p384().unwrap();
    let user_cert = Certificate::self_signed_identity(&user, "user2", now_s(), 30).unwrap();
    let proposal_file = workspace.root().join("proposal.json");
    let proposal = json!({"actions": [{"name": "set_user", "args": {"cert": user_cert.to_pem()}}]});
    std::fs::write(&proposal_file, proposal.to_string()).unwrap();
    let (key0, cert0) = identity("member0");
    let signed = ccf.cose_sign1(&proposal_file, (&key0, &cert0), "proposal", now_s(), None);
    block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let response = post_cose(&mut conn, "/gov/members/proposals:create", signed.into()).await;
        assert_eq!(response.status, 200, "{}", body_text(&response));
        let info: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(info["proposalState"], "Open", "three members: one vote is not a majority");
        let proposal_id = info["proposalId"].as_str().unwrap().to_owned();

        let ballot_file = workspace.root().join("ballot.json");
        let ballot =
            json!({"ballot": "export function vote (proposal, proposerId) { return true }"});
        std::fs::write(&ballot_file, ballot.to_string()).unwrap();
        let (key1, cert1) = identity("member1");
        let member1 = Member::load(&dir, "member1");
        let signed =
            ccf.cose_sign1(&ballot_file, (&key1, &cert1), "ballot", now_s(), Some(&proposal_id));
        let path = format!("/gov/members/proposals/{proposal_id}/ballots/{}:submit", member1.id);
        let response = post_cose(&mut conn, &path, signed.into()).await;
        assert_eq!(response.status, 200, "{}", body_text(&response));
        let info: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(info["proposalState"], "Accepted", "{info}");
    });
}

/// `trigger_ledger_rekey` rotates the ledger secret: private records written before and
/// after stay readable across a restart, the ledger still verifies (Coco's and CCF's
/// auditors), and a membership change (`set_member`) rekeys too (W35).
#[test]
fn a_rekey_keeps_old_and_new_private_records_readable_after_restart() {
    let mut workspace = Workspace::new();
    workspace.prepare(quick_limits());
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let member = Member::load(&dir, "member0");
    let rekey = json!({"actions": [{"name": "trigger_ledger_rekey", "args": {}}]});
    let newcomer = SigningKey::generate_p384().unwrap();
    let newcomer_cert =
        Certificate::self_signed_identity(&newcomer, "member9", now_s(), 30).unwrap();
    let add_member =
        json!({"actions": [{"name": "set_member", "args": {"cert": newcomer_cert.to_pem()}}]});
    let last = block_on(async {
        let mut user = node.connect(&Who::User).await;
        let mut conn = node.connect(&Who::Anonymous).await;
        let mut last = None;
        for (id, proposal) in [(1, &rekey), (2, &add_member)] {
            let msg = format!("before rekey {id}");
            crate::harness::post_record(&mut user, "/app/log/private", id, &msg).await.unwrap();
            let signed = member.sign("proposal", now_s() + id, None, proposal);
            let response = post_cose(&mut conn, "/gov/members/proposals:create", signed).await;
            assert_eq!(response.status, 200, "{}", body_text(&response));
            let info: Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(info["proposalState"], "Accepted", "{info}");
            let msg = format!("after rekey {id}");
            let tx = crate::harness::post_record(&mut user, "/app/log/private", id + 10, &msg)
                .await
                .unwrap();
            last = Some(tx);
        }
        let last = last.unwrap();
        crate::harness::wait_committed(&mut user, last).await;
        last
    });
    node.terminate();
    assert!(node_log_mentions(&workspace, "ledger secret rotated"), "the node rotated its secret");
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        let mut user = node.connect(&Who::User).await;
        for id in [1, 2] {
            let before = crate::harness::get_record(&mut user, "private", id).await.unwrap();
            assert_eq!(before.as_deref(), Some(format!("before rekey {id}").as_str()));
            let after = crate::harness::get_record(&mut user, "private", id + 10).await.unwrap();
            assert_eq!(after.as_deref(), Some(format!("after rekey {id}").as_str()));
        }
        let status = user.tx_status(last).await.unwrap();
        assert_eq!(status, coco_types::TxStatus::Committed);
    });
    node.terminate();
    let verify = crate::harness::run_coco(&[
        "ledger",
        "verify",
        "--quiet",
        &workspace.ledger_dir().to_string_lossy(),
    ]);
    assert!(verify.status.success(), "coco ledger verify: {}", crate::harness::describe(&verify));
    if let Some(ccf) = crate::ccf::CcfPython::from_env("rekey") {
        let output = ccf.read_ledger(&workspace.ledger_dir(), true);
        assert!(output.status.success(), "read_ledger.py: {}", crate::harness::describe(&output));
    }
}

fn node_log_mentions(workspace: &Workspace, needle: &str) -> bool {
    crate::harness::files_under(&workspace.root().join("logs"))
        .iter()
        .any(|log| std::fs::read_to_string(log).unwrap_or_default().contains(needle))
}

/// The sandbox's three members each hold a recovery share (threshold 2), served encrypted to
/// their RSA keys at `/gov/recovery/encrypted-shares/{memberId}`: any two decrypt to the
/// same wrapping key, one alone rebuilds nothing.
#[test]
fn recovery_shares_are_served_encrypted_to_each_member() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let shares = block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let path = format!("/gov/recovery/encrypted-shares/{}?{API}", "0".repeat(64));
        expect_error(&conn.get(&path).await.unwrap(), 404, "ResourceNotFound");
        decrypted_shares(&mut conn, &dir).await
    });
    let key_01 = coco_crypto::combine_shares(&shares[..2]).unwrap();
    let key_12 = coco_crypto::combine_shares(&shares[1..]).unwrap();
    assert_eq!(key_01, key_12, "any two shares rebuild the same wrapping key");
    assert!(coco_crypto::combine_shares(&shares[..1]).is_err(), "one share is not enough");

    // A rekey (two of three members vote) re-issues the shares for the new secret.
    let rekey = json!({"actions": [{"name": "trigger_ledger_rekey", "args": {}}]});
    let reissued = block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let member0 = Member::load(&dir, "member0");
        let signed = member0.sign("proposal", now_s(), None, &rekey);
        let response = post_cose(&mut conn, "/gov/members/proposals:create", signed).await;
        let info: Value = serde_json::from_slice(&response.body).unwrap();
        let proposal_id = info["proposalId"].as_str().unwrap().to_owned();
        let member1 = Member::load(&dir, "member1");
        let ballot =
            json!({"ballot": "export function vote (proposal, proposerId) { return true }"});
        let signed = member1.sign("ballot", now_s(), Some(&proposal_id), &ballot);
        let path = format!("/gov/members/proposals/{proposal_id}/ballots/{}:submit", member1.id);
        let info: Value =
            serde_json::from_slice(&post_cose(&mut conn, &path, signed).await.body).unwrap();
        assert_eq!(info["proposalState"], "Accepted", "{info}");
        decrypted_shares(&mut conn, &dir).await
    });
    let rekeyed = coco_crypto::combine_shares(&reissued[..2]).unwrap();
    assert_ne!(rekeyed, key_01, "the rekey issued shares of a fresh wrapping key");
}

pub(crate) async fn decrypted_shares(
    conn: &mut Connection,
    dir: &std::path::Path,
) -> Vec<coco_crypto::Share> {
    use base64::Engine as _;
    let mut shares = Vec::new();
    for index in 0..3 {
        let member = Member::load(dir, &format!("member{index}"));
        let path = format!("/gov/recovery/encrypted-shares/{}", member.id);
        let record = gov_get(conn, &path).await;
        let encrypted = base64::engine::general_purpose::STANDARD
            .decode(record["encryptedShare"].as_str().unwrap())
            .unwrap();
        let key_pem = std::fs::read_to_string(dir.join(format!("member{index}_enc_privk.pem")));
        let key = coco_crypto::RsaPrivateKey::from_pem(&key_pem.unwrap()).unwrap();
        let share = key.decrypt_oaep_sha256(&encrypted).unwrap();
        shares.push(coco_crypto::Share::from_bytes(&share).unwrap());
    }
    shares
}
