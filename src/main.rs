//! The `emporium` binary: parse flags, load configuration, start telemetry, build the
//! application and run it until SIGINT or SIGTERM.

use clap::{Parser, Subcommand};
use emporium::app::config::{Config, LogFormat, Overrides};
use emporium::app::App;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc instead of glibc malloc: see `docs/BENCHMARKS.md` (allocation was the top
/// user-space cost of the request path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "emporium",
    version,
    about = "A commerce runtime of durable, supervised entity actors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: HTTP edge, actors and the embedded store.
    Serve {
        /// A TOML configuration file (default: config/default.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address for the HTTP edge, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long)]
        http_addr: Option<String>,
        /// Address for the gRPC listener of vending machines, e.g. 127.0.0.1:50051.
        #[arg(long)]
        grpc_addr: Option<String>,
        /// Directory for the embedded database (default ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seed a small demo catalog with stock when the store is empty.
        #[arg(long)]
        demo: bool,
        /// Log format.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Simulate vending machines against a gateway (demos, tests, load).
    VmSim(emporium::sim::SimArgs),
    /// Operate a cluster through any member's HTTP edge.
    Cluster(emporium::cluster::cli::ClusterArgs),
    /// Drive an HTTP edge with a shopper mix and report throughput, latency and errors.
    Loadgen(emporium::loadgen::LoadgenArgs),
    /// The kill -9 harness: seed, drive a mixed load with a ledger, check it after a restart.
    Chaos(emporium::chaos::ChaosArgs),
    /// Migrate a stopped node's data directory to this build's storage layout (`serve`
    /// does the same at start-up; this runs it offline and reports).
    Migrate {
        /// A TOML configuration file (for `cluster.partitions` and the data directory).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory (default: the configuration's).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make a Web Push (VAPID) key: writes the private key (PEM, mode 0600) for
    /// `notifications.push.vapid_private_key_path` and prints the public key pages
    /// subscribe with (`applicationServerKey`).
    VapidKey {
        /// Where to write the private key; an existing file is not overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

fn vapid_key(out: &std::path::Path) -> ExitCode {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (pem, public) = emporium::events::notify::push::new_key();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out);
    match file.and_then(|mut f| f.write_all(pem.as_bytes()).and_then(|_| f.sync_all())) {
        Ok(()) => {
            println!("{public}");
            eprintln!(
                "wrote {}; set notifications.push.vapid_private_key_path to it, and give pages the public key above",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::VmSim(args) => vm_sim(args),
        Command::Cluster(args) => emporium::cluster::cli::run(args),
        Command::Loadgen(args) => loadgen(args),
        Command::Chaos(args) => emporium::chaos::run(args),
        Command::Migrate { config, data_dir } => migrate(config, data_dir),
        Command::VapidKey { out } => vapid_key(&out),
        Command::Serve {
            config,
            http_addr,
            grpc_addr,
            data_dir,
            demo,
            log_format,
        } => {
            let overrides = Overrides {
                http_addr,
                grpc_addr,
                data_dir,
                log_format,
            };
            let cfg = match configure(config, &overrides) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("emporium: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(cfg, demo)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "emporium stopped with an error");
                    eprintln!("emporium: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Loads the configuration (exit 2 on a bad one) and starts logging.
fn configure(config: Option<PathBuf>, overrides: &Overrides) -> Result<Config, ExitCode> {
    let cfg = Config::load(config.as_deref(), overrides).map_err(|e| {
        eprintln!("emporium: {e}");
        ExitCode::from(2)
    })?;
    emporium::telemetry::init_tracing(cfg.log.format, &cfg.log.level);
    Ok(cfg)
}

fn migrate(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    let overrides = Overrides {
        data_dir,
        ..Overrides::default()
    };
    let cfg = match configure(config, &overrides) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = &cfg.store.data_dir;
    if !dir.join("sled").exists() {
        eprintln!("emporium migrate: no store in {}", dir.display());
        return ExitCode::from(2);
    }
    match emporium::store::migrate::run_offline(dir, cfg.cluster.partitions) {
        Ok(done) => {
            println!(
                "emporium migrate: {} is at storage layout {}; {} records moved, {} old keys left in place",
                dir.display(),
                emporium::store::migrate::LAYOUT,
                done.migrated,
                done.skipped
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("emporium migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: Config, demo: bool) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = cfg.store.data_dir.clone();
    let addr = cfg.http.addr.clone();
    let app = App::build(cfg).await?;
    if demo {
        emporium::app::demo::seed(&app).await?;
    }
    // An unusable TLS configuration fails the start before anything is announced.
    emporium::http::edge::tls::load(&app.config.http.tls).map_err(|e| format!("http.tls: {e}"))?;
    emporium::grpc::server::tls_acceptor(&app.config.grpc.tls)?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let grpc_addr = app.config.grpc.addr.clone();
    let grpc_listener = tokio::net::TcpListener::bind(&grpc_addr)
        .await
        .map_err(|e| format!("cannot listen on {grpc_addr} (grpc): {e}"))?;
    let local = listener.local_addr()?;
    let grpc_local = grpc_listener.local_addr()?;
    std::fs::write(data_dir.join("http.addr"), local.to_string())?;
    std::fs::write(data_dir.join("grpc.addr"), grpc_local.to_string())?;
    tracing::info!(addr = %local, data_dir = %data_dir.display(), "http listening");
    tracing::info!(addr = %grpc_local, "grpc listening");
    if let Some(c) = &app.cluster {
        c.start(local, &data_dir).await?;
    }
    let recovering = app.clone();
    tokio::spawn(async move { recovering.recover().await });
    // One signal stops both listeners. So does a failed store (fail-stop): the node
    // first answers for one shutdown grace with readiness 503 and writes refused (so a
    // load balancer drains it rather than meeting refused connections), then stops and
    // exits non-zero, so its supervisor restarts it from what is really on disk.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health = app.store_health().clone();
    let grace = Duration::from_millis(app.config.http.shutdown_grace_ms);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = health.failed() => {
                tracing::error!(grace_ms = grace.as_millis() as u64, "the store failed: draining, then exiting");
                tokio::time::sleep(grace).await;
            }
        }
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (served, grpc_served) = tokio::join!(
        emporium::http::serve(&app, listener, stopped(stop_rx.clone())),
        emporium::grpc::server::serve(&app, grpc_listener, stopped(stop_rx.clone())),
    );
    app.shutdown().await;
    if let Some(reason) = app.store_health().reason() {
        return Err(format!("the store failed: {reason}").into());
    }
    served.map_err(|e| format!("http edge: {e}"))?;
    grpc_served.map_err(|e| format!("grpc: {e}"))?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

/// Runs the simulator; exits non-zero if no machine ever connected, a secret was refused,
/// or a stream failed in a way `--flaky` did not inject.
fn vm_sim(args: emporium::sim::SimArgs) -> ExitCode {
    emporium::telemetry::init_tracing(LogFormat::Text, "warn");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vm-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(emporium::sim::run(args)) {
        Ok(summary) => {
            println!("{summary}");
            let unexpected: u64 = summary
                .stream_errors
                .iter()
                .filter(|(k, _)| k.as_str() != "Cancelled")
                .map(|(_, v)| v)
                .sum();
            if summary.sessions_opened == 0 || summary.auth_failures > 0 || unexpected > 0 {
                eprintln!("vm-sim: the run had errors (see above)");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("vm-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load generator; exits 1 when the run had errors or unbalanced stock, 2 when
/// it could not start.
fn loadgen(args: emporium::loadgen::LoadgenArgs) -> ExitCode {
    let json = args.json.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match rt.block_on(emporium::loadgen::run(args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.text());
    if let Some(path) = json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
