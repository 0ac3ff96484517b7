//! A three-node service through the binary: the sandbox's node creates and opens the
//! service, two nodes ask to join (`coco node join`), members pass
//! `transition_node_to_trusted` with `coco gov`, they catch up and become voters. Writes
//! commit on all three, across a rekey (backups open the new secret sealed to their
//! keys), whether sent to the primary or to a backup (forwarded); `kill -9` of the
//! primary elects a new one among the others, which keeps every committed write and
//! commits new ones; the survivors' committed ledger chunks are byte-identical and CCF's
//! `read_ledger.py` accepts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::block_on;
use coco_types::{Limits, TxId};

use crate::harness::{
    COCO, Launch, NodeProcess, Who, Workspace, describe, get_record, post_record, quick_limits,
    run_coco, wait_committed,
};

const WAIT: Duration = Duration::from_secs(30);
const CHUNK_BYTES: u64 = 4096;

#[test]
fn three_nodes_join_by_vote_commit_and_survive_the_loss_of_the_primary() {
    let mut workspace = Workspace::new();
    // Small chunks on the first primary; the others keep the default size, yet their
    // chunks are the same files: the primary ends chunks, in the entries.
    workspace.prepare(Limits { ledger_chunk_bytes: CHUNK_BYTES, ..quick_limits() });
    let node0 = workspace.start(Launch::Sandbox);
    let joiners: Vec<NodeProcess> = (1..=2).map(|n| join_by_vote(&workspace, &node0, n)).collect();
    wait_for(&node0, "3 voters", |network| network["voters"].as_array().map(Vec::len) == Some(3));
    for joiner in &joiners {
        // A joiner serves before the primary's first message reaches it.
        wait_for(joiner, "a known primary", |network| network["primary_id"].is_string());
    }
    let mut written = write_across_a_rekey(&workspace, &node0, &joiners);
    // An Ethereum transfer sent to a backup is forwarded, sealed in a block by the primary
    // and served, with its Coco receipt, by the other backup.
    let before = crate::eth::transfer_across_nodes(&joiners[0], &joiners[1], 0);
    let old_primary = network(&node0)["node_id"].as_str().unwrap().to_owned();
    // Commit-blocking writes keep coming while the primary is killed: each one answered
    // was committed, so each must survive.
    let load = under_load(&workspace, node0.addr());
    std::thread::sleep(Duration::from_millis(300));
    node0.kill9();
    let under_load = load.join().unwrap();
    assert!(!under_load.is_empty(), "writes were committed under load before the kill");
    written.extend(under_load);
    let primary = wait_for_primary(&joiners, &old_primary);
    let after = keep_committing(&workspace, primary, &joiners, &written);
    // The new primary goes on sealing blocks on the same chain, and the state is whole.
    let witness = joiners.iter().find(|j| j.addr() != primary.addr()).unwrap();
    let later = crate::eth::transfer_across_nodes(primary, witness, 1);
    crate::eth::assert_chain_continues(witness, &before, &later, 2);
    let replacement = replace_the_lost_node(&workspace, primary, &old_primary, after);
    let ledgers: Vec<PathBuf> = (1..=3).map(|n| node_dir(&workspace, n).join("ledger")).collect();
    replacement.terminate();
    for joiner in joiners {
        joiner.terminate();
    }
    assert_same_committed_chunks(&ledgers[0], &ledgers[1]);
    assert_same_committed_chunks(&ledgers[0], &ledgers[2]);
    for ledger in &ledgers {
        let verify = run_coco(&["ledger", "verify", "--quiet", &ledger.to_string_lossy()]);
        assert!(verify.status.success(), "coco ledger verify: {}", describe(&verify));
        if let Some(ccf) = crate::ccf::CcfPython::from_env("cluster") {
            let output = ccf.read_ledger(ledger, true);
            assert!(output.status.success(), "read_ledger.py: {}", describe(&output));
        }
    }
}

