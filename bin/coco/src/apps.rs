//! The apps a node serves, wired here because the node never names them: the logging app
//! under `/app/log/…` and the Ethereum app's JSON-RPC at `/app/eth`.

use anyhow::{Context, Result, bail};
use coco_evm::{Body, EthApp, EthConfig, NodeServices, PreparedSend};
use coco_kv::Tx;
use coco_node::NodeConfig;
use coco_node::apps::logging::LoggingApp;
use coco_node::{App, AppError, AppRequest, AppResponse, Method, NodeQueries, Prepared, Split};
use coco_types::{Digest, Seqno};
use serde_json::{Value, json};

/// The path of the Ethereum JSON-RPC, below `/app`.
const ETH_PATH: &str = "/eth";

/// Apps whose settings a configuration may carry under `[apps.<name>]`.
const KNOWN_APPS: [&str; 1] = ["eth"];

/// Every app, behind one [`App`].
pub(crate) struct Apps {
    logging: LoggingApp,
    eth: EthApp,
}

/// The node's apps, set up from its configuration.
///
/// # Errors
/// An unknown `[apps.<name>]` table or bad settings.
pub(crate) fn from_config(config: &NodeConfig) -> Result<Box<dyn App>> {
    if let Some(name) = config.apps.keys().find(|name| !KNOWN_APPS.contains(&name.as_str())) {
        bail!("unknown app [apps.{name}]: the apps are {}", KNOWN_APPS.join(", "));
    }
    let eth = EthConfig::from_value(config.apps.get("eth")).context("the Ethereum app")?;
    let eth = EthApp::new(eth).with_write_set_bytes_max(config.limits.write_set_bytes_max);
    Ok(Box::new(Apps { logging: LoggingApp::default(), eth }))
}

/// What the Ethereum app asks of the node, answered through the request.
struct Services<'a> {
    now_ms: u64,
    node: &'a dyn NodeQueries,
}

impl NodeServices for Services<'_> {
    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn committed_seqno(&self) -> u64 {
        self.node.committed().0
    }

    fn receipt(&self, seqno: u64) -> Result<Value, String> {
        self.node.receipt(Seqno(seqno)).map_err(|e| e.message)
    }
}

impl Apps {
    fn eth(&self, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
        if request.method != Method::Post {
            return Err(AppError::method_not_allowed("/app/eth (JSON-RPC: POST)"));
        }
        let services = Services { now_ms: request.now_ms, node: request.node };
        Ok(eth_response(self.eth.handle(request.body, tx, &services)))
    }
}

/// A JSON-RPC reply as the node sends it (JSON-RPC errors are 200s).
fn eth_response(reply: coco_evm::Reply) -> AppResponse {
    let body = reply.response.map(|r| serde_json::to_vec(&r).unwrap_or_default());
    AppResponse {
        status: 200,
        body: body.unwrap_or_default(),
        wait_for_commit: false,
        claims_digest: reply.claims_digest.map(Digest),
    }
}

/// The JSON-RPC error for a batch element the node refused to run; nothing for a
/// notification.
fn refused_part(part: &[u8], error: &AppError) -> Vec<u8> {
    let part = serde_json::from_slice::<Value>(part).unwrap_or(Value::Null);
    if part.is_object() && part.get("id").is_none() {
        return Vec::new();
    }
    let message = format!("{}: {}", error.code, error.message);
    let id = part.get("id").cloned().unwrap_or(Value::Null);
    let response =
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": message}});
    serde_json::to_vec(&response).unwrap_or_default()
}

impl App for Apps {
    fn handle(&self, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
        if request.path == ETH_PATH {
            self.eth(request, tx)
        } else {
            self.logging.handle(request, tx)
        }
    }

    fn genesis(&self, tx: &mut Tx, now_ms: u64) -> Result<(), AppError> {
        self.eth.genesis(tx, now_ms).map_err(|e| AppError::invalid_input(e.to_string()))
    }

    fn split(&self, request: &AppRequest<'_>) -> Split {
        if request.path != ETH_PATH || request.method != Method::Post {
            return Split::Single;
        }
        match coco_evm::split_batch(request.body) {
            Body::Single => Split::Single,
            Body::Batch(parts) => Split::Parts(parts),
            Body::Refused(body) => Split::Refused(AppResponse {
                status: 200,
                body,
                wait_for_commit: false,
                claims_digest: None,
            }),
        }
    }

    /// A batch's answer: each part's response object as the app wrote it, and for a part
    /// the node could not run (no quorum, too many conflicts, the answer too large) a
    /// JSON-RPC error with the node's reason. Notifications (no `id`) get nothing.
    fn join(&self, parts: &[Vec<u8>], replies: Vec<Result<AppResponse, AppError>>) -> AppResponse {
        let responses: Vec<Vec<u8>> = parts
            .iter()
            .zip(replies)
            .map(|(part, reply)| reply.map_or_else(|e| refused_part(part, &e), |r| r.body))
            .collect();
        let body = coco_evm::join_batch(&responses);
        AppResponse { status: 200, body, wait_for_commit: false, claims_digest: None }
    }

    /// `eth_sendRawTransaction`: decoded and its sender recovered before it is ordered.
    fn prepare(&self, request: &AppRequest<'_>) -> Option<Prepared> {
        if request.path != ETH_PATH || request.method != Method::Post {
            return None;
        }
        let prepared: Prepared = Box::new(self.eth.prepare_send(request.body)?);
        Some(prepared)
    }

    fn execute_prepared(
        &self,
        prepared: &Prepared,
        tx: &mut Tx,
        now_ms: u64,
    ) -> Result<AppResponse, AppError> {
        let prepared = prepared.downcast_ref::<PreparedSend>().ok_or_else(|| AppError {
            status: 500,
            code: "InternalError",
            message: "a prepared request of another app".to_owned(),
        })?;
        Ok(eth_response(self.eth.execute_prepared(prepared, tx, now_ms)))
    }

    fn has_signature_work(&self, tx: &mut Tx) -> bool {
        self.eth.has_pending(tx)
    }

    fn before_signature(&self, tx: &mut Tx, now_ms: u64) -> Result<(), AppError> {
        self.eth.seal(tx, now_ms).map_err(|e| AppError {
            status: 500,
            code: "InternalError",
            message: e.to_string(),
        })
    }
}
