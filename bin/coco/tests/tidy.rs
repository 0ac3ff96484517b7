//! Tidy: style rules that rustfmt and clippy do not enforce, checked as a test
//! (as in `TigerBeetle`'s `tidy.zig`).
//!
//! Scans the repository's `.rs` and `.md` files (tracked plus untracked-but-not-ignored, from
//! `git ls-files`; a plain directory walk when git is unavailable) for:
//! - lines over 100 columns (markdown table rows, also in Rust doc comments, lines with a URL
//!   and markdown code fences are exempt: they cannot be wrapped without harm),
//! - the debugging and unfinished-work markers `dbg!(`, `todo!(` and the fix-me word in
//!   non-test Rust code (the fix-me word also in markdown prose),
//! - `print!`/`println!` in library code (`crates/*/src/`): libraries log through `tracing`,
//! - tab characters in Rust files.
//!
//! "Test code" is a file under a `tests/` or `benches/` directory, a `tests.rs`/`*_test.rs`
//! file, or everything after the first `#[cfg(test)]` line of a file (unit tests live at the
//! end of the file they test). Each finding is reported as `path:line: reason`.

use std::path::{Path, PathBuf};
use std::process::Command;

const COLUMNS_MAX: usize = 100;

/// Directories never scanned by the fallback walk: build output, VCS data and tool caches.
const WALK_SKIP: &[&str] = &["target", "node_modules"];

/// One rule broken on one line.
#[derive(Debug, PartialEq, Eq)]
struct Finding {
    /// 1-based line number.
    line: usize,
    reason: String,
}

/// What kind of file a path is, which decides the rules that apply to it.
#[derive(Debug, Clone, Copy)]
struct FileKind {
    rust: bool,
    markdown: bool,
    /// The whole file is test or benchmark code.
    test: bool,
    /// Under `crates/<name>/src/`: library code, where printing to stdout is forbidden.
    library: bool,
}

impl FileKind {
    fn of(path: &str) -> Self {
        let components: Vec<&str> = path.split('/').collect();
        let file_name = components.last().copied().unwrap_or_default();
        let directories = &components[..components.len().saturating_sub(1)];
        Self {
            rust: path.ends_with(".rs"),
            markdown: path.ends_with(".md"),
            test: directories.iter().any(|d| *d == "tests" || *d == "benches")
                || file_name == "tests.rs"
                || file_name.ends_with("_test.rs")
                || file_name.ends_with("_tests.rs"),
            // A crate's binary (`src/main.rs`, `src/bin/`) is a program, not library code.
            library: components.len() > 3
                && components[0] == "crates"
                && components[2] == "src"
                && file_name != "main.rs"
                && components.get(3) != Some(&"bin"),
        }
    }
}

/// Checks one file's text; `path` is relative to the workspace root with `/` separators.
fn check_file(path: &str, text: &str) -> Vec<Finding> {
    let kind = FileKind::of(path);
    let mut findings = Vec::new();
    let mut in_fence = false;
    let mut in_test = kind.test;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence_line =
            kind.markdown && (trimmed.starts_with("```") || trimmed.starts_with("~~~"));
        if kind.rust && trimmed.starts_with("#[cfg(test)]") {
            in_test = true;
        }
        let context = LineContext { kind, in_fence: in_fence || fence_line, in_test };
        for reason in check_line(line, context) {
            findings.push(Finding { line: index + 1, reason });
        }
        if fence_line {
            in_fence = !in_fence;
        }
    }
    findings
}

/// Where a line sits in its file.
#[derive(Debug, Clone, Copy)]
struct LineContext {
    kind: FileKind,
    /// Inside (or on the delimiter of) a markdown code fence.
    in_fence: bool,
    /// Test code: a test file, or after `#[cfg(test)]`.
    in_test: bool,
}

