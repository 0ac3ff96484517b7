//! Running the parts of a split request (a JSON-RPC batch) in order, each its own
//! transaction, so a later part sees what an earlier one wrote.
//!
//! Parts the app prepares ([`coco_node::App::prepare`]: an Ethereum transaction, its
//! sender recovered here) are proposed one after another without waiting for each other
//! and run when consensus appends them, under the node's lock: one Raft entry after the
//! other, so order and visibility hold without a round trip per part. Any other part is
//! a barrier: the parts before it finish first, then it runs the usual way (executed on a
//! snapshot, then ordered).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use coco_node::consensus::Proposal;
use coco_node::{App, AppError, AppRequest, AppResponse, Commit, Node, Prepared};
use coco_types::{Digest, TxId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api_error::ApiError;
use crate::execute::{Executed, execute_one};
use crate::ordering;
use crate::server::Shared;

/// Most bytes of answers one split request collects (go-ethereum bounds a batch's answer at
/// 25 MB); unprepared parts after that are refused without running (a prepared part's
/// answer is a transaction hash).
const SPLIT_RESPONSE_BYTES_MAX: usize = 25 * 1024 * 1024;

/// Parts prepared (an Ethereum sender recovered: ~35 us each) before the request lets
/// its worker run other tasks, consensus's among them.
const PREPARED_BETWEEN_YIELDS: usize = 8;

/// Parts a split request running alone prepares before proposing them, so consensus
/// orders them while the next ones are prepared (under load, other batches keep it busy).
const LONE_RUN_PARTS: usize = 16;

type Outcome = Result<Executed, ApiError>;

/// A prepared part proposed to consensus, its outcome still to come.
struct InFlight {
    ticket: u64,
    proposal: Proposal,
    receiver: oneshot::Receiver<Outcome>,
}

/// The parts' outcomes so far, in order, and the proposals still to settle after them.
#[derive(Default)]
struct Progress {
    outcomes: Vec<Outcome>,
    answered_bytes: usize,
    in_flight: Vec<Result<InFlight, ApiError>>,
}

impl Progress {
    fn push(&mut self, outcome: Outcome) {
        if let Ok(executed) = &outcome {
            self.answered_bytes += executed.reply.body.len();
        }
        self.outcomes.push(outcome);
    }

    /// Waits for every proposed part, in order.
    async fn settle(&mut self, shared: &Shared) {
        for proposed in std::mem::take(&mut self.in_flight) {
            let outcome = match proposed {
                Ok(InFlight { ticket, proposal, mut receiver }) => {
                    ordering::wait(shared, ticket, proposal, &mut receiver).await.and_then(|o| o)
                }
                Err(e) => Err(e),
            };
            self.push(outcome);
        }
    }
}

/// Runs `parts` of `request` in order; returns the joined answer and the last
/// transaction a part wrote.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    request: &AppRequest<'_>,
    parts: &[Vec<u8>],
) -> (AppResponse, Option<TxId>) {
    let mut progress = Progress::default();
    let mut prepared_run = Vec::new();
    let running = Running::enter(shared);
    let mut preparing = Preparing::start(shared, request, parts, running.alone);
    for (index, part) in parts.iter().enumerate() {
        let part_request = AppRequest { body: part, ..*request };
        if let Some(prepared) = preparing.next(shared, &part_request).await {
            prepared_run.push(prepared);
            let now_ms = request.now_ms;
            pace(shared, running.alone, index, &mut prepared_run, now_ms, &mut progress).await;
            continue;
        }
        propose_prepared(shared, std::mem::take(&mut prepared_run), request.now_ms, &mut progress)
            .await;
        // An unprepared part may read what the parts before it wrote: they finish first.
        progress.settle(shared).await;
        let outcome = if progress.answered_bytes > SPLIT_RESPONSE_BYTES_MAX {
            // Bounded memory: the rest of the unprepared parts are refused, not run.
            let message = format!("the answer exceeds {SPLIT_RESPONSE_BYTES_MAX} bytes");
            Err(ApiError::from_app(AppError { status: 413, code: "ResponseTooLarge", message }))
        } else {
            execute_one(shared, &part_request).await
        };
        progress.push(outcome);
    }
    propose_prepared(shared, prepared_run, request.now_ms, &mut progress).await;
    progress.settle(shared).await;
    let last = progress.outcomes.iter().rev().find_map(|o| o.as_ref().ok()?.tx);
    if last.is_some() && shared.published().signature_due(crate::server::now_ms()) {
        shared.sign_now.notify_one();
    }
    let replies = (progress.outcomes.into_iter())
        .map(|outcome| outcome.map(|executed| executed.reply).map_err(ApiError::into_app_error))
        .collect();
    (shared.app.join(parts, replies), last)
}

