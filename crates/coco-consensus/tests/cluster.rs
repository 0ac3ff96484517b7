//! Consensus between in-process nodes over an in-memory journal and transport: election,
//! replication, commit, failover, and truncation of a deposed primary's suffix.
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coco_consensus::{
    Committed, Consensus, ConsensusError, Flush, Journal, JournalEntry, JournalError,
    JournalPayload, JournalSnapshot, Peer, Rpc, Settings, Transport, TransportError, Vote,
};
use coco_types::{Digest, NodeId, Seqno, TxId};

const WAIT: Duration = Duration::from_secs(10);

/// A journal in memory (entry `i` at seqno `i`, seqno 0 being the initial configuration):
/// a local transaction's "execution" seals the ticket's data.
#[derive(Default)]
struct MemJournal {
    state: Mutex<JournalState>,
    tickets: Mutex<BTreeMap<u64, Vec<u8>>>,
}

#[derive(Default)]
struct JournalState {
    entries: Vec<(TxId, JournalPayload)>,
    vote: Option<Vote>,
    committed: Option<TxId>,
    truncated: u64,
}

impl MemJournal {
    fn sealed(&self) -> Vec<(TxId, JournalPayload)> {
        self.state.lock().unwrap().entries.clone()
    }

    fn committed_entries(&self) -> Vec<(TxId, JournalPayload)> {
        let state = self.state.lock().unwrap();
        let upto = state.committed.map_or(0, |tx| tx.seqno.0);
        state.entries.iter().filter(|(tx, _)| tx.seqno.0 <= upto).cloned().collect()
    }
}

impl Journal for MemJournal {
    fn append(&self, entries: Vec<JournalEntry>) -> Result<Flush, JournalError> {
        let mut state = self.state.lock().unwrap();
        for entry in entries {
            let next = state.entries.len() as u64;
            assert_eq!(entry.tx.seqno, Seqno(next), "entries are appended in order");
            let payload = match entry.payload {
                JournalPayload::Local(ticket) => {
                    let data = self.tickets.lock().unwrap().remove(&ticket);
                    JournalPayload::Sealed(data.ok_or_else(|| JournalError::new("ticket", ticket))?)
                }
                JournalPayload::Blank => JournalPayload::Sealed(Vec::new()),
                other @ (JournalPayload::Sealed(_) | JournalPayload::Membership(_)) => other,
            };
            state.entries.push((entry.tx, payload));
        }
        Ok(Box::new(|| Ok(())))
    }

    fn truncate(&self, from: Seqno) -> Result<(), JournalError> {
        let mut state = self.state.lock().unwrap();
        assert!(state.committed.is_none_or(|c| c.seqno < from), "never truncate committed");
        let keep = usize::try_from(from.0).unwrap();
        if state.entries.len() > keep {
            state.entries.truncate(keep);
            state.truncated += 1;
        }
        Ok(())
    }

    fn purge(&self, _upto: TxId) -> Result<(), JournalError> {
        Ok(())
    }

    fn read(&self, from: Seqno, to: Seqno) -> Result<Vec<JournalEntry>, JournalError> {
        let state = self.state.lock().unwrap();
        let range = usize::try_from(from.0).unwrap()..usize::try_from(to.0).unwrap();
        let entries = state.entries.get(range).ok_or_else(|| JournalError::new("read", "range"))?;
        Ok(entries
            .iter()
            .map(|(tx, payload)| JournalEntry { tx: *tx, payload: payload.clone() })
            .collect())
    }

    fn bounds(&self) -> Result<(Option<TxId>, Option<TxId>), JournalError> {
        Ok((None, self.state.lock().unwrap().entries.last().map(|(tx, _)| *tx)))
    }

    fn save_vote(&self, vote: &Vote) -> Result<(), JournalError> {
        self.state.lock().unwrap().vote = Some(*vote);
        Ok(())
    }

    fn read_vote(&self) -> Result<Option<Vote>, JournalError> {
        Ok(self.state.lock().unwrap().vote)
    }

