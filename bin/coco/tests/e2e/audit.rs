//! Auditing what a node wrote: CCF's `read_ledger.py` and `ccf.receipt` (the independent
//! verifier) and Coco's `coco ledger verify` / `coco receipt verify` accept a real ledger
//! and its receipts, and reject them once a single byte is changed.

use std::path::{Path, PathBuf};

use coco_client::{ReceiptForm, verify_receipt_bytes};
use coco_types::{Limits, TxId};
use serde_json::Value;

use crate::block_on;
use crate::ccf::CcfPython;
use crate::harness::{
    COMMIT_TIMEOUT, Launch, NodeProcess, Record, Who, Workspace, committed_chunks, copy_dir,
    describe, expect_error, find, post_record, quick_limits, random_hex, run_coco, wait_committed,
    write_all,
};

/// Small chunks, so a thousand transactions complete (and commit) several chunk files.
fn audit_limits() -> Limits {
    Limits { ledger_chunk_bytes: 16 * 1024, ..quick_limits() }
}

/// `count` records alternating between the private and the public map, of varied sizes.
fn mixed_records(first_id: u64, count: u64, tag: &str) -> Vec<Record> {
    (first_id..first_id + count)
        .map(|id| Record {
            map: if id % 2 == 0 { "private" } else { "public" },
            id,
            msg: format!("{tag} {id} {}", "x".repeat(usize::try_from(id % 97).unwrap())),
        })
        .collect()
}

/// The latest of `txs` (largest seqno).
fn last_tx(txs: impl IntoIterator<Item = TxId>) -> TxId {
    txs.into_iter().max_by_key(|tx| tx.seqno).expect("at least one transaction")
}

/// `coco ledger verify --quiet dir`.
fn coco_ledger_verify(dir: &Path) -> std::process::Output {
    run_coco(&["ledger", "verify", "--quiet", &dir.to_string_lossy()])
}

/// `coco receipt verify file --service-cert cert`.
fn coco_receipt_verify(file: &Path, service_cert: &Path) -> std::process::Output {
    run_coco(&[
        "receipt",
        "verify",
        &file.to_string_lossy(),
        "--service-cert",
        &service_cert.to_string_lossy(),
    ])
}

#[test]
fn ccf_verifies_ledger_and_receipts() {
    let ccf = CcfPython::from_env("ccf_verifies_ledger_and_receipts");
    let mut workspace = Workspace::new();
    workspace.prepare(audit_limits());
    let node = workspace.start(Launch::Sandbox);
    let records = mixed_records(1, 1000, "audit");
    let receipts_dir = workspace.root().join("receipts");
    std::fs::create_dir_all(&receipts_dir).unwrap();

    // Phase 1: a thousand writes over eight HTTP/2 connections, then their receipts (every
    // 50th transaction, and the signature transaction that commits the last one).
    let (txs, signature) = block_on(write_and_fetch_receipts(&node, &records, &receipts_dir));
    assert_eq!(txs.len(), 1000);
    assert!(!txs.contains(&signature), "/node/commit {signature} is an app transaction");
    node.terminate();

    let service_cert = workspace.sandbox().join("service_cert.pem");
    let receipts = receipt_files(&receipts_dir);
    assert_eq!(receipts.len(), 2 * 21 - 1, "{receipts:?}");
    check_receipts_in_process(&receipts, &workspace.service_cert_pem(), signature);

    // Phase 2: Coco's own verifiers accept the ledger and each receipt.
    let ledger = workspace.ledger_dir();
    let chunks = committed_chunks(&ledger);
    assert!(chunks.len() >= 3, "expected several committed chunks: {chunks:?}");
    let output = coco_ledger_verify(&ledger);
    assert!(output.status.success(), "coco ledger verify: {}", describe(&output));
    for file in &receipts {
        let output = coco_receipt_verify(file, &service_cert);
        assert!(
            output.status.success(),
            "coco receipt verify {}: {}",
            file.display(),
            describe(&output)
        );
    }

    // Phase 3: CCF's tools accept them too.
    if let Some(ccf) = &ccf {
        ccf.assert_ledger_verifies(&ledger, 500, 1000);
        let output = ccf.verify_receipts(&service_cert, &receipts);
        assert!(output.status.success(), "ccf_verify_receipts.py: {}", describe(&output));
        let expected = format!("{0} of {0} receipts verified", receipts.len());
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&expected),
            "{}",
            describe(&output)
        );
    }

    // Phase 4: every verifier rejects tampered receipts and a wrong service certificate.
    let json = receipts_dir.join(format!("{}.json", txs[500]));
    let cose = receipts_dir.join(format!("{}.cose", txs[500]));
    let mut refused = tamper_receipts(&json, &cose, workspace.root())
        .into_iter()
        .map(|file| (file, service_cert.clone()))
        .collect::<Vec<_>>();
    let wrong_cert = workspace.sandbox().join("user0_cert.pem");
    refused.extend([(json, wrong_cert.clone()), (cose, wrong_cert)]);
    check_receipts_refused(&refused, ccf.as_ref());
}

