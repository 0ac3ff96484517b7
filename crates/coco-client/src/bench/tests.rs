use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coco_types::TxId;

use super::http1::{ParsedResponse, parse_response};
use super::*;
use crate::test_server::{TestServer, VIEW};

fn config(server: &TestServer, protocol: BenchProtocol, path: &str) -> BenchConfig {
    BenchConfig {
        addr: server.addr,
        service_cert_pem: server.pki.service_cert.to_pem(),
        identity: Some(server.pki.user_identity()),
        connections: 3,
        duration: Duration::from_millis(600),
        protocol,
        path: path.to_owned(),
        value_bytes: 20,
        commit_timeout: Duration::from_secs(10),
    }
}

async fn run_against(config: &BenchConfig) -> (BenchReport, Vec<BenchProgress>) {
    let samples = RefCell::new(Vec::new());
    let report = run(config, |sample| samples.borrow_mut().push(sample)).await.unwrap();
    (report, samples.into_inner())
}

/// What every successful run must show, whatever the protocol.
fn check_successful_run(server: &TestServer, report: &BenchReport, samples: &[BenchProgress]) {
    assert!(report.requests_ok > 10, "only {} requests", report.requests_ok);
    assert_eq!(report.requests_failed, 0, "{report:?}");
    assert!(report.failures_by_status.is_empty());
    assert_eq!(report.first_error, None);
    // Every request wrote a distinct id, and the server saw exactly the successful ones.
    assert_eq!(server.state.duplicate_ids.load(Ordering::Relaxed), 0);
    let ids = server.state.ids_written.lock().unwrap();
    assert_eq!(u64::try_from(ids.len()).unwrap(), report.requests_ok);
    let connections: BTreeSet<u64> = ids.iter().map(|id| id >> 32).collect();
    assert_eq!(connections, (0..3).collect());
    let last_seqno = server.state.last_seqno.load(Ordering::SeqCst);
    assert_eq!(report.last_tx, Some(TxId::new(VIEW, last_seqno)));
    assert_eq!(report.commit_start, TxId::new(VIEW, 0));
    assert_eq!(report.commit_end, TxId::new(VIEW, last_seqno));
    assert!(report.committed_tx_per_s.is_some_and(|rate| rate > 0.0));
    assert!(report.tx_per_s > 0.0);
    assert!(report.duration >= Duration::from_millis(600));
    let latency = report.latency;
    assert!(latency.p50_us > 0);
    assert!(latency.p50_us <= latency.p90_us);
    assert!(latency.p90_us <= latency.p99_us);
    assert!(latency.p99_us <= latency.max_us);
    // Progress came during the run (~250 ms apart) and once at the end, never decreasing.
    assert!(samples.len() >= 2, "{} progress samples", samples.len());
    assert!(samples.windows(2).all(|pair| pair[0].requests_ok <= pair[1].requests_ok));
    assert_eq!(samples.last().unwrap().requests_ok, report.requests_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_write_distinct_ids_and_commit() {
    let server = TestServer::start().await;
    let protocol = BenchProtocol::Http2 { streams_per_connection: 8 };
    let (report, samples) = run_against(&config(&server, protocol, "/app/log/private")).await;
    check_successful_run(&server, &report, &samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_http1_writes_distinct_ids_and_commits() {
    let server = TestServer::start().await;
    let protocol = BenchProtocol::Http1Pipelined { depth: 16 };
    let config = config(&server, protocol, "/app/log/blocking/private");
    let (report, samples) = run_against(&config).await;
    check_successful_run(&server, &report, &samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_counted_not_returned() {
    let server = TestServer::start().await;
    for protocol in [
        BenchProtocol::Http2 { streams_per_connection: 2 },
        BenchProtocol::Http1Pipelined { depth: 4 },
    ] {
        let mut config = config(&server, protocol, "/app/missing");
        config.duration = Duration::from_millis(200);
        let (report, _) = run_against(&config).await;
        assert_eq!(report.requests_ok, 0);
        assert!(report.requests_failed > 0);
        assert_eq!(report.failures_by_status.keys().copied().collect::<Vec<_>>(), vec![404]);
        assert_eq!(report.failures_by_status[&404], report.requests_failed);
        assert_eq!(report.last_tx, None);
        assert_eq!(report.committed_tx_per_s, None);
    }
}

#[tokio::test]
async fn untrusted_node_fails_the_run() {
    let server = TestServer::start().await;
    let mut config =
        config(&server, BenchProtocol::Http2 { streams_per_connection: 1 }, "/app/log/private");
    config.service_cert_pem = crate::test_server::TestPki::new().service_cert.to_pem();
    let result = run(&config, |_| {}).await;
    assert!(matches!(result, Err(Error::Handshake { .. })), "{result:?}");
}

#[test]
fn configuration_is_bounded() {
    let base = BenchConfig {
        addr: "127.0.0.1:1".parse().unwrap(),
        service_cert_pem: String::new(),
        identity: None,
        connections: 1,
        duration: Duration::from_secs(1),
        protocol: BenchProtocol::Http1Pipelined { depth: 1 },
        path: "/app/log/private".into(),
        value_bytes: 0,
        commit_timeout: Duration::from_secs(1),
    };
    base.validate().unwrap();
    let mut bad = Vec::new();
    for connections in [0, CONNECTIONS_MAX + 1] {
        bad.push(BenchConfig { connections, ..base.clone() });
    }
    for duration in [Duration::ZERO, DURATION_MAX + Duration::from_secs(1)] {
        bad.push(BenchConfig { duration, ..base.clone() });
    }
    for protocol in [
        BenchProtocol::Http1Pipelined { depth: 0 },
        BenchProtocol::Http1Pipelined { depth: PIPELINE_DEPTH_MAX + 1 },
        BenchProtocol::Http2 { streams_per_connection: 0 },
        BenchProtocol::Http2 { streams_per_connection: STREAMS_PER_CONNECTION_MAX + 1 },
    ] {
        bad.push(BenchConfig { protocol, ..base.clone() });
    }
    for path in ["", "app/log", "/a b", "/a\r\nx: y"] {
        bad.push(BenchConfig { path: path.into(), ..base.clone() });
    }
    bad.push(BenchConfig { value_bytes: VALUE_BYTES_MAX + 1, ..base.clone() });
    bad.push(BenchConfig { commit_timeout: COMMIT_TIMEOUT_MAX * 2, ..base });
    for config in bad {
        assert!(matches!(config.validate(), Err(Error::BenchConfig(_))), "{config:?} accepted");
    }
}

#[test]
fn pipelined_responses_parse_in_order() {
    let first = "HTTP/1.1 200 OK\r\nx-ms-ccf-transaction-id: 2.5\r\ncontent-length: 2\r\n\r\nok";
    let second = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let both = format!("{first}{second}");
    let (consumed, response) = parse_response(both.as_bytes()).unwrap().unwrap();
    assert_eq!(consumed, first.len());
    assert_eq!(response, ParsedResponse { status: 200, tx: Some(TxId::new(2, 5)) });
    let (consumed, response) = parse_response(&both.as_bytes()[consumed..]).unwrap().unwrap();
    assert_eq!(consumed, second.len());
    assert_eq!(response, ParsedResponse { status: 503, tx: None });
    // Every strict prefix needs more bytes; none is an error.
    for end in 0..first.len() {
        assert_eq!(parse_response(&first.as_bytes()[..end]).unwrap(), None, "prefix {end}");
    }
}

#[test]
fn unusable_responses_are_errors() {
    for bad in [
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
        "garbage\r\n\r\n",
    ] {
        assert!(
            matches!(parse_response(bad.as_bytes()), Err(Error::Http1Response(_))),
            "{bad:?} accepted"
        );
    }
    let endless_head = format!("HTTP/1.1 200 OK\r\n{}", "x-padding: y\r\n".repeat(6000));
    assert!(parse_response(endless_head.as_bytes()).is_err());
}

#[test]
fn request_ids_are_distinct_per_connection() {
    let config = BenchConfig {
        addr: "127.0.0.1:1".parse().unwrap(),
        service_cert_pem: String::new(),
        identity: None,
        connections: 2,
        duration: Duration::from_secs(1),
        protocol: BenchProtocol::Http2 { streams_per_connection: 1 },
        path: "/app/log/private".into(),
        value_bytes: 5,
        commit_timeout: Duration::from_secs(1),
    };
    let context = LoadContext::new(&config, Instant::now());
    assert_eq!(context.body(0, 7), r#"{"id":7,"msg":"xxxxx"}"#);
    assert_eq!(context.body(3, 7), format!(r#"{{"id":{},"msg":"xxxxx"}}"#, (3_u64 << 32) + 7));
}
