//! Coco's words for what consensus moves around, and their mapping onto openraft's types.
//! Nothing outside this crate names an openraft type: a Raft term is a [`View`], a log
//! index a [`Seqno`], a log id a [`TxId`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use coco_types::{NodeId, Seqno, TxId, View};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// openraft's type configuration for Coco.
    pub(crate) TypeConfig:
        D = Payload,
        R = (),
        NodeId = NodeId,
        Node = Peer,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = crate::runtime::CocoRuntime,
);

/// The application data of a Raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Payload {
    /// A transaction proposed on this node, by ticket: the journal executes and seals it
    /// when Raft appends it, at the seqno Raft chose. Never leaves the node.
    Local(u64),
    /// A ledger entry as the primary sealed it.
    Sealed(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// A node's address for node-to-node channels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// `host:port` of the node's node-to-node listener.
    pub address: String,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address)
    }
}

/// A configuration of the service's nodes: one set of voters, or two during a change
/// (joint consensus), and every node's address (learners included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voter sets: one, or old and new during a change.
    pub configs: Vec<BTreeSet<NodeId>>,
    /// Every node, voter or learner, with its address.
    pub nodes: BTreeMap<NodeId, Peer>,
}

/// One entry as the journal sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// The entry's position: view = Raft term, seqno = Raft index.
    pub tx: TxId,
    /// What it holds.
    pub payload: JournalPayload,
}

/// What an entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalPayload {
    /// A transaction proposed on this node, by ticket: the journal executes it at this
    /// position. Never leaves the node.
    Local(u64),
    /// A ledger entry sealed by the primary of its view.
    Sealed(Vec<u8>),
    /// A new primary's first entry (Raft's no-op): an empty ledger entry.
    Blank,
    /// A change of configuration: a ledger entry recording it.
    Membership(Membership),
}

/// The durable vote of a node: in which view it voted for whom, and whether that node
/// became primary (a committed vote).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The view (Raft term).
    pub view: View,
    /// The node voted for, if any.
    pub node: Option<NodeId>,
    /// Whether a quorum granted it.
    pub committed: bool,
}

pub(crate) fn tx_of(log_id: &LogId<NodeId>) -> TxId {
    TxId { view: View(log_id.leader_id.term), seqno: Seqno(log_id.index) }
}

pub(crate) fn log_id_of(tx: TxId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(tx.view.0, NodeId::default()), tx.seqno.0)
}

pub(crate) fn to_journal(entry: openraft::Entry<TypeConfig>) -> JournalEntry {
    let payload = match entry.payload {
        EntryPayload::Blank => JournalPayload::Blank,
        EntryPayload::Normal(Payload::Local(ticket)) => JournalPayload::Local(ticket),
        EntryPayload::Normal(Payload::Sealed(bytes)) => JournalPayload::Sealed(bytes),
        EntryPayload::Membership(membership) => JournalPayload::Membership(membership.into()),
    };
    JournalEntry { tx: tx_of(&entry.log_id), payload }
}

pub(crate) fn from_journal(entry: JournalEntry) -> openraft::Entry<TypeConfig> {
    let payload = match entry.payload {
        JournalPayload::Blank => EntryPayload::Blank,
        JournalPayload::Local(ticket) => EntryPayload::Normal(Payload::Local(ticket)),
        JournalPayload::Sealed(bytes) => EntryPayload::Normal(Payload::Sealed(bytes)),
        JournalPayload::Membership(membership) => EntryPayload::Membership(membership.into()),
    };
    openraft::Entry { log_id: log_id_of(entry.tx), payload }
}

impl From<openraft::Membership<NodeId, Peer>> for Membership {
    fn from(membership: openraft::Membership<NodeId, Peer>) -> Self {
        Self {
            configs: membership.get_joint_config().clone(),
            nodes: membership.nodes().map(|(id, peer)| (*id, peer.clone())).collect(),
        }
    }
}

impl From<Membership> for openraft::Membership<NodeId, Peer> {
    fn from(membership: Membership) -> Self {
        Self::new(membership.configs, membership.nodes)
    }
}

impl From<openraft::Vote<NodeId>> for Vote {
    fn from(vote: openraft::Vote<NodeId>) -> Self {
        Self {
            view: View(vote.leader_id.term),
            node: vote.leader_id.voted_for,
            committed: vote.committed,
        }
    }
}

impl From<Vote> for openraft::Vote<NodeId> {
    fn from(vote: Vote) -> Self {
        let leader_id = openraft::LeaderId { term: vote.view.0, voted_for: vote.node };
        Self { leader_id, committed: vote.committed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_id_is_a_tx_id() {
        let tx = TxId::new(7, 42);
        assert_eq!(tx_of(&log_id_of(tx)), tx);
        let vote = Vote { view: View(3), node: Some(NodeId::default()), committed: true };
        assert_eq!(Vote::from(openraft::Vote::from(vote)), vote);
    }
}
