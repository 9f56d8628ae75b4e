//! The layering of the entity shell, held against the source: `actors` imports neither
//! `router` nor `supervision` (they sit above it), and `supervision` does not import
//! `router` (the router sits above it). A failure names the file and line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `file:line: text` for each line of a file under `root` that names one of `denied`
/// (`crate::` + the module) outside a comment.
fn offending(root: &Path, denied: &[&str]) -> Vec<String> {
    let denied: Vec<String> = denied.iter().map(|m| ["crate::", m].concat()).collect();
    let files = sources(root);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut found = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if denied.iter().any(|d| code.contains(d)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

fn src(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder)
}

#[test]
fn actors_import_neither_the_router_nor_the_supervision_tree() {
    let found = offending(&src("actors"), &["router", "supervision"]);
    assert!(
        found.is_empty(),
        "actors must reach entities through EntityClient, not the router or supervision:\n{}",
        found.join("\n")
    );
}

#[test]
fn supervision_does_not_import_the_router() {
    let found = offending(&src("supervision"), &["router"]);
    assert!(
        found.is_empty(),
        "supervision sits below the router:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_names_the_line_of_a_denied_import_and_skips_comments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    let import = ["use crate::", "router::Router;"].concat();
    let named = ["crate::", "router"].concat();
    let text = format!("//! names {named} only in a comment\n\n{import}\n");
    std::fs::write(dir.path().join("nested").join("x.rs"), text).unwrap();
    let found = offending(dir.path(), &["router"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(&format!("x.rs:3: {import}")),
        "{found:?}"
    );
}
