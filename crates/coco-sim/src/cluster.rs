//! One simulated run: build a three-node service through its own APIs (genesis, a member's
//! signed proposals, joins), then step through faults and a client workload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coco_crypto::{Certificate, SigningKey};
use coco_kv::MapName;
use coco_node::consensus::{Consensus, Peer, Settings};
use coco_node::{GovCall, JoinRequest, JoinState, Node, NodeConfig, SharedNode};
use coco_types::{Limits, NodeId, TxId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::checks::Checker;
use crate::net::{Net, SimTransport};

/// Nodes in a run.
const NODES: usize = 3;
/// Steps with faults, then steps to heal and catch up.
const STEPS: u32 = 60;
const HEAL_STEPS: u32 = 200;
/// Simulated time per step.
const STEP: Duration = Duration::from_millis(50);
/// Writes the client sends per step.
const WRITES_PER_STEP: u32 = 3;
/// Simulated wall clock at the start (the node takes time as an input).
const EPOCH_MS: u64 = 1_790_000_000_000;

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Transactions seen Committed.
    pub committed: usize,
    /// Crashes injected.
    pub crashes: u32,
    /// Partitions injected.
    pub partitions: u32,
    /// The last view reached.
    pub view: u64,
    /// Committed snapshot files compared across nodes at the end.
    pub snapshots: usize,
    /// Snapshots nodes received from the primary and installed (live nodes' counters).
    pub installed: u64,
}

/// A broken invariant (or a run that could not proceed), with where.
#[derive(Debug, thiserror::Error)]
#[error("seed {seed}, step {step}: {what}")]
pub struct SimError {
    /// The seed that reproduces it.
    pub seed: u64,
    /// The step it was found at.
    pub step: u32,
    /// What broke.
    pub what: String,
}

pub(crate) struct SimNode {
    pub(crate) id: NodeId,
    pub(crate) config: NodeConfig,
    pub(crate) shared: Option<SharedNode>,
    pub(crate) consensus: Option<Consensus>,
}

/// Runs one seed to the end.
///
/// # Errors
/// The first broken invariant.
pub fn run_seed(seed: u64) -> Result<Report, SimError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| SimError { seed, step: 0, what: e.to_string() })?;
    runtime.block_on(Run::new(seed)?.go())
}

struct Run {
    seed: u64,
    dir: tempfile::TempDir,
    nodes: Vec<SimNode>,
    net: Arc<Net>,
    dice: StdRng,
    checker: Checker,
    acknowledged: Arc<Mutex<Vec<TxId>>>,
    report: Report,
    started: tokio::time::Instant,
}

impl Run {
    fn new(seed: u64) -> Result<Self, SimError> {
        coco_consensus::seed_thread_rng(seed);
        let fail = |what: String| SimError { seed, step: 0, what };
        let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
        let nodes = bootstrap(dir.path(), seed).map_err(|e| fail(format!("bootstrap: {e:#}")))?;
        let ids: Vec<NodeId> = nodes.iter().map(|node| node.id).collect();
        Ok(Self {
            seed,
            dir,
            nodes,
            net: Arc::new(Net::new(seed, &ids)),
            dice: StdRng::seed_from_u64(seed),
            checker: Checker::default(),
            acknowledged: Arc::default(),
            report: Report { seed, ..Report::default() },
            started: tokio::time::Instant::now(),
        })
    }

    fn fail(&self, step: u32, what: String) -> SimError {
        SimError { seed: self.seed, step, what }
    }

    async fn go(mut self) -> Result<Report, SimError> {
        for index in 0..NODES {
            self.start_node(index).await.map_err(|e| self.fail(0, e))?;
        }
        self.configure().await.map_err(|e| self.fail(0, e))?;
        for step in 1..=STEPS {
            self.faults(step).await.map_err(|e| self.fail(step, e))?;
            self.step(step).await?;
        }
        self.net.heal();
        for index in 0..NODES {
            if self.nodes[index].consensus.is_none() {
                self.start_node(index).await.map_err(|e| self.fail(STEPS, e))?;
            }
        }
        for step in STEPS + 1..=STEPS + HEAL_STEPS {
            self.step(step).await?;
            if self.checker.caught_up(&self.nodes) {
                break;
            }
        }
        let done = STEPS + HEAL_STEPS;
        self.report.snapshots =
            self.checker.final_checks(&self.nodes).map_err(|e| self.fail(done, e))?;
        self.report.installed += self.installs_on_live_nodes();
        self.report.committed = self.checker.committed_count();
        self.report.view = self.checker.last_view();
        for node in &self.nodes {
            if let Some(consensus) = &node.consensus {
                consensus.shutdown().await;
            }
        }
        drop(self.dir);
        Ok(self.report)
    }

