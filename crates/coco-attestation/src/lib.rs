//! Attestation: the evidence a node presents when it joins, and its verification.
//!
//! **Owns**: the evidence format per platform and the checks that bind it to the joining
//! node's key. **Does not decide** which measurements or platforms are allowed: governance
//! holds those (the code and TEE manifests) and the node looks them up.
//!
//! Platform `virtual` is for development and is explicitly insecure: its measurement is
//! the SHA-256 of the node binary and its report data the SHA-256 of the node's public key,
//! both computed by the node itself, so nothing but the key binding is proven. SEV-SNP and
//! SGX/TDX evidence are verified against the vendors' certificate chains (not built yet:
//! such evidence is refused as unsupported).

use coco_types::Digest;
use serde::{Deserialize, Serialize};

/// CCF's name for the virtual platform's quote format.
pub const VIRTUAL_FORMAT: &str = "Insecure_Virtual";

/// A node's attestation evidence, as `quote_info` in CCF's join request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The quote format (`Insecure_Virtual`, `AMD_SEV_SNP_v1`, `OE_SGX_v1`).
    pub format: String,
    /// The code measurement the platform reports (hex).
    pub measurement: String,
    /// The report data the node bound into the evidence (hex).
    pub report_data: String,
}

/// What verified evidence proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The platform, as governance's TEE manifest names it (`virtual`, `snp`, `sgx`).
    pub platform: &'static str,
    /// The measurement, as governance's code manifest keys it (lowercase hex).
    pub measurement: String,
}

/// Why evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The format is not one Coco verifies.
    #[error("quote format {0:?} is not supported")]
    UnsupportedFormat(String),
    /// A field is not what the format requires.
    #[error("malformed evidence: {0}")]
    Malformed(String),
    /// The evidence is not bound to the key presented.
    #[error("the evidence's report data does not match the node's public key")]
    KeyMismatch,
}

/// The virtual platform's evidence for a node running `binary_digest` with the public key
/// `public_key_der` (SubjectPublicKeyInfo DER).
#[must_use]
pub fn virtual_evidence(binary_digest: &Digest, public_key_der: &[u8]) -> Evidence {
    Evidence {
        format: VIRTUAL_FORMAT.to_owned(),
        measurement: binary_digest.to_hex(),
        report_data: coco_crypto::sha256(public_key_der).to_hex(),
    }
}

/// Verifies `evidence` for a node whose public key is `public_key_der`.
///
/// # Errors
/// [`AttestationError`] naming the failed check.
pub fn verify(evidence: &Evidence, public_key_der: &[u8]) -> Result<Verified, AttestationError> {
    if evidence.format != VIRTUAL_FORMAT {
        return Err(AttestationError::UnsupportedFormat(
            evidence.format.chars().take(64).collect(),
        ));
    }
    let measurement: Digest = evidence
        .measurement
        .parse()
        .map_err(|_| AttestationError::Malformed("measurement is not 64 hex characters".into()))?;
    let report_data: Digest = evidence
        .report_data
        .parse()
        .map_err(|_| AttestationError::Malformed("report_data is not 64 hex characters".into()))?;
    if report_data != coco_crypto::sha256(public_key_der) {
        return Err(AttestationError::KeyMismatch);
    }
    Ok(Verified { platform: "virtual", measurement: measurement.to_hex() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_evidence_verifies_for_its_key_only() {
        let digest = coco_crypto::sha256(b"the coco binary");
        let evidence = virtual_evidence(&digest, b"key one");
        let verified = verify(&evidence, b"key one").unwrap();
        assert_eq!(verified, Verified { platform: "virtual", measurement: digest.to_hex() });
        assert_eq!(verify(&evidence, b"key two"), Err(AttestationError::KeyMismatch));
        let snp = Evidence { format: "AMD_SEV_SNP_v1".into(), ..evidence.clone() };
        assert!(matches!(verify(&snp, b"key one"), Err(AttestationError::UnsupportedFormat(_))));
        let bad = Evidence { measurement: "zz".into(), ..evidence };
        assert!(matches!(verify(&bad, b"key one"), Err(AttestationError::Malformed(_))));
        let json = serde_json::to_string(&virtual_evidence(&digest, b"k")).unwrap();
        assert!(json.contains("Insecure_Virtual"), "{json}");
    }
}
