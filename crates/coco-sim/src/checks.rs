//! The invariants, checked after every step and at the end of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use coco_types::{NodeId, Seqno, TxId, TxStatus, View};

use crate::cluster::SimNode;

/// Receipts verified per node at the end.
const RECEIPTS_PER_NODE: usize = 3;

#[derive(Default)]
pub(crate) struct Checker {
    /// The primary seen in each view.
    primaries: BTreeMap<View, NodeId>,
    /// Per node, the commit points it reported (seqno → view): they must never change.
    commits: BTreeMap<NodeId, BTreeMap<Seqno, View>>,
    /// Acknowledged transactions not yet seen Committed.
    pending: BTreeSet<TxId>,
    /// Transactions seen Committed somewhere.
    committed: BTreeSet<TxId>,
    /// The highest commit point any node reported.
    highest: Seqno,
}

impl Checker {
    pub(crate) fn committed_count(&self) -> usize {
        self.committed.len()
    }

    pub(crate) fn last_view(&self) -> u64 {
        self.primaries.keys().next_back().map_or(0, |view| view.0)
    }

    pub(crate) fn observe(
        &mut self,
        nodes: &[SimNode],
        acknowledged: &Mutex<Vec<TxId>>,
    ) -> Result<(), String> {
        self.pending.extend(acknowledged.lock().expect("never poisoned").drain(..));
        for node in nodes {
            let (Some(shared), Some(consensus)) = (&node.shared, &node.consensus) else {
                continue;
            };
            let status = consensus.status();
            if status.is_primary {
                let first = *self.primaries.entry(status.view).or_insert(node.id);
                if first != node.id {
                    return Err(format!(
                        "two primaries in view {}: {first} and {}",
                        status.view, node.id
                    ));
                }
            }
            let guard = shared.lock();
            let committed = guard.committed();
            self.highest = self.highest.max(committed.seqno);
            let seen = self.commits.entry(node.id).or_default();
            if committed.seqno.0 > 0 {
                seen.insert(committed.seqno, committed.view);
            }
            for (seqno, view) in seen.iter() {
                if guard.view_of(*seqno) != Some(*view) {
                    return Err(format!(
                        "node {} reported {view}.{seqno} committed, now holds {:?} there",
                        node.id,
                        guard.view_of(*seqno)
                    ));
                }
            }
            let newly: Vec<TxId> = self
                .pending
                .iter()
                .filter(|tx| guard.tx_status(**tx) == TxStatus::Committed)
                .copied()
                .collect();
            for tx in newly {
                self.pending.remove(&tx);
                self.committed.insert(tx);
            }
        }
        self.check_prefixes(nodes, false)?;
        check_log_matching(nodes)
    }

    /// Whether every node is up and has caught up with the highest commit point seen.
    pub(crate) fn caught_up(&self, nodes: &[SimNode]) -> bool {
        nodes.iter().all(|node| {
            node.shared
                .as_ref()
                .is_some_and(|shared| shared.lock().committed().seqno >= self.highest)
        })
    }

