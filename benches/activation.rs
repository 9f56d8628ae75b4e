//! Activation of a passivated entity: `Router::get` of a cart whose actor is not live,
//! so the router spawns it under its supervisor and it rebuilds its state from the
//! journal (10 events, no snapshot) before answering. Between rounds the carts are
//! passivated again (their actors drained and stopped), outside the timed part.
//! Run: `cargo bench --bench activation`.

use criterion::{criterion_group, criterion_main, Criterion};
use emporium::app::config::Config;
use emporium::app::App;
use emporium::domain::cart::{Cart, CartCommand};
use emporium::domain::Sku;
use std::time::{Duration, Instant};

/// Carts activated per round; each round ends by passivating them all.
const ROUND: usize = 500;

fn activation(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.store.data_dir = dir.path().to_owned();
    let app = rt.block_on(App::build(config)).expect("app");
    let ids: Vec<String> = (0..ROUND)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    rt.block_on(async {
        for id in &ids {
            let router = &app.router;
            router
                .command::<Cart>(id, CartCommand::Create { owner: None })
                .await
                .expect("create");
            for i in 0..9 {
                let add = CartCommand::AddItem {
                    sku: Sku::parse(&format!("SKU-{i}")).expect("sku"),
                    quantity: 1,
                    unit_price_minor: 100,
                };
                router.command::<Cart>(id, add).await.expect("add");
            }
        }
    });
    let carts = app.router.runtime::<Cart>();
    // Stop every live cart, then wait (bounded) until the supervisor has cleared their
    // registry slots, so the next get activates a new actor.
    let passivate = || {
        rt.block_on(async {
            carts.drain_all(Duration::from_secs(10)).await;
            for _ in 0..1000 {
                if carts.registry.active_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("carts still registered 1 s after they were drained");
        })
    };
    passivate();
    let mut group = c.benchmark_group("activation");
    group.bench_function("router get of a passivated cart (10 events)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(ROUND);
                let router = app.router.clone();
                let round: Vec<String> = ids[..n].to_vec();
                total += rt.block_on(async move {
                    tokio::spawn(async move {
                        let start = Instant::now();
                        for id in &round {
                            let cart = router.get::<Cart>(id).await.expect("get");
                            assert_eq!(cart.lines.len(), 9);
                        }
                        start.elapsed()
                    })
                    .await
                    .expect("task")
                });
                passivate();
                left -= n;
            }
            total
        })
    });
    group.finish();
    rt.block_on(app.shutdown());
}

criterion_group!(benches, activation);
criterion_main!(benches);
