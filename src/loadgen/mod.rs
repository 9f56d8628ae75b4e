//! `emporium loadgen`: drives an emporium edge (or any HTTP server, with `--mix get`) with
//! a mix of shopper operations and reports throughput, latency percentiles and every
//! error.
//!
//! - [`mix`]: the mixes and the weighted pick (pure);
//! - [`client`]: one lean keep-alive HTTP/1.1 connection per user;
//! - [`setup`]: products, stock and carts made through the API before the clock starts,
//!   and the stock check after it stops;
//! - [`driver`]: the users, closed loop or open loop (`--rate`);
//! - [`report`]: HDR histograms, error counts, the table and the JSON summary;
//! - here: the arguments and [`run`].

pub mod client;
pub mod driver;
pub mod mix;
pub mod report;
pub mod setup;

use driver::Plan;
use mix::Mix;
use report::{Recorder, Summary};
use serde::Serialize;
use setup::StockCheck;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `emporium loadgen` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// The HTTP edge, e.g. http://127.0.0.1:8080 (plain HTTP).
    #[arg(long)]
    pub target: String,
    /// Simulated users, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub users: usize,
    /// How long to send load (e.g. 30s, 2m); the run also ends after `--requests`.
    #[arg(long, default_value = "30s", value_parser = crate::sim::parse_duration)]
    pub duration: Duration,
    #[arg(long, value_enum, default_value_t = Mix::Boutique)]
    pub mix: Mix,
    /// Open loop: this many operations per second in all, on a fixed schedule; latency
    /// counts from each operation's scheduled start. Without it, users run closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many operations in all (as well as at the end of `--duration`).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seeds every user's random choices and names the products (`LG<seed>-0000`...).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// An operator token for the setup (products and stock).
    #[arg(long, env = "EMPORIUM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Products to create; SKUs are picked uniformly.
    #[arg(long, default_value_t = 8)]
    pub products: usize,
    /// Units on hand per product at the start (topped up to this).
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// Carts made first for the cart-writes and cart-reads mixes.
    #[arg(long, default_value_t = 1024)]
    pub carts: usize,
    /// The path of `--mix get`.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// A request with no answer by then counts as an error (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = crate::sim::parse_duration)]
    pub timeout: Duration,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// The whole report of a run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub target: String,
    pub mix: Mix,
    pub users: usize,
    /// Open-loop rate, or null for closed loop.
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub setup_s: f64,
    pub summary: Summary,
    /// Checkout and boutique mixes: stock against paid orders.
    pub stock: Option<StockCheck>,
    /// Whether the run counts: no errors, and the stock balances where it was checked.
    pub clean: bool,
}

/// Runs the load and returns its report. `Err` for a run that could not start.
pub async fn run(args: LoadgenArgs) -> Result<RunReport, String> {
    let addr = authority(&args.target)?;
    if args.users == 0 || args.products == 0 {
        return Err("--users and --products must be at least 1".into());
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err("--rate must be a positive number".into());
    }
    let catalog = if args.mix.needs_catalog() {
        let token = args
            .admin_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(
                "this mix creates products first: pass --admin-token or set EMPORIUM_ADMIN_TOKEN",
            )?;
        setup::prepare(setup::SetupArgs {
            addr: &addr,
            admin_token: token,
            mix: args.mix,
            seed: args.seed,
            products: args.products,
            stock: args.stock,
            carts: args.carts,
            timeout: args.timeout,
        })
        .await?
    } else {
        setup::Catalog::default()
    };
    let start = Instant::now();
    let plan = Arc::new(Plan {
        mix: args.mix,
        addr: addr.clone(),
        path: args.path.clone(),
        skus: catalog.skus.clone(),
        categories: catalog.categories.clone(),
        carts: catalog.carts.clone(),
        timeout: args.timeout,
        start,
        end: start + args.duration,
        interval: args.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        ticket: AtomicU64::new(0),
        limit: args.requests,
        issued: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        paid_units: (0..args.products).map(|_| AtomicU64::new(0)).collect(),
    });
    let progress = progress(plan.clone(), args.duration, args.quiet);
    let users: Vec<_> = (0..args.users)
        .map(|i| {
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            tokio::spawn(driver::user(plan.clone(), seed))
        })
        .collect();
    let mut rec = Recorder::default();
    for u in users {
        rec.merge(u.await.map_err(|e| format!("a user task failed: {e}"))?);
    }
    let elapsed = start.elapsed();
    progress.abort();
    let summary = rec.summary(elapsed);
    let stock = match args.mix {
        Mix::Checkout | Mix::Boutique => {
            let paid: Vec<u64> = plan
                .paid_units
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect();
            Some(setup::check_stock(&addr, &catalog, &paid, args.timeout).await?)
        }
        _ => None,
    };
    let clean = summary.errors_total == 0 && stock.as_ref().is_none_or(StockCheck::balanced);
    Ok(RunReport {
        target: args.target,
        mix: args.mix,
        users: args.users,
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        setup_s: catalog.setup_s,
        summary,
        stock,
        clean,
    })
}

