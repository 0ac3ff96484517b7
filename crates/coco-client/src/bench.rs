//! A bounded load generator for write endpoints (`/app/log/private` and friends).
//!
//! `connections` TLS connections are opened first (at most [`HANDSHAKES_IN_FLIGHT_MAX`]
//! handshakes at a time), then every connection keeps a fixed number of requests in
//! flight until `duration` has passed:
//!
//! - [`BenchProtocol::Http2`]: `streams_per_connection` concurrent streams, each a loop of
//!   request → response on a clone of hyper's HTTP/2 `SendRequest`;
//! - [`BenchProtocol::Http1Pipelined`]: `depth` requests written back to back on the raw
//!   TLS stream (hand-serialised HTTP/1.1), responses parsed in order as they arrive, a new
//!   request written for each response (a closed loop, so the depth stays constant).
//!
//! Each request writes `{"id": connection × 2^32 + counter, "msg": <value_bytes>}`, so no
//! two requests touch the same key and none conflict. Latency (µs, successful requests
//! only) goes into one shared lock-free [`Histogram`]. After the load, the run waits for the
//! highest `TxId` it was given to commit and reads `/node/commit` again: the seqno delta over
//! the elapsed time is the committed throughput (it counts signature transactions too).
//!
//! Time comes from `tokio::time::Instant`, which tests can pause; nothing here reads the
//! OS clock directly, and progress is reported through a callback every
//! [`PROGRESS_INTERVAL`].

pub mod etcd;
mod http1;
mod http2;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coco_types::TxId;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::authority;
use crate::histogram::Histogram;
use crate::{Client, ClientConfig, ClientIdentity, Error, Protocol, Result};

/// Most connections one run opens.
pub const CONNECTIONS_MAX: u32 = 10_000;
/// Most pipelined HTTP/1.1 requests in flight per connection.
pub const PIPELINE_DEPTH_MAX: u32 = 1024;
/// Most concurrent HTTP/2 streams per connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 1024;
/// Longest run.
pub const DURATION_MAX: Duration = Duration::from_secs(3600);
/// Largest `msg` value per request.
pub const VALUE_BYTES_MAX: u32 = 1024 * 1024;
/// Longest wait for the last transaction to commit after the load.
pub const COMMIT_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// How long in-flight requests may take to be answered once the duration is over; past it
/// they count as failed (status 0).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the progress callback is called.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// TLS handshakes in flight at once while connecting, so thousands of connections do not
/// all hit the node's accept queue in the same millisecond.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 64;

/// How requests are sent on each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchProtocol {
    /// HTTP/2 with this many concurrent streams per connection.
    Http2 {
        /// Streams in flight per connection (1..=[`STREAMS_PER_CONNECTION_MAX`]).
        streams_per_connection: u32,
    },
    /// Pipelined HTTP/1.1 with this many requests in flight per connection.
    Http1Pipelined {
        /// Requests in flight per connection (1..=[`PIPELINE_DEPTH_MAX`]).
        depth: u32,
    },
}

/// What to run. Every field is bounded by [`BenchConfig::validate`].
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The node's address (loopback in tests and sandboxes).
    pub addr: SocketAddr,
    /// The service certificate, the only trust root.
    pub service_cert_pem: String,
    /// The user identity to present, if the endpoint needs one.
    pub identity: Option<ClientIdentity>,
    /// Connections to open (1..=[`CONNECTIONS_MAX`]).
    pub connections: u32,
    /// How long to send (up to [`DURATION_MAX`]).
    pub duration: Duration,
    /// HTTP/2 streams or pipelined HTTP/1.1.
    pub protocol: BenchProtocol,
    /// The write endpoint, e.g. `/app/log/private` or `/app/log/blocking/private`.
    pub path: String,
    /// Bytes of `msg` per request (up to [`VALUE_BYTES_MAX`]).
    pub value_bytes: u32,
    /// How long to wait for the last transaction to commit (up to [`COMMIT_TIMEOUT_MAX`]).
    pub commit_timeout: Duration,
}

