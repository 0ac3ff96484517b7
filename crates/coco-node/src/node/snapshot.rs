//! Snapshots: at the first signature at or after each multiple of `snapshot_tx_interval`,
//! every node writes the state after that signature in CCF's snapshot format (the same
//! bytes on every node: the state, the secret and the TxId determine them). The primary
//! then records the snapshot's digest in `public:ccf.internal.snapshot_evidence`, in a
//! transaction whose claims digest is that digest; once the evidence commits, each node
//! appends its COSE receipt and the file becomes `snapshot_<seqno>_<evidence>.committed`,
//! which anyone can check offline against the service key.

use coco_kv::{CommitOutcome, WriteSet};
use coco_ledger::{SnapshotMaps, SnapshotParts, encode_snapshot_into};
use coco_types::{Digest, Seqno, TxId, View};

use super::Node;
use super::signature::map;
use crate::error::Result;
use crate::tables;

/// A snapshot written but not committed yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingSnapshot {
    /// SHA-256 of the snapshot bytes.
    pub(crate) digest: Digest,
    /// The transaction recording its evidence, once ordered.
    pub(crate) evidence: Option<Seqno>,
}

/// `public:ccf.internal.snapshot_evidence`, as CCF writes it.
#[derive(serde::Serialize, serde::Deserialize)]
struct EvidenceJson {
    hash: String,
    version: u64,
}

impl Node {
    /// Whether the signature at `seqno` is a snapshot point: a multiple of the interval
    /// lies after the previous signature and at or before it. A function of the ledger
    /// alone, so every node snapshots at the same seqnos.
    pub(crate) fn is_snapshot_point(&self, seqno: Seqno) -> bool {
        let interval = self.limits.snapshot_tx_interval;
        let previous = self.signatures.range(..seqno).next_back().map_or(0, |(seqno, _)| seqno.0);
        seqno.0 / interval > previous / interval
    }

    /// Writes the snapshot of the state after the signature at `seqno` (just appended) if
    /// `seqno` is a snapshot point: under the lock only what it needs is taken (the KV
    /// copy is O(1)); serialising, sealing, hashing and writing run on the snapshot
    /// thread when the node has one, inline otherwise (tests, the simulator). A failure
    /// to write is logged, not fatal: snapshots speed start-ups, the ledger stays the
    /// record.
    pub(crate) fn snapshot_if_due(&mut self, seqno: Seqno, due: bool) {
        if !due {
            return;
        }
        let Some(job) = self.snapshot_job(seqno) else { return };
        self.snapshots_in_progress.insert(seqno);
        let job = match &self.snapshot_writer {
            Some(writer) => match writer.send(job) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            None => job,
        };
        // Inline (no writer thread): an occasional snapshot, no buffer worth keeping.
        let written = job.run(&mut Vec::new());
        self.snapshot_written(seqno, written);
    }

    fn snapshot_job(&self, seqno: Seqno) -> Option<SnapshotJob> {
        assert_eq!(self.last_seqno(), seqno, "a snapshot is of the state after its signature");
        // A recovering node without the old secrets cannot seal the private state.
        let secret = self.identity.ledger_secrets.for_seqno(seqno)?;
        Some(SnapshotJob {
            seqno,
            view: self.view_of(seqno).expect("the signature was just appended"),
            leaf: self.tree.leaf(seqno.0).expect("the signature's leaf was just appended"),
            history: ccf_view_history(&self.view_history),
            state: self.kv.snapshot(),
            key: secret.key.clone(),
            dir: self.snapshots.clone(),
        })
    }

    /// A snapshot job finished: the snapshot becomes pending (waiting for its evidence),
    /// unless its signature was rolled back meanwhile.
    pub(crate) fn snapshot_written(&mut self, seqno: Seqno, written: Result<Digest>) {
        if !self.snapshots_in_progress.remove(&seqno) {
            self.discard_snapshot(seqno);
            return;
        }
        let digest = match written {
            Ok(digest) => digest,
            Err(e) => {
                tracing::warn!(seqno = seqno.0, error = %e, "snapshot not written");
                return;
            }
        };
        tracing::info!(seqno = seqno.0, %digest, "snapshot written");
        self.pending_snapshots.insert(seqno, PendingSnapshot { digest, evidence: None });
        if let Some((hash, evidence)) = self.evidence_seen.remove(&seqno) {
            self.match_evidence(seqno, &hash, evidence);
        }
        self.commit_snapshots();
    }

