//! `coco gov` against a sandbox: members ack, member0 proposes a new user from a JSON file,
//! the others (if the sandbox has them) vote it in, and the proposal is listed, shown and its
//! actions read back; refusals exit non-zero with the node's error code on one line.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::block_on;
use crate::harness::{Launch, Who, Workspace, describe, quick_limits, run_coco};

/// Runs `coco gov <args> --address A --dir D`.
fn gov(addr: &str, dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_string_lossy();
    let mut all = vec!["gov"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--address", addr, "--dir", &dir]);
    run_coco(&all)
}

/// Runs a `coco gov` command that must succeed and returns its JSON output.
fn gov_ok(addr: &str, dir: &Path, args: &[&str]) -> Value {
    let output = gov(addr, dir, args);
    assert!(output.status.success(), "coco gov {args:?}: {}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("coco gov {args:?} printed no JSON ({e}): {}", describe(&output))
    })
}

/// Runs a `coco gov` command that must fail with `code`, and checks the one-line report.
fn gov_fails(addr: &str, dir: &Path, args: &[&str], code: &str) {
    let output = gov(addr, dir, args);
    assert!(!output.status.success(), "coco gov {args:?} succeeded: {}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with(&format!("error: {code}: ")), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "nothing on stdout: {}", describe(&output));
}

#[test]
fn members_govern_through_the_cli() {
    let mut workspace = Workspace::new();
    workspace.prepare(quick_limits());
    let node = workspace.start(Launch::Sandbox);
    let dir = workspace.sandbox();
    let addr = block_on(async { node.connect(&Who::Anonymous).await.addr() }).to_string();

    let acked = gov_ok(&addr, &dir, &["ack", "--member", "member0"]);
    assert_eq!(acked["acked"], true, "{acked}");
    assert_eq!(acked["stateDigest"].as_str().map(str::len), Some(64), "{acked}");

    // A fresh identity, proposed as a user from a file.
    let fresh = workspace.root().join("fresh");
    let output = run_coco(&["keygen", "--name", "user1", "--dir", &fresh.to_string_lossy()]);
    assert!(output.status.success(), "coco keygen: {}", describe(&output));
    let cert = std::fs::read_to_string(fresh.join("user1_cert.pem")).unwrap();
    let proposal = json!({"actions": [{"name": "set_user", "args": {"cert": cert}}]});
    let file = workspace.root().join("proposal.json");
    std::fs::write(&file, proposal.to_string()).unwrap();
    let file = file.to_string_lossy().into_owned();
    let mut info = gov_ok(&addr, &dir, &["propose", &file, "--member", "member0"]);
    let id = info["proposalId"].as_str().unwrap().to_owned();

    // With more members than member0 the proposal stays Open (and listed: the list holds
    // open proposals) until a majority votes.
    let listed = gov_ok(&addr, &dir, &["list"]);
    let open: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["proposalId"].as_str())
        .collect();
    let is_open = info["proposalState"] == "Open";
    assert_eq!(open.contains(&id.as_str()), is_open, "{info} {listed}");
    for member in ["member1", "member2"] {
        if info["proposalState"] != "Open" || !dir.join(format!("{member}_cert.pem")).exists() {
            break;
        }
        gov_ok(&addr, &dir, &["ack", "--member", member]);
        info = gov_ok(&addr, &dir, &["vote", &id, "--accept", "--member", member]);
    }
    assert_eq!(info["proposalState"], "Accepted", "{info}");

    let shown = gov_ok(&addr, &dir, &["show", &id]);
    assert_eq!(shown["proposalState"], "Accepted", "{shown}");
    let actions = gov_ok(&addr, &dir, &["actions", &id]);
    assert!(actions.to_string().contains("set_user"), "{actions}");
    let constitution = gov_ok(&addr, &dir, &["constitution"]);
    assert!(constitution["constitution"].as_str().is_some_and(|c| c.contains("vote")));

    let unknown = "00".repeat(32);
    gov_fails(&addr, &dir, &["vote", &unknown, "--accept"], "ProposalNotFound");
    gov_fails(&addr, &dir, &["withdraw", &id], "ProposalNotOpen");
}
