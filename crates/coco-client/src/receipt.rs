//! Offline receipt verification: given a receipt and the service certificate, prove that a
//! transaction is in the ledger the service signed. No network, no clock.
//!
//! JSON receipts (CCF shape) are checked as `ccf.receipt` users check them:
//!
//! ```text
//! leaf  = SHA256(write_set_digest ‖ SHA256(commit_evidence) ‖ claims_digest)   (or `leaf`)
//! root  = fold(proof, leaf):  {"left": h} → SHA256(h ‖ acc),  {"right": h} → SHA256(acc ‖ h)
//! node  : ECDSA(prehashed SHA-256) signature over root, with the node certificate's key
//! chain : node ← endorsement₁ ← … ← service certificate   (CCF's check_endorsements:
//!         signatures only; validity periods are not checked, so old receipts still verify)
//! ```
//!
//! COSE receipts delegate to [`coco_crypto::verify_cose_receipt`] with the service key.
//! [`verify_receipt_bytes`] tells the two forms apart: a JSON object starts with `{`, a
//! tagged COSE Sign1 with `0xd2`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coco_crypto::{Certificate, VerifyingKey};
use coco_merkle::{Proof, leaf_digest};
use coco_types::{Digest, TxId};
use serde::{Deserialize, Serialize};

use crate::ReceiptError;

/// Most proof steps a receipt may carry: a tree of 2^64 leaves is 64 levels deep.
pub const RECEIPT_PROOF_STEPS_MAX: u64 = 64;
/// Most service endorsements a receipt may carry (one per service identity change; real
/// services have a handful).
pub const RECEIPT_ENDORSEMENTS_MAX: u64 = 64;

/// The first byte of a tagged COSE Sign1 (CBOR tag 18).
const COSE_SIGN1_TAG_BYTE: u8 = 0xd2;

/// A JSON receipt, field for field as CCF's `GET /app/receipt` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonReceipt {
    /// PEM of the node certificate whose key signed the root.
    pub cert: String,
    /// The signing node's id (hex); informative, not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// True when the receipt is for a signature transaction (then `leaf` is the root).
    #[serde(default)]
    pub is_signature_transaction: bool,
    /// Certificates linking the node certificate to the current service certificate, in
    /// order (each signs the previous one), after a service identity change.
    #[serde(default)]
    pub service_endorsements: Vec<String>,
    /// The components of the leaf, for ordinary transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_components: Option<JsonLeafComponents>,
    /// The leaf itself, for signature transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<Digest>,
    /// The path from the leaf to the signed root.
    #[serde(default)]
    pub proof: Proof,
    /// Base64 DER ECDSA signature by the node key over the root (prehashed SHA-256).
    pub signature: String,
}

/// The `leaf_components` object of a JSON receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLeafComponents {
    /// SHA-256 of the ledger entry.
    pub write_set_digest: Digest,
    /// `ce:<view>.<seqno>:<hex>`.
    pub commit_evidence: String,
    /// The application's claims digest (zeros without claims).
    pub claims_digest: Digest,
}

/// Which form a verified receipt had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptForm {
    /// CCF's JSON receipt, signed by a node key endorsed by the service.
    Json,
    /// A COSE receipt, signed by the service key.
    Cose,
}

/// What a receipt proves once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The form the receipt had.
    pub form: ReceiptForm,
    /// The transaction, from the commit evidence; `None` for a JSON receipt of a signature
    /// transaction, which carries only its leaf.
    pub txid: Option<TxId>,
    /// The Merkle root the service (or its endorsed node) signed.
    pub root: Digest,
    /// The transaction's leaf.
    pub leaf: Digest,
    /// The claims digest the leaf commits to, when the receipt has leaf components.
    pub claims_digest: Option<Digest>,
    /// The signature transaction's id (COSE receipts name it in their header).
    pub signature_txid: Option<TxId>,
}

/// Verifies a receipt given as bytes, JSON or COSE, against the service certificate.
///
/// # Errors
/// [`ReceiptError::UnknownForm`] for anything else; otherwise as [`verify_json_receipt`]
/// or [`verify_cose_receipt_bytes`].
pub fn verify_receipt_bytes(
    bytes: &[u8],
    service_cert_pem: &str,
) -> Result<VerifiedReceipt, ReceiptError> {
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => {
            let receipt: JsonReceipt = serde_json::from_slice(bytes)
                .map_err(|error| ReceiptError::Malformed(error.to_string()))?;
            verify_json_receipt(&receipt, service_cert_pem)
        }
        Some(_) if bytes.first() == Some(&COSE_SIGN1_TAG_BYTE) => {
            verify_cose_receipt_bytes(bytes, service_cert_pem)
        }
        Some(_) | None => Err(ReceiptError::UnknownForm),
    }
}

/// Verifies a JSON receipt held as a `serde_json::Value`.
///
/// # Errors
/// [`ReceiptError::Malformed`] if it is not a receipt; otherwise as [`verify_json_receipt`].
pub fn verify_json_receipt_value(
    receipt: &serde_json::Value,
    service_cert_pem: &str,
) -> Result<VerifiedReceipt, ReceiptError> {
    let receipt = JsonReceipt::deserialize(receipt)
        .map_err(|error| ReceiptError::Malformed(error.to_string()))?;
    verify_json_receipt(&receipt, service_cert_pem)
}