    /// The snapshot whose evidence the primary should record next, if any.
    pub(crate) fn snapshot_without_evidence(&self) -> Option<Seqno> {
        self.pending_snapshots
            .iter()
            .find(|(_, pending)| pending.evidence.is_none())
            .map(|(seqno, _)| *seqno)
    }

    /// Records the evidence of the snapshot at `snapshot` as the next transaction, with the
    /// snapshot's digest as its claims digest (the primary, at the seqno consensus gave).
    pub(crate) fn emit_snapshot_evidence(&mut self, snapshot: Seqno) -> Result<()> {
        let Some(pending) = self.pending_snapshots.get(&snapshot).copied() else {
            return self.seal_empty().map(drop);
        };
        let json = EvidenceJson { hash: pending.digest.to_hex(), version: snapshot.0 };
        let mut tx = self.kv.begin();
        let value = serde_json::to_vec(&json).expect("evidence JSON serialises");
        tx.put(&map(tables::SNAPSHOT_EVIDENCE), tables::SINGLETON_KEY, value);
        let CommitOutcome::Written { seqno, write_set } = self.kv.commit(tx)? else {
            unreachable!("an evidence transaction writes");
        };
        self.seal_or_undo(seqno, &write_set, false, false, pending.digest)?;
        self.txs_since_signature += 1;
        self.note_snapshot_evidence(seqno, &write_set);
        Ok(())
    }

    /// Notes the evidence an entry at `seqno` records, if any, against the snapshot it
    /// names; a digest that differs from this node's snapshot means the two nodes' states
    /// differ, so this node's file is dropped rather than ever committed.
    pub(crate) fn note_snapshot_evidence(&mut self, seqno: Seqno, write_set: &WriteSet) {
        let Some(value) = write_set
            .get(&map(tables::SNAPSHOT_EVIDENCE))
            .and_then(|writes| writes.writes().get(tables::SINGLETON_KEY))
        else {
            return;
        };
        let Ok(evidence) = serde_json::from_slice::<EvidenceJson>(value) else {
            tracing::warn!(seqno = seqno.0, "unreadable snapshot evidence");
            return;
        };
        let snapshot = Seqno(evidence.version);
        if self.snapshots_in_progress.contains(&snapshot) {
            // Still being written here: matched when it is.
            self.evidence_seen.insert(snapshot, (evidence.hash, seqno));
            return;
        }
        self.match_evidence(snapshot, &evidence.hash, seqno);
    }

    fn match_evidence(&mut self, snapshot: Seqno, hash: &str, evidence: Seqno) {
        let Some(pending) = self.pending_snapshots.get_mut(&snapshot) else { return };
        if pending.digest.to_hex() == hash {
            pending.evidence.get_or_insert(evidence);
        } else {
            tracing::error!(
                snapshot = snapshot.0,
                ours = %pending.digest,
                recorded = hash,
                "this node's snapshot differs from the primary's: dropping it"
            );
            self.pending_snapshots.remove(&snapshot);
            self.discard_snapshot(snapshot);
        }
    }

    /// Commits every snapshot whose evidence is now committed: the evidence's COSE receipt
    /// is appended to the file, which is renamed `.committed`; old ones are pruned.
    pub(crate) fn commit_snapshots(&mut self) {
        let committed = self.committed.seqno;
        let ready: Vec<(Seqno, Seqno)> = self
            .pending_snapshots
            .iter()
            .filter_map(|(seqno, pending)| Some((*seqno, pending.evidence?)))
            .filter(|(_, evidence)| *evidence <= committed)
            .collect();
        for (snapshot, evidence) in ready {
            self.pending_snapshots.remove(&snapshot);
            match self.commit_snapshot(snapshot, evidence) {
                Ok(()) => {
                    tracing::info!(seqno = snapshot.0, evidence = evidence.0, "snapshot committed")
                }
                Err(e) => tracing::warn!(seqno = snapshot.0, error = %e, "snapshot not committed"),
            }
        }
    }

    fn commit_snapshot(&mut self, snapshot: Seqno, evidence: Seqno) -> Result<()> {
        let view = self.view_of(evidence).expect("committed evidence is held");
        let receipt = self.cose_receipt(TxId { view, seqno: evidence })?;
        self.snapshots.commit(snapshot, evidence, &receipt)?;
        let view = self.view_of(snapshot).expect("a committed snapshot's signature is held");
        self.newest_snapshot = Some(TxId { view, seqno: snapshot });
        self.metrics.snapshots_committed += 1;
        let kept = usize::try_from(self.limits.snapshots_kept).unwrap_or(usize::MAX);
        self.snapshots.prune(kept)?;
        Ok(())
    }

