//! `emporium vm-sim`: a real tonic client that simulates N vending machines against a
//! gateway, for demos, tests and load.
//!
//! - [`journal`]: a machine's seq journal and command book (pure).
//! - [`machine`]: one machine's session loop and its answers to commands.
//! - [`stats`]: counters and the summary.
//! - here: the CLI arguments, machine registration over HTTP, and [`run`].

pub mod journal;
pub mod machine;
pub mod stats;

use machine::{Behaviour, SimMachine, SimSlot};
use serde_json::{json, Value};
use stats::{Stats, Summary};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `emporium vm-sim` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// The gRPC gateway, e.g. http://127.0.0.1:50051 (or https://host:port with --tls-ca).
    #[arg(long)]
    pub gateway: String,
    /// PEM certificate(s) of the CA that signed a TLS gateway's certificate; the gateway
    /// URL must then be https://, and its host is the name the certificate must carry.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// How many machines to simulate.
    #[arg(long, default_value_t = 1)]
    pub machines: usize,
    /// Random cash/cashless sales per machine per minute.
    #[arg(long, default_value_t = 1.0)]
    pub sales_per_min: f64,
    /// Fraction of vends (sales and app dispenses) that fail, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Drop connections at random (mean every --flaky-mean-s seconds per machine).
    #[arg(long)]
    pub flaky: bool,
    #[arg(long, default_value_t = 20.0)]
    pub flaky_mean_s: f64,
    /// Run this long (e.g. 30s, 2m, 500ms); without it, until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Heartbeat every this many ms instead of the Welcome's interval.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// The HTTP API, to register the machines first (needs an operator token).
    #[arg(long)]
    pub http: Option<String>,
    #[arg(long, env = "EMPORIUM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Lines of `id,secret` for machines registered already.
    #[arg(long)]
    pub machines_file: Option<PathBuf>,
    /// Ids of registered machines: `{prefix}-0001` and up.
    #[arg(long, default_value = "sim")]
    pub id_prefix: String,
    /// Also write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Machines registered at once over HTTP.
    #[arg(long, default_value_t = 32)]
    pub register_concurrency: usize,
}

/// `30s`, `2m`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s:?}; use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("registering {id}: {message}")]
    Register { id: String, message: String },
    #[error("machines file: {0}")]
    File(#[from] std::io::Error),
}

/// The planogram every registered simulated machine gets: 6 slots of 10.
pub fn default_slots() -> BTreeMap<u32, SimSlot> {
    [
        "COLA-330",
        "WATER-500",
        "CHIPS-SALT",
        "CHOC-BAR",
        "GUM-MINT",
        "JUICE-ORANGE",
    ]
    .iter()
    .enumerate()
    .map(|(i, sku)| {
        (
            i as u32 + 1,
            SimSlot {
                sku: (*sku).to_owned(),
                price_minor: 100 + 50 * i as i64,
                level: 10,
                locked: false,
            },
        )
    })
    .collect()
}

/// Sends, waiting out 429 and 503 (as `Retry-After` says, at most 8 attempts).
async fn send(rb: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    for _ in 0..8 {
        let attempt = rb.try_clone().ok_or("request cannot be retried")?;
        let r = attempt.send().await.map_err(|e| e.to_string())?;
        if !matches!(r.status().as_u16(), 429 | 503) {
            return Ok(r);
        }
        let wait = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 30))).await;
    }
    Err("still throttled after 8 attempts".into())
}

async fn register_one(
    client: &reqwest::Client,
    http: &str,
    token: &str,
    id: &str,
) -> Result<String, SimError> {
    let err = |message: String| SimError::Register {
        id: id.to_owned(),
        message,
    };
    let url = format!("{}/v1/machines/{id}", http.trim_end_matches('/'));
    let r = send(
        client
            .put(&url)
            .bearer_auth(token)
            .json(&json!({"name": format!("Simulated {id}"), "location": "vm-sim"})),
    )
    .await
    .map_err(err)?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| err(e.to_string()))?;
    let secret = match (status.as_u16(), body["secret"].as_str()) {
        (201, Some(s)) => s.to_owned(),
        // Registered before: rotate to learn a secret.
        (200, _) => {
            let r = send(client.post(format!("{url}/secret")).bearer_auth(token))
                .await
                .map_err(err)?;
            let v: Value = r.json().await.map_err(|e| err(e.to_string()))?;
            v["secret"]
                .as_str()
                .ok_or_else(|| err(format!("secret rotation answered {v}")))?
                .to_owned()
        }
        _ => return Err(err(format!("{status}: {body}"))),
    };
    let slots: Vec<Value> = default_slots()
        .iter()
        .map(|(n, s)| json!({"slot": n, "sku": s.sku, "price_minor": s.price_minor, "capacity": s.level, "level": s.level}))
        .collect();
    let r = send(
        client
            .put(format!("{url}/planogram"))
            .bearer_auth(token)
            .json(&json!({ "slots": slots })),
    )
    .await
    .map_err(err)?;
    if !r.status().is_success() {
        return Err(err(format!("planogram: {}", r.status())));
    }
    Ok(secret)
}

