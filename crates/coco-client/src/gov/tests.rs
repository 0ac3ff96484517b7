//! The governance client against a recording TLS server: what goes on the wire (paths,
//! query, content type, envelope headers, payload, signature) and how answers come back.
#![allow(clippy::disallowed_methods, reason = "a test server spawns its connection tasks")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coco_crypto::{Certificate, SigningKey, parse_gov_envelope};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::test_server::TestPki;
use crate::{Client, ClientConfig, Protocol};

const NOW: u64 = 1_700_000_123;
const DIGEST: &str = "ab12";

fn clock() -> u64 {
    NOW
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path_and_query: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn reply(status: u16, body: &Value) -> http::Response<Full<Bytes>> {
    let bytes = if status == 204 { Bytes::new() } else { Bytes::from(body.to_string()) };
    http::Response::builder().status(status).body(Full::new(bytes)).unwrap()
}

fn answer(method: &str, path: &str) -> http::Response<Full<Bytes>> {
    let proposal = json!({"proposalId": "p1", "proposalState": "Open", "ballotCount": 0});
    match (method, path) {
        ("POST", "/gov/members/proposals:create") => reply(200, &proposal),
        ("POST", p) if p.ends_with(":update") => {
            reply(200, &json!({"memberId": "m", "stateDigest": DIGEST}))
        }
        ("POST", p) if p.ends_with(":ack") => reply(204, &Value::Null),
        // Only proposal p1 exists.
        ("POST", p) if p.starts_with("/gov/members/proposals/p1/") && p.ends_with(":submit") => {
            reply(200, &proposal)
        }
        ("POST", "/gov/members/proposals/p1:withdraw") => reply(200, &proposal),
        ("GET", "/gov/members/proposals") => reply(200, &json!({"value": [proposal]})),
        ("GET", "/gov/members/proposals/p1" | "/gov/members/proposals/p1/actions") => {
            reply(200, &proposal)
        }
        ("GET", "/gov/service/constitution") => reply(200, &json!({"constitution": "// js"})),
        _ => reply(
            404,
            &json!({"error": {"code": "ProposalNotFound", "message": format!("no {path}")}}),
        ),
    }
}

async fn handle(
    log: Log,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let path_and_query = request.uri().path_and_query().map(ToString::to_string).unwrap();
    let content_type =
        request.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = request.into_body().collect().await.unwrap().to_bytes().to_vec();
    log.lock().unwrap().push(Seen { method: method.clone(), path_and_query, content_type, body });
    Ok(answer(&method, &path))
}

/// Starts the recording server and returns a connection to it, the member's key and
/// certificate PEMs, and the log.
async fn start() -> (Connection, String, String, Log) {
    let pki = TestPki::new();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.node_key.to_pkcs8_der().to_vec()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(pki.node_cert.der().to_vec())], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let server_log = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let log = Arc::clone(&server_log);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(move |request| handle(Arc::clone(&log), request));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let client_config = ClientConfig::new(&pki.service_cert.to_pem(), None).unwrap();
    let conn = Client::new(client_config).connect(addr, Protocol::Http2).await.unwrap();
    let member_key = SigningKey::generate_p384().unwrap();
    let member_cert = Certificate::self_signed_identity(&member_key, "member0", NOW, 30).unwrap();
    (conn, member_key.to_pkcs8_pem(), member_cert.to_pem(), log)
}

/// Checks one signed request: POST, COSE content type, the api-version query, and an
/// envelope signed by `cert`'s key with the expected headers; returns its payload.
fn check_signed(
    seen: &Seen,
    path: &str,
    cert_pem: &str,
    message: GovMessage,
    proposal_id: Option<&str>,
) -> Value {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path_and_query, format!("{path}?api-version=2024-07-01"));
    assert_eq!(seen.content_type.as_deref(), Some("application/cose"));
    let cert = Certificate::from_pem(cert_pem).unwrap();
    let envelope = parse_gov_envelope(&seen.body).unwrap();
    envelope.verify(&cert.verifying_key().unwrap()).unwrap();
    assert_eq!(envelope.kid, cert.sha256_der().to_hex());
    assert_eq!(envelope.msg_type, message.as_str());
    assert_eq!(envelope.created_at, NOW);
    assert_eq!(envelope.proposal_id.as_deref(), proposal_id);
    serde_json::from_slice(&envelope.payload).unwrap()
}

#[test]
fn the_standard_ballot_returns_the_choice() {
    assert_eq!(vote_script(true), "export function vote (proposal, proposerId) { return true }");
    assert_eq!(vote_script(false), "export function vote (proposal, proposerId) { return false }");
}

