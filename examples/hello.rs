//! The baseline of `scripts/bench-peers.sh`: a plain warp "hello" route, on the same warp
//! and tokio as emporium, so a cart read can be compared with the cheapest possible
//! answer. Prints its bound address on stdout, then serves until killed.
//!
//! `cargo run --release --example hello -- [ADDR=127.0.0.1:0]`

use std::io::Write;
use warp::Filter;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    let hello = warp::path::end().and(warp::get()).map(|| "Hello, World!");
    warp::serve(hello).incoming(listener).run().await;
    Ok(())
}
