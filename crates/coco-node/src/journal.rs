//! The node as consensus's journal: its ledger is the Raft log.
//!
//! On the primary, work waits under a ticket until consensus appends the ticket at a seqno;
//! the work then runs under the node lock and orders its transaction exactly there
//! (optimistic concurrency is checked at that moment, so a conflict leaves an empty entry
//! and the client retries). On a backup, the primary's sealed bytes are checked (commit
//! evidence, seqno, view), applied to the KV and appended unchanged, so committed chunks
//! are byte-identical everywhere. Truncation rolls all of it back; consensus's commit point
//! bounds the node's (a signature must also be durable and committed).
//!
//! Beside the ledger, the state directory holds the node's vote and the configuration at
//! seqno 0 (Raft's first entry, which is not a ledger entry).

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use coco_consensus::{
    Committed, Flush, Journal, JournalEntry, JournalError, JournalPayload, JournalSnapshot,
    Membership, SnapshotAt, Vote,
};
use coco_ledger::PendingSync;
use coco_types::{Seqno, TxId, View};

use crate::error::{Error, Result};
use crate::identity::write_private;
use crate::node::snapshot::SnapshotJob;
use crate::node::{Node, Work, replay};
use crate::published::{Board, Published};
use crate::work_queue::WorkQueue;

/// The vote, JSON.
const VOTE_FILE: &str = "consensus_vote.json";
/// The configuration at seqno 0, JSON.
const INITIAL_MEMBERSHIP_FILE: &str = "consensus_membership.json";
/// Reads of the newest snapshot that may find it replaced by a newer one before giving up.
const SNAPSHOT_READ_ATTEMPTS: u32 = 3;
/// The last committed seqno this node saw, a hint for restarts (never above the truth).
const COMMIT_MARKER_FILE: &str = "committed_seqno";

/// Called with the new commit point whenever it advances.
pub type OnCommit = Arc<dyn Fn(TxId) + Send + Sync>;

/// The node behind its lock, shared by the host and consensus.
#[derive(Clone)]
pub struct SharedNode {
    node: Arc<Mutex<Node>>,
    /// The seqno of the first signature above the commit point (`u64::MAX`: none yet),
    /// published whenever the lock is released. Only a signature moves the commit point,
    /// so consensus's commit notifications below it skip the lock: one arrives per entry,
    /// and each one waiting for the lock while an entry executes held a worker thread.
    next_signature: Arc<AtomicU64>,
    /// What requests read without the lock, posted by each release of it ([`Published`]).
    board: Arc<Board>,
    /// The node's work queue, which has a lock of its own.
    queue: Arc<WorkQueue>,
    pending_txs_max: u64,
    on_commit: OnCommit,
    /// The sync thread's queue; `None` syncs inline (deterministic, for the simulator).
    syncer: Option<mpsc::Sender<PendingSync>>,
}

/// The node, locked. Releasing it publishes the first signature above the commit point
/// ([`SharedNode`]'s `next_signature`): every change to signatures or to the commit
/// point happens under the lock, so the published value is never above the truth once
/// the holder is gone. It also leaves the node's [`Published`] facts behind.
pub struct NodeGuard<'a> {
    node: MutexGuard<'a, Node>,
    next_signature: &'a AtomicU64,
    board: &'a Board,
}

impl Deref for NodeGuard<'_> {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

impl DerefMut for NodeGuard<'_> {
    fn deref_mut(&mut self) -> &mut Node {
        &mut self.node
    }
}

impl Drop for NodeGuard<'_> {
    fn drop(&mut self) {
        let above = self.node.committed.seqno.next();
        let next = self.node.signatures.range(above..).next().map_or(u64::MAX, |(s, _)| s.0);
        self.next_signature.store(next, Ordering::Release);
        self.board.post(&self.node);
    }
}

