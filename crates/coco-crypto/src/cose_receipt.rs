//! COSE receipts (draft-ietf-cose-merkle-tree-proofs with CCF's profile): the
//! signature transaction's COSE Sign1 plus, in the unprotected header,
//! `396 (vdp): {-1: [bstr(cbor({1: [wsd, commit_evidence, claims], 2: [[left, hash]…]}))]}`.
//!
//! This module deals in bytes and digests only; the Merkle tree that produces the path
//! lives in `coco-merkle`, above this crate.

use ciborium::Value;
use coco_types::Digest;
use coset::Label;

use crate::cose::{
    CcfSignatureHeaders, HEADER_VDP, encode, encode_sign1, find, malformed, map_get, parse_sign1,
    protected_bytes, verify_ccf_sign1,
};
use crate::ecdsa::VerifyingKey;
use crate::{Result, Sha256, sha256};

/// Label of the inclusion proofs inside `vdp`.
const VDP_INCLUSION_PROOFS: i64 = -1;
/// Label of the leaf components inside a CCF inclusion proof.
const PROOF_LEAF: i64 = 1;
/// Label of the path inside a CCF inclusion proof.
const PROOF_PATH: i64 = 2;
/// A path never has more steps than a tree over 2^64 leaves has levels.
pub const RECEIPT_PATH_STEPS_MAX: usize = 64;

/// The three parts CCF hashes into a Merkle leaf. Serialises as a JSON receipt's
/// `leaf_components` (digests as hex).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeafComponents {
    /// SHA-256 of the serialised ledger entry.
    pub write_set_digest: Digest,
    /// The commit evidence string (`ce:<view>.<seqno>:<hex>` in CCF).
    pub commit_evidence: String,
    /// The application's claims digest (zeros when there are none).
    pub claims_digest: Digest,
}

impl LeafComponents {
    /// `SHA256(write_set_digest ‖ SHA256(commit_evidence) ‖ claims_digest)`.
    #[must_use]
    pub fn leaf(&self) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(self.write_set_digest.as_bytes());
        hasher.update(sha256(self.commit_evidence.as_bytes()).as_bytes());
        hasher.update(self.claims_digest.as_bytes());
        hasher.finish()
    }
}

/// What a verified COSE receipt proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoseReceiptInfo {
    /// Headers of the signature transaction that signed the root.
    pub signature: CcfSignatureHeaders,
    /// The Merkle root the service key signed.
    pub root: Digest,
    /// The leaf's components, as carried in the proof.
    pub leaf_components: LeafComponents,
    /// The leaf hash computed from them.
    pub leaf: Digest,
}

/// Turns a signature transaction's COSE Sign1 into a receipt for one leaf: same
/// protected header, payload (detached) and signature, plus the inclusion proof.
/// `path` runs from the leaf up; `true` means the sibling is on the left.
///
/// # Errors
/// [`crate::Error::Malformed`] if `signature_cose` is not a tagged, detached COSE Sign1, or
/// the path is longer than [`RECEIPT_PATH_STEPS_MAX`].
pub fn build_cose_receipt(
    signature_cose: &[u8],
    write_set_digest: &Digest,
    commit_evidence: &str,
    claims_digest: &Digest,
    path: &[(bool, Digest)],
) -> Result<Vec<u8>> {
    let sign1 = parse_sign1(signature_cose)?;
    if sign1.payload.is_some() {
        return Err(malformed("signature payload must be detached"));
    }
    if path.len() > RECEIPT_PATH_STEPS_MAX {
        return Err(malformed("receipt path too long"));
    }
    let leaf = Value::Array(vec![
        Value::Bytes(write_set_digest.as_bytes().to_vec()),
        Value::from(commit_evidence),
        Value::Bytes(claims_digest.as_bytes().to_vec()),
    ]);
    let steps = path
        .iter()
        .map(|(left, hash)| {
            Value::Array(vec![Value::Bool(*left), Value::Bytes(hash.as_bytes().to_vec())])
        })
        .collect();
    let proof = encode(&Value::Map(vec![
        (Value::from(PROOF_LEAF), leaf),
        (Value::from(PROOF_PATH), Value::Array(steps)),
    ]));
    let vdp = Value::Map(vec![(
        Value::from(VDP_INCLUSION_PROOFS),
        Value::Array(vec![Value::Bytes(proof)]),
    )]);
    let unprotected = Value::Map(vec![(Value::from(HEADER_VDP), vdp)]);
    let protected = protected_bytes(&sign1).to_vec();
    Ok(encode_sign1(protected, unprotected, None, sign1.signature))
}

