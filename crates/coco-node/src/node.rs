//! The node state machine: executes transactions on the KV, seals them into the ledger,
//! grows the Merkle tree, emits signature transactions and tracks what is committed.
//!
//! ```text
//!  handler ──▶ Tx (kv snapshot) ──commit──▶ WriteSet ──encode+encrypt──▶ ledger entry
//!                                                │                          │
//!                                                ▼                          ▼
//!                                     Merkle leaf (wsd, ce, claims)   chunk file (buffered)
//!  every sig_tx_interval txs or sig_ms_interval ms:
//!     signature tx (node ECDSA + service COSE over the root) ──▶ flush (fsync) ──▶ Committed
//! ```
//!
//! With one node, a transaction is `Committed` once a signature transaction at or after it
//! is durable on this node's disk (the majority of a one-node service). The node takes the
//! time as an input (`now_ms`) and does no networking; the host owns sockets and clocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use coco_crypto::Certificate;
use coco_kv::{Store, Tx};
use coco_ledger::{Ledger, SnapshotDir};
use coco_merkle::MerkleTree;
use coco_types::{Digest, Limits, NodeId, Seqno, TxId, TxStatus, View};

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::work_queue::WorkQueue;

mod genesis;
pub(crate) mod replay;
mod restore;
mod seal;
pub(crate) mod signature;
pub(crate) mod snapshot;

pub use seal::Commit;
pub use signature::SignatureRecord;

/// The genesis transaction: where the service was created.
pub(crate) const fn genesis_tx() -> TxId {
    TxId::new(FIRST_VIEW.0, 1)
}

/// The view a new service starts in (CCF starts at 2; view 1 is never used for transactions).
const FIRST_VIEW: View = View(2);

/// The KV's rollback history must cover every uncommitted transaction the node may hold.
pub(crate) fn kv_history_max(limits: &Limits) -> u64 {
    limits.pending_txs_max.saturating_mul(2).max(1024)
}

/// A running node.
pub struct Node {
    pub(crate) kv: Store,
    pub(crate) ledger: Ledger,
    pub(crate) tree: MerkleTree,
    pub(crate) identity: Identity,
    pub(crate) limits: Limits,
    /// The view this node orders new transactions in.
    pub(crate) view: View,
    /// First seqno of each view, ascending: the view of any seqno is a lookup.
    pub(crate) view_history: Vec<(View, Seqno)>,
    /// Signature transactions by seqno: receipts need their signatures.
    pub(crate) signatures: BTreeMap<Seqno, SignatureRecord>,
    /// The last committed transaction (a durable signature).
    pub(crate) committed: TxId,
    /// The last seqno known durable on disk.
    pub(crate) durable: Seqno,
    /// Transactions since the last signature.
    pub(crate) txs_since_signature: u64,
    /// When the last signature was emitted, in host milliseconds.
    pub(crate) last_signature_ms: u64,
    pub(crate) metrics: Metrics,
    pub(crate) service_cert_pem: String,
    pub(crate) node_cert_pem: String,
    /// The service's lifecycle state: users may transact only when Open. Governance opens
    /// it (`transition_service_to_open`); the ledger's `service.info` is the record.
    pub(crate) service_status: ServiceStatus,
    /// Work waiting for consensus to give it a seqno, by ticket (shared with
    /// [`crate::SharedNode`], which queues without the node lock).
    pub(crate) queue: Arc<WorkQueue>,
    /// Consensus configurations, by the seqno recording them (0: the initial one, kept
    /// beside the ledger).
    pub(crate) memberships: BTreeMap<Seqno, coco_consensus::Membership>,
    /// What consensus committed (a majority holds it); `None` until consensus runs, when
    /// this node alone decides (genesis, the start of a recovery, tests).
    pub(crate) consensus_committed: Option<Seqno>,
    /// The ticket of the signature waiting for its seqno, if any (one at a time).
    pub(crate) signature_queued: Option<u64>,
    /// The snapshot files.
    pub(crate) snapshots: SnapshotDir,
    /// Snapshots written and not committed yet, by seqno.
    pub(crate) pending_snapshots: BTreeMap<Seqno, snapshot::PendingSnapshot>,
    /// Whether a snapshot's evidence waits for its seqno (one at a time).
    pub(crate) evidence_queued: bool,
    /// The snapshot this node started from, if it did: it holds no entry at or before it
    /// (no receipts, no replication of them).
    pub(crate) starts_after: Option<TxId>,
    /// What consensus purged: entries it no longer reads or replicates (a committed
    /// snapshot covers them). The ledger keeps them.
    pub(crate) purged: Option<TxId>,
    /// The newest snapshot committed here (written, or started from).
    pub(crate) newest_snapshot: Option<TxId>,
    /// The snapshot thread's queue; `None` writes snapshots inline.
    pub(crate) snapshot_writer: Option<std::sync::mpsc::Sender<snapshot::SnapshotJob>>,
    /// Snapshots being written, by seqno (a rolled-back one is dropped when done).
    pub(crate) snapshots_in_progress: std::collections::BTreeSet<Seqno>,
    /// Evidence seen for a snapshot still being written here: its digest and seqno.
    pub(crate) evidence_seen: BTreeMap<Seqno, (String, Seqno)>,
}

