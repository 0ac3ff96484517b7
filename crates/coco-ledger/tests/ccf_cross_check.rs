//! Cross-check with CCF's own ledger parser (`ccf.ledger` from the `ccf` package on `PyPI`).
//!
//! Skipped unless `COCO_CCF_PYTHON` names a Python with the `ccf` package, e.g.
//! `COCO_CCF_PYTHON=/tmp/ccfvenv/bin/python cargo test -p coco-ledger --test ccf_cross_check`.
//! FULL verification needs signature and governance tables, which the node writes; here
//! CCF's reader checks file names, positions tables, entry headers (OFFSETS, HEADERS), and
//! reads view and seqno from the IV and the digests from the public domain.
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use coco_crypto::Aes256GcmKey;
use coco_ledger::{
    CommitEvidenceKey, EntryParts, Ledger, decode_entry, encode_entry, write_set_digest,
};
use coco_types::{Digest, Seqno, TxId, View};

const READ_WITH_CCF: &str = r#"
import json, os, sys
import ccf.ledger as L
import ccf.read_ledger as R
directory, expected = sys.argv[1], json.loads(sys.argv[2])
for level in (L.VerificationLevel.OFFSETS, L.VerificationLevel.HEADERS):
    validator = L.LedgerValidator(verification_level=level)
    got, chunks = [], []
    for chunk in L.Ledger([directory], committed_only=False, verification_level=level):
        name = os.path.basename(chunk.filename())
        chunks.append([name, chunk.is_committed(), chunk.is_complete()])
        for tx in chunk:
            validator.add_transaction(tx)
            public = tx.get_public_domain()
            assert public.get_seqno() == tx.gcm_header.seqno
            assert public.get_tables() == {}, public.get_tables()
            got.append([tx.gcm_header.seqno, tx.gcm_header.view, tx.get_write_set_digest().hex(),
                        public.get_commit_evidence_digest().hex(), public.get_claims_digest().hex(),
                        tx.get_private_domain_size()])
    assert got == expected, (got, expected)
    assert validator.transaction_count == len(expected)
assert R.run([directory], R.PrintMode.Quiet, verification_level=L.VerificationLevel.HEADERS,
             uncommitted=True)
print(json.dumps(chunks))
"#;

fn run_ccf(python: &str, dir: &Path, expected: &str) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(READ_WITH_CCF)
        .arg(dir)
        .arg(expected)
        .output()
        .expect("the COCO_CCF_PYTHON interpreter runs")
}

/// Writes seqnos 1..=10 (signatures at 4 and 8, view 3 from seqno 6) with empty public
/// maps, commits up to 5, and returns the rows CCF should report.
fn write_ledger(dir: &Path) -> Vec<String> {
    let secret = [9u8; 32];
    let key = Aes256GcmKey::new(&secret).unwrap();
    let evidence = CommitEvidenceKey::new(&secret);
    let mut ledger = Ledger::open(dir, 400).unwrap();
    let mut rows = Vec::new();
    for seqno in 1..=10u64 {
        let view = if seqno < 6 { 2 } else { 3 };
        let private = vec![seqno.to_le_bytes()[0]; 3 * usize::try_from(seqno).unwrap()];
        let parts = EntryParts {
            view: View(view),
            seqno: Seqno(seqno),
            flags: 0,
            claims_digest: if seqno == 2 { Digest([0xab; 32]) } else { Digest::ZERO },
            commit_evidence_digest: evidence.evidence_digest(TxId::new(view, seqno)),
            public_maps: &[],
            private_maps: &private,
        };
        let raw = encode_entry(&parts, &key).unwrap();
        assert_eq!(decode_entry(&raw).unwrap().decrypt_private(&key).unwrap(), private);
        ledger.append(Seqno(seqno), &raw, seqno % 4 == 0).unwrap();
        rows.push(format!(
            "[{seqno}, {view}, \"{}\", \"{}\", \"{}\", {}]",
            write_set_digest(&raw).to_hex(),
            parts.commit_evidence_digest.to_hex(),
            parts.claims_digest.to_hex(),
            private.len()
        ));
    }
    ledger.commit(Seqno(5)).unwrap();
    ledger.flush().unwrap();
    rows
}

#[test]
fn ccf_reads_coco_chunks_and_rejects_flipped_bytes() {
    let Ok(python) = std::env::var("COCO_CCF_PYTHON") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set COCO_CCF_PYTHON (see .ci/run)");
        eprintln!("skipped: set COCO_CCF_PYTHON to a python with the `ccf` package");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let expected = format!("[{}]", write_ledger(dir.path()).join(", "));

    let output = run_ccf(&python, dir.path(), &expected);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ccf refused: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let chunks = stdout.lines().last().unwrap();
    assert_eq!(
        chunks,
        concat!(
            r#"[["ledger_1-4.committed", true, true], "#,
            r#"["ledger_5-8", false, true], ["ledger_9", false, false]]"#
        )
    );

    let flip = |file: &str, at: usize| {
        let path = dir.path().join(file);
        let clean = fs::read(&path).unwrap();
        let mut bytes = clean.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let output = run_ccf(&python, dir.path(), &expected);
        fs::write(&path, &clean).unwrap();
        assert!(!output.status.success(), "ccf accepted a flipped byte {at} in {file}");
    };
    let committed_len = fs::read(dir.path().join("ledger_1-4.committed")).unwrap().len();
    flip("ledger_1-4.committed", committed_len - 3);
    flip("ledger_9", 8);
    flip("ledger_5-8", 8 + 24);
    assert!(run_ccf(&python, dir.path(), &expected).status.success(), "restored ledger");
}
