//! `coco sandbox`: a working one-node service on loopback with embedded defaults, named as
//! CCF's sandbox names its files so CCF users feel at home.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coco_node::{NetworkConfig, NodeConfig, ServiceConfig, StorageConfig};
use coco_types::Limits;

mod nodes;
mod open;

/// Arguments of `coco sandbox`.
#[derive(clap::Args)]
pub(crate) struct SandboxArgs {
    /// The sandbox directory; run again on the same directory to keep its data.
    #[arg(long, default_value = "sandbox")]
    dir: PathBuf,
    /// TCP port of the first node (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Nodes in the service: the first runs in this process, the others as `coco node`
    /// processes the members vote in (their logs in `<dir>/node<i>/node.log`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    nodes: u32,
}

/// Longest the sandbox waits for its members to open the service.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) fn run(args: &SandboxArgs) -> Result<()> {
    let dir = crate::absolute(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in ["member0", "member1", "member2", "user0"] {
        if !dir.join(format!("{name}_cert.pem")).exists() {
            crate::keygen::generate_identity(&dir, name, false)?;
        }
    }
    for name in ["member0", "member1", "member2"] {
        if !dir.join(format!("{name}_enc_pubk.pem")).exists() {
            crate::keygen::generate_encryption_key(&dir, name)?;
        }
    }
    let config_path = dir.join("node0").join("config.toml");
    let mut config = if config_path.exists() {
        NodeConfig::load(&config_path)?
    } else {
        let config = default_config(args.port);
        std::fs::create_dir_all(dir.join("node0"))?;
        std::fs::write(&config_path, config.to_toml())
            .with_context(|| format!("writing {}", config_path.display()))?;
        NodeConfig::load(&config_path)?
    };
    config.network.listen_address.set_port(args.port);
    let members = config.service.members.clone();
    let service_cert = config.storage.service_cert_file.clone();
    let others = std::sync::Mutex::new(None);
    let result = crate::node_cmd::serve(
        &config,
        crate::node_cmd::Startup::Start,
        async |addr: SocketAddr| {
            tokio::time::timeout(OPEN_WAIT, open::open_service(&members, &service_cert, addr))
                .await
                .with_context(|| format!("the service did not open within {OPEN_WAIT:?}"))??;
            let (nodes, addresses) =
                nodes::start(&dir, args.nodes, addr, &members, &service_cert).await?;
            *others.lock().expect("never poisoned") = Some(nodes);
            print_banner(&dir, addr, members.len());
            for (index, address) in addresses.iter().enumerate() {
                println!(
                    "  node{}:        https://{address} (log {}/node{}/node.log)",
                    index + 1,
                    dir.display(),
                    index + 1
                );
            }
            Ok(())
        },
    );
    // The other nodes stop with this one.
    drop(others);
    result
}

pub(super) fn default_config(port: u16) -> NodeConfig {
    NodeConfig {
        network: NetworkConfig::loopback(port),
        // Relative: resolved against the node's directory when the file is loaded.
        storage: StorageConfig::under(Path::new(""), PathBuf::from("../service_cert.pem")),
        service: ServiceConfig {
            members: (0..3).map(|i| PathBuf::from(format!("../member{i}_cert.pem"))).collect(),
            users: vec![PathBuf::from("../user0_cert.pem")],
            member_encryption_keys: (0..3)
                .map(|i| PathBuf::from(format!("../member{i}_enc_pubk.pem")))
                .collect(),
            recovery_threshold: 2,
        },
        limits: Limits::default(),
        // The Ethereum app funds the well-known development accounts, as anvil and Hardhat
        // do, so DApp tooling works at once.
        apps: [("eth".to_owned(), serde_json::json!({"dev_accounts": true}))].into(),
    }
}

fn print_banner(dir: &Path, addr: SocketAddr, members: usize) {
    let d = dir.display();
    println!("Coco sandbox is running: https://{addr}");
    println!("  directory:    {d} (run `coco sandbox --dir {d}` again to keep its data)");
    println!("  service cert: {d}/service_cert.pem");
    println!("  user:         {d}/user0_cert.pem, {d}/user0_privk.pem");
    println!("  members:      {d}/member{{0..{}}}_cert.pem and _privk.pem", members - 1);
    println!("Try it:");
    println!(
        "  curl https://{addr}/app/log/private --cacert {d}/service_cert.pem \
         --cert {d}/user0_cert.pem --key {d}/user0_privk.pem \
         -H 'content-type: application/json' -d '{{\"id\": 1, \"msg\": \"hello\"}}' -i"
    );
    println!(
        "  curl 'https://{addr}/app/log/private?id=1' --cacert {d}/service_cert.pem \
         --cert {d}/user0_cert.pem --key {d}/user0_privk.pem"
    );
    println!(
        "Ethereum JSON-RPC: https://{addr}/app/eth (chain id 31337; the ten `test … junk` \
         accounts hold 10,000 ETH; same certificates; docs/design/ethereum.md)"
    );
    println!(
        "  curl https://{addr}/app/eth --cacert {d}/service_cert.pem \
         --cert {d}/user0_cert.pem --key {d}/user0_privk.pem \
         -H 'content-type: application/json' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}}'"
    );
    println!("Govern it (majority of {members} members):");
    println!("  coco gov propose proposal.json --dir {d} --address {addr} --member member0");
    println!("  coco gov vote <proposalId> --accept --dir {d} --address {addr} --member member1");
    println!("Press Ctrl-C to stop.");
}