/// Writes `records`, waits for the last to commit, and saves receipts of every 50th
/// transaction and of the signature transaction committing them into `dir`. Returns the
/// TxIds of `records` and the signature transaction's.
async fn write_and_fetch_receipts(
    node: &NodeProcess,
    records: &[Record],
    dir: &Path,
) -> (Vec<TxId>, TxId) {
    let written = write_all(node, records, 8, false).await;
    let txs: Vec<TxId> = written.iter().map(|(_, tx)| *tx).collect();
    let mut conn = node.connect(&Who::User).await;
    wait_committed(&mut conn, last_tx(txs.iter().copied())).await;
    let signature = conn.commit().await.unwrap();
    let mut sample: Vec<TxId> = txs.iter().copied().step_by(50).collect();
    sample.push(signature);
    for tx in &sample {
        for (form, extension) in [(ReceiptForm::Json, "json"), (ReceiptForm::Cose, "cose")] {
            if (*tx, form) == (signature, ReceiptForm::Cose) {
                // As in CCF, COSE receipts exist only for transactions with leaf
                // components; a signature transaction gets a JSON receipt only.
                let path = format!("/app/receipt/cose?transaction_id={tx}");
                expect_error(&conn.get(&path).await.unwrap(), 404, "TransactionNotFound");
                continue;
            }
            let bytes = conn
                .receipt(*tx, form, COMMIT_TIMEOUT)
                .await
                .unwrap_or_else(|e| panic!("{extension} receipt of {tx}: {e:#}"));
            std::fs::write(dir.join(format!("{tx}.{extension}")), &bytes).unwrap();
        }
    }
    (txs, signature)
}

/// Every verifier (coco-client, `coco receipt verify`, CCF's) refuses each receipt file
/// under its service certificate.
fn check_receipts_refused(refused: &[(PathBuf, PathBuf)], ccf: Option<&CcfPython>) {
    for (file, cert) in refused {
        let bytes = std::fs::read(file).unwrap();
        let pem = std::fs::read_to_string(cert).unwrap();
        let verified = verify_receipt_bytes(&bytes, &pem);
        let what = format!("{} under {}", file.display(), cert.display());
        assert!(verified.is_err(), "coco-client accepted {what}: {verified:?}");
        let output = coco_receipt_verify(file, cert);
        assert!(
            !output.status.success(),
            "coco receipt verify accepted {what}: {}",
            describe(&output)
        );
        if let Some(ccf) = ccf {
            let output = ccf.verify_receipts(cert, std::slice::from_ref(file));
            assert!(!output.status.success(), "ccf accepted {what}: {}", describe(&output));
        }
    }
}

/// The receipt files in `dir`, sorted.
fn receipt_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

/// coco-client's offline verification: each receipt verifies and names its transaction.
fn check_receipts_in_process(files: &[PathBuf], service_pem: &str, signature: TxId) {
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let verified = verify_receipt_bytes(&bytes, service_pem)
            .unwrap_or_else(|e| panic!("{} does not verify: {e}", file.display()));
        let tx: TxId = file.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let is_json = file.extension().is_some_and(|e| e == "json");
        if is_json && tx == signature {
            let receipt: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(receipt["is_signature_transaction"], Value::Bool(true), "{receipt}");
            assert_eq!(verified.txid, None);
        } else {
            assert_eq!(verified.txid, Some(tx), "{}", file.display());
        }
    }
}

