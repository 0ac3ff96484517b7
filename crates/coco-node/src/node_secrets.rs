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
        let record: Value = serde_json::from_slice(record).map_err(|_| corrupt("not JSON"))?;
        if record["valid_from"].as_u64() != Some(seqno.0 + 1) {
            return Err(corrupt("it does not start right after its own entry"));
        }
        let sealed = record["encrypted_secret"].as_str().and_then(|b| BASE64.decode(b).ok());
        let sealed = sealed.ok_or_else(|| corrupt("not base64"))?;
        let raw = coco_crypto::open_with_key(&self.identity.node_key, &sealed, AAD)
            .map_err(crypto("opening the ledger secret sealed to this node"))?;
        let key = Aes256GcmKey::new(&raw).map_err(crypto("ledger secret"))?;
        self.rotate_ledger_secret(seqno.next(), key)
    }
}