/// Verifies a JSON receipt: leaf, root through the proof, node signature over the root,
/// and the endorsement chain from the node certificate to `service_cert_pem`.
///
/// # Errors
/// [`ReceiptError::ServiceCertificate`] / [`ReceiptError::NodeCertificate`] for unusable
/// certificates, [`ReceiptError::Malformed`], [`ReceiptError::TooMany`] or
/// [`ReceiptError::CommitEvidence`] for a receipt of the wrong shape,
/// [`ReceiptError::BadSignature`] if any signed field was changed, and
/// [`ReceiptError::Endorsement`] if the node is not endorsed by the service.
pub fn verify_json_receipt(
    receipt: &JsonReceipt,
    service_cert_pem: &str,
) -> Result<VerifiedReceipt, ReceiptError> {
    let service_cert =
        Certificate::from_pem(service_cert_pem).map_err(ReceiptError::ServiceCertificate)?;
    check_count("proof steps", receipt.proof.len(), RECEIPT_PROOF_STEPS_MAX)?;
    check_count(
        "service endorsements",
        receipt.service_endorsements.len(),
        RECEIPT_ENDORSEMENTS_MAX,
    )?;
    let (leaf, txid, claims_digest) = receipt_leaf(receipt)?;
    let root = receipt.proof.compute_root(leaf);
    let node_cert = Certificate::from_pem(&receipt.cert).map_err(ReceiptError::NodeCertificate)?;
    let node_key =
        VerifyingKey::from_certificate(&node_cert).map_err(ReceiptError::NodeCertificate)?;
    let signature = STANDARD
        .decode(receipt.signature.trim())
        .map_err(|_| ReceiptError::Malformed("signature is not base64".into()))?;
    node_key
        .verify_prehashed_sha256(&root, &signature)
        .map_err(|_| ReceiptError::BadSignature { root })?;
    check_endorsements(&node_cert, &service_cert, &receipt.service_endorsements)?;
    Ok(VerifiedReceipt {
        form: ReceiptForm::Json,
        txid,
        root,
        leaf,
        claims_digest,
        signature_txid: None,
    })
}

/// Verifies a COSE receipt with the service certificate's key.
///
/// # Errors
/// [`ReceiptError::ServiceCertificate`] for an unusable certificate, [`ReceiptError::Cose`]
/// if the receipt does not verify, [`ReceiptError::CommitEvidence`] if its commit evidence
/// does not name a transaction.
pub fn verify_cose_receipt_bytes(
    bytes: &[u8],
    service_cert_pem: &str,
) -> Result<VerifiedReceipt, ReceiptError> {
    let service_cert =
        Certificate::from_pem(service_cert_pem).map_err(ReceiptError::ServiceCertificate)?;
    let service_key =
        VerifyingKey::from_certificate(&service_cert).map_err(ReceiptError::ServiceCertificate)?;
    let info = coco_crypto::verify_cose_receipt(bytes, &service_key).map_err(ReceiptError::Cose)?;
    let txid = parse_commit_evidence(&info.leaf_components.commit_evidence)?;
    Ok(VerifiedReceipt {
        form: ReceiptForm::Cose,
        txid: Some(txid),
        root: info.root,
        leaf: info.leaf,
        claims_digest: Some(info.leaf_components.claims_digest),
        signature_txid: Some(info.signature.txid),
    })
}

/// The transaction named by commit evidence `ce:<view>.<seqno>:<hex>`.
///
/// # Errors
/// [`ReceiptError::CommitEvidence`] for any other shape.
pub fn parse_commit_evidence(commit_evidence: &str) -> Result<TxId, ReceiptError> {
    let refuse = || ReceiptError::CommitEvidence(commit_evidence.chars().take(128).collect());
    let rest = commit_evidence.strip_prefix("ce:").ok_or_else(refuse)?;
    let (txid, secret) = rest.split_once(':').ok_or_else(refuse)?;
    if secret.is_empty() || !secret.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(refuse());
    }
    txid.parse().map_err(|_| refuse())
}

/// The leaf (computed from components, or given for signature transactions), the txid and
/// the claims digest.
fn receipt_leaf(
    receipt: &JsonReceipt,
) -> Result<(Digest, Option<TxId>, Option<Digest>), ReceiptError> {
    match (&receipt.leaf_components, receipt.leaf) {
        (Some(components), given) => {
            let txid = parse_commit_evidence(&components.commit_evidence)?;
            let leaf = leaf_digest(
                &components.write_set_digest,
                &components.commit_evidence,
                &components.claims_digest,
            );
            if given.is_some_and(|given| given != leaf) {
                return Err(ReceiptError::Malformed("leaf does not match leaf_components".into()));
            }
            Ok((leaf, Some(txid), Some(components.claims_digest)))
        }
        (None, Some(leaf)) => Ok((leaf, None, None)),
        (None, None) => Err(ReceiptError::Malformed("neither leaf_components nor leaf".into())),
    }
}

/// CCF's `check_endorsements`: each certificate of node → endorsements… is signed by the
/// next, and the last by the service certificate.
fn check_endorsements(
    node_cert: &Certificate,
    service_cert: &Certificate,
    endorsements: &[String],
) -> Result<(), ReceiptError> {
    let mut current = node_cert.clone();
    for (index, pem) in endorsements.iter().enumerate() {
        let link =
            u32::try_from(index).expect("endorsements are bounded by RECEIPT_ENDORSEMENTS_MAX");
        let endorsement = Certificate::from_pem(pem)
            .map_err(|source| ReceiptError::Endorsement { link: link + 1, source })?;
        current
            .is_signed_by(&endorsement)
            .map_err(|source| ReceiptError::Endorsement { link, source })?;
        current = endorsement;
    }
    let link = u32::try_from(endorsements.len()).expect("endorsements are bounded");
    current.is_signed_by(service_cert).map_err(|source| ReceiptError::Endorsement { link, source })
}

fn check_count(what: &'static str, count: usize, limit: u64) -> Result<(), ReceiptError> {
    let count = u64::try_from(count).unwrap_or(u64::MAX);
    if count > limit {
        return Err(ReceiptError::TooMany { what, count, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
