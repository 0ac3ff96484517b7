//! Cross-check against CCF's own Python implementation (`ccf` on PyPI): the same leaves fed
//! to `ccf.merkletree.MerkleTree` give the same roots, it deserialises our `serialise_prefix`
//! output (flushed or not) to the same root and keeps growing it identically, and
//! `ccf.receipt.root` walks our proofs to our roots.
//!
//! Needs a Python with the `ccf` package:
//! `COCO_CCF_PYTHON=/path/to/python cargo test -p coco-merkle --test ccf_python`
//! (skipped without it, except under CI, where it must run).
#![allow(missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test helpers outside #[test] fns; a few thousand leaves"
)]

use std::io::Write;
use std::process::{Command, Stdio};

use coco_crypto::sha256;
use coco_merkle::{MerkleTree, leaf_digest};
use coco_types::Digest;
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import json, sys
from ccf.merkletree import MerkleTree
import ccf.receipt

results = []
for case in json.load(sys.stdin):
    leaves = [bytes.fromhex(h) for h in case["leaves"]]
    fresh = MerkleTree()
    for leaf in leaves[: case["size"]]:
        fresh.add_leaf(leaf, do_hash=False)
    restored = MerkleTree()
    end = restored.deserialise(bytes.fromhex(case["serialised"]))
    restored_root = restored.get_merkle_root().hex()
    for leaf in leaves[case["size"]:]:
        restored.add_leaf(leaf, do_hash=False)
    results.append({
        "root": fresh.get_merkle_root().hex(),
        "deserialised_root": restored_root,
        "deserialised_end": end,
        "grown_root": restored.get_merkle_root().hex(),
        "proof_roots": [ccf.receipt.root(p["leaf"], p["proof"]) for p in case["proofs"]],
    })
json.dump(results, sys.stdout)
"#;

fn leaves(count: u64) -> Vec<Digest> {
    (0..count)
        .map(|i| {
            if i == 0 {
                Digest::ZERO
            } else {
                let write_set_digest = sha256(&i.to_le_bytes());
                leaf_digest(&write_set_digest, &format!("ce:2.{i}:00"), &Digest::ZERO)
            }
        })
        .collect()
}

struct Case {
    size: u64,
    flushed: u64,
    tree: MerkleTree,
    leaves: Vec<Digest>,
    proof_indices: Vec<u64>,
}

fn cases() -> Vec<Case> {
    let sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100, 255, 256, 257, 1000, 4097];
    let mut cases = Vec::new();
    for size in sizes {
        let all = leaves(size + 13);
        for flushed in [0, size / 3, size / 2, size - 1] {
            let mut tree = MerkleTree::new();
            for leaf in &all {
                tree.append(*leaf);
            }
            tree.flush_to(flushed).unwrap();
            let proof_indices = (flushed..size).step_by(usize::try_from(size / 7 + 1).unwrap());
            let proof_indices = proof_indices.chain([size - 1]).collect();
            cases.push(Case { size, flushed, tree, leaves: all.clone(), proof_indices });
        }
    }
    cases
}

fn case_json(case: &Case) -> Value {
    let proofs: Vec<Value> = case
        .proof_indices
        .iter()
        .map(|&index| {
            let proof = case.tree.proof(index, case.size).unwrap();
            json!({"leaf": case.leaves[index as usize].to_hex(), "proof": proof})
        })
        .collect();
    json!({
        "size": case.size,
        "leaves": case.leaves.iter().map(Digest::to_hex).collect::<Vec<_>>(),
        "serialised": hex::encode(case.tree.serialise_prefix(case.size).unwrap()),
        "proofs": proofs,
    })
}

fn run_python(python: &str, input: &Value) -> Vec<Value> {
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {python}: {error}"));
    let stdin = child.stdin.take().unwrap();
    let body = serde_json::to_vec(input).unwrap();
    let writer = std::thread::spawn(move || {
        let mut stdin = stdin;
        stdin.write_all(&body).unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "python failed: {:?}", output.status);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn ccf_python_agrees_on_roots_serialisation_and_proofs() {
    let Ok(python) = std::env::var("COCO_CCF_PYTHON") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set COCO_CCF_PYTHON (see .ci/run)");
        eprintln!("skipped: set COCO_CCF_PYTHON to a python with the `ccf` package");
        return;
    };
    let cases = cases();
    let input = Value::Array(cases.iter().map(case_json).collect());
    let results = run_python(&python, &input);
    assert_eq!(results.len(), cases.len());
    let mut proofs_checked = 0;
    for (case, result) in cases.iter().zip(&results) {
        let label = format!("size {} flushed {}", case.size, case.flushed);
        let root = case.tree.root_at(case.size).unwrap().to_hex();
        assert_eq!(result["root"], json!(root), "{label}: fresh root");
        assert_eq!(result["deserialised_root"], json!(root), "{label}: deserialised root");
        let serialised_len = case.tree.serialise_prefix(case.size).unwrap().len();
        assert_eq!(result["deserialised_end"], json!(serialised_len), "{label}: consumed");
        let grown_root = case.tree.root().unwrap().to_hex();
        assert_eq!(result["grown_root"], json!(grown_root), "{label}: grown after deserialise");
        let proof_roots = result["proof_roots"].as_array().unwrap();
        assert_eq!(proof_roots.len(), case.proof_indices.len());
        for (index, proof_root) in case.proof_indices.iter().zip(proof_roots) {
            assert_eq!(proof_root, &json!(root), "{label}: proof of leaf {index}");
            proofs_checked += 1;
        }
    }
    eprintln!("ccf python agreed on {} cases and {proofs_checked} proofs", cases.len());
}
