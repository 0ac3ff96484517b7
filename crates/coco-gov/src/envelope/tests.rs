use serde_json::json;

use super::*;
use crate::testkit::{NOW, Service, json_bytes};

fn expected(msg_type: MsgType) -> Expected<'static> {
    Expected { msg_type, proposal_id: None, member_id: None }
}

fn proposal_body() -> Vec<u8> {
    json_bytes(&json!({"actions": []}))
}

#[test]
fn a_member_signed_proposal_verifies_and_is_recorded_in_the_history() {
    let service = Service::new(3, true);
    let member = &service.members[0];
    let body = member.sign("proposal", NOW, None, &proposal_body());
    let mut tx = service.tx();
    let request = verify_request(&mut tx, &body, expected(MsgType::Proposal)).unwrap();
    assert_eq!(request.member_id.to_hex(), member.id);
    assert_eq!(request.created_at, NOW);
    assert_eq!(request.payload, proposal_body());
    assert_eq!(request.envelope, body);
    assert_eq!(tx.get(&map(tables::HISTORY), member.id.as_bytes()), Some(body.as_slice()));
}

#[test]
fn unknown_signers_and_users_are_refused_as_unknown_members() {
    let service = Service::new(1, true);
    let stranger = crate::testkit::Identity::new("stranger");
    for signer in [&stranger, &service.user] {
        let body = signer.sign("proposal", NOW, None, &proposal_body());
        let error =
            verify_request(&mut service.tx(), &body, expected(MsgType::Proposal)).unwrap_err();
        assert_eq!(error, GovError::UnknownMember);
        assert_eq!((error.status(), error.code()), (401, "InvalidAuthenticationInfo"));
        assert_eq!(error.to_string(), "Signer is not a known member");
    }
}

#[test]
fn a_signature_by_another_key_or_over_other_bytes_is_refused() {
    let service = Service::new(2, true);
    let (alice, bob) = (&service.members[0], &service.members[1]);
    // Bob's key, Alice's kid.
    let forged = coco_crypto::sign_gov_envelope(&bob.key, &alice.id, "proposal", NOW, None, b"{}");
    let error =
        verify_request(&mut service.tx(), &forged, expected(MsgType::Proposal)).unwrap_err();
    assert!(matches!(error, GovError::BadSignature { .. }), "{error:?}");
    assert_eq!(error.status(), 401);
    // A flipped payload byte.
    let mut body = alice.sign("proposal", NOW, None, b"{\"actions\":[]}");
    let at = body.len() - 100;
    body[at] ^= 1;
    let error = verify_request(&mut service.tx(), &body, expected(MsgType::Proposal)).unwrap_err();
    assert!(
        matches!(error, GovError::BadSignature { .. } | GovError::MalformedEnvelope { .. }),
        "{error:?}"
    );
}

#[test]
fn malformed_bodies_are_refused() {
    let service = Service::new(1, true);
    for body in [&b""[..], b"{\"actions\": []}", &[0xd2, 0x84]] {
        let error =
            verify_request(&mut service.tx(), body, expected(MsgType::Proposal)).unwrap_err();
        assert!(matches!(error, GovError::MalformedEnvelope { .. }), "{error:?}");
        assert_eq!(error.status(), 401);
    }
}

#[test]
fn the_message_type_must_be_the_endpoints() {
    let service = Service::new(1, true);
    let body = service.members[0].sign("ballot", NOW, Some("p"), b"{}");
    let error = verify_request(&mut service.tx(), &body, expected(MsgType::Proposal)).unwrap_err();
    assert_eq!(error, GovError::WrongMessageType { expected: "proposal", found: "ballot".into() });
    assert_eq!(error.status(), 400);
}

#[test]
fn url_bindings_must_match_the_signed_ones() {
    let service = Service::new(2, true);
    let member = &service.members[0];
    let body = member.sign("ballot", NOW, Some("aa"), b"{}");
    let url = |proposal_id, member_id| Expected {
        msg_type: MsgType::Ballot,
        proposal_id: Some(proposal_id),
        member_id: Some(member_id),
    };
    let error = verify_request(&mut service.tx(), &body, url("bb", &member.id)).unwrap_err();
    assert!(matches!(error, GovError::ProposalIdMismatch { .. }), "{error:?}");
    assert_eq!(error.code(), "ProposalIdMismatch");
    let other = service.members[1].id.clone();
    let error = verify_request(&mut service.tx(), &body, url("aa", &other)).unwrap_err();
    assert!(matches!(error, GovError::MemberIdMismatch { .. }), "{error:?}");
    assert_eq!(error.status(), 403);
    verify_request(&mut service.tx(), &body, url("aa", &member.id)).unwrap();
    // A ballot without a signed proposal id does not match any URL.
    let unbound = member.sign("ballot", NOW, None, b"{}");
    let error = verify_request(&mut service.tx(), &unbound, url("aa", &member.id)).unwrap_err();
    assert!(matches!(error, GovError::ProposalIdMismatch { signed: None, .. }), "{error:?}");
}

