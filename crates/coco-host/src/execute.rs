//! Running an app request as a transaction: execute on a snapshot outside the node lock,
//! commit under it, re-execute on conflict (bounded), wait for commit if asked. A request
//! the app splits (a JSON-RPC batch) runs its parts in order, each its own transaction
//! (see the batch module).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coco_node::{AppError, AppRequest, AppResponse, Commit, Split};
use coco_types::{Digest, TxId};

use crate::api_error::ApiError;
use crate::routes::{set_tx_header, wait_for_commit};
use crate::server::Shared;

/// A request that ran: the app's answer and the transaction it reflects.
pub(crate) struct Executed {
    pub(crate) reply: AppResponse,
    pub(crate) tx: Option<TxId>,
}

pub(crate) async fn execute(
    shared: &Arc<Shared>,
    request: &AppRequest<'_>,
) -> Result<Response, ApiError> {
    match shared.app.split(request) {
        Split::Single => {
            let executed = execute_one(shared, request).await?;
            Ok(respond(executed.reply, executed.tx))
        }
        Split::Refused(reply) => Ok(respond(reply, None)),
        Split::Parts(parts) => {
            let (reply, last) = crate::batch::run(shared, request, &parts).await;
            Ok(respond(reply, last))
        }
    }
}

fn respond(reply: AppResponse, tx: Option<TxId>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let content_type = [("content-type", "application/json")];
    let mut response = (status, content_type, reply.body).into_response();
    if let Some(tx) = tx {
        set_tx_header(&mut response, tx);
    }
    response
}

pub(crate) async fn execute_one(
    shared: &Shared,
    request: &AppRequest<'_>,
) -> Result<Executed, ApiError> {
    let attempts = shared.limits.tx_retries_max;
    for _ in 0..attempts {
        let mut tx = shared.node().begin().map_err(|e| ApiError::from_node(&e))?;
        let reply = shared.app.handle(request, &mut tx).map_err(ApiError::from_app)?;
        let read_at = tx.read_seqno();
        let commit = if tx.write_set().is_empty() {
            Commit::ReadOnly
        } else {
            let claims = reply.claims_digest.unwrap_or(Digest::ZERO);
            // Ordered by consensus: the reads are checked again at the seqno it gives.
            let ordered =
                crate::ordering::order(shared, move |node, _at| node.commit_claimed(tx, claims))
                    .await?;
            match ordered {
                Ok(commit) => commit,
                Err(coco_node::Error::Kv(e)) if e.is_conflict() => {
                    tracing::trace!(error = %e, "re-executing after a conflict");
                    continue;
                }
                Err(e) => return Err(ApiError::from_node(&e)),
            }
        };
        if let Commit::Ordered(_) = commit
            && shared.published().signature_due(crate::server::now_ms())
        {
            shared.sign_now.notify_one();
        }
        if reply.wait_for_commit
            && let Commit::Ordered(tx) = commit
        {
            wait_for_commit(shared, tx).await?;
        }
        let tx = match commit {
            Commit::Ordered(tx) => Some(tx),
            // A read says which state it reflects (on a backup, possibly behind the primary).
            Commit::ReadOnly => {
                shared.node().view_of(read_at).map(|view| TxId { view, seqno: read_at })
            }
        };
        return Ok(Executed { reply, tx });
    }
    let error = coco_node::Error::TooManyConflicts { attempts };
    Err(ApiError::from_node(&error))
}

impl ApiError {
    /// An app's refusal on the wire.
    pub(crate) fn from_app(e: AppError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, e.code, e.message)
    }
}
