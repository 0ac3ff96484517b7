//! Forwarding: a backup serves reads itself and forwards writes (and governance and join
//! requests) to the primary over the node-to-node channel, with the caller's identity —
//! the certificate it authenticated — so the primary authorises the caller, not the
//! backup. The primary runs the request through its own routes and the answer goes back
//! unchanged (status, transaction id, body).
//!
//! Frame, both ways: a 4-byte big-endian length, a JSON head, then the body bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

use crate::api_error::ApiError;
use crate::server::{PeerCert, Shared};

/// Marks a request a primary received forwarded: it is never forwarded again.
const FORWARDED: &str = "x-coco-forwarded";
/// Longest a backup waits for a primary to be known before refusing to forward.
const PRIMARY_WAIT: Duration = Duration::from_secs(3);
/// How much longer than a commit wait a forwarded request may take.
const FORWARD_MARGIN: Duration = Duration::from_secs(5);
/// Headers a forwarded request or answer keeps.
const KEPT_HEADERS: [&str; 3] = ["content-type", crate::routes::TX_ID_HEADER, "retry-after"];

#[derive(Serialize, Deserialize)]
struct RequestHead {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    /// The caller's certificate (DER, hex), as the backup authenticated it.
    caller: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
}

fn frame<T: Serialize>(head: &T, body: &[u8]) -> Vec<u8> {
    let head = serde_json::to_vec(head).expect("a head serialises");
    let length = u32::try_from(head.len()).expect("a head is small");
    let mut framed = Vec::with_capacity(4 + head.len() + body.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(&head);
    framed.extend_from_slice(body);
    framed
}

fn unframe<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<(T, &[u8]), String> {
    let (length, rest) = bytes.split_first_chunk::<4>().ok_or("frame too short")?;
    let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|e| e.to_string())?;
    if rest.len() < length {
        return Err("frame head truncated".to_owned());
    }
    let (head, body) = rest.split_at(length);
    Ok((serde_json::from_slice(head).map_err(|e| e.to_string())?, body))
}

fn kept(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// Whether this node, the primary, still hears from a majority: some voter answered within
/// the longest election timeout (CCF's check-quorum). Without one it cannot commit, and a
/// majority elsewhere may already have a new primary, so it stops taking writes.
pub(crate) fn has_quorum(shared: &Shared) -> bool {
    let window = Duration::from_millis(shared.limits.election_timeout_max_ms);
    shared.transport.has_quorum(&shared.consensus.voters(), shared.consensus.id(), window)
}

fn no_quorum() -> ApiError {
    let message = "this node leads but has not heard from a majority of the voters lately: \
                   it cannot commit; retry, or ask another node";
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NoQuorum", message).retry_after(1)
}

/// Where a request runs.
pub(crate) enum Route {
    /// Here: a read, a request already forwarded, or this node is the primary.
    Here,
    /// On the primary, as consensus last reported it (its primary may be unknown).
    Primary(Box<coco_node::consensus::Status>),
}

/// Decides where `request` runs: writes go to the primary unless this node is it or the
/// request was forwarded already. During an election no primary is known for a moment,
/// and a node that just won its view may name itself primary before it acts as one: both
/// wait, briefly, so a node never forwards to itself.
///
/// # Errors
/// 503 `NoQuorum` when this node leads without a majority.
pub(crate) fn route<'a>(
    shared: &'a Shared,
    request: &Request,
) -> impl Future<Output = Result<Route, ApiError>> + 'a {
    route_checking(shared, request, true)
}

/// [`route`], optionally without the majority check: a trusted node polling `/node/join`
/// for its identity must get it even while the primary waits for that very node to count
/// it toward its majority.
pub(crate) fn route_checking<'a>(
    shared: &'a Shared,
    request: &Request,
    check_quorum: bool,
) -> impl Future<Output = Result<Route, ApiError>> + 'a {
    // Decided before the future, which must not hold the (non-`Sync`) request.
    let here = request.method() == Method::GET || request.headers().get(FORWARDED).is_some();
    async move {
        if here {
            return Ok(Route::Here);
        }
        let route =
            if shared.consensus.is_primary() { Route::Here } else { settled_primary(shared).await };
        match route {
            Route::Here if check_quorum && !has_quorum(shared) => Err(no_quorum()),
            route @ (Route::Here | Route::Primary(_)) => Ok(route),
        }
    }
}

