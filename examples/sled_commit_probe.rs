//! Why the journal has one writer thread: sled's cost of durable writes under two
//! group-commit designs, with the same one flusher and the same batched waiters.
//!
//! - `separate`: each writer calls `Tree::apply_batch` itself (on a tokio worker), then
//!   waits for the flusher's `Db::flush` (emporium's design before issue 6);
//! - `merged`: writers hand their records to the flusher, which applies one merged
//!   batch per cycle, flushes, then `fdatasync`s sled's log file (the design now).
//!
//! `cargo run --release --example sled_commit_probe -- WRITERS WRITES_PER_WRITER separate|merged`
//! Prints durable writes per second, the flushes made, writers per flush and the mean
//! flush time. The data directory is temporary (under the current directory, so on the
//! same disk as a real data dir).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

type Ack = oneshot::Sender<()>;
type Record = (Vec<u8>, Vec<u8>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sled_commit_probe WRITERS WRITES_PER_WRITER separate|merged";
    let (Some(writers), Some(per), Some(mode)) = (
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
        args.get(3).cloned(),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let merged = match mode.as_str() {
        "merged" => true,
        "separate" => false,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let db = sled::Config::new()
        .path(dir.path().join("sled"))
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .expect("open sled");
    let tree = db.open_tree("journal").expect("tree");
    let log = std::fs::File::open(dir.path().join("sled").join("db")).expect("sled log");
    let (tx, mut rx) = mpsc::channel::<(Option<Record>, Ack)>(65_536);
    let flushes = AtomicU64::new(0);
    let flush_us = AtomicU64::new(0);
    std::thread::scope(|s| {
        let (db, tree2, flushes, flush_us) = (&db, tree.clone(), &flushes, &flush_us);
        s.spawn(move || {
            let mut cycle = Vec::new();
            while let Some(first) = rx.blocking_recv() {
                cycle.push(first);
                while let Ok(w) = rx.try_recv() {
                    cycle.push(w);
                }
                let t = Instant::now();
                let mut batch = sled::Batch::default();
                let mut acks = Vec::with_capacity(cycle.len());
                for (rec, ack) in cycle.drain(..) {
                    if let Some((k, v)) = rec {
                        batch.insert(k, v);
                    }
                    acks.push(ack);
                }
                if merged {
                    tree2.apply_batch(batch).expect("apply");
                }
                db.flush().expect("flush");
                if merged {
                    log.sync_data().expect("fdatasync");
                }
                flush_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                flushes.fetch_add(1, Ordering::Relaxed);
                for a in acks {
                    let _ = a.send(());
                }
            }
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let start = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let (tx, tree) = (tx.clone(), tree.clone());
                    tokio::spawn(async move {
                        for i in 0..per {
                            let rec = (format!("E-cart-{w}-{i:08}").into_bytes(), vec![7u8; 60]);
                            let rec = if merged {
                                Some(rec)
                            } else {
                                let mut b = sled::Batch::default();
                                b.insert(rec.0, rec.1);
                                tree.apply_batch(b).expect("apply");
                                None
                            };
                            let (ack, done) = oneshot::channel();
                            tx.send((rec, ack)).await.expect("send");
                            done.await.expect("ack");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("writer");
            }
        });
        drop(tx);
        let secs = start.elapsed().as_secs_f64();
        let n = (writers * per) as f64;
        let f = flushes.load(Ordering::Relaxed).max(1) as f64;
        println!(
            "{mode}: {writers} writers, {:.0} durable writes/s, {f} flushes, {:.1} writes per flush, mean flush {:.2} ms",
            n / secs,
            n / f,
            flush_us.load(Ordering::Relaxed) as f64 / f / 1000.0
        );
    });
}
