//! Restoring a node's state from a committed snapshot: checked before anything is taken
//! from it (the embedded receipt must verify against the service key and bind the
//! snapshot's digest; the Merkle tree rebuilt from the snapshot must give the root its
//! signature signed), then the KV, the tree, the signature, the views and the consensus
//! configuration are set as they were right after the snapshot's signature.

use coco_kv::Store;
use coco_ledger::{CommittedSnapshot, decode_snapshot, split_committed_snapshot};
use coco_merkle::MerkleTree;
use coco_types::{Digest, Seqno, TxId, View};

use super::replay::signature_record;
use super::signature::SignatureRecord;
use super::signature::map;
use super::snapshot::from_ccf_view_history;
use super::{Node, kv_history_max};
use crate::error::{Error, Result};
use crate::tables;

fn corrupt(snapshot: &CommittedSnapshot, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt { what: snapshot.path.display().to_string(), reason: reason.to_string() }
}

/// A snapshot file that passed every check, opened into what the node takes from it.
struct Opened {
    /// The transaction recording its evidence.
    evidence: TxId,
    kv: Store,
    view_history: Vec<(View, Seqno)>,
    view: View,
    tree: MerkleTree,
    signature: SignatureRecord,
    /// The consensus configuration in force, and the seqno that recorded it.
    membership: Option<(Seqno, coco_consensus::Membership)>,
}

/// Sets `node`'s state to the committed snapshot on disk (see the module documentation).
pub(crate) fn restore(node: &mut Node, snapshot: &CommittedSnapshot) -> Result<()> {
    let file = std::fs::read(&snapshot.path)
        .map_err(|source| Error::Io { path: snapshot.path.clone(), source })?;
    let opened = open_checked(node, snapshot, &file)?;
    apply(node, snapshot, opened);
    Ok(())
}

/// Checks `file` (receipt, seqno, a secret for it, decryption, the signed Merkle root)
/// and opens it; nothing of the node changes but a ledger secret sealed to it in the
/// snapshot, which it needs to read the private state if it missed a rekey.
fn open_checked(node: &mut Node, snapshot: &CommittedSnapshot, file: &[u8]) -> Result<Opened> {
    let (bytes, receipt) = split_committed_snapshot(file)?;
    let evidence = check_receipt(node, snapshot, bytes, receipt)?;
    let decoded = decode_snapshot(bytes)?;
    if decoded.seqno != snapshot.seqno {
        return Err(corrupt(snapshot, format!("it holds seqno {}", decoded.seqno)));
    }
    let public = Store::restore_snapshot(snapshot.seqno, decoded.public_maps, &[])?;
    node.adopt_secret_from_state(&public.snapshot())?;
    let secret = node
        .identity
        .ledger_secrets
        .for_seqno(snapshot.seqno)
        .ok_or_else(|| corrupt(snapshot, "no ledger secret covers its seqno"))?;
    let private = decoded.decrypt_private(&secret.key)?;
    let mut kv = Store::restore_snapshot(snapshot.seqno, decoded.public_maps, &private)?;
    kv.set_history_max(kv_history_max(&node.limits));
    let view_history = from_ccf_view_history(&decoded.view_history);
    let view = view_history
        .iter()
        .rev()
        .find(|(_, first)| *first <= snapshot.seqno)
        .map(|(view, _)| *view)
        .ok_or_else(|| corrupt(snapshot, "no view"))?;
    let leaf =
        Digest(decoded.hash_at_snapshot.try_into().map_err(|_| corrupt(snapshot, "hash size"))?);
    let state = kv.snapshot();
    let (tree, signature) = tree_and_signature(&state, snapshot, view, leaf)?;
    let membership = membership(&state, snapshot)?;
    Ok(Opened { evidence, kv, view_history, view, tree, signature, membership })
}

/// Sets the node's state to an opened snapshot's.
fn apply(node: &mut Node, snapshot: &CommittedSnapshot, opened: Opened) {
    node.kv = opened.kv;
    node.view_history = opened.view_history;
    node.view = opened.view;
    node.tree = opened.tree;
    node.signatures.insert(snapshot.seqno, opened.signature);
    if let Some((seqno, membership)) = opened.membership {
        node.memberships.insert(seqno, membership);
    }
    node.committed = TxId { view: opened.view, seqno: snapshot.seqno };
    node.starts_after = Some(node.committed);
    node.durable = snapshot.seqno;
    node.newest_snapshot = Some(node.committed);
}

