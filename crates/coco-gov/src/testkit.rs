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
        // GENESIS_HOOK
        store.commit(tx).unwrap();
        Self { store, members, user }
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
