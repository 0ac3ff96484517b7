//! The node's TLS server: accepts connections (bounded by `sessions_max`), serves HTTP/2
//! and HTTP/1.1 over rustls, and runs the signer that emits signature transactions and
//! group-commits the ledger.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use coco_node::consensus::{Consensus, Settings};
use coco_node::{App, Node, NodeConfig, SharedNode};
use coco_types::{Limits, TxId};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::error::{Error, Result};
use crate::routes;

/// Concurrent HTTP/2 streams per connection.
const HTTP2_STREAMS_MAX: u32 = 256;

/// State shared by every connection.
pub(crate) struct Shared {
    node: SharedNode,
    /// Orders transactions (this node's Raft).
    pub(crate) consensus: Consensus,
    /// The service certificate, which endorses every node of the service.
    pub(crate) service_cert: coco_crypto::Certificate,
    /// Channels to the other nodes (consensus calls, forwarded requests).
    pub(crate) transport: Arc<crate::peers::PeerTransport>,
    /// Node certificates already checked as endorsed, by digest.
    pub(crate) endorsed_nodes:
        std::sync::Mutex<std::collections::BTreeMap<coco_types::Digest, coco_types::NodeId>>,
    pub(crate) app: Arc<dyn App>,
    pub(crate) limits: Limits,
    /// The last committed TxId, for commit-blocking requests.
    pub(crate) committed: Arc<watch::Sender<TxId>>,
    /// Wakes the signer early (signature interval reached, or a blocking request waits).
    pub(crate) sign_now: Notify,
    /// Split requests (JSON-RPC batches) running: one running alone prepares half of its
    /// parts on another worker, so it uses two cores; under load each batch prepares its
    /// own, first come first ordered.
    pub(crate) split_requests: AtomicUsize,
    /// Requests waiting for their transaction to commit. While there are any, the signer
    /// signs at once instead of waiting for the interval: each signature then commits
    /// every transaction that arrived during the previous signature and fsync (group
    /// commit), so commit latency is a signature plus an fsync, not `sig_ms_interval`.
    pub(crate) commit_waiters: AtomicU64,
    pub(crate) sessions_open: AtomicU64,
    pub(crate) requests: AtomicU64,
}

impl Shared {
    /// Locks the node. A poisoned lock means a handler panicked mid-mutation, which
    /// breaks the node's invariants: crashing is the only safe answer.
    pub(crate) fn node(&self) -> coco_node::NodeGuard<'_> {
        self.node.lock()
    }

    /// Queues a work for a seqno without the node lock ([`coco_node::SharedNode::submit`]).
    pub(crate) fn submit(&self, work: coco_node::Work) -> coco_node::Result<u64> {
        self.node.submit(work)
    }

    /// Queues works for seqnos without the node lock ([`coco_node::SharedNode::submit_all`]).
    pub(crate) fn submit_all(
        &self,
        works: impl IntoIterator<Item = coco_node::Work>,
    ) -> Vec<coco_node::Result<u64>> {
        self.node.submit_all(works)
    }

    /// What requests check without the node lock ([`coco_node::Published`]).
    pub(crate) fn published(&self) -> coco_node::Published {
        self.node.published()
    }
}

/// The client certificate of a connection, if the client presented one.
#[derive(Clone, Debug)]
pub(crate) struct PeerCert(pub(crate) Option<Arc<[u8]>>);

/// A running node server.
pub struct RunningNode {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    signer: JoinHandle<Result<()>>,
    shared: Arc<Shared>,
}

/// Milliseconds since the Unix epoch: the host is where Coco reads the clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(now.map(|d| d.as_millis()).unwrap_or(0)).unwrap_or(u64::MAX)
}

/// Opens the node and starts serving.
///
/// # Errors
/// The node cannot open its state, the TLS configuration is unusable, or the address
/// cannot be bound.
pub async fn start(config: &NodeConfig, app: Box<dyn App>) -> Result<RunningNode> {
    serve(config, app, Node::open_with_app).await
}

/// Starts a new service from the old ledger in the configured ledger directory (disaster
/// recovery), and serves it: members then open it and submit their recovery shares.
///
/// # Errors
/// As [`start`], and when the state directory already holds a node.
pub async fn recover(config: &NodeConfig, app: Box<dyn App>) -> Result<RunningNode> {
    serve(config, app, |config, now_ms, _| Node::recover(config, now_ms)).await
}

