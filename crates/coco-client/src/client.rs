//! Connections to a node: TCP + rustls + a hyper HTTP/1.1 or HTTP/2 client connection, and
//! the few typed calls every tool needs (`/node/commit`, `/node/tx`, waiting for commit).

// coco-client is an IO adapter like coco-host: it drives hyper's connection futures on the
// caller's tokio runtime, so it spawns tasks (the core-crate ban does not apply here).
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coco_types::{TxId, TxStatus};
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{ClientConfig, Error, ReceiptForm, Result};

/// The header carrying the id of the transaction a write produced.
pub const TX_ID_HEADER: &str = "x-ms-ccf-transaction-id";

/// Largest response body the client reads (receipts and errors are far smaller).
pub const RESPONSE_BODY_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The longest an error message from a node is kept in [`Error::Status`].
const ERROR_MESSAGE_CHARS_MAX: usize = 512;

/// Which HTTP version a connection speaks; the node offers both through ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection through hyper.
    Http1,
    /// HTTP/2: many concurrent streams per connection.
    Http2,
}

/// Opens connections to nodes with one [`ClientConfig`].
#[derive(Clone, Debug)]
pub struct Client {
    config: ClientConfig,
    server_name: Option<ServerName<'static>>,
}

impl Client {
    /// A client that checks node certificates against `config`'s service certificate. By
    /// default the TLS server name is the IP address connected to (node certificates carry
    /// `127.0.0.1` and their host addresses as IP SANs).
    #[must_use]
    pub const fn new(config: ClientConfig) -> Self {
        Self { config, server_name: None }
    }

    /// Uses `name` (e.g. `localhost`) as the TLS server name instead of the IP address.
    ///
    /// # Errors
    /// [`Error::Identity`] if `name` is not a valid DNS name or IP address.
    pub fn with_server_name(mut self, name: &str) -> Result<Self> {
        let parsed = ServerName::try_from(name.to_owned()).map_err(|_| Error::Identity {
            what: "server name",
            source: coco_crypto::Error::Malformed {
                what: "server name",
                reason: "not a DNS name or IP address".into(),
            },
        })?;
        self.server_name = Some(parsed);
        Ok(self)
    }

    /// Opens TCP (with `TCP_NODELAY`) and TLS to `addr`; the TLS stream is what the
    /// pipelined benchmark writes raw HTTP/1.1 on.
    ///
    /// # Errors
    /// [`Error::Connect`] or [`Error::Handshake`].
    pub async fn connect_tls(
        &self,
        addr: SocketAddr,
        protocol: Protocol,
    ) -> Result<TlsStream<TcpStream>> {
        let tcp =
            TcpStream::connect(addr).await.map_err(|source| Error::Connect { addr, source })?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect { addr, source })?;
        let server_name =
            self.server_name.clone().unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        let connector = TlsConnector::from(self.config.rustls_config(protocol));
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|source| Error::Handshake { addr, source })
    }

    /// Opens a connection speaking `protocol`. hyper's connection task runs on the current
    /// tokio runtime until the [`Connection`] (and every clone of its sender) is dropped.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Handshake`] or [`Error::Http`] if the HTTP handshake
    /// fails.
    pub async fn connect(&self, addr: SocketAddr, protocol: Protocol) -> Result<Connection> {
        let tls = self.connect_tls(addr, protocol).await?;
        let io = TokioIo::new(tls);
        let sender = match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await?;
                tokio::spawn(connection);
                Sender::Http1(sender)
            }
            Protocol::Http2 => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(connection);
                Sender::Http2(sender)
            }
        };
        Ok(Connection { sender, authority: Arc::from(authority(addr)), addr })
    }
}

/// `host:port` as it goes into the `Host` header and `:authority`.
pub(crate) fn authority(addr: SocketAddr) -> String {
    addr.to_string()
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// One open connection to a node. HTTP/1.1 connections carry one request at a time (hence
/// `&mut self`); for HTTP/2, [`Connection::http2_sender`] gives a cloneable handle for
/// concurrent streams.
pub struct Connection {
    sender: Sender,
    authority: Arc<str>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.sender {
            Sender::Http1(_) => Protocol::Http1,
            Sender::Http2(_) => Protocol::Http2,
        };
        write!(f, "Connection({}, {protocol:?})", self.addr)
    }
}

