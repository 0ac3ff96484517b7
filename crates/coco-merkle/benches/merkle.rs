//! Merkle tree hot paths: append, root of a fresh prefix (what a signature does) and proof
//! generation (what a receipt does), on a 100k-leaf tree.
#![allow(missing_docs)]

use std::hint::black_box;

use coco_crypto::sha256;
use coco_merkle::MerkleTree;
use coco_types::Digest;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LEAVES: u64 = 100_000;

fn leaves(count: u64) -> Vec<Digest> {
    (0..count).map(|i| sha256(&i.to_le_bytes())).collect()
}

fn tree_of(leaves: &[Digest]) -> MerkleTree {
    let mut tree = MerkleTree::new();
    for leaf in leaves {
        tree.append(*leaf);
    }
    tree
}

fn append(c: &mut Criterion) {
    let leaves = leaves(LEAVES);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(LEAVES));
    group.bench_function("100k leaves into an empty tree", |b| {
        b.iter(|| tree_of(black_box(&leaves)));
    });
    group.finish();
}

fn root(c: &mut Criterion) {
    let base = tree_of(&leaves(LEAVES));
    let next = sha256(b"next leaf");
    // 100k = 0b1_1000_0110_1010_0000: six set bits, a realistic ragged right edge. The tree
    // keeps growing as a node's does; it is cut back now and then to bound memory.
    let mut tree = base.clone();
    c.bench_function("append + root (100k leaves)", |b| {
        b.iter(|| {
            if tree.len() > LEAVES + 100_000 {
                tree.truncate(LEAVES).expect("nothing flushed");
            }
            tree.append(next);
            tree.root()
        });
    });
    c.bench_function("root_at (100k-leaf prefix)", |b| {
        b.iter(|| base.root_at(black_box(LEAVES - 1)));
    });
}

fn proof(c: &mut Criterion) {
    let tree = tree_of(&leaves(LEAVES));
    let mut index = 0_u64;
    c.bench_function("proof (100k leaves)", |b| {
        b.iter(|| {
            index = (index + 7_919) % LEAVES;
            tree.proof(black_box(index), LEAVES)
        });
    });
    let proof = tree.proof(12_345, LEAVES).expect("leaf is in the tree");
    let leaf = tree.leaf(12_345).expect("leaf is in the tree");
    c.bench_function("proof verify (100k leaves)", |b| {
        b.iter(|| black_box(&proof).compute_root(leaf));
    });
}

criterion_group!(benches, append, root, proof);
criterion_main!(benches);