impl SharedNode {
    /// Shares `node`; `on_commit` hears of every advance of the commit point. Starts the
    /// thread that makes the ledger durable (group commit: each `fdatasync` covers every
    /// entry written before it).
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    #[must_use]
    pub fn new(mut node: Node, on_commit: OnCommit) -> Self {
        let (writer, snapshot_jobs) = mpsc::channel::<SnapshotJob>();
        node.snapshot_writer = Some(writer);
        let (syncer, jobs) = mpsc::channel::<PendingSync>();
        let shared = Self { syncer: Some(syncer), ..Self::new_synchronous(node, on_commit) };
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("coco-ledger-sync".into())
            .spawn(move || worker.sync_loop(&jobs))
            .expect("the ledger sync thread starts");
        // Snapshots take O(state) to write: off the node lock, on a thread of their own.
        // It ends when the node (and with it the queue's sender) is dropped.
        let weak = Arc::downgrade(&shared.node);
        std::thread::Builder::new()
            .name("coco-snapshots".into())
            .spawn(move || snapshot_loop(&weak, &snapshot_jobs))
            .expect("the snapshot thread starts");
        shared
    }

    /// Shares `node` with durability inline: each append `fdatasync`s before consensus
    /// continues. Slower, but with no thread of its own a run is a function of its inputs,
    /// which the fault simulator needs.
    #[must_use]
    pub fn new_synchronous(node: Node, on_commit: OnCommit) -> Self {
        let node = under_consensus(node);
        let shared = Self {
            board: Arc::new(Board::new(&node)),
            queue: node.queue.clone(),
            pending_txs_max: node.limits.pending_txs_max,
            node: Arc::new(Mutex::new(node)),
            next_signature: Arc::new(AtomicU64::new(0)),
            on_commit,
            syncer: None,
        };
        drop(shared.lock()); // publishes next_signature
        shared
    }

    /// Locks the node. A poisoned lock means a mutation panicked, which breaks the node's
    /// invariants: crashing is the only safe answer.
    ///
    /// # Panics
    /// If a previous holder panicked.
    pub fn lock(&self) -> NodeGuard<'_> {
        let node = self.node.lock().expect("node lock poisoned: a mutation panicked");
        NodeGuard { node, next_signature: &self.next_signature, board: &self.board }
    }

    /// Queues `work` for a seqno without the node lock (see [`SharedNode::submit_all`]).
    ///
    /// # Errors
    /// [`Error::Backpressure`] when too many transactions wait for a signature or a seqno.
    pub fn submit(&self, work: Work) -> Result<u64> {
        self.queue.push_one_bounded(work, self.board.uncommitted(), self.pending_txs_max)
    }

    /// Queues each of `works` for a seqno, in order, without the node lock; returns their
    /// tickets, for [`coco_consensus::Consensus::propose`]. Past the backpressure bound
    /// (transactions waiting for a signature or a seqno, as of the last release of the
    /// node lock) the rest are refused.
    ///
    /// # Errors
    /// Each refused work's [`Error::Backpressure`].
    pub fn submit_all(&self, works: impl IntoIterator<Item = Work>) -> Vec<Result<u64>> {
        self.queue.push_bounded(works, self.board.uncommitted(), self.pending_txs_max)
    }

    /// The node's state and facts as the last release of its lock left them, without
    /// waiting for the lock.
    #[must_use]
    pub fn published(&self) -> Published {
        self.board.read()
    }

    /// Makes appended entries durable now (one fsync for everything appended so far,
    /// outside the lock), then advances the commit point.
    ///
    /// # Errors
    /// Ledger failures.
    pub fn flush(&self) -> Result<TxId> {
        let pending = self.lock().begin_flush()?;
        match pending {
            Some(pending) => self.complete(pending.sync()?),
            None => self.complete(Seqno(0)),
        }
    }

    fn complete(&self, durable: Seqno) -> Result<TxId> {
        let (before, after) = {
            let mut node = self.lock();
            let before = node.committed();
            let durable = durable.max(node.durable);
            (before, node.complete_flush(durable)?)
        };
        if after.seqno > before.seqno {
            (self.on_commit)(after);
        }
        Ok(after)
    }

    /// The newest committed snapshot: where it is and its file.
    fn newest_snapshot(&self) -> Result<Option<(SnapshotAt, PathBuf)>, JournalError> {
        let node = self.lock();
        let newest = node.snapshots.committed().map_err(|e| JournalError::new("listing", e))?;
        let Some(newest) = newest.last() else { return Ok(None) };
        let Some(view) = node.view_of(newest.seqno) else { return Ok(None) };
        let at = SnapshotAt {
            tx: TxId { view, seqno: newest.seqno },
            membership: node.membership_at(newest.seqno),
        };
        Ok(Some((at, newest.path.clone())))
    }

    /// Syncs what [`Journal::append`] wrote, in order, coalescing a backlog.
    fn sync_loop(&self, jobs: &mpsc::Receiver<PendingSync>) {
        while let Ok(first) = jobs.recv() {
            // Everything queued meanwhile is covered by one sync (group commit).
            let job = jobs.try_iter().fold(first, PendingSync::merge);
            let durable = match job.sync() {
                Ok(synced) => synced,
                Err(e) => {
                    // Durability is unknown: the node must stop rather than commit.
                    tracing::error!(error = %e, "ledger fsync failed: stopping the node");
                    std::process::abort();
                }
            };
            if let Err(e) = self.complete(durable) {
                tracing::error!(error = %e, "ledger commit failed: stopping the node");
                std::process::abort();
            }
        }
    }
}