async fn settled_primary(shared: &Shared) -> Route {
    let settled = |status: &coco_node::consensus::Status| match status.primary {
        Some(primary) => primary != status.id || status.is_primary,
        None => false,
    };
    let status = match shared.consensus.wait_until(PRIMARY_WAIT, settled).await {
        Ok(status) => status,
        Err(status) => *status,
    };
    if status.is_primary { Route::Here } else { Route::Primary(Box::new(status)) }
}

/// Sends `request` to the primary `status` names and returns its answer.
pub(crate) async fn forward(
    shared: &Shared,
    status: &coco_node::consensus::Status,
    request: Request,
) -> Result<Response, ApiError> {
    let unavailable = |message: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NotPrimary", message).retry_after(1)
    };
    let primary = status.primary.ok_or_else(|| unavailable("no primary is known yet".into()))?;
    if primary == status.id {
        return Err(unavailable("this node is taking over as primary; retry".into()));
    }
    let address =
        status.membership.nodes.get(&primary).map(|peer| peer.address.clone()).ok_or_else(
            || {
                let known: Vec<String> =
                    status.membership.nodes.keys().map(ToString::to_string).collect();
                unavailable(format!("the primary {primary} is not among the known nodes {known:?}"))
            },
        )?;
    let caller = request.extensions().get::<PeerCert>().and_then(|peer| peer.0.clone());
    let (parts, body) = request.into_parts();
    let body = crate::routes::read_body(shared, &parts.headers, body).await?;
    let head = RequestHead {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: kept(&parts.headers),
        caller: caller.map(hex::encode),
    };
    // A forwarded write may wait for its commit there; past that, the primary is gone.
    let wait = Duration::from_millis(shared.limits.commit_wait_ms_max) + FORWARD_MARGIN;
    let call = shared.transport.request(primary, &address, "/node/forward", frame(&head, &body));
    let answer = tokio::time::timeout(wait, call)
        .await
        .map_err(|_| unavailable(format!("the primary did not answer within {wait:?}")))?
        .map_err(|e| unavailable(format!("forwarding to the primary failed: {e}")))?;
    let (head, body): (ResponseHead, &[u8]) =
        unframe(&answer).map_err(|e| unavailable(format!("the primary answered badly: {e}")))?;
    let mut response = (
        StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY),
        Bytes::copy_from_slice(body),
    )
        .into_response();
    for (name, value) in head.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// `POST /node/forward`: a request a backup forwarded, run here as its caller's.
pub(crate) async fn node_forward(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    let peer = request.extensions().get::<PeerCert>().and_then(|peer| peer.0.clone());
    crate::routes::authorize_node(&shared, peer.as_deref())?;
    let bytes =
        axum::body::to_bytes(request.into_body(), crate::peers::MESSAGE_BYTES_MAX).await.map_err(
            |e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge", e.to_string()),
        )?;
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", e);
    let (head, body): (RequestHead, &[u8]) = unframe(&bytes).map_err(bad)?;
    let method = Method::from_bytes(head.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let uri: Uri = head.uri.parse().map_err(|e: axum::http::uri::InvalidUri| bad(e.to_string()))?;
    let mut inner = Request::builder().method(method).uri(uri).header(FORWARDED, "1");
    for (name, value) in &head.headers {
        inner = inner.header(name.as_str(), value.as_str());
    }
    let mut inner = inner.body(Body::from(body.to_vec())).map_err(|e| bad(e.to_string()))?;
    let caller = head.caller.map(hex::decode).transpose().map_err(|e| bad(e.to_string()))?;
    inner.extensions_mut().insert(PeerCert(caller.map(Arc::from)));
    let response = crate::routes::router(shared.clone())
        .oneshot(inner)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let headers = kept(response.headers());
    let body =
        axum::body::to_bytes(response.into_body(), crate::peers::MESSAGE_BYTES_MAX).await.map_err(
            |e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string()),
        )?;
    let framed = frame(&ResponseHead { status, headers }, &body);
    Ok((StatusCode::OK, framed).into_response())
}
