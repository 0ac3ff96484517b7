//! Joining, both sides: the primary's `POST /node/join` (evidence checked against the
//! manifests, the node recorded Pending, its material handed over once members trust it),
//! the joining node's loop that asks until it is trusted (W27), and the reconfiguration
//! loop that keeps consensus's configuration equal to the Trusted nodes of governance.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coco_crypto::{Certificate, SigningKey};
use coco_node::consensus::Peer;
use coco_node::{JoinError, JoinMaterial, JoinRequest, JoinState, Node, NodeConfig};
use coco_types::NodeId;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::api_error::ApiError;
use crate::error::{Error, Result};
use crate::server::{PeerCert, Shared};

/// How often a joining node asks again while it waits for members.
const JOIN_RETRY: Duration = Duration::from_secs(1);
/// How often the primary compares the configuration with the Trusted nodes.
const RECONFIGURE_EVERY: Duration = Duration::from_millis(250);
/// Largest join answer accepted.
const JOIN_ANSWER_BYTES_MAX: usize = 4 * 1024 * 1024;

/// `POST /node/join`.
pub(crate) async fn node_join(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    if let crate::forward::Route::Primary(status) =
        crate::forward::route_checking(&shared, &request, false).await?
    {
        return crate::forward::forward(&shared, &status, request).await;
    }
    let peer = request.extensions().get::<PeerCert>().and_then(|peer| peer.0.clone());
    let der = peer.ok_or_else(|| join_error(&JoinError::Certificate("none presented".into())))?;
    let (parts, body) = request.into_parts();
    let body = crate::routes::read_body(&shared, &parts.headers, body).await?;
    let join: JoinRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", format!("join request: {e}"))
    })?;
    let (id, state) = shared.node().join_state(&der).map_err(|e| join_error(&e))?;
    match state {
        JoinState::Trusted(material) => {
            let body = json!({"node_id": id, "node_status": "Trusted", "network_info": *material});
            Ok((StatusCode::OK, axum::Json(body)).into_response())
        }
        JoinState::Pending => Ok(pending(id)),
        JoinState::New => {
            shared.node().check_join(&der, &join).map_err(|e| join_error(&e))?;
            crate::ordering::order(&shared, move |node: &mut Node, _at| {
                node.record_join(&der, &join)
            })
            .await?
            .map_err(|e| join_error(&e))?;
            Ok(pending(id))
        }
    }
}

fn pending(id: NodeId) -> Response {
    let body = json!({"node_id": id, "node_status": "Pending"});
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn join_error(error: &JoinError) -> ApiError {
    let (status, code) = match error {
        JoinError::Certificate(_) => (StatusCode::UNAUTHORIZED, "NodeCertificateRequired"),
        JoinError::Attestation(_) => (StatusCode::FORBIDDEN, "InvalidQuote"),
        JoinError::CodeNotAllowed(_) => (StatusCode::FORBIDDEN, "CodeIdNotFound"),
        JoinError::PlatformNotAllowed(_) => (StatusCode::FORBIDDEN, "InvalidPlatform"),
        JoinError::NotJoinable(..) => (StatusCode::FORBIDDEN, "NodeNotJoinable"),
        JoinError::Node(e) => return ApiError::from_node(e),
    };
    ApiError::new(status, code, error.to_string())
}

/// Keeps the consensus configuration equal to governance's Trusted nodes, on the primary:
/// a newly trusted node becomes a learner, then a voter; a retired one is removed.
pub(crate) async fn reconfigure_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(RECONFIGURE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = interval.tick() => {}
        }
        let newest_snapshot = shared.node().newest_snapshot();
        if let Some(at) = newest_snapshot {
            shared.consensus.snapshot_committed(at).await;
        }
        if let Err(e) = reconfigure(&shared).await {
            tracing::warn!(error = %e, "reconfiguration did not complete; retrying");
        }
    }
}