/// Writes each snapshot job, then hands the result back to the node. The thread keeps
/// one buffer (the size of the state) for all snapshots: a fresh one each time cost more
/// in zeroed pages than the encoding itself.
fn snapshot_loop(node: &std::sync::Weak<Mutex<Node>>, jobs: &mpsc::Receiver<SnapshotJob>) {
    let mut buffer = Vec::new();
    while let Ok(job) = jobs.recv() {
        let seqno = job.seqno();
        let written = job.run(&mut buffer);
        let Some(node) = node.upgrade() else { return };
        node.lock()
            .expect("node lock poisoned: a mutation panicked")
            .snapshot_written(seqno, written);
    }
}

/// From now on consensus decides what is committed: a signature that is durable here
/// but not yet committed by consensus (after a restart, say) must not count.
fn under_consensus(mut node: Node) -> Node {
    node.consensus_committed = Some(node.committed.seqno);
    node.ledger.chunk_by_flags_only();
    node
}

fn journal_error(what: &str) -> impl FnOnce(Error) -> JournalError + '_ {
    move |e| JournalError::new(what, e)
}

impl Journal for SharedNode {
    /// Entries are handed to the OS before this returns (a process crash keeps them); the
    /// `fdatasync` runs on the sync thread, and the commit point waits for it. Only a
    /// signature moves the commit point, so entries are synced only once a signature not
    /// yet durable is among them: one sync per signature (two under load) rather than one
    /// per append, and the sync thread is not woken for every transaction.
    fn append(&self, entries: Vec<JournalEntry>) -> Result<Flush, JournalError> {
        let pending = {
            let mut node = self.lock();
            for entry in entries {
                node.append_entry(entry).map_err(journal_error("appending"))?;
            }
            if !node.signature_awaits_sync() {
                node.ledger.write_buffered().map_err(|e| JournalError::new("writing", e))?;
                return Ok(Box::new(|| Ok(())));
            }
            node.ledger.begin_flush().map_err(|e| JournalError::new("writing", e))?
        };
        match self.syncer.clone() {
            Some(syncer) => Ok(Box::new(move || {
                syncer
                    .send(pending)
                    .map_err(|_| JournalError::new("syncing", "the sync thread stopped"))
            })),
            None => {
                let shared = self.clone();
                Ok(Box::new(move || {
                    let durable = pending.sync().map_err(|e| JournalError::new("syncing", e))?;
                    shared.complete(durable).map(drop).map_err(journal_error("committing"))
                }))
            }
        }
    }

    fn truncate(&self, from: Seqno) -> Result<(), JournalError> {
        self.lock().truncate_from(from).map_err(journal_error("truncating"))
    }

    fn purge(&self, upto: TxId) -> Result<(), JournalError> {
        // The chunks stay (they are the ledger, for audit); consensus just stops reading
        // and sending what a committed snapshot covers.
        let mut node = self.lock();
        if node.purged.is_none_or(|purged| purged.seqno < upto.seqno) {
            node.purged = Some(upto);
        }
        Ok(())
    }

    fn read(&self, from: Seqno, to: Seqno) -> Result<Vec<JournalEntry>, JournalError> {
        self.lock().read_entries(from, to, true).map_err(journal_error("reading"))
    }

    fn read_positions(&self, from: Seqno, to: Seqno) -> Result<Vec<JournalEntry>, JournalError> {
        self.lock().read_entries(from, to, false).map_err(journal_error("reading"))
    }

