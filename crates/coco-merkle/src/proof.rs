//! Inclusion proofs: the sibling path from a leaf to a root, in the JSON shape of CCF
//! receipts and the path shape of COSE receipts.

use coco_types::Digest;
use serde::{Deserialize, Serialize};

use crate::digests::interior_digest;

/// One step of a path from a leaf towards the root: the sibling's digest and its side.
///
/// Serialises exactly as a step of a CCF JSON receipt's `proof` list: `{"left": "<hex>"}` or
/// `{"right": "<hex>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ProofStep {
    /// The sibling is on the left: `acc = SHA256(sibling ‖ acc)`.
    Left(Digest),
    /// The sibling is on the right: `acc = SHA256(acc ‖ sibling)`.
    Right(Digest),
}

/// The path from one leaf to the root of a tree prefix, leaf end first. An empty proof means
/// the leaf is the root (a one-leaf tree, or a signature receipt in CCF).
///
/// Serialises as a bare JSON list of [`ProofStep`]s, the `proof` field of a CCF receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Proof(pub Vec<ProofStep>);

impl Proof {
    /// The root this proof leads to from `leaf`, by `ccf.receipt.root`'s rule. A receipt is
    /// valid when this equals the signed root.
    #[must_use]
    pub fn compute_root(&self, leaf: Digest) -> Digest {
        self.0.iter().fold(leaf, |acc, step| match step {
            ProofStep::Left(sibling) => interior_digest(sibling, &acc),
            ProofStep::Right(sibling) => interior_digest(&acc, sibling),
        })
    }

    /// The path as COSE receipts carry it (`2: [[bool, bstr], ...]` in the CCF inclusion
    /// proof): `true` when the sibling is on the left.
    #[must_use]
    pub fn to_cose_path(&self) -> Vec<(bool, Digest)> {
        self.0
            .iter()
            .map(|step| match step {
                ProofStep::Left(sibling) => (true, *sibling),
                ProofStep::Right(sibling) => (false, *sibling),
            })
            .collect()
    }

    /// The inverse of [`Self::to_cose_path`], for verifying a decoded COSE receipt.
    #[must_use]
    pub fn from_cose_path(path: &[(bool, Digest)]) -> Self {
        Self(
            path.iter()
                .map(
                    |&(left, sibling)| {
                        if left { ProofStep::Left(sibling) } else { ProofStep::Right(sibling) }
                    },
                )
                .collect(),
        )
    }

    /// Number of steps (the leaf's depth in the tree prefix).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the proof of a one-leaf tree, whose leaf is the root.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest([byte; 32])
    }

    #[test]
    fn json_matches_ccf_receipts() {
        let proof = Proof(vec![ProofStep::Left(digest(0xaa)), ProofStep::Right(digest(0x01))]);
        let json = serde_json::to_string(&proof).unwrap();
        let expected =
            format!(r#"[{{"left":"{}"}},{{"right":"{}"}}]"#, "aa".repeat(32), "01".repeat(32));
        assert_eq!(json, expected);
        let parsed: Proof = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, proof);
    }

    #[test]
    fn json_rejects_malformed_steps() {
        let short = r#"[{"left":"aa"}]"#;
        assert!(serde_json::from_str::<Proof>(short).is_err());
        let both = format!(r#"[{{"left":"{0}","right":"{0}"}}]"#, "aa".repeat(32));
        assert!(serde_json::from_str::<Proof>(&both).is_err());
        let unknown = format!(r#"[{{"up":"{}"}}]"#, "aa".repeat(32));
        assert!(serde_json::from_str::<Proof>(&unknown).is_err());
        assert!(serde_json::from_str::<Proof>("{}").is_err());
    }

    #[test]
    fn compute_root_follows_sides() {
        let leaf = digest(3);
        let proof = Proof(vec![ProofStep::Left(digest(1)), ProofStep::Right(digest(2))]);
        let expected = interior_digest(&interior_digest(&digest(1), &leaf), &digest(2));
        assert_eq!(proof.compute_root(leaf), expected);
        assert_eq!(Proof::default().compute_root(leaf), leaf);
        let swapped = Proof(vec![ProofStep::Right(digest(1)), ProofStep::Right(digest(2))]);
        assert_ne!(swapped.compute_root(leaf), expected);
    }

    #[test]
    fn cose_path_round_trips() {
        let proof = Proof(vec![ProofStep::Left(digest(1)), ProofStep::Right(digest(2))]);
        let path = proof.to_cose_path();
        assert_eq!(path, vec![(true, digest(1)), (false, digest(2))]);
        assert_eq!(Proof::from_cose_path(&path), proof);
    }
}
