//! Which journal writes make sled write a separate blob file, and that the writer makes
//! each one durable before it answers.
//!
//! `cargo run --example blob_durability_probe -- DIR`
//!
//! Opens a store in DIR (it must not exist) and, through the real journal writer, makes
//! three kinds of writes, printing after each how many files `DIR/sled/blobs/` holds and
//! how many the writer fsync'd (`emporium_journal_blobs_synced_total` is the metric; here
//! the count is read from the directory):
//! 1. 200 events of 200 bytes on one entity (sled pages of small records);
//! 2. 40 events each of 8, 12, 16, 24, 32 and 64 KiB on one entity: neighbouring keys
//!    share a leaf page (up to 17 entries), and a page above sled's ~128 KiB inline
//!    limit goes to a blob although no record in it does;
//! 3. one 300 KiB event, above the inline limit by itself.
//!
//! Run it under `strace -f -e trace=openat,pwrite64,fsync,fdatasync` to see each blob
//! opened, written, fsync'd, the directory fsync'd, and then the log fdatasync'd
//! (`docs/RELIABILITY.md` has such a trace).

use emporium::domain::product::{Product, ProductEvent, ProductSpec};
use emporium::store::{Store, StoreOptions};
use std::path::{Path, PathBuf};

fn blobs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("sled").join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn event(bytes: usize) -> ProductEvent {
    ProductEvent::Updated {
        spec: ProductSpec {
            name: "probe".into(),
            description: Some("x".repeat(bytes)),
            price_minor: 100,
            category: "probe".into(),
            tags: vec![],
        },
        by: "probe".into(),
    }
}

fn main() {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: blob_durability_probe DIR (a directory that does not exist yet)");
        std::process::exit(2);
    };
    if dir.exists() {
        eprintln!("{} exists; give a new directory", dir.display());
        std::process::exit(2);
    }
    // Only the one large record's cycle, when `PROBE_ONLY_LARGE` is set (a short trace).
    let only_large = std::env::var_os("PROBE_ONLY_LARGE").is_some();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        std::fs::create_dir_all(&dir).expect("create the directory");
        let store = Store::open(
            &dir,
            &StoreOptions {
                cache_capacity_bytes: 64 << 20,
                group_commit_max_batch: 256,
                group_commit_queue: 1024,
                partitions: 64,
            },
        )
        .expect("open the store");
        let j = store.journal();
        let mut seq = 1;
        let mut run = |label: &str, id: &str, count: usize, size: usize| {
            let before = blobs(&dir);
            let events: Vec<_> = (0..count).map(|_| (0, event(size))).collect();
            let first = seq;
            seq += count as u64;
            let j = j.clone();
            let id = id.to_owned();
            let label = label.to_owned();
            let dir = dir.clone();
            async move {
                // One append per event, as an entity writes them: each is acknowledged
                // only after its cycle (and any blob it produced) is on disk.
                for (i, e) in events.iter().enumerate() {
                    j.append::<Product>(&id, first + i as u64, std::slice::from_ref(e), None, &[])
                        .await
                        .expect("append");
                }
                println!(
                    "{label}: {count} events of {size} bytes -> blob files {before} -> {}",
                    blobs(&dir)
                );
            }
        };
        if !only_large {
            run("small records", "P-SMALL", 200, 200).await;
        }
        for kib in [8usize, 12, 16, 24, 32, 64]
            .into_iter()
            .filter(|_| !only_large)
        {
            run(
                &format!("{kib} KiB records"),
                &format!("P-MID-{kib}"),
                40,
                kib << 10,
            )
            .await;
        }
        run("one large record", "P-LARGE", 1, 300 << 10).await;
        store.durable().await.expect("durable");
    });
}