/// Registers (or reads) the machines: `(id, secret)`.
async fn machines(args: &SimArgs) -> Result<Vec<(String, String)>, SimError> {
    if let Some(file) = &args.machines_file {
        let text = std::fs::read_to_string(file)?;
        return text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(args.machines)
            .map(|l| {
                l.split_once(',')
                    .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
                    .ok_or_else(|| SimError::Args(format!("not `id,secret`: {l:?}")))
            })
            .collect();
    }
    let http = args.http.as_deref().ok_or_else(|| {
        SimError::Args("give --http (to register machines) or --machines-file".into())
    })?;
    let token = args.admin_token.as_deref().ok_or_else(|| {
        SimError::Args("--http needs --admin-token or EMPORIUM_ADMIN_TOKEN".into())
    })?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| SimError::Args(e.to_string()))?;
    use futures::StreamExt;
    let ids: Vec<String> = (1..=args.machines)
        .map(|i| format!("{}-{i:04}", args.id_prefix))
        .collect();
    futures::stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move {
                let secret = register_one(&client, http, token, &id).await?;
                Ok((id, secret))
            }
        })
        .buffer_unordered(args.register_concurrency.max(1))
        .collect::<Vec<Result<_, SimError>>>()
        .await
        .into_iter()
        .collect()
}

/// The client TLS settings for `--tls-ca`: an https gateway needs the CA, and the CA only
/// makes sense with an https gateway.
fn tls_config(args: &SimArgs) -> Result<Option<tonic::transport::ClientTlsConfig>, SimError> {
    let https = args.gateway.starts_with("https://");
    let Some(path) = &args.tls_ca else {
        return if https {
            Err(SimError::Args(
                "an https:// gateway needs --tls-ca FILE".into(),
            ))
        } else {
            Ok(None)
        };
    };
    if !https {
        return Err(SimError::Args("--tls-ca needs an https:// gateway".into()));
    }
    let pem = std::fs::read(path)
        .map_err(|e| SimError::Args(format!("--tls-ca {}: {e}", path.display())))?;
    Ok(Some(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
    ))
}

/// Runs the simulation until `--duration` passes or Ctrl-C.
pub async fn run(args: SimArgs) -> Result<Summary, SimError> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(SimError::Args("--fail-rate must be between 0 and 1".into()));
    }
    let tls = tls_config(&args)?;
    let list = machines(&args).await?;
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let behaviour = Behaviour {
        gateway: args.gateway.clone(),
        sales_per_min: args.sales_per_min,
        fail_rate: args.fail_rate,
        flaky_mean_s: args.flaky.then_some(args.flaky_mean_s.max(0.1)),
        heartbeat: args.heartbeat_ms.map(Duration::from_millis),
        tls,
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (id, secret) in list {
        let m = SimMachine::new(id, secret, default_slots());
        tasks.spawn(m.run(behaviour.clone(), stats.clone(), stop_rx.clone()));
    }
    let n = tasks.len();
    let report = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let sent = stats.sent.get();
                eprintln!(
                    "vm-sim: online {}/{n}, sent {} ({}/s), acks {}, vends {}/{} ok/failed, dispenses {}, reconnects {}, errors {:?}",
                    stats.online.get(),
                    sent,
                    (sent - last) / 5,
                    stats.acks.get(),
                    stats.vends_ok.get(),
                    stats.vends_failed.get(),
                    stats.dispenses.get(),
                    stats.reconnects.get(),
                    stats.errors.snapshot()
                );
                last = sent;
            }
        })
    };
    match args.duration {
        Some(d) => tokio::select! {
            _ = tokio::time::sleep(d) => {},
            _ = tokio::signal::ctrl_c() => {},
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    let online_at_stop = stats.online.get();
    let _ = stop_tx.send(true);
    report.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let mut summary = stats.summary(n, started.elapsed().as_secs_f64());
    summary.online_at_end = online_at_stop;
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        )?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
