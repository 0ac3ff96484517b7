//! The crate's error types: [`Error`] for talking to a node, [`ReceiptError`] for offline
//! receipt verification (callers match on why a receipt failed, so it has its own enum).

use std::net::SocketAddr;

use coco_types::TxId;

/// What went wrong while configuring TLS, connecting, sending a request or running a
/// benchmark. Variants carry the address, status or id needed to debug.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate or private key given to the client could not be used.
    #[error("invalid {what}: {source}")]
    Identity {
        /// Which input was refused (service certificate, client certificate, client key).
        what: &'static str,
        /// Why.
        source: coco_crypto::Error,
    },
    /// rustls refused the configuration (for example, a key that does not match its cert).
    #[error("TLS configuration refused: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The node's address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted node certificate, refused client certificate…).
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        /// The node's address.
        addr: SocketAddr,
        /// The handshake error as tokio-rustls reports it.
        source: std::io::Error,
    },
    /// hyper failed to send a request or read a response (connection closed, protocol error).
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// A request could not be built from the given method, path or headers.
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// A socket read or write failed outside hyper (the pipelined HTTP/1.1 path).
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// A response body was larger than the client accepts.
    #[error("response body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The node answered with an error status, in CCF's `{"error":{"code","message"}}` shape
    /// when it had one.
    #[error("node answered {status}: {code}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The error code from the body, or empty.
        code: String,
        /// The error message from the body (or the body text), truncated.
        message: String,
    },
    /// A successful write came back without a valid `x-ms-ccf-transaction-id` header.
    #[error("response has no valid x-ms-ccf-transaction-id header")]
    MissingTxId,
    /// A response body was not the JSON the endpoint documents.
    #[error("unexpected response body from {path}: {reason}")]
    UnexpectedBody {
        /// The request path.
        path: String,
        /// What did not parse.
        reason: String,
    },
    /// The transaction was rolled back: it will never commit.
    #[error("transaction {tx} is invalid (rolled back)")]
    TxInvalid {
        /// The transaction.
        tx: TxId,
    },
    /// The transaction was not committed before the deadline.
    #[error("transaction {tx} not committed within {timeout_ms} ms")]
    CommitTimeout {
        /// The transaction.
        tx: TxId,
        /// How long the client waited.
        timeout_ms: u64,
    },
    /// The node still answered 202 (fetching) for a receipt after the deadline.
    #[error("receipt of {tx} not available within {timeout_ms} ms")]
    ReceiptTimeout {
        /// The transaction.
        tx: TxId,
        /// How long the client waited.
        timeout_ms: u64,
    },
    /// A pipelined HTTP/1.1 response could not be parsed.
    #[error("malformed HTTP/1.1 response: {0}")]
    Http1Response(String),
    /// A benchmark configuration is outside its bounds.
    #[error("invalid benchmark configuration: {0}")]
    BenchConfig(String),
    /// Requests were still unanswered when the benchmark's drain timeout expired.
    #[error("{in_flight} requests unanswered at the drain deadline")]
    DrainTimeout {
        /// Requests sent and never answered.
        in_flight: u64,
    },
    /// The connection closed before all pipelined responses arrived.
    #[error("connection closed with {in_flight} requests in flight")]
    ConnectionClosed {
        /// Requests sent and never answered.
        in_flight: u64,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a receipt did not verify. Every failure is a typed variant; no input panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Neither a JSON object nor a tagged COSE Sign1 (first byte `0xd2`).
    #[error("receipt is neither JSON nor COSE Sign1")]
    UnknownForm,
    /// The JSON does not have the shape of a CCF receipt.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The trusted service certificate could not be parsed.
    #[error("invalid service certificate: {0}")]
    ServiceCertificate(coco_crypto::Error),
    /// The receipt's node certificate could not be parsed or has an unusable key.
    #[error("invalid node certificate: {0}")]
    NodeCertificate(coco_crypto::Error),
    /// The node's signature over the computed root does not verify: some field was changed.
    #[error("node signature over root {root} does not verify")]
    BadSignature {
        /// The root computed from the leaf and the proof.
        root: coco_types::Digest,
    },
    /// A link of the endorsement chain node → endorsements… → service does not verify.
    #[error("endorsement {link} of the chain to the service certificate does not verify: {source}")]
    Endorsement {
        /// Which link failed: 0 is the node certificate, `n` the `n`-th endorsement.
        link: u32,
        /// Why.
        source: coco_crypto::Error,
    },
    /// More endorsements or proof steps than any real service produces.
    #[error("receipt has {count} {what}, more than the limit of {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many the receipt has.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The commit evidence is not `ce:<view>.<seqno>:<hex>`.
    #[error("commit evidence {0:?} is not ce:<view>.<seqno>:<hex>")]
    CommitEvidence(String),
    /// The COSE receipt did not verify (wrong key, tampered proof, bad shape).
    #[error("COSE receipt does not verify: {0}")]
    Cose(coco_crypto::Error),
}
