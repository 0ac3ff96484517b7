//! Members' acknowledgement of the state digest: an Accepted member fetches a fresh digest
//! (`:update`) and signs it back (`:ack`) to become Active, proving it has seen the
//! service's state and holds its key.

use coco_kv::Tx;
use coco_types::Digest;
use serde_json::{Value, json};

use crate::constitution::GovEffect;
use crate::envelope::{SignedRequest, member_status};
use crate::error::{GovError, Result};
use crate::tables::{self, map};

fn response(member_id: &str, digest: &str) -> Value {
    json!({"memberId": member_id, "stateDigest": digest})
}

/// Issues the current Merkle root to `member_id` as its state digest (`POST
/// /gov/members/state-digests/{memberId}:update`, request verified with
/// [`crate::MsgType::StateDigest`]). Returns `{"memberId", "stateDigest"}`.
///
/// # Errors
/// [`GovError::MemberIdMismatch`] if the request is another member's.
///
/// # Panics
/// Never: the record is a JSON object of strings.
pub fn update_state_digest(
    tx: &mut Tx,
    request: &SignedRequest,
    member_id: &str,
    merkle_root: Digest,
) -> Result<Value> {
    request.check_signer(member_id)?;
    let digest = merkle_root.to_hex();
    let record = serde_json::to_vec(&json!({"state_digest": digest})).expect("JSON object");
    tx.put(&map(tables::MEMBERS_ACKS), member_id.as_bytes(), record);
    Ok(response(member_id, &digest))
}

/// The digest last issued to `member_id` (`GET /gov/members/state-digests/{memberId}`).
///
/// # Errors
/// [`GovError::StateDigestNotFound`] if none was issued; [`GovError::Internal`] if the
/// record is corrupt.
pub fn state_digest(tx: &mut Tx, member_id: &str) -> Result<Value> {
    let digest = issued_digest(tx, member_id)?;
    Ok(response(member_id, &digest))
}

fn issued_digest(tx: &mut Tx, member_id: &str) -> Result<String> {
    let raw = tx
        .get(&map(tables::MEMBERS_ACKS), member_id.as_bytes())
        .ok_or_else(|| GovError::StateDigestNotFound { member_id: member_id.to_owned() })?;
    let record: Value = serde_json::from_slice(raw)
        .map_err(|e| GovError::internal(format!("members.acks of {member_id}: {e}")))?;
    record
        .get("state_digest")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| GovError::StateDigestNotFound { member_id: member_id.to_owned() })
}

