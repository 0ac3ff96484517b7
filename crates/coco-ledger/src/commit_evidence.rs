//! Commit evidence (CCF §1.7): a per-transaction secret whose reveal proves commitment.
//!
//! Only its SHA-256 goes into the ledger entry; the string itself is handed out in
//! receipts once the transaction is committed. Only nodes holding the ledger secret can
//! compute it, so an uncommitted (possibly rolled back) transaction never gets one.

use coco_crypto::{hmac_sha256, sha256};
use coco_types::{Digest, TxId};

/// The label CCF derives the commit secret with; never reused for anything else.
const COMMIT_SECRET_LABEL: &[u8] = b"Commit S";

/// The commit secret derived from one ledger secret, cached so that each transaction
/// costs one HMAC instead of two.
#[derive(Clone)]
pub struct CommitEvidenceKey {
    commit_secret: Digest,
}

impl std::fmt::Debug for CommitEvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitEvidenceKey(..)")
    }
}

impl CommitEvidenceKey {
    /// Derives `commit_secret = HMAC-SHA256(ledger_secret, "Commit S")`.
    #[must_use]
    pub fn new(ledger_secret_raw: &[u8; 32]) -> Self {
        Self { commit_secret: hmac_sha256(ledger_secret_raw, COMMIT_SECRET_LABEL) }
    }

    /// `"ce:<view>.<seqno>:<hex(HMAC-SHA256(commit_secret, "<view>.<seqno>"))>"`.
    #[must_use]
    pub fn evidence(&self, tx: TxId) -> String {
        let tx_text = tx.to_string();
        let nonce = hmac_sha256(self.commit_secret.as_bytes(), tx_text.as_bytes());
        format!("ce:{tx_text}:{}", nonce.to_hex())
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
