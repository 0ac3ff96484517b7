use serde_json::json;

use super::*;
use crate::GovError;
use crate::testkit::{Identity, NOW, Service, governance, proposal};

fn set_user(user: &Identity) -> Value {
    proposal("set_user", json!({"cert": user.cert.to_pem()}))
}

#[test]
fn a_majority_accepts_set_user_and_the_user_appears() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let newcomer = Identity::new("newcomer");
    let (info, effects) = service.submit(&gov, 0, &set_user(&newcomer)).unwrap();
    assert_eq!(info.state, ProposalState::Open, "the proposer alone is 1 of 3");
    assert!(effects.is_empty());
    assert_eq!(info.proposer_id, service.members[0].id);
    assert!(service.read(tables::USERS_CERTS, newcomer.id.as_bytes()).is_none(), "W41");
    let listed = list(&mut service.tx()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].proposal_id, info.proposal_id);

    let (info, _) = service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
    let pem = service.read(tables::USERS_CERTS, newcomer.id.as_bytes()).unwrap();
    assert_eq!(pem, newcomer.cert.to_pem().into_bytes());
    let stored = get(&mut service.tx(), &info.proposal_id).unwrap();
    assert_eq!(stored, info);
    let votes = stored.final_votes.clone().unwrap();
    assert_eq!(votes.get(&service.members[1].id), Some(&true));
    let api = stored.to_api_json();
    assert_eq!(api["proposalState"], "Accepted");
    assert_eq!(api["ballotCount"], 1);
    assert_eq!(api["ballotSubmitters"], json!([service.members[1].id]));
    assert_eq!(api["finalVotes"][&service.members[1].id], true);
    assert_eq!(api["proposalId"], info.proposal_id.as_str());
    assert!(list(&mut service.tx()).unwrap().is_empty());
    let body = actions(&mut service.tx(), &info.proposal_id).unwrap();
    assert_eq!(body["actions"][0]["name"], "set_user");
}

#[test]
fn the_proposal_id_binds_the_root_and_the_signature() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let body = service.members[0].sign(
        "proposal",
        NOW,
        None,
        &crate::testkit::json_bytes(&set_user(&service.user)),
    );
    let envelope = coco_crypto::parse_gov_envelope(&body).unwrap();
    let (info, _) = service.propose_envelope(&gov, &body).unwrap();
    let root = sha256(&1_u64.to_be_bytes());
    assert_eq!(info.proposal_id, proposal_id(&root, &envelope.signature));
    let mut expected = root.as_bytes().to_vec();
    expected.extend_from_slice(sha256(&envelope.signature).as_bytes());
    assert_eq!(info.proposal_id, sha256(&expected).to_hex());
    // The same envelope again is a replay and changes nothing.
    let error = service.propose_envelope(&gov, &body).unwrap_err();
    assert!(matches!(error, GovError::ProposalReplay { .. }), "{error:?}");
}

#[test]
fn a_single_member_or_one_of_n_accepts_at_once() {
    let mut service = Service::new(1, true);
    let gov = governance();
    let user = Identity::new("u");
    let (info, _) = service.submit(&gov, 0, &set_user(&user)).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);

    let mut service = Service::new(3, true);
    let (info, _) = service
        .submit(&gov, 0, &proposal("set_voting_policy", json!({"kind": "one_of_n"})))
        .unwrap();
    assert_eq!(info.state, ProposalState::Open);
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
    let (info, _) = service.submit(&gov, 2, &set_user(&user)).unwrap();
    assert_eq!(info.state, ProposalState::Accepted, "1-of-N: the proposer suffices");
}

