//! A tiny in-process HTTPS server for tests: rustls with a node certificate endorsed by a
//! test service certificate, hyper-util's auto builder (HTTP/1.1 with pipelining, and
//! HTTP/2), and just enough of a node's API (`/app/log/private`, `/node/commit`, `/node/tx`)
//! to exercise the client and the benchmark over real TLS.
#![allow(clippy::disallowed_methods, reason = "a test server spawns its connection tasks")]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coco_crypto::{Certificate, SigningKey};
use coco_types::TxId;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{ClientConfig, ClientIdentity};

/// Certificates are issued as of this instant, valid for a century, so tests never depend
/// on the clock (rustls checks validity against the real time).
const ISSUED_AT_UNIX_SECONDS: u64 = 1_700_000_000;
const VALIDITY_DAYS: u32 = 36_500;
/// The view every test transaction is ordered in.
pub(crate) const VIEW: u64 = 2;

/// The keys and certificates of a test service.
pub(crate) struct TestPki {
    pub(crate) service_key: SigningKey,
    pub(crate) service_cert: Certificate,
    pub(crate) node_key: SigningKey,
    pub(crate) node_cert: Certificate,
    pub(crate) user_key: SigningKey,
    pub(crate) user_cert: Certificate,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let service_key = SigningKey::generate_p384().unwrap();
        let service_cert =
            Certificate::service_identity(&service_key, ISSUED_AT_UNIX_SECONDS, VALIDITY_DAYS)
                .unwrap();
        let node_key = SigningKey::generate_p384().unwrap();
        let node_cert = Certificate::endorse_node(
            node_key.verifying_key(),
            &service_key,
            &service_cert,
            &["127.0.0.1".to_owned(), "localhost".to_owned()],
            ISSUED_AT_UNIX_SECONDS,
            VALIDITY_DAYS,
        )
        .unwrap();
        let user_key = SigningKey::generate_p384().unwrap();
        let user_cert = Certificate::self_signed_identity(
            &user_key,
            "user0",
            ISSUED_AT_UNIX_SECONDS,
            VALIDITY_DAYS,
        )
        .unwrap();
        Self { service_key, service_cert, node_key, node_cert, user_key, user_cert }
    }

    pub(crate) fn user_identity(&self) -> ClientIdentity {
        ClientIdentity { cert_pem: self.user_cert.to_pem(), key_pem: self.user_key.to_pkcs8_pem() }
    }

    pub(crate) fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.service_cert.to_pem(), Some(&self.user_identity())).unwrap()
    }
}

/// What the server saw, for assertions.
#[derive(Default)]
pub(crate) struct ServerState {
    pub(crate) last_seqno: AtomicU64,
    pub(crate) committed_seqno: AtomicU64,
    pub(crate) connections_with_client_cert: AtomicU64,
    pub(crate) ids_written: Mutex<BTreeSet<u64>>,
    pub(crate) duplicate_ids: AtomicU64,
    pub(crate) receipts_asked: AtomicU64,
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<ServerState>,
    pub(crate) pki: TestPki,
}

impl TestServer {
    /// Starts the server on `127.0.0.1:0` on the current runtime.
    pub(crate) async fn start() -> Self {
        let pki = TestPki::new();
        let acceptor = TlsAcceptor::from(server_tls_config(&pki));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        let accept_state = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                tcp.set_nodelay(true).unwrap();
                let acceptor = acceptor.clone();
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    if tls.get_ref().1.peer_certificates().is_some() {
                        state.connections_with_client_cert.fetch_add(1, Ordering::Relaxed);
                    }
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, state, pki }
    }
}

fn server_tls_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.user_cert.der().to_vec())).unwrap();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.node_key.to_pkcs8_der().to_vec()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(pki.node_cert.der().to_vec())], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn reply(status: u16, body: String) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn error(status: u16, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    reply(status, serde_json::json!({"error": {"code": code, "message": message}}).to_string())
}

async fn handle(
    state: Arc<ServerState>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let method = request.method().clone();
    let Ok(body) = request.into_body().collect().await else {
        return Ok(error(400, "BadBody", "body could not be read"));
    };
    let response = match (method.as_str(), path.as_str()) {
        ("POST", "/app/log/private" | "/app/log/blocking/private") => {
            write_log(&state, &body.to_bytes())
        }
        ("GET", "/node/commit") => {
            let last = state.last_seqno.load(Ordering::SeqCst);
            state.committed_seqno.fetch_max(last, Ordering::SeqCst);
            let tx = TxId::new(VIEW, state.committed_seqno.load(Ordering::SeqCst));
            reply(200, serde_json::json!({"transaction_id": tx.to_string()}).to_string())
        }
        ("GET", "/node/tx") => tx_status(&state, &query),
        ("DELETE", "/app/log/private") => reply(200, String::new()),
        // The first receipt request of a server is "still fetching", as CCF's historical
        // queries answer; later ones return a stub body (receipt bytes are tested offline).
        ("GET", "/app/receipt") if state.receipts_asked.fetch_add(1, Ordering::SeqCst) == 0 => {
            reply(202, String::new())
        }
        ("GET", "/app/receipt") => reply(200, r#"{"stub":true}"#.to_owned()),
        ("GET", "/app/receipt/cose") => http::Response::builder()
            .status(200)
            .header("content-type", "application/cose")
            .body(Full::new(Bytes::from_static(&[0xd2, 0x84])))
            .unwrap(),
        _ => error(404, "ResourceNotFound", "no such endpoint"),
    };
    Ok(response)
}

fn write_log(state: &ServerState, body: &[u8]) -> http::Response<Full<Bytes>> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(400, "InvalidInput", "body is not JSON");
    };
    let (Some(id), Some(_)) = (value["id"].as_u64(), value["msg"].as_str()) else {
        return error(400, "InvalidInput", "expected {id, msg}");
    };
    if !state.ids_written.lock().unwrap().insert(id) {
        state.duplicate_ids.fetch_add(1, Ordering::Relaxed);
    }
    let seqno = state.last_seqno.fetch_add(1, Ordering::SeqCst) + 1;
    let mut response = reply(200, String::new());
    let header = TxId::new(VIEW, seqno).to_string().parse().unwrap();
    response.headers_mut().insert(crate::TX_ID_HEADER, header);
    response
}

/// A transaction is reported `Pending` once, then `Committed`: the commit point advances to
/// the last write each time someone asks, so clients have to poll at least twice.
fn tx_status(state: &ServerState, query: &str) -> http::Response<Full<Bytes>> {
    let Some(tx) = query.strip_prefix("transaction_id=").and_then(|text| text.parse::<TxId>().ok())
    else {
        return error(400, "InvalidQueryParameterValue", "bad transaction_id");
    };
    let committed = state.committed_seqno.load(Ordering::SeqCst);
    let status = if tx.view.0 != VIEW {
        "Invalid"
    } else if tx.seqno.0 <= committed {
        "Committed"
    } else {
        state.committed_seqno.fetch_max(state.last_seqno.load(Ordering::SeqCst), Ordering::SeqCst);
        "Pending"
    };
    reply(200, serde_json::json!({"status": status}).to_string())
}