/// Acknowledges the digest in the request's payload (`{"stateDigest": "<hex>"}`; `POST
/// …/{memberId}:ack`, request verified with [`crate::MsgType::Ack`]): an Accepted member
/// becomes Active. A recovery member (one with an encryption key) becoming Active returns
/// [`GovEffect::TriggerRecoverySharesRefresh`] so it gets a share. Acknowledging again is
/// harmless.
///
/// # Errors
/// [`GovError::MemberIdMismatch`], [`GovError::InvalidInput`] for a bad payload,
/// [`GovError::StateDigestNotFound`], [`GovError::StateDigestMismatch`].
///
/// # Panics
/// Never: the updated record is a JSON object.
pub fn ack(tx: &mut Tx, request: &SignedRequest, member_id: &str) -> Result<Vec<GovEffect>> {
    request.check_signer(member_id)?;
    let submitted = request.payload_str("an ack", "stateDigest", r#"{"stateDigest": "<hex>"}"#)?;
    if issued_digest(tx, member_id)? != submitted {
        return Err(GovError::StateDigestMismatch { member_id: member_id.to_owned() });
    }
    if member_status(tx, member_id)? == "Active" {
        return Ok(Vec::new());
    }
    let info_map = map(tables::MEMBERS_INFO);
    let raw = tx.get(&info_map, member_id.as_bytes()).unwrap_or_default();
    let mut info: Value = serde_json::from_slice(raw)
        .map_err(|e| GovError::internal(format!("members.info of {member_id}: {e}")))?;
    info["status"] = Value::from("Active");
    let value = serde_json::to_vec(&info).expect("JSON value");
    tx.put(&info_map, member_id.as_bytes(), value);
    let recovery = tx.get(&map(tables::MEMBERS_ENCRYPTION_PUBLIC_KEYS), member_id.as_bytes());
    Ok(if recovery.is_some() { vec![GovEffect::TriggerRecoverySharesRefresh] } else { Vec::new() })
}

#[cfg(test)]
mod tests {
    use coco_crypto::sha256;

    use super::*;
    use crate::testkit::{NOW, Service, governance, json_bytes, proposal};
    use crate::{Expected, MsgType, verify_request};

    fn request(
        service: &Service,
        member: usize,
        msg_type: MsgType,
        payload: &Value,
    ) -> (Tx, SignedRequest) {
        let signer = &service.members[member];
        let body = signer.sign(msg_type.as_str(), NOW, None, &json_bytes(payload));
        let mut tx = service.tx();
        let expected = Expected { msg_type, proposal_id: None, member_id: Some(&signer.id) };
        let request = verify_request(&mut tx, &body, expected).unwrap();
        (tx, request)
    }

    #[test]
    fn an_accepted_member_acks_the_issued_digest_and_becomes_active() {
        let mut service = Service::new(2, false);
        let id = service.members[0].id.clone();
        let gov = governance();
        let error =
            service.submit(&gov, 0, &proposal("trigger_ledger_rekey", json!({}))).unwrap_err();
        assert!(matches!(error, GovError::MemberNotActive { .. }), "{error:?}");

        let root = sha256(b"root");
        let (mut tx, req) = request(&service, 0, MsgType::StateDigest, &json!({}));
        let issued = update_state_digest(&mut tx, &req, &id, root).unwrap();
        assert_eq!(issued, json!({"memberId": id, "stateDigest": root.to_hex()}));
        service.commit(tx);
        assert_eq!(state_digest(&mut service.tx(), &id).unwrap(), issued);

        let wrong = json!({"stateDigest": sha256(b"other").to_hex()});
        let (mut tx, req) = request(&service, 0, MsgType::Ack, &wrong);
        let error = ack(&mut tx, &req, &id).unwrap_err();
        assert_eq!(error, GovError::StateDigestMismatch { member_id: id.clone() });
        assert_eq!(error.status(), 400);

        let (mut tx, req) =
            request(&service, 0, MsgType::Ack, &json!({"stateDigest": root.to_hex()}));
        assert_eq!(ack(&mut tx, &req, &id).unwrap(), Vec::new());
        service.commit(tx);
        assert_eq!(member_status(&mut service.tx(), &id).unwrap(), "Active");
        // Now Active, the member proposes (alone it is the whole active set).
        let (info, effects) =
            service.submit(&gov, 0, &proposal("trigger_ledger_rekey", json!({}))).unwrap();
        assert_eq!(info.state, crate::ProposalState::Accepted);
        assert_eq!(effects, vec![GovEffect::TriggerLedgerRekey]);
    }

    #[test]
    fn an_ack_without_an_issued_digest_or_for_another_member_is_refused() {
        let service = Service::new(2, false);
        let other = service.members[1].id.clone();
        let (mut tx, req) = request(&service, 0, MsgType::Ack, &json!({"stateDigest": "00"}));
        let error = ack(&mut tx, &req, &service.members[0].id).unwrap_err();
        assert!(matches!(error, GovError::StateDigestNotFound { .. }), "{error:?}");
        let error = ack(&mut tx, &req, &other).unwrap_err();
        assert!(matches!(error, GovError::MemberIdMismatch { .. }), "{error:?}");
        let (mut tx, req) = request(&service, 0, MsgType::Ack, &json!({"digest": 1}));
        let error = ack(&mut tx, &req, &service.members[0].id).unwrap_err();
        assert!(matches!(error, GovError::InvalidInput { .. }), "{error:?}");
    }
}