    /// Forgets snapshots at or after `from` and evidence ordered there (rolled back).
    pub(crate) fn roll_back_snapshots(&mut self, from: Seqno) {
        self.pending_snapshots.retain(|seqno, _| *seqno < from);
        self.snapshots_in_progress.retain(|seqno| *seqno < from);
        self.evidence_seen.retain(|seqno, (_, evidence)| *seqno < from && *evidence < from);
        for pending in self.pending_snapshots.values_mut() {
            if pending.evidence.is_some_and(|evidence| evidence >= from) {
                pending.evidence = None;
            }
        }
        self.discard_snapshots_from(from);
    }

    fn discard_snapshot(&self, seqno: Seqno) {
        if let Err(e) = self.snapshots.discard_pending(seqno) {
            tracing::warn!(seqno = seqno.0, error = %e, "cannot remove a dropped snapshot");
        }
    }

    fn discard_snapshots_from(&self, from: Seqno) {
        if let Err(e) = self.snapshots.discard_pending_from(from) {
            tracing::warn!(from = from.0, error = %e, "cannot remove rolled-back snapshots");
        }
    }
}

/// What a snapshot needs from the node, taken under its lock; [`SnapshotJob::run`] does
/// the O(state) work without it.
pub(crate) struct SnapshotJob {
    seqno: Seqno,
    view: View,
    leaf: Digest,
    history: Vec<u64>,
    state: coco_kv::Snapshot,
    key: coco_crypto::Aes256GcmKey,
    dir: coco_ledger::SnapshotDir,
}

impl SnapshotJob {
    /// The seqno of the snapshot's signature.
    pub(crate) fn seqno(&self) -> Seqno {
        self.seqno
    }

    /// Serialises, seals and writes the snapshot; returns its SHA-256. `buffer` is the
    /// writer's, reused from one snapshot to the next (it holds the whole state).
    pub(crate) fn run(self, buffer: &mut Vec<u8>) -> Result<Digest> {
        let parts = SnapshotParts {
            view: self.view,
            seqno: self.seqno,
            hash_at_snapshot: self.leaf.as_bytes(),
            view_history: &self.history,
            maps: &KvMaps(&self.state),
        };
        encode_snapshot_into(&parts, &self.key, buffer)?;
        self.dir.write_pending(self.seqno, buffer)?;
        Ok(coco_crypto::sha256(buffer))
    }
}

/// The KV's maps as the ledger's snapshot format writes them.
struct KvMaps<'a>(&'a coco_kv::Snapshot);

impl SnapshotMaps for KvMaps<'_> {
    fn domain_len(&self, public: bool) -> u64 {
        self.0.domain_len(public)
    }

    fn write_domain(&self, public: bool, out: &mut Vec<u8>) {
        self.0.encode_domain_into(public, out);
    }
}

/// CCF's view history: entry `v` is the first seqno of view `v` (a view with no entries
/// shares the start of the next one), from Coco's list of (view, first seqno).
pub(crate) fn ccf_view_history(history: &[(View, Seqno)]) -> Vec<u64> {
    let Some((last_view, _)) = history.last() else { return Vec::new() };
    let mut starts = Vec::new();
    let mut next = history.iter().peekable();
    for view in 0..=last_view.0 {
        while next.peek().is_some_and(|(v, _)| v.0 < view) {
            next.next();
        }
        let (_, first) = next.peek().expect("the last view is in the history");
        starts.push(first.0);
    }
    starts
}

/// The inverse of [`ccf_view_history`]: each view's first seqno, keeping only views that
/// ordered something (a view sharing its start with the next one ordered nothing).
pub(crate) fn from_ccf_view_history(starts: &[u64]) -> Vec<(View, Seqno)> {
    let mut history = Vec::new();
    for (view, first) in starts.iter().enumerate() {
        let next = starts.get(view + 1);
        if next.is_none_or(|next| next > first) {
            history.push((View(view as u64), Seqno(*first)));
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_histories_round_trip_through_ccf_form() {
        let ours = vec![(View(2), Seqno(1)), (View(3), Seqno(40)), (View(6), Seqno(41))];
        let ccf = ccf_view_history(&ours);
        assert_eq!(ccf, [1, 1, 1, 40, 41, 41, 41]);
        assert_eq!(from_ccf_view_history(&ccf), ours);
        assert!(ccf_view_history(&[]).is_empty());
    }
}
