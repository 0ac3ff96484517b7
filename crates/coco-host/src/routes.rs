//! HTTP routes: CCF's `/node/*` operator endpoints, receipts, and `/app/*` handed to the
//! app inside a KV transaction. Every error is `{"error": {"code", "message"}}` with an
//! `x-ms-error-code` header; every write answers with `x-ms-ccf-transaction-id`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use coco_node::{AppRequest, Caller, Commit, Method, Node};
use coco_types::{TxId, TxStatus, UserId};
use serde_json::json;

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
        .route("/app/receipt", get(app_receipt))
        .route("/app/receipt/cose", get(app_cose_receipt))
        .route("/app/tx", get(node_tx))
        .route("/app/commit", get(node_commit))
        .route("/app/{*rest}", any(app_dispatch))
        .fallback(not_found)
        .with_state(shared)
}

/// An error response in CCF's shape.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", value);
    }
    response
}

fn json_ok(value: &serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn not_found(request: Request) -> Response {
    error(StatusCode::NOT_FOUND, "ResourceNotFound", format!("unknown path {}", request.uri().path()))
}

async fn node_state(State(shared): AppState) -> Response {
    let state = shared.node().state();
    json_ok(&serde_json::to_value(state).expect("node state serialises"))
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
    let node = shared.node();
    json_ok(&json!({
        "service_certificate": node.service_cert_pem(),
        "service_status": "Open",
        "current_view": node.view().0,
        "primary_id": node.node_id(),
        "recovery_count": 0,
    }))
}

async fn node_commit(State(shared): AppState) -> Response {
    let committed = shared.node().committed();
    let mut response = json_ok(&json!({"transaction_id": committed.to_string()}));
    set_tx_header(&mut response, committed);
    response
}

fn parse_tx_query(request: &Request) -> Result<TxId, Response> {
    #[derive(serde::Deserialize)]
    struct Query {
        transaction_id: Option<String>,
    }
    let bad = |message: String| error(StatusCode::BAD_REQUEST, "InvalidQueryParameterValue", message);
    let query: Query = serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
        .map_err(|e| bad(format!("bad query string: {e}")))?;
    let text = query.transaction_id.ok_or_else(|| bad("missing transaction_id".to_owned()))?;
    text.parse().map_err(|e: coco_types::TxIdParseError| bad(e.to_string()))
}

async fn node_tx(State(shared): AppState, request: Request) -> Response {
    let tx = match parse_tx_query(&request) {
        Ok(tx) => tx,
        Err(response) => return response,
    };
    let status = shared.node().tx_status(tx);
    json_ok(&json!({"transaction_id": tx.to_string(), "status": status}))
}

async fn node_metrics(State(shared): AppState) -> Response {
    let (metrics, last, committed) = {
        let node = shared.node();
        (node.metrics(), node.last_seqno(), node.committed())
    };
    let sessions = shared.sessions_open.load(Ordering::Relaxed);
    let requests = shared.requests.load(Ordering::Relaxed);
    let text = format!(
        "# TYPE coco_txs_ordered_total counter\ncoco_txs_ordered_total {}\n\
         # TYPE coco_signatures_total counter\ncoco_signatures_total {}\n\
         # TYPE coco_conflicts_total counter\ncoco_conflicts_total {}\n\
         # TYPE coco_ledger_flushes_total counter\ncoco_ledger_flushes_total {}\n\
         # TYPE coco_app_requests_total counter\ncoco_app_requests_total {requests}\n\
         # TYPE coco_last_seqno gauge\ncoco_last_seqno {}\n\
         # TYPE coco_committed_seqno gauge\ncoco_committed_seqno {}\n\
         # TYPE coco_sessions_open gauge\ncoco_sessions_open {sessions}\n",
        metrics.txs_committed_locally,
        metrics.signatures,
        metrics.conflicts,
        metrics.flushes,
        last.0,
        committed.seqno.0,
    );
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// Authorises the caller as a user: its certificate must be in `users.certs`.
fn authorise_user(node: &Node, peer: &PeerCert) -> Result<Caller, Response> {
    let Some(der) = &peer.0 else {
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "a user client certificate is required"));
    };
    let id = UserId(coco_crypto::sha256(der));
    if node.is_user(id) {
        Ok(Caller::User(id))
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "the client certificate is not a known user"))
    }
}