/// Work that needs a seqno: run under the node lock when consensus appends it, with the
/// TxId consensus chose; it should order exactly one transaction there (the node fills
/// the slot with an empty entry if it orders none, e.g. after a conflict).
pub type Work = Box<dyn FnOnce(&mut Node, TxId) + Send>;

/// CCF's service states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServiceStatus {
    /// A new service, waiting for members to open it.
    Opening,
    /// Serving users.
    Open,
    /// A service recovered from an old ledger: public state replayed, waiting for members
    /// to accept the recovery (`transition_service_to_open`).
    Recovering,
    /// Members accepted the recovery; waiting for enough recovery shares to decrypt the
    /// private state.
    WaitingForRecoveryShares,
}

impl ServiceStatus {
    /// The name recorded in `public:ccf.gov.service.info`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "Opening",
            Self::Open => "Open",
            Self::Recovering => "Recovering",
            Self::WaitingForRecoveryShares => "WaitingForRecoveryShares",
        }
    }
}

/// Counters exported on `/node/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics {
    /// Transactions with writes appended to the ledger (signatures included).
    pub txs_committed_locally: u64,
    /// Signature transactions emitted.
    pub signatures: u64,
    /// Commits refused because a read was stale.
    pub conflicts: u64,
    /// Ledger flushes (fsync batches).
    pub flushes: u64,
    /// Snapshots committed here.
    pub snapshots_committed: u64,
    /// Snapshots received from another node and installed.
    pub snapshots_installed: u64,
}

/// What `/node/state` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeState {
    /// This node.
    pub node_id: NodeId,
    /// CCF's lifecycle state name.
    pub state: &'static str,
    /// Seqno of the last signature transaction.
    pub last_signed_seqno: u64,
    /// The last transaction ordered here.
    pub last_seqno: u64,
}

impl Node {
    /// Opens the node on its directories: creates the service (genesis) on empty ones,
    /// otherwise replays the ledger and comes back with every committed transaction.
    ///
    /// # Errors
    /// Configuration, IO, corrupt ledger or key files.
    pub fn open(config: &NodeConfig, now_ms: u64) -> Result<Self> {
        Self::open_with_app(config, now_ms, &crate::app::NoApp)
    }

    /// [`Node::open`], and if this creates the service, `app` writes its initial state in
    /// the genesis transaction.
    ///
    /// # Errors
    /// As [`Node::open`]; the app's genesis refusal.
    pub fn open_with_app(config: &NodeConfig, now_ms: u64, app: &dyn crate::App) -> Result<Self> {
        config.validate().map_err(|e| Error::Corrupt {
            what: "configuration".to_owned(),
            reason: e.to_string(),
        })?;
        let ledger = Ledger::open(&config.storage.ledger_dir, config.limits.ledger_chunk_bytes)?;
        let snapshots = SnapshotDir::open(&config.storage.snapshots_dir)?;
        // A snapshot left uncommitted by the last run never commits: its evidence flow
        // lived in memory. The next snapshot point writes a fresh one.
        snapshots.discard_pending_from(Seqno(0))?;
        let parts = (ledger, snapshots);
        let identity = Identity::load(&config.storage.state_dir)?;
        let snapshot = match identity {
            Some(_) => snapshot_to_start_from(&parts.0, &parts.1)?,
            None => None,
        };
        match identity {
            Some(identity) if let Some(snapshot) = snapshot => {
                let node = Self::assemble(identity, parts, config.limits.clone(), now_ms);
                replay::replay_from_snapshot(node, &snapshot)
            }
            Some(identity) if parts.0.last_seqno() == Seqno(0) => {
                // A node that joined and has not received an entry yet: consensus brings
                // the service's ledger from the primary.
                let mut node = Self::assemble(identity, parts, config.limits.clone(), now_ms);
                node.tree.append(Digest::ZERO);
                node.load_initial_membership()?;
                tracing::info!("joined node starting with an empty ledger");
                Ok(node)
            }
            Some(identity) => {
                let node = Self::assemble(identity, parts, config.limits.clone(), now_ms);
                replay::replay(node)
            }
            None => {
                if parts.0.last_seqno() > Seqno(0) {
                    return Err(Error::Corrupt {
                        what: "state directory".to_owned(),
                        reason: "a ledger exists but the sealed identity is missing".to_owned(),
                    });
                }
                let sans = &config.network.subject_alt_names;
                let identity = Identity::create(&config.storage.state_dir, sans, now_ms / 1000)?;
                let node = Self::assemble(identity, parts, config.limits.clone(), now_ms);
                genesis::genesis(node, config, now_ms, app)
            }
        }
    }