    /// Committed entries are byte-identical wherever two nodes both committed them: all of
    /// them at the end, the last few after each step.
    fn check_prefixes(&self, nodes: &[SimNode], all: bool) -> Result<(), String> {
        let up: Vec<&SimNode> = nodes.iter().filter(|node| node.shared.is_some()).collect();
        for (index, a) in up.iter().enumerate() {
            for b in &up[index + 1..] {
                let (Some(sa), Some(sb)) = (&a.shared, &b.shared) else { continue };
                let (na, nb) = (sa.lock(), sb.lock());
                let upto = na.committed().seqno.min(nb.committed().seqno).0;
                let from = if all { 1 } else { upto.saturating_sub(3).max(1) };
                // A node that installed a snapshot holds nothing before it.
                let from = from.max(na.first_held_seqno().0).max(nb.first_held_seqno().0);
                for seqno in from..=upto {
                    let (ea, eb) = (na.ledger_entry(Seqno(seqno)), nb.ledger_entry(Seqno(seqno)));
                    match (ea, eb) {
                        (Ok(ea), Ok(eb)) if ea == eb => {}
                        (ea, eb) => {
                            return Err(format!(
                                "committed entry {seqno} differs between {} and {}: {} / {}",
                                a.id,
                                b.id,
                                describe(&ea),
                                describe(&eb)
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Everything that must hold once the cluster healed; returns how many committed
    /// snapshot files it compared.
    pub(crate) fn final_checks(&self, nodes: &[SimNode]) -> Result<usize, String> {
        if !self.caught_up(nodes) {
            let states: Vec<String> = nodes.iter().map(describe_node).collect();
            return Err(format!(
                "the nodes did not catch up to {} after healing: {}",
                self.highest,
                states.join("; ")
            ));
        }
        self.check_prefixes(nodes, true)?;
        let snapshots = check_snapshots(nodes)?;
        for node in nodes {
            let shared = node.shared.as_ref().ok_or("a node is down at the end")?;
            let guard = shared.lock();
            for tx in &self.committed {
                if guard.tx_status(*tx) != TxStatus::Committed {
                    return Err(format!(
                        "{tx} was Committed but is {:?} on {}",
                        guard.tx_status(*tx),
                        node.id
                    ));
                }
            }
            let service = guard.service_cert_pem().to_owned();
            let held = self.committed.iter().filter(|tx| tx.seqno >= guard.first_held_seqno());
            for tx in held.rev().take(RECEIPTS_PER_NODE) {
                let receipt = guard.receipt(*tx).map_err(|e| format!("receipt of {tx}: {e}"))?;
                let bytes = serde_json::to_vec(&receipt).map_err(|e| e.to_string())?;
                coco_client::verify_receipt_bytes(&bytes, &service)
                    .map_err(|e| format!("receipt of {tx} on {} does not verify: {e}", node.id))?;
            }
        }
        Ok(snapshots)
    }
}

/// Committed snapshots with the same name are the same bytes on every node (state, secret
/// and TxId determine a snapshot; the evidence's receipt comes from the shared ledger).
fn check_snapshots(nodes: &[SimNode]) -> Result<usize, String> {
    let mut seen: BTreeMap<std::ffi::OsString, (NodeId, Vec<u8>)> = BTreeMap::new();
    for node in nodes {
        let dir = &node.config.storage.snapshots_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if !path.to_string_lossy().ends_with(".committed") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.file_name().unwrap_or_default().to_owned();
            match seen.get(&name) {
                Some((other, theirs)) if *theirs != bytes => {
                    return Err(format!("snapshot {name:?} differs on {} and {other}", node.id));
                }
                Some(_) => {}
                None => {
                    seen.insert(name, (node.id, bytes));
                }
            }
        }
    }
    Ok(seen.len())
}

/// Raft's log matching, on the last entries two nodes both hold: an entry with the same
/// TxId on both is the same entry, byte for byte (committed or not).
fn check_log_matching(nodes: &[SimNode]) -> Result<(), String> {
    let up: Vec<&SimNode> = nodes.iter().filter(|node| node.shared.is_some()).collect();
    for (index, a) in up.iter().enumerate() {
        for b in &up[index + 1..] {
            let (Some(sa), Some(sb)) = (&a.shared, &b.shared) else { continue };
            let (na, nb) = (sa.lock(), sb.lock());
            let last = na.last_seqno().min(nb.last_seqno()).0;
            let first = na.first_held_seqno().max(nb.first_held_seqno()).0;
            for seqno in last.saturating_sub(3).max(first)..=last {
                let seqno = Seqno(seqno);
                if na.view_of(seqno).is_some() && na.view_of(seqno) == nb.view_of(seqno) {
                    let (ea, eb) = (na.ledger_entry(seqno), nb.ledger_entry(seqno));
                    if ea.as_ref().ok() != eb.as_ref().ok() {
                        return Err(format!(
                            "entry {seqno} has the same view on {} and {} but differs",
                            a.id, b.id
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// One node's state, for a failure report.
fn describe_node(node: &SimNode) -> String {
    let (Some(shared), Some(consensus)) = (&node.shared, &node.consensus) else {
        return format!("{} down", node.id);
    };
    let status = consensus.status();
    let guard = shared.lock();
    format!(
        "{}: committed {} last {} view {} primary {:?} voters {:?}",
        node.id,
        guard.committed(),
        guard.last_seqno(),
        status.view,
        status.primary,
        status.membership.configs.iter().map(BTreeSet::len).collect::<Vec<_>>()
    )
}

fn describe(entry: &Result<Vec<u8>, coco_node::Error>) -> String {
    match entry {
        Ok(bytes) => format!("{} bytes", bytes.len()),
        Err(e) => e.to_string(),
    }
}