/// Paces a batch after its part `index` was prepared. Alone, it proposes every
/// [`LONE_RUN_PARTS`] parts so consensus orders them while the rest are prepared. Under
/// load it yields every [`PREPARED_BETWEEN_YIELDS`] parts, so consensus's task woken on
/// its worker does not wait behind a whole batch's recovery (~3.5 ms); alone, yielding
/// that often cost a quarter of one connection's throughput.
async fn pace(
    shared: &Shared,
    alone: bool,
    index: usize,
    prepared_run: &mut Vec<Prepared>,
    now_ms: u64,
    progress: &mut Progress,
) {
    if alone && prepared_run.len() == LONE_RUN_PARTS {
        propose_prepared(shared, std::mem::take(prepared_run), now_ms, progress).await;
        tokio::task::yield_now().await;
    } else if !alone && (index + 1).is_multiple_of(PREPARED_BETWEEN_YIELDS) {
        tokio::task::yield_now().await;
    }
}

/// A split request among those running ([`Shared`]'s `split_requests`), while it runs.
struct Running<'a> {
    shared: &'a Shared,
    /// No other split request was running when it started.
    alone: bool,
}

impl<'a> Running<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let before = shared.split_requests.fetch_add(1, Ordering::AcqRel);
        Self { shared, alone: before == 0 }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.shared.split_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The parts' preparation, in order. A split request running alone with many parts
/// prepares the first half here, as the parts are reached, and the second half on a
/// helper task, so it recovers its senders on two cores (one connection's batches:
/// 15,000-16,400 transfers a second against 11,200-11,400). Under load it prepares every
/// part here: helpers there slowed 60,000 transfers by 6 %, each batch's preparation
/// being spread thinner while consensus waited for whole batches. Preparing needs no
/// state, so preparing ahead of the parts before it changes nothing they see.
struct Preparing {
    /// The helper preparing the second half, and that half's length.
    helper: Option<(usize, JoinHandle<Vec<Option<Prepared>>>)>,
    ready: std::vec::IntoIter<Option<Prepared>>,
    /// Parts still to prepare here.
    here: usize,
}

impl Preparing {
    fn start(
        shared: &Arc<Shared>,
        request: &AppRequest<'_>,
        parts: &[Vec<u8>],
        alone: bool,
    ) -> Self {
        let ready = Vec::new().into_iter();
        let half = parts.len() / 2;
        if alone && half >= LONE_RUN_PARTS {
            let task = spawn_prepare(shared, request, parts[half..].to_vec());
            return Self { helper: Some((parts.len() - half, task)), ready, here: half };
        }
        Self { helper: None, ready, here: parts.len() }
    }

    /// The next part's preparation; `part` is that part.
    async fn next(&mut self, shared: &Shared, part: &AppRequest<'_>) -> Option<Prepared> {
        if self.here > 0 {
            self.here -= 1;
            return shared.app.prepare(part);
        }
        if let Some((len, task)) = self.helper.take() {
            self.ready = match task.await {
                Ok(prepared) => prepared,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled (the runtime stops): the parts run the usual way.
                Err(_) => (0..len).map(|_| None).collect::<Vec<_>>(),
            }
            .into_iter();
        }
        self.ready.next().expect("a preparation for each part")
    }
}