/// Copies of a JSON and a COSE receipt with one signed bit changed each: the JSON's write
/// set digest, and a byte inside the COSE signature (the last bytes of the structure).
fn tamper_receipts(json: &Path, cose: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut receipt: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let digest = receipt["leaf_components"]["write_set_digest"].as_str().unwrap().to_owned();
    let (first, rest) = digest.split_at(1);
    let flipped = format!("{}{rest}", if first == "0" { "1" } else { "0" });
    receipt["leaf_components"]["write_set_digest"] = Value::String(flipped);
    let tampered_json = dir.join("tampered.json");
    std::fs::write(&tampered_json, serde_json::to_vec(&receipt).unwrap()).unwrap();

    let mut bytes = std::fs::read(cose).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    let tampered_cose = dir.join("tampered.cose");
    std::fs::write(&tampered_cose, bytes).unwrap();
    vec![tampered_json, tampered_cose]
}

#[test]
fn flipped_byte_fails_both_verifiers() {
    let ccf = CcfPython::from_env("flipped_byte_fails_both_verifiers");
    let mut workspace = Workspace::new();
    workspace.prepare(audit_limits());
    let node = workspace.start(Launch::Sandbox);
    let marker = format!("FLIP-ME-{}", random_hex());

    // Phase 1: a public record whose value we will find and flip on disk, then enough
    // writes after it that its chunk is completed and committed.
    block_on(async {
        let mut conn = node.connect(&Who::User).await;
        post_record(&mut conn, "/app/log/public", 0, &marker).await.unwrap();
        let written = write_all(&node, &mixed_records(1, 300, "filler"), 4, false).await;
        wait_committed(&mut conn, last_tx(written.iter().map(|(_, tx)| *tx))).await;
    });
    node.terminate();

    let pristine = workspace.root().join("pristine");
    let flipped = workspace.root().join("flipped");
    copy_dir(&workspace.ledger_dir(), &pristine);
    copy_dir(&workspace.ledger_dir(), &flipped);
    let chunk = flip_byte_of(&flipped, marker.as_bytes());
    let chunk_name = chunk.file_name().unwrap().to_string_lossy().into_owned();

    // Phase 2: both verifiers accept the unmodified copy.
    let output = coco_ledger_verify(&pristine);
    assert!(output.status.success(), "coco ledger verify (pristine): {}", describe(&output));
    if let Some(ccf) = &ccf {
        ccf.assert_ledger_verifies(&pristine, 100, 300);
    }

    // Phase 3: both reject the copy with one flipped byte, and Coco names the file.
    let output = coco_ledger_verify(&flipped);
    assert!(
        !output.status.success(),
        "coco ledger verify accepted a flipped byte: {}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("coco ledger verify refused the flipped ledger: {}", stderr.trim());
    assert!(
        stderr.contains(&chunk_name),
        "coco ledger verify does not name {chunk_name}: {}",
        describe(&output)
    );
    if let Some(ccf) = &ccf {
        ccf.assert_ledger_rejected(&flipped);
    }

    // Phase 4: a node refuses to start on the flipped ledger rather than serve it.
    let mut copy = Workspace::new();
    copy_dir(&workspace.sandbox(), &copy.sandbox());
    std::fs::remove_dir_all(copy.ledger_dir()).unwrap();
    copy_dir(&flipped, &copy.ledger_dir());
    match copy.try_start(Launch::Sandbox) {
        Ok(node) => {
            let log = node.log_text();
            panic!("a node started on a ledger with a flipped byte in {chunk_name}; log:\n{log}");
        }
        Err(e) => {
            let reason = format!("{e:#}");
            assert!(reason.contains("ledger"), "the node failed, but not on its ledger: {reason}");
            eprintln!("the node refused the flipped ledger: {reason}");
        }
    }
}

/// Flips one bit in the middle of `needle` inside a committed chunk of `dir`, and returns
/// that chunk's path.
fn flip_byte_of(dir: &Path, needle: &[u8]) -> PathBuf {
    for chunk in committed_chunks(dir) {
        let mut bytes = std::fs::read(&chunk).unwrap();
        if let Some(offset) = find(&bytes, needle) {
            bytes[offset + needle.len() / 2] ^= 0x01;
            std::fs::write(&chunk, bytes).unwrap();
            return chunk;
        }
    }
    panic!("{} is in no committed chunk of {}", String::from_utf8_lossy(needle), dir.display());
}
