//! Node-to-node messages. Consensus encodes its RPCs (CBOR) and hands the bytes to a
//! [`Transport`] the host provides (mutual TLS between nodes; in-process in tests); the
//! receiving node passes them to [`crate::Consensus::handle`].

use std::future::Future;
use std::sync::Arc;

use coco_types::NodeId;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{Peer, TypeConfig};

/// The kinds of node-to-node call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// Replicate entries (and heartbeats).
    AppendEntries,
    /// Ask for a vote.
    Vote,
    /// Send a snapshot.
    InstallSnapshot,
    /// Ask whether a vote would be granted (changes nothing).
    PreVote,
}

impl Rpc {
    /// A stable name, for URLs and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppendEntries => "append_entries",
            Self::Vote => "vote",
            Self::InstallSnapshot => "install_snapshot",
            Self::PreVote => "pre_vote",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::AppendEntries, Self::Vote, Self::InstallSnapshot, Self::PreVote]
            .into_iter()
            .find(|rpc| rpc.as_str() == name)
    }
}

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The node could not be reached (retry later).
    #[error("node {node} unreachable: {reason}")]
    Unreachable {
        /// The target.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// The call was sent but failed.
    #[error("call to node {node} failed: {reason}")]
    Failed {
        /// The target.
        node: NodeId,
        /// Why.
        reason: String,
    },
}

/// Carries encoded calls to other nodes.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` as an `rpc` to `target` at `peer`, and returns the encoded reply.
    fn call(
        &self,
        target: NodeId,
        peer: &Peer,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("encoding to memory cannot fail");
    bytes
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|e| e.to_string())
}

/// Creates one [`Client`] per target node.
pub(crate) struct Factory<T> {
    pub(crate) transport: Arc<T>,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for Factory<T> {
    type Network = Client<T>;

    async fn new_client(&mut self, target: NodeId, node: &Peer) -> Self::Network {
        Client { transport: self.transport.clone(), target, peer: node.clone() }
    }
}

/// Calls one node.
pub(crate) struct Client<T> {
    transport: Arc<T>,
    target: NodeId,
    peer: Peer,
}

impl<T: Transport> Client<T> {
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        request: &Req,
    ) -> Result<Resp, RPCError<NodeId, Peer, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let reply = self
            .transport
            .call(self.target, &self.peer, rpc, encode(request))
            .await
            .map_err(|e| match e {
                TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                TransportError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        let reply: Result<Resp, RaftError<NodeId, E>> = decode(&reply).map_err(|reason| {
            let e = TransportError::Failed { node: self.target, reason };
            RPCError::Network(NetworkError::new(&e))
        })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for Client<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Peer, RaftError<NodeId>>> {
        self.call(Rpc::AppendEntries, &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Peer, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Rpc::InstallSnapshot, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Peer, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc).await
    }
}