impl Drop for Preparing {
    /// A request that goes away does not leave its parts' preparation running.
    fn drop(&mut self) {
        if let Some((_, task)) = &self.helper {
            task.abort();
        }
    }
}

/// Prepares `parts` of `request` on a task of its own.
fn spawn_prepare(
    shared: &Arc<Shared>,
    request: &AppRequest<'_>,
    parts: Vec<Vec<u8>>,
) -> JoinHandle<Vec<Option<Prepared>>> {
    let shared = shared.clone();
    let (path, query) = (request.path.to_owned(), request.query.to_owned());
    let AppRequest { method, caller, page_items_max, now_ms, .. } = *request;
    tokio::spawn(async move {
        let node: &dyn coco_node::NodeQueries = &*shared;
        let (path, query) = (path.as_str(), query.as_str());
        let request =
            AppRequest { method, path, query, body: &[], caller, page_items_max, now_ms, node };
        parts.iter().map(|body| shared.app.prepare(&AppRequest { body, ..request })).collect()
    })
}

/// Queues a run of consecutive prepared parts on the node and proposes them in order,
/// without waiting for them to run. The run is queued at once, on the node's work queue
/// and not under the node lock: consensus executes entries under that lock, and taking it
/// put the request's worker thread to sleep behind those executions.
async fn propose_prepared(
    shared: &Shared,
    run: Vec<Prepared>,
    now_ms: u64,
    progress: &mut Progress,
) {
    if run.is_empty() {
        return;
    }
    let mut receivers = Vec::with_capacity(run.len());
    let mut works = Vec::with_capacity(run.len());
    for prepared in run {
        let app = shared.app.clone();
        let (sender, receiver) = oneshot::channel();
        works.push(Box::new(move |node: &mut Node, _at| {
            // The requester may have gone (a closed connection): the work still ran.
            let _ = sender.send(execute_prepared(node, app.as_ref(), &prepared, now_ms));
        }) as coco_node::Work);
        receivers.push(receiver);
    }
    let tickets = shared.submit_all(works);
    let mut unproposed = Unproposed { shared, tickets: VecDeque::with_capacity(tickets.len()) };
    unproposed.tickets.extend(tickets.iter().filter_map(|ticket| ticket.as_ref().ok()));
    for (ticket, receiver) in tickets.into_iter().zip(receivers) {
        let in_flight = match ticket {
            Ok(ticket) => {
                unproposed.tickets.pop_front();
                ordering::propose(shared, ticket).await.map(|proposal| InFlight {
                    ticket,
                    proposal,
                    receiver,
                })
            }
            Err(e) => Err(ApiError::from_node(&e)),
        };
        progress.in_flight.push(in_flight);
    }
}

/// Tickets queued on the node and not proposed yet: if the request goes away before they
/// are (its future dropped), they are forgotten rather than left queued for ever.
struct Unproposed<'a> {
    shared: &'a Shared,
    tickets: VecDeque<u64>,
}

impl Drop for Unproposed<'_> {
    fn drop(&mut self) {
        if !self.tickets.is_empty() {
            let mut node = self.shared.node();
            self.tickets.iter().for_each(|ticket| node.forget(*ticket));
        }
    }
}

/// Runs a prepared part at the seqno consensus gave it, under the node's lock: it sees
/// every entry before it, and nothing can commit between its read and its write.
fn execute_prepared(node: &mut Node, app: &dyn App, prepared: &Prepared, now_ms: u64) -> Outcome {
    let mut tx = node.begin_exclusive();
    let reply = app.execute_prepared(prepared, &mut tx, now_ms).map_err(ApiError::from_app)?;
    if tx.write_set().is_empty() {
        return Ok(Executed { reply, tx: None });
    }
    let claims = reply.claims_digest.unwrap_or(Digest::ZERO);
    match node.commit_claimed(tx, claims).map_err(|e| ApiError::from_node(&e))? {
        Commit::Ordered(tx) => Ok(Executed { reply, tx: Some(tx) }),
        Commit::ReadOnly => Ok(Executed { reply, tx: None }),
    }
}
