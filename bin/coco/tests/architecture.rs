//! The crate graph is a rule, checked here.
//!
//! DESIGN.md's crate table says which workspace crate may depend on which;
//! `docs/architecture/dependencies.toml` is that table as data. This test reads
//! `cargo metadata --no-deps` and fails on:
//! - a dependency (normal, dev or build) on a Coco crate that the table does not allow,
//! - a workspace crate with no entry in the table,
//! - a workspace crate missing from the crate map of `docs/ARCHITECTURE.md`,
//! - a table that names an unknown crate or whose `allow` edges form a cycle.
//!
//! The checker is a pure function of (metadata JSON, table, ARCHITECTURE.md text), so its
//! own tests feed it synthetic input and prove that it rejects a forbidden edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The allowed edges, as written in `docs/architecture/dependencies.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    crates: BTreeMap<String, CratePolicy>,
}

/// One crate's row of the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CratePolicy {
    /// Crates it may depend on as a normal, dev or build dependency.
    allow: Vec<String>,
    /// Crates it may depend on only as a dev-dependency.
    #[serde(default)]
    dev_allow: Vec<String>,
}

/// The part of `cargo metadata --format-version 1` this check reads.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    /// The package name (not the `rename`d one), so a rename cannot hide an edge.
    name: String,
    /// `null` for normal dependencies, `"dev"` or `"build"` otherwise.
    kind: Option<String>,
}

const POLICY_PATH: &str = "docs/architecture/dependencies.toml";
const ARCHITECTURE_PATH: &str = "docs/ARCHITECTURE.md";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn read(root: &Path, relative: &str) -> String {
    let path = root.join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn cargo_metadata(root: &Path) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|error| panic!("cannot run cargo metadata: {error}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo metadata prints UTF-8 JSON")
}

/// Returns every violation found, one human-readable line each; empty means the graph is
/// as DESIGN.md says.
fn check(metadata_json: &str, policy_toml: &str, architecture_md: &str) -> Vec<String> {
    let metadata: Metadata = match serde_json::from_str(metadata_json) {
        Ok(metadata) => metadata,
        Err(error) => return vec![format!("cannot parse cargo metadata JSON: {error}")],
    };
    let policy: Policy = match toml::from_str(policy_toml) {
        Ok(policy) => policy,
        Err(error) => return vec![format!("cannot parse {POLICY_PATH}: {error}")],
    };
    let mut problems = check_policy(&policy);
    let workspace: BTreeSet<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
    for package in &metadata.packages {
        check_package(package, &policy, &workspace, &mut problems);
    }
    check_crate_map(&workspace, architecture_md, &mut problems);
    problems
}

fn check_package(
    package: &Package,
    policy: &Policy,
    workspace: &BTreeSet<&str>,
    problems: &mut Vec<String>,
) {
    let Some(row) = policy.crates.get(&package.name) else {
        problems.push(format!(
            "workspace crate `{}` has no [crates.{}] entry in {POLICY_PATH}; add its row \
             (from DESIGN.md's crate table) before adding the crate",
            package.name, package.name
        ));
        return;
    };
    for dependency in &package.dependencies {
        let is_coco = dependency.name.starts_with("coco") || workspace.contains(&*dependency.name);
        if !is_coco {
            continue;
        }
        let kind = dependency.kind.as_deref().unwrap_or("normal");
        let allowed = row.allow.contains(&dependency.name)
            || (kind == "dev" && row.dev_allow.contains(&dependency.name));
        if !allowed {
            problems.push(format!(
                "forbidden dependency edge: {} -> {} ({kind} dependency); {POLICY_PATH} allows \
                 {} to depend on [{}]{}",
                package.name,
                dependency.name,
                package.name,
                row.allow.join(", "),
                if row.dev_allow.is_empty() {
                    String::new()
                } else {
                    format!(" and, as dev-dependencies, [{}]", row.dev_allow.join(", "))
                },
            ));
        }
    }
}

/// The table must itself be sound: only known crates, no self edges, no cycles.
fn check_policy(policy: &Policy) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, row) in &policy.crates {
        for target in row.allow.iter().chain(&row.dev_allow) {
            if !policy.crates.contains_key(target) {
                problems.push(format!("{POLICY_PATH}: {name} allows unknown crate `{target}`"));
            }
            if target == name {
                problems.push(format!("{POLICY_PATH}: {name} allows itself"));
            }
        }
    }
    if let Some(cycle) = find_cycle(policy) {
        problems.push(format!("{POLICY_PATH}: `allow` edges form a cycle: {}", cycle.join(" -> ")));
    }
    problems
}