/// Writes 20 records, half through the primary, half through a backup (forwarded), with a
/// rekey proposed to a backup in between; every node serves them. Returns their TxIds.
fn write_across_a_rekey(
    workspace: &Workspace,
    node0: &NodeProcess,
    joiners: &[NodeProcess],
) -> Vec<TxId> {
    let rekey = workspace.root().join("rekey.json");
    let proposal = json!({"actions": [{"name": "trigger_ledger_rekey", "args": {}}]});
    std::fs::write(&rekey, proposal.to_string()).unwrap();
    let written = block_on(async {
        let mut user = node0.connect(&Who::User).await;
        let mut written = Vec::new();
        for id in 1..=10 {
            let msg = format!("secret {id}");
            written.push(post_record(&mut user, "/app/log/private", id, &msg).await.unwrap());
        }
        // A rekey, proposed to a backup (forwarded to the primary): the backups learn the
        // new secret from the ledger and read on.
        let addr = joiners[0].addr().to_string();
        let rekeyed = gov(&addr, &workspace.sandbox(), &["propose", &rekey.to_string_lossy()]);
        assert_eq!(rekeyed["proposalState"], "Accepted", "{rekeyed}");
        // Writes sent to a backup are forwarded to the primary.
        let mut user = joiners[1].connect(&Who::User).await;
        for id in 11..=20 {
            let msg = format!("secret {id}");
            written.push(post_record(&mut user, "/app/log/private", id, &msg).await.unwrap());
        }
        wait_committed(&mut user, *written.last().unwrap()).await;
        written
    });
    for joiner in joiners {
        block_on(async {
            let mut user = joiner.connect(&Who::User).await;
            wait_committed(&mut user, *written.last().unwrap()).await;
            let record = get_record(&mut user, "private", 20).await.unwrap();
            assert_eq!(record.as_deref(), Some("secret 20"), "a backup serves the record");
        });
    }
    written
}

/// Writes commit-blocking records to `node` from another thread until it stops answering;
/// returns the TxIds it acknowledged as committed.
fn under_load(workspace: &Workspace, address: SocketAddr) -> std::thread::JoinHandle<Vec<TxId>> {
    let dir = workspace.sandbox();
    let read = move |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let identity = coco_client::ClientIdentity {
        cert_pem: read("user0_cert.pem"),
        key_pem: read("user0_privk.pem"),
    };
    let config = coco_client::ClientConfig::new(&read("service_cert.pem"), Some(&identity));
    let client = coco_client::Client::new(config.unwrap());
    std::thread::spawn(move || {
        block_on(async move {
            let mut connection =
                client.connect(address, coco_client::Protocol::Http2).await.unwrap();
            let mut committed = Vec::new();
            for id in 1000.. {
                let path = "/app/log/blocking/private";
                match post_record(&mut connection, path, id, &format!("load {id}")).await {
                    Ok(tx) => committed.push(tx),
                    Err(_) => break,
                }
            }
            committed
        })
    })
}

/// After the failover: every committed record is there with a receipt that verifies, and
/// a new write commits on both survivors. Returns its TxId.
fn keep_committing(
    workspace: &Workspace,
    primary: &NodeProcess,
    joiners: &[NodeProcess],
    written: &[TxId],
) -> TxId {
    let service = workspace.service_cert_pem();
    block_on(async {
        let mut user = primary.connect(&Who::User).await;
        for id in 1..=20 {
            let record = get_record(&mut user, "private", id).await.unwrap();
            assert_eq!(record, Some(format!("secret {id}")), "committed record {id} survives");
        }
        // Every acknowledged write has a receipt from the new primary that verifies offline.
        for tx in written {
            for form in [coco_client::ReceiptForm::Json, coco_client::ReceiptForm::Cose] {
                let receipt = user.receipt(*tx, form, WAIT).await.unwrap();
                coco_client::verify_receipt_bytes(&receipt, &service)
                    .unwrap_or_else(|e| panic!("receipt of {tx} ({form:?}): {e}"));
            }
        }
        let tx = post_record(&mut user, "/app/log/private", 100, "after failover").await.unwrap();
        wait_committed(&mut user, tx).await;
        for joiner in joiners {
            wait_committed(&mut joiner.connect(&Who::User).await, tx).await;
        }
        tx
    })
}

/// A fresh node joins through the new primary and the members retire the lost one; the
/// configuration follows, and the newcomer catches up.
fn replace_the_lost_node(
    workspace: &Workspace,
    primary: &NodeProcess,
    lost: &str,
    after: TxId,
) -> NodeProcess {
    let replacement = join_by_vote(workspace, primary, 3);
    let retire = json!({"actions": [{"name": "remove_node", "args": {"node_id": lost}}]});
    let file = workspace.root().join("retire.json");
    std::fs::write(&file, retire.to_string()).unwrap();
    let address = primary.addr().to_string();
    let retired = gov(&address, &workspace.sandbox(), &["propose", &file.to_string_lossy()]);
    assert_eq!(retired["proposalState"], "Accepted", "{retired}");
    wait_for(primary, "the lost node replaced", |network| {
        let voters = network["voters"].as_array().cloned().unwrap_or_default();
        voters.len() == 3 && !voters.iter().any(|voter| voter == lost)
    });
    block_on(async {
        let mut user = replacement.connect(&Who::User).await;
        wait_committed(&mut user, after).await;
        let record = get_record(&mut user, "private", 100).await.unwrap();
        assert_eq!(record.as_deref(), Some("after failover"), "the replacement caught up");
    });
    replacement
}