fn receipt_error(e: &coco_node::Error, tx: TxId) -> Response {
    match e {
        coco_node::Error::NoReceipt { reason: "pending", .. } => {
            let mut response = error(StatusCode::ACCEPTED, "TransactionPending", format!("{tx} is not committed yet"));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        coco_node::Error::NoReceipt { reason, .. } => {
            error(StatusCode::NOT_FOUND, "TransactionNotFound", format!("no receipt for {tx}: {reason}"))
        }
        other => {
            tracing::error!(error = %other, %tx, "receipt failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "receipt construction failed")
        }
    }
}

async fn app_receipt(State(shared): AppState, request: Request) -> Response {
    let peer = request.extensions().get::<PeerCert>().cloned().unwrap_or(PeerCert(None));
    let tx = match parse_tx_query(&request) {
        Ok(tx) => tx,
        Err(response) => return response,
    };
    let node = shared.node();
    if let Err(response) = authorise_user(&node, &peer) {
        return response;
    }
    match node.receipt(tx) {
        Ok(receipt) => json_ok(&serde_json::to_value(receipt).expect("receipts serialise")),
        Err(e) => receipt_error(&e, tx),
    }
}

async fn app_cose_receipt(State(shared): AppState, request: Request) -> Response {
    let peer = request.extensions().get::<PeerCert>().cloned().unwrap_or(PeerCert(None));
    let tx = match parse_tx_query(&request) {
        Ok(tx) => tx,
        Err(response) => return response,
    };
    let node = shared.node();
    if let Err(response) = authorise_user(&node, &peer) {
        return response;
    }
    match node.cose_receipt(tx) {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/cose"));
            response
        }
        Err(e) => receipt_error(&e, tx),
    }
}

async fn read_body(shared: &Shared, body: Body, declared: Option<u64>) -> Result<Bytes, Response> {
    let limit = shared.limits.request_body_bytes_max;
    let too_large = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge", format!("request bodies are limited to {limit} bytes"))
    };
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}

fn method_of(method: &axum::http::Method) -> Option<Method> {
    use axum::http::Method as Http;
    match *method {
        Http::GET => Some(Method::Get),
        Http::POST => Some(Method::Post),
        Http::PUT => Some(Method::Put),
        Http::DELETE => Some(Method::Delete),
        _ => None,
    }
}

async fn app_dispatch(State(shared): AppState, request: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let peer = parts.extensions.get::<PeerCert>().cloned().unwrap_or(PeerCert(None));
    let caller = match authorise_user(&shared.node(), &peer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Some(method) = method_of(&parts.method) else {
        return error(StatusCode::METHOD_NOT_ALLOWED, "UnsupportedHttpVerb", "unsupported method");
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match read_body(&shared, body, declared).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let path = parts.uri.path().strip_prefix("/app").unwrap_or(parts.uri.path());
    let app_request = AppRequest {
        method,
        path,
        query: parts.uri.query().unwrap_or(""),
        body: &body,
        caller,
        page_items_max: shared.limits.page_items_max,
    };
    crate::execute::execute(&shared, &app_request).await
}

/// Waits until `tx` is committed (or invalid), up to `commit_wait_ms_max`.
pub(crate) async fn wait_for_commit(shared: &Shared, tx: TxId) -> Result<(), Response> {
    let mut committed = shared.committed.subscribe();
    let wait = Duration::from_millis(shared.limits.commit_wait_ms_max);
    let reached = tokio::time::timeout(wait, committed.wait_for(|c| c.seqno >= tx.seqno)).await;
    if reached.is_err() {
        return Err(error(StatusCode::GATEWAY_TIMEOUT, "TransactionCommitTimeout", format!("{tx} was not committed in time")));
    }
    match shared.node().tx_status(tx) {
        TxStatus::Committed => Ok(()),
        TxStatus::Invalid | TxStatus::Unknown | TxStatus::Pending => {
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "TransactionInvalid", format!("{tx} was rolled back")))
        }
    }
}

pub(crate) fn set_tx_header(response: &mut Response, tx: TxId) {
    if let Ok(value) = HeaderValue::from_str(&tx.to_string()) {
        response.headers_mut().insert(TX_ID_HEADER, value);
    }
}

pub(crate) fn commit_outcome_header(response: &mut Response, commit: Commit) {
    match commit {
        Commit::Ordered(tx) => set_tx_header(response, tx),
        Commit::ReadOnly => {}
    }
}
