//! Getting a seqno from consensus: work is queued on the node under a ticket, the ticket
//! is proposed, and the work runs when consensus appends it. The reply comes from the
//! work itself, as soon as it ran (before replication); if consensus gives up on the
//! ticket first (this node is not the primary, or stopped), the ticket is forgotten.

use axum::http::StatusCode;
use coco_node::Node;
use coco_node::consensus::{ConsensusError, Proposal};
use coco_types::TxId;
use tokio::sync::oneshot;

use crate::api_error::ApiError;
use crate::server::Shared;

/// Runs `work` at the seqno consensus gives it and returns what it sent back.
pub(crate) async fn order<T: Send + 'static>(
    shared: &Shared,
    work: impl FnOnce(&mut Node, TxId) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (sender, mut receiver) = oneshot::channel();
    let boxed: coco_node::Work = Box::new(move |node, at| {
        // The requester may have gone (a closed connection): the work still ran.
        let _ = sender.send(work(node, at));
    });
    let ticket = shared.submit(boxed).map_err(|e| ApiError::from_node(&e))?;
    propose_and_wait(shared, ticket, &mut receiver).await
}

/// Proposes an already submitted `ticket` and waits for its work's reply.
pub(crate) async fn propose_and_wait<T>(
    shared: &Shared,
    ticket: u64,
    receiver: &mut oneshot::Receiver<T>,
) -> Result<T, ApiError> {
    let proposal = propose(shared, ticket).await?;
    wait(shared, ticket, proposal, receiver).await
}

/// Proposes an already submitted `ticket`; a ticket consensus refuses is forgotten.
pub(crate) async fn propose(shared: &Shared, ticket: u64) -> Result<Proposal, ApiError> {
    shared.consensus.propose(ticket).await.map_err(|e| {
        shared.node().forget(ticket);
        consensus_error(&e)
    })
}

/// Waits for the reply of the work behind a proposed `ticket`, or for consensus to give
/// up on it (then the ticket is forgotten).
pub(crate) async fn wait<T>(
    shared: &Shared,
    ticket: u64,
    proposal: Proposal,
    receiver: &mut oneshot::Receiver<T>,
) -> Result<T, ApiError> {
    let committed = proposal.committed();
    tokio::pin!(committed);
    tokio::select! {
        biased;
        reply = &mut *receiver => reply.map_err(|_| dropped()),
        outcome = &mut committed => match outcome {
            Ok(_) => (&mut *receiver).await.map_err(|_| dropped()),
            Err(e) => {
                shared.node().forget(ticket);
                Err(consensus_error(&e))
            }
        },
    }
}

/// Proposes already submitted `tickets` whose work replies to no one (a signature and
/// what precedes it), in order, and waits until consensus committed them or gave up.
pub(crate) async fn propose_unanswered(shared: &Shared, tickets: &[u64]) -> Result<(), ApiError> {
    let mut proposals = Vec::with_capacity(tickets.len());
    for (index, ticket) in tickets.iter().enumerate() {
        match shared.consensus.propose(*ticket).await {
            Ok(proposal) => proposals.push(proposal),
            Err(e) => {
                let mut node = shared.node();
                tickets[index..].iter().for_each(|t| node.forget(*t));
                return Err(consensus_error(&e));
            }
        }
    }
    for (index, proposal) in proposals.into_iter().enumerate() {
        if let Err(e) = proposal.committed().await {
            let mut node = shared.node();
            tickets[index..].iter().for_each(|t| node.forget(*t));
            return Err(consensus_error(&e));
        }
    }
    Ok(())
}

fn dropped() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the transaction was dropped before it was ordered; retry",
    )
}

/// A consensus refusal as an HTTP error.
pub(crate) fn consensus_error(error: &ConsensusError) -> ApiError {
    match error {
        ConsensusError::NotPrimary { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NotPrimary", error.to_string())
                .retry_after(1)
        }
        ConsensusError::Settings(_)
        | ConsensusError::Membership(_)
        | ConsensusError::Stopped(_) => {
            tracing::error!(error = %error, "consensus refused a proposal");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", error.to_string())
        }
    }
}
