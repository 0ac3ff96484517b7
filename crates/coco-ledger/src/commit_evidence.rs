//! Commit evidence (CCF §1.7): a per-transaction secret whose reveal proves commitment.
//!
//! Only its SHA-256 goes into the ledger entry; the string itself is handed out in
//! receipts once the transaction is committed. Only nodes holding the ledger secret can
//! compute it, so an uncommitted (possibly rolled back) transaction never gets one.

use coco_crypto::{HmacSha256Key, hmac_sha256, sha256};
use coco_types::{Digest, TxId};

/// The label CCF derives the commit secret with; never reused for anything else.
const COMMIT_SECRET_LABEL: &[u8] = b"Commit S";

/// The commit secret derived from one ledger secret, cached so that each transaction
/// costs one HMAC instead of two.
#[derive(Clone)]
pub struct CommitEvidenceKey {
    /// HMAC key `commit_secret`, set up once.
    nonce_key: HmacSha256Key,
}

/// Longest evidence string: `ce:` + two u64s + `.` + `:` + 64 hex digits.
const EVIDENCE_BYTES_MAX: usize = 3 + 20 + 1 + 20 + 1 + 64;

impl std::fmt::Debug for CommitEvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitEvidenceKey(..)")
    }
}

impl CommitEvidenceKey {
    /// Derives `commit_secret = HMAC-SHA256(ledger_secret, "Commit S")`.
    #[must_use]
    pub fn new(ledger_secret_raw: &[u8; 32]) -> Self {
        let commit_secret = hmac_sha256(ledger_secret_raw, COMMIT_SECRET_LABEL);
        Self { nonce_key: HmacSha256Key::new(commit_secret.as_bytes()) }
    }

    /// `"ce:<view>.<seqno>:<hex(HMAC-SHA256(commit_secret, "<view>.<seqno>"))>"`.
    ///
    /// # Panics
    /// Never: formatting into a `String` and hex-encoding 32 bytes into 64 cannot fail.
    #[must_use]
    pub fn evidence(&self, tx: TxId) -> String {
        use std::fmt::Write as _;
        let mut evidence = String::with_capacity(EVIDENCE_BYTES_MAX);
        evidence.push_str("ce:");
        write!(evidence, "{tx}").expect("writing to a String cannot fail");
        let nonce = self.nonce_key.sign(&evidence.as_bytes()[3..]);
        let mut hex = [0u8; 64];
        hex::encode_to_slice(nonce.as_bytes(), &mut hex).expect("64 hex digits for 32 bytes");
        evidence.push(':');
        evidence.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        evidence
    }

    /// SHA-256 of [`Self::evidence`], the value stored in the entry's public domain.
    #[must_use]
    pub fn evidence_digest(&self, tx: TxId) -> Digest {
        sha256(self.evidence(tx).as_bytes())
    }
}

/// One-shot form of [`CommitEvidenceKey::evidence`]; prefer caching the key.
#[must_use]
pub fn commit_evidence(ledger_secret_raw: &[u8; 32], tx: TxId) -> String {
    CommitEvidenceKey::new(ledger_secret_raw).evidence(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_follows_the_ccf_derivation() {
        let secret = [0x11u8; 32];
        let tx = TxId::new(2, 17);
        let commit_secret = hmac_sha256(&secret, b"Commit S");
        let nonce = hmac_sha256(commit_secret.as_bytes(), b"2.17");
        let expected = format!("ce:2.17:{}", nonce.to_hex());
        assert_eq!(commit_evidence(&secret, tx), expected);
        let key = CommitEvidenceKey::new(&secret);
        assert_eq!(key.evidence(tx), expected);
        assert_eq!(key.evidence_digest(tx), sha256(expected.as_bytes()));
        assert_eq!(expected.len(), "ce:2.17:".len() + 64);
        assert_ne!(key.evidence(TxId::new(2, 18)), expected);
        assert_ne!(commit_evidence(&[0x12; 32], tx), expected);
        assert_eq!(format!("{key:?}"), "CommitEvidenceKey(..)");
    }
}