impl BenchConfig {
    /// Checks every bound, so a run cannot be asked for unbounded work.
    ///
    /// # Errors
    /// [`Error::BenchConfig`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<()> {
        let refuse = |reason: String| Err(Error::BenchConfig(reason));
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return refuse(format!(
                "connections {} not in 1..={CONNECTIONS_MAX}",
                self.connections
            ));
        }
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            return refuse(format!("duration {:?} not in (0, {DURATION_MAX:?}]", self.duration));
        }
        if self.commit_timeout > COMMIT_TIMEOUT_MAX {
            return refuse(format!("commit timeout above {COMMIT_TIMEOUT_MAX:?}"));
        }
        if self.value_bytes > VALUE_BYTES_MAX {
            return refuse(format!("value bytes {} above {VALUE_BYTES_MAX}", self.value_bytes));
        }
        let (what, value, max) = match self.protocol {
            BenchProtocol::Http2 { streams_per_connection } => {
                ("streams per connection", streams_per_connection, STREAMS_PER_CONNECTION_MAX)
            }
            BenchProtocol::Http1Pipelined { depth } => {
                ("pipeline depth", depth, PIPELINE_DEPTH_MAX)
            }
        };
        if !(1..=max).contains(&value) {
            return refuse(format!("{what} {value} not in 1..={max}"));
        }
        // The path is written verbatim into pipelined request lines.
        let path_ok = self.path.starts_with('/')
            && self.path.len() <= 1024
            && self.path.bytes().all(|byte| byte.is_ascii_graphic());
        if !path_ok {
            return refuse(format!(
                "path {:?} is not an absolute path of printable ASCII",
                self.path
            ));
        }
        Ok(())
    }
}

/// A progress sample, given to the callback every [`PROGRESS_INTERVAL`] during the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchProgress {
    /// Time since the load started.
    pub elapsed: Duration,
    /// The configured load duration, for a progress bar's length.
    pub duration: Duration,
    /// Successful (2xx) responses so far.
    pub requests_ok: u64,
    /// Failed requests so far.
    pub requests_failed: u64,
}

/// Latency percentiles of successful requests, in microseconds (within 1 % of exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LatencyReport {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Maximum (exact).
    pub max_us: u64,
    /// Mean.
    pub mean_us: u64,
}

