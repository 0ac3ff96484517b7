//! Elections with a pre-vote round, which openraft 0.9 lacks. openraft's own election timer
//! is off; this module's driver decides when a node stands. A node that has not heard from
//! a primary for the leader lease plus a random election timeout first asks the voters
//! whether they *would* vote for it (a pre-vote changes no term and no vote); only with a
//! majority of yeses does it start a real election. A voter says yes only if it has not
//! heard from a primary within the lease itself and the candidate's log is at least as
//! recent as its own. So a node cut off from the others never raises its term while they
//! still hear the primary, and rejoining cannot depose a healthy primary.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coco_types::NodeId;
use openraft::{LogId, ServerState};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::consensus::Consensus;
use crate::network::{Rpc, Transport, decode, encode};
use crate::runtime::ThreadRng;

/// A candidate's question.
#[derive(Serialize, Deserialize)]
pub(crate) struct PreVoteRequest {
    /// The candidate's last log position.
    pub(crate) last_log: Option<LogId<NodeId>>,
}

/// A voter's answer.
#[derive(Serialize, Deserialize)]
pub(crate) struct PreVoteResponse {
    /// Whether it would vote for the candidate now.
    pub(crate) granted: bool,
}

/// When this node last heard from a primary it follows (or was primary itself).
#[derive(Clone, Debug)]
pub(crate) struct Heard(Arc<Mutex<Instant>>);

impl Heard {
    pub(crate) fn now() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    pub(crate) fn note(&self) {
        *self.0.lock().expect("never poisoned") = Instant::now();
    }

    pub(crate) fn within(&self, window: Duration) -> bool {
        self.0.lock().expect("never poisoned").elapsed() < window
    }
}

/// Election timing, from the settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) tick: Duration,
    pub(crate) lease: Duration,
    pub(crate) timeout: (u64, u64),
}

impl Consensus {
    /// Answers a pre-vote: yes only if no primary was heard within the lease, this node is
    /// not primary itself, and the candidate's log is at least as recent.
    pub(crate) fn answer_pre_vote(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let request: PreVoteRequest = decode(body)?;
        let leading = self.raft.metrics().borrow().state == ServerState::Leader;
        let last_log = self.raft.data_metrics().borrow().last_log;
        let granted =
            !leading && !self.heard.within(self.timing.lease) && request.last_log >= last_log;
        Ok(encode(&PreVoteResponse { granted }))
    }
}

/// Runs this node's elections until consensus stops.
pub(crate) async fn drive_elections<T: Transport>(consensus: Consensus, transport: Arc<T>) {
    let timing = consensus.timing;
    let mut patience = random_timeout(timing.timeout);
    loop {
        tokio::time::sleep(timing.tick).await;
        let metrics = consensus.raft.metrics().borrow().clone();
        if metrics.running_state.is_err() {
            return;
        }
        if metrics.state == ServerState::Leader {
            consensus.heard.note();
            continue;
        }
        let voters: Vec<BTreeSet<NodeId>> =
            metrics.membership_config.membership().get_joint_config().clone();
        let is_voter = voters.iter().any(|set| set.contains(&consensus.id));
        if !is_voter || consensus.heard.within(timing.lease + patience) {
            continue;
        }
        patience = random_timeout(timing.timeout);
        let single = voters.iter().all(|set| set.len() == 1);
        if single || pre_vote(&consensus, &transport, &voters, &metrics).await {
            if let Err(e) = consensus.raft.trigger().elect().await {
                tracing::debug!(error = %e, "cannot start an election");
            }
            // The election's own round trip: do not stand again at once.
            consensus.heard.note();
        }
    }
}

fn random_timeout((min, max): (u64, u64)) -> Duration {
    Duration::from_millis(ThreadRng.gen_range(min..=max))
}

/// Asks every other voter at once; true if each voter set has a majority of yeses (this
/// node counts as one).
async fn pre_vote<T: Transport>(
    consensus: &Consensus,
    transport: &Arc<T>,
    voters: &[BTreeSet<NodeId>],
    metrics: &openraft::RaftMetrics<NodeId, crate::types::Peer>,
) -> bool {
    let last_log = consensus.raft.data_metrics().borrow().last_log;
    let body = encode(&PreVoteRequest { last_log });
    let others: BTreeSet<NodeId> =
        voters.iter().flatten().copied().filter(|id| *id != consensus.id).collect();
    let mut asks = tokio::task::JoinSet::new();
    for (id, peer) in metrics.membership_config.membership().nodes() {
        if !others.contains(id) {
            continue;
        }
        let (id, peer, body) = (*id, peer.clone(), body.clone());
        let (transport, wait) = (transport.clone(), consensus.timing.lease);
        asks.spawn(async move {
            let call = transport.call(id, &peer, Rpc::PreVote, body);
            let reply = tokio::time::timeout(wait, call).await.ok().and_then(Result::ok);
            let granted = reply.and_then(|reply| decode::<PreVoteResponse>(&reply).ok());
            (id, granted.is_some_and(|response| response.granted))
        });
    }
    let mut yes = BTreeSet::from([consensus.id]);
    while let Some(answer) = asks.join_next().await {
        if let Ok((id, true)) = answer {
            yes.insert(id);
        }
    }
    let majority = |set: &BTreeSet<NodeId>| set.iter().filter(|id| yes.contains(id)).count() * 2;
    let granted = voters.iter().all(|set| majority(set) > set.len());
    tracing::debug!(granted, yes = yes.len(), "pre-vote");
    granted
}
