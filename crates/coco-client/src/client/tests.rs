use std::time::Duration;

use coco_types::{TxId, TxStatus};
use serde_json::json;

use super::*;
use crate::test_server::{TestPki, TestServer, VIEW};
use crate::{ClientIdentity, Error, ReceiptForm};

async fn connect(server: &TestServer, protocol: Protocol) -> Connection {
    Client::new(server.pki.client_config()).connect(server.addr, protocol).await.unwrap()
}

#[tokio::test]
async fn writes_and_waits_for_commit_over_both_protocols() {
    let server = TestServer::start().await;
    for (round, protocol) in [Protocol::Http1, Protocol::Http2].into_iter().enumerate() {
        let mut connection = connect(&server, protocol).await;
        let response = connection
            .post_json("/app/log/private", &json!({"id": round, "msg": "hello"}))
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let tx = response.tx_id().unwrap();
        assert_eq!(tx, TxId::new(VIEW, u64::try_from(round).unwrap() + 1));
        // The test server reports Pending once, so this really polls.
        assert_eq!(connection.tx_status(tx).await.unwrap(), TxStatus::Pending);
        connection.wait_for_commit(tx, Duration::from_secs(10)).await.unwrap();
        assert_eq!(connection.commit().await.unwrap(), tx);
        let deleted = connection.delete("/app/log/private").await.unwrap();
        assert_eq!(deleted.status, StatusCode::OK);
    }
    assert_eq!(
        server.state.connections_with_client_cert.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn error_bodies_become_typed_errors() {
    let server = TestServer::start().await;
    let mut connection = connect(&server, Protocol::Http2).await;
    let response = connection.get("/app/missing").await.unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(matches!(response.tx_id(), Err(Error::MissingTxId)));
    match response.error_for_status() {
        Err(Error::Status { status: 404, code, .. }) => assert_eq!(code, "ResourceNotFound"),
        other => panic!("expected a 404 status error, got {other:?}"),
    }
    let bad = connection.post_json("/app/log/private", &json!({"msg": "no id"})).await.unwrap();
    assert!(matches!(bad.error_for_status(), Err(Error::Status { status: 400, .. })));
    let invalid = connection.wait_for_commit(TxId::new(VIEW + 1, 1), Duration::from_secs(5)).await;
    assert!(matches!(invalid, Err(Error::TxInvalid { .. })), "{invalid:?}");
}

#[tokio::test]
async fn wait_for_commit_times_out() {
    let server = TestServer::start().await;
    let mut connection = connect(&server, Protocol::Http1).await;
    // Nothing was written, so seqno 5 stays Pending forever.
    let result = connection.wait_for_commit(TxId::new(VIEW, 5), Duration::from_millis(300)).await;
    assert!(matches!(result, Err(Error::CommitTimeout { timeout_ms: 300, .. })), "{result:?}");
}

#[tokio::test]
async fn only_the_service_certificate_is_trusted() {
    let server = TestServer::start().await;
    let other = TestPki::new();
    let config = ClientConfig::new(&other.service_cert.to_pem(), None).unwrap();
    let result = Client::new(config).connect(server.addr, Protocol::Http2).await;
    assert!(matches!(result, Err(Error::Handshake { .. })), "{result:?}");
}

#[tokio::test]
async fn server_name_must_match_the_node_certificate() {
    let server = TestServer::start().await;
    let client = Client::new(server.pki.client_config());
    let mut localhost = client
        .clone()
        .with_server_name("localhost")
        .unwrap()
        .connect(server.addr, Protocol::Http1)
        .await
        .unwrap();
    assert_eq!(localhost.get("/node/commit").await.unwrap().status, StatusCode::OK);
    let wrong =
        client.with_server_name("example.com").unwrap().connect(server.addr, Protocol::Http1).await;
    assert!(matches!(wrong, Err(Error::Handshake { .. })), "{wrong:?}");
}

#[tokio::test]
async fn without_identity_no_client_certificate_is_sent() {
    let server = TestServer::start().await;
    let config = ClientConfig::new(&server.pki.service_cert.to_pem(), None).unwrap();
    let mut connection = Client::new(config).connect(server.addr, Protocol::Http2).await.unwrap();
    assert_eq!(connection.get("/node/commit").await.unwrap().status, StatusCode::OK);
    assert_eq!(
        server.state.connections_with_client_cert.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn mismatched_or_broken_identities_are_refused() {
    let pki = TestPki::new();
    let service = pki.service_cert.to_pem();
    let mismatched =
        ClientIdentity { cert_pem: pki.user_cert.to_pem(), key_pem: pki.node_key.to_pkcs8_pem() };
    let result = ClientConfig::new(&service, Some(&mismatched));
    assert!(
        matches!(result, Err(Error::Identity { what: "client private key", .. })),
        "{result:?}"
    );
    let no_cert = ClientIdentity { cert_pem: String::new(), key_pem: pki.user_key.to_pkcs8_pem() };
    assert!(matches!(
        ClientConfig::new(&service, Some(&no_cert)),
        Err(Error::Identity { what: "client certificate", .. })
    ));
    assert!(matches!(
        ClientConfig::new("not a pem", None),
        Err(Error::Identity { what: "service certificate", .. })
    ));
}

#[test]
fn tx_id_header_parses_view_dot_seqno_only() {
    let mut headers = HeaderMap::new();
    assert!(matches!(parse_tx_id_header(&headers), Err(Error::MissingTxId)));
    headers.insert(TX_ID_HEADER, "3.42".parse().unwrap());
    assert_eq!(parse_tx_id_header(&headers).unwrap(), TxId::new(3, 42));
    for bad in ["3", "3.", "a.b", "3.4.5", ""] {
        headers.insert(TX_ID_HEADER, bad.parse().unwrap());
        assert!(parse_tx_id_header(&headers).is_err(), "{bad:?} parsed");
    }
}

#[tokio::test]
async fn receipts_are_fetched_after_202() {
    let server = TestServer::start().await;
    let mut connection = connect(&server, Protocol::Http2).await;
    let tx = TxId::new(VIEW, 1);
    let json = connection.receipt(tx, ReceiptForm::Json, Duration::from_secs(5)).await.unwrap();
    assert_eq!(&json[..], br#"{"stub":true}"#);
    assert_eq!(server.state.receipts_asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    let cose = connection.receipt(tx, ReceiptForm::Cose, Duration::from_secs(5)).await.unwrap();
    assert_eq!(&cose[..], &[0xd2, 0x84]);
}
