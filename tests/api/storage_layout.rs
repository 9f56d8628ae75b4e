//! The partition-first storage layout: a data directory written by the previous layout
//! (`tests/fixtures/layout1-store.tar.gz`) is migrated once at start-up, and every entity
//! is found afterwards.
//!
//! The fixture was written by the binary of commit cfd61d1 (the last of the first
//! layout): `emporium chaos seed` (4 SKUs, a machine), `emporium chaos load` for 4 s
//! (carts, checkouts with good and declined cards, app purchases and cash vends over
//! gRPC; its ledger is `ledger.jsonl` beside the data), then a registered user
//! `fixture@example.com`, and a clean stop.

use crate::helpers::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const EMAIL: &str = "fixture@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// Unpacks the fixture into a fresh directory: `(root, root/data, root/ledger.jsonl)`.
fn unpack_fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout1-store.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(root.path())
        .status()
        .expect("running tar");
    assert!(status.success(), "unpacking {}", fixture.display());
    let data = root.path().join("data");
    let ledger = root.path().join("ledger.jsonl");
    (root, data, ledger)
}

#[tokio::test]
async fn a_store_of_the_previous_layout_is_migrated_once_and_every_entity_is_found() {
    let (_root, data, ledger) = unpack_fixture();
    let mut app = spawn_app(AppOpts::new().preload(&data)).await;
    let logs = app.logs();
    assert!(
        logs.contains("storage layout 2 migration done"),
        "the start-up says it migrated:\n{logs}"
    );

    // The chaos checker reads back every acknowledged write of the fixture's ledger:
    // carts, orders (all terminal), stock conserved, the machine's sales.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_emporium"))
        .args(["chaos", "check", "--addr", &addr, "--ledger"])
        .arg(&ledger)
        .args(["--ready-ms", "10000", "--settle-ms", "10000"])
        .env("EMPORIUM_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("running emporium chaos check");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{said}");
    assert!(
        out.status.success(),
        "chaos check after the migration: {said}"
    );
    assert!(said.contains("123 orders"), "{said}");

    // The user registered under the old layout logs in; the catalog is whole.
    let login = json!({"email": EMAIL, "password": PASSWORD});
    app.post_json("/v1/auth/login", &login).await.expect(200);
    let products = app.get("/v1/products?limit=50").await;
    assert_eq!(products.expect(200)["items"].as_array().unwrap().len(), 4);

    // A second start does not migrate again, and still finds everything.
    app.sigterm(Duration::from_secs(15)).await;
    app.restart().await;
    let logs = app.logs();
    assert_eq!(
        logs.matches("storage layout 2 migration done").count(),
        1,
        "migrated exactly once"
    );
    app.post_json("/v1/auth/login", &login).await.expect(200);
}

#[test]
fn emporium_migrate_moves_an_old_store_offline_and_is_idempotent() {
    let (_root, data, _ledger) = unpack_fixture();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_emporium"))
            .arg("migrate")
            .arg("--data-dir")
            .arg(&data)
            .env("EMPORIUM_LOG__LEVEL", "warn")
            .output()
            .expect("running emporium migrate");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    let moved: usize = first
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count of moved records in: {first}"));
    assert!(moved > 1000, "{first}");
    assert!(first.contains("0 old keys left in place"), "{first}");
    let second = run();
    assert!(second.contains("; 0 records moved"), "{second}");
}
