//! [`Consensus`]: one node's Raft, started over a journal and a transport.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use coco_types::{NodeId, Seqno, TxId, View};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{Raft, ServerState, SnapshotPolicy};
use tokio::sync::oneshot;

use crate::journal::Journal;
use crate::network::{Factory, Rpc, Transport, decode, encode};
use crate::prevote::{Heard, Timing, drive_elections};
use crate::runtime::CocoRuntime;
use crate::store::{LogStore, StateMachine};
use crate::types::{Membership, Payload, Peer, TypeConfig, tx_of};

/// Timing and batching of consensus (from the node's limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How often the primary sends heartbeats, in milliseconds.
    pub heartbeat_ms: u64,
    /// A backup that hears nothing for a random time in this range starts an election.
    pub election_timeout_ms: (u64, u64),
    /// Most entries in one replication message (flow control).
    pub max_entries_per_message: u64,
    /// Entries before a snapshot that are still replicated one by one; a node that needs
    /// older ones receives the snapshot.
    pub entries_kept_before_snapshot: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            heartbeat_ms: 50,
            election_timeout_ms: (300, 600),
            max_entries_per_message: 1000,
            entries_kept_before_snapshot: 10_000,
        }
    }
}

/// Why consensus refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// This node is not the primary; `primary` is the one it knows of, if any.
    #[error("this node is not the primary{}", known_primary(*primary))]
    NotPrimary {
        /// The primary, if known.
        primary: Option<NodeId>,
        /// Its node-to-node address, if known.
        address: Option<String>,
    },
    /// The settings are unusable.
    #[error("invalid consensus settings: {0}")]
    Settings(String),
    /// A configuration change was refused.
    #[error("configuration change refused: {0}")]
    Membership(String),
    /// Consensus stopped on this node (a storage failure, or shut down).
    #[error("consensus stopped: {0}")]
    Stopped(String),
}

fn known_primary(primary: Option<NodeId>) -> String {
    primary.map(|p| format!(" (the primary is {p})")).unwrap_or_default()
}

/// What [`Consensus::status`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// The current view (Raft term).
    pub view: View,
    /// The primary this node follows, if any.
    pub primary: Option<NodeId>,
    /// Whether this node is the primary.
    pub is_primary: bool,
    /// The last entry this node holds.
    pub last: Seqno,
    /// The last entry consensus committed, as this node knows it.
    pub committed: Option<TxId>,
    /// The configuration in force.
    pub membership: Membership,
}

/// One node's consensus.
#[derive(Clone)]
pub struct Consensus {
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) id: NodeId,
    /// When this node last heard from a primary (see the pre-vote module).
    pub(crate) heard: Heard,
    pub(crate) timing: Timing,
}

impl Consensus {
    /// Starts consensus for node `id` over `journal` (this node's ledger) and `transport`.
    ///
    /// # Errors
    /// [`ConsensusError::Settings`] for unusable timings; [`ConsensusError::Stopped`] if
    /// the journal cannot be read.
    pub async fn start<J: Journal, T: Transport>(
        id: NodeId,
        settings: &Settings,
        journal: Arc<J>,
        transport: Arc<T>,
    ) -> Result<Self, ConsensusError> {
        let config = openraft::Config {
            cluster_name: "coco".to_owned(),
            heartbeat_interval: settings.heartbeat_ms,
            election_timeout_min: settings.election_timeout_ms.0,
            election_timeout_max: settings.election_timeout_ms.1,
            max_payload_entries: settings.max_entries_per_message,
            // The node decides when to snapshot (at signatures); see `snapshot_committed`.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: settings.entries_kept_before_snapshot,
            // Elections run with a pre-vote round (see the pre-vote module).
            enable_elect: false,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Settings(e.to_string()))?;
        let log = LogStore::new(journal.clone());
        let state =
            StateMachine::new(journal).map_err(|e| ConsensusError::Stopped(e.to_string()))?;
        let network = Factory { transport: transport.clone() };
        let raft = Raft::new(id, Arc::new(config), network, log, state)
            .await
            .map_err(|e| ConsensusError::Stopped(e.to_string()))?;
        let timing = Timing {
            tick: Duration::from_millis(settings.heartbeat_ms),
            lease: Duration::from_millis(settings.election_timeout_ms.1),
            timeout: settings.election_timeout_ms,
        };
        let consensus = Self { raft, id, heard: Heard::now(), timing };
        drop(<CocoRuntime as openraft::AsyncRuntime>::spawn(drive_elections(
            consensus.clone(),
            transport,
        )));
        Ok(consensus)
    }

