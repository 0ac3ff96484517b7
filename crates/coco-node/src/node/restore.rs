//! Restoring a node's state from a committed snapshot: checked before anything is taken
//! from it (the embedded receipt must verify against the service key and bind the
//! snapshot's digest; the Merkle tree rebuilt from the snapshot must give the root its
//! signature signed), then the KV, the tree, the signature, the views and the consensus
//! configuration are set as they were right after the snapshot's signature.

use coco_kv::{MapName, Store};
use coco_ledger::{CommittedSnapshot, decode_snapshot, split_committed_snapshot};
use coco_merkle::MerkleTree;
use coco_types::{Digest, TxId};

use super::replay::signature_record;
use super::signature::map;
use super::snapshot::from_ccf_view_history;
use super::{Node, kv_history_max};
use crate::error::{Error, Result};
use crate::tables;

fn corrupt(snapshot: &CommittedSnapshot, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt { what: snapshot.path.display().to_string(), reason: reason.to_string() }
}

/// Sets `node`'s state to the snapshot's (see the module documentation).
pub(crate) fn restore(node: &mut Node, snapshot: &CommittedSnapshot) -> Result<()> {
    let file = std::fs::read(&snapshot.path)
        .map_err(|source| Error::Io { path: snapshot.path.clone(), source })?;
    let (bytes, receipt) = split_committed_snapshot(&file)?;
    check_receipt(node, snapshot, bytes, receipt)?;
    let decoded = decode_snapshot(bytes)?;
    if decoded.seqno != snapshot.seqno {
        return Err(corrupt(snapshot, format!("it holds seqno {}", decoded.seqno)));
    }
    let secret = node
        .identity
        .ledger_secrets
        .for_seqno(snapshot.seqno)
        .ok_or_else(|| corrupt(snapshot, "no ledger secret covers its seqno"))?;
    let private = decoded.decrypt_private(&secret.key)?;
    let mut kv = Store::restore_snapshot(snapshot.seqno, decoded.public_maps, &private)?;
    kv.set_history_max(kv_history_max(&node.limits));
    node.kv = kv;
    node.view_history = from_ccf_view_history(&decoded.view_history);
    let view = node.view_of(snapshot.seqno).ok_or_else(|| corrupt(snapshot, "no view"))?;
    node.view = view;
    let leaf =
        Digest(decoded.hash_at_snapshot.try_into().map_err(|_| corrupt(snapshot, "hash size"))?);
    restore_tree_and_signature(node, snapshot, view, leaf)?;
    restore_membership(node, snapshot)?;
    node.committed = TxId { view, seqno: snapshot.seqno };
    node.durable = snapshot.seqno;
    Ok(())
}

/// The receipt must be the service's and prove a transaction whose claims digest is the
/// snapshot's SHA-256.
fn check_receipt(
    node: &Node,
    snapshot: &CommittedSnapshot,
    bytes: &[u8],
    receipt: &[u8],
) -> Result<()> {
    let key = node.identity.service_cert.verifying_key().map_err(|e| corrupt(snapshot, e))?;
    let info = coco_crypto::verify_cose_receipt(receipt, &key)
        .map_err(|e| corrupt(snapshot, format!("its receipt does not verify: {e}")))?;
    if info.leaf_components.claims_digest != coco_crypto::sha256(bytes) {
        return Err(corrupt(snapshot, "its receipt proves another snapshot"));
    }
    Ok(())
}

fn singleton<'a>(kv: &'a coco_kv::Snapshot, name: &str) -> Option<&'a [u8]> {
    kv.get(&map(name), tables::SINGLETON_KEY)
}

/// The tree the signature serialised (leaves before it) plus the signature's own leaf;
/// its root must be the one the signature signed.
fn restore_tree_and_signature(
    node: &mut Node,
    snapshot: &CommittedSnapshot,
    view: coco_types::View,
    leaf: Digest,
) -> Result<()> {
    let state = node.kv.snapshot();
    let tree = singleton(&state, tables::TREE).ok_or_else(|| corrupt(snapshot, "no tree"))?;
    let mut tree = MerkleTree::deserialise(tree)?;
    if tree.len() != snapshot.seqno.0 {
        return Err(corrupt(snapshot, format!("its tree has {} leaves", tree.len())));
    }
    let signature =
        singleton(&state, tables::SIGNATURES).ok_or_else(|| corrupt(snapshot, "no signature"))?;
    let record = signature_record(signature, singleton(&state, tables::COSE_SIGNATURES), view)?;
    if tree.root()? != record.root {
        return Err(corrupt(snapshot, "its tree does not give the signed root"));
    }
    tree.append(leaf);
    node.tree = tree;
    node.signatures.insert(snapshot.seqno, record);
    Ok(())
}

/// The consensus configuration in force at the snapshot, at the seqno that recorded it.
fn restore_membership(node: &mut Node, snapshot: &CommittedSnapshot) -> Result<()> {
    let state = node.kv.snapshot();
    let name = MapName::new(tables::CONSENSUS_MEMBERSHIP).expect("a valid map name");
    if let Some((json, seqno)) = state.get_versioned(&name, tables::SINGLETON_KEY) {
        let membership = serde_json::from_slice(json).map_err(|e| corrupt(snapshot, e))?;
        node.memberships.insert(seqno, membership);
    }
    node.starts_after = Some(TxId { view: node.view, seqno: snapshot.seqno });
    Ok(())
}
