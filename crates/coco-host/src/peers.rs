//! Node-to-node channels. A one-node service calls no peer; until mutual-TLS channels
//! between nodes land, a call to a peer fails as unreachable, which consensus retries.

use coco_node::consensus::{Peer, Rpc, Transport, TransportError};
use coco_types::NodeId;

/// The transport of a node that has no peers yet.
pub(crate) struct NoPeers;

impl Transport for NoPeers {
    async fn call(
        &self,
        target: NodeId,
        _peer: &Peer,
        _rpc: Rpc,
        _body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Unreachable {
            node: target,
            reason: "node-to-node channels are not configured on this node".to_owned(),
        })
    }
}
