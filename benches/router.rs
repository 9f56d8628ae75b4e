//! A router ask round trip (`Router::get` of a live cart: lookup, actor call, reply)
//! against the floor of any actor ask: a raw tokio mpsc send with a oneshot reply.
//! Run: `cargo bench --bench router`.

use criterion::{criterion_group, criterion_main, Criterion};
use emporium::app::config::Config;
use emporium::app::App;
use emporium::domain::cart::{Cart, CartCommand};

fn router(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.store.data_dir = dir.path().to_owned();
    let app = rt.block_on(App::build(config)).expect("app");
    let id = uuid::Uuid::new_v4().to_string();
    rt.block_on(
        app.router
            .command::<Cart>(&id, CartCommand::Create { owner: None }),
    )
    .expect("create");
    let mut group = c.benchmark_group("ask round trip");
    // Every iteration runs inside one task, so the runtime's block_on is not measured.
    group.bench_function("router get of a live cart", |b| {
        b.iter_custom(|iters| {
            let router = app.router.clone();
            let id = id.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        router.get::<Cart>(&id).await.expect("get");
                    }
                    start.elapsed()
                })
                .await
                .expect("task")
            })
        })
    });
    // The baseline: a task that answers every request on a oneshot.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<u64>>(1024);
    rt.spawn(async move {
        while let Some(reply) = rx.recv().await {
            let _ = reply.send(1);
        }
    });
    group.bench_function("raw mpsc + oneshot baseline", |b| {
        b.iter_custom(|iters| {
            let tx = tx.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        let (otx, orx) = tokio::sync::oneshot::channel();
                        tx.send(otx).await.expect("send");
                        orx.await.expect("reply");
                    }
                    start.elapsed()
                })
                .await
                .expect("task")
            })
        })
    });
    group.finish();
    rt.block_on(app.shutdown());
}

criterion_group!(benches, router);
criterion_main!(benches);
