//! The HTTP/2 worker: one hyper connection, `streams` concurrent request loops on clones of
//! its `SendRequest`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Method;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::{LoadContext, WorkerOutcome};
use crate::client::{build_request, read_response};
use crate::{Connection, Error, Protocol};

/// Runs `streams` request loops on `connection` until the context's deadline.
pub(super) async fn run_connection(
    connection: Connection,
    index: u32,
    streams: u32,
    context: Arc<LoadContext>,
) -> WorkerOutcome {
    let sender = connection.http2_sender().expect("bench opens HTTP/2 connections for Http2");
    let counter = Arc::new(AtomicU64::new(0));
    let mut loops = JoinSet::new();
    for _ in 0..streams {
        loops.spawn(run_stream(sender.clone(), index, Arc::clone(&counter), Arc::clone(&context)));
    }
    let mut outcome = WorkerOutcome::default();
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(stream_outcome) => outcome.merge(stream_outcome),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    drop(connection);
    outcome
}

/// One stream's closed loop: send, wait for the whole response, record, repeat. Stops at
/// the deadline, or at the first transport error (the connection is then unusable).
async fn run_stream(
    mut sender: hyper::client::conn::http2::SendRequest<http_body_util::Full<Bytes>>,
    index: u32,
    counter: Arc<AtomicU64>,
    context: Arc<LoadContext>,
) -> WorkerOutcome {
    let mut outcome = WorkerOutcome::default();
    while Instant::now() < context.deadline {
        let body = context.body(index, counter.fetch_add(1, Ordering::Relaxed));
        let request = match build_request(
            Protocol::Http2,
            &context.authority,
            Method::POST,
            &context.path,
            Some("application/json"),
            Bytes::from(body),
        ) {
            Ok(request) => request,
            Err(error) => {
                outcome.error = Some(error.to_string());
                return outcome;
            }
        };
        let sent = Instant::now();
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            read_response(response).await
        };
        match timeout_at(context.drain_deadline, exchange).await {
            Ok(Ok(response)) if response.status.is_success() => {
                context.stats.record_ok(sent);
                outcome.last_tx = outcome.last_tx.max(response.tx_id().ok());
            }
            Ok(Ok(response)) => context.stats.record_failures(response.status.as_u16(), 1),
            Ok(Err(error)) => return failed(&context, outcome, &error),
            Err(_elapsed) => {
                let error = Error::DrainTimeout { in_flight: 1 };
                return failed(&context, outcome, &error);
            }
        }
    }
    outcome
}

fn failed(context: &LoadContext, mut outcome: WorkerOutcome, error: &Error) -> WorkerOutcome {
    context.stats.record_failures(0, 1);
    outcome.error = Some(error.to_string());
    outcome
}