pub(crate) fn node_dir(workspace: &Workspace, n: u32) -> PathBuf {
    workspace.root().join(format!("node{n}"))
}

/// Starts `coco node join` for node `n`, waits until it is Pending, has the members pass
/// `transition_node_to_trusted`, and returns the node once it serves.
pub(crate) fn join_by_vote(workspace: &Workspace, primary: &NodeProcess, n: u32) -> NodeProcess {
    let dir = node_dir(workspace, n);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = format!(
        r#"
[network]
listen_address = "127.0.0.1:{port}"
[storage]
ledger_dir = "ledger"
state_dir = "state"
service_cert_file = "../sandbox/service_cert.pem"
[service]
members = ["../sandbox/member0_cert.pem"]
[limits]
sig_ms_interval = 20
"#
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let mut command = Command::new(COCO);
    command.args(["node", "join", "--config"]).arg(dir.join("config.toml"));
    command.args(["--target", &primary.addr().to_string()]);
    let sandbox = workspace.sandbox();
    let log = workspace.root().join("logs").join(format!("node{n}.log"));
    let banner = "node listening on https://";
    let starting = std::thread::spawn(move || NodeProcess::spawn(command, banner, &sandbox, &log));
    let node_id = wait_pending(primary);
    let proposal = json!({"actions": [{"name": "transition_node_to_trusted",
                                       "args": {"node_id": node_id}}]});
    let file = dir.join("trust.json");
    std::fs::write(&file, proposal.to_string()).unwrap();
    let addr = primary.addr().to_string();
    let sandbox = workspace.sandbox();
    // The prepared sandbox has one member: its proposal is a majority at once.
    let proposed =
        gov(&addr, &sandbox, &["propose", &file.to_string_lossy(), "--member", "member0"]);
    assert_eq!(proposed["proposalState"], "Accepted", "{proposed}");
    starting.join().unwrap().unwrap_or_else(|e| panic!("node{n}: {e:#}"))
}

fn gov(addr: &str, dir: &Path, args: &[&str]) -> Value {
    let dir = dir.to_string_lossy();
    let mut all = vec!["gov"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--address", addr, "--dir", &dir]);
    let output = run_coco(&all);
    assert!(output.status.success(), "coco gov {args:?}: {}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The id of the node waiting to be trusted.
fn wait_pending(primary: &NodeProcess) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let nodes = block_on(async {
            let mut conn = primary.connect(&Who::Anonymous).await;
            let response = conn.get("/gov/service/nodes?api-version=2024-07-01").await.unwrap();
            serde_json::from_slice::<Value>(&response.body).unwrap()
        });
        let pending = nodes["value"].as_array().unwrap().iter().find(|n| n["status"] == "Pending");
        if let Some(node) = pending {
            return node["nodeId"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no node asked to join: {nodes}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn network(node: &NodeProcess) -> Value {
    block_on(async {
        let mut conn = node.connect(&Who::Anonymous).await;
        let response = conn.get("/node/network").await.unwrap();
        serde_json::from_slice(&response.body).unwrap()
    })
}

pub(crate) fn wait_for(
    node: &NodeProcess,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let network = network(node);
        if condition(&network) {
            return network;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {network}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The survivor that became primary after `old` was lost.
fn wait_for_primary<'a>(survivors: &'a [NodeProcess], old: &str) -> &'a NodeProcess {
    let network = wait_for(&survivors[0], "a new primary", |network| {
        network["primary_id"].as_str().is_some_and(|primary| primary != old)
    });
    let primary = network["primary_id"].as_str().unwrap();
    survivors
        .iter()
        .find(|node| self::network(node)["node_id"] == primary)
        .expect("the new primary is a survivor")
}

/// Committed chunk files present on both nodes are byte-identical.
fn assert_same_committed_chunks(a: &Path, b: &Path) {
    let chunks = |dir: &Path| -> Vec<PathBuf> { crate::harness::committed_chunks(dir) };
    let (left, right) = (chunks(a), chunks(b));
    assert!(!left.is_empty(), "{} has committed chunks", a.display());
    let mut compared = 0;
    for chunk in &left {
        let name = chunk.file_name().unwrap();
        if let Some(other) = right.iter().find(|other| other.file_name() == Some(name)) {
            assert_eq!(std::fs::read(chunk).unwrap(), std::fs::read(other).unwrap(), "{name:?}");
            compared += 1;
        }
    }
    assert!(compared > 0, "no committed chunk in common: {left:?} / {right:?}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    listener.local_addr().unwrap().port()
}

/// `coco sandbox --nodes 3` starts a three-node service whose backups take writes.
#[test]
fn the_sandbox_runs_three_nodes() {
    let workspace = Workspace::new();
    let mut command = Command::new(COCO);
    command.args(["sandbox", "--nodes", "3", "--port", "0", "--dir"]).arg(workspace.sandbox());
    let log = workspace.root().join("logs").join("sandbox.log");
    let banner = "Coco sandbox is running: https://";
    let sandbox = NodeProcess::spawn(command, banner, &workspace.sandbox(), &log)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let network = network(&sandbox);
    assert_eq!(network["voters"].as_array().map(Vec::len), Some(3), "{network}");
    let config = workspace.sandbox().join("node2").join("config.toml");
    let config = coco_node::NodeConfig::load(&config).unwrap();
    block_on(async {
        let service = workspace.service_cert_pem();
        let identity = coco_client::ClientIdentity {
            cert_pem: std::fs::read_to_string(workspace.sandbox().join("user0_cert.pem")).unwrap(),
            key_pem: std::fs::read_to_string(workspace.sandbox().join("user0_privk.pem")).unwrap(),
        };
        let client_config = coco_client::ClientConfig::new(&service, Some(&identity)).unwrap();
        let client = coco_client::Client::new(client_config);
        let address = config.network.listen_address;
        let mut backup = client.connect(address, coco_client::Protocol::Http2).await.unwrap();
        let tx = post_record(&mut backup, "/app/log/private", 1, "via node2").await.unwrap();
        wait_committed(&mut backup, tx).await;
        let record = get_record(&mut backup, "private", 1).await.unwrap();
        assert_eq!(record.as_deref(), Some("via node2"));
    });
    // Killed outright, the sandbox cannot stop its nodes: they notice and stop themselves.
    sandbox.kill9();
    let address = config.network.listen_address;
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(address).is_ok() {
        assert!(Instant::now() < deadline, "node2 still serves after its sandbox died");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Node-to-node endpoints and joins refuse what is not a node of the service, or not
/// attested, with CCF's codes, and change nothing.
#[test]
fn node_endpoints_refuse_strangers_and_unattested_joins() {
    let mut workspace = Workspace::new();
    workspace.prepare(quick_limits());
    let node = workspace.start(Launch::Sandbox);
    let user_pem = std::fs::read_to_string(workspace.sandbox().join("user0_cert.pem")).unwrap();
    let user_key = coco_crypto::Certificate::from_pem(&user_pem).unwrap().public_key_spki_der();
    let evidence = |measurement: String, key: &[u8]| {
        json!({"quote_info": {"format": "Insecure_Virtual", "measurement": measurement,
                              "report_data": coco_crypto::sha256(key).to_hex()},
               "node_to_node_address": "127.0.0.1:1", "subject_alt_names": ["127.0.0.1"]})
    };
    let allowed = coco_crypto::sha256(&std::fs::read(COCO).unwrap()).to_hex();
    block_on(async {
        let mut anonymous = node.connect(&Who::Anonymous).await;
        let response = anonymous
            .request(http::Method::POST, "/node/consensus/vote", None, bytes::Bytes::new())
            .await
            .unwrap();
        crate::harness::expect_error(&response, 401, "NodeCertificateRequired");
        let mut user = node.connect(&Who::User).await;
        let response = user
            .request(http::Method::POST, "/node/consensus/vote", None, bytes::Bytes::new())
            .await
            .unwrap();
        crate::harness::expect_error(&response, 403, "NodeNotEndorsed");
        let response = user
            .request(http::Method::POST, "/node/forward", None, bytes::Bytes::new())
            .await
            .unwrap();
        crate::harness::expect_error(&response, 403, "NodeNotEndorsed");
        let unknown =
            user.post_json("/node/join", &evidence("00".repeat(32), &user_key)).await.unwrap();
        crate::harness::expect_error(&unknown, 403, "CodeIdNotFound");
        let unbound =
            user.post_json("/node/join", &evidence(allowed, b"another key")).await.unwrap();
        crate::harness::expect_error(&unbound, 403, "InvalidQuote");
        let malformed = user.post_json("/node/join", &json!({"quote_info": 1})).await.unwrap();
        crate::harness::expect_error(&malformed, 400, "InvalidInput");
        let nodes = anonymous.get("/gov/service/nodes?api-version=2024-07-01").await.unwrap();
        let nodes: Value = serde_json::from_slice(&nodes.body).unwrap();
        assert_eq!(nodes["value"].as_array().map(Vec::len), Some(1), "nothing recorded: {nodes}");
    });
    node.terminate();
}