#[test]
fn ids_cannot_escape_their_path_segment() {
    assert_eq!(path_segment("0a1B-c_d"), "0a1B-c_d");
    assert_eq!(path_segment("../x?y=1"), "%2E%2E%2Fx%3Fy%3D1");
    assert_eq!(path_segment("é"), "%C3%A9");
    assert_eq!(gov_url("/gov/x"), "/gov/x?api-version=2024-07-01");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let key = SigningKey::generate_p384().unwrap();
    let other = SigningKey::generate_p384().unwrap();
    let cert = Certificate::self_signed_identity(&other, "member0", NOW, 30).unwrap();
    let error = MemberSigner::from_pem(&key.to_pkcs8_pem(), &cert.to_pem()).unwrap_err();
    assert!(matches!(error, Error::Identity { what: "member private key", .. }), "{error:?}");
    let error = MemberSigner::from_pem("not pem", &cert.to_pem()).unwrap_err();
    assert!(matches!(error, Error::Identity { .. }), "{error:?}");
    let signer = MemberSigner::from_pem(&other.to_pkcs8_pem(), &cert.to_pem()).unwrap();
    assert_eq!(signer.member_id(), cert.sha256_der().to_hex());
}

#[tokio::test]
async fn signed_requests_carry_the_right_envelopes() {
    let (conn, key_pem, cert_pem, log) = start().await;
    let mut gov = GovClient::new(conn, &key_pem, &cert_pem, clock).unwrap();
    let member = gov.member_id().to_owned();
    let proposal = json!({"actions": [{"name": "set_user", "args": {"cert": "x"}}]});
    let created = gov.propose(&proposal).await.unwrap();
    assert_eq!(created["proposalId"], "p1");
    gov.vote("p1", false).await.unwrap();
    gov.withdraw("p1").await.unwrap();
    gov.ack().await.unwrap();

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    let create = "/gov/members/proposals:create";
    let payload = check_signed(&seen[0], create, &cert_pem, GovMessage::Proposal, None);
    assert_eq!(payload, proposal);
    let submit = format!("/gov/members/proposals/p1/ballots/{member}:submit");
    let payload = check_signed(&seen[1], &submit, &cert_pem, GovMessage::Ballot, Some("p1"));
    assert_eq!(payload, json!({"ballot": vote_script(false)}));
    let withdraw = "/gov/members/proposals/p1:withdraw";
    let payload = check_signed(&seen[2], withdraw, &cert_pem, GovMessage::Withdrawal, Some("p1"));
    assert_eq!(payload, json!({}));
    let update = format!("/gov/members/state-digests/{member}:update");
    let payload = check_signed(&seen[3], &update, &cert_pem, GovMessage::StateDigest, None);
    assert_eq!(payload, json!({}));
    let ack = format!("/gov/members/state-digests/{member}:ack");
    let payload = check_signed(&seen[4], &ack, &cert_pem, GovMessage::Ack, None);
    assert_eq!(payload, json!({"stateDigest": DIGEST}), "the ack echoes the issued digest");
}

#[tokio::test]
async fn reads_are_unsigned_gets_and_errors_keep_the_code() {
    let (conn, key_pem, cert_pem, log) = start().await;
    let mut gov = GovClient::new(conn, &key_pem, &cert_pem, clock).unwrap();
    assert_eq!(gov.list().await.unwrap()["value"][0]["proposalId"], "p1");
    assert_eq!(gov.show("p1").await.unwrap()["proposalState"], "Open");
    assert_eq!(gov.actions("p1").await.unwrap()["proposalId"], "p1");
    assert_eq!(gov.constitution().await.unwrap()["constitution"], "// js");
    for seen in log.lock().unwrap().iter() {
        assert_eq!(seen.method, "GET");
        assert!(seen.path_and_query.ends_with("?api-version=2024-07-01"), "{seen:?}");
        assert!(seen.body.is_empty());
    }

    let error = gov.show("nope/..").await.unwrap_err();
    let Error::Status { status, code, message } = error else { panic!("{error:?}") };
    assert_eq!((status, code.as_str()), (404, "ProposalNotFound"));
    assert!(message.contains("/gov/members/proposals/nope%2F%2E%2E"), "{message}");
    let error = gov.vote("unknown", true).await.unwrap_err();
    assert!(
        matches!(&error, Error::Status { status: 404, code, .. } if code == "ProposalNotFound")
    );
}
