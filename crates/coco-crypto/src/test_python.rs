//! Cross-checks against CCF's own Python package (`pip install ccf`), run only when
//! `COCO_CCF_PYTHON` names a Python interpreter that can `import ccf`.

use std::path::Path;
use std::process::Command;

/// The interpreter to cross-check with, or `None` (the caller skips).
pub(crate) fn ccf_python() -> Option<String> {
    let python = std::env::var("COCO_CCF_PYTHON").ok().filter(|value| !value.is_empty());
    if python.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must set COCO_CCF_PYTHON (see .ci/run)");
        eprintln!("COCO_CCF_PYTHON not set; skipping the ccf Python cross-check");
    }
    python
}

/// Runs `script` with `dir` as its working directory; panics with Python's output if it
/// fails, returns its stdout otherwise.
pub(crate) fn run_python(python: &str, script: &str, dir: &Path) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("COCO_CCF_PYTHON is runnable");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed:\n{stdout}\n{stderr}");
    stdout
}
