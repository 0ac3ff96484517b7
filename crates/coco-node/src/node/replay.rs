//! Start-up on existing state: replay every ledger entry into the KV and the Merkle tree,
//! keep what a durable signature covers, drop the unsigned suffix, and move to a new view.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use coco_kv::WriteSet;
use coco_ledger::{Ledger, decode_entry, write_set_digest};
use coco_merkle::{leaf_digest, leaf_digest_of};
use coco_types::{Digest, Seqno, TxId, View};

use super::Node;
use super::signature::{SignatureJson, SignatureRecord, map};
use crate::error::{Error, Result};
use crate::secrets::LedgerSecrets;
use crate::tables;

pub(crate) fn replay(mut node: Node) -> Result<Node> {
    node.tree.append(Digest::ZERO);
    node.load_initial_membership()?;
    replay_entries(node, Seqno(1))
}

/// Starts from the committed snapshot at `snapshot` (the ledger lacks what precedes it),
/// then replays the ledger entries after it.
pub(crate) fn replay_from_snapshot(
    mut node: Node,
    snapshot: &coco_ledger::CommittedSnapshot,
) -> Result<Node> {
    node.load_initial_membership()?;
    super::restore::restore(&mut node, snapshot)?;
    if node.ledger.last_seqno() < snapshot.seqno {
        node.ledger.start_after(snapshot.seqno)?;
    }
    tracing::info!(seqno = snapshot.seqno.0, "starting from a snapshot");
    replay_entries(node, snapshot.seqno.next())
}

/// Replays the ledger from `from` on, keeps what a durable signature covers, and reads the
/// service status back.
fn replay_entries(mut node: Node, from: Seqno) -> Result<Node> {
    let known_committed = node.ledger.committed_seqno().max(node.read_commit_marker());
    let entries: Vec<_> = node.ledger.entries(from).collect();
    for entry in entries {
        let (seqno, raw) = entry?;
        let read = read_entry(&node.identity.ledger_secrets, seqno, &raw)
            .map_err(|e| corrupt_at(&node.ledger, seqno, &e))?;
        node.view = read.view;
        apply_entry(&mut node, seqno, read, known_committed)?;
    }
    if node.signatures.is_empty() {
        return Err(Error::Corrupt {
            what: "ledger".to_owned(),
            reason: "no signature transaction: the service was never committed".to_owned(),
        });
    }
    node.durable = node.last_seqno();
    // Only what this node knows consensus committed counts: a later signature may be on
    // this node alone, and consensus may still truncate it.
    if let Some((&signed, record)) = node.signatures.range(..=known_committed).next_back() {
        node.committed = TxId { view: record.view, seqno: signed };
        node.ledger.commit(signed)?;
        node.kv.compact(signed)?;
    }
    node.txs_since_signature =
        node.last_seqno().0 - node.signatures.keys().next_back().map_or(0, |s| s.0);
    node.load_service_status()?;
    tracing::info!(committed = %node.committed, last = %node.last_seqno(), "ledger replayed");
    node.check_invariants();
    Ok(node)
}

/// A ledger entry read back: its view, its writes and its Merkle leaf.
pub(crate) struct ReadEntry {
    pub(crate) view: View,
    pub(crate) write_set: WriteSet,
    pub(crate) leaf: Digest,
}

/// Decodes one entry. With its ledger secret, the private domain is decrypted and the
/// commit evidence checked against the header; without it (a recovering node before the
/// members' shares), only the public domain is read and the leaf is computed from the
/// header's commit evidence digest, as an auditor does.
pub(crate) fn read_entry(secrets: &LedgerSecrets, seqno: Seqno, raw: &[u8]) -> Result<ReadEntry> {
    let entry = decode_entry(raw)?;
    assert_eq!(entry.seqno(), seqno, "ledger index and entry header disagree");
    let view = entry.view();
    let txid = TxId { view, seqno };
    let Some(secret) = secrets.for_seqno(seqno) else {
        let write_set = WriteSet::decode_domain(entry.public_maps())?;
        let leaf = leaf_digest_of(
            &write_set_digest(raw),
            &entry.commit_evidence_digest(),
            &entry.claims_digest(),
        );
        return Ok(ReadEntry { view, write_set, leaf });
    };
    let private = entry.decrypt_private(&secret.key)?;
    let write_set = WriteSet::decode_domains(entry.public_maps(), &private)?;
    let commit_evidence = secret.evidence.evidence(txid);
    let expected = coco_crypto::sha256(commit_evidence.as_bytes());
    if expected != entry.commit_evidence_digest() {
        return Err(Error::Corrupt {
            what: format!("ledger entry {txid}"),
            reason: "commit evidence digest does not match the ledger secret".to_owned(),
        });
    }
    let leaf = leaf_digest(&write_set_digest(raw), &commit_evidence, &entry.claims_digest());
    Ok(ReadEntry { view, write_set, leaf })
}