#[test]
fn no_votes_that_make_acceptance_impossible_reject() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user)).unwrap();
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, false).unwrap();
    assert_eq!(info.state, ProposalState::Open, "1 yes, 1 no, 1 undecided");
    let (info, effects) = service.vote(&gov, 2, &info.proposal_id, false).unwrap();
    assert_eq!(info.state, ProposalState::Rejected);
    assert!(effects.is_empty());
    let final_votes = info.final_votes.unwrap();
    assert_eq!(final_votes.values().filter(|vote| !**vote).count(), 2);
    // A vote on a closed proposal is refused and changes nothing.
    let error = service.vote(&gov, 0, &info.proposal_id, true).unwrap_err();
    assert!(matches!(error, GovError::ProposalNotOpen { .. }), "{error:?}");
    assert_eq!(error.status(), 400);
    assert_eq!(get(&mut service.tx(), &info.proposal_id).unwrap().state, ProposalState::Rejected);
}

#[test]
fn a_member_votes_once() {
    let mut service = Service::new(5, true);
    let gov = governance();
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user)).unwrap();
    service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    let error = service.vote(&gov, 1, &info.proposal_id, true).unwrap_err();
    assert!(matches!(error, GovError::VoteAlreadyExists { .. }), "{error:?}");
    assert_eq!(get(&mut service.tx(), &info.proposal_id).unwrap().ballots.len(), 1);
    let error = service.vote(&gov, 1, "00", true).unwrap_err();
    assert!(matches!(error, GovError::ProposalNotFound { .. }), "{error:?}");
}

#[test]
fn only_the_proposer_withdraws_an_open_proposal() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user)).unwrap();
    let error = service.withdraw(&gov, 1, &info.proposal_id).unwrap_err();
    assert!(matches!(error, GovError::NotProposer { .. }), "{error:?}");
    assert_eq!(error.status(), 403);
    let withdrawn = service.withdraw(&gov, 0, &info.proposal_id).unwrap();
    assert_eq!(withdrawn.state, ProposalState::Withdrawn);
    let error = service.vote(&gov, 1, &info.proposal_id, true).unwrap_err();
    assert!(matches!(error, GovError::ProposalNotOpen { .. }), "{error:?}");
    let error = service.withdraw(&gov, 0, &info.proposal_id).unwrap_err();
    assert!(matches!(error, GovError::ProposalNotOpen { .. }), "{error:?}");
}

#[test]
fn invalid_actions_are_refused_with_the_constitutions_description() {
    let mut service = Service::new(3, true);
    let gov = governance();
    for (body, needle) in [
        (proposal("set_user", json!({"cert": "not a cert"})), "cert is not a PEM certificate"),
        (proposal("set_user", json!({})), "missing argument \"cert\""),
        (proposal("no_such_action", json!({})), "unknown action"),
        (proposal("remove_user", json!({"user_id": "xyz"})), "user_id must be 64"),
        (
            proposal("set_voting_policy", json!({"kind": "m_of_n", "m": 4})),
            "m must be between 1 and 3",
        ),
        (
            proposal("add_code_measurement", json!({"platform": "tdx", "measurement": "00"})),
            "platform must be one of",
        ),
        (
            proposal("set_user", json!({"cert": service.user.cert.to_pem(), "extra": 1})),
            "unknown argument",
        ),
        (json!({"actions": []}), "at least one action"),
        (json!({"nothing": 1}), "a proposal is"),
    ] {
        let error = service.submit(&gov, 0, &body).unwrap_err();
        let GovError::ProposalFailedToValidate { description } = &error else {
            panic!("{body}: {error:?}");
        };
        assert!(description.contains(needle), "{body}: {description}");
        assert_eq!((error.status(), error.code()), (400, "ProposalFailedToValidate"));
    }
    assert!(list(&mut service.tx()).unwrap().is_empty());
}

#[test]
fn a_ballot_that_throws_is_a_vote_failure() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user)).unwrap();
    let (info, _) = service
        .ballot(&gov, 1, &info.proposal_id, "export function vote() { throw new Error('nope'); }")
        .unwrap();
    assert_eq!(info.state, ProposalState::Open);
    let failures = info.vote_failures.clone().unwrap();
    assert!(failures[&service.members[1].id].reason.contains("nope"));
    let (info, _) = service
        .ballot(&gov, 2, &info.proposal_id, "export function vote() { while (true) {} }")
        .unwrap();
    assert_eq!(info.state, ProposalState::Open);
    assert_eq!(info.vote_failures.unwrap().len(), 2);
}