    fn bounds(&self) -> Result<(Option<TxId>, Option<TxId>), JournalError> {
        let node = self.lock();
        let last = node.last_seqno();
        let last = match node.view_of(last) {
            Some(view) => Some(TxId { view, seqno: last }),
            None => node.memberships.contains_key(&Seqno(0)).then(TxId::default),
        };
        let purged = match (node.starts_after, node.purged) {
            (Some(start), Some(purged)) if purged.seqno > start.seqno => Some(purged),
            (start, purged) => start.or(purged),
        };
        Ok((purged, last))
    }

    fn save_vote(&self, vote: &Vote) -> Result<(), JournalError> {
        let node = self.lock();
        let json = serde_json::to_string(vote).expect("a vote serialises");
        write_private(&node.identity.state_dir.join(VOTE_FILE), &json)
            .map_err(journal_error("saving the vote"))
    }

    fn read_vote(&self) -> Result<Option<Vote>, JournalError> {
        let path = self.lock().identity.state_dir.join(VOTE_FILE);
        let vote: Option<Vote> = read_json(&path).map_err(journal_error("reading the vote"))?;
        // A restarted node never resumes as primary of its old view: entries it had
        // acknowledged but not made durable may be gone, and their TxIds must not be
        // reused. Reading the vote as not granted makes it win a new view first (what it
        // voted for stays binding, so Raft's safety is unchanged).
        Ok(vote.map(|vote| Vote { committed: false, ..vote }))
    }

    fn commit(&self, upto: TxId) -> Result<(), JournalError> {
        if upto.seqno.0 < self.next_signature.load(Ordering::Acquire) {
            // No signature in (commit point, upto]: the commit point stays. Consensus only
            // commits appended entries, and appending a signature published it first.
            return Ok(());
        }
        let (before, after) = {
            let mut node = self.lock();
            let before = node.committed();
            node.consensus_committed =
                Some(node.consensus_committed.unwrap_or_default().max(upto.seqno));
            (before, node.advance_commit().map_err(journal_error("committing"))?)
        };
        if after.seqno > before.seqno {
            (self.on_commit)(after);
        }
        Ok(())
    }

    /// The file is read without the node lock (it can be the size of the state); one
    /// pruned meanwhile (a newer snapshot committed) sends the reader to the newer one.
    fn snapshot(&self) -> Result<Option<JournalSnapshot>, JournalError> {
        for _ in 0..SNAPSHOT_READ_ATTEMPTS {
            let Some((at, path)) = self.newest_snapshot()? else { return Ok(None) };
            match std::fs::read(&path) {
                Ok(bytes) => return Ok(Some(JournalSnapshot { at, bytes })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::new(format!("reading {}", path.display()), e)),
            }
        }
        Err(JournalError::new("reading the newest snapshot", "snapshots keep being replaced"))
    }

    fn snapshot_at(&self) -> Result<Option<SnapshotAt>, JournalError> {
        Ok(self.newest_snapshot()?.map(|(at, _)| at))
    }

    fn install_snapshot(&self, at: TxId, bytes: Vec<u8>) -> Result<(), JournalError> {
        let (before, after) = {
            let mut node = self.lock();
            let before = node.committed();
            node.install_snapshot(at, &bytes).map_err(journal_error("installing a snapshot"))?;
            (before, node.committed())
        };
        if after.seqno > before.seqno {
            (self.on_commit)(after);
        }
        Ok(())
    }

    fn committed(&self) -> Result<Committed, JournalError> {
        let node = self.lock();
        let committed = node.committed();
        let upto = (committed.seqno.0 > 0).then_some(committed);
        let membership = node.membership_at(committed.seqno);
        Ok(Committed { upto: upto.or(membership.as_ref().map(|(tx, _)| *tx)), membership })
    }
}

impl Node {
    /// Queues `work` for a seqno; returns its ticket, for [`coco_consensus::Consensus::propose`].
    ///
    /// # Errors
    /// [`Error::Backpressure`] when too many transactions wait for a signature or a seqno.
    pub fn submit(&mut self, work: Work) -> Result<u64> {
        let uncommitted = self.last_seqno().0 - self.committed.seqno.0;
        self.queue.push_one_bounded(work, uncommitted, self.limits.pending_txs_max)
    }