/// A complete response: status, headers and the whole body.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read to the end (at most [`RESPONSE_BODY_BYTES_MAX`] bytes).
    pub body: Bytes,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetails,
}

#[derive(Deserialize)]
struct ErrorDetails {
    code: String,
    message: String,
}

impl Response {
    /// The transaction id from the `x-ms-ccf-transaction-id` header.
    ///
    /// # Errors
    /// [`Error::MissingTxId`] if the header is absent or not `view.seqno`.
    pub fn tx_id(&self) -> Result<TxId> {
        parse_tx_id_header(&self.headers)
    }

    /// The body parsed as JSON into `T`; `path` only labels the error.
    ///
    /// # Errors
    /// [`Error::UnexpectedBody`] if it does not parse.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|error| Error::UnexpectedBody { path: path.into(), reason: error.to_string() })
    }

    /// `self` if the status is 2xx, otherwise [`Error::Status`] with CCF's error code and
    /// message when the body has them.
    ///
    /// # Errors
    /// [`Error::Status`] for any status outside 200–299.
    pub fn error_for_status(self) -> Result<Self> {
        if self.status.is_success() {
            return Ok(self);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (String::new(), String::from_utf8_lossy(&self.body).into_owned()),
        };
        Err(Error::Status {
            status: self.status.as_u16(),
            code,
            message: message.chars().take(ERROR_MESSAGE_CHARS_MAX).collect(),
        })
    }
}

