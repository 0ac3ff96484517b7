//! Running an app request as a transaction: execute on a snapshot outside the node lock,
//! commit under it, re-execute on conflict (bounded), wait for commit if asked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coco_node::{AppRequest, Commit};

use crate::routes::{commit_outcome_header, error, wait_for_commit};
use crate::server::Shared;

pub(crate) async fn execute(shared: &Shared, request: &AppRequest<'_>) -> Response {
    let attempts = shared.limits.tx_retries_max;
    for _ in 0..attempts {
        let mut tx = match shared.node().begin() {
            Ok(tx) => tx,
            Err(e) => return node_error(&e),
        };
        let reply = match shared.app.handle(request, &mut tx) {
            Ok(reply) => reply,
            Err(e) => {
                let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return error(status, e.code, e.message);
            }
        };
        let commit = {
            let mut node = shared.node();
            match node.commit(tx) {
                Ok(commit) => {
                    if node.signature_due(crate::server::now_ms()) {
                        shared.sign_now.notify_one();
                    }
                    commit
                }
                Err(coco_node::Error::Kv(e)) if e.is_conflict() => continue,
                Err(e) => return node_error(&e),
            }
        };
        if let (true, Commit::Ordered(tx)) = (reply.wait_for_commit, commit) {
            if let Err(response) = wait_for_commit(shared, tx).await {
                return response;
            }
        }
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
        let mut response = (status, [("content-type", "application/json")], reply.body).into_response();
        commit_outcome_header(&mut response, commit);
        return response;
    }
    error(StatusCode::SERVICE_UNAVAILABLE, "TransactionConflict", format!("transaction conflicted {attempts} times"))
}

fn node_error(e: &coco_node::Error) -> Response {
    match e {
        coco_node::Error::Backpressure { .. } => {
            error(StatusCode::SERVICE_UNAVAILABLE, "TooManyPendingTransactions", e.to_string())
        }
        coco_node::Error::WriteSetTooLarge { .. } => {
            error(StatusCode::PAYLOAD_TOO_LARGE, "WriteSetTooLarge", e.to_string())
        }
        other => {
            tracing::error!(error = %other, "transaction failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "transaction failed")
        }
    }
}
