//! Journal costs: appends made durable by group commit at 1, 8, 64 and 256 concurrent
//! writers (each append is one fsync'd event, shared by the writers of a batch), and
//! replaying an entity's events (`Journal::load`) in events per second.
//! Run: `cargo bench --bench journal`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use emporium::domain::cart::{Cart, CartCommand, CartState};
use emporium::domain::{Aggregate, Sku};
use emporium::store::{Store, StoreOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = StoreOptions {
        cache_capacity_bytes: 64 << 20,
        group_commit_max_batch: 1024,
        group_commit_queue: 4096,
        partitions: 64,
    };
    let store = Store::open(dir.path(), &opts).expect("store");
    (dir, store)
}

/// One add-to-cart event, as the cart actor would persist it.
fn item_added() -> <Cart as Aggregate>::Event {
    let mut s = CartState::default();
    for e in Cart::decide(&s, &CartCommand::Create { owner: None }).unwrap() {
        Cart::apply(&mut s, &e);
    }
    let add = CartCommand::AddItem {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: 1,
        unit_price_minor: 100,
    };
    Cart::decide(&s, &add).unwrap().remove(0)
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_dir, store) = store();
    let journal = store.journal().clone();
    let event = item_added();
    let run = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("journal append, fsync'd by group commit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for writers in [1usize, 8, 64, 256] {
        group.bench_with_input(BenchmarkId::new("writers", writers), &writers, |b, &w| {
            b.to_async(&rt).iter_custom(|iters| {
                let journal = journal.clone();
                let event = event.clone();
                let r = run.fetch_add(1, Ordering::Relaxed);
                async move {
                    let per = iters.div_ceil(w as u64);
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..w)
                        .map(|t| {
                            let journal = journal.clone();
                            let event = event.clone();
                            tokio::spawn(async move {
                                let id = format!("bench-{w}-{r}-{t}");
                                for seq in 1..=per {
                                    journal
                                        .append::<Cart>(&id, seq, &[(0, event.clone())], None, &[])
                                        .await
                                        .expect("append");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("writer");
                    }
                    // Report per append actually made (per * w may exceed iters).
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * w as u64) as f64)
                }
            })
        });
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    const EVENTS: u64 = 10_000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_dir, store) = store();
    let journal = store.journal().clone();
    let event = item_added();
    let batch: Vec<(u64, _)> = (0..EVENTS).map(|_| (0, event.clone())).collect();
    rt.block_on(journal.append::<Cart>("replayed", 1, &batch, None, &[]))
        .expect("append");
    let mut group = c.benchmark_group("journal replay");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("load a cart of 10,000 events (no snapshot)", |b| {
        b.iter(|| {
            let rec = journal.load::<Cart>("replayed").expect("load");
            assert_eq!(rec.seq, EVENTS);
            rec
        })
    });
    group.finish();
}

criterion_group!(benches, append, replay);
criterion_main!(benches);
