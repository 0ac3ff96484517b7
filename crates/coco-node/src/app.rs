//! The application interface: apps plug into the node through [`App`] and run inside a
//! KV transaction the node commits. The node never names a particular app.

use coco_kv::Tx;
use coco_types::{MemberId, UserId};

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

/// A request routed to an app (the path has the `/app` prefix removed).
#[derive(Clone, Copy, Debug)]
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
}

/// An app's successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    /// Whether the response waits until the transaction is committed.
    pub wait_for_commit: bool,
}

impl AppResponse {
    /// 200 with a JSON body.
    ///
    /// # Panics
    /// Never: a `serde_json::Value` always serialises.
    #[must_use]
    pub fn json(value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).expect("JSON values serialise");
        Self { status: 200, body, wait_for_commit: false }
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
}
