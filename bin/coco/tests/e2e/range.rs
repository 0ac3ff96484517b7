//! Range listings (`GET /app/log/{map}/all?from=&to=&limit=`) return records in id order,
//! paginate with `next`, and honour the half-open bounds `[from, to)`.

use coco_client::Connection;
use serde_json::Value;

use crate::block_on;
use crate::harness::{Launch, Record, Who, Workspace, body_text, expect_error, write_all};

/// One page: `(id, msg)` entries and the `next` id.
async fn page(conn: &mut Connection, map: &str, query: &str) -> (Vec<(u64, String)>, Option<u64>) {
    let path = format!("/app/log/{map}/all?{query}");
    let response = conn.get(&path).await.unwrap();
    assert_eq!(response.status, 200, "GET {path}: {}", body_text(&response));
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    let entries = body["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {body}"))
        .iter()
        .map(|entry| (entry["id"].as_u64().unwrap(), entry["msg"].as_str().unwrap().to_owned()))
        .collect();
    let next = if body["next"].is_null() {
        None
    } else {
        Some(body["next"].as_u64().unwrap_or_else(|| panic!("bad next in {body}")))
    };
    (entries, next)
}

fn ids(entries: &[(u64, String)]) -> Vec<u64> {
    entries.iter().map(|(id, _)| *id).collect()
}

fn msg(id: u64) -> String {
    format!("range record {id}")
}

#[test]
fn range_listing_paginates() {
    let mut workspace = Workspace::new();
    let node = workspace.start(Launch::Sandbox);
    // Written in a scrambled order, so id order is the listing's doing.
    let mut records: Vec<Record> =
        (1..=250).map(|id| Record { map: "private", id, msg: msg(id) }).collect();
    records.sort_by_key(|record| (record.id * 7919) % 251);
    records.extend((1..=5).map(|id| Record { map: "public", id, msg: format!("public {id}") }));

    block_on(async {
        write_all(&node, &records, 4, false).await;
        let mut conn = node.connect(&Who::User).await;

        // Phase 1: follow `next` with pages of 100.
        let mut listed = Vec::new();
        let mut sizes = Vec::new();
        let mut query = "limit=100".to_owned();
        loop {
            let (entries, next) = page(&mut conn, "private", &query).await;
            sizes.push(entries.len());
            listed.extend(entries);
            match next {
                Some(next) => query = format!("limit=100&from={next}"),
                None => break,
            }
            assert!(sizes.len() <= 3, "more pages than 250 records need: {sizes:?}");
        }
        assert_eq!(sizes, [100, 100, 50]);
        let expected: Vec<(u64, String)> = (1..=250).map(|id| (id, msg(id))).collect();
        assert_eq!(listed, expected);

        // Phase 2: bounds.
        let (entries, next) = page(&mut conn, "private", "from=10&to=20").await;
        assert_eq!((ids(&entries), next), ((10..20).collect(), None));
        let (entries, next) = page(&mut conn, "private", "from=10&to=20&limit=5").await;
        assert_eq!((ids(&entries), next), ((10..15).collect(), Some(15)));
        let (entries, next) = page(&mut conn, "private", "from=15&to=20&limit=5").await;
        assert_eq!((ids(&entries), next), ((15..20).collect(), None));
        let (entries, next) = page(&mut conn, "private", "from=240").await;
        assert_eq!((ids(&entries), next), ((240..=250).collect(), None));
        let (entries, next) = page(&mut conn, "private", "to=4").await;
        assert_eq!((ids(&entries), next), ((1..4).collect(), None));
        for empty in ["from=251", "from=20&to=20", "from=0&to=1"] {
            assert_eq!(page(&mut conn, "private", empty).await, (Vec::new(), None), "{empty}");
        }
        let (entries, next) = page(&mut conn, "private", "").await;
        assert_eq!((entries.len(), next), (250, None));

        // Phase 3: an inverted range is refused or empty, and the node survives it.
        let response = conn.get("/app/log/private/all?from=20&to=10").await.unwrap();
        if response.status == 200 {
            let body: Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(body, serde_json::json!({"entries": [], "next": null}));
        } else {
            expect_error(&response, 400, "InvalidInput");
        }
        let (entries, _) = page(&mut conn, "private", "from=1&to=3").await;
        assert_eq!(ids(&entries), [1, 2]);

        // Phase 4: maps are separate, and a deleted record leaves the listing.
        let (entries, next) = page(&mut conn, "public", "").await;
        let public: Vec<(u64, String)> = (1..=5).map(|id| (id, format!("public {id}"))).collect();
        assert_eq!((entries, next), (public, None));
        let response = conn.delete("/app/log/private?id=100").await.unwrap();
        assert_eq!(response.status, 200, "{}", body_text(&response));
        let (entries, next) = page(&mut conn, "private", "from=99&to=102").await;
        assert_eq!((ids(&entries), next), (vec![99, 101], None));
    });
    node.terminate();
}