fn check_line(line: &str, context: LineContext) -> Vec<String> {
    let LineContext { kind, in_fence, in_test } = context;
    let trimmed = line.trim_start();
    let mut reasons = Vec::new();
    let columns = line.chars().count();
    let long_line_exempt = line.contains("http://")
        || line.contains("https://")
        || (kind.markdown && (in_fence || trimmed.starts_with('|')))
        || (kind.rust && is_doc_table_row(trimmed));
    if columns > COLUMNS_MAX && !long_line_exempt {
        reasons.push(format!("line is {columns} columns, over the limit of {COLUMNS_MAX}"));
    }
    let fixme = concat!("FIX", "ME");
    if kind.rust {
        if line.contains('\t') {
            reasons.push("tab character (indent with spaces)".to_owned());
        }
        let code = !trimmed.starts_with("//");
        if !in_test {
            if line.contains(fixme) {
                reasons.push(format!("{fixme} left in non-test code"));
            }
            for mac in ["dbg", "todo"] {
                if code && contains_macro(line, mac) {
                    reasons.push(format!("`{mac}!` left in non-test code"));
                }
            }
            if kind.library && code && ["print", "println"].iter().any(|m| contains_macro(line, m))
            {
                reasons.push("`print!`/`println!` in library code (log with `tracing`)".to_owned());
            }
        }
    }
    if kind.markdown && !in_fence && line.contains(fixme) {
        reasons.push(format!("{fixme} left in documentation"));
    }
    reasons
}

/// A markdown table row inside a Rust doc comment (`/// | a | b |`, `//! | a | b |`).
fn is_doc_table_row(trimmed: &str) -> bool {
    ["///", "//!"]
        .iter()
        .any(|doc| trimmed.strip_prefix(doc).is_some_and(|rest| rest.trim_start().starts_with('|')))
}

/// Whether `line` invokes macro `name!(`, not merely a macro whose name ends with `name`
/// (`eprintln!` is not `println!`).
fn contains_macro(line: &str, name: &str) -> bool {
    let needle = format!("{name}!(");
    line.match_indices(&needle).any(|(start, _)| {
        line[..start].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// The `.rs` and `.md` files to scan, relative to `root`, sorted.
fn source_files(root: &Path) -> Vec<String> {
    let git = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output();
    let mut files = match git {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .split('\0')
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect(),
        Ok(_) | Err(_) => {
            let mut files = Vec::new();
            walk(root, root, &mut files);
            files
        }
    };
    // A tracked file deleted in the work tree is listed by git but has nothing to check.
    files.retain(|path| {
        (path.ends_with(".rs") || path.ends_with(".md")) && root.join(path).is_file()
    });
    files.sort();
    files
}

fn walk(root: &Path, directory: &Path, files: &mut Vec<String>) {
    let entries = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|error| panic!("cannot list a directory entry: {error}"));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skipped = name.starts_with('.') || WALK_SKIP.contains(&name.as_str());
            if !skipped {
                walk(root, &path, files);
            }
        } else if let Ok(relative) = path.strip_prefix(root) {
            let components: Vec<_> =
                relative.components().map(|c| c.as_os_str().to_string_lossy()).collect();
            files.push(components.join("/"));
        }
    }
}

#[test]
fn repository_is_tidy() {
    let root = workspace_root();
    let files = source_files(&root);
    assert!(files.iter().any(|f| f == "bin/coco/tests/tidy.rs"), "tidy found no files: {files:?}");
    let mut report = Vec::new();
    for path in &files {
        match std::fs::read_to_string(root.join(path)) {
            Ok(text) => {
                for finding in check_file(path, &text) {
                    report.push(format!("{path}:{}: {}", finding.line, finding.reason));
                }
            }
            Err(error) => report.push(format!("{path}:1: cannot read as UTF-8: {error}")),
        }
    }
    for line in &report {
        eprintln!("{line}");
    }
    assert!(report.is_empty(), "tidy: {} finding(s):\n{}", report.len(), report.join("\n"));
}

#[cfg(test)]
mod checker_tests {
    use super::{Finding, check_file, contains_macro};

    fn lines_of(findings: &[Finding]) -> Vec<usize> {
        findings.iter().map(|f| f.line).collect()
    }

