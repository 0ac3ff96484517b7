//! Tests of the tree against a naive reference, its proofs, rollback, flush and codec.
#![allow(clippy::cast_possible_truncation, reason = "test trees have a few hundred leaves")]

use coco_crypto::sha256;
use coco_types::Digest;
use proptest::prelude::*;

use super::*;

/// Leaf 0 is zeros as in CCF; leaf `i` is SHA-256 of `i` (u64 LE).
fn leaves(count: u64) -> Vec<Digest> {
    (0..count).map(|i| if i == 0 { Digest::ZERO } else { sha256(&i.to_le_bytes()) }).collect()
}

fn tree_of(leaves: &[Digest]) -> MerkleTree {
    let mut tree = MerkleTree::new();
    for leaf in leaves {
        tree.append(*leaf);
    }
    tree.check_invariants_full();
    tree
}

/// The CCF description taken literally, as `ccf.merkletree` does: build levels bottom-up,
/// pairing neighbours and promoting an odd last node unchanged.
fn naive_root(leaves: &[Digest]) -> Digest {
    assert!(!leaves.is_empty());
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => interior_digest(left, right),
                [single] => *single,
                _ => unreachable!(),
            })
            .collect();
    }
    level[0]
}

/// Every prefix root against the reference, every proof of every leaf of every prefix.
fn check_all_proofs(tree: &MerkleTree, leaves: &[Digest], first_index: u64) {
    for size in first_index.max(1)..=tree.len() {
        let root = tree.root_at(size).unwrap();
        assert_eq!(root, naive_root(&leaves[..size as usize]), "root_at({size})");
        for index in first_index..size {
            let proof = tree.proof(index, size).unwrap();
            assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize);
            assert_eq!(proof.compute_root(leaves[index as usize]), root, "proof({index}, {size})");
        }
    }
}

fn h(left: Digest, right: Digest) -> Digest {
    interior_digest(&left, &right)
}

#[test]
fn shape_promotes_odd_nodes() {
    let l = leaves(5);
    assert_eq!(tree_of(&l[..1]).root().unwrap(), l[0]);
    assert_eq!(tree_of(&l[..2]).root().unwrap(), h(l[0], l[1]));
    assert_eq!(tree_of(&l[..3]).root().unwrap(), h(h(l[0], l[1]), l[2]));
    let four = h(h(l[0], l[1]), h(l[2], l[3]));
    assert_eq!(tree_of(&l[..4]).root().unwrap(), four);
    let tree = tree_of(&l);
    assert_eq!(tree.root().unwrap(), h(four, l[4]));
    for size in 1..=5 {
        assert_eq!(tree.root_at(size).unwrap(), tree_of(&l[..size as usize]).root().unwrap());
    }
    let proof = tree.proof(2, 5).unwrap();
    let expected =
        vec![ProofStep::Right(l[3]), ProofStep::Left(h(l[0], l[1])), ProofStep::Right(l[4])];
    assert_eq!(proof.0, expected);
    assert_eq!(tree.proof(4, 5).unwrap().0, vec![ProofStep::Left(four)]);
    assert_eq!(tree.proof(0, 1).unwrap().0, vec![]);
    assert_eq!(tree.proof(2, 3).unwrap().0, vec![ProofStep::Left(h(l[0], l[1]))]);
}

/// Roots computed by CCF's own `ccf.merkletree` (ccf 7.0.22) over the same leaves, so the
/// default test run checks compatibility without Python.
#[test]
fn roots_match_ccf_python_known_answers() {
    let known = [
        (1, "0000000000000000000000000000000000000000000000000000000000000000"),
        (2, "133cc608eb983a235811cb36ad8122adde8b22221b50b114cc18218ca45881e4"),
        (3, "1fbc21e90f41cb258a205b0e065ca689ce32ededfe5dc2944473d0464d37d77e"),
        (5, "06859fee76bf61f7488cdc0096cedea139a5eaa53e87fbf0d30d489d89a13904"),
        (8, "db9a58288a5cfca447f28e05bd7b39d643cfc5ab700ff4a0e7872152e3e33767"),
        (100, "776b8fb2ca3421f6106901642049e0164610ee310ebb7f05c06af9aa291f9a5b"),
        (1000, "a96b479ad1afa97745163749b2c266e0985b832a3e425dfd215dc7193dda6f31"),
    ];
    let tree = tree_of(&leaves(1000));
    for (size, root) in known {
        assert_eq!(tree.root_at(size).unwrap().to_hex(), root, "root_at({size})");
    }
}

#[test]
fn every_proof_of_small_trees_verifies() {
    let l = leaves(70);
    let tree = tree_of(&l);
    check_all_proofs(&tree, &l, 0);
    for (index, leaf) in l.iter().enumerate() {
        assert_eq!(tree.leaf(index as u64), Some(*leaf));
    }
    assert_eq!(tree.leaf(70), None);
}