    /// Queues `work` past the backpressure bound: for signatures, which are what lets
    /// pending transactions commit.
    pub(crate) fn submit_unlimited(&mut self, work: Work) -> u64 {
        self.queue.push_unbounded(work)
    }

    /// Drops the work of a ticket consensus will never append (this node is not primary).
    pub fn forget(&mut self, ticket: u64) {
        drop(self.queue.take(ticket));
        if self.signature_queued == Some(ticket) {
            self.signature_queued = None;
        }
        // Which ticket held the evidence is not kept: a forgotten one is queued again.
        self.evidence_queued = false;
    }

    fn append_entry(&mut self, entry: JournalEntry) -> Result<()> {
        let JournalEntry { tx, payload } = entry;
        if tx.seqno == Seqno(0) {
            let JournalPayload::Membership(membership) = payload else {
                return Err(corrupt("seqno 0 must be the initial configuration"));
            };
            return self.save_initial_membership(membership);
        }
        if tx.seqno != self.last_seqno().next() {
            return Err(corrupt(&format!("entry {tx} does not follow {}", self.last_seqno())));
        }
        match payload {
            JournalPayload::Local(ticket) => {
                let work = self.queue.take(ticket).ok_or_else(|| {
                    corrupt(&format!("ticket {ticket} is unknown: it was never submitted here"))
                })?;
                self.view = tx.view;
                work(self, tx);
                if self.last_seqno() < tx.seqno {
                    self.seal_empty()?;
                }
            }
            JournalPayload::Blank => {
                self.view = tx.view;
                self.seal_empty()?;
            }
            JournalPayload::Membership(membership) => {
                self.view = tx.view;
                self.seal_membership(&membership)?;
            }
            JournalPayload::Sealed(raw) => self.apply_sealed(tx, &raw)?,
        }
        assert_eq!(self.last_seqno(), tx.seqno, "each entry orders exactly one seqno");
        Ok(())
    }

    /// A backup appends the primary's entry: checked, applied, stored unchanged.
    fn apply_sealed(&mut self, tx: TxId, raw: &[u8]) -> Result<()> {
        let read = replay::read_entry(&self.identity.ledger_secrets, tx.seqno, raw)?;
        if read.view != tx.view {
            return Err(corrupt(&format!("entry {tx} is sealed in view {}", read.view)));
        }
        self.view = tx.view;
        replay::apply_read_entry(self, tx.seqno, read, raw)
    }

    /// Rolls back every entry at and after `from` (consensus truncates an uncommitted
    /// suffix a new primary does not have).
    pub(crate) fn truncate_from(&mut self, from: Seqno) -> Result<()> {
        let to = Seqno(from.0.saturating_sub(1));
        if to >= self.last_seqno() {
            return Ok(());
        }
        assert!(to >= self.committed.seqno, "consensus never truncates committed entries");
        tracing::warn!(from = from.0, to = self.last_seqno().0, "rolling back a truncated suffix");
        self.kv.rollback(to)?;
        self.ledger.truncate(to)?;
        self.tree.truncate(to.0 + 1)?;
        self.signatures.retain(|seqno, _| *seqno <= to);
        self.view_history.retain(|(_, first)| *first <= to);
        self.memberships.retain(|seqno, _| *seqno <= to);
        self.durable = self.durable.min(to);
        self.txs_since_signature = 0;
        self.roll_back_snapshots(from);
        self.check_invariants();
        Ok(())
    }

    /// The entries at `from..to`; without `sealed`, entries other than configurations
    /// come back blank (positions only, see [`Journal::read_positions`]).
    fn read_entries(&self, from: Seqno, to: Seqno, sealed: bool) -> Result<Vec<JournalEntry>> {
        // What consensus purged is still in the ledger (purging only stops replication),
        // and a replication read may race with the purge: serve it. Only entries before
        // the snapshot this node started from are not held.
        if let Some(start) = self.starts_after
            && from <= start.seqno
        {
            return Err(Error::UnknownSeqno(from));
        }
        let mut entries = Vec::new();
        for seqno in from.0..to.0 {
            let seqno = Seqno(seqno);
            let view = if seqno == Seqno(0) {
                View(0)
            } else {
                self.view_of(seqno).ok_or(Error::UnknownSeqno(seqno))?
            };
            let payload = match self.memberships.get(&seqno) {
                Some(membership) => JournalPayload::Membership(membership.clone()),
                None if sealed => JournalPayload::Sealed(self.ledger.read_entry(seqno)?),
                None => JournalPayload::Blank,
            };
            entries.push(JournalEntry { tx: TxId { view, seqno }, payload });
        }
        Ok(entries)
    }

