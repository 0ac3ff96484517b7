//! The application interface: apps plug into the node through [`App`] and run inside a
//! KV transaction the node commits. The node never names a particular app.

use coco_kv::Tx;
use coco_types::{Digest, MemberId, Seqno, UserId};

/// HTTP methods apps can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Create or act.
    Post,
    /// Replace.
    Put,
    /// Remove.
    Delete,
}

/// Who sent a request, as established by the TLS client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A user: may transact through apps.
    User(UserId),
    /// A member: governs.
    Member(MemberId),
}

/// What an app may ask of the node while it handles a request (outside the node's lock).
pub trait NodeQueries: Send + Sync {
    /// The commit point: what is at or before it is final.
    fn committed(&self) -> Seqno;

    /// The CCF JSON receipt of the transaction at `seqno`, once it is committed.
    ///
    /// # Errors
    /// [`AppError`] saying why there is none (not committed yet, unknown, before the
    /// snapshot this node started from).
    fn receipt(&self, seqno: Seqno) -> Result<serde_json::Value, AppError>;
}

/// A request routed to an app (the path has the `/app` prefix removed).
#[derive(Clone, Copy)]
pub struct AppRequest<'a> {
    /// The method.
    pub method: Method,
    /// Path below `/app`, e.g. `/log/private`.
    pub path: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// The authenticated caller.
    pub caller: Caller,
    /// The most items a listing may return in one page.
    pub page_items_max: u64,
    /// The node's clock (ms since the Unix epoch), for apps that stamp time (blocks).
    pub now_ms: u64,
    /// The node, for what an app cannot read from its transaction (receipts).
    pub node: &'a dyn NodeQueries,
}

impl std::fmt::Debug for AppRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_bytes", &self.body.len())
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// How a request body splits into transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// One request, one transaction.
    Single,
    /// Parts (bodies) that each run as a request and a transaction of their own, in order:
    /// a JSON-RPC batch, where one Ethereum transaction is one Coco transaction.
    Parts(Vec<Vec<u8>>),
    /// Refused before running anything: answer this.
    Refused(AppResponse),
}

/// A request an app checked before ordering ([`App::prepare`]): only the app that made it
/// reads it back, so the node carries it opaquely.
pub type Prepared = Box<dyn std::any::Any + Send>;

/// An app's successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    /// Whether the response waits until the transaction is committed.
    pub wait_for_commit: bool,
    /// What the transaction's receipt proves about its outcome (CCF's claims digest,
    /// bound into the Merkle leaf); `None` for none (zeros).
    pub claims_digest: Option<Digest>,
}

impl AppResponse {
    /// 200 with a JSON body.
    ///
    /// # Panics
    /// Never: a `serde_json::Value` always serialises.
    #[must_use]
    pub fn json(value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).expect("JSON values serialise");
        Self { status: 200, body, wait_for_commit: false, claims_digest: None }
    }
}

/// An app's refusal: an HTTP status and a stable error code, as CCF's
/// `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct AppError {
    /// HTTP status (4xx/5xx).
    pub status: u16,
    /// Stable machine-readable code (`InvalidInput`, `ResourceNotFound`, …).
    pub code: &'static str,
    /// Human-readable explanation; never contains private data.
    pub message: String,
}

impl AppError {
    /// 400 `InvalidInput`.
    #[must_use]
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self { status: 400, code: "InvalidInput", message: message.into() }
    }

    /// 404 `ResourceNotFound`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: 404, code: "ResourceNotFound", message: message.into() }
    }

    /// 404 for a path no route serves.
    #[must_use]
    pub fn no_route(path: &str) -> Self {
        Self { status: 404, code: "ResourceNotFound", message: format!("unknown path: {path}") }
    }

    /// 405 for a known path with the wrong method.
    #[must_use]
    pub fn method_not_allowed(path: &str) -> Self {
        Self {
            status: 405,
            code: "UnsupportedHttpVerb",
            message: format!("method not allowed on {path}"),
        }
    }
}

/// An application: handles requests inside a KV transaction. The node commits the
/// transaction if the handler succeeds and discards it otherwise, so a refused request
/// changes nothing. Handlers may be re-executed when their transaction conflicts, so they
/// must not have side effects outside `tx`.
pub trait App: Send + Sync {
    /// Handles one request.
    ///
    /// # Errors
    /// [`AppError`] with the status and code the client gets.
    fn handle(&self, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError>;

    /// Writes the app's initial state in the service's genesis transaction.
    ///
    /// # Errors
    /// [`AppError`] when the app's configuration cannot make a genesis.
    fn genesis(&self, _tx: &mut Tx, _now_ms: u64) -> Result<(), AppError> {
        Ok(())
    }

    /// Splits a request into parts that run as transactions of their own.
    fn split(&self, _request: &AppRequest<'_>) -> Split {
        Split::Single
    }

    /// The answer to a split request, from its parts' answers (in order).
    fn join(&self, _parts: &[Vec<u8>], replies: Vec<Result<AppResponse, AppError>>) -> AppResponse {
        let bodies: Vec<serde_json::Value> = replies
            .into_iter()
            .map(|reply| match reply {
                Ok(reply) => serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null),
                Err(e) => serde_json::json!({"error": {"code": e.code, "message": e.message}}),
            })
            .collect();
        AppResponse::json(&serde_json::Value::Array(bodies))
    }

    /// Checks a request before it is ordered and returns what [`App::execute_prepared`]
    /// needs to run it at its seqno, or `None` to run it the usual way (executed on a
    /// snapshot, then ordered, re-executed on conflict). For requests whose check is
    /// expensive and needs no state, and whose execution is short and bounded (an
    /// Ethereum transaction: its sender's recovery, then a bounded amount of gas): the
    /// prepared parts of a split request are proposed one after another without waiting
    /// for each other, and each runs when consensus appends it, seeing every earlier part.
    fn prepare(&self, _request: &AppRequest<'_>) -> Option<Prepared> {
        None
    }

    /// Runs a request [`App::prepare`] checked, in `tx`, at its seqno. It runs under the
    /// node's lock, on the path every transaction takes: it must be quick and bounded.
    ///
    /// # Errors
    /// [`AppError`]: nothing is written.
    fn execute_prepared(
        &self,
        _prepared: &Prepared,
        _tx: &mut Tx,
        _now_ms: u64,
    ) -> Result<AppResponse, AppError> {
        Err(AppError {
            status: 500,
            code: "InternalError",
            message: "this app prepares no requests".to_owned(),
        })
    }

    /// Whether [`App::before_signature`] has work (checked on a read-only transaction,
    /// so a node without it appends nothing).
    fn has_signature_work(&self, _tx: &mut Tx) -> bool {
        false
    }

    /// Work the primary does right before each signature transaction, in a transaction
    /// of its own (the Ethereum app seals its block there, so the signature commits it).
    ///
    /// # Errors
    /// [`AppError`]: the work is skipped (logged) and the signature goes on.
    fn before_signature(&self, _tx: &mut Tx, _now_ms: u64) -> Result<(), AppError> {
        Ok(())
    }
}

/// The app of a node opened without one: genesis writes nothing for apps.
pub(crate) struct NoApp;

impl App for NoApp {
    fn handle(&self, request: &AppRequest<'_>, _tx: &mut Tx) -> Result<AppResponse, AppError> {
        Err(AppError::no_route(request.path))
    }
}