    async fn start_node(&mut self, index: usize) -> Result<(), String> {
        let now = self.now_ms();
        let node = &mut self.nodes[index];
        let opened = Node::open(&node.config, now).map_err(|e| format!("open node{index}: {e}"))?;
        let shared = SharedNode::new_synchronous(opened, Arc::new(|_| {}));
        let transport = Arc::new(SimTransport { from: node.id, net: self.net.clone() });
        let settings = settings(&node.config.limits);
        let consensus = Consensus::start(node.id, &settings, Arc::new(shared.clone()), transport)
            .await
            .map_err(|e| format!("consensus on node{index}: {e}"))?;
        self.net.up(node.id, consensus.clone());
        node.shared = Some(shared);
        node.consensus = Some(consensus);
        Ok(())
    }

    /// The first node is the only voter: it adds the others, then makes all three voters.
    async fn configure(&mut self) -> Result<(), String> {
        let first = self.nodes[0].consensus.clone().ok_or("node0 is down")?;
        first.campaign().await.map_err(|e| e.to_string())?;
        first
            .wait_until(Duration::from_secs(5), |status| status.is_primary)
            .await
            .map_err(|status| format!("node0 never became primary: {status:?}"))?;
        let mut voters = BTreeSet::new();
        for (index, node) in self.nodes.iter().enumerate() {
            voters.insert(node.id);
            if index > 0 {
                let peer = Peer { address: format!("node{index}") };
                first.add_learner(node.id, peer).await.map_err(|e| e.to_string())?;
            }
        }
        first.change_voters(voters).await.map_err(|e| e.to_string())
    }

    fn now_ms(&self) -> u64 {
        EPOCH_MS + u64::try_from(self.started.elapsed().as_millis()).unwrap_or(0)
    }

    async fn faults(&mut self, _step: u32) -> Result<(), String> {
        let ids: Vec<NodeId> = self.nodes.iter().map(|node| node.id).collect();
        let down = self.nodes.iter().filter(|node| node.consensus.is_none()).count();
        let roll: f64 = self.dice.r#gen();
        if roll < 0.05 && down == 0 {
            let index = self.dice.gen_range(0..NODES);
            let tear = self.dice.gen_bool(0.5);
            self.crash(index, tear).await?;
        } else if roll < 0.15 && down > 0 {
            let index = self.nodes.iter().position(|node| node.consensus.is_none());
            self.start_node(index.ok_or("no node down")?).await?;
        } else if roll < 0.20 {
            let index = self.dice.gen_range(0..NODES);
            self.net.isolate(ids[index], &ids);
            self.report.partitions += 1;
        } else if roll < 0.30 {
            self.net.heal();
        }
        Ok(())
    }

    /// Stops a node as `kill -9` would, optionally tearing its last write.
    async fn crash(&mut self, index: usize, tear: bool) -> Result<(), String> {
        let node = &mut self.nodes[index];
        self.net.down(node.id);
        if let Some(consensus) = node.consensus.take() {
            consensus.shutdown().await;
        }
        if let Some(shared) = node.shared.take() {
            self.report.installed += shared.lock().metrics().snapshots_installed;
        }
        if tear {
            let cut = self.dice.gen_range(1..64);
            tear_last_write(&node.config.storage.ledger_dir, cut)?;
        }
        self.report.crashes += 1;
        Ok(())
    }

    async fn step(&mut self, step: u32) -> Result<(), SimError> {
        self.sign_and_write();
        self.offer_snapshots().await;
        tokio::time::sleep(STEP).await;
        self.checker.observe(&self.nodes, &self.acknowledged).map_err(|e| self.fail(step, e))
    }

    fn installs_on_live_nodes(&self) -> u64 {
        let live = self.nodes.iter().filter_map(|node| node.shared.as_ref());
        live.map(|shared| shared.lock().metrics().snapshots_installed).sum()
    }

    /// As the host does: each node's consensus adopts the node's newest committed snapshot,
    /// so a node far behind receives it instead of old entries.
    async fn offer_snapshots(&self) {
        for node in &self.nodes {
            if let (Some(shared), Some(consensus)) = (&node.shared, &node.consensus) {
                let newest = shared.lock().newest_snapshot();
                if let Some(at) = newest {
                    consensus.snapshot_committed(at).await;
                }
            }
        }
    }