#[test]
fn created_at_beyond_ten_digits_is_refused() {
    let service = Service::new(1, true);
    let body = service.members[0].sign("proposal", CREATED_AT_MAX + 1, None, b"{}");
    let error = verify_request(&mut service.tx(), &body, expected(MsgType::Proposal)).unwrap_err();
    assert_eq!(error, GovError::CreatedAtOutOfRange { created_at: CREATED_AT_MAX + 1 });
    let body = service.members[0].sign("proposal", CREATED_AT_MAX, None, b"{}");
    verify_request(&mut service.tx(), &body, expected(MsgType::Proposal)).unwrap();
}

#[test]
fn accepted_members_may_only_ack_and_fetch_their_digest() {
    let service = Service::new(1, false);
    let member = &service.members[0];
    for (msg_type, kind) in [
        (MsgType::Proposal, "proposal"),
        (MsgType::Ballot, "ballot"),
        (MsgType::Withdrawal, "withdrawal"),
    ] {
        let body = member.sign(kind, NOW, None, b"{}");
        let error = verify_request(&mut service.tx(), &body, expected(msg_type)).unwrap_err();
        assert!(matches!(error, GovError::MemberNotActive { .. }), "{error:?}");
        assert_eq!((error.status(), error.code()), (403, "AuthorizationFailed"));
    }
    for (msg_type, kind) in [(MsgType::Ack, "ack"), (MsgType::StateDigest, "state_digest")] {
        let body = member.sign(kind, NOW, None, b"{}");
        verify_request(&mut service.tx(), &body, expected(msg_type)).unwrap();
    }
}

#[test]
fn replayed_and_stale_proposals_are_refused() {
    let mut service = Service::new(1, true);
    let member = &service.members[0];
    let accept = |service: &mut Service, body: &[u8]| -> Result<()> {
        let mut tx = service.tx();
        let request = verify_request(&mut tx, body, expected(MsgType::Proposal))?;
        record_recent_proposal(&mut tx, &request, "id")?;
        service.commit(tx);
        Ok(())
    };
    let first = member.sign("proposal", NOW, None, b"{}");
    let stale = member.sign("proposal", NOW + 19, None, b"{}");
    let at_median = member.sign("proposal", NOW + 20, None, b"{\"x\":1}");
    accept(&mut service, &first).unwrap();
    let error = accept(&mut service, &first).unwrap_err();
    assert!(matches!(error, GovError::ProposalReplay { .. }), "{error:?}");
    assert_eq!(error.code(), "ProposalReplay");
    for offset in 1..=4 {
        let member = &service.members[0];
        let body = member.sign("proposal", NOW + offset * 10, None, b"{}");
        accept(&mut service, &body).unwrap();
    }
    // Retained: NOW, +10, +20, +30, +40; median +20. Older than it is stale, equal is not.
    let error = accept(&mut service, &stale).unwrap_err();
    assert!(matches!(error, GovError::ProposalCreatedTooLongAgo { .. }), "{error:?}");
    assert_eq!(error.status(), 400);
    accept(&mut service, &at_median).unwrap();
}

#[test]
fn the_replay_window_is_bounded_by_the_service_configuration() {
    let mut service = Service::new(1, true);
    let mut tx = service.tx();
    tx.put(
        &map(tables::SERVICE_CONFIG),
        tables::SINGLETON_KEY,
        json_bytes(&json!({"recent_cose_proposals_window_size": 3})),
    );
    service.commit(tx);
    for offset in 0..10 {
        let mut tx = service.tx();
        let body = service.members[0].sign("proposal", NOW + offset, None, b"{}");
        let request = verify_request(&mut tx, &body, expected(MsgType::Proposal)).unwrap();
        record_recent_proposal(&mut tx, &request, "id").unwrap();
        service.commit(tx);
    }
    let keys = recent_keys(&mut service.tx());
    assert_eq!(keys.len(), 3);
    assert!(keys[0].starts_with(format!("{:010}:", NOW + 7).as_bytes()));
}
