//! Receipts: offline-verifiable proof that a transaction is committed, in CCF's JSON and
//! COSE forms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_ledger::{decode_entry, write_set_digest};
use coco_merkle::Proof;
use coco_types::{Digest, Seqno, TxId, TxStatus};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::node::Node;

/// A JSON receipt, field for field as CCF's `/app/receipt` returns it.
#[derive(Clone, Debug, Serialize)]
pub struct JsonReceipt {
    /// The node certificate (PEM), endorsed by the service.
    pub cert: String,
    /// The signing node.
    pub node_id: String,
    /// True for the receipt of a signature transaction itself.
    pub is_signature_transaction: bool,
    /// Certificates between the node certificate and the current service certificate
    /// (empty while the service has one identity).
    pub service_endorsements: Vec<String>,
    /// What the leaf is made of (absent for signature transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_components: Option<LeafComponents>,
    /// For signature transactions: the signed root itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<Digest>,
    /// The path from the leaf to the signed root.
    pub proof: Proof,
    /// Base64 DER ECDSA signature by the node over the root.
    pub signature: String,
}

/// The three parts of a Merkle leaf.
#[derive(Clone, Debug, Serialize)]
pub struct LeafComponents {
    /// SHA-256 of the raw ledger entry.
    pub write_set_digest: Digest,
    /// `ce:<view>.<seqno>:<hex>`, revealed only for committed transactions.
    pub commit_evidence: String,
    /// Application claims digest (zeros when none).
    pub claims_digest: Digest,
}

struct Located {
    signature_seqno: Seqno,
    write_set_digest: Digest,
    commit_evidence: String,
    claims_digest: Digest,
}

impl Node {
    /// The JSON receipt of a committed transaction.
    ///
    /// # Errors
    /// [`Error::NoReceipt`] unless the transaction is committed; ledger read failures.
    pub fn receipt(&self, tx: TxId) -> Result<JsonReceipt> {
        let located = self.locate(tx)?;
        let record = &self.signatures[&located.signature_seqno];
        let base = JsonReceipt {
            cert: self.signer_cert_pem(record.node)?,
            node_id: record.node.to_hex(),
            is_signature_transaction: false,
            service_endorsements: Vec::new(),
            leaf_components: None,
            leaf: None,
            proof: Proof::default(),
            signature: BASE64.encode(&record.node_signature),
        };
        if located.signature_seqno == tx.seqno {
            return Ok(JsonReceipt {
                is_signature_transaction: true,
                leaf: Some(record.root),
                ..base
            });
        }
        let proof = self.tree.proof(tx.seqno.0, located.signature_seqno.0)?;
        let components = LeafComponents {
            write_set_digest: located.write_set_digest,
            commit_evidence: located.commit_evidence,
            claims_digest: located.claims_digest,
        };
        Ok(JsonReceipt { leaf_components: Some(components), proof, ..base })
    }

    /// The endorsed certificate of the node that signed a root (this node, or the primary
    /// of an earlier view).
    fn signer_cert_pem(&self, node: coco_types::NodeId) -> Result<String> {
        if node == self.identity.node_id {
            return Ok(self.node_cert_pem.clone());
        }
        let map = crate::node::signature::map(crate::tables::NODES_ENDORSED_CERTIFICATES);
        let pem = self.kv.snapshot().get(&map, node.to_hex().as_bytes()).map(<[u8]>::to_vec);
        let pem = pem.ok_or_else(|| Error::Corrupt {
            what: format!("signature by node {node}"),
            reason: "its endorsed certificate is not in the store".to_owned(),
        })?;
        String::from_utf8(pem).map_err(|_| Error::Corrupt {
            what: format!("endorsed certificate of node {node}"),
            reason: "not UTF-8".to_owned(),
        })
    }

    /// The COSE receipt of a committed transaction: the covering signature's COSE Sign1
    /// with the Merkle proof in its unprotected header.
    ///
    /// # Errors
    /// As [`Node::receipt`]; a signature transaction has no COSE receipt of its own.
    pub fn cose_receipt(&self, tx: TxId) -> Result<Vec<u8>> {
        let located = self.locate(tx)?;
        if located.signature_seqno == tx.seqno {
            return Err(Error::NoReceipt { tx, reason: "signature transactions have none" });
        }
        let record = &self.signatures[&located.signature_seqno];
        let proof = self.tree.proof(tx.seqno.0, located.signature_seqno.0)?;
        coco_crypto::build_cose_receipt(
            &record.cose_signature,
            &located.write_set_digest,
            &located.commit_evidence,
            &located.claims_digest,
            &proof.to_cose_path(),
        )
        .map_err(|source| Error::Crypto { what: "COSE receipt".to_owned(), source })
    }

    fn locate(&self, tx: TxId) -> Result<Located> {
        match self.tx_status(tx) {
            TxStatus::Committed => {}
            TxStatus::Pending => return Err(Error::NoReceipt { tx, reason: "pending" }),
            TxStatus::Unknown => return Err(Error::NoReceipt { tx, reason: "unknown" }),
            TxStatus::Invalid => return Err(Error::NoReceipt { tx, reason: "invalid" }),
        }
        if self.starts_after.is_some_and(|start| tx.seqno < start.seqno) {
            let reason = "this node started from a later snapshot: ask a node with the ledger";
            return Err(Error::NoReceipt { tx, reason });
        }
        let (&signature_seqno, _) = self
            .signatures
            .range(tx.seqno..)
            .next()
            .expect("a committed transaction is covered by a signature");
        let secret = self
            .identity
            .ledger_secrets
            .for_seqno(tx.seqno)
            .ok_or(Error::NoReceipt { tx, reason: "its ledger secret is not recovered yet" })?;
        let raw = self.ledger.read_entry(tx.seqno)?;
        let entry = decode_entry(&raw)?;
        Ok(Located {
            signature_seqno,
            write_set_digest: write_set_digest(&raw),
            commit_evidence: secret.evidence.evidence(tx),
            claims_digest: entry.claims_digest(),
        })
    }
}