    pub(crate) fn assemble(
        identity: Identity,
        (ledger, snapshots): (Ledger, SnapshotDir),
        limits: Limits,
        now_ms: u64,
    ) -> Self {
        let service_cert_pem = identity.service_cert.to_pem();
        let node_cert_pem = identity.node_cert.to_pem();
        let mut kv = Store::new();
        kv.set_history_max(kv_history_max(&limits));
        Self {
            kv,
            ledger,
            tree: MerkleTree::new(),
            identity,
            limits,
            view: FIRST_VIEW,
            view_history: Vec::new(),
            signatures: BTreeMap::new(),
            committed: TxId::default(),
            durable: Seqno(0),
            txs_since_signature: 0,
            last_signature_ms: now_ms,
            metrics: Metrics::default(),
            service_cert_pem,
            node_cert_pem,
            service_status: ServiceStatus::Opening,
            queue: Arc::new(WorkQueue::new()),
            memberships: BTreeMap::new(),
            consensus_committed: None,
            signature_queued: None,
            snapshots,
            pending_snapshots: BTreeMap::new(),
            evidence_queued: false,
            starts_after: None,
            purged: None,
            newest_snapshot: None,
            snapshot_writer: None,
            snapshots_in_progress: std::collections::BTreeSet::new(),
            evidence_seen: BTreeMap::new(),
        }
    }

    /// Seals the identity a node receives when members trust it (see [`crate::JoinMaterial`])
    /// into `config`'s state directory; [`Self::open`] then starts it as a backup.
    ///
    /// # Errors
    /// Unusable material, or IO.
    pub fn accept_join(
        config: &NodeConfig,
        node_key_pem: &str,
        material: &crate::JoinMaterial,
    ) -> Result<()> {
        Identity::from_join(&config.storage.state_dir, node_key_pem, material).map(drop)
    }

    /// Begins a transaction on a consistent snapshot of the store.
    ///
    /// # Errors
    /// [`Error::Backpressure`] when too many transactions wait for a signature.
    pub fn begin(&self) -> Result<Tx> {
        let pending = self.last_seqno().0 - self.committed.seqno.0;
        if pending >= self.limits.pending_txs_max {
            return Err(Error::Backpressure { pending, limit: self.limits.pending_txs_max });
        }
        Ok(self.kv.begin())
    }

    /// Begins a transaction for work that runs under the node's lock at its seqno and
    /// commits there, before anything else can: it records no reads, so none need
    /// checking (the KV refuses it if anything committed meanwhile). Not refused under
    /// backpressure: such work was bounded when it was queued ([`Node::submit`]).
    #[must_use]
    pub fn begin_exclusive(&self) -> Tx {
        self.kv.begin_exclusive()
    }

    /// Begins a read-only transaction: never refused, never conflicts.
    #[must_use]
    pub fn begin_read(&self) -> Tx {
        self.kv.begin()
    }

    /// The newest snapshot this node committed or started from, for consensus to send
    /// to nodes that need what precedes it.
    #[must_use]
    pub fn newest_snapshot(&self) -> Option<TxId> {
        self.newest_snapshot
    }

    /// The first seqno whose entry this node holds: 1, or the one after the snapshot it
    /// started from (or installed).
    #[must_use]
    pub fn first_held_seqno(&self) -> Seqno {
        self.starts_after.map_or(Seqno(1), |snapshot| snapshot.seqno.next())
    }

    /// The last seqno ordered here.
    #[must_use]
    pub fn last_seqno(&self) -> Seqno {
        self.kv.current_seqno()
    }

    /// The last committed transaction.
    #[must_use]
    pub fn committed(&self) -> TxId {
        self.committed
    }

    /// The view new transactions are ordered in.
    #[must_use]
    pub fn view(&self) -> View {
        self.view
    }

    /// The view in which `seqno` was ordered here, if this node holds it.
    ///
    /// # Panics
    /// If the view history does not start at or before the first seqno (a bug).
    #[must_use]
    pub fn view_of(&self, seqno: Seqno) -> Option<View> {
        if seqno.0 == 0 || seqno > self.last_seqno() {
            return None;
        }
        let index = self.view_history.partition_point(|(_, first)| *first <= seqno);
        assert!(index > 0, "seqno {seqno} precedes the first view");
        Some(self.view_history[index - 1].0)
    }