    #[test]
    fn long_lines_and_their_exemptions() {
        let long = "x".repeat(101);
        let exact = "y".repeat(100);
        let rust = format!("{exact}\n{long}\n// see https://example.com/{long}\n");
        let findings = check_file("crates/coco-kv/src/map.rs", &rust);
        assert_eq!(lines_of(&findings), vec![2]);
        assert_eq!(findings[0].reason, "line is 101 columns, over the limit of 100");
        let doc_tables = format!("//! | {long} |\n    /// |{long}\n// | {long}\n");
        assert_eq!(lines_of(&check_file("crates/coco-kv/src/map.rs", &doc_tables)), vec![3]);

        let markdown = format!("{long}\n| {long} |\n```\n{long}\n```\n{long}\n  | {long}\n");
        assert_eq!(lines_of(&check_file("docs/A.md", &markdown)), vec![1, 6]);

        // Columns, not bytes: 100 multi-byte characters fit.
        assert!(check_file("docs/A.md", &"é".repeat(100)).is_empty());
    }

    #[test]
    fn markers_in_non_test_code_only() {
        let source = concat!(
            "fn a() { dbg!(1); }\n",
            "fn b() { todo!() }\n",
            "// FIX",
            "ME: later\n",
            "// dbg!(x) in a comment is fine\n",
            "fn c() { my_dbg!(1); }\n",
            "#[cfg(test)]\n",
            "mod tests { fn t() { dbg!(1); todo!(); } } // FIX",
            "ME\n",
        );
        let findings = check_file("crates/coco-kv/src/lib.rs", source);
        assert_eq!(lines_of(&findings), vec![1, 2, 3]);
        assert!(findings[0].reason.contains("`dbg!`"), "{findings:?}");
        assert!(findings[1].reason.contains("`todo!`"), "{findings:?}");
        assert!(check_file("crates/coco-kv/tests/it.rs", "fn t() { dbg!(1); }").is_empty());
        assert!(check_file("crates/coco-kv/src/map/tests.rs", "fn t() { todo!() }").is_empty());
        let docs = concat!("FIX", "ME\n```\nFIX", "ME\n```\n");
        assert_eq!(lines_of(&check_file("README.md", docs)), vec![1]);
    }

    #[test]
    fn printing_only_forbidden_in_library_sources() {
        let source =
            "fn f() {\n    println!(\"x\");\n    eprintln!(\"y\");\n    print!(\"z\");\n}\n";
        let findings = check_file("crates/coco-node/src/node.rs", source);
        assert_eq!(lines_of(&findings), vec![2, 4]);
        assert!(findings[0].reason.contains("library code"), "{findings:?}");
        assert!(check_file("bin/coco/src/main.rs", source).is_empty());
        assert!(check_file("crates/coco-node/tests/e2e.rs", source).is_empty());
        assert!(check_file("crates/coco-node/benches/b.rs", source).is_empty());
        assert!(check_file("crates/coco-node/examples/e.rs", source).is_empty());
        let unit_test = "fn f() {}\n#[cfg(test)]\nmod tests { fn t() { println!(\"ok\"); } }\n";
        assert!(check_file("crates/coco-node/src/node.rs", unit_test).is_empty());
    }

    #[test]
    fn tabs_in_rust_only() {
        let findings = check_file("bin/coco/src/main.rs", "fn main() {\n\tlet x = 1;\n}\n");
        assert_eq!(lines_of(&findings), vec![2]);
        assert!(check_file("docs/A.md", "a\tb\n").is_empty());
    }

    #[test]
    fn macro_matching_respects_word_boundaries() {
        assert!(contains_macro("    println!(\"x\")", "println"));
        assert!(contains_macro("std::println!(\"x\")", "println"));
        assert!(!contains_macro("eprintln!(\"x\")", "println"));
        assert!(!contains_macro("my_print!(\"x\")", "print"));
        assert!(!contains_macro("println!(\"x\")", "print"));
        assert!(contains_macro("a(); print!(\"x\")", "print"));
    }
}
