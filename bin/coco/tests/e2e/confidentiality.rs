//! Private records are encrypted before they reach the disk: a unique message written to
//! the private map appears in no file the node wrote, while the same kind of message written
//! to the public map is found in the ledger (so the scan does see plaintext when it is there).

use crate::block_on;
use crate::harness::{
    Launch, Who, Workspace, contains, files_under, get_record, post_record, quick_limits,
    random_hex, wait_committed,
};

#[test]
fn private_marker_never_on_disk() {
    let mut workspace = Workspace::new();
    workspace.prepare(quick_limits());
    let node = workspace.start(Launch::Sandbox);
    let private_marker = format!("COCO-MARKER-{}", random_hex());
    let public_marker = format!("COCO-PUBLIC-{}", random_hex());

    // Phase 1: the private marker through both write paths, the public control marker,
    // all committed (hence flushed to the ledger).
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        let private = post_record(&mut conn, "/app/log/private", 1, &private_marker).await.unwrap();
        let blocking =
            post_record(&mut conn, "/app/log/blocking/private", 2, &private_marker).await.unwrap();
        let public = post_record(&mut conn, "/app/log/public", 1, &public_marker).await.unwrap();
        for tx in [private, blocking, public] {
            wait_committed(&mut conn, tx).await;
        }
        assert_eq!(
            get_record(&mut conn, "private", 1).await.unwrap(),
            Some(private_marker.clone())
        );
    });
    node.terminate();

    // Phase 2: scan every file of the sandbox and the node's logs, byte by byte.
    let mut public_found_in = Vec::new();
    let files = files_under(workspace.root());
    assert!(
        files.iter().any(|f| f.starts_with(workspace.ledger_dir())),
        "no ledger file: {files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, private_marker.as_bytes()),
            "the private message is in clear in {}",
            file.display()
        );
        if contains(&bytes, public_marker.as_bytes()) {
            public_found_in.push(file.clone());
        }
    }
    assert!(
        public_found_in.iter().any(|f| f.starts_with(workspace.ledger_dir())),
        "the public control message is in no ledger file (found in {public_found_in:?}); \
         the scan cannot be trusted"
    );

    // Phase 3: the private message was on disk all along, encrypted: a restarted node reads it.
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        for id in [1, 2] {
            assert_eq!(
                get_record(&mut conn, "private", id).await.unwrap(),
                Some(private_marker.clone())
            );
        }
    });
    node.terminate();
}