/// Names the file and offset of a bad entry, so an operator can find the damage.
pub(crate) fn corrupt_at(ledger: &Ledger, seqno: Seqno, error: &Error) -> Error {
    let (file, offset) = ledger.position(seqno).unwrap_or_default();
    Error::Corrupt {
        what: format!("ledger entry {seqno} in {} at offset {offset}", file.display()),
        reason: error.to_string(),
    }
}

/// Applies an entry read back from the ledger: KV, Merkle leaf, views, signatures and
/// configurations. The KV history is compacted at signatures up to `compact_bound`.
fn apply_entry(node: &mut Node, seqno: Seqno, read: ReadEntry, compact_bound: Seqno) -> Result<()> {
    let ReadEntry { view, write_set, leaf } = read;
    node.kv.apply(seqno, &write_set)?;
    node.tree.append(leaf);
    if node.view_history.last().is_none_or(|(last, _)| *last != view) {
        node.view_history.push((view, seqno));
    }
    if let Some(membership) = membership_of(&write_set)? {
        node.memberships.insert(seqno, membership);
    }
    if let Some(record) = signature_of(&write_set, view)? {
        // Everything up to an earlier committed signature is never rolled back: keep the
        // undo history bounded however long the ledger is.
        if let Some((&previous, _)) = node.signatures.range(..=compact_bound).next_back() {
            node.kv.compact(previous)?;
        }
        node.signatures.insert(seqno, record);
    }
    Ok(())
}

/// A backup appends a primary's entry it has read and checked: stored unchanged, then
/// applied like a replayed one.
pub(crate) fn apply_read_entry(
    node: &mut Node,
    seqno: Seqno,
    read: ReadEntry,
    raw: &[u8],
) -> Result<()> {
    let is_signature = signature_of(&read.write_set, read.view)?.is_some();
    let snapshot_due = is_signature && node.is_snapshot_point(seqno);
    node.note_snapshot_evidence(seqno, &read.write_set);
    let changes_service = read.write_set.get(&map(tables::SERVICE_INFO)).is_some();
    node.adopt_shared_secret(seqno, &read.write_set)?;
    node.ledger.append(seqno, raw, is_signature)?;
    let bound = node.committed.seqno;
    apply_entry(node, seqno, read, bound)?;
    node.metrics.txs_committed_locally += 1;
    node.txs_since_signature = if is_signature { 0 } else { node.txs_since_signature + 1 };
    if changes_service {
        node.load_service_status()?;
    }
    node.snapshot_if_due(seqno, snapshot_due);
    Ok(())
}

/// The consensus configuration an entry records, if any.
fn membership_of(write_set: &WriteSet) -> Result<Option<coco_consensus::Membership>> {
    let Some(writes) = write_set.get(&map(tables::CONSENSUS_MEMBERSHIP)) else {
        return Ok(None);
    };
    let Some(json) = writes.writes().get(tables::SINGLETON_KEY) else { return Ok(None) };
    serde_json::from_slice(json).map(Some).map_err(|e| Error::Corrupt {
        what: "consensus configuration".to_owned(),
        reason: e.to_string(),
    })
}

/// The signature a write set carries, if it is a signature transaction.
pub(crate) fn signature_of(write_set: &WriteSet, view: View) -> Result<Option<SignatureRecord>> {
    let singleton = |name: &str| {
        write_set.get(&map(name)).and_then(|writes| writes.writes().get(tables::SINGLETON_KEY))
    };
    let Some(signature) = singleton(tables::SIGNATURES) else {
        return Ok(None);
    };
    let cose = singleton(tables::COSE_SIGNATURES).map(Vec::as_slice);
    signature_record(signature, cose, view).map(Some)
}

/// A signature record from the two tables a signature transaction writes.
pub(crate) fn signature_record(
    signature: &[u8],
    cose: Option<&[u8]>,
    view: View,
) -> Result<SignatureRecord> {
    let corrupt = |reason: &str| Error::Corrupt {
        what: "signature transaction".to_owned(),
        reason: reason.to_owned(),
    };
    let json: SignatureJson =
        serde_json::from_slice(signature).map_err(|_| corrupt("signature JSON"))?;
    let cose = cose.ok_or_else(|| corrupt("COSE signature missing"))?;
    let cose: String = serde_json::from_slice(cose).map_err(|_| corrupt("COSE signature JSON"))?;
    Ok(SignatureRecord {
        node: json.node.parse().map_err(|_| corrupt("signing node id"))?,
        view,
        root: json.root.parse().map_err(|_| corrupt("root"))?,
        node_signature: BASE64.decode(json.sig).map_err(|_| corrupt("node signature"))?,
        cose_signature: BASE64.decode(cose).map_err(|_| corrupt("COSE signature"))?,
    })
}
