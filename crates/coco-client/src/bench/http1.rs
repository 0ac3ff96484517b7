//! The pipelined HTTP/1.1 worker: requests serialised by hand and written back to back on
//! the raw TLS stream, responses parsed in order (httparse for the head, `Content-Length`
//! for the body). A semaphore of `depth` permits keeps exactly `depth` requests in flight:
//! the writer takes a permit per request, the reader returns one per response.
//!
//! ```text
//!   writer ── permit ─► serialise ─► send instant ─► mpsc(depth) ─► reader
//!      │                   │                                   │
//!      └── write_all(batch)┘        TLS stream        parse ◄──┘ ─► permit back
//! ```

use std::sync::Arc;

use bytes::{Buf as _, BytesMut};
use coco_types::TxId;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};

use super::{LoadContext, WorkerOutcome};
use crate::client::TX_ID_HEADER;
use crate::{Error, Result};

/// Largest response head (status line + headers) accepted.
const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest response body accepted (write endpoints answer with a few bytes).
const RESPONSE_BODY_BYTES_MAX: u64 = 1024 * 1024;
/// Headers parsed per response.
const RESPONSE_HEADERS_MAX: usize = 64;

/// Runs the pipeline on `stream` until the context's deadline, then drains it.
pub(super) async fn run_connection<S>(
    stream: S,
    index: u32,
    depth: u32,
    context: Arc<LoadContext>,
) -> WorkerOutcome
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let depth_permits = usize::try_from(depth).expect("depth is bounded by PIPELINE_DEPTH_MAX");
    let permits = Arc::new(Semaphore::new(depth_permits));
    let (sent_tx, sent_rx) = mpsc::channel::<Instant>(depth_permits);
    let (written, read) = tokio::join!(
        write_requests(writer, index, &permits, sent_tx, &context),
        read_responses(reader, sent_rx, &permits, &context),
    );
    let mut outcome = read;
    if let Err(error) = written {
        outcome.merge(WorkerOutcome { last_tx: None, error: Some(error.to_string()) });
    }
    outcome
}

/// Writes requests while permits are available, batching every request that can be sent
/// without waiting into one write. Stops at the deadline, when the reader closes the
/// semaphore, or on a write error.
async fn write_requests<W: AsyncWrite>(
    writer: W,
    index: u32,
    permits: &Semaphore,
    sent_tx: mpsc::Sender<Instant>,
    context: &LoadContext,
) -> Result<()> {
    tokio::pin!(writer);
    let mut batch = Vec::new();
    let mut counter = 0_u64;
    loop {
        let Ok(Ok(permit)) = timeout_at(context.deadline, permits.acquire()).await else {
            return Ok(());
        };
        permit.forget();
        loop {
            if Instant::now() >= context.deadline {
                break;
            }
            serialise_request(&mut batch, context, &context.body(index, counter));
            counter += 1;
            if sent_tx.send(Instant::now()).await.is_err() {
                return Ok(()); // the reader stopped; it counted what was in flight
            }
            match permits.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        writer.write_all(&batch).await?;
        writer.flush().await?;
        batch.clear();
    }
}

/// `POST` with `Host`, `Content-Type` and `Content-Length`, nothing else.
fn serialise_request(out: &mut Vec<u8>, context: &LoadContext, body: &str) {
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        context.path,
        context.authority,
        body.len()
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.as_bytes());
}

/// Reads one response per send instant, in order, until the writer is done and every
/// request is answered, or the connection fails (then everything in flight counts as
/// failed with status 0).
async fn read_responses<R: AsyncRead>(
    reader: R,
    mut sent_rx: mpsc::Receiver<Instant>,
    permits: &Semaphore,
    context: &LoadContext,
) -> WorkerOutcome {
    tokio::pin!(reader);
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let mut outcome = WorkerOutcome::default();
    while let Some(sent) = sent_rx.recv().await {
        let transport_error =
            match timeout_at(context.drain_deadline, read_response(&mut reader, &mut buffer)).await
            {
                Ok(Ok(response)) => {
                    if (200..300).contains(&response.status) {
                        context.stats.record_ok(sent);
                        outcome.last_tx = outcome.last_tx.max(response.tx);
                    } else {
                        context.stats.record_failures(response.status, 1);
                    }
                    permits.add_permits(1);
                    continue;
                }
                Ok(Err(error)) => Some(error),
                Err(_elapsed) => None,
            };
        // Stop the writer, then count this request and every one still queued.
        permits.close();
        sent_rx.close();
        let mut in_flight = 1_u64;
        while sent_rx.try_recv().is_ok() {
            in_flight += 1;
        }
        context.stats.record_failures(0, in_flight);
        let error = transport_error.unwrap_or(Error::DrainTimeout { in_flight });
        outcome.error = Some(error.to_string());
        return outcome;
    }
    outcome
}

/// The parts of a response the benchmark uses.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ParsedResponse {
    pub(super) status: u16,
    pub(super) tx: Option<TxId>,
}

async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
) -> Result<ParsedResponse> {
    loop {
        if let Some((consumed, response)) = parse_response(buffer)? {
            buffer.advance(consumed);
            return Ok(response);
        }
        if reader.read_buf(buffer).await? == 0 {
            return Err(Error::ConnectionClosed { in_flight: 1 });
        }
    }
}

/// Parses one complete response at the start of `bytes`: `Ok(None)` if more bytes are
/// needed, otherwise the bytes it spans and its status and transaction id. Chunked bodies
/// are refused (nodes answer writes with `Content-Length`).
pub(super) fn parse_response(bytes: &[u8]) -> Result<Option<(usize, ParsedResponse)>> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(head_len)) => head_len,
        Ok(httparse::Status::Partial) if bytes.len() > RESPONSE_HEAD_BYTES_MAX => {
            return Err(Error::Http1Response("response head too large".into()));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(Error::Http1Response(error.to_string())),
    };
    let status = response.code.ok_or_else(|| Error::Http1Response("no status".into()))?;
    let mut content_length = None;
    let mut tx = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).unwrap_or_default();
            let length: u64 = text
                .trim()
                .parse()
                .map_err(|_| Error::Http1Response("bad content-length".into()))?;
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Error::Http1Response("chunked responses are not supported".into()));
        } else if header.name.eq_ignore_ascii_case(TX_ID_HEADER) {
            tx = std::str::from_utf8(header.value).ok().and_then(|text| text.parse().ok());
        }
    }
    let body_len = match content_length {
        Some(length) if length > RESPONSE_BODY_BYTES_MAX => {
            return Err(Error::Http1Response(format!("body of {length} bytes is too large")));
        }
        Some(length) => usize::try_from(length).expect("bounded by RESPONSE_BODY_BYTES_MAX"),
        None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        None => return Err(Error::Http1Response("no content-length".into())),
    };
    let total = head_len + body_len;
    if bytes.len() < total {
        return Ok(None);
    }
    Ok(Some((total, ParsedResponse { status, tx })))
}
