//! Ledger secrets for the other nodes: a rekey writes the new secret sealed to every other
//! Trusted node's key (`public:ccf.internal.encrypted_ledger_secrets`, one entry per node),
//! in the rekey's own transaction. A backup applying that entry opens its copy and makes
//! the secret current from the next seqno on, exactly where the primary does, so it can
//! decrypt what follows.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_crypto::{Aes256GcmKey, Certificate};
use coco_kv::{Tx, WriteSet};
use coco_types::Seqno;
use serde_json::{Value, json};

use crate::error::{Error, Result, crypto};
use crate::node::Node;
use crate::node::signature::map;
use crate::tables;

/// The new ledger secret sealed to each node, key = node id hex, JSON
/// `{"valid_from", "encrypted_secret"}`.
pub const ENCRYPTED_LEDGER_SECRETS: &str = "public:ccf.internal.encrypted_ledger_secrets";
/// Authenticated data binding a sealed secret to its purpose.
const AAD: &[u8] = b"coco ledger secret for a node";

impl Node {
    /// Seals `next` (current from `valid_from`) to every other Trusted node.
    pub(crate) fn share_secret_with_nodes(
        &self,
        tx: &mut Tx,
        next: &Aes256GcmKey,
        valid_from: Seqno,
    ) -> Result<()> {
        for (node_id, _) in self.trusted_nodes() {
            if node_id == self.identity.node_id {
                continue;
            }
            let id = node_id.to_hex();
            let Some(pem) = tx.get(&map(tables::NODES_ENDORSED_CERTIFICATES), id.as_bytes()) else {
                continue;
            };
            let pem = String::from_utf8_lossy(pem).into_owned();
            let cert = Certificate::from_pem(&pem).map_err(crypto("node certificate"))?;
            let key = cert.verifying_key().map_err(crypto("node key"))?;
            let sealed = coco_crypto::seal_to_key(&key, next.raw(), AAD)
                .map_err(crypto("sealing the ledger secret to a node"))?;
            let record =
                json!({"valid_from": valid_from.0, "encrypted_secret": BASE64.encode(sealed)});
            let bytes = serde_json::to_vec(&record).expect("JSON values serialise");
            tx.put(&map(ENCRYPTED_LEDGER_SECRETS), id.as_bytes(), bytes);
        }
        Ok(())
    }

    /// On a backup: if the entry just applied at `seqno` carries a secret for this node,
    /// makes it current from `seqno + 1`.
    pub(crate) fn adopt_shared_secret(&mut self, seqno: Seqno, write_set: &WriteSet) -> Result<()> {
        let Some(writes) = write_set.get(&map(ENCRYPTED_LEDGER_SECRETS)) else { return Ok(()) };
        let Some(record) = writes.writes().get(self.identity.node_id.to_hex().as_bytes()) else {
            return Ok(());
        };
        let corrupt = |reason: &str| Error::Corrupt {
            what: format!("ledger secret for this node at seqno {seqno}"),
            reason: reason.to_owned(),
        };
        let (valid_from, key) = self.open_sealed_secret(record, &corrupt)?;
        if valid_from != seqno.next() {
            return Err(corrupt("it does not start right after its own entry"));
        }
        self.rotate_ledger_secret(valid_from, key)
    }

    /// A node installing a snapshot: adopts the newest secret sealed to it in the
    /// snapshot's public state, if it does not hold it yet (it missed the rekey).
    pub(crate) fn adopt_secret_from_state(&mut self, state: &coco_kv::Snapshot) -> Result<()> {
        let id = self.identity.node_id.to_hex();
        let Some(record) = state.get(&map(ENCRYPTED_LEDGER_SECRETS), id.as_bytes()) else {
            return Ok(());
        };
        let corrupt = |reason: &str| Error::Corrupt {
            what: "the ledger secret sealed to this node in a snapshot".to_owned(),
            reason: reason.to_owned(),
        };
        let (valid_from, key) = self.open_sealed_secret(record, &corrupt)?;
        if self
            .identity
            .ledger_secrets
            .for_seqno(valid_from)
            .is_some_and(|s| s.valid_from >= valid_from)
        {
            return Ok(());
        }
        self.rotate_ledger_secret(valid_from, key)
    }

    fn open_sealed_secret(
        &self,
        record: &[u8],
        corrupt: &dyn Fn(&str) -> Error,
    ) -> Result<(Seqno, Aes256GcmKey)> {
        let record: Value = serde_json::from_slice(record).map_err(|_| corrupt("not JSON"))?;
        let valid_from = record["valid_from"].as_u64().ok_or_else(|| corrupt("no valid_from"))?;
        let sealed = record["encrypted_secret"].as_str().and_then(|b| BASE64.decode(b).ok());
        let sealed = sealed.ok_or_else(|| corrupt("not base64"))?;
        let raw = coco_crypto::open_with_key(&self.identity.node_key, &sealed, AAD)
            .map_err(crypto("opening the ledger secret sealed to this node"))?;
        let key = Aes256GcmKey::new(&raw).map_err(crypto("ledger secret"))?;
        Ok((Seqno(valid_from), key))
    }
}