impl From<&Histogram> for LatencyReport {
    fn from(latency: &Histogram) -> Self {
        Self {
            p50_us: latency.value_at_permille(500),
            p90_us: latency.value_at_permille(900),
            p99_us: latency.value_at_permille(990),
            max_us: latency.max(),
            mean_us: latency.mean(),
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Responses with a 2xx status.
    pub requests_ok: u64,
    /// Requests that failed, all causes.
    pub requests_failed: u64,
    /// Failures by HTTP status; status 0 counts requests that got no response at all
    /// (connection errors, drain timeout).
    pub failures_by_status: BTreeMap<u16, u64>,
    /// The measured load phase: from the first request to the last response.
    pub duration: Duration,
    /// `requests_ok` per second of `duration`.
    pub tx_per_s: f64,
    /// Latency of successful requests.
    pub latency: LatencyReport,
    /// The highest transaction id any response carried.
    pub last_tx: Option<TxId>,
    /// `/node/commit` before the load.
    pub commit_start: TxId,
    /// `/node/commit` once `last_tx` committed (or when waiting gave up).
    pub commit_end: TxId,
    /// Time from the end of the load until `last_tx` was committed.
    pub commit_wait: Duration,
    /// Committed application transactions per second: every acknowledged write is
    /// committed once the last one is (one node orders them in one sequence), divided by
    /// the load time plus the wait for that last commit. Signature transactions are not
    /// counted. `None` if no transaction was written or it did not commit in time.
    pub committed_tx_per_s: Option<f64>,
    /// The first transport or commit error, if any, for the operator to read.
    pub first_error: Option<String>,
}

/// Runs the benchmark described by `config`, calling `progress` every
/// [`PROGRESS_INTERVAL`] during the load.
///
/// # Errors
/// [`Error::BenchConfig`] for an invalid configuration; connection, TLS or HTTP errors if
/// the control connection or any load connection cannot be opened. Errors during the load
/// are counted in the report, not returned.
pub async fn run(config: &BenchConfig, progress: impl Fn(BenchProgress)) -> Result<BenchReport> {
    config.validate()?;
    let client =
        Client::new(ClientConfig::new(&config.service_cert_pem, config.identity.as_ref())?);
    let commit_start = client.connect(config.addr, Protocol::Http1).await?.commit().await?;
    let connections = connect_all(&client, config).await?;
    let start = Instant::now();
    let context = Arc::new(LoadContext::new(config, start));
    let mut workers = JoinSet::new();
    for (index, connection) in (0_u32..).zip(connections) {
        let context = Arc::clone(&context);
        match connection {
            Opened::Http2(connection, streams) => {
                workers.spawn(http2::run_connection(connection, index, streams, context))
            }
            Opened::Http1(stream, depth) => {
                workers.spawn(http1::run_connection(stream, index, depth, context))
            }
        };
    }
    let outcome = drive(&mut workers, &context, config.duration, &progress).await;
    let load_duration = start.elapsed();
    progress(context.stats.progress(load_duration, config.duration));
    let commit = wait_for_last_commit(&client, config, outcome.last_tx).await;
    Ok(report(&context.stats, outcome, load_duration, commit_start, commit))
}

/// What the commit phase found.
struct CommitOutcome {
    commit_end: TxId,
    wait: Duration,
    committed: bool,
    error: Option<String>,
}

async fn wait_for_last_commit(
    client: &Client,
    config: &BenchConfig,
    last_tx: Option<TxId>,
) -> CommitOutcome {
    let begin = Instant::now();
    let result = async {
        let mut control = client.connect(config.addr, Protocol::Http1).await?;
        let committed = match last_tx {
            Some(tx) => control.wait_for_commit(tx, config.commit_timeout).await.map(|()| true),
            None => Ok(false),
        };
        let wait = begin.elapsed();
        let commit_end = control.commit().await?;
        Ok::<_, Error>((commit_end, wait, committed))
    }
    .await;
    match result {
        Ok((commit_end, wait, Ok(committed))) => {
            CommitOutcome { commit_end, wait, committed, error: None }
        }
        Ok((commit_end, wait, Err(error))) => {
            CommitOutcome { commit_end, wait, committed: false, error: Some(error.to_string()) }
        }
        Err(error) => CommitOutcome {
            commit_end: TxId::default(),
            wait: begin.elapsed(),
            committed: false,
            error: Some(error.to_string()),
        },
    }
}

#[allow(clippy::cast_precision_loss, reason = "throughput is reported as a float")]
fn report(
    stats: &Stats,
    outcome: WorkerOutcome,
    load_duration: Duration,
    commit_start: TxId,
    commit: CommitOutcome,
) -> BenchReport {
    let seconds = load_duration.as_secs_f64().max(f64::MIN_POSITIVE);
    let requests_ok = stats.ok.load(Ordering::Relaxed);
    let committed_tx_per_s =
        commit.committed.then(|| requests_ok as f64 / (load_duration + commit.wait).as_secs_f64());
    let latency = &stats.latency_us;
    BenchReport {
        requests_ok,
        requests_failed: stats.failed.load(Ordering::Relaxed),
        failures_by_status: stats
            .failures_by_status
            .lock()
            .expect("no panics under the lock")
            .clone(),
        duration: load_duration,
        tx_per_s: requests_ok as f64 / seconds,
        latency: LatencyReport::from(latency),
        last_tx: outcome.last_tx,
        commit_start,
        commit_end: commit.commit_end,
        commit_wait: commit.wait,
        committed_tx_per_s,
        first_error: outcome.error.or(commit.error),
    }
}

/// An opened load connection, ready for its worker.
enum Opened {
    Http2(crate::Connection, u32),
    Http1(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, u32),
}

/// Opens every load connection, [`HANDSHAKES_IN_FLIGHT_MAX`] handshakes at a time, in index
/// order. Fails on the first connection that cannot be opened: a run on fewer connections
/// than asked would report misleading numbers.
async fn connect_all(client: &Client, config: &BenchConfig) -> Result<Vec<Opened>> {
    let mut opened = Vec::with_capacity(usize::try_from(config.connections).unwrap_or(0));
    let indexes: Vec<u32> = (0..config.connections).collect();
    for batch in indexes.chunks(HANDSHAKES_IN_FLIGHT_MAX) {
        let mut handshakes = JoinSet::new();
        for &index in batch {
            let client = client.clone();
            let (addr, protocol) = (config.addr, config.protocol);
            handshakes.spawn(async move {
                let opened = match protocol {
                    BenchProtocol::Http2 { streams_per_connection } => Opened::Http2(
                        client.connect(addr, Protocol::Http2).await?,
                        streams_per_connection,
                    ),
                    BenchProtocol::Http1Pipelined { depth } => Opened::Http1(
                        Box::new(client.connect_tls(addr, Protocol::Http1).await?),
                        depth,
                    ),
                };
                Ok::<_, Error>((index, opened))
            });
        }
        let mut batch_opened = Vec::with_capacity(batch.len());
        while let Some(joined) = handshakes.join_next().await {
            batch_opened.push(
                joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?,
            );
        }
        batch_opened.sort_by_key(|(index, _)| *index);
        opened.extend(batch_opened.into_iter().map(|(_, connection)| connection));
    }
    Ok(opened)
}

/// Waits for every worker, sampling progress on the way.
async fn drive(
    workers: &mut JoinSet<WorkerOutcome>,
    context: &LoadContext,
    duration: Duration,
    progress: &impl Fn(BenchProgress),
) -> WorkerOutcome {
    let mut ticks = tokio::time::interval_at(context.start + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut merged = WorkerOutcome::default();
    loop {
        tokio::select! {
            _ = ticks.tick() => progress(context.stats.progress(context.start.elapsed(), duration)),
            joined = workers.join_next() => match joined {
                None => return merged,
                Some(Ok(outcome)) => merged.merge(outcome),
                Some(Err(error)) => std::panic::resume_unwind(error.into_panic()),
            },
        }
    }
}

/// Counters shared by every worker.
pub(crate) struct Stats {
    pub(crate) latency_us: Histogram,
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) failures_by_status: Mutex<BTreeMap<u16, u64>>,
}

impl Stats {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new(),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures_by_status: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn record_ok(&self, sent: Instant) {
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency_us.record(micros);
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `count` failures with `status` (0 = no response).
    pub(crate) fn record_failures(&self, status: u16, count: u64) {
        if count == 0 {
            return;
        }
        self.failed.fetch_add(count, Ordering::Relaxed);
        let mut by_status = self.failures_by_status.lock().expect("no panics under the lock");
        *by_status.entry(status).or_insert(0) += count;
    }

    fn progress(&self, elapsed: Duration, duration: Duration) -> BenchProgress {
        BenchProgress {
            elapsed,
            duration,
            requests_ok: self.ok.load(Ordering::Relaxed),
            requests_failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// What every worker needs: where to send, what, until when, and where to count.
pub(crate) struct LoadContext {
    pub(crate) stats: Stats,
    pub(crate) start: Instant,
    /// No request is sent at or after this instant.
    pub(crate) deadline: Instant,
    /// In-flight requests not answered by this instant count as failed.
    pub(crate) drain_deadline: Instant,
    pub(crate) path: String,
    pub(crate) authority: String,
    /// The `msg` value, `value_bytes` long (JSON-safe characters only).
    pub(crate) msg: String,
}

impl LoadContext {
    fn new(config: &BenchConfig, start: Instant) -> Self {
        let deadline = start + config.duration;
        let value_len = usize::try_from(config.value_bytes).expect("value bytes are bounded");
        Self {
            stats: Stats::new(),
            start,
            deadline,
            drain_deadline: deadline + DRAIN_TIMEOUT,
            path: config.path.clone(),
            authority: authority(config.addr),
            msg: "x".repeat(value_len),
        }
    }

    /// The JSON body of request `counter` on connection `connection`: a distinct id per
    /// request (`connection × 2^32 + counter`), so writes never conflict.
    pub(crate) fn body(&self, connection: u32, counter: u64) -> String {
        let id = (u64::from(connection) << 32) | (counter & 0xffff_ffff);
        format!(r#"{{"id":{id},"msg":"{}"}}"#, self.msg)
    }
}

/// What one worker (or all of them, merged) learned beyond the shared counters.
#[derive(Default)]
pub(crate) struct WorkerOutcome {
    pub(crate) last_tx: Option<TxId>,
    pub(crate) error: Option<String>,
}

impl WorkerOutcome {
    pub(crate) fn merge(&mut self, other: Self) {
        self.last_tx = self.last_tx.max(other.last_tx);
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}