    /// On the primary (if any): queue a signature and a few writes.
    fn sign_and_write(&mut self) {
        let now = self.now_ms();
        let Some(primary) = self.nodes.iter().find(|node| {
            node.consensus.as_ref().is_some_and(|consensus| consensus.status().is_primary)
        }) else {
            return;
        };
        let (Some(shared), Some(consensus)) = (primary.shared.clone(), primary.consensus.clone())
        else {
            return;
        };
        let mut tickets = Vec::new();
        {
            let mut node = shared.lock();
            if let Ok(signing) = node.queue_signature(now) {
                tickets.extend(signing);
            }
            for _ in 0..WRITES_PER_STEP {
                let key: u64 = self.dice.r#gen();
                let acknowledged = self.acknowledged.clone();
                let work: coco_node::Work = Box::new(move |node: &mut Node, _at| {
                    let mut tx = node.begin_read();
                    tx.put(&records(), key.to_be_bytes(), b"simulated".to_vec());
                    if let Ok(coco_node::Commit::Ordered(tx)) = node.commit(tx) {
                        acknowledged.lock().expect("never poisoned").push(tx);
                    }
                });
                if let Ok(ticket) = node.submit(work) {
                    tickets.push(ticket);
                }
            }
        }
        for ticket in tickets {
            let consensus = consensus.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let outcome = match consensus.propose(ticket).await {
                    Ok(proposal) => proposal.committed().await.map(drop),
                    Err(e) => Err(e),
                };
                if outcome.is_err() {
                    shared.lock().forget(ticket);
                }
            });
        }
    }
}

fn records() -> MapName {
    MapName::new("records").expect("a valid map name")
}

fn settings(limits: &Limits) -> Settings {
    Settings {
        heartbeat_ms: limits.heartbeat_ms,
        election_timeout_ms: (limits.election_timeout_min_ms, limits.election_timeout_max_ms),
        max_entries_per_message: limits.replication_entries_max,
        entries_kept_before_snapshot: limits.snapshot_tx_interval,
    }
}