#[test]
fn bad_arguments_are_errors() {
    let empty = MerkleTree::new();
    assert!(empty.is_empty());
    assert_eq!(empty.root(), Err(Error::Empty));
    assert_eq!(empty.leaf(0), None);
    let tree = tree_of(&leaves(10));
    assert_eq!(tree.root_at(0), Err(Error::Empty));
    assert_eq!(tree.root_at(11), Err(Error::SizeBeyondEnd { size: 11, len: 10 }));
    assert_eq!(tree.proof(5, 5), Err(Error::IndexNotBelowSize { index: 5, size: 5 }));
    assert_eq!(tree.proof(0, 11), Err(Error::SizeBeyondEnd { size: 11, len: 10 }));
    assert_eq!(tree.proof(0, 0), Err(Error::Empty));
    let mut changed = tree.clone();
    assert_eq!(changed.truncate(11), Err(Error::SizeBeyondEnd { size: 11, len: 10 }));
    assert_eq!(changed.flush_to(10), Err(Error::FlushBeyondLast { flushed: 10, len: 10 }));
    assert_eq!(changed, tree, "failed operations change nothing");
}

#[test]
fn truncate_then_append_equals_a_fresh_tree() {
    let l = leaves(40);
    let other = leaves(80);
    for size in 0..=40 {
        let mut tree = tree_of(&l);
        tree.truncate(size).unwrap();
        tree.check_invariants_full();
        assert_eq!(tree, tree_of(&l[..size as usize]));
        for leaf in &other[40..60] {
            tree.append(*leaf);
        }
        let mut expected = l[..size as usize].to_vec();
        expected.extend_from_slice(&other[40..60]);
        assert_eq!(tree, tree_of(&expected));
    }
    let mut tree = tree_of(&l);
    tree.truncate(40).unwrap();
    assert_eq!(tree, tree_of(&l), "truncating to len is a no-op");
}

#[test]
fn flushed_tree_keeps_roots_and_proofs_above_the_flush_point() {
    let l = leaves(50);
    let full = tree_of(&l);
    for flushed in 0..50 {
        let mut tree = full.clone();
        tree.flush_to(flushed).unwrap();
        tree.check_invariants_full();
        assert_eq!(tree.flushed(), flushed);
        assert_eq!(tree.root().unwrap(), full.root().unwrap());
        check_all_proofs(&tree, &l, flushed);
        if flushed > 0 {
            assert_eq!(tree.leaf(flushed - 1), None);
            if flushed > 1 {
                let refused = Error::Flushed { operation: "root", value: flushed - 1, flushed };
                assert_eq!(tree.root_at(flushed - 1), Err(refused));
            }
            assert!(matches!(tree.proof(flushed - 1, 50), Err(Error::Flushed { .. })));
            assert!(matches!(tree.truncate(flushed), Err(Error::Flushed { .. })));
        }
        // Flushing backwards is a no-op; rollback and regrowth still agree with a fresh tree.
        tree.flush_to(flushed / 2).unwrap();
        assert_eq!(tree.flushed(), flushed);
        tree.truncate(flushed + 1).unwrap();
        tree.check_invariants_full();
        for leaf in &l[flushed as usize + 1..] {
            tree.append(*leaf);
        }
        tree.check_invariants_full();
        assert_eq!(tree.root().unwrap(), full.root().unwrap());
    }
}

