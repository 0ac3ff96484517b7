//! Node limits hold at the socket: at `sessions_max` open sessions a further client waits
//! in the kernel's backlog (its TLS handshake does not complete) until a session closes.

use std::time::Duration;

use coco_client::Protocol;
use coco_types::Limits;

use crate::block_on;
use crate::harness::{Launch, Who, Workspace, quick_limits};

#[test]
fn sessions_beyond_the_limit_wait_until_one_closes() {
    let mut workspace = Workspace::new();
    workspace.prepare(Limits { sessions_max: 2, ..quick_limits() });
    let node = workspace.start(Launch::Sandbox);
    block_on(async {
        phase("two sessions fill the limit");
        let mut first = node.connect(&Who::User).await;
        let mut second = node.connect(&Who::User).await;
        assert_eq!(first.get("/node/commit").await.unwrap().status, 200);
        assert_eq!(second.get("/node/commit").await.unwrap().status, 200);

        phase("a third session is not served while both stay open");
        let third = node.try_connect(&Who::User, Protocol::Http2);
        let mut third = Box::pin(third);
        let early = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
        assert!(early.is_err(), "a third session was accepted past sessions_max = 2");

        phase("closing one lets the waiting client in");
        drop(first);
        let mut third = tokio::time::timeout(Duration::from_secs(10), third)
            .await
            .expect("the waiting session is served once a slot frees")
            .expect("the third session connects");
        assert_eq!(third.get("/node/commit").await.unwrap().status, 200);
        assert_eq!(second.get("/node/commit").await.unwrap().status, 200);
    });
}

/// Names a test phase in the output (the e2e tests do not install a tracing subscriber).
fn phase(what: &str) {
    eprintln!("phase: {what}");
}