    /// The last configuration recorded at or before `seqno`, and where.
    fn membership_at(&self, seqno: Seqno) -> Option<(TxId, Membership)> {
        self.memberships.range(..=seqno).next_back().map(|(seqno, membership)| {
            let view = self.view_of(*seqno).unwrap_or_default();
            (TxId { view, seqno: *seqno }, membership.clone())
        })
    }

    fn save_initial_membership(&mut self, membership: Membership) -> Result<()> {
        let json = serde_json::to_string(&membership).expect("a configuration serialises");
        write_private(&self.identity.state_dir.join(INITIAL_MEMBERSHIP_FILE), &json)?;
        self.memberships.insert(Seqno(0), membership);
        Ok(())
    }

    /// Records the commit point for the next start. Written by rename without an fsync: a
    /// crash may leave an older value (or none), never a later one, which is safe — the
    /// node then learns the rest from consensus again.
    pub(crate) fn save_commit_marker(&self) {
        let path = self.identity.state_dir.join(COMMIT_MARKER_FILE);
        let tmp = path.with_extension("tmp");
        let write = std::fs::write(&tmp, self.committed.seqno.0.to_string())
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = write {
            tracing::warn!(error = %e, path = %path.display(), "cannot record the commit point");
        }
    }

    /// The commit point recorded by [`Self::save_commit_marker`] (0 if none or unreadable).
    pub(crate) fn read_commit_marker(&self) -> Seqno {
        let path = self.identity.state_dir.join(COMMIT_MARKER_FILE);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Seqno(text.trim().parse().unwrap_or(0))
    }

    /// Loads the configuration at seqno 0, if this node has one.
    pub(crate) fn load_initial_membership(&mut self) -> Result<()> {
        let path = self.identity.state_dir.join(INITIAL_MEMBERSHIP_FILE);
        if let Some(membership) = read_json(&path)? {
            self.memberships.insert(Seqno(0), membership);
        }
        Ok(())
    }

