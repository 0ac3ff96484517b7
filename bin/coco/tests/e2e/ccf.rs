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

    /// The interpreter itself.
    pub(crate) fn interpreter(&self) -> &Path {
        &self.python
    }

    /// `read_ledger.py`, installed by the `ccf` package next to the interpreter.
    fn read_ledger_script(&self) -> PathBuf {
        let script = self.python.with_file_name("read_ledger.py");
        assert!(script.is_file(), "{} not found next to COCO_CCF_PYTHON", script.display());
        script
    }

    /// CCF's `ccf_cose_sign1`: signs `content` as a governance message with `key`/`cert`
    /// and returns the COSE Sign1 bytes it wrote to stdout.
    pub(crate) fn cose_sign1(
        &self,
        content: &Path,
        identity: (&Path, &Path),
        msg_type: &str,
        created_at: u64,
        proposal_id: Option<&str>,
    ) -> Vec<u8> {
        let tool = self.python.with_file_name("ccf_cose_sign1");
        assert!(tool.is_file(), "{} not found next to COCO_CCF_PYTHON", tool.display());
        let (key, cert) = identity;
        let mut command = Command::new(&self.python);
        command
            .arg(tool)
            .arg("--content")
            .arg(content)
            .arg("--signing-key")
            .arg(key)
            .arg("--signing-cert")
            .arg(cert)
            .args(["--ccf-gov-msg-type", msg_type])
            .args(["--ccf-gov-msg-created_at", &iso8601_utc(created_at)]);
        if let Some(id) = proposal_id {
            command.args(["--ccf-gov-msg-proposal_id", id]);
        }
        let output = command.stdin(Stdio::null()).output().expect("ccf_cose_sign1 runs");
        assert!(output.status.success(), "ccf_cose_sign1: {}", describe(&output));
        output.stdout
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

    /// `read_ledger.py <file> --snapshot`: `ccf.ledger.Snapshot` parses the snapshot and,
    /// for a committed one, verifies its embedded receipt against the service key.
    pub(crate) fn read_snapshot(&self, snapshot: &Path) -> Output {
        Command::new(&self.python)
            .arg(self.read_ledger_script())
            .arg(snapshot)
            .arg("--snapshot")
            .stdin(Stdio::null())
            .output()
            .expect("read_ledger.py runs")
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

/// `YYYY-MM-DDTHH:MM:SS+00:00` for a Unix time, the form `ccf_cose_sign1` parses
/// (`datetime.fromisoformat`); days to a civil date after Howard Hinnant's algorithm.
fn iso8601_utc(unix_s: u64) -> String {
    let days = i64::try_from(unix_s / 86_400).expect("a date before year 25 million");
    let seconds = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}+00:00")
}

#[test]
fn iso8601_utc_matches_known_dates() {
    assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00+00:00");
    assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00+00:00");
    assert_eq!(iso8601_utc(1_795_000_000), "2026-11-18T11:06:40+00:00");
}