    /// The status of a transaction, derived by CCF's rules.
    #[must_use]
    pub fn tx_status(&self, tx: TxId) -> TxStatus {
        TxStatus::derive(tx, self.view_of(tx.seqno), self.committed, self.view)
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id
    }

    /// Whether the service is Open to users.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.service_status == ServiceStatus::Open
    }

    /// The service status as recorded in `public:ccf.gov.service.info`.
    #[must_use]
    pub fn service_status(&self) -> ServiceStatus {
        self.service_status
    }

    /// Reads the service status from the store (after replay).
    pub(crate) fn load_service_status(&mut self) -> Result<()> {
        let map = signature::map(crate::tables::SERVICE_INFO);
        let snapshot = self.kv.snapshot();
        let info = snapshot.get(&map, crate::tables::SINGLETON_KEY).ok_or_else(|| {
            Error::Corrupt { what: "ledger".to_owned(), reason: "no service info".to_owned() }
        })?;
        let info: serde_json::Value = serde_json::from_slice(info).map_err(|e| Error::Corrupt {
            what: "service info".to_owned(),
            reason: e.to_string(),
        })?;
        self.service_status = serde_json::from_value(info["status"].clone()).map_err(|e| {
            Error::Corrupt { what: "service info status".to_owned(), reason: e.to_string() }
        })?;
        Ok(())
    }

    /// The raw bytes of the ledger entry at `seqno` (auditors and the simulator compare
    /// them across nodes).
    ///
    /// # Errors
    /// The seqno is not held, or the ledger cannot be read.
    pub fn ledger_entry(&self, seqno: Seqno) -> Result<Vec<u8>> {
        Ok(self.ledger.read_entry(seqno)?)
    }

    /// The service certificate (PEM), which clients trust.
    #[must_use]
    pub fn service_cert_pem(&self) -> &str {
        &self.service_cert_pem
    }

    /// The node certificate (PEM), endorsed by the service key.
    #[must_use]
    pub fn node_cert(&self) -> &Certificate {
        &self.identity.node_cert
    }

    /// The node's signing key, for the host's TLS server.
    #[must_use]
    pub fn node_key_pem(&self) -> String {
        self.identity.node_key.to_pkcs8_pem()
    }

    /// Counters for `/node/metrics`.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// What `/node/state` reports.
    #[must_use]
    pub fn state(&self) -> NodeState {
        let last_signed = self.signatures.keys().next_back().copied().unwrap_or_default();
        NodeState {
            node_id: self.identity.node_id,
            state: "PartOfNetwork",
            last_signed_seqno: last_signed.0,
            last_seqno: self.last_seqno().0,
        }
    }

    /// The Merkle root over every leaf so far (for the state digest).
    ///
    /// # Panics
    /// Never after genesis: leaf 0 always exists.
    #[must_use]
    pub fn merkle_root(&self) -> Digest {
        self.tree.root().expect("leaf 0 exists from genesis on")
    }

    /// Asserts the node's invariants; called after every mutation in tests.
    ///
    /// # Panics
    /// When an invariant is broken.
    pub fn check_invariants(&self) {
        let last = self.last_seqno();
        assert!(self.committed.seqno <= self.durable, "committed past durable");
        assert!(self.durable <= last, "durable {} > last {last}", self.durable);
        assert_eq!(self.tree.len(), last.0 + 1, "one Merkle leaf per seqno plus leaf 0");
        assert_eq!(self.ledger.last_seqno(), last, "ledger and kv disagree on the last seqno");
        if self.committed.seqno.0 > 0 {
            assert!(
                self.signatures.contains_key(&self.committed.seqno),
                "committed {} is not a signature",
                self.committed
            );
        }
    }
}

/// The committed snapshot a node must start from: the newest one the ledger continues
/// right after, when the ledger lacks its first entries (old chunks were removed) or holds
/// none (a node that joined from a snapshot). `None` when the ledger starts at seqno 1.
fn snapshot_to_start_from(
    ledger: &Ledger,
    snapshots: &SnapshotDir,
) -> Result<Option<coco_ledger::CommittedSnapshot>> {
    let first = ledger.first_seqno();
    let empty = ledger.last_seqno() < first;
    if first == Seqno(1) && !empty {
        return Ok(None);
    }
    let usable = snapshots.committed()?.into_iter().rev().find(|snapshot| {
        snapshot.seqno.next() >= first && (empty || snapshot.seqno <= ledger.last_seqno())
    });
    match usable {
        Some(snapshot) => Ok(Some(snapshot)),
        None if first == Seqno(1) => Ok(None),
        None => Err(Error::Corrupt {
            what: "ledger".to_owned(),
            reason: format!(
                "it starts at seqno {first} but no committed snapshot in {} ends at or after {}",
                snapshots.path().display(),
                first.0 - 1
            ),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests;