    /// Starts consensus state for a service this node creates alone: it is the only voter,
    /// and it was the primary of the view its first entries were written in.
    pub(crate) fn bootstrap_consensus(&mut self, address: &str) -> Result<()> {
        let id = self.identity.node_id;
        let peer = coco_consensus::Peer { address: address.to_owned() };
        let membership = Membership {
            configs: vec![std::iter::once(id).collect()],
            nodes: std::iter::once((id, peer)).collect(),
        };
        self.save_initial_membership(membership)?;
        let vote = Vote { view: self.view, node: Some(id), committed: true };
        let json = serde_json::to_string(&vote).expect("a vote serialises");
        write_private(&self.identity.state_dir.join(VOTE_FILE), &json)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt { what: "consensus entry".to_owned(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coco_consensus::{Journal, JournalEntry, JournalPayload};
    use coco_kv::MapName;
    use coco_types::TxId;

    use super::SharedNode;
    use crate::error::Error;
    use crate::node::tests::{NOW_MS, config};
    use crate::node::{Commit, Node};

    /// Appends the work of `tickets` at the next seqnos, durably; returns the last TxId.
    fn append(shared: &SharedNode, tickets: &[u64]) -> TxId {
        for ticket in tickets {
            let tx = {
                let node = shared.lock();
                TxId { view: node.view(), seqno: node.last_seqno().next() }
            };
            let entry = JournalEntry { tx, payload: JournalPayload::Local(*ticket) };
            shared.append(vec![entry]).unwrap()().unwrap();
        }
        let node = shared.lock();
        TxId { view: node.view(), seqno: node.last_seqno() }
    }

    fn write(shared: &SharedNode) -> TxId {
        let ticket = shared.lock().submit(Box::new(|node: &mut Node, _at| {
            let mut tx = node.begin().unwrap();
            tx.put(&MapName::new("records").unwrap(), b"key", b"value");
            assert!(matches!(node.commit(tx).unwrap(), Commit::Ordered(_)));
        }));
        append(shared, &[ticket.unwrap()])
    }

    fn sign(shared: &SharedNode) -> TxId {
        let tickets = shared.lock().queue_signature(NOW_MS).unwrap();
        append(shared, &tickets)
    }

    #[test]
    fn the_commit_point_moves_when_consensus_commits_a_signature_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(&config(dir.path()), NOW_MS).unwrap();
        let shared = SharedNode::new_synchronous(node, Arc::new(|_| {}));
        let start = shared.lock().committed();

        let written = write(&shared);
        shared.commit(written).unwrap();
        assert_eq!(shared.lock().committed(), start, "no signature covers the write yet");
        let signed = sign(&shared);
        shared.commit(written).unwrap();
        assert_eq!(shared.lock().committed(), start, "the signature is not committed");
        shared.commit(signed).unwrap();
        assert_eq!(shared.lock().committed(), signed);

        // A signature rolled back, and a write appended in its place: committing the write
        // moves nothing; the signature appended after it does.
        let written = write(&shared);
        let rolled_back = sign(&shared);
        shared.truncate(written.seqno.next()).unwrap();
        let replacement = write(&shared);
        assert!(replacement.seqno <= rolled_back.seqno);
        shared.commit(replacement).unwrap();
        assert_eq!(shared.lock().committed(), signed);
        let signed_again = sign(&shared);
        shared.commit(signed_again).unwrap();
        assert_eq!(shared.lock().committed(), signed_again);
        shared.lock().check_invariants();
    }

    /// Requests read users, the service status and whether a signature is due from what
    /// the last release of the lock posted, without waiting for the lock.
    #[test]
    fn each_release_of_the_lock_posts_users_and_signature_state() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(&config(dir.path()), NOW_MS).unwrap();
        let shared = SharedNode::new_synchronous(node, Arc::new(|_| {}));
        let user = coco_types::UserId(coco_crypto::sha256(b"a user certificate"));
        let before = shared.published();
        assert!(!before.is_user(user) && !before.signature_due(NOW_MS));
        assert_eq!(before.is_open(), shared.lock().is_open());

        let ticket = shared.lock().submit(Box::new(move |node: &mut Node, _at| {
            let mut tx = node.begin().unwrap();
            let users = MapName::new(crate::tables::USERS_CERTS).unwrap();
            tx.put(&users, user.to_hex().as_bytes(), b"-----BEGIN CERTIFICATE-----");
            assert!(matches!(node.commit(tx).unwrap(), Commit::Ordered(_)));
        }));
        append(&shared, &[ticket.unwrap()]);
        let after = shared.published();
        assert!(after.is_user(user), "the write's release posted the new users");
        assert!(!before.is_user(user), "what was read before stays as it was");
        let later = NOW_MS + coco_types::Limits::default().sig_ms_interval;
        assert!(after.signature_due(later) && !after.signature_due(NOW_MS));

        sign(&shared);
        assert!(!shared.published().signature_due(later), "nothing is unsigned");
        assert!(shared.published().is_user(user));
    }

    /// Requests queue work without the node lock; the bound counts what the last release
    /// of the lock left uncommitted and what waits in the queue.
    #[test]
    fn submitting_without_the_lock_keeps_to_the_backpressure_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.limits.pending_txs_max = 3;
        config.limits.sig_tx_interval = 100;
        let node = Node::open(&config, NOW_MS).unwrap();
        let shared = SharedNode::new_synchronous(node, Arc::new(|_| {}));
        write(&shared);

        let nothing = || -> crate::Work { Box::new(|_, _| {}) };
        let tickets = shared.submit_all([nothing(), nothing(), nothing()]);
        assert!(tickets[0].is_ok() && tickets[1].is_ok(), "{tickets:?}");
        assert!(matches!(tickets[2], Err(Error::Backpressure { pending: 3, limit: 3 })));
        assert!(matches!(shared.submit(nothing()), Err(Error::Backpressure { .. })));

        tickets.iter().flatten().for_each(|ticket| shared.lock().forget(*ticket));
        let signed = sign(&shared);
        shared.commit(signed).unwrap();
        drop(shared.lock()); // Any release posts the new commit point.
        assert!(shared.submit_all([nothing(), nothing(), nothing()]).iter().all(Result::is_ok));
    }
}
