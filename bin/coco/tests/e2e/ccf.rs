//! CCF's own Python tools (`ccf` 7.0.22 from `PyPI`) run over what Coco wrote: the
//! independent auditor of DESIGN.md.
//!
//! `COCO_CCF_PYTHON` names a Python with the `ccf` package (`.ci/run` sets it, and puts
//! `read_ledger.py` next to it). In CI (`CI` set) its absence fails the test; elsewhere the
//! CCF checks are skipped with a note and the rest of the test still runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::describe;

/// The receipt checker written against `ccf.receipt`.
const VERIFY_RECEIPTS_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/ccf_verify_receipts.py");

/// A Python interpreter with the `ccf` package.
#[derive(Clone, Debug)]
pub(crate) struct CcfPython {
    python: PathBuf,
}

impl CcfPython {
    /// The interpreter named by `COCO_CCF_PYTHON`; `None` (with a note) outside CI when unset.
    ///
    /// # Panics
    /// When `CI` is set and `COCO_CCF_PYTHON` is not: CI must never skip the CCF checks.
    pub(crate) fn from_env(test: &str) -> Option<Self> {
        match std::env::var_os("COCO_CCF_PYTHON").filter(|value| !value.is_empty()) {
            Some(python) => Some(Self { python: PathBuf::from(python) }),
            None => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: CI is set but COCO_CCF_PYTHON is not; .ci/run exports it"
                );
                eprintln!(
                    "note: {test}: COCO_CCF_PYTHON is unset, skipping the CCF Python checks \
                     (e.g. COCO_CCF_PYTHON=/tmp/ccfvenv/bin/python)"
                );
                None
            }
        }
    }

    /// `read_ledger.py`, installed by the `ccf` package next to the interpreter.
    fn read_ledger_script(&self) -> PathBuf {
        let script = self.python.with_file_name("read_ledger.py");
        assert!(script.is_file(), "{} not found next to COCO_CCF_PYTHON", script.display());
        script
    }

    /// `read_ledger.py <dir> --verification-level FULL -q [--uncommitted]`.
    pub(crate) fn read_ledger(&self, ledger_dir: &Path, uncommitted: bool) -> Output {
        let mut command = Command::new(&self.python);
        command.arg(self.read_ledger_script()).arg(ledger_dir).args([
            "--verification-level",
            "FULL",
            "-q",
        ]);
        if uncommitted {
            command.arg("--uncommitted");
        }
        command.stdin(Stdio::null()).output().expect("read_ledger.py runs")
    }

    /// Requires `read_ledger.py` FULL to accept `ledger_dir`: its committed chunks alone
    /// (at least `committed_min` transactions), then every chunk with `--uncommitted` (at
    /// least `total_min`).
    pub(crate) fn assert_ledger_verifies(
        &self,
        ledger_dir: &Path,
        committed_min: u64,
        total_min: u64,
    ) {
        for (uncommitted, min) in [(false, committed_min), (true, total_min)] {
            let output = self.read_ledger(ledger_dir, uncommitted);
            let text = describe(&output);
            assert!(output.status.success(), "read_ledger.py (uncommitted {uncommitted}): {text}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let verified = verified_transactions(&stdout)
                .unwrap_or_else(|| panic!("no \"Verified FULL\" line: {text}"));
            assert!(
                verified >= min,
                "read_ledger.py verified {verified} < {min} transactions: {text}"
            );
        }
    }

    /// Requires `read_ledger.py` FULL to reject `ledger_dir`.
    pub(crate) fn assert_ledger_rejected(&self, ledger_dir: &Path) {
        let output = self.read_ledger(ledger_dir, false);
        assert!(
            !output.status.success(),
            "read_ledger.py accepted a corrupt ledger: {}",
            describe(&output)
        );
    }

    /// Runs `scripts/ccf_verify_receipts.py` on receipt files (`.json` or `.cose`).
    pub(crate) fn verify_receipts(&self, service_cert: &Path, files: &[PathBuf]) -> Output {
        Command::new(&self.python)
            .arg(VERIFY_RECEIPTS_SCRIPT)
            .arg("--service-cert")
            .arg(service_cert)
            .args(files)
            .stdin(Stdio::null())
            .output()
            .expect("ccf_verify_receipts.py runs")
    }
}

/// The transaction count of `read_ledger.py`'s `Verified FULL - N transactions, …` line.
fn verified_transactions(stdout: &str) -> Option<u64> {
    let line = stdout.lines().find(|line| line.starts_with("Verified FULL"))?;
    line.split_whitespace().skip_while(|word| *word != "-").nth(1)?.parse().ok()
}