/// Parses the `x-ms-ccf-transaction-id` header (`view.seqno`).
///
/// # Errors
/// [`Error::MissingTxId`] if the header is absent, not ASCII, or not `view.seqno`.
pub fn parse_tx_id_header(headers: &HeaderMap) -> Result<TxId> {
    headers
        .get(TX_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .ok_or(Error::MissingTxId)
}

#[derive(Deserialize)]
struct CommitBody {
    transaction_id: TxId,
}

#[derive(Deserialize)]
struct TxBody {
    status: TxStatus,
}

impl Connection {
    /// The node address this connection goes to.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A cloneable sender for concurrent HTTP/2 streams, `None` on HTTP/1.1.
    #[must_use]
    pub fn http2_sender(&self) -> Option<http2::SendRequest<Full<Bytes>>> {
        match &self.sender {
            Sender::Http1(_) => None,
            Sender::Http2(sender) => Some(sender.clone()),
        }
    }

    /// Sends one request and reads the whole response. Non-2xx statuses are returned, not
    /// turned into errors (see [`Response::error_for_status`]).
    ///
    /// # Errors
    /// [`Error::Request`] for an invalid path, [`Error::Http`] if the exchange fails,
    /// [`Error::BodyTooLarge`] past [`RESPONSE_BODY_BYTES_MAX`].
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response> {
        let protocol = match self.sender {
            Sender::Http1(_) => Protocol::Http1,
            Sender::Http2(_) => Protocol::Http2,
        };
        let request = build_request(protocol, &self.authority, method, path, content_type, body)?;
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        read_response(response).await
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`Self::request`].
    pub async fn get(&mut self, path: &str) -> Result<Response> {
        self.request(Method::GET, path, None, Bytes::new()).await
    }

    /// `DELETE path`.
    ///
    /// # Errors
    /// As [`Self::request`].
    pub async fn delete(&mut self, path: &str) -> Result<Response> {
        self.request(Method::DELETE, path, None, Bytes::new()).await
    }

    /// `POST path` with `value` as a JSON body.
    ///
    /// # Errors
    /// As [`Self::request`]; [`Error::UnexpectedBody`] if `value` cannot be serialised.
    pub async fn post_json<T: serde::Serialize + ?Sized>(
        &mut self,
        path: &str,
        value: &T,
    ) -> Result<Response> {
        let body = serde_json::to_vec(value).map_err(|error| Error::UnexpectedBody {
            path: path.into(),
            reason: error.to_string(),
        })?;
        self.request(Method::POST, path, Some("application/json"), Bytes::from(body)).await
    }

    /// The last committed transaction (`GET /node/commit`).
    ///
    /// # Errors
    /// As [`Self::request`]; [`Error::Status`] or [`Error::UnexpectedBody`] for a bad answer.
    pub async fn commit(&mut self) -> Result<TxId> {
        let path = "/node/commit";
        let body: CommitBody = self.get(path).await?.error_for_status()?.json(path)?;
        Ok(body.transaction_id)
    }

    /// The status of `tx` on this node (`GET /node/tx`).
    ///
    /// # Errors
    /// As [`Self::commit`].
    pub async fn tx_status(&mut self, tx: TxId) -> Result<TxStatus> {
        let path = format!("/node/tx?transaction_id={tx}");
        let body: TxBody = self.get(&path).await?.error_for_status()?.json(&path)?;
        Ok(body.status)
    }

    /// Polls `/node/tx` until `tx` is committed, backing off from 5 ms to 100 ms.
    ///
    /// # Errors
    /// [`Error::TxInvalid`] if it was rolled back, [`Error::CommitTimeout`] after `timeout`,
    /// or the errors of [`Self::tx_status`].
    pub async fn wait_for_commit(&mut self, tx: TxId, timeout: Duration) -> Result<()> {
        let poll = async {
            let mut delay = Duration::from_millis(5);
            loop {
                match self.tx_status(tx).await? {
                    TxStatus::Committed => return Ok(()),
                    TxStatus::Invalid => return Err(Error::TxInvalid { tx }),
                    TxStatus::Pending | TxStatus::Unknown => {}
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        tokio::time::timeout(timeout, poll)
            .await
            .unwrap_or(Err(Error::CommitTimeout { tx, timeout_ms }))
    }
}

impl Connection {
    /// Fetches the receipt of `tx` in `form` (`/app/receipt` or `/app/receipt/cose`),
    /// retrying while the node answers 202 (CCF's historical queries are asynchronous), and
    /// returns the body for [`crate::verify_receipt_bytes`].
    ///
    /// # Errors
    /// [`Error::Status`] for an error answer, [`Error::ReceiptTimeout`] if it is still 202
    /// after `timeout`, or the errors of [`Self::request`].
    pub async fn receipt(
        &mut self,
        tx: TxId,
        form: ReceiptForm,
        timeout: Duration,
    ) -> Result<Bytes> {
        let path = match form {
            ReceiptForm::Json => format!("/app/receipt?transaction_id={tx}"),
            ReceiptForm::Cose => format!("/app/receipt/cose?transaction_id={tx}"),
        };
        let poll = async {
            let mut delay = Duration::from_millis(5);
            loop {
                let response = self.get(&path).await?;
                if response.status != StatusCode::ACCEPTED {
                    return Ok(response.error_for_status()?.body);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        tokio::time::timeout(timeout, poll)
            .await
            .unwrap_or(Err(Error::ReceiptTimeout { tx, timeout_ms }))
    }
}

/// Builds a request in the form each HTTP version needs: origin-form plus `Host` for
/// HTTP/1.1, an absolute `https://` URI (hence `:scheme` and `:authority`) for HTTP/2.
pub(crate) fn build_request(
    protocol: Protocol,
    authority: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>> {
    let mut builder = match protocol {
        Protocol::Http1 => http::Request::builder().uri(path).header(HOST, authority),
        Protocol::Http2 => http::Request::builder().uri(format!("https://{authority}{path}")),
    }
    .method(method);
    if let Some(content_type) = content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    Ok(builder.body(Full::new(body))?)
}

/// Reads the whole body, bounded by [`RESPONSE_BODY_BYTES_MAX`].
pub(crate) async fn read_response(
    response: http::Response<hyper::body::Incoming>,
) -> Result<Response> {
    let (parts, body) = response.into_parts();
    let limit = usize::try_from(RESPONSE_BODY_BYTES_MAX).unwrap_or(usize::MAX);
    let body = Limited::new(body, limit).collect().await.map_err(|error| {
        match error.downcast::<hyper::Error>() {
            Ok(error) => Error::Http(*error),
            Err(_) => Error::BodyTooLarge { limit: RESPONSE_BODY_BYTES_MAX },
        }
    })?;
    Ok(Response { status: parts.status, headers: parts.headers, body: body.to_bytes() })
}

#[cfg(test)]
mod tests;
