//! HTTP routes: CCF's `/node/*` operator endpoints, receipts, and `/app/*` handed to the
//! app inside a KV transaction. Every error is an [`ApiError`]; every write answers with
//! `x-ms-ccf-transaction-id`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use coco_node::{AppRequest, Caller, Method, Published};
use coco_types::{TxId, TxStatus, UserId};
use serde_json::json;

use crate::api_error::ApiError;
use crate::server::{PeerCert, Shared};

/// Header carrying `view.seqno` of the transaction a response reflects.
pub const TX_ID_HEADER: &str = "x-ms-ccf-transaction-id";

type AppState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/node/state", get(node_state))
        .route("/node/version", get(node_version))
        .route("/node/network", get(node_network))
        .route("/node/commit", get(node_commit))
        .route("/node/tx", get(node_tx))
        .route("/node/metrics", get(node_metrics))
        .route("/node/consensus/{rpc}", axum::routing::post(consensus_call))
        .route("/node/join", axum::routing::post(crate::join::node_join))
        .route("/node/forward", axum::routing::post(crate::forward::node_forward))
        .route("/app/receipt", get(app_receipt))
        .route("/app/receipt/cose", get(app_cose_receipt))
        .route("/app/tx", get(node_tx))
        .route("/app/commit", get(node_commit))
        .route("/app/{*rest}", any(app_dispatch))
        .route("/gov/{*rest}", any(crate::gov_routes::gov_dispatch))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

fn json_ok(value: &serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn not_found(request: Request) -> ApiError {
    let path = request.uri().path();
    ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", format!("unknown path {path}"))
}

async fn method_not_allowed(request: Request) -> ApiError {
    let message = format!("{} is not allowed on {}", request.method(), request.uri().path());
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UnsupportedHttpVerb", message)
}

async fn node_state(State(shared): AppState) -> Response {
    let state = shared.node().state();
    json_ok(&serde_json::to_value(state).expect("node state serialises"))
}

/// A consensus call from another node (mutual TLS, see `peers.rs`).
async fn consensus_call(
    State(shared): AppState,
    axum::extract::Path(rpc): axum::extract::Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let rpc = coco_node::consensus::Rpc::from_name(&rpc).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", format!("no consensus call {rpc}"))
    })?;
    let peer = request.extensions().get::<PeerCert>().and_then(|peer| peer.0.clone());
    authorize_node(&shared, peer.as_deref())?;
    let body =
        axum::body::to_bytes(request.into_body(), crate::peers::MESSAGE_BYTES_MAX).await.map_err(
            |e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge", e.to_string()),
        )?;
    let reply = shared
        .consensus
        .handle(rpc, &body)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", e))?;
    Ok((StatusCode::OK, [("content-type", "application/cbor")], reply).into_response())
}

/// Admits a node-to-node call: the caller's certificate is a node certificate endorsed by
/// this service, and names a node of the configuration (a node with no configuration
/// yet, a joiner, admits any node of the service: the primary feeding it).
/// The node a certificate names, once checked to be endorsed by this service. Checks are
/// remembered by the certificate's digest: a node presents the same certificate on every
/// call, and an ECDSA verification per consensus message would sit on the commit path.
fn endorsed_node(shared: &Shared, der: &[u8]) -> Result<coco_types::NodeId, String> {
    let digest = coco_crypto::sha256(der);
    if let Some(id) = shared.endorsed_nodes.lock().expect("never poisoned").get(&digest) {
        return Ok(*id);
    }
    let cert = coco_crypto::Certificate::from_der(der)
        .map_err(|e| format!("unusable certificate: {e}"))?;
    cert.is_signed_by(&shared.service_cert)
        .map_err(|_| "the certificate is not endorsed by this service".to_owned())?;
    let id = coco_types::NodeId(coco_crypto::sha256(&cert.public_key_spki_der()));
    let mut known = shared.endorsed_nodes.lock().expect("never poisoned");
    if known.len() >= ENDORSED_NODES_MAX {
        known.clear();
    }
    known.insert(digest, id);
    Ok(id)
}

/// Most node certificates remembered as endorsed (far above any configuration's size).
const ENDORSED_NODES_MAX: usize = 1024;

pub(crate) fn authorize_node(shared: &Shared, peer: Option<&[u8]>) -> Result<(), ApiError> {
    let refused =
        |code: &'static str, message: String| ApiError::new(StatusCode::FORBIDDEN, code, message);
    let der = peer.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "NodeCertificateRequired",
            "present a node certificate",
        )
    })?;
    let id = endorsed_node(shared, der).map_err(|reason| refused("NodeNotEndorsed", reason))?;
    let membership = shared.consensus.status().membership;
    if !membership.nodes.is_empty() && !membership.nodes.contains_key(&id) {
        return Err(refused(
            "NodeNotInConfiguration",
            format!("node {id} is not in the configuration"),
        ));
    }
    Ok(())
}