/// Verifies a COSE receipt as `ccf.receipt.verify_cose` does: tag 18, `kid` names
/// `service_key`, `vds` = 2, one inclusion proof, leaf and path recomputed to the root,
/// signature checked over that root as detached payload.
///
/// Claims are not compared here: the caller checks `leaf_components.claims_digest`.
///
/// # Errors
/// [`crate::Error::Malformed`] for a receipt of the wrong shape; [`crate::Error::KidMismatch`],
/// [`crate::Error::AlgorithmMismatch`] or [`crate::Error::BadSignature`] if it does not verify.
pub fn verify_cose_receipt(bytes: &[u8], service_key: &VerifyingKey) -> Result<CoseReceiptInfo> {
    let sign1 = parse_sign1(bytes)?;
    let vdp = find(&sign1.unprotected, &Label::Int(HEADER_VDP))
        .ok_or_else(|| malformed("no vdp (396) in the unprotected header"))?;
    let proofs = map_get(vdp, &Value::from(VDP_INCLUSION_PROOFS))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no inclusion proofs (-1) in vdp"))?;
    let [proof] = proofs.as_slice() else {
        return Err(malformed("expected exactly one inclusion proof"));
    };
    let proof = proof.as_bytes().ok_or_else(|| malformed("inclusion proof is not a bstr"))?;
    let (leaf_components, path) = decode_proof(proof)?;
    let leaf = leaf_components.leaf();
    let root = path.iter().fold(leaf, |accumulator, (left, sibling)| {
        let mut hasher = Sha256::new();
        if *left {
            hasher.update(sibling.as_bytes());
            hasher.update(accumulator.as_bytes());
        } else {
            hasher.update(accumulator.as_bytes());
            hasher.update(sibling.as_bytes());
        }
        hasher.finish()
    });
    let signature = verify_ccf_sign1(&sign1, service_key, &root)?;
    Ok(CoseReceiptInfo { signature, root, leaf_components, leaf })
}

fn decode_proof(bytes: &[u8]) -> Result<(LeafComponents, Vec<(bool, Digest)>)> {
    let mut rest = bytes;
    let proof: Value =
        ciborium::from_reader(&mut rest).map_err(|_| malformed("inclusion proof is not CBOR"))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after the inclusion proof"));
    }
    let leaf = map_get(&proof, &Value::from(PROOF_LEAF))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no leaf (1) in the inclusion proof"))?;
    let [write_set_digest, commit_evidence, claims_digest] = leaf.as_slice() else {
        return Err(malformed("leaf is not [wsd, commit_evidence, claims]"));
    };
    let leaf_components = LeafComponents {
        write_set_digest: as_digest(write_set_digest)?,
        commit_evidence: commit_evidence
            .as_text()
            .ok_or_else(|| malformed("commit evidence is not text"))?
            .to_owned(),
        claims_digest: as_digest(claims_digest)?,
    };
    let steps = map_get(&proof, &Value::from(PROOF_PATH))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no path (2) in the inclusion proof"))?;
    if steps.len() > RECEIPT_PATH_STEPS_MAX {
        return Err(malformed("receipt path too long"));
    }
    let path = steps
        .iter()
        .map(|step| match step.as_array().map(Vec::as_slice) {
            Some([Value::Bool(left), hash]) => Ok((*left, as_digest(hash)?)),
            _ => Err(malformed("path step is not [bool, bstr]")),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((leaf_components, path))
}

fn as_digest(value: &Value) -> Result<Digest> {
    let bytes = value.as_bytes().ok_or_else(|| malformed("digest is not a bstr"))?;
    Digest::from_slice(bytes).map_err(|_| malformed("digest is not 32 bytes"))
}

#[cfg(test)]
mod tests;
