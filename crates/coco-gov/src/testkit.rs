//! Test helpers shared by every module's tests: a genesis-like store with real member and
//! user identities, and COSE envelopes signed by them.

use coco_crypto::{Certificate, SigningKey, sign_gov_envelope};
use coco_kv::{Store, Tx};
use serde_json::json;

use crate::tables::{self, map};

/// A genesis-like clock: 2024-01-01.
pub(crate) const NOW: u64 = 1_704_067_200;

/// An identity: key, certificate and id (hex SHA-256 of the cert DER).
pub(crate) struct Identity {
    pub(crate) key: SigningKey,
    pub(crate) cert: Certificate,
    pub(crate) id: String,
}

impl Identity {
    pub(crate) fn new(name: &str) -> Self {
        let key = SigningKey::generate_p384().unwrap();
        let cert = Certificate::self_signed_identity(&key, name, NOW - 3600, 365).unwrap();
        let id = cert.sha256_der().to_hex();
        Self { key, cert, id }
    }

    /// A COSE Sign1 envelope signed by this identity.
    pub(crate) fn sign(
        &self,
        msg_type: &str,
        created_at: u64,
        proposal_id: Option<&str>,
        payload: &[u8],
    ) -> Vec<u8> {
        sign_gov_envelope(&self.key, &self.id, msg_type, created_at, proposal_id, payload)
    }
}

/// A service: a store after genesis, its members and one user.
pub(crate) struct Service {
    pub(crate) store: Store,
    pub(crate) members: Vec<Identity>,
    pub(crate) user: Identity,
    /// The `created_at` of the next [`Service::submit`].
    pub(crate) clock: u64,
}

impl Service {
    /// `n` members (Active when `active`, else Accepted as at CCF genesis) and one user.
    pub(crate) fn new(n: usize, active: bool) -> Self {
        let members: Vec<Identity> = (0..n).map(|i| Identity::new(&format!("member{i}"))).collect();
        let user = Identity::new("user0");
        let mut store = Store::new();
        let mut tx = store.begin();
        let status = if active { "Active" } else { "Accepted" };
        for member in &members {
            add_member(&mut tx, member, status);
        }
        tx.put(&map(tables::USERS_CERTS), user.id.as_bytes(), user.cert.to_pem().into_bytes());
        tx.put(
            &map(tables::USERS_INFO),
            user.id.as_bytes(),
            json_bytes(&json!({"user_data": null})),
        );
        tx.put(
            &map(tables::SERVICE_INFO),
            tables::SINGLETON_KEY,
            json_bytes(&json!({"status": "Opening", "recovery_count": 0})),
        );
        crate::install_genesis(&mut tx);
        store.commit(tx).unwrap();
        Self { store, members, user, clock: NOW }
    }

    pub(crate) fn tx(&self) -> Tx {
        self.store.begin()
    }

    pub(crate) fn commit(&mut self, tx: Tx) {
        self.store.commit(tx).unwrap();
    }
}

pub(crate) fn add_member(tx: &mut Tx, member: &Identity, status: &str) {
    tx.put(&map(tables::MEMBERS_CERTS), member.id.as_bytes(), member.cert.to_pem().into_bytes());
    tx.put(
        &map(tables::MEMBERS_INFO),
        member.id.as_bytes(),
        json_bytes(&json!({"status": status, "member_data": null})),
    );
}

pub(crate) fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// A signed request driven through `verify_request` and one governance call, committed on
/// success and discarded on error (as the node does).
impl Service {
    pub(crate) fn propose(
        &mut self,
        gov: &crate::Governance,
        member: usize,
        created_at: u64,
        proposal: &serde_json::Value,
    ) -> crate::Result<(crate::ProposalInfo, Vec<crate::GovEffect>)> {
        let body = self.members[member].sign("proposal", created_at, None, &json_bytes(proposal));
        self.propose_envelope(gov, &body)
    }