async fn node_version() -> Response {
    json_ok(&json!({
        "ccf_version": concat!("coco-", env!("CARGO_PKG_VERSION")),
        "coco_version": env!("CARGO_PKG_VERSION"),
        "quickjs_version": null,
        "unsafe": false,
    }))
}

async fn node_network(State(shared): AppState) -> Response {
    let status = shared.consensus.status();
    let node = shared.node();
    let voters: Vec<String> = status
        .membership
        .configs
        .last()
        .map(|voters| voters.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    json_ok(&json!({
        "service_certificate": node.service_cert_pem(),
        "service_status": node.service_status().as_str(),
        "current_view": status.view.0,
        "primary_id": status.primary,
        "node_id": node.node_id(),
        "voters": voters,
        "recovery_count": 0,
    }))
}

async fn node_commit(State(shared): AppState) -> Response {
    let committed = shared.node().committed();
    let mut response = json_ok(&json!({"transaction_id": committed.to_string()}));
    set_tx_header(&mut response, committed);
    response
}

fn parse_tx_query(request: &Request) -> Result<TxId, ApiError> {
    #[derive(serde::Deserialize)]
    struct Query {
        transaction_id: Option<String>,
    }
    let query: Query = serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
        .map_err(|e| ApiError::bad_query(format!("bad query string: {e}")))?;
    let text = query.transaction_id.ok_or_else(|| ApiError::bad_query("missing transaction_id"))?;
    text.parse().map_err(|e: coco_types::TxIdParseError| ApiError::bad_query(e.to_string()))
}

async fn node_tx(State(shared): AppState, request: Request) -> Result<Response, ApiError> {
    let tx = parse_tx_query(&request)?;
    let status = shared.node().tx_status(tx);
    Ok(json_ok(&json!({"transaction_id": tx.to_string(), "status": status})))
}

async fn node_metrics(State(shared): AppState) -> Response {
    let (metrics, last, committed) = {
        let node = shared.node();
        (node.metrics(), node.last_seqno(), node.committed())
    };
    let sessions = shared.sessions_open.load(Ordering::Relaxed);
    let requests = shared.requests.load(Ordering::Relaxed);
    let counters = [
        ("coco_txs_ordered_total", "counter", metrics.txs_committed_locally),
        ("coco_signatures_total", "counter", metrics.signatures),
        ("coco_conflicts_total", "counter", metrics.conflicts),
        ("coco_ledger_flushes_total", "counter", metrics.flushes),
        ("coco_snapshots_committed_total", "counter", metrics.snapshots_committed),
        ("coco_snapshots_installed_total", "counter", metrics.snapshots_installed),
        ("coco_app_requests_total", "counter", requests),
        ("coco_last_seqno", "gauge", last.0),
        ("coco_committed_seqno", "gauge", committed.seqno.0),
        ("coco_sessions_open", "gauge", sessions),
    ];
    let text: String = counters
        .iter()
        .map(|(name, kind, value)| format!("# TYPE {name} {kind}\n{name} {value}\n"))
        .collect();
    let mut response = text.into_response();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

/// Authorises the caller as a user: its certificate must be in `users.certs`.
fn authorise_user(published: &Published, peer: &PeerCert) -> Result<Caller, ApiError> {
    let der = peer
        .0
        .as_ref()
        .ok_or_else(|| ApiError::unauthorized("a user client certificate is required"))?;
    let id = UserId(coco_crypto::sha256(der));
    if published.is_user(id) {
        Ok(Caller::User(id))
    } else {
        Err(ApiError::unauthorized("the client certificate is not a known user"))
    }
}

fn peer_of(request: &Request) -> PeerCert {
    request.extensions().get::<PeerCert>().cloned().unwrap_or(PeerCert(None))
}

async fn app_receipt(State(shared): AppState, request: Request) -> Result<Response, ApiError> {
    let tx = parse_tx_query(&request)?;
    authorise_user(&shared.published(), &peer_of(&request))?;
    let node = shared.node();
    let receipt = node.receipt(tx).map_err(|e| ApiError::from_node(&e))?;
    Ok(json_ok(&serde_json::to_value(receipt).expect("receipts serialise")))
}

async fn app_cose_receipt(State(shared): AppState, request: Request) -> Result<Response, ApiError> {
    let tx = parse_tx_query(&request)?;
    authorise_user(&shared.published(), &peer_of(&request))?;
    let node = shared.node();
    let bytes = node.cose_receipt(tx).map_err(|e| ApiError::from_node(&e))?;
    let mut response = bytes.into_response();
    let content_type = HeaderValue::from_static("application/cose");
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}

/// Reads a request body up to `request_body_bytes_max`. A body a little over the bound is
/// still read (up to twice the bound) before it is refused, so an HTTP/1.1 client that is
/// still sending gets its 413 instead of a reset connection; a larger declared length is
/// refused before reading. Memory stays bounded either way.
pub(crate) async fn read_body(
    shared: &Shared,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = shared.limits.request_body_bytes_max;
    let too_large = || {
        let message = format!("request bodies are limited to {limit} bytes");
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge", message)
    };
    let drain_max = limit.saturating_mul(2);
    if declared.is_some_and(|length| length > drain_max) {
        return Err(too_large());
    }
    let drain_max = usize::try_from(drain_max).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, drain_max).await.map_err(|_| too_large())?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

fn method_of(method: &axum::http::Method) -> Result<Method, ApiError> {
    use axum::http::Method as Http;
    match *method {
        Http::GET => Ok(Method::Get),
        Http::POST => Ok(Method::Post),
        Http::PUT => Ok(Method::Put),
        Http::DELETE => Ok(Method::Delete),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            format!("method {method} is not supported"),
        )),
    }
}

