//! The sandbox opens its service the way a consortium does: every member acks the state
//! digest, member0 proposes `transition_service_to_open`, the others vote until the
//! constitution accepts. A restarted sandbox finds the service already open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use coco_client::{Client, ClientConfig, Connection, Protocol};
use coco_crypto::{Certificate, SigningKey, sign_gov_envelope};
use serde_json::{Value, json};

const API: &str = "api-version=2024-07-01";

struct Member {
    key: SigningKey,
    id: String,
}

pub(super) async fn open_service(
    members: &[PathBuf],
    service_cert: &Path,
    addr: SocketAddr,
) -> Result<()> {
    let service_pem = std::fs::read_to_string(service_cert)
        .with_context(|| format!("reading {}", service_cert.display()))?;
    let client = Client::new(ClientConfig::new(&service_pem, None)?);
    let mut conn = client.connect(addr, Protocol::Http2).await?;
    if service_status(&mut conn).await? == "Open" {
        return Ok(());
    }
    let members = members.iter().map(|cert| load_member(cert)).collect::<Result<Vec<_>>>()?;
    for member in &members {
        ack(&mut conn, member).await?;
    }
    let Some((proposer, voters)) = members.split_first() else {
        bail!("the service has no member")
    };
    let proposal = json!({"actions": [{"name": "transition_service_to_open", "args": {}}]});
    let mut info =
        post(&mut conn, proposer, "proposal", None, "/gov/members/proposals:create", &proposal)
            .await?;
    let proposal_id = info["proposalId"].as_str().context("proposal without id")?.to_owned();
    let ballot = json!({"ballot": "export function vote (proposal, proposerId) { return true }"});
    for voter in voters {
        if info["proposalState"] != "Open" {
            break;
        }
        let path = format!("/gov/members/proposals/{proposal_id}/ballots/{}:submit", voter.id);
        info = post(&mut conn, voter, "ballot", Some(&proposal_id), &path, &ballot).await?;
    }
    ensure!(info["proposalState"] == "Accepted", "opening the service was not accepted: {info}");
    ensure!(service_status(&mut conn).await? == "Open", "the service did not open");
    Ok(())
}

fn load_member(cert_path: &Path) -> Result<Member> {
    let cert_name = cert_path.to_string_lossy();
    let key_path = PathBuf::from(cert_name.replace("_cert.pem", "_privk.pem"));
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "the sandbox signs as its members to open the service: reading {}",
                path.display()
            )
        })
    };
    let cert = Certificate::from_pem(&read(cert_path)?)?;
    let key = SigningKey::from_pkcs8_pem(&read(&key_path)?)?;
    Ok(Member { key, id: cert.sha256_der().to_hex() })
}

async fn service_status(conn: &mut Connection) -> Result<String> {
    let response = conn.get("/node/network").await?;
    let network: Value = serde_json::from_slice(&response.body)?;
    Ok(network["service_status"].as_str().unwrap_or_default().to_owned())
}

async fn ack(conn: &mut Connection, member: &Member) -> Result<()> {
    let update = format!("/gov/members/state-digests/{}:update", member.id);
    let digest = post(conn, member, "state_digest", None, &update, &json!({})).await?;
    let path = format!("/gov/members/state-digests/{}:ack", member.id);
    let body = json!({"stateDigest": digest["stateDigest"]});
    post(conn, member, "ack", None, &path, &body).await?;
    Ok(())
}

async fn post(
    conn: &mut Connection,
    member: &Member,
    msg_type: &str,
    proposal_id: Option<&str>,
    path: &str,
    body: &Value,
) -> Result<Value> {
    let created_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let payload = serde_json::to_vec(body)?;
    let envelope =
        sign_gov_envelope(&member.key, &member.id, msg_type, created_at, proposal_id, &payload);
    let url = format!("{path}?{API}");
    let response = conn
        .request(http::Method::POST, &url, Some("application/cose"), Bytes::from(envelope))
        .await?;
    ensure!(
        response.status.is_success(),
        "{path}: {} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&response.body)?)
}