async fn serve(
    config: &NodeConfig,
    app: Box<dyn App>,
    open: fn(&NodeConfig, u64, &dyn App) -> coco_node::Result<Node>,
) -> Result<RunningNode> {
    // Bound first, so the configuration a new service records has the real address.
    let listener = TcpListener::bind(config.network.listen_address).await.map_err(|source| {
        Error::Io { what: format!("bind {}", config.network.listen_address), source }
    })?;
    let local_addr =
        listener.local_addr().map_err(|source| Error::Io { what: "local_addr".into(), source })?;
    let mut config_copy = config.clone();
    config_copy.network.listen_address = local_addr;
    let app: Arc<dyn App> = Arc::from(app);
    let genesis_app = app.clone();
    let node = tokio::task::spawn_blocking(move || open(&config_copy, now_ms(), &*genesis_app))
        .await
        .map_err(|e| Error::Task(format!("node start-up: {e}")))??;
    let cert_file = &config.storage.service_cert_file;
    coco_node::write_private(cert_file, node.service_cert_pem())?;
    let key_der = coco_crypto::SigningKey::from_pkcs8_pem(&node.node_key_pem())
        .map(|key| key.to_pkcs8_der().to_vec())
        .map_err(|e| Error::Tls(e.to_string()))?;
    let cert_der = node.node_cert().der().to_vec();
    let tls = crate::tls::server_config(cert_der.clone(), key_der.clone())?;
    let service_cert = coco_crypto::Certificate::from_pem(node.service_cert_pem())
        .map_err(|e| Error::Tls(e.to_string()))?;
    let transport = Arc::new(crate::peers::PeerTransport::new(&service_cert, cert_der, key_der)?);
    let committed = Arc::new(watch::Sender::new(node.committed()));
    let (node, consensus) =
        start_consensus(node, &config.limits, committed.clone(), transport.clone()).await?;
    let shared = Arc::new(Shared {
        node,
        consensus,
        service_cert,
        transport,
        endorsed_nodes: std::sync::Mutex::default(),
        app,
        limits: config.limits.clone(),
        committed,
        sign_now: Notify::new(),
        split_requests: AtomicUsize::new(0),
        commit_waiters: AtomicU64::new(0),
        sessions_open: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let accept = tokio::spawn(accept_loop(listener, acceptor, shared.clone(), shutdown_rx.clone()));
    tokio::spawn(crate::join::reconfigure_loop(shared.clone(), shutdown_rx.clone()));
    let signer = tokio::spawn(signer_loop(shared.clone(), shutdown_rx));
    tracing::info!(%local_addr, "node listening");
    Ok(RunningNode { local_addr, shutdown, accept, signer, shared })
}

/// Shares the node with consensus and starts it; the commit point goes to `committed`.
async fn start_consensus(
    node: Node,
    limits: &Limits,
    committed: Arc<watch::Sender<TxId>>,
    transport: Arc<crate::peers::PeerTransport>,
) -> Result<(SharedNode, Consensus)> {
    let node_id = node.node_id();
    let on_commit = move |tx: TxId| {
        committed.send_if_modified(|current| {
            let advanced = tx.seqno > current.seqno;
            if advanced {
                *current = tx;
            }
            advanced
        });
    };
    let node = SharedNode::new(node, Arc::new(on_commit));
    let settings = Settings {
        heartbeat_ms: limits.heartbeat_ms,
        election_timeout_ms: (limits.election_timeout_min_ms, limits.election_timeout_max_ms),
        max_entries_per_message: limits.replication_entries_max,
        entries_kept_before_snapshot: limits.snapshot_tx_interval,
    };
    let consensus = Consensus::start(node_id, &settings, Arc::new(node.clone()), transport)
        .await
        .map_err(|e| Error::Consensus(e.to_string()))?;
    if consensus.status().membership.configs.iter().all(|voters| voters.len() == 1) {
        // The only voter: no one else can elect it, and there is no one to wait for.
        consensus.campaign().await.map_err(|e| Error::Consensus(e.to_string()))?;
    }
    Ok((node, consensus))
}

impl RunningNode {
    /// The bound address (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the signer stops by itself, which only a fatal error makes it do.
    ///
    /// # Errors
    /// The fatal error.
    pub async fn wait_fatal(&mut self) -> Result<()> {
        match (&mut self.signer).await {
            Ok(result) => result,
            Err(e) => Err(Error::Task(format!("signer: {e}"))),
        }
    }

    /// Stops accepting, signs and flushes what is pending, and returns the last
    /// committed TxId.
    ///
    /// # Errors
    /// The final signature or flush failed.
    pub async fn shutdown(self) -> Result<TxId> {
        let _ = self.shutdown.send(true);
        self.accept.abort();
        let _ = self.signer.await;
        let shared = &self.shared;
        if shared.consensus.status().is_primary && shared.node().unsigned_txs() > 0 {
            let tickets = {
                let mut node = shared.node();
                let now = now_ms();
                let before = app_signature_work(shared, &node, now);
                node.queue_signature_after(now, before)?
            };
            let ordered = crate::ordering::propose_unanswered(shared, &tickets);
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, ordered).await;
        }
        let last = shared.node().last_seqno();
        let mut committed = shared.committed.subscribe();
        let caught_up = committed.wait_for(|tx| tx.seqno >= last);
        if tokio::time::timeout(SHUTDOWN_WAIT, caught_up).await.is_err() {
            tracing::warn!(%last, "stopping before every transaction committed");
        }
        shared.consensus.shutdown().await;
        let committed = shared.node.flush()?;
        tracing::info!(%committed, "node stopped");
        Ok(committed)
    }
}

/// Longest a stopping node waits for its last signature to commit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sessions_max = usize::try_from(shared.limits.sessions_max).unwrap_or(usize::MAX);
    let sessions = Arc::new(Semaphore::new(sessions_max));
    let router = routes::router(shared.clone());
    loop {
        // Take a session slot before accepting: at the bound, connections wait in the
        // kernel's backlog instead of consuming memory here.
        let Ok(permit) = sessions.clone().acquire_owned().await else { return };
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.sessions_open.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = serve_connection(stream, acceptor, router).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            shared.sessions_open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    router: axum::Router,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stream.set_nodelay(true)?;
    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await??;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| Arc::<[u8]>::from(cert.as_ref()));
    let peer = PeerCert(peer);
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        request
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Bounded per connection too: at most this many requests in flight on one HTTP/2
    // connection (sessions_max bounds the connections).
    builder.http2().max_concurrent_streams(HTTP2_STREAMS_MAX);
    builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service)).await
}