async fn app_dispatch(State(shared): AppState, request: Request) -> Result<Response, ApiError> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let crate::forward::Route::Primary(status) = crate::forward::route(&shared, &request).await?
    {
        return crate::forward::forward(&shared, &status, request).await;
    }
    let caller = {
        let published = shared.published();
        let caller = authorise_user(&published, &peer_of(&request))?;
        if !published.is_open() {
            let message =
                "the service is not open yet: members must pass transition_service_to_open";
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "FrontendNotOpen", message));
        }
        caller
    };
    let (parts, body) = request.into_parts();
    let method = method_of(&parts.method)?;
    let body = read_body(&shared, &parts.headers, body).await?;
    let path = parts.uri.path().strip_prefix("/app").unwrap_or(parts.uri.path());
    let app_request = AppRequest {
        method,
        path,
        query: parts.uri.query().unwrap_or(""),
        body: &body,
        caller,
        page_items_max: shared.limits.page_items_max,
        now_ms: crate::server::now_ms(),
        node: &*shared,
    };
    crate::execute::execute(&shared, &app_request).await
}

impl coco_node::NodeQueries for Shared {
    fn committed(&self) -> coco_types::Seqno {
        self.node().committed().seqno
    }

    fn receipt(&self, seqno: coco_types::Seqno) -> Result<serde_json::Value, coco_node::AppError> {
        let node = self.node();
        let view = node
            .view_of(seqno)
            .ok_or_else(|| coco_node::AppError::not_found(format!("seqno {seqno} is not held")))?;
        let receipt = node.receipt(TxId { view, seqno }).map_err(|e| coco_node::AppError {
            status: 404,
            code: "TransactionNotFound",
            message: e.to_string(),
        })?;
        Ok(serde_json::to_value(receipt).expect("receipts serialise"))
    }
}

/// Counts a request in `commit_waiters` for as long as it lives, even if the client goes
/// away and the request's future is dropped mid-wait.
struct CommitWaiter<'a>(&'a Shared);

impl<'a> CommitWaiter<'a> {
    fn register(shared: &'a Shared) -> Self {
        shared.commit_waiters.fetch_add(1, Ordering::AcqRel);
        shared.sign_now.notify_one();
        Self(shared)
    }
}

impl Drop for CommitWaiter<'_> {
    fn drop(&mut self) {
        self.0.commit_waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits until `tx` is committed (or invalid), up to `commit_wait_ms_max`.
pub(crate) async fn wait_for_commit(shared: &Shared, tx: TxId) -> Result<(), ApiError> {
    let mut committed = shared.committed.subscribe();
    let wait = Duration::from_millis(shared.limits.commit_wait_ms_max);
    let waiter = CommitWaiter::register(shared);
    let reached = tokio::time::timeout(wait, committed.wait_for(|c| c.seqno >= tx.seqno)).await;
    drop(waiter);
    if reached.is_err() {
        let message = format!("{tx} was not committed in time");
        return Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "TransactionCommitTimeout",
            message,
        ));
    }
    match shared.node().tx_status(tx) {
        TxStatus::Committed => Ok(()),
        TxStatus::Invalid | TxStatus::Unknown | TxStatus::Pending => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TransactionInvalid",
            format!("{tx} was rolled back"),
        )),
    }
}

pub(crate) fn set_tx_header(response: &mut Response, tx: TxId) {
    if let Ok(value) = HeaderValue::from_str(&tx.to_string()) {
        response.headers_mut().insert(TX_ID_HEADER, value);
    }
}