    /// Makes this node the first of a new service with `nodes` as voters (genesis). A node
    /// that already holds a configuration refuses.
    ///
    /// # Errors
    /// [`ConsensusError::Membership`] if this node was already initialised.
    pub async fn initialize(&self, nodes: BTreeMap<NodeId, Peer>) -> Result<(), ConsensusError> {
        self.raft.initialize(nodes).await.map_err(|e| ConsensusError::Membership(e.to_string()))
    }

    /// Proposes the transaction behind `ticket` for ordering. The journal executes it when
    /// consensus appends it (on this node, if it is the primary); the returned
    /// [`Proposal`] resolves once it is committed, or with the reason it never will be.
    ///
    /// # Errors
    /// [`ConsensusError::Stopped`] if consensus is not running.
    pub async fn propose(&self, ticket: u64) -> Result<Proposal, ConsensusError> {
        let receiver = self
            .raft
            .client_write_ff(Payload::Local(ticket))
            .await
            .map_err(|e| ConsensusError::Stopped(e.to_string()))?;
        Ok(Proposal { receiver })
    }

    /// Answers a call from another node: `body` is the encoded request, the reply the
    /// encoded response (or the refusal).
    ///
    /// # Errors
    /// A body that does not decode as `rpc`'s request.
    pub async fn handle(&self, rpc: Rpc, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok(match rpc {
            Rpc::AppendEntries => {
                let response = self.raft.append_entries(decode(body)?).await;
                if response
                    .as_ref()
                    .is_ok_and(|r| !matches!(r, AppendEntriesResponse::HigherVote(_)))
                {
                    self.heard.note();
                }
                encode(&response)
            }
            Rpc::Vote => encode(&self.raft.vote(decode(body)?).await),
            Rpc::InstallSnapshot => {
                let response = self.raft.install_snapshot(decode(body)?).await;
                if response.is_ok() {
                    self.heard.note();
                }
                encode(&response)
            }
            Rpc::PreVote => self.answer_pre_vote(body)?,
        })
    }

    /// Adds `id` at `peer` as a learner: it receives the log but does not vote. Returns once
    /// the change is committed (not once the learner caught up).
    ///
    /// # Errors
    /// [`ConsensusError::NotPrimary`] on a backup; [`ConsensusError::Membership`].
    pub async fn add_learner(&self, id: NodeId, peer: Peer) -> Result<(), ConsensusError> {
        self.raft.add_learner(id, peer, false).await.map(drop).map_err(membership_error)
    }

