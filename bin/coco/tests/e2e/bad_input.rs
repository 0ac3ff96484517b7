//! Bad requests are refused with the right status and CCF-shaped error, and change nothing:
//! no transaction is ordered for them and no record is touched.

use bytes::Bytes;
use coco_client::{Connection, Protocol, Response};
use coco_types::TxId;
use http::Method;
use serde_json::{Value, json};

use crate::block_on;
use crate::harness::{
    Launch, NodeProcess, Who, Workspace, app_txs_ordered, body_text, check_error, describe,
    expect_error, get_record, post_record, run_coco, wait_committed,
};

/// The record the refused writes aim at; it must keep its message.
const KEPT_ID: u64 = 7;
const KEPT_MSG: &str = "keep me";

/// One bad request and the refusal it must get.
struct Case {
    method: Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(method: Method, path: &str, body: &[u8], status: u16, code: &'static str) -> Case {
    Case { method, path: path.to_owned(), body: body.to_vec(), status, code }
}

async fn send(conn: &mut Connection, method: Method, path: &str, body: &[u8]) -> Response {
    let content_type = (!body.is_empty()).then_some("application/json");
    conn.request(method.clone(), path, content_type, Bytes::copy_from_slice(body))
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// Requests a known user sends that the node must refuse.
fn user_cases(tx: TxId) -> Vec<Case> {
    let post = |body: &[u8]| case(Method::POST, "/app/log/private", body, 400, "InvalidInput");
    let mut cases = vec![
        post(b"{\"id\": 7, \"msg\": "),
        post(b"not json"),
        post(b""),
        post(b"{\"id\": 7, \"msg\": \"x\", \"extra\": 1}"),
        post(b"{\"id\": \"7\", \"msg\": \"x\"}"),
        post(b"{\"id\": -7, \"msg\": \"x\"}"),
        post(b"{\"id\": 7.5, \"msg\": \"x\"}"),
        post(b"{\"id\": 18446744073709551616, \"msg\": \"x\"}"),
        post(b"{\"id\": 7, \"msg\": 7}"),
        post(b"{\"id\": 7}"),
        post(b"[7, \"x\"]"),
        post(b"null"),
        case(Method::POST, "/app/log/blocking/private", b"{\"id\": 7}", 400, "InvalidInput"),
        case(Method::POST, "/app/log/public", b"{\"id\": 7, \"msg\": null}", 400, "InvalidInput"),
        case(Method::GET, "/app/log/nothing", b"", 404, "ResourceNotFound"),
        case(Method::GET, "/app/log", b"", 404, "ResourceNotFound"),
        case(Method::GET, "/nothing", b"", 404, "ResourceNotFound"),
        case(Method::POST, "/app/nothing", b"{}", 404, "ResourceNotFound"),
        case(
            Method::PUT,
            "/app/log/private",
            b"{\"id\": 7, \"msg\": \"x\"}",
            405,
            "UnsupportedHttpVerb",
        ),
        case(
            Method::PATCH,
            "/app/log/private",
            b"{\"id\": 7, \"msg\": \"x\"}",
            405,
            "UnsupportedHttpVerb",
        ),
        case(Method::GET, "/app/log/blocking/private", b"", 405, "UnsupportedHttpVerb"),
        case(Method::DELETE, "/app/log/private/all", b"", 405, "UnsupportedHttpVerb"),
        case(Method::POST, "/node/commit", b"{}", 405, "UnsupportedHttpVerb"),
        case(Method::GET, "/app/log/private", b"", 400, "InvalidInput"),
        case(Method::GET, "/app/log/private?id=abc", b"", 400, "InvalidInput"),
        case(Method::GET, "/app/log/private?id=-1", b"", 400, "InvalidInput"),
        case(Method::DELETE, "/app/log/private?id=abc", b"", 400, "InvalidInput"),
        case(Method::GET, "/app/log/private/all?limit=0", b"", 400, "InvalidInput"),
        case(Method::GET, "/app/log/private/all?from=x", b"", 400, "InvalidInput"),
        case(Method::GET, "/app/log/private?id=424242", b"", 404, "ResourceNotFound"),
        case(Method::DELETE, "/app/log/private?id=424242", b"", 404, "ResourceNotFound"),
        case(Method::DELETE, "/app/log/public?id=424242", b"", 404, "ResourceNotFound"),
    ];
    for bad in ["abc", "1.", "-1.2", "1.2.3", ".5", "", "1.2%20", "99999999999999999999.1"] {
        for endpoint in ["/node/tx", "/app/receipt", "/app/receipt/cose"] {
            let path = format!("{endpoint}?transaction_id={bad}");
            cases.push(case(Method::GET, &path, b"", 400, "InvalidQueryParameterValue"));
        }
    }
    for endpoint in ["/node/tx", "/app/receipt", "/app/receipt/cose"] {
        cases.push(case(Method::GET, endpoint, b"", 400, "InvalidQueryParameterValue"));
    }
    // A TxId the service never produced, and one rolled back by a later view: no receipt.
    let unknown = format!("{}.999999", tx.view.0 + 97);
    let mut no_receipt = vec![unknown];
    if tx.view.0 > 1 {
        no_receipt.push(format!("{}.{}", tx.view.0 - 1, tx.seqno.0));
    }
    for bad in no_receipt {
        for endpoint in ["/app/receipt", "/app/receipt/cose"] {
            let path = format!("{endpoint}?transaction_id={bad}");
            cases.push(case(Method::GET, &path, b"", 404, "TransactionNotFound"));
        }
    }
    cases
}

/// Requests to `/app` from a caller who is not a user: all 401.
fn stranger_cases(tx: TxId) -> Vec<Case> {
    let body = format!("{{\"id\": {KEPT_ID}, \"msg\": \"stranger\"}}");
    vec![
        case(Method::POST, "/app/log/private", body.as_bytes(), 401, "Unauthorized"),
        case(Method::POST, "/app/log/blocking/public", body.as_bytes(), 401, "Unauthorized"),
        case(Method::GET, &format!("/app/log/private?id={KEPT_ID}"), b"", 401, "Unauthorized"),
        case(Method::DELETE, &format!("/app/log/private?id={KEPT_ID}"), b"", 401, "Unauthorized"),
        case(Method::GET, "/app/log/private/all", b"", 401, "Unauthorized"),
        case(Method::GET, &format!("/app/receipt?transaction_id={tx}"), b"", 401, "Unauthorized"),
        case(
            Method::GET,
            &format!("/app/receipt/cose?transaction_id={tx}"),
            b"",
            401,
            "Unauthorized",
        ),
    ]
}

/// Sends every case; what went wrong, one line per case, in `problems`.
async fn run_cases(conn: &mut Connection, who: &str, cases: &[Case], problems: &mut Vec<String>) {
    for case in cases {
        let response = send(conn, case.method.clone(), &case.path, &case.body).await;
        if let Err(problem) = check_error(&response, case.status, case.code) {
            let body = String::from_utf8_lossy(&case.body);
            problems.push(format!("{who}: {} {} {body:?}: {problem}", case.method, case.path));
        }
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    // The plain sandbox, default limits: the body limit is the shipped one.
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    let stranger_dir = workspace.root().join("stranger");
    let output =
        run_coco(&["keygen", "--name", "stranger", "--dir", &stranger_dir.to_string_lossy()]);
    assert!(output.status.success(), "coco keygen: {}", describe(&output));
    let body_limit = coco_types::Limits::default().request_body_bytes_max;

    block_on(async {
        // Phase 1: one good record, committed; then the baseline.
        let mut conn = node.connect(&Who::User).await;
        let tx = post_record(&mut conn, "/app/log/private", KEPT_ID, KEPT_MSG).await.unwrap();
        wait_committed(&mut conn, tx).await;
        let before = app_txs_ordered(&mut conn).await;

        // Phase 2: every bad request, as a user, as nobody, and as an unknown certificate;
        // all refusals are checked before failing, so one report lists every problem.
        let mut problems = Vec::new();
        run_cases(&mut conn, "user0", &user_cases(tx), &mut problems).await;
        for unknown in [format!("{}.999999", tx.view.0 + 97), format!("{}.999999", tx.view.0)] {
            let status = tx_status_text(&mut conn, &unknown).await;
            assert_eq!(status, "Unknown", "status of {unknown}");
        }
        if tx.view.0 > 1 {
            let rolled_back = format!("{}.{}", tx.view.0 - 1, tx.seqno.0);
            assert_eq!(tx_status_text(&mut conn, &rolled_back).await, "Invalid", "{rolled_back}");
        }
        oversized_bodies(&node, body_limit).await;
        let mut anonymous = node.connect(&Who::Anonymous).await;
        run_cases(&mut anonymous, "no certificate", &stranger_cases(tx), &mut problems).await;
        assert_eq!(anonymous.commit().await.unwrap().view, tx.view, "/node/* needs no certificate");
        let stranger = Who::Named(stranger_dir.clone(), "stranger".to_owned());
        let mut stranger = node.connect(&stranger).await;
        run_cases(&mut stranger, "unknown certificate", &stranger_cases(tx), &mut problems).await;

        // Phase 3: nothing changed.
        let after = app_txs_ordered(&mut conn).await;
        if after != before {
            problems
                .push(format!("{} refused requests were ordered as transactions", after - before));
        }
        let kept = get_record(&mut conn, "private", KEPT_ID).await.unwrap();
        if kept.as_deref() != Some(KEPT_MSG) {
            problems.push(format!("record {KEPT_ID} is now {kept:?}, not {KEPT_MSG:?}"));
        }
        for (map, id) in [("public", KEPT_ID), ("private", 424_242), ("public", 424_242)] {
            if let Some(msg) = get_record(&mut conn, map, id).await.unwrap() {
                problems.push(format!("{map} record {id} exists: {msg:?}"));
            }
        }
        let listing: Value =
            conn.get("/app/log/private/all").await.unwrap().json("/app/log/private/all").unwrap();
        if listing != json!({"entries": [{"id": KEPT_ID, "msg": KEPT_MSG}], "next": null}) {
            problems.push(format!("private records are now {listing}"));
        }
        assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    });
    node.terminate();
}

async fn tx_status_text(conn: &mut Connection, tx: &str) -> String {
    let response = conn.get(&format!("/node/tx?transaction_id={tx}")).await.unwrap();
    assert_eq!(response.status, 200, "{}", body_text(&response));
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["status"].as_str().unwrap_or_default().to_owned()
}

/// Bodies one byte over the limit get 413 `RequestBodyTooLarge`, over HTTP/2 and HTTP/1.1,
/// and a body exactly at the limit is read (and refused only as invalid JSON).
async fn oversized_bodies(node: &NodeProcess, limit: u64) {
    let limit = usize::try_from(limit).unwrap();
    let too_large = json_of_size(limit + 1);
    let at_limit = json_of_size(limit);
    for protocol in [Protocol::Http2, Protocol::Http1] {
        let mut conn = node.try_connect(&Who::User, protocol).await.unwrap();
        let response = send(&mut conn, Method::POST, "/app/log/private", &too_large).await;
        expect_error(&response, 413, "RequestBodyTooLarge");
        let mut conn = node.try_connect(&Who::User, protocol).await.unwrap();
        let response = send(&mut conn, Method::POST, "/app/log/private", &at_limit).await;
        expect_error(&response, 400, "InvalidInput");
    }
}

/// `{"id": 7, "msg": "xxx…"` cut to `size` bytes: never valid JSON, whatever the size.
fn json_of_size(size: usize) -> Vec<u8> {
    let mut body = format!("{{\"id\": {KEPT_ID}, \"msg\": \"").into_bytes();
    body.resize(size, b'x');
    body
}
