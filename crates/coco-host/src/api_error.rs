//! Errors on the wire, mapped in one place: CCF's `{"error": {"code", "message"}}` body,
//! the `x-ms-error-code` header, and the HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error a client receives.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_s: None }
    }

    pub(crate) fn bad_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidQueryParameterValue", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// The same refusal for an app to render in its own protocol (a batch's part).
    pub(crate) fn into_app_error(self) -> coco_node::AppError {
        coco_node::AppError { status: self.status.as_u16(), code: self.code, message: self.message }
    }

    pub(crate) fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// Maps a node error. Client-caused conditions get 4xx/503; anything else is a 500
    /// whose details go to the log, not to the client (they may name private state).
    pub(crate) fn from_node(error: &coco_node::Error) -> Self {
        use coco_node::Error as E;
        match error {
            E::Backpressure { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TooManyPendingTransactions",
                error.to_string(),
            )
            .retry_after(1),
            E::WriteSetTooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "WriteSetTooLarge", error.to_string())
            }
            E::TooManyConflicts { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "TransactionConflict", error.to_string())
            }
            E::NoReceipt { reason: "pending", tx } => Self::new(
                StatusCode::ACCEPTED,
                "TransactionPending",
                format!("{tx} is not committed yet"),
            )
            .retry_after(1),
            E::NoReceipt { tx, reason } => Self::new(
                StatusCode::NOT_FOUND,
                "TransactionNotFound",
                format!("no receipt for {tx}: {reason}"),
            ),
            E::UnknownSeqno(seqno) => Self::new(
                StatusCode::NOT_FOUND,
                "TransactionNotFound",
                format!("seqno {seqno} is not in the ledger"),
            ),
            E::Recovery(reason) => {
                Self::new(StatusCode::BAD_REQUEST, "RecoveryFailed", reason.clone())
            }
            E::Io { .. }
            | E::Crypto { .. }
            | E::Corrupt { .. }
            | E::Ledger(_)
            | E::Kv(_)
            | E::Merkle(_) => {
                tracing::error!(error = %error, "request failed inside the node");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert("x-ms-error-code", HeaderValue::from_static(self.code));
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
