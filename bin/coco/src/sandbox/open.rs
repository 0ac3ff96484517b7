//! The sandbox opens its service the way a consortium does: every member acks the state
//! digest, member0 proposes `transition_service_to_open` (with this binary's measurement
//! and the `virtual` platform allowed, so nodes running it can join), the others vote
//! until the constitution accepts. A restarted sandbox finds the service already open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use coco_client::{Client, ClientConfig, Connection, GovClient, Protocol};
use serde_json::{Value, json};

pub(super) async fn open_service(
    members: &[PathBuf],
    service_cert: &Path,
    addr: SocketAddr,
) -> Result<()> {
    let service_pem = std::fs::read_to_string(service_cert)
        .with_context(|| format!("reading {}", service_cert.display()))?;
    let client = Client::new(ClientConfig::new(&service_pem, None)?);
    let mut status_conn = client.connect(addr, Protocol::Http2).await?;
    if service_status(&mut status_conn).await? == "Open" {
        return Ok(());
    }
    let mut governors = governors(members, &client, addr).await?;
    for governor in &mut governors {
        governor.ack().await?;
    }
    // This binary's own measurement and platform, so nodes running it can join (W26).
    let measurement = crate::measurement()?.to_hex();
    let proposal = json!({"actions": [
        {"name": "add_platform", "args": {"platform": "virtual"}},
        {"name": "add_code_measurement",
         "args": {"platform": "virtual", "measurement": measurement}},
        {"name": "transition_service_to_open", "args": {}},
    ]});
    pass(&mut governors, &proposal).await?;
    ensure!(service_status(&mut status_conn).await? == "Open", "the service did not open");
    Ok(())
}

/// One governance client per member, signing as that member.
pub(super) async fn governors(
    members: &[PathBuf],
    client: &Client,
    addr: SocketAddr,
) -> Result<Vec<GovClient>> {
    let mut governors = Vec::with_capacity(members.len());
    for cert in members {
        let (key_pem, cert_pem) = read_member(cert)?;
        let conn = client.connect(addr, Protocol::Http2).await?;
        governors.push(GovClient::new(conn, &key_pem, &cert_pem, crate::gov_cmd::now_s)?);
    }
    Ok(governors)
}

/// The first member proposes, the others vote until the constitution accepts.
pub(super) async fn pass(governors: &mut [GovClient], proposal: &Value) -> Result<()> {
    let Some((proposer, voters)) = governors.split_first_mut() else {
        bail!("the service has no member")
    };
    let mut info = proposer.propose(proposal).await?;
    let proposal_id = info["proposalId"].as_str().context("proposal without id")?.to_owned();
    for voter in voters {
        if info["proposalState"] != "Open" {
            break;
        }
        info = voter.vote(&proposal_id, true).await?;
    }
    ensure!(info["proposalState"] == "Accepted", "the proposal was not accepted: {info}");
    Ok(())
}

/// The member's key and certificate PEMs; the key sits beside the certificate, named as
/// `coco keygen` names it.
fn read_member(cert_path: &Path) -> Result<(String, String)> {
    let key_path = PathBuf::from(cert_path.to_string_lossy().replace("_cert.pem", "_privk.pem"));
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| {
            format!("the sandbox signs as its members to open the service: {}", path.display())
        })
    };
    Ok((read(&key_path)?, read(cert_path)?))
}

async fn service_status(conn: &mut Connection) -> Result<String> {
    let response = conn.get("/node/network").await?;
    let network: Value = serde_json::from_slice(&response.body)?;
    Ok(network["service_status"].as_str().unwrap_or_default().to_owned())
}
