//! Pure domain and codec costs: a cart's `decide` + `apply` for an add-to-cart, and the
//! storage codec encoding and decoding a cart event and a cart state.
//! Run: `cargo bench --bench domain`.

use criterion::{criterion_group, criterion_main, Criterion};
use emporium::domain::cart::{Cart, CartCommand, CartState};
use emporium::domain::{Aggregate, Sku};
use emporium::store::codec;
use std::hint::black_box;

fn cart_with_lines(n: usize) -> CartState {
    let mut s = CartState::default();
    for e in Cart::decide(&s, &CartCommand::Create { owner: None }).unwrap() {
        Cart::apply(&mut s, &e);
    }
    for i in 0..n {
        let cmd = CartCommand::AddItem {
            sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
            quantity: 1,
            unit_price_minor: 100,
        };
        for e in Cart::decide(&s, &cmd).unwrap() {
            Cart::apply(&mut s, &e);
        }
    }
    s
}

fn domain(c: &mut Criterion) {
    let state = cart_with_lines(5);
    let add = CartCommand::AddItem {
        sku: Sku::parse("SKU-NEW").unwrap(),
        quantity: 2,
        unit_price_minor: 250,
    };
    c.bench_function("cart decide+apply add_item (5 lines)", |b| {
        b.iter(|| {
            let mut s = state.clone();
            for e in Cart::decide(black_box(&s), black_box(&add)).unwrap() {
                Cart::apply(&mut s, &e);
            }
            s
        })
    });
    let events = Cart::decide(&state, &add).unwrap();
    let event = events[0].clone();
    let bytes = codec::encode(&event);
    c.bench_function("codec encode cart event", |b| {
        b.iter(|| codec::encode(black_box(&event)))
    });
    c.bench_function("codec decode cart event", |b| {
        b.iter(|| codec::decode::<<Cart as Aggregate>::Event>(black_box(&bytes)).unwrap())
    });
    let state_bytes = codec::encode(&state);
    c.bench_function("codec encode cart state (5 lines)", |b| {
        b.iter(|| codec::encode(black_box(&state)))
    });
    c.bench_function("codec decode cart state (5 lines)", |b| {
        b.iter(|| codec::decode::<CartState>(black_box(&state_bytes)).unwrap())
    });
}

criterion_group!(benches, domain);
criterion_main!(benches);
