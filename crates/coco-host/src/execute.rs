//! Running an app request as a transaction: execute on a snapshot outside the node lock,
//! commit under it, re-execute on conflict (bounded), wait for commit if asked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coco_node::{AppRequest, Commit};

use crate::api_error::ApiError;
use crate::routes::{set_tx_header, wait_for_commit};
use crate::server::Shared;

pub(crate) async fn execute(
    shared: &Shared,
    request: &AppRequest<'_>,
) -> Result<Response, ApiError> {
    let attempts = shared.limits.tx_retries_max;
    for _ in 0..attempts {
        let mut tx = shared.node().begin().map_err(|e| ApiError::from_node(&e))?;
        let reply = shared.app.handle(request, &mut tx).map_err(|e| {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::new(status, e.code, e.message)
        })?;
        let read_at = tx.read_seqno();
        let commit = if tx.write_set().is_empty() {
            Commit::ReadOnly
        } else {
            // Ordered by consensus: the reads are checked again at the seqno it gives.
            let ordered = crate::ordering::order(shared, move |node, _at| node.commit(tx)).await?;
            match ordered {
                Ok(commit) => commit,
                Err(coco_node::Error::Kv(e)) if e.is_conflict() => continue,
                Err(e) => return Err(ApiError::from_node(&e)),
            }
        };
        if let Commit::Ordered(_) = commit
            && shared.node().signature_due(crate::server::now_ms())
        {
            shared.sign_now.notify_one();
        }
        if reply.wait_for_commit
            && let Commit::Ordered(tx) = commit
        {
            wait_for_commit(shared, tx).await?;
        }
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
        let content_type = [("content-type", "application/json")];
        let mut response = (status, content_type, reply.body).into_response();
        match commit {
            Commit::Ordered(tx) => set_tx_header(&mut response, tx),
            // A read says which state it reflects (on a backup, possibly behind the primary).
            Commit::ReadOnly => {
                let view = shared.node().view_of(read_at);
                if let Some(view) = view {
                    set_tx_header(&mut response, coco_types::TxId { view, seqno: read_at });
                }
            }
        }
        return Ok(response);
    }
    let error = coco_node::Error::TooManyConflicts { attempts };
    Err(ApiError::from_node(&error))
}
