//! The simulated network: every call may be lost, delayed (so messages reorder),
//! duplicated, or cut by a partition, as the seed decides; a crashed node is unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coco_node::consensus::{Consensus, Peer, Rpc, Transport, TransportError};
use coco_types::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Probability a message is lost.
const LOSS: f64 = 0.03;
/// Probability a message is delivered twice.
const DUPLICATION: f64 = 0.02;
/// Longest delivery delay, in simulated milliseconds.
const DELAY_MS_MAX: u64 = 15;

/// Who is up, which links are cut, and the network's dice: one generator per directed
/// link, named by the nodes' places in the run (not their ids), so a link's fate does not
/// depend on the order other links are used in.
pub(crate) struct Net {
    nodes: Mutex<BTreeMap<NodeId, Consensus>>,
    cut: Mutex<BTreeSet<(NodeId, NodeId)>>,
    places: BTreeMap<NodeId, u64>,
    dice: Mutex<BTreeMap<(NodeId, NodeId), StdRng>>,
    seed: u64,
}

impl Net {
    pub(crate) fn new(seed: u64, ids: &[NodeId]) -> Self {
        Self {
            nodes: Mutex::default(),
            cut: Mutex::default(),
            places: ids.iter().zip(0..).map(|(id, place)| (*id, place)).collect(),
            dice: Mutex::default(),
            seed,
        }
    }

    fn roll(&self, from: NodeId, to: NodeId) -> (bool, u64, bool) {
        let mut dice = self.dice.lock().expect("never poisoned");
        let link = dice.entry((from, to)).or_insert_with(|| {
            let place = |id| self.places.get(&id).copied().unwrap_or(99);
            let salt = (place(from) << 8) | place(to);
            StdRng::seed_from_u64(self.seed ^ 0x6e65_7477_6f72_6b00 ^ salt)
        });
        (link.gen_bool(LOSS), link.gen_range(0..=DELAY_MS_MAX), link.gen_bool(DUPLICATION))
    }

    pub(crate) fn up(&self, id: NodeId, consensus: Consensus) {
        self.nodes.lock().expect("never poisoned").insert(id, consensus);
    }

    pub(crate) fn down(&self, id: NodeId) {
        self.nodes.lock().expect("never poisoned").remove(&id);
    }

    /// Cuts every link to and from `id`.
    pub(crate) fn isolate(&self, id: NodeId, all: &[NodeId]) {
        let mut cut = self.cut.lock().expect("never poisoned");
        for other in all.iter().filter(|other| **other != id) {
            cut.insert((id, *other));
            cut.insert((*other, id));
        }
    }

    pub(crate) fn heal(&self) {
        self.cut.lock().expect("never poisoned").clear();
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.lock().expect("never poisoned").contains(&(from, to))
    }
}

/// One node's side of the network.
pub(crate) struct SimTransport {
    pub(crate) from: NodeId,
    pub(crate) net: Arc<Net>,
}

impl Transport for SimTransport {
    async fn call(
        &self,
        target: NodeId,
        _peer: &Peer,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let unreachable =
            |reason: &str| TransportError::Unreachable { node: target, reason: reason.to_owned() };
        let (lost, delay, duplicated) = self.net.roll(self.from, target);
        if lost || self.net.is_cut(self.from, target) {
            return Err(unreachable("lost or cut"));
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let node = self.net.nodes.lock().expect("never poisoned").get(&target).cloned();
        let node = node.ok_or_else(|| unreachable("down"))?;
        if duplicated {
            let _ = node.handle(rpc, &body).await;
        }
        let reply = node
            .handle(rpc, &body)
            .await
            .map_err(|reason| TransportError::Failed { node: target, reason })?;
        if self.net.is_cut(target, self.from) {
            return Err(unreachable("reply cut"));
        }
        Ok(reply)
    }
}