/// The receipt must be the service's and prove a transaction whose claims digest is the
/// snapshot's SHA-256. Returns that transaction (the evidence).
fn check_receipt(
    node: &Node,
    snapshot: &CommittedSnapshot,
    bytes: &[u8],
    receipt: &[u8],
) -> Result<TxId> {
    let key = node.identity.service_cert.verifying_key().map_err(|e| corrupt(snapshot, e))?;
    let info = coco_crypto::verify_cose_receipt(receipt, &key)
        .map_err(|e| corrupt(snapshot, format!("its receipt does not verify: {e}")))?;
    if info.leaf_components.claims_digest != coco_crypto::sha256(bytes) {
        return Err(corrupt(snapshot, "its receipt proves another snapshot"));
    }
    // Commit evidence reads `ce:<view>.<seqno>:<hex>`.
    let evidence = info.leaf_components.commit_evidence;
    let tx = evidence.strip_prefix("ce:").and_then(|rest| rest.split(':').next());
    tx.and_then(|tx| tx.parse().ok()).ok_or_else(|| corrupt(snapshot, "bad commit evidence"))
}

impl Node {
    /// Replaces this node's state with a committed snapshot another node sent (this node
    /// lags behind what that node still replicates entry by entry): checked first, then
    /// stored, the old ledger archived, and the state restored from it.
    pub(crate) fn install_snapshot(&mut self, at: TxId, file: &[u8]) -> Result<()> {
        if at.seqno <= self.committed.seqno {
            return Ok(());
        }
        let received = CommittedSnapshot {
            seqno: at.seqno,
            evidence: at.seqno,
            path: format!("snapshot_{} from the primary", at.seqno).into(),
        };
        // Everything that could refuse it is checked before anything changes.
        let opened = open_checked(self, &received, file)?;
        let evidence = opened.evidence.seqno;
        let path = self.snapshots.write_committed(at.seqno, evidence, file)?;
        let archive = self.ledger.archive_and_start_after(at.seqno)?;
        tracing::warn!(
            seqno = at.seqno.0,
            archive = %archive.display(),
            "installing a snapshot from the primary; the old ledger is archived"
        );
        self.signatures.clear();
        self.memberships.retain(|seqno, _| seqno.0 == 0);
        self.pending_snapshots.clear();
        self.snapshots_in_progress.clear();
        self.evidence_seen.clear();
        self.txs_since_signature = 0;
        apply(self, &CommittedSnapshot { seqno: at.seqno, evidence, path }, opened);
        self.consensus_committed = Some(at.seqno);
        self.metrics.snapshots_installed += 1;
        self.save_commit_marker();
        self.load_service_status()?;
        self.check_invariants();
        Ok(())
    }
}

fn singleton<'a>(kv: &'a coco_kv::Snapshot, name: &str) -> Option<&'a [u8]> {
    kv.get(&map(name), tables::SINGLETON_KEY)
}

/// The tree the signature serialised (leaves before it) plus the signature's own leaf;
/// its root must be the one the signature signed.
fn tree_and_signature(
    state: &coco_kv::Snapshot,
    snapshot: &CommittedSnapshot,
    view: View,
    leaf: Digest,
) -> Result<(MerkleTree, SignatureRecord)> {
    let tree = singleton(state, tables::TREE).ok_or_else(|| corrupt(snapshot, "no tree"))?;
    let mut tree = MerkleTree::deserialise(tree)?;
    if tree.len() != snapshot.seqno.0 {
        return Err(corrupt(snapshot, format!("its tree has {} leaves", tree.len())));
    }
    let signature =
        singleton(state, tables::SIGNATURES).ok_or_else(|| corrupt(snapshot, "no signature"))?;
    let record = signature_record(signature, singleton(state, tables::COSE_SIGNATURES), view)?;
    if tree.root()? != record.root {
        return Err(corrupt(snapshot, "its tree does not give the signed root"));
    }
    tree.append(leaf);
    Ok((tree, record))
}

/// The consensus configuration in force at the snapshot, at the seqno that recorded it.
fn membership(
    state: &coco_kv::Snapshot,
    snapshot: &CommittedSnapshot,
) -> Result<Option<(Seqno, coco_consensus::Membership)>> {
    let Some((json, seqno)) =
        state.get_versioned(&map(tables::CONSENSUS_MEMBERSHIP), tables::SINGLETON_KEY)
    else {
        return Ok(None);
    };
    let membership = serde_json::from_slice(json).map_err(|e| corrupt(snapshot, e))?;
    Ok(Some((seqno, membership)))
}
