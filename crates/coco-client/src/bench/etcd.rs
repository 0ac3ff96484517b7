//! The same closed-loop load against etcd's JSON gateway (`POST /v3/kv/put`, plain
//! HTTP/1.1 keep-alive), so one tool drives Coco and etcd at equal concurrency and value
//! size. etcd answers a put once a majority committed it (Raft, `fsync`), which compares
//! with Coco's commit-blocking endpoint: every acknowledged put is a committed one.
// A client drives its own connections: each HTTP/1.1 connection runs on a spawned task.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    BenchProgress, BenchReport, CONNECTIONS_MAX, DURATION_MAX, LatencyReport, VALUE_BYTES_MAX,
};
use crate::histogram::Histogram;
use crate::{Error, Result};
use coco_types::TxId;

/// What to run against etcd.
#[derive(Clone, Debug)]
pub struct EtcdBenchConfig {
    /// The members' client URLs (`host:port`); connections are spread over them.
    pub endpoints: Vec<SocketAddr>,
    /// Connections (each one request in flight, etcd's "clients").
    pub connections: u32,
    /// How long to send.
    pub duration: Duration,
    /// Bytes per value.
    pub value_bytes: u32,
}

struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    latency_us: Histogram,
    first_error: std::sync::Mutex<Option<String>>,
}

/// Runs the load; the report's committed rate is its acknowledged rate.
///
/// # Errors
/// [`Error::BenchConfig`] for bounds; connection errors before the load.
pub async fn run(
    config: &EtcdBenchConfig,
    progress: impl Fn(BenchProgress),
) -> Result<BenchReport> {
    if config.endpoints.is_empty() || !(1..=CONNECTIONS_MAX).contains(&config.connections) {
        return Err(Error::BenchConfig("etcd: endpoints and 1..=10000 connections".into()));
    }
    if config.duration.is_zero()
        || config.duration > DURATION_MAX
        || config.value_bytes > VALUE_BYTES_MAX
    {
        return Err(Error::BenchConfig("etcd: duration or value size out of bounds".into()));
    }
    let counters = Arc::new(Counters {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latency_us: Histogram::new(),
        first_error: std::sync::Mutex::new(None),
    });
    let value = BASE64.encode(vec![b'x'; usize::try_from(config.value_bytes).unwrap_or(0)]);
    let mut senders = Vec::new();
    for index in 0..config.connections {
        let endpoint =
            config.endpoints[usize::try_from(index).unwrap_or(0) % config.endpoints.len()];
        senders.push((endpoint, connect(endpoint).await?));
    }
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut workers = JoinSet::new();
    for (index, (endpoint, sender)) in (0_u32..).zip(senders) {
        let counters = counters.clone();
        let value = value.clone();
        workers.spawn(run_connection(sender, endpoint, index, value, deadline, counters));
    }
    let mut ticker = tokio::time::interval(super::PROGRESS_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => progress(BenchProgress {
                elapsed: start.elapsed(),
                duration: config.duration,
                requests_ok: counters.ok.load(Ordering::Relaxed),
                requests_failed: counters.failed.load(Ordering::Relaxed),
            }),
            done = workers.join_next() => if done.is_none() { break },
        }
    }
    Ok(report(&counters, start.elapsed()))
}

async fn connect(
    endpoint: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(endpoint)
        .await
        .map_err(|source| Error::Connect { addr: endpoint, source })?;
    stream.set_nodelay(true).map_err(Error::Io)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn run_connection(
    mut sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    endpoint: SocketAddr,
    index: u32,
    value: String,
    deadline: Instant,
    counters: Arc<Counters>,
) {
    let mut counter = 0_u64;
    while Instant::now() < deadline {
        counter += 1;
        let key = BASE64.encode(format!("bench/{index}/{counter}"));
        let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
        let request = hyper::Request::post(format!("http://{endpoint}/v3/kv/put"))
            .header("content-type", "application/json")
            .header("host", endpoint.to_string())
            .body(Full::new(Bytes::from(body)));
        let sent = Instant::now();
        let outcome = match request {
            Ok(request) => match sender.send_request(request).await {
                Ok(response) if response.status().is_success() => {
                    response.into_body().collect().await.map(drop).map_err(|e| e.to_string())
                }
                Ok(response) => Err(format!("HTTP {}", response.status())),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                counters.ok.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                counters.latency_us.record(micros);
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = counters.first_error.lock().expect("never poisoned");
                first.get_or_insert(error);
                return;
            }
        }
    }
}

#[allow(clippy::cast_precision_loss, reason = "throughput is reported as a float")]
fn report(counters: &Counters, duration: Duration) -> BenchReport {
    let ok = counters.ok.load(Ordering::Relaxed);
    let failed = counters.failed.load(Ordering::Relaxed);
    let rate = ok as f64 / duration.as_secs_f64().max(f64::MIN_POSITIVE);
    let latency = &counters.latency_us;
    let mut failures_by_status = std::collections::BTreeMap::new();
    if failed > 0 {
        failures_by_status.insert(0, failed);
    }
    BenchReport {
        requests_ok: ok,
        requests_failed: failed,
        failures_by_status,
        duration,
        tx_per_s: rate,
        latency: LatencyReport::from(latency),
        last_tx: None,
        commit_start: TxId::default(),
        commit_end: TxId::default(),
        commit_wait: Duration::ZERO,
        committed_tx_per_s: (ok > 0).then_some(rate),
        first_error: counters.first_error.lock().expect("never poisoned").clone(),
    }
}