impl RunReport {
    /// The human summary: the run, the table, the stock check and the verdict.
    pub fn text(&self) -> String {
        let mode = match self.rate {
            Some(r) => format!("open loop at {r} ops/s"),
            None => "closed loop".to_string(),
        };
        let mut out = format!(
            "loadgen: mix {:?}, {} users, {mode}, {:.1} s against {} (setup {:.1} s)\n",
            self.mix, self.users, self.summary.elapsed_s, self.target, self.setup_s
        );
        out.push_str(&self.summary.table());
        if let Some(s) = &self.stock {
            out.push_str(&format!(
                "stock: {} units in paid orders, on_hand fell by {}, reserved left {}, oversold {}: {}\n",
                s.units_paid,
                s.on_hand_drop,
                s.reserved_left,
                s.oversold,
                if s.balanced() { "balanced" } else { "NOT BALANCED" }
            ));
        }
        out.push_str(if self.clean {
            "verdict: clean run\n"
        } else {
            "verdict: NOT CLEAN (errors or unbalanced stock): do not use these figures\n"
        });
        out
    }
}

/// `host:port` of an `http://` URL.
fn authority(target: &str) -> Result<String, String> {
    let uri: http::Uri = target
        .parse()
        .map_err(|e| format!("--target {target:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--target {target:?}: give an http:// URL (loadgen speaks plain HTTP/1.1)"
        ));
    }
    let auth = uri
        .authority()
        .ok_or_else(|| format!("--target {target:?}: no host"))?;
    Ok(match auth.port_u16() {
        Some(_) => auth.to_string(),
        None => format!("{}:80", auth.host()),
    })
}

/// A live progress bar on stderr: elapsed time, successes, errors and the last second's
/// throughput.
fn progress(plan: Arc<Plan>, duration: Duration, quiet: bool) -> tokio::task::JoinHandle<()> {
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(duration.as_millis() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    tokio::spawn(async move {
        let mut last = (Instant::now(), 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let ok = plan.ok.load(Ordering::Relaxed);
            let errors = plan.errors.load(Ordering::Relaxed);
            let now = Instant::now();
            let dt = now.duration_since(last.0).as_secs_f64().max(1e-3);
            let rate = (ok - last.1) as f64 / dt;
            if dt >= 1.0 {
                last = (now, ok);
            }
            bar.set_position(now.duration_since(plan.start).as_millis() as u64);
            bar.set_message(format!("{ok} ok, {errors} errors, {rate:.0} ops/s"));
            if now >= plan.end {
                bar.finish_and_clear();
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_plain_http_with_a_host() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://localhost/").unwrap(), "localhost:80");
        assert!(authority("https://x:1").unwrap_err().contains("http://"));
        assert!(authority("not a url").is_err());
    }
}