#[test]
fn serialise_layout_matches_merklecpp() {
    let l = leaves(7);
    let mut tree = tree_of(&l);
    tree.flush_to(6).unwrap();
    let bytes = tree.serialise();
    // num_leaves counts retained leaves only; 6 = 0b110 has two flushed subtree roots,
    // height 1 (leaves 4..6) first, then height 2 (leaves 0..4).
    let mut expected = Vec::new();
    expected.extend_from_slice(&1_u64.to_be_bytes());
    expected.extend_from_slice(&6_u64.to_be_bytes());
    expected.extend_from_slice(l[6].as_bytes());
    expected.extend_from_slice(h(l[4], l[5]).as_bytes());
    expected.extend_from_slice(h(h(l[0], l[1]), h(l[2], l[3])).as_bytes());
    assert_eq!(bytes, expected);
    let fresh = tree_of(&l[..3]).serialise();
    assert_eq!(&fresh[..16], &[0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(fresh.len(), 16 + 3 * 32);
    assert_eq!(MerkleTree::new().serialise(), vec![0; 16]);
    assert_eq!(MerkleTree::deserialise(&[0; 16]).unwrap(), MerkleTree::new());
    assert_eq!(
        tree.serialise_prefix(6),
        Err(Error::Flushed { operation: "serialise", value: 6, flushed: 6 })
    );
    assert_eq!(tree.serialise_prefix(8), Err(Error::SizeBeyondEnd { size: 8, len: 7 }));
}

#[test]
fn serialise_prefix_equals_serialising_the_truncated_tree() {
    let l = leaves(45);
    for flushed in [0, 1, 6, 13, 32, 40] {
        let mut tree = tree_of(&l);
        tree.flush_to(flushed).unwrap();
        for size in flushed + 1..=45 {
            let mut truncated = tree.clone();
            truncated.truncate(size).unwrap();
            assert_eq!(tree.serialise_prefix(size).unwrap(), truncated.serialise());
        }
    }
}

#[test]
fn deserialise_rejects_every_truncation_and_garbage() {
    for (count, flushed) in [(1, 0), (9, 0), (9, 5), (33, 31), (64, 63)] {
        let mut tree = tree_of(&leaves(count));
        tree.flush_to(flushed).unwrap();
        let bytes = tree.serialise();
        assert_eq!(MerkleTree::deserialise(&bytes).unwrap(), tree);
        for end in 0..bytes.len() {
            let error = MerkleTree::deserialise(&bytes[..end]).unwrap_err();
            assert!(matches!(error, Error::Truncated { .. }), "{end}: {error:?}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(MerkleTree::deserialise(&longer), Err(Error::TrailingBytes { .. })));
    }
    let header = |leaves: u64, flushed: u64| {
        let mut bytes = leaves.to_be_bytes().to_vec();
        bytes.extend_from_slice(&flushed.to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        bytes
    };
    let no_leaves = MerkleTree::deserialise(&header(0, 3));
    assert_eq!(no_leaves, Err(Error::NoRetainedLeaves { num_flushed: 3 }));
    let huge = MerkleTree::deserialise(&header(u64::MAX, 0));
    assert!(matches!(huge, Err(Error::TooManyLeaves { .. })));
    let overflow = MerkleTree::deserialise(&header(2, u64::MAX));
    assert!(matches!(overflow, Err(Error::TooManyLeaves { .. })));
    let large = MerkleTree::deserialise(&header(1 << 40, 0));
    assert!(matches!(large, Err(Error::Truncated { .. })));
    // A large flushed count with few leaves is legitimate and cheap: 2^62 - 2 has 61 set
    // bits, so 61 subtree roots.
    let mut sparse = header(1, LEAVES_MAX - 2);
    sparse.truncate(16 + 32);
    sparse.extend_from_slice(&[7; 32 * 61]);
    let tree = MerkleTree::deserialise(&sparse).unwrap();
    assert_eq!(tree.len(), LEAVES_MAX - 1);
    assert!(tree.root().is_ok());
    assert_eq!(tree.serialise(), sparse);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn proofs_verify_for_random_sizes(size in 1_u64..300) {
        let l = leaves(size);
        check_all_proofs(&tree_of(&l), &l, 0);
    }

    #[test]
    fn serialise_round_trips(size in 1_u64..300, flush_seed in any::<u64>()) {
        let l = leaves(size);
        let mut tree = tree_of(&l);
        let flushed = flush_seed % size;
        tree.flush_to(flushed).unwrap();
        let decoded = MerkleTree::deserialise(&tree.serialise()).unwrap();
        decoded.check_invariants_full();
        prop_assert_eq!(&decoded, &tree);
        prop_assert_eq!(decoded.root().unwrap(), naive_root(&l));
        for index in flushed..size {
            let proof = decoded.proof(index, size).unwrap();
            prop_assert_eq!(proof.compute_root(l[index as usize]), naive_root(&l));
        }
    }

    #[test]
    fn truncate_and_regrow(size in 1_u64..300, cut in 0_u64..300, extra in 0_u64..50) {
        let cut = cut % (size + 1);
        let l = leaves(size + extra);
        let mut tree = tree_of(&l[..size as usize]);
        tree.truncate(cut).unwrap();
        tree.check_invariants_full();
        for leaf in &l[cut as usize..] {
            tree.append(*leaf);
        }
        prop_assert_eq!(tree, tree_of(&l));
    }
}

#[test]
fn serialise_prefix_flushed_equals_a_really_flushed_tree() {
    let l = leaves(45);
    let full = tree_of(&l);
    for flushed in [1, 6, 13, 32, 40] {
        let mut really = tree_of(&l);
        really.flush_to(flushed).unwrap();
        for size in flushed + 1..=45 {
            let expected = really.serialise_prefix(size).unwrap();
            assert_eq!(full.serialise_prefix_flushed(flushed, size).unwrap(), expected);
            let parsed = MerkleTree::deserialise(&expected).unwrap();
            assert_eq!(parsed.root().unwrap(), full.root_at(size).unwrap());
        }
        assert!(full.serialise_prefix_flushed(flushed, flushed).is_err(), "keeps no leaf");
    }
    assert!(really_flushed_refuses_below_its_flush_point());
}

fn really_flushed_refuses_below_its_flush_point() -> bool {
    let mut tree = tree_of(&leaves(20));
    tree.flush_to(10).unwrap();
    tree.serialise_prefix_flushed(5, 20).is_err()
}