/// Replaces the constitution with `source` (accepted by a single-member service).
fn single_member_with_constitution(gov: &Governance, source: &str) -> Service {
    let mut service = Service::new(1, true);
    let (info, _) = service
        .submit(gov, 0, &proposal("set_constitution", json!({"constitution": source})))
        .unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
    service
}

#[test]
fn a_constitution_that_throws_loops_or_exhausts_memory_fails_the_proposal() {
    let gov = governance();
    let base = crate::DEFAULT_CONSTITUTION;
    let throwing_apply = base.replace(
        "export function apply(proposal, proposalId) {",
        concat!(
            "export function apply(proposal, proposalId) {\n",
            "  ccf.kv[\"public:ccf.gov.users.certs\"]",
            ".set(ccf.strToBuf(\"x\"), ccf.strToBuf(\"y\"));\n",
            "  ccf.node.triggerLedgerRekey();\n  throw new Error(\"apply exploded\");",
        ),
    );
    let looping_resolve = base.replace(
        "export function resolve(proposal, proposerId, votes, proposalId) {",
        "export function resolve(proposal, proposerId, votes, proposalId) {\n  while (true) {}",
    );
    let hungry_apply = base.replace(
        "export function apply(proposal, proposalId) {",
        concat!(
            "export function apply(proposal, proposalId) {\n",
            "  const hoard = []; while (true) { hoard.push(new Array(100000).fill(7)); }",
        ),
    );
    for (source, reason) in [
        (throwing_apply, "apply exploded"),
        (looping_resolve, "interrupt budget exhausted"),
        (hungry_apply, "out of memory"),
    ] {
        let mut service = single_member_with_constitution(&gov, &source);
        let before = service.store.current_seqno();
        let (info, effects) =
            service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
        assert_eq!(info.state, ProposalState::Failed);
        assert!(info.failure.as_ref().unwrap().reason.contains(reason), "{:?}", info.failure);
        assert!(effects.is_empty());
        assert!(service.read(tables::USERS_CERTS, b"x").is_none(), "apply's writes are undone");
        assert_eq!(service.store.current_seqno().0, before.0 + 1);
        assert_eq!(get(&mut service.tx(), &info.proposal_id).unwrap().state, ProposalState::Failed);
    }
}

#[test]
fn a_constitution_whose_validate_loops_refuses_with_400() {
    let gov = governance();
    let source = crate::DEFAULT_CONSTITUTION.replace(
        "export function validate(input) {",
        "export function validate(input) {\n  while (true) {}",
    );
    let mut service = single_member_with_constitution(&gov, &source);
    let error = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap_err();
    assert!(matches!(error, GovError::ProposalFailedToValidate { .. }), "{error:?}");
    assert_eq!(error.status(), 400);
}

#[test]
fn set_constitution_drops_other_open_proposals() {
    let mut service = Service::new(3, true);
    let gov = governance();
    let (pending, _) = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
    let source = format!("{}\n// amended", crate::DEFAULT_CONSTITUTION);
    let (change, _) = service
        .submit(&gov, 1, &proposal("set_constitution", json!({"constitution": source})))
        .unwrap();
    let (change, _) = service.vote(&gov, 2, &change.proposal_id, true).unwrap();
    assert_eq!(change.state, ProposalState::Accepted);
    assert_eq!(constitution(&mut service.tx()).unwrap(), source);
    assert_eq!(get(&mut service.tx(), &pending.proposal_id).unwrap().state, ProposalState::Dropped);
    let error = service.vote(&gov, 1, &pending.proposal_id, true).unwrap_err();
    assert!(matches!(error, GovError::ProposalNotOpen { .. }), "{error:?}");
}

