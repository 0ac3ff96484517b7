//! `coco sandbox --nodes N`: the sandbox's first node creates and opens the service; each
//! other node runs as its own `coco node join` process (so it can be killed alone), asks to
//! join, and the sandbox's members vote it in, as a consortium would. A sandbox started
//! again on its directory restarts the joined nodes with `coco node start`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coco_client::{Client, ClientConfig, Protocol};
use coco_node::NodeConfig;
use serde_json::{Value, json};

/// Longest the sandbox waits for a node to ask to join, or to become a voter.
const NODE_WAIT: Duration = Duration::from_secs(60);

/// The sandbox's other nodes; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Nodes {
    children: Vec<(PathBuf, Child)>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (dir, child) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("{} did not stop in time: killing it", dir.display());
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts nodes 1..`count` of the sandbox in `dir`, joins those that never joined, and
/// waits until all `count` nodes are voters. Returns them with their addresses.
pub(crate) async fn start(
    dir: &Path,
    count: u32,
    primary: SocketAddr,
    members: &[PathBuf],
    service_cert: &Path,
) -> Result<(Nodes, Vec<SocketAddr>)> {
    if count <= 1 {
        // One node: nothing to start, and no connection to spend on waiting.
        return Ok((Nodes { children: Vec::new() }, Vec::new()));
    }
    let service_pem = std::fs::read_to_string(service_cert)
        .with_context(|| format!("reading {}", service_cert.display()))?;
    let client = Client::new(ClientConfig::new(&service_pem, None)?);
    let mut nodes = Nodes { children: Vec::new() };
    let mut addresses = Vec::new();
    for index in 1..count {
        let node_dir = dir.join(format!("node{index}"));
        let config_path = node_dir.join("config.toml");
        if !config_path.exists() {
            std::fs::create_dir_all(&node_dir)?;
            std::fs::write(&config_path, node_config(free_port()?).to_toml())
                .with_context(|| format!("writing {}", config_path.display()))?;
        }
        let config = NodeConfig::load(&config_path)?;
        let joined = config.storage.state_dir.join("service_cert.pem").exists();
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["node", if joined { "start" } else { "join" }, "--config"]);
        command.arg(&config_path);
        if !joined {
            command.args(["--target", &primary.to_string()]);
        }
        let log = std::fs::File::create(node_dir.join("node.log"))?;
        command.env(crate::node_cmd::STOP_WITH_PARENT, "1");
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn()?;
        nodes.children.push((node_dir.clone(), child));
        if !joined {
            trust_pending_node(&client, primary, members).await?;
        }
        addresses.push(config.network.listen_address);
    }
    wait_for_voters(&client, primary, count).await?;
    for address in &addresses {
        wait_until_serving(&client, *address).await?;
    }
    Ok((nodes, addresses))
}

/// Waits until the node at `address` answers and follows a primary.
async fn wait_until_serving(client: &Client, address: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + NODE_WAIT;
    loop {
        if let Ok(mut conn) = client.connect(address, Protocol::Http2).await
            && let Ok(response) = conn.get("/node/network").await
            && let Ok(network) = serde_json::from_slice::<Value>(&response.body)
            && network["primary_id"].is_string()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the node at {address} does not serve after {NODE_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sandbox's node configuration (its `service` part only matters at genesis, so a
/// joining node simply carries the first node's).
fn node_config(port: u16) -> NodeConfig {
    super::default_config(port)
}

/// A port free now (the node binds it a moment later).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits for a node to ask to join, then has the members trust it.
async fn trust_pending_node(
    client: &Client,
    primary: SocketAddr,
    members: &[PathBuf],
) -> Result<()> {
    let deadline = Instant::now() + NODE_WAIT;
    let node_id = loop {
        let mut conn = client.connect(primary, Protocol::Http2).await?;
        let nodes = coco_client::gov::gov_get(&mut conn, "/gov/service/nodes").await?;
        let pending = nodes["value"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|node| node["status"] == "Pending").cloned());
        if let Some(node) = pending {
            break node["nodeId"].as_str().unwrap_or_default().to_owned();
        }
        if Instant::now() >= deadline {
            bail!("no node asked to join within {NODE_WAIT:?}; see the sandbox's node logs");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut governors = super::open::governors(members, client, primary).await?;
    let proposal = json!({"actions": [{"name": "transition_node_to_trusted",
                                       "args": {"node_id": node_id}}]});
    super::open::pass(&mut governors, &proposal).await
}

async fn wait_for_voters(client: &Client, primary: SocketAddr, count: u32) -> Result<()> {
    let deadline = Instant::now() + NODE_WAIT;
    loop {
        let mut conn = client.connect(primary, Protocol::Http2).await?;
        let response = conn.get("/node/network").await?;
        let network: Value = serde_json::from_slice(&response.body)?;
        let voters = network["voters"].as_array().map_or(0, Vec::len);
        if voters == usize::try_from(count)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{voters} of {count} nodes are voters after {NODE_WAIT:?}: {network}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
