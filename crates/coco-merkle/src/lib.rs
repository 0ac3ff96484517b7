//! Coco's ledger Merkle tree, in exactly the shape CCF (merklecpp) builds, so that CCF's own
//! tools (`ccf.merkletree`, `ccf.receipt`, `read_ledger.py`) accept Coco's roots, serialised
//! trees and receipts.
//!
//! Owns: [`MerkleTree`] (append, prefix roots, proofs, rollback, flush, merklecpp
//! serialisation), [`Proof`] (CCF JSON and COSE receipt paths) and the two hash rules
//! ([`leaf_digest`], [`interior_digest`]). Depends only on `coco-types` and `coco-crypto`;
//! no IO, no clock.
//!
//! # The tree shape
//!
//! - Leaf index = seqno. The node appends leaf 0 = [`Digest::ZERO`](coco_types::Digest::ZERO)
//!   at genesis, so the tree of a ledger with last seqno `N` has `N + 1` leaves.
//! - A leaf is `SHA256(write_set_digest ‖ SHA256(commit_evidence) ‖ claims_digest)`.
//! - An interior node is `SHA256(left ‖ right)`. Levels are built bottom-up in pairs; when a
//!   level has an odd count its last node is **promoted** unchanged (not duplicated). This is
//!   the RFC 6962 shape: the root's left child is the complete subtree of the largest power of
//!   two below the leaf count.
//! - The signature transaction at seqno `N` signs the root of leaves `0..N` (`N` leaves:
//!   everything before the signature itself), i.e. [`MerkleTree::root_at`]`(N)`.
//!
//! Five leaves (`P` = promoted unchanged):
//!
//! ```text
//!                 root = H(A, 4)
//!               /               \
//!         A = H(B, C)            4 (P)
//!         /        \             |
//!   B = H(0,1)  C = H(2,3)       4 (P)
//!    /   \       /   \           |
//!   0     1     2     3          4
//! ```
//!
//! A proof of leaf 2 against that root is `[right 3, left B, right 4]`; in CCF's JSON receipt
//! form `[{"right": h3}, {"left": hB}, {"right": h4}]`.
//!
//! ```
//! use coco_merkle::{MerkleTree, leaf_digest};
//! use coco_types::Digest;
//!
//! let mut tree = MerkleTree::new();
//! tree.append(Digest::ZERO); // genesis leaf 0
//! for seqno in 1..5_u8 {
//!     tree.append(leaf_digest(&Digest([seqno; 32]), "ce:2.1:00", &Digest::ZERO));
//! }
//! let root = tree.root_at(5)?;
//! let proof = tree.proof(2, 5)?;
//! assert_eq!(proof.len(), 3);
//! assert_eq!(proof.compute_root(tree.leaf(2).expect("appended")), root);
//! # Ok::<(), coco_merkle::Error>(())
//! ```
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(clippy::iter_over_hash_type, clippy::float_arithmetic)]

mod digests;
mod error;
mod proof;
mod tree;

pub use digests::{interior_digest, leaf_digest, leaf_digest_of};
pub use error::{Error, Result};
pub use proof::{Proof, ProofStep};
pub use tree::{LEAVES_MAX, MerkleTree};