    /// Whether this node (the primary) has replicated to `id` up to at most `lag_max`
    /// entries behind its last one: a learner that may become a voter without stalling
    /// commits while it catches up.
    #[must_use]
    pub fn caught_up(&self, id: NodeId, lag_max: u64) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let last = metrics.last_log_index.unwrap_or(0);
        let matched = metrics.replication.as_ref().and_then(|targets| targets.get(&id));
        matched.and_then(Option::as_ref).is_some_and(|log_id| log_id.index + lag_max >= last)
    }

    /// Makes `voters` the voting configuration (through joint consensus); nodes dropped
    /// from it stay learners until removed with [`Self::remove_nodes`].
    ///
    /// # Errors
    /// [`ConsensusError::NotPrimary`] on a backup; [`ConsensusError::Membership`] when a
    /// voter is not a learner yet, or a change is already under way.
    pub async fn change_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), ConsensusError> {
        self.raft.change_membership(voters, true).await.map(drop).map_err(membership_error)
    }

    /// Removes `nodes` from the configuration entirely (voters and learners).
    ///
    /// # Errors
    /// As [`Self::change_voters`].
    pub async fn remove_nodes(&self, nodes: BTreeSet<NodeId>) -> Result<(), ConsensusError> {
        let change = openraft::ChangeMembers::RemoveNodes(nodes);
        self.raft.change_membership(change, false).await.map(drop).map_err(membership_error)
    }

    /// This node's view of consensus.
    #[must_use]
    pub fn status(&self) -> Status {
        let metrics = self.raft.metrics().borrow().clone();
        Status {
            id: self.id,
            view: View(metrics.current_term),
            primary: metrics.current_leader,
            is_primary: metrics.state == ServerState::Leader,
            last: Seqno(metrics.last_log_index.unwrap_or(0)),
            committed: metrics.last_applied.as_ref().map(tx_of),
            membership: metrics.membership_config.membership().clone().into(),
        }
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The voter sets in force (two during a change), cheaper than [`Self::status`].
    #[must_use]
    pub fn voters(&self) -> Vec<BTreeSet<NodeId>> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.membership_config.membership().get_joint_config().clone()
    }

    /// The node committed a snapshot at `at`: consensus adopts it (if newer than its own)
    /// as what it sends to a node needing entries it no longer replicates, and stops
    /// replicating entries more than `entries_kept_before_snapshot` before it.
    pub async fn snapshot_committed(&self, at: TxId) {
        let current = self.raft.metrics().borrow().snapshot;
        if current.is_none_or(|id| id.index < at.seqno.0)
            && let Err(e) = self.raft.trigger().snapshot().await
        {
            tracing::warn!(error = %e, "consensus did not take the snapshot");
        }
    }

    /// Whether this node is the primary now; cheaper than [`Self::status`] (no copy), for
    /// the per-request checks.
    #[must_use]
    pub fn is_primary(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Waits until `condition` holds for [`Self::status`], or `timeout` passes.
    ///
    /// # Errors
    /// The last status seen, when the time is up.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&Status) -> bool,
    ) -> Result<Status, Box<Status>> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status();
            if condition(&status) {
                return Ok(status);
            }
            if tokio::time::timeout_at(deadline, metrics.changed()).await.is_err() {
                return Err(Box::new(self.status()));
            }
        }
    }

    /// Starts an election now rather than after a timeout (a service's only voter
    /// restarting need not wait).
    ///
    /// # Errors
    /// [`ConsensusError::Stopped`] if consensus is not running.
    pub async fn campaign(&self) -> Result<(), ConsensusError> {
        self.raft.trigger().elect().await.map_err(|e| ConsensusError::Stopped(e.to_string()))
    }

    /// Stops consensus on this node.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "consensus did not stop cleanly");
        }
    }
}

fn membership_error(error: RaftError<NodeId, ClientWriteError<NodeId, Peer>>) -> ConsensusError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ConsensusError::NotPrimary {
                primary: forward.leader_id,
                address: forward.leader_node.map(|peer| peer.address),
            }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ConsensusError::Membership(e.to_string())
        }
        RaftError::Fatal(e) => ConsensusError::Stopped(e.to_string()),
    }
}

/// A proposed transaction, until consensus commits it.
pub struct Proposal {
    receiver: oneshot::Receiver<
        Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<NodeId, Peer>>,
    >,
}

impl Proposal {
    /// Resolves with the TxId once consensus committed the entry (a signature must still
    /// cover it before it is `Committed` to clients).
    ///
    /// # Errors
    /// [`ConsensusError::NotPrimary`] if this node could not order it;
    /// [`ConsensusError::Stopped`] if consensus stopped first.
    pub async fn committed(self) -> Result<TxId, ConsensusError> {
        match self.receiver.await {
            Ok(Ok(response)) => Ok(tx_of(&response.log_id)),
            Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ConsensusError::NotPrimary {
                    primary: forward.leader_id,
                    address: forward.leader_node.map(|peer| peer.address),
                })
            }
            Ok(Err(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ConsensusError::Membership(e.to_string()))
            }
            Err(_) => Err(ConsensusError::Stopped("the proposal was dropped".to_owned())),
        }
    }
}
