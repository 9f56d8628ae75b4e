//! The layering rule, enforced: the edges (`src/http`, `src/grpc`) reach data only
//! through the router, so no file under them may name the store module. The scan reads
//! the sources, so neither a re-export nor a `use` inside a function slips past it.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` names the store module: a path segment `store` followed by `::`
/// (`crate::store::…`, `super::super::store::…`, `emporium::store::…`), with any
/// spacing around the `::`.
fn names_store(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = compact.as_bytes();
    let mut from = 0;
    while let Some(at) = compact[from..].find("store::") {
        let start = from + at;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        if boundary {
            return true;
        }
        from = start + "store::".len();
    }
    false
}

#[test]
fn the_store_detector_flags_what_it_must() {
    assert!(names_store("use crate::store::Index;"));
    assert!(names_store("    let x = crate :: store :: journal();"));
    assert!(names_store("use super::super::store::StoreError;"));
    assert!(names_store("fn f(e: emporium::store::StoreError) {}"));
    assert!(!names_store("cfg.store.data_dir = dir;"));
    assert!(!names_store("use crate::restore::Plan;"));
    assert!(!names_store("// the store::Journal is not read here"));
}

#[test]
fn the_edges_never_import_the_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for edge in ["http", "grpc"] {
        rust_files(&root.join(edge), &mut files);
    }
    // The scan must have seen the edges, or it proves nothing.
    for must in [
        "http/mod.rs",
        "http/auth.rs",
        "http/machines.rs",
        "grpc/gateway.rs",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(must)),
            "the scan did not find src/{must}"
        );
    }
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            if names_store(line) {
                offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "src/http and src/grpc reach data only through the router (docs/ARCHITECTURE.md, \
         layering); these lines name the store:\n{}",
        offences.join("\n")
    );
}
