//! What one idle actor costs in resident memory, apart from emporium: N bare ractor
//! actors (unit state, spawned under one supervisor-less parent), and N tokio tasks each
//! parked on a timer (the shape of an entity's idle/passivation timer), measured as the
//! growth of VmRSS. `docs/BENCHMARKS.md` compares it with an active idle cart.
//!
//! `cargo run --release --example actor_memory_probe -- [N=100000]`

use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::Duration;

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _me: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let before = rss_bytes();
    let mut actors = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, h) = Actor::spawn(None, Idle, ()).await.expect("spawn");
        actors.push((a, h));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_actors = rss_bytes();
    let mut timers = Vec::with_capacity(n);
    for _ in 0..n {
        timers.push(tokio::spawn(tokio::time::sleep(Duration::from_secs(3600))));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_timers = rss_bytes();
    println!(
        "{n} idle ractor actors: {} bytes each; {n} tokio tasks parked on a timer: {} bytes each",
        (with_actors - before) / n as u64,
        (with_timers - with_actors) / n as u64
    );
    for t in timers {
        t.abort();
    }
    for (a, _) in &actors {
        a.stop(None);
    }
}
