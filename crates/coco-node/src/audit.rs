//! Offline audit of a ledger directory: framing, the Merkle tree, and every signature
//! transaction (the node's ECDSA signature, its certificate's endorsement by the service,
//! and the service's COSE signature), the checks CCF's `read_ledger.py
//! --verification-level FULL` performs. It reads the public domain only, so an auditor
//! needs no secret, and it never modifies the directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_crypto::Certificate;
use coco_kv::WriteSet;
use coco_ledger::{ChunkState, LedgerFiles, decode_entry, write_set_digest};
use coco_merkle::MerkleTree;
use coco_types::{Digest, Seqno, TxId};

use crate::node::signature::{SignatureJson, map};
use crate::tables;

/// What a successful audit found.
#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    /// Chunk files read.
    pub chunks: u64,
    /// Transactions read.
    pub transactions: u64,
    /// Signature transactions verified.
    pub signatures: u64,
    /// The last verified signature transaction.
    pub last_signed: TxId,
    /// Transactions after the last signature (not yet covered, so not verifiable).
    pub unsigned_tail: u64,
    /// A torn tail at the end of the in-progress chunk (file, offset), left unread.
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// The first problem an audit found, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory or a chunk's framing is unreadable.
    #[error(transparent)]
    Ledger(#[from] coco_ledger::Error),
    /// A transaction failed a check.
    #[error("{file}: offset {offset}: seqno {seqno}: {reason}")]
    Entry {
        /// The chunk file.
        file: PathBuf,
        /// Byte offset of the entry in the file.
        offset: u64,
        /// The entry's seqno.
        seqno: Seqno,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds no transaction at all.
    #[error("{0}: no ledger chunks")]
    Empty(PathBuf),
}

/// What the auditor knows of the service so far, learnt from the public tables.
struct Auditor {
    tree: MerkleTree,
    service_cert: Option<Certificate>,
    node_certs: BTreeMap<String, Certificate>,
    node_status: BTreeMap<String, String>,
    report: AuditReport,
    last_seqno: Seqno,
}

/// Audits `dir`, calling `progress(bytes_done, bytes_total)` after each chunk.
///
/// # Errors
/// The first problem found, naming the file and the offset.
pub fn verify_ledger(
    dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, AuditError> {
    let files = LedgerFiles::open(dir)?;
    if files.chunks().is_empty() {
        return Err(AuditError::Empty(dir.to_owned()));
    }
    let total = files.total_bytes();
    let mut done = 0;
    let mut auditor = Auditor {
        tree: MerkleTree::new(),
        service_cert: None,
        node_certs: BTreeMap::new(),
        node_status: BTreeMap::new(),
        report: AuditReport::default(),
        last_seqno: Seqno(0),
    };
    auditor.tree.append(Digest::ZERO);
    for chunk in files.chunks() {
        let contents = LedgerFiles::read(chunk)?;
        let mut last_was_signature = false;
        for (seqno, offset, raw) in contents.entries() {
            let fail = |reason: String| AuditError::Entry {
                file: chunk.path.clone(),
                offset,
                seqno,
                reason,
            };
            last_was_signature = auditor.entry(seqno, raw).map_err(fail)?;
        }
        if chunk.state != ChunkState::InProgress && !last_was_signature {
            let reason = "a complete chunk must end on a signature transaction".to_owned();
            return Err(AuditError::Entry {
                file: chunk.path.clone(),
                offset: chunk.size,
                seqno: auditor.last_seqno,
                reason,
            });
        }
        if let Some(offset) = contents.torn_at {
            auditor.report.torn_tail = Some((chunk.path.clone(), offset));
        }
        auditor.report.chunks += 1;
        done += chunk.size;
        progress(done, total);
    }
    Ok(auditor.report)
}

impl Auditor {
    /// Checks one entry; returns whether it is a signature transaction.
    fn entry(&mut self, seqno: Seqno, raw: &[u8]) -> Result<bool, String> {
        if seqno != self.last_seqno.next() {
            if self.last_seqno == Seqno(0) {
                // A node's ledger after its first chunks were archived (it then starts from
                // a snapshot): the audit replays the Merkle tree from seqno 1.
                return Err(format!(
                    "the ledger starts at seqno {seqno}, not 1: an audit needs every chunk \
                     from seqno 1 (add the archived ones)"
                ));
            }
            return Err(format!("expected seqno {}", self.last_seqno.next()));
        }
        let entry = decode_entry(raw).map_err(|e| e.to_string())?;
        let txid = TxId { view: entry.view(), seqno };
        let write_set = WriteSet::decode_domain(entry.public_maps()).map_err(|e| e.to_string())?;
        self.learn(&write_set)?;
        let is_signature = self.check_signature(&write_set, txid)?;
        let digests =
            (write_set_digest(raw), entry.commit_evidence_digest(), entry.claims_digest());
        self.tree.append(coco_merkle::leaf_digest_of(&digests.0, &digests.1, &digests.2));
        self.last_seqno = seqno;
        self.report.transactions += 1;
        self.report.unsigned_tail = if is_signature { 0 } else { self.report.unsigned_tail + 1 };
        Ok(is_signature)
    }

    /// Learns the service certificate and node certificates and statuses.
    fn learn(&mut self, write_set: &WriteSet) -> Result<(), String> {
        if let Some(info) = singleton(write_set, tables::SERVICE_INFO) {
            let info: serde_json::Value =
                serde_json::from_slice(info).map_err(|e| format!("service info: {e}"))?;
            let pem = info["cert"].as_str().ok_or("service info has no cert")?;
            let cert = Certificate::from_pem(pem).map_err(|e| format!("service cert: {e}"))?;
            self.service_cert = Some(cert);
        }
        if let Some(writes) = write_set.get(&map(tables::NODES_ENDORSED_CERTIFICATES)) {
            for (id, pem) in writes.writes() {
                let pem = std::str::from_utf8(pem).map_err(|_| "node cert is not UTF-8")?;
                let cert = Certificate::from_pem(pem).map_err(|e| format!("node cert: {e}"))?;
                self.node_certs.insert(String::from_utf8_lossy(id).into_owned(), cert);
            }
        }
        if let Some(writes) = write_set.get(&map(tables::NODES_INFO)) {
            for (id, info) in writes.writes() {
                let info: serde_json::Value =
                    serde_json::from_slice(info).map_err(|e| format!("node info: {e}"))?;
                let status = info["status"].as_str().ok_or("node info has no status")?;
                self.node_status.insert(String::from_utf8_lossy(id).into_owned(), status.into());
            }
        }
        Ok(())
    }

    /// Verifies a signature transaction against the tree over every earlier entry.
    fn check_signature(&mut self, write_set: &WriteSet, txid: TxId) -> Result<bool, String> {
        let Some(signature) = singleton(write_set, tables::SIGNATURES) else {
            return Ok(false);
        };
        let json: SignatureJson =
            serde_json::from_slice(signature).map_err(|e| format!("signature JSON: {e}"))?;
        let root = self.tree.root().map_err(|e| e.to_string())?;
        if json.root != root.to_hex() {
            return Err(format!("signed root {} but the ledger's root is {root}", json.root));
        }
        if (json.view, json.seqno) != (txid.view.0, txid.seqno.0) {
            return Err(format!("signature claims {}.{}", json.view, json.seqno));
        }
        let service = self.service_cert.as_ref().ok_or("signature before any service info")?;
        let node = self.node_certs.get(&json.node).ok_or("signed by an unknown node")?;
        if self.node_status.get(&json.node).is_none_or(|status| status == "Pending") {
            return Err(format!("signed by node {} which is not trusted", json.node));
        }
        node.is_signed_by(service).map_err(|e| format!("node cert not endorsed: {e}"))?;
        let der = BASE64.decode(&json.sig).map_err(|_| "signature is not base64")?;
        let key = node.verifying_key().map_err(|e| e.to_string())?;
        key.verify_prehashed_sha256(&root, &der).map_err(|_| "node signature is invalid")?;
        let cose = singleton(write_set, tables::COSE_SIGNATURES).ok_or("no COSE signature")?;
        let cose: String = serde_json::from_slice(cose).map_err(|e| format!("COSE JSON: {e}"))?;
        let cose = BASE64.decode(cose).map_err(|_| "COSE signature is not base64")?;
        let service_key = service.verifying_key().map_err(|e| e.to_string())?;
        let headers = coco_crypto::verify_ccf_root(&cose, &service_key, &root)
            .map_err(|e| format!("COSE signature: {e}"))?;
        if headers.txid != txid {
            return Err(format!("COSE signature claims {}", headers.txid));
        }
        self.report.signatures += 1;
        self.report.last_signed = txid;
        Ok(true)
    }
}

fn singleton<'a>(write_set: &'a WriteSet, name: &str) -> Option<&'a [u8]> {
    let writes = write_set.get(&map(name))?;
    writes.writes().get(tables::SINGLETON_KEY).map(Vec::as_slice)
}