    /// Proposes with the next `created_at`.
    pub(crate) fn submit(
        &mut self,
        gov: &crate::Governance,
        member: usize,
        proposal: &serde_json::Value,
    ) -> crate::Result<(crate::ProposalInfo, Vec<crate::GovEffect>)> {
        self.clock += 1;
        self.propose(gov, member, self.clock, proposal)
    }

    pub(crate) fn propose_envelope(
        &mut self,
        gov: &crate::Governance,
        body: &[u8],
    ) -> crate::Result<(crate::ProposalInfo, Vec<crate::GovEffect>)> {
        let mut tx = self.tx();
        let expected = crate::Expected {
            msg_type: crate::MsgType::Proposal,
            proposal_id: None,
            member_id: None,
        };
        let request = crate::verify_request(&mut tx, body, expected)?;
        let root = coco_crypto::sha256(&tx.read_seqno().0.to_be_bytes());
        let result = gov.propose(&mut tx, &request, root)?;
        self.commit(tx);
        Ok(result)
    }

    pub(crate) fn ballot(
        &mut self,
        gov: &crate::Governance,
        member: usize,
        proposal_id: &str,
        script: &str,
    ) -> crate::Result<(crate::ProposalInfo, Vec<crate::GovEffect>)> {
        let voter = &self.members[member];
        let payload = json_bytes(&json!({ "ballot": script }));
        let body = voter.sign("ballot", NOW, Some(proposal_id), &payload);
        let member_id = voter.id.clone();
        let mut tx = self.tx();
        let expected = crate::Expected {
            msg_type: crate::MsgType::Ballot,
            proposal_id: Some(proposal_id),
            member_id: Some(&member_id),
        };
        let request = crate::verify_request(&mut tx, &body, expected)?;
        let result = gov.ballot(&mut tx, &request, proposal_id, &member_id)?;
        self.commit(tx);
        Ok(result)
    }

    /// A `yes` or `no` ballot.
    pub(crate) fn vote(
        &mut self,
        gov: &crate::Governance,
        member: usize,
        proposal_id: &str,
        yes: bool,
    ) -> crate::Result<(crate::ProposalInfo, Vec<crate::GovEffect>)> {
        let script = format!("export function vote(proposal, proposerId) {{ return {yes}; }}");
        self.ballot(gov, member, proposal_id, &script)
    }

    pub(crate) fn withdraw(
        &mut self,
        gov: &crate::Governance,
        member: usize,
        proposal_id: &str,
    ) -> crate::Result<crate::ProposalInfo> {
        let body = self.members[member].sign("withdrawal", NOW, Some(proposal_id), b"");
        let mut tx = self.tx();
        let expected = crate::Expected {
            msg_type: crate::MsgType::Withdrawal,
            proposal_id: Some(proposal_id),
            member_id: None,
        };
        let request = crate::verify_request(&mut tx, &body, expected)?;
        let result = gov.withdraw(&mut tx, &request, proposal_id)?;
        self.commit(tx);
        Ok(result)
    }

    /// The value of `table[key]`, read in a fresh transaction.
    pub(crate) fn read(&self, table: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.tx().get(&map(table), key).map(<[u8]>::to_vec)
    }
}

/// A governance runtime with small limits, so loops and allocations stop quickly.
pub(crate) fn governance() -> crate::Governance {
    let js = coco_js::JsLimits {
        heap_bytes_max: 16 << 20,
        stack_bytes_max: 256 << 10,
        interrupt_budget: 200,
    };
    crate::Governance::new(js, crate::GovLimits::default()).unwrap()
}

/// `{"actions": [{"name": name, "args": args}]}`.
pub(crate) fn proposal(name: &str, args: serde_json::Value) -> serde_json::Value {
    json!({"actions": [{"name": name, "args": args}]})
}

impl Identity {
    /// The same identity (keys are cheap to clone).
    pub(crate) fn clone_identity(&self) -> Self {
        Self { key: self.key.clone(), cert: self.cert.clone(), id: self.id.clone() }
    }
}