#[test]
fn a_voting_policy_change_is_decided_under_the_old_policy() {
    // W42: 2-of-3 to 3-of-3 passes with two yes votes; the next proposal needs three.
    let mut service = Service::new(3, true);
    let gov = governance();
    let (info, _) = service
        .submit(&gov, 0, &proposal("set_voting_policy", json!({"kind": "m_of_n", "m": 2})))
        .unwrap();
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
    let (info, _) = service
        .submit(&gov, 0, &proposal("set_voting_policy", json!({"kind": "unanimous"})))
        .unwrap();
    assert_eq!(info.state, ProposalState::Open);
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted, "decided under 2-of-3");
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Open, "unanimity now needs the third");
    let (info, _) = service.vote(&gov, 2, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
}

#[test]
fn unanimous_rejects_on_a_single_no_and_m_of_n_counts_m() {
    let mut service = Service::new(4, true);
    let gov = governance();
    let (info, _) = service
        .submit(&gov, 0, &proposal("set_voting_policy", json!({"kind": "unanimous"})))
        .unwrap();
    service.vote(&gov, 1, &info.proposal_id, true).unwrap();
    let (info, _) = service.vote(&gov, 2, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted, "3 of 4 is a majority");
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
    let (info, _) = service.vote(&gov, 3, &info.proposal_id, false).unwrap();
    assert_eq!(info.state, ProposalState::Rejected, "one no defeats unanimity");

    let (info, _) = service
        .submit(&gov, 0, &proposal("set_voting_policy", json!({"kind": "m_of_n", "m": 3})))
        .unwrap();
    for member in 1..4 {
        service.vote(&gov, member, &info.proposal_id, true).unwrap();
    }
    let (info, _) = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
    let (info, _) = service.vote(&gov, 1, &info.proposal_id, false).unwrap();
    assert_eq!(info.state, ProposalState::Open, "1 yes, 1 no, 2 undecided: 3 still possible");
    let (info, _) = service.vote(&gov, 2, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Open);
    let (info, _) = service.vote(&gov, 3, &info.proposal_id, true).unwrap();
    assert_eq!(info.state, ProposalState::Accepted);
}

#[test]
fn node_effects_are_returned_and_members_changes_are_flagged() {
    let mut service = Service::new(1, true);
    let gov = governance();
    let (_, effects) =
        service.submit(&gov, 0, &proposal("trigger_ledger_rekey", json!({}))).unwrap();
    assert_eq!(effects, vec![GovEffect::TriggerLedgerRekey]);
    let (_, effects) =
        service.submit(&gov, 0, &proposal("transition_service_to_open", json!({}))).unwrap();
    assert!(matches!(effects[..], [GovEffect::TransitionServiceToOpen { .. }]), "{effects:?}");
    let newcomer = Identity::new("m1");
    let (_, effects) = service
        .submit(&gov, 0, &proposal("set_member", json!({"cert": newcomer.cert.to_pem()})))
        .unwrap();
    assert_eq!(effects, vec![GovEffect::MembersChanged]);
    let info = service.read(tables::MEMBERS_INFO, newcomer.id.as_bytes()).unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["status"], "Accepted");
    let measurement = "ab".repeat(32);
    service
        .submit(
            &gov,
            0,
            &proposal(
                "add_code_measurement",
                json!({"platform": "virtual", "measurement": measurement}),
            ),
        )
        .unwrap();
    assert!(service.read(tables::NODES_VIRTUAL_MEASUREMENTS, measurement.as_bytes()).is_some());
    let (info, effects) = service
        .submit(&gov, 0, &proposal("remove_member", json!({"member_id": service.members[0].id})))
        .unwrap();
    assert_eq!(info.state, ProposalState::Failed, "the last active member stays");
    assert!(effects.is_empty());
}

#[test]
fn too_many_open_proposals_are_refused() {
    let mut service = Service::new(3, true);
    let js = JsLimits::default();
    let gov =
        Governance::new(js, GovLimits { open_proposals_max: 2, ..GovLimits::default() }).unwrap();
    for _ in 0..2 {
        service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap();
    }
    let error = service.submit(&gov, 0, &set_user(&service.user.clone_identity())).unwrap_err();
    assert!(matches!(error, GovError::LimitExceeded { .. }), "{error:?}");
}