    fn commit(&self, upto: TxId) -> Result<(), JournalError> {
        let mut state = self.state.lock().unwrap();
        assert!(state.committed.is_none_or(|c| c.seqno <= upto.seqno), "commit only advances");
        assert!(upto.seqno.0 < state.entries.len() as u64, "commit within the log");
        state.committed = Some(upto);
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<JournalSnapshot>, JournalError> {
        // This journal never purges, so consensus never needs a snapshot.
        Ok(None)
    }

    fn install_snapshot(&self, at: TxId, _bytes: Vec<u8>) -> Result<(), JournalError> {
        Err(JournalError::new("installing a snapshot", format!("{at}: this journal never purges")))
    }

    fn committed(&self) -> Result<Committed, JournalError> {
        let state = self.state.lock().unwrap();
        let committed = |tx: &TxId| state.committed.is_some_and(|c| tx.seqno <= c.seqno);
        let membership = state.entries.iter().rev().find_map(|(tx, payload)| {
            if let JournalPayload::Membership(m) = payload
                && committed(tx)
            {
                return Some((*tx, m.clone()));
            }
            None
        });
        Ok(Committed { upto: state.committed, membership })
    }
}

/// The in-process network: who is up, and which links are cut.
#[derive(Default)]
struct Net {
    nodes: Mutex<BTreeMap<NodeId, Consensus>>,
    cut: Mutex<BTreeSet<(NodeId, NodeId)>>,
}

struct LocalTransport {
    from: NodeId,
    net: Arc<Net>,
}

impl Transport for LocalTransport {
    async fn call(
        &self,
        target: NodeId,
        _peer: &Peer,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let unreachable = || TransportError::Unreachable { node: target, reason: "cut".into() };
        if self.net.cut.lock().unwrap().contains(&(self.from, target)) {
            return Err(unreachable());
        }
        let node = self.net.nodes.lock().unwrap().get(&target).cloned().ok_or_else(unreachable)?;
        node.handle(rpc, &body)
            .await
            .map_err(|reason| TransportError::Failed { node: target, reason })
    }
}

struct Cluster {
    net: Arc<Net>,
    journals: BTreeMap<NodeId, Arc<MemJournal>>,
    next_ticket: AtomicU64,
}

fn node_id(n: u8) -> NodeId {
    NodeId(Digest([n; 32]))
}

fn peer(n: u8) -> Peer {
    Peer { address: format!("node{n}") }
}

impl Cluster {
    async fn start(count: u8) -> Self {
        let net = Arc::new(Net::default());
        let settings =
            Settings { heartbeat_ms: 20, election_timeout_ms: (100, 200), ..Settings::default() };
        let mut journals = BTreeMap::new();
        for n in 1..=count {
            let journal = Arc::new(MemJournal::default());
            let transport = Arc::new(LocalTransport { from: node_id(n), net: net.clone() });
            let consensus =
                Consensus::start(node_id(n), &settings, journal.clone(), transport).await.unwrap();
            net.nodes.lock().unwrap().insert(node_id(n), consensus);
            journals.insert(node_id(n), journal);
        }
        let voters = (1..=count).map(|n| (node_id(n), peer(n))).collect();
        let first = net.nodes.lock().unwrap()[&node_id(1)].clone();
        first.initialize(voters).await.unwrap();
        Self { net, journals, next_ticket: AtomicU64::new(1) }
    }

    fn node(&self, id: NodeId) -> Consensus {
        self.net.nodes.lock().unwrap()[&id].clone()
    }

    async fn primary(&self, among: &[NodeId]) -> NodeId {
        let status = self
            .node(among[0])
            .wait_until(WAIT, |s| s.primary.is_some_and(|p| among.contains(&p)))
            .await
            .unwrap();
        let primary = status.primary.unwrap();
        self.node(primary).wait_until(WAIT, |s| s.is_primary).await.unwrap();
        primary
    }

    /// Proposes `data` on `on`; the outcome once consensus decides.
    async fn propose(&self, on: NodeId, data: &[u8]) -> Result<TxId, ConsensusError> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.journals[&on].tickets.lock().unwrap().insert(ticket, data.to_vec());
        self.node(on).propose(ticket).await?.committed().await
    }

    fn isolate(&self, id: NodeId) {
        let mut cut = self.net.cut.lock().unwrap();
        for other in self.journals.keys().filter(|other| **other != id) {
            cut.insert((id, *other));
            cut.insert((*other, id));
        }
    }

