//! Node-to-node channels: consensus calls travel as HTTP/2 POSTs to
//! `/node/consensus/{rpc}` on the peer's TLS port, with mutual TLS between node
//! certificates. The caller trusts only the service certificate (the peer's node
//! certificate is endorsed by it); the callee checks the caller's certificate is endorsed
//! by the service and names a node of its configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use coco_crypto::Certificate;
use coco_node::consensus::{Peer, Rpc, Transport, TransportError};
use coco_types::NodeId;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// Largest consensus message accepted or sent (a batch of entries).
pub(crate) const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest a call may take before the peer counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Mutual-TLS HTTP/2 connections to the other nodes, one per peer, reopened on failure.
pub(crate) struct PeerTransport {
    connector: TlsConnector,
    connections: Mutex<BTreeMap<NodeId, SendRequest<Body>>>,
    /// When each peer last answered a consensus call: the primary's evidence that a
    /// majority still hears it.
    answered: Mutex<BTreeMap<NodeId, tokio::time::Instant>>,
}

/// Whether, counting `me` and every peer that answered within `window` of `now`, each
/// voter set of `configs` has a majority (both sets during a change). A primary for which
/// this fails has lost its majority: it stops acting as primary (CCF's check-quorum).
pub(crate) fn quorum_answered(
    configs: &[BTreeSet<NodeId>],
    me: NodeId,
    answered: &BTreeMap<NodeId, tokio::time::Instant>,
    now: tokio::time::Instant,
    window: Duration,
) -> bool {
    let heard = |id: &NodeId| {
        *id == me || answered.get(id).is_some_and(|at| now.duration_since(*at) <= window)
    };
    configs.iter().all(|voters| voters.iter().filter(|id| heard(id)).count() * 2 > voters.len())
}

impl PeerTransport {
    /// A transport presenting `cert_der`/`key_der` (this node) and trusting only the
    /// service certificate.
    pub(crate) fn new(
        service_cert: &Certificate,
        cert_der: Vec<u8>,
        key_der: Vec<u8>,
    ) -> Result<Self> {
        crate::tls::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(service_cert.der().to_vec()))
            .map_err(|e| Error::Tls(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![CertificateDer::from(cert_der)], key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            connections: Mutex::default(),
            answered: Mutex::default(),
        })
    }

    /// [`quorum_answered`] now, over the peers' last answers.
    pub(crate) fn has_quorum(
        &self,
        configs: &[BTreeSet<NodeId>],
        me: NodeId,
        window: Duration,
    ) -> bool {
        let answered = self.answered.lock().expect("never poisoned");
        quorum_answered(configs, me, &answered, tokio::time::Instant::now(), window)
    }

    async fn connect(
        &self,
        target: NodeId,
        address: &str,
    ) -> std::result::Result<SendRequest<Body>, String> {
        let cached = self.connections.lock().expect("never poisoned").get(&target).cloned();
        if let Some(sender) = cached.filter(|sender| !sender.is_closed()) {
            return Ok(sender);
        }
        let (host, _) = address.rsplit_once(':').ok_or("address has no port")?;
        let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
        let stream = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let tls = self.connector.connect(name, stream).await.map_err(|e| e.to_string())?;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "node-to-node connection ended");
            }
        });
        self.connections.lock().expect("never poisoned").insert(target, sender.clone());
        Ok(sender)
    }

    /// POSTs `body` to `path` on node `target` at `address`; the answer's body when it
    /// succeeds.
    pub(crate) async fn request(
        &self,
        target: NodeId,
        address: &str,
        path: &str,
        body: Vec<u8>,
    ) -> std::result::Result<Vec<u8>, TransportError> {
        let unreachable = |reason: String| TransportError::Unreachable { node: target, reason };
        let mut sender = self.connect(target, address).await.map_err(unreachable)?;
        let request = hyper::Request::post(format!("https://{address}{path}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .map_err(|e| TransportError::Failed { node: target, reason: e.to_string() })?;
        let response = sender.send_request(request).await.map_err(|e| {
            self.connections.lock().expect("never poisoned").remove(&target);
            unreachable(e.to_string())
        })?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), MESSAGE_BYTES_MAX)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !status.is_success() {
            let reason = format!("{status}: {}", String::from_utf8_lossy(&bytes));
            return Err(TransportError::Failed { node: target, reason });
        }
        Ok(bytes.to_vec())
    }
}

impl Transport for PeerTransport {
    async fn call(
        &self,
        target: NodeId,
        peer: &Peer,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> std::result::Result<Vec<u8>, TransportError> {
        let path = format!("/node/consensus/{}", rpc.as_str());
        let call = self.request(target, &peer.address, &path, body);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => {
                if result.is_ok() {
                    let now = tokio::time::Instant::now();
                    self.answered.lock().expect("never poisoned").insert(target, now);
                }
                result
            }
            Err(_) => {
                self.connections.lock().expect("never poisoned").remove(&target);
                Err(TransportError::Unreachable { node: target, reason: "timed out".to_owned() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> NodeId {
        NodeId(coco_types::Digest([byte; 32]))
    }

    #[test]
    fn a_primary_keeps_its_quorum_only_while_a_majority_answers() {
        let (me, b, c) = (id(1), id(2), id(3));
        let three = [BTreeSet::from([me, b, c])];
        let now = tokio::time::Instant::now();
        let window = Duration::from_millis(600);
        let fresh = BTreeMap::from([(b, now)]);
        assert!(quorum_answered(&three, me, &fresh, now, window), "itself and one of two");
        let stale = BTreeMap::from([(b, now), (c, now)]);
        let later = now + Duration::from_millis(601);
        assert!(!quorum_answered(&three, me, &stale, later, window), "nobody answered lately");
        assert!(!quorum_answered(&three, me, &BTreeMap::new(), now, window));
        assert!(quorum_answered(&[BTreeSet::from([me])], me, &BTreeMap::new(), now, window));
        // During a change, both voter sets need their majority.
        let joint = [BTreeSet::from([me, b]), BTreeSet::from([me, b, c])];
        assert!(!quorum_answered(&joint, me, &BTreeMap::from([(c, now)]), now, window));
        assert!(quorum_answered(&joint, me, &BTreeMap::from([(b, now)]), now, window));
    }
}