async fn reconfigure(shared: &Shared) -> std::result::Result<(), String> {
    let status = shared.consensus.status();
    if !status.is_primary || status.membership.configs.len() != 1 {
        return Ok(());
    }
    let voters = status.membership.configs[0].clone();
    let trusted = shared.node().trusted_nodes();
    let wanted: BTreeSet<NodeId> = trusted.iter().map(|(id, _)| *id).collect();
    for (id, address) in trusted.iter().filter(|(id, _)| !voters.contains(id)) {
        if !status.membership.nodes.contains_key(id) {
            tracing::info!(node = %id, %address, "adding a trusted node as learner");
            let peer = Peer { address: address.clone() };
            shared.consensus.add_learner(*id, peer).await.map_err(|e| e.to_string())?;
        }
    }
    let retired: BTreeSet<NodeId> = voters.difference(&wanted).copied().collect();
    // A learner votes once it has caught up: promoted earlier, a node that is still
    // starting (or far behind) would hold back every commit until it answers.
    let lag_max = shared.limits.replication_entries_max;
    let ready: BTreeSet<NodeId> = wanted
        .iter()
        .filter(|id| voters.contains(id) || shared.consensus.caught_up(**id, lag_max))
        .copied()
        .collect();
    if ready != voters && !ready.is_empty() {
        tracing::info!(voters = ready.len(), "changing the voters to the caught-up trusted nodes");
        shared.consensus.change_voters(ready).await.map_err(|e| e.to_string())?;
    }
    if !retired.is_empty() {
        shared.consensus.remove_nodes(retired).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Joins the service at `target` if this node has no identity yet: asks with its evidence
/// until members trust it, then seals what the primary hands over. A node that already
/// joined returns at once.
///
/// # Errors
/// A refusal (wrong code, platform, retired node), an unusable answer, or IO.
pub async fn join_service(
    config: &NodeConfig,
    target: &str,
    measurement: coco_types::Digest,
) -> Result<()> {
    if config.storage.state_dir.join("service_cert.pem").exists() {
        return Ok(());
    }
    if config.network.listen_address.port() == 0 {
        return Err(Error::Join(
            "a joining node needs a fixed listen port (not 0): other nodes reach it there".into(),
        ));
    }
    let key_path = config.storage.state_dir.join("node_privk.pem");
    let key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => SigningKey::from_pkcs8_pem(&pem).map_err(|e| Error::Join(e.to_string()))?,
        Err(_) => {
            let key = SigningKey::generate_p384().map_err(|e| Error::Join(e.to_string()))?;
            std::fs::create_dir_all(&config.storage.state_dir)
                .map_err(|source| Error::File { path: config.storage.state_dir.clone(), source })?;
            coco_node::write_private(&key_path, &key.to_pkcs8_pem())?;
            key
        }
    };
    let request = JoinRequest {
        quote_info: coco_node::attestation::virtual_evidence(&measurement, &key.public_key_der()),
        node_to_node_address: config.network.listen_address.to_string(),
        subject_alt_names: config.network.subject_alt_names.clone(),
    };
    let service_pem = std::fs::read_to_string(&config.storage.service_cert_file)
        .map_err(|source| Error::File { path: config.storage.service_cert_file.clone(), source })?;
    let service = Certificate::from_pem(&service_pem).map_err(|e| Error::Join(e.to_string()))?;
    loop {
        match ask(&service, &key, target, &request).await? {
            Asked::Trusted(material) => {
                Node::accept_join(config, &key.to_pkcs8_pem(), &material)?;
                tracing::info!(node = %material.node_id, "trusted: joining the service");
                return Ok(());
            }
            Asked::Pending(id) => {
                tracing::info!(node = %id, "waiting for members to trust this node");
            }
            Asked::Retry(reason) => tracing::warn!(%reason, "join not answered; retrying"),
        }
        tokio::time::sleep(JOIN_RETRY).await;
    }
}

enum Asked {
    Pending(NodeId),
    /// The target could not decide now (not the primary, busy): ask again.
    Retry(String),
    Trusted(Box<JoinMaterial>),
}

/// One `POST /node/join` to `target`, presenting a self-signed certificate of `key`.
async fn ask(
    service: &Certificate,
    key: &SigningKey,
    target: &str,
    request: &JoinRequest,
) -> Result<Asked> {
    let now = crate::server::now_ms() / 1000;
    let cert = Certificate::self_signed_identity(key, "coco-joining-node", now, 1)
        .map_err(|e| Error::Join(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(service.der().to_vec()))
        .map_err(|e| Error::Tls(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec()));
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(cert.der().to_vec())], key_der)
        .map_err(|e| Error::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let unreachable = |e: String| Error::Join(format!("{target}: {e}"));
    let (host, _) = target.rsplit_once(':').ok_or_else(|| unreachable("no port".into()))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| unreachable(e.to_string()))?;
    let stream = TcpStream::connect(target).await.map_err(|e| unreachable(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, stream)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(connection);
    let body = serde_json::to_vec(request).expect("a join request serialises");
    let http = hyper::Request::post(format!("https://{target}/node/join"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .map_err(|e| unreachable(e.to_string()))?;
    let response = sender.send_request(http).await.map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), JOIN_ANSWER_BYTES_MAX)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let answer: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| unreachable(format!("{status}: {}", String::from_utf8_lossy(&bytes))))?;
    match status {
        StatusCode::OK => serde_json::from_value(answer["network_info"].clone())
            .map(|material| Asked::Trusted(Box::new(material)))
            .map_err(|e| unreachable(format!("join material: {e}"))),
        StatusCode::ACCEPTED => {
            let id = answer["node_id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_default();
            Ok(Asked::Pending(id))
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            Ok(Asked::Retry(answer["error"]["message"].as_str().unwrap_or_default().to_owned()))
        }
        _ => Err(Error::Join(format!(
            "{target} refused: {} {}",
            answer["error"]["code"].as_str().unwrap_or(status.as_str()),
            answer["error"]["message"].as_str().unwrap_or_default()
        ))),
    }
}