/// The app's work before a signature (sealing an Ethereum block), if it has any: run
/// under the node lock at its seqno, so nothing interleaves and it cannot conflict.
fn app_signature_work(shared: &Arc<Shared>, node: &Node, now_ms: u64) -> Option<coco_node::Work> {
    if !shared.app.has_signature_work(&mut node.begin_read()) {
        return None;
    }
    let app = shared.app.clone();
    Some(Box::new(move |node: &mut Node, _at| {
        // Not refused under backpressure: the signature that follows is what relieves it.
        let mut tx = node.begin_exclusive();
        if let Err(e) = app.before_signature(&mut tx, now_ms) {
            return tracing::error!(error = %e, "app work before a signature refused");
        }
        if let Err(e) = node.commit(tx) {
            tracing::error!(error = %e, "app work before a signature not committed");
        }
    }))
}

async fn signer_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let period = Duration::from_millis((shared.limits.sig_ms_interval / 2).max(1));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = interval.tick() => {}
            () = shared.sign_now.notified() => {}
        }
        // A primary without a majority cannot commit a signature: it waits for one.
        if !shared.consensus.is_primary() || !crate::forward::has_quorum(&shared) {
            continue;
        }
        let tickets = {
            let mut node = shared.node();
            let now = now_ms();
            let waited_for = shared.commit_waiters.load(Ordering::Acquire) > 0;
            let before = app_signature_work(&shared, &node, now);
            // An app with work (a block to seal) gets a signature too, even with nothing
            // unsigned: otherwise a transaction ordered between a seal and its signature
            // would wait for the next, unrelated write to be sealed.
            if node.signature_due(now)
                || (waited_for && node.unsigned_txs() > 0)
                || before.is_some()
            {
                node.queue_signature_after(now, before)?
            } else {
                Vec::new()
            }
        };
        if !tickets.is_empty() {
            let shared = shared.clone();
            // Proposed on its own task, in order: the loop keeps its cadence while
            // consensus orders.
            tokio::spawn(async move {
                if let Err(e) = crate::ordering::propose_unanswered(&shared, &tickets).await {
                    tracing::debug!(error = ?e, "signature not ordered");
                }
            });
        }
    }
}