/// Leaves `bytes` bytes of a next entry at the end of the in-progress chunk, as a crash in
/// the middle of a write does (what was synced before stays: the node syncs before it
/// acknowledges, so that is all a crash can tear).
fn tear_last_write(ledger: &Path, bytes: u64) -> Result<(), String> {
    let entries = std::fs::read_dir(ledger).map_err(|e| e.to_string())?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let in_progress = name
            .strip_prefix("ledger_")
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()));
        if in_progress {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(entry.path())
                .map_err(|e| e.to_string())?;
            // The start of an entry (format 1, 1,000 bytes announced) cut short.
            let mut partial = vec![1, 0, 0xe8, 0x03, 0, 0, 0, 0];
            partial.resize(partial.len() + usize::try_from(bytes).unwrap_or(1), 0x5a);
            std::io::Write::write_all(&mut file, &partial).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The simulator's one member: signs governance requests to node0 during bootstrap.
struct Member {
    key: SigningKey,
    id: String,
    created_at: u64,
}

impl Member {
    fn govern(
        &self,
        node: &mut Node,
        call: GovCall<'_>,
        msg_type: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let payload = serde_json::to_vec(body)?;
        let envelope = coco_crypto::sign_gov_envelope(
            &self.key,
            &self.id,
            msg_type,
            self.created_at,
            None,
            &payload,
        );
        let reply =
            node.governance(call, &envelope).map_err(|e| anyhow::anyhow!("governance: {e}"))?;
        Ok(reply.body)
    }

    /// Acks the state digest (the member becomes Active), then allows the simulator's code.
    fn activate_and_allow(
        &self,
        node: &mut Node,
        measurement: &coco_types::Digest,
    ) -> anyhow::Result<()> {
        let call = GovCall::UpdateStateDigest { member_id: &self.id };
        let digest = self.govern(node, call, "state_digest", &json!({}))?.unwrap_or_default();
        let digest = json!({"stateDigest": digest["stateDigest"]});
        self.govern(node, GovCall::Ack { member_id: &self.id }, "ack", &digest)?;
        let allow = json!({"actions": [
            {"name": "add_platform", "args": {"platform": "virtual"}},
            {"name": "add_code_measurement",
             "args": {"platform": "virtual", "measurement": measurement.to_hex()}},
        ]});
        self.govern(node, GovCall::Propose, "proposal", &allow).map(drop)
    }
}

/// Genesis on node0, a member who allows the simulator's "code", and two nodes that join
/// through node0's own join and governance paths.
fn bootstrap(dir: &Path, seed: u64) -> anyhow::Result<Vec<SimNode>> {
    let mut keys = StdRng::seed_from_u64(seed ^ 0x6b65_7973);
    let key = seeded_key(&mut keys)?;
    let cert = Certificate::self_signed_identity(&key, "member0", EPOCH_MS / 1000, 30)?;
    std::fs::write(dir.join("member0_cert.pem"), cert.to_pem())?;
    let member =
        Member { key, id: cert.sha256_der().to_hex(), created_at: EPOCH_MS / 1000 + seed % 1000 };
    let configs: Vec<NodeConfig> = (0..NODES).map(|index| config(dir, index)).collect();
    let mut genesis = Node::open(&configs[0], EPOCH_MS)?;
    let measurement = coco_crypto::sha256(b"coco-sim");
    member.activate_and_allow(&mut genesis, &measurement)?;
    let mut nodes = vec![SimNode {
        id: genesis.node_id(),
        config: configs[0].clone(),
        shared: None,
        consensus: None,
    }];
    for (index, config) in configs.iter().enumerate().skip(1) {
        let key = seeded_key(&mut keys)?;
        let id = join(&mut genesis, &member, config, index, &key, &measurement)?;
        nodes.push(SimNode { id, config: config.clone(), shared: None, consensus: None });
    }
    genesis.emit_signature(EPOCH_MS)?;
    genesis.flush()?;
    Ok(nodes)
}

/// Node `index` asks node0 to join, the member trusts it, and it seals what it receives.
fn join(
    genesis: &mut Node,
    member: &Member,
    config: &NodeConfig,
    index: usize,
    key: &SigningKey,
    measurement: &coco_types::Digest,
) -> anyhow::Result<NodeId> {
    let cert = Certificate::self_signed_identity(key, "sim-node", EPOCH_MS / 1000, 30)?;
    let request = JoinRequest {
        quote_info: coco_node::attestation::virtual_evidence(measurement, &key.public_key_der()),
        node_to_node_address: format!("node{index}"),
        subject_alt_names: vec![],
    };
    let id = genesis.record_join(cert.der(), &request)?;
    let trust = json!({"actions": [{"name": "transition_node_to_trusted",
                                    "args": {"node_id": id.to_hex()}}]});
    member.govern(genesis, GovCall::Propose, "proposal", &trust)?;
    let (_, JoinState::Trusted(material)) = genesis.join_state(cert.der())? else {
        anyhow::bail!("node{index} was not trusted");
    };
    Node::accept_join(config, &key.to_pkcs8_pem(), &material)?;
    Ok(id)
}

/// A P-384 key from the seed (SEC1 DER of a scalar below the group order), so the joining
/// nodes' ids, and the order consensus visits them in, repeat with the seed.
fn seeded_key(rng: &mut StdRng) -> anyhow::Result<SigningKey> {
    let mut scalar = [0u8; 48];
    rng.fill(&mut scalar[..]);
    scalar[0] = 0x7f;
    let mut der = vec![0x30, 0x3e, 0x02, 0x01, 0x01, 0x04, 0x30];
    der.extend_from_slice(&scalar);
    der.extend_from_slice(&[0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
    let pem = coco_crypto::pem_encode(coco_crypto::PEM_LABEL_EC_PRIVATE_KEY, &der);
    Ok(SigningKey::from_pkcs8_pem(&pem)?)
}

fn config(dir: &Path, index: usize) -> NodeConfig {
    let node_dir: PathBuf = dir.join(format!("node{index}"));
    let text = format!(
        r#"
[network]
listen_address = "127.0.0.1:{}"
[storage]
ledger_dir = "{}/ledger"
state_dir = "{}/state"
service_cert_file = "{}/service_cert.pem"
snapshots_dir = "{}/snapshots"
[service]
members = ["{}/member0_cert.pem"]
[limits]
sig_tx_interval = 10
sig_ms_interval = 20
ledger_chunk_bytes = 4096
snapshot_tx_interval = 40
"#,
        40_000 + index,
        node_dir.display(),
        node_dir.display(),
        node_dir.display(),
        node_dir.display(),
        dir.display(),
    );
    let path = dir.join(format!("node{index}.toml"));
    std::fs::write(&path, text).expect("the temp dir is writable");
    NodeConfig::load(&path).expect("the simulator writes a valid configuration")
}
