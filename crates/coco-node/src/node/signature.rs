//! Signature transactions: the node's ECDSA signature and the service's COSE Sign1 over
//! the Merkle root, written to CCF's signature tables.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_kv::{CommitOutcome, MapName};
use coco_types::{Digest, TxId, View};

use super::Node;
use crate::error::Result;
use crate::published::SignatureClock;
use crate::tables;

/// A signature transaction as receipts need it.
#[derive(Clone, Debug)]
pub struct SignatureRecord {
    /// The node that signed (the primary of its view): its certificate goes in receipts.
    pub node: coco_types::NodeId,
    /// The view of the signature transaction.
    pub view: View,
    /// The root it signs (leaves 0..seqno−1).
    pub root: Digest,
    /// DER ECDSA signature by the node key over the root (prehashed).
    pub node_signature: Vec<u8>,
    /// The service's COSE Sign1 over the root (detached payload).
    pub cose_signature: Vec<u8>,
}

/// `public:ccf.internal.signatures`, as CCF writes it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SignatureJson {
    pub(crate) sig: String,
    pub(crate) node: String,
    pub(crate) hashed_nonce: String,
    pub(crate) seqno: u64,
    pub(crate) view: u64,
    pub(crate) commit_seqno: u64,
    pub(crate) commit_view: u64,
    pub(crate) root: String,
}

/// Issuer and subject of the COSE root signatures' CWT claims.
const COSE_ISSUER: &str = "coco";
const COSE_SUBJECT: &str = "ledger.signature";

impl Node {
    /// True when a signature transaction is due: `sig_tx_interval` transactions since the
    /// last one, or `sig_ms_interval` elapsed with at least one unsigned transaction.
    #[must_use]
    pub fn signature_due(&self, now_ms: u64) -> bool {
        self.signature_clock().due(now_ms)
    }

    pub(crate) fn signature_clock(&self) -> SignatureClock {
        SignatureClock {
            unsigned: self.txs_since_signature,
            last_ms: self.last_signature_ms,
            tx_interval: self.limits.sig_tx_interval,
            ms_interval: self.limits.sig_ms_interval,
        }
    }

    /// Queues a signature transaction for the next seqno consensus gives this node (the
    /// primary), and before it the evidence of a snapshot that has none yet (so the
    /// signature commits it). Returns the tickets to propose, in order; none if a
    /// signature is already queued.
    ///
    /// # Errors
    /// [`crate::Error::Backpressure`] as for any submission.
    pub fn queue_signature(&mut self, now_ms: u64) -> Result<Vec<u64>> {
        self.queue_signature_after(now_ms, None)
    }

    /// [`Node::queue_signature`], with `before` (an app's work, such as sealing a block)
    /// queued first, so the signature covers and commits what it writes.
    ///
    /// # Errors
    /// As [`Node::queue_signature`].
    pub fn queue_signature_after(
        &mut self,
        now_ms: u64,
        before: Option<super::Work>,
    ) -> Result<Vec<u64>> {
        if self.signature_queued.is_some() {
            return Ok(Vec::new());
        }
        let mut tickets = Vec::with_capacity(3);
        if let Some(work) = before {
            tickets.push(self.submit_unlimited(work));
        }
        if !self.evidence_queued
            && let Some(snapshot) = self.snapshot_without_evidence()
        {
            let work: super::Work = Box::new(move |node: &mut Self, _at| {
                node.evidence_queued = false;
                if let Err(e) = node.emit_snapshot_evidence(snapshot) {
                    tracing::error!(error = %e, "recording snapshot evidence failed");
                }
            });
            self.evidence_queued = true;
            tickets.push(self.submit_unlimited(work));
        }
        let work: super::Work = Box::new(move |node: &mut Self, _at| {
            node.signature_queued = None;
            if let Err(e) = node.emit_signature(now_ms) {
                tracing::error!(error = %e, "signing failed");
            }
        });
        let ticket = self.submit_unlimited(work);
        self.signature_queued = Some(ticket);
        tickets.push(ticket);
        Ok(tickets)
    }

    /// Transactions ordered since the last signature (none of them can commit yet).
    #[must_use]
    pub fn unsigned_txs(&self) -> u64 {
        self.txs_since_signature
    }

    /// Appends a signature transaction over the current Merkle root.
    ///
    /// # Errors
    /// Signing or ledger failures.
    ///
    /// # Panics
    /// If the Merkle tree and the store disagree on the next seqno (a bug).
    pub fn emit_signature(&mut self, now_ms: u64) -> Result<TxId> {
        let seqno = self.last_seqno().next();
        let txid = TxId { view: self.view, seqno };
        assert_eq!(self.tree.len(), seqno.0, "the root must cover exactly leaves 0..seqno-1");
        let root = self.tree.root()?;
        let node_signature = self.identity.node_key.sign_prehashed_sha256(&root);
        let cose_signature = coco_crypto::sign_ccf_root(
            &self.identity.service_key,
            &root,
            txid,
            now_ms / 1000,
            COSE_ISSUER,
            COSE_SUBJECT,
        );
        let json = SignatureJson {
            sig: BASE64.encode(&node_signature),
            node: self.identity.node_id.to_hex(),
            hashed_nonce: coco_crypto::sha256(&seqno.0.to_le_bytes()).to_hex(),
            seqno: seqno.0,
            view: txid.view.0,
            commit_seqno: 0,
            commit_view: 0,
            root: root.to_hex(),
        };
        let signature_json = serde_json::to_vec(&json).expect("signature JSON serialises");
        let cose_json =
            serde_json::to_vec(&BASE64.encode(&cose_signature)).expect("a string serialises");
        let mut tx = self.kv.begin();
        tx.put(&map(tables::SIGNATURES), tables::SINGLETON_KEY, signature_json);
        tx.put(&map(tables::COSE_SIGNATURES), tables::SINGLETON_KEY, cose_json);
        // The tree is written flushed to the previous signature, so each signature carries
        // O(sig_tx_interval) leaves rather than the whole ledger's.
        let flushed = self.signatures.keys().next_back().map_or(0, |seqno| seqno.0);
        let tree = self.tree.serialise_prefix_flushed(flushed, seqno.0)?;
        tx.put(&map(tables::TREE), tables::SINGLETON_KEY, tree);
        let CommitOutcome::Written { seqno: ordered, write_set } = self.kv.commit(tx)? else {
            unreachable!("a signature transaction always writes");
        };
        assert_eq!(ordered, seqno, "signature ordered at an unexpected seqno");
        let snapshot_due = self.is_snapshot_point(seqno);
        let txid = self.seal_or_undo(seqno, &write_set, true, false, Digest::ZERO)?;
        let node = self.identity.node_id;
        let record =
            SignatureRecord { node, view: txid.view, root, node_signature, cose_signature };
        self.signatures.insert(seqno, record);
        self.txs_since_signature = 0;
        self.last_signature_ms = now_ms;
        self.metrics.signatures += 1;
        self.snapshot_if_due(seqno, snapshot_due);
        Ok(txid)
    }
}

/// A map name for one of CCF's fixed table names.
pub(crate) fn map(name: &str) -> MapName {
    MapName::new(name).expect("CCF table names are valid map names")
}
