//! `emporium chaos`: the kill -9 harness behind `scripts/chaos-kill9.sh`. It proves the
//! durability promises from outside, through the HTTP and gRPC APIs only.
//!
//! - [`ledger`]: the account of every acknowledged (and unknown) write, as JSON lines;
//! - [`outcome`]: what an answer means for the ledger (pure);
//! - [`driver`]: the HTTP load (cart writes, checkouts, adjustments, app purchases);
//! - [`machine`]: the simulated vending machine over gRPC;
//! - [`seed`]: the products, stock and machine every round starts from;
//! - [`books`]: the arithmetic of the checks (pure);
//! - [`check`]: the checker, after the restart;
//! - here: the subcommands, their exit codes and the load's wind-down.
//!
//! Exit codes: 0 clean, 1 a violation (named on stdout), 2 could not run.

pub mod books;
pub mod check;
pub mod driver;
pub mod ledger;
pub mod machine;
pub mod outcome;
pub mod seed;

use ledger::{Ledger, Record};
use machine::{ChaosMachine, Phase};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `emporium chaos` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    pub command: ChaosCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ChaosCommand {
    /// Make the products, stock and machine, and start the ledger (once per data dir).
    Seed {
        #[command(flatten)]
        common: Common,
        /// Names the SKUs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Send the mixed load until SIGTERM/SIGINT or --duration-ms, recording every
    /// acknowledged write; the server may be killed and restarted meanwhile.
    Load {
        #[command(flatten)]
        common: Common,
        /// The gRPC listener, HOST:PORT.
        #[arg(long)]
        grpc_addr: String,
        #[arg(long, default_value_t = 600_000)]
        duration_ms: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Shoppers, each with its own cart at a time.
        #[arg(long, default_value_t = 3)]
        writers: usize,
    },
    /// Check the ledger against the server (exit 0 clean, 1 violation, 2 could not run).
    Check {
        #[command(flatten)]
        common: Common,
        /// How long to wait for /health/ready.
        #[arg(long, default_value_t = 30_000)]
        ready_ms: u64,
        /// How long orders, reservations and app holds get to settle.
        #[arg(long, default_value_t = 30_000)]
        settle_ms: u64,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The HTTP edge, HOST:PORT (plain HTTP).
    #[arg(long)]
    pub addr: String,
    /// The ledger file (JSON lines).
    #[arg(long)]
    pub ledger: PathBuf,
    /// An operator token (the bootstrap token in `<data-dir>/admin.token`).
    #[arg(long, env = "EMPORIUM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
}

/// Why a subcommand could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("ledger file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server was not ready within {0:?}")]
    NotReady(Duration),
    #[error("http: {0}")]
    Http(String),
}

/// What a load process did, for its summary line.
#[derive(Debug, Default)]
pub struct Counters {
    pub acked: AtomicU64,
    pub unknown: AtomicU64,
    pub orders: AtomicU64,
    pub errors: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Counters {
    fn note(&self, r: &Record) {
        if r.acked() {
            self.acked.fetch_add(1, Ordering::Relaxed);
            if matches!(r, Record::Checkout { .. } | Record::Purchase { .. }) {
                self.orders.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs a `chaos` subcommand.
pub fn run(args: ChaosArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match args.command {
        ChaosCommand::Seed { common, seed } => {
            match rt.block_on(seed::seed(
                &common.addr,
                &common.admin_token,
                &common.ledger,
                seed,
            )) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("chaos seed: {e}");
                    ExitCode::from(2)
                }
            }
        }
        ChaosCommand::Load {
            common,
            grpc_addr,
            duration_ms,
            seed,
            writers,
        } => match rt.block_on(load(common, grpc_addr, duration_ms, seed, writers)) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chaos load: {e}");
                ExitCode::from(2)
            }
        },
        ChaosCommand::Check {
            common,
            ready_ms,
            settle_ms,
        } => {
            let report = rt.block_on(check::check(check::CheckArgs {
                addr: &common.addr,
                token: &common.admin_token,
                ledger: &common.ledger,
                ready: Duration::from_millis(ready_ms),
                settle: Duration::from_millis(settle_ms),
            }));
            match report {
                Ok(r) if r.violations.is_empty() => {
                    println!("chaos check: ok: {}", r.summary);
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    for v in r.violations.iter().take(20) {
                        println!("VIOLATION: {v}");
                    }
                    println!(
                        "chaos check: {} violations ({})",
                        r.violations.len(),
                        r.summary
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("chaos check: could not run: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// How long the load waits for its in-flight purchases to be dispensed after it stops.
const DRAIN: Duration = Duration::from_millis(1_500);
/// How long the machine may take to get its last vends acknowledged.
const FINISH: Duration = Duration::from_secs(10);

/// The machine's slots as the server knows them (levels included), read at start.
async fn machine_slots(
    addr: &str,
    token: &str,
    id: &str,
) -> Result<std::collections::BTreeMap<u32, crate::sim::machine::SimSlot>, ChaosError> {
    let mut conn =
        crate::loadgen::client::Conn::new(addr, Some(token.to_owned()), driver::REQUEST_TIMEOUT);
    let path = format!("/v1/machines/{id}");
    let v = match outcome::classify(conn.send(&http::Method::GET, &path, None).await) {
        outcome::Outcome::Acked(_, b) => serde_json::from_slice::<serde_json::Value>(&b)
            .map_err(|e| ChaosError::Http(format!("{path}: {e}")))?,
        o => return Err(ChaosError::Http(format!("{path}: {o:?}"))),
    };
    Ok(v["slots"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        s["slot"].as_u64()? as u32,
                        crate::sim::machine::SimSlot {
                            sku: s["sku"].as_str()?.to_owned(),
                            price_minor: s["price_minor"].as_i64()?,
                            level: s["level"].as_u64()? as u32,
                            locked: s["locked"].as_bool().unwrap_or(false),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

async fn load(
    common: Common,
    grpc_addr: String,
    duration_ms: u64,
    seed: u64,
    writers: usize,
) -> Result<String, ChaosError> {
    let text = std::fs::read_to_string(&common.ledger)?;
    let records = ledger::parse(&text).map_err(ChaosError::Ledger)?;
    let view = ledger::View::fold(&records).map_err(ChaosError::Ledger)?;
    if !view.seeded {
        return Err(ChaosError::Ledger("no seed: run `chaos seed` first".into()));
    }
    let ledger = Arc::new(Ledger::open(&common.ledger)?);
    ledger.append(&Record::Load {
        seed,
        at_ms: crate::clock::now_ms(),
    })?;
    check::wait_ready(&common.addr, Duration::from_secs(30)).await?;
    let slots = machine_slots(&common.addr, &common.admin_token, &view.machine).await?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(driver::Shared {
        addr: common.addr.clone(),
        admin_token: common.admin_token.clone(),
        skus: view.skus.iter().map(|(s, _)| s.clone()).collect(),
        machine: view.machine.clone(),
        slots: slots.keys().copied().collect(),
        ledger: ledger.clone(),
        counters: counters.clone(),
        stop: stop.clone(),
    });
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Run);
    let m = ChaosMachine::new(
        view.machine.clone(),
        view.secret.clone(),
        format!("http://{grpc_addr}"),
        slots,
        ledger.clone(),
        counters.clone(),
        seed ^ 0x5eed,
    );
    let machine = tokio::spawn(m.run(phase_rx));
    let mut http = tokio::task::JoinSet::new();
    for w in 0..writers.max(1) {
        http.spawn(driver::shopper(
            shared.clone(),
            seed.wrapping_mul(31).wrapping_add(w as u64),
        ));
    }
    http.spawn(driver::adjuster(shared.clone(), seed.wrapping_add(1_000)));
    http.spawn(driver::purchaser(shared.clone(), seed.wrapping_add(2_000)));
    let stopped = stop_signal(Duration::from_millis(duration_ms)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = phase_tx.send(Phase::Drain);
    // Every request has a deadline, so the tasks end within it.
    let _ = tokio::time::timeout(driver::REQUEST_TIMEOUT * 3, async {
        while http.join_next().await.is_some() {}
    })
    .await;
    tokio::time::sleep(DRAIN).await;
    let _ = phase_tx.send(Phase::Finish(tokio::time::Instant::now() + FINISH));
    let _ = tokio::time::timeout(FINISH + Duration::from_secs(5), machine).await;
    ledger.sync()?;
    Ok(format!(
        "chaos load: acked {} writes, {} orders, {} unknown, {} errors, {} machine reconnects ({stopped})",
        counters.acked.load(Ordering::Relaxed),
        counters.orders.load(Ordering::Relaxed),
        counters.unknown.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        counters.reconnects.load(Ordering::Relaxed),
    ))
}

/// Waits for SIGTERM, SIGINT or the duration; says which.
async fn stop_signal(d: Duration) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tokio::time::sleep(d).await;
        return "duration";
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => "duration",
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
