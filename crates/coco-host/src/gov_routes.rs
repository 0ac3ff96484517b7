//! `/gov/*` routes (API version 2024-07-01): signed requests (`application/cose` COSE
//! Sign1 bodies) and reads. The paths use `:action` suffixes inside a segment
//! (`proposals/{id}:withdraw`), which path routers do not split, so this module parses them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coco_node::{GovCall, GovFailure, GovRead};

use crate::api_error::ApiError;
use crate::routes::{read_body, set_tx_header};
use crate::server::Shared;

/// The one governance API version served.
pub(crate) const API_VERSION: &str = "2024-07-01";

pub(crate) async fn gov_dispatch(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    check_api_version(request.uri().query().unwrap_or(""))?;
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches("/gov/").split('/').collect();
    if request.method() == Method::GET {
        let read = gov_read(&segments).ok_or_else(|| unknown(&path))?;
        let value = shared.node().governance_read(read).map_err(|e| gov_error(&e))?;
        return Ok((StatusCode::OK, axum::Json(value)).into_response());
    }
    if request.method() != Method::POST {
        let message = format!("{} is not allowed on {path}", request.method());
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UnsupportedHttpVerb", message));
    }
    let call = gov_call(&segments).ok_or_else(|| unknown(&path))?;
    if let crate::forward::Route::Primary(status) = crate::forward::route(&shared, &request).await?
    {
        return crate::forward::forward(&shared, &status, request).await;
    }
    check_cose_content_type(request.headers().get(header::CONTENT_TYPE))?;
    let (parts, body) = request.into_parts();
    let body = read_body(&shared, &parts.headers, body).await?.to_vec();
    // Checked first, so a refused request costs no ledger entry; then run for real at the
    // seqno consensus gives it.
    shared.node().check_governance(call, &body).map_err(|e| gov_error(&e))?;
    let reply = crate::ordering::order(&shared, move |node, _at| {
        let segments: Vec<&str> = path.trim_start_matches("/gov/").split('/').collect();
        let call = gov_call(&segments).expect("the path was routed already");
        node.governance(call, &body)
    })
    .await?
    .map_err(|e| gov_error(&e))?;
    let mut response = match reply.body {
        Some(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    if let Some(tx) = reply.tx {
        set_tx_header(&mut response, tx);
    }
    Ok(response)
}

fn unknown(path: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", format!("unknown path {path}"))
}

fn check_api_version(query: &str) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    struct Query {
        #[serde(rename = "api-version")]
        api_version: Option<String>,
    }
    let query: Query = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::bad_query(format!("bad query string: {e}")))?;
    match query.api_version.as_deref() {
        Some(API_VERSION) => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedApiVersionValue",
            format!("api-version {other:?} is not supported; use {API_VERSION}"),
        )),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            format!("the api-version query parameter is required ({API_VERSION})"),
        )),
    }
}

fn check_cose_content_type(value: Option<&HeaderValue>) -> Result<(), ApiError> {
    let is_cose = value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|mime| mime.trim() == "application/cose"));
    if is_cose {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedContentType",
            "signed governance requests are COSE Sign1: content-type application/cose",
        ))
    }
}

/// Splits `name:action` into its parts.
fn action<'a>(segment: &'a str, expected: &str) -> Option<&'a str> {
    segment.strip_suffix(expected)?.strip_suffix(':')
}

fn gov_call<'a>(segments: &[&'a str]) -> Option<GovCall<'a>> {
    match segments {
        ["members", "proposals:create"] => Some(GovCall::Propose),
        ["members", "proposals", id] => {
            action(id, "withdraw").map(|proposal_id| GovCall::Withdraw { proposal_id })
        }
        ["members", "proposals", proposal_id, "ballots", member] => {
            action(member, "submit").map(|member_id| GovCall::Ballot { proposal_id, member_id })
        }
        ["members", "state-digests", member] => {
            if let Some(member_id) = action(member, "update") {
                Some(GovCall::UpdateStateDigest { member_id })
            } else {
                action(member, "ack").map(|member_id| GovCall::Ack { member_id })
            }
        }
        ["recovery", "members", member] => {
            action(member, "recover").map(|member_id| GovCall::RecoveryShare { member_id })
        }
        _ => None,
    }
}

fn gov_read<'a>(segments: &[&'a str]) -> Option<GovRead<'a>> {
    match segments {
        ["members", "proposals"] => Some(GovRead::Proposals),
        ["members", "proposals", id] => Some(GovRead::Proposal(id)),
        ["members", "proposals", id, "actions"] => Some(GovRead::Actions(id)),
        ["members", "proposals", id, "ballots", member] => Some(GovRead::Ballot(id, member)),
        ["members", "state-digests", member] => Some(GovRead::StateDigest(member)),
        ["service", "constitution"] => Some(GovRead::Constitution),
        ["service", "info"] => Some(GovRead::ServiceInfo),
        ["recovery", "encrypted-shares", member] => Some(GovRead::EncryptedShare(member)),
        ["service", "members"] => Some(GovRead::Members(None)),
        ["service", "members", id] => Some(GovRead::Members(Some(id))),
        ["service", "users"] => Some(GovRead::Users(None)),
        ["service", "users", id] => Some(GovRead::Users(Some(id))),
        ["service", "nodes"] => Some(GovRead::Nodes(None)),
        ["service", "nodes", id] => Some(GovRead::Nodes(Some(id))),
        ["service", "transactions", "commit"] => Some(GovRead::Commit),
        ["service", "transactions", tx] => tx.parse().ok().map(GovRead::Transaction),
        _ => None,
    }
}

fn gov_error(error: &GovFailure) -> ApiError {
    match error {
        GovFailure::Gov(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::new(status, e.code(), e.to_string())
        }
        GovFailure::Node(e) => ApiError::from_node(e),
        GovFailure::NotFound(message) => {
            ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", message.clone())
        }
        GovFailure::Refused { status, code, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::new(status, code, message.clone())
        }
    }
}