/// Depth-first search over `allow` edges; returns one cycle if the graph has any.
fn find_cycle(policy: &Policy) -> Option<Vec<String>> {
    fn visit<'a>(
        name: &'a str,
        policy: &'a Policy,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == name) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| (*n).to_owned()).collect();
            cycle.push(name.to_owned());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name);
        if let Some(row) = policy.crates.get(name) {
            for target in &row.allow {
                if let Some(cycle) = visit(target, policy, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(name);
        None
    }
    let mut done = BTreeSet::new();
    policy.crates.keys().find_map(|name| visit(name, policy, &mut Vec::new(), &mut done))
}

/// Every workspace crate is named (in backticks) in the "Crate map" section.
fn check_crate_map(workspace: &BTreeSet<&str>, architecture_md: &str, problems: &mut Vec<String>) {
    let Some(section) = crate_map_section(architecture_md) else {
        problems.push(format!("{ARCHITECTURE_PATH} has no `## Crate map` section"));
        return;
    };
    let named: BTreeSet<&str> = section
        .iter()
        .flat_map(|line| line.split('`').skip(1).step_by(2))
        .map(|token| token.trim_start_matches("crates/"))
        .collect();
    for name in workspace {
        if !named.contains(name) {
            problems.push(format!(
                "workspace crate `{name}` is missing from the crate map of {ARCHITECTURE_PATH}; \
                 add a one-line entry `{name}` saying what it owns"
            ));
        }
    }
}

/// The lines after a heading containing "crate map", up to the next heading of level 1 or 2.
fn crate_map_section(architecture_md: &str) -> Option<Vec<&str>> {
    let mut lines = architecture_md.lines();
    lines.find(|line| line.starts_with('#') && line.to_lowercase().contains("crate map"))?;
    Some(lines.take_while(|line| !line.starts_with("# ") && !line.starts_with("## ")).collect())
}

#[test]
fn workspace_dependencies_follow_design() {
    let root = workspace_root();
    let problems =
        check(&cargo_metadata(&root), &read(&root, POLICY_PATH), &read(&root, ARCHITECTURE_PATH));
    assert!(problems.is_empty(), "architecture check failed:\n  {}", problems.join("\n  "));
}

#[cfg(test)]
mod checker_tests {
    use super::check;

    const POLICY: &str = r#"
        [crates.coco-types]
        allow = []
        [crates.coco-kv]
        allow = ["coco-types"]
        [crates.coco]
        allow = ["coco-types", "coco-kv"]
        dev_allow = ["coco-sim"]
        [crates.coco-sim]
        allow = ["coco-types", "coco-kv"]
    "#;

    const MAP: &str = "# Arch\n## Crate map\n- `coco-types`: ids\n- `coco-kv`: maps\n\
                       - `coco` (bin): CLI\n## Decisions\n- `coco-sim` is not here\n";

    fn package(name: &str, dependencies: &[(&str, Option<&str>)]) -> serde_json::Value {
        let dependencies: Vec<_> = dependencies
            .iter()
            .map(|(dep, kind)| serde_json::json!({ "name": dep, "kind": kind, "rename": null }))
            .collect();
        serde_json::json!({ "name": name, "version": "0.1.0", "dependencies": dependencies })
    }

    fn metadata(packages: Vec<serde_json::Value>) -> String {
        serde_json::json!({ "packages": packages, "version": 1 }).to_string()
    }

    #[test]
    fn accepts_allowed_edges() {
        let json = metadata(vec![
            package("coco-types", &[("serde", None)]),
            package("coco-kv", &[("coco-types", None), ("imbl", None)]),
            package("coco", &[("coco-kv", None), ("coco-types", Some("build"))]),
        ]);
        assert_eq!(check(&json, POLICY, MAP), Vec::<String>::new());
    }

    #[test]
    fn rejects_forbidden_edge_of_every_kind() {
        for kind in [None, Some("dev"), Some("build")] {
            let json = metadata(vec![
                package("coco-types", &[("coco-kv", kind)]),
                package("coco-kv", &[("coco-types", None)]),
            ]);
            let problems = check(&json, POLICY, MAP);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("forbidden dependency edge: coco-types -> coco-kv ("),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn dev_allow_is_only_for_dev_dependencies() {
        let dev = metadata(vec![package("coco", &[("coco-sim", Some("dev"))])]);
        assert_eq!(check(&dev, POLICY, MAP), Vec::<String>::new());
        let normal = metadata(vec![package("coco", &[("coco-sim", None)])]);
        let problems = check(&normal, POLICY, MAP);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("coco -> coco-sim (normal dependency)"), "{problems:?}");
    }

    #[test]
    fn rejects_unknown_coco_crate_and_crate_missing_from_table() {
        let json = metadata(vec![
            package("coco-kv", &[("coco-types", None), ("coco-extra", None)]),
            package("coco-new", &[]),
        ]);
        let problems = check(&json, POLICY, MAP);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("coco-kv -> coco-extra"), "{problems:?}");
        assert!(problems[1].contains("`coco-new` has no [crates.coco-new] entry"), "{problems:?}");
        assert!(problems[2].contains("`coco-new` is missing from the crate map"), "{problems:?}");
    }

    #[test]
    fn rejects_crate_missing_from_crate_map() {
        // coco-sim is only mentioned outside the crate map section.
        let json = metadata(vec![package("coco-sim", &[])]);
        let problems = check(&json, POLICY, MAP);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`coco-sim` is missing from the crate map"), "{problems:?}");
        let no_map = check(&json, POLICY, "# Arch\n- `coco-sim`\n");
        assert!(no_map[0].contains("no `## Crate map` section"), "{no_map:?}");
    }

    #[test]
    fn rejects_unsound_table() {
        let cyclic = "[crates.a]\nallow = [\"b\"]\n[crates.b]\nallow = [\"a\", \"ghost\"]\n";
        let problems = check(&metadata(vec![]), cyclic, MAP);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("b allows unknown crate `ghost`"), "{problems:?}");
        assert!(problems[1].contains("cycle: a -> b -> a"), "{problems:?}");
        let typo = "[crates.a]\nallows = []\n";
        assert!(check(&metadata(vec![]), typo, MAP)[0].contains("cannot parse"));
    }
}