    fn heal(&self) {
        self.net.cut.lock().unwrap().clear();
    }

    async fn wait_caught_up(&self, ids: &[NodeId], upto: TxId) {
        for id in ids {
            let reached =
                |s: &coco_consensus::Status| s.committed.is_some_and(|c| c.seqno >= upto.seqno);
            self.node(*id).wait_until(WAIT, reached).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_commit_identical_logs() {
    let cluster = Cluster::start(3).await;
    let all: Vec<NodeId> = (1..=3).map(node_id).collect();
    let primary = cluster.primary(&all).await;
    let mut last = TxId::default();
    for i in 0..50u32 {
        last = cluster.propose(primary, &i.to_le_bytes()).await.unwrap();
    }
    cluster.wait_caught_up(&all, last).await;
    let reference = cluster.journals[&primary].committed_entries();
    assert!(reference.len() >= 52, "membership, blank and 50 transactions");
    for id in &all {
        assert_eq!(cluster.journals[id].committed_entries(), reference, "node {id} diverges");
    }
    let backup = *all.iter().find(|id| **id != primary).unwrap();
    let refused = cluster.propose(backup, b"on a backup").await;
    assert!(
        matches!(refused, Err(ConsensusError::NotPrimary { primary: Some(p), .. }) if p == primary)
    );
    let status = cluster.node(primary).status();
    assert_eq!(status.membership.configs, vec![all.iter().copied().collect::<BTreeSet<_>>()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_primary_loses_its_uncommitted_suffix_and_catches_up() {
    let cluster = Cluster::start(3).await;
    let all: Vec<NodeId> = (1..=3).map(node_id).collect();
    let old = cluster.primary(&all).await;
    let committed = cluster.propose(old, b"before").await.unwrap();
    cluster.wait_caught_up(&all, committed).await;
    let old_view = cluster.node(old).status().view;

    // Cut off, the old primary appends a write it can never commit.
    cluster.isolate(old);
    let orphan = {
        let ticket = cluster.next_ticket.fetch_add(1, Ordering::Relaxed);
        cluster.journals[&old].tickets.lock().unwrap().insert(ticket, b"orphan".to_vec());
        cluster.node(old).propose(ticket).await.unwrap()
    };
    let rest: Vec<NodeId> = all.iter().copied().filter(|id| *id != old).collect();
    let new = cluster.primary(&rest).await;
    assert_ne!(new, old);
    let status = cluster.node(new).status();
    assert!(status.view > old_view, "a new primary is in a later view");
    let mut last = committed;
    for i in 0..10u32 {
        last = cluster.propose(new, &i.to_le_bytes()).await.unwrap();
    }

    cluster.heal();
    cluster.wait_caught_up(&all, last).await;
    assert!(orphan.committed().await.is_err(), "the orphan is never committed");
    assert!(cluster.journals[&old].state.lock().unwrap().truncated > 0, "the suffix was truncated");
    let reference = cluster.journals[&new].sealed();
    let old_log = cluster.journals[&old].sealed();
    assert_eq!(
        old_log[..reference.len().min(old_log.len())],
        reference[..reference.len().min(old_log.len())]
    );
    assert!(!old_log.iter().any(|(_, p)| *p == JournalPayload::Sealed(b"orphan".to_vec())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_off_for_long_does_not_depose_the_primary_when_it_returns() {
    let cluster = Cluster::start(3).await;
    let all: Vec<NodeId> = (1..=3).map(node_id).collect();
    let primary = cluster.primary(&all).await;
    let committed = cluster.propose(primary, b"before").await.unwrap();
    cluster.wait_caught_up(&all, committed).await;
    let view = cluster.node(primary).status().view;
    let backup = *all.iter().find(|id| **id != primary).unwrap();

    // Many election timeouts alone: without pre-vote it would stand again and again,
    // raising its view, and its first answer after healing would depose the primary.
    cluster.isolate(backup);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cluster.node(backup).status().view, view, "the cut-off backup kept its view");
    cluster.heal();
    let last = cluster.propose(primary, b"after").await.unwrap();
    cluster.wait_caught_up(&all, last).await;
    let status = cluster.node(primary).status();
    assert!(status.is_primary, "the primary kept its role");
    assert_eq!(status.view, view, "and its view");
}
