//! The two hash rules of CCF's ledger tree: how a transaction becomes a leaf and how two
//! nodes become their parent.

use coco_crypto::sha256;
use coco_types::Digest;

/// The Merkle leaf of one transaction, as CCF computes it and as `ccf.receipt` users recompute
/// it from a receipt's `leaf_components`:
/// `SHA256(write_set_digest ‖ SHA256(utf8 commit_evidence) ‖ claims_digest)`.
///
/// `write_set_digest` is SHA-256 of the raw ledger entry (header included); `claims_digest` is
/// [`Digest::ZERO`] for transactions without application claims.
#[must_use]
pub fn leaf_digest(
    write_set_digest: &Digest,
    commit_evidence: &str,
    claims_digest: &Digest,
) -> Digest {
    let commit_evidence_digest = sha256(commit_evidence.as_bytes());
    leaf_digest_of(write_set_digest, &commit_evidence_digest, claims_digest)
}

/// [`leaf_digest`] from the commit evidence's digest, which every ledger entry carries in
/// its header: what an auditor, or a node recovering a ledger whose secrets it does not
/// hold yet, can compute.
#[must_use]
pub fn leaf_digest_of(
    write_set_digest: &Digest,
    commit_evidence_digest: &Digest,
    claims_digest: &Digest,
) -> Digest {
    let mut buffer = [0_u8; 96];
    buffer[..32].copy_from_slice(write_set_digest.as_bytes());
    buffer[32..64].copy_from_slice(commit_evidence_digest.as_bytes());
    buffer[64..].copy_from_slice(claims_digest.as_bytes());
    sha256(&buffer)
}

/// An interior node: `SHA256(left ‖ right)`. The same rule walks a proof, so receipt
/// verifiers and the tree cannot disagree about it.
#[must_use]
pub fn interior_digest(left: &Digest, right: &Digest) -> Digest {
    let mut buffer = [0_u8; 64];
    buffer[..32].copy_from_slice(left.as_bytes());
    buffer[32..].copy_from_slice(right.as_bytes());
    sha256(&buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_digest_concatenates_the_three_components() {
        let write_set_digest = sha256(b"entry");
        let claims_digest = Digest([7; 32]);
        let commit_evidence = "ce:2.5:00ff";
        let mut concatenated = Vec::new();
        concatenated.extend_from_slice(write_set_digest.as_bytes());
        concatenated.extend_from_slice(sha256(commit_evidence.as_bytes()).as_bytes());
        concatenated.extend_from_slice(claims_digest.as_bytes());
        assert_eq!(
            leaf_digest(&write_set_digest, commit_evidence, &claims_digest),
            sha256(&concatenated)
        );
        assert_ne!(
            leaf_digest(&write_set_digest, commit_evidence, &Digest::ZERO),
            leaf_digest(&write_set_digest, commit_evidence, &claims_digest)
        );
    }

    #[test]
    fn interior_digest_is_ordered() {
        let a = Digest([1; 32]);
        let b = Digest([2; 32]);
        let mut concatenated = [1_u8; 64];
        concatenated[32..].fill(2);
        assert_eq!(interior_digest(&a, &b), sha256(&concatenated));
        assert_ne!(interior_digest(&a, &b), interior_digest(&b, &a));
    }
}
