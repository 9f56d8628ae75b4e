//! `emporium cluster status|leave|remove`: the operator's terminal view of a cluster,
//! through a member's HTTP edge (`GET /v1/cluster`, `POST /v1/cluster/leave`,
//! `POST /v1/cluster/remove`).

use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// The operator or admin token (default: EMPORIUM_ADMIN_TOKEN).
    #[arg(
        long,
        env = "EMPORIUM_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Members, health, epoch, partitions per node and handoffs.
    Status {
        /// HTTP address of any member, e.g. 127.0.0.1:8081.
        #[arg(long)]
        node: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drain a node: hand off its partitions, then remove it from the map.
    Leave {
        /// HTTP address of the node to drain.
        #[arg(long)]
        node: String,
    },
    /// Reassign the partitions of a node that is permanently lost. Their data is lost
    /// unless restored from a backup.
    Remove {
        /// Name of the lost node.
        #[arg(long)]
        node: String,
        /// HTTP address of a live member to ask.
        #[arg(long)]
        via: String,
        /// Confirms that the lost node's data is given up.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: ClusterArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: ClusterArgs) -> Result<(), String> {
    let token = args
        .admin_token
        .ok_or("an operator token is needed: --admin-token or EMPORIUM_ADMIN_TOKEN")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let url = |node: &str, path: &str| format!("http://{node}{path}");
    let (resp, pretty) = match &args.command {
        ClusterCommand::Status { node, json } => (
            client
                .get(url(node, "/v1/cluster"))
                .bearer_auth(&token)
                .send()
                .await,
            !json,
        ),
        ClusterCommand::Leave { node } => (
            client
                .post(url(node, "/v1/cluster/leave"))
                .bearer_auth(&token)
                .send()
                .await,
            false,
        ),
        ClusterCommand::Remove { node, via, force } => {
            if !force {
                return Err(format!(
                    "removing {node} gives up the data of its partitions: repeat with --force to confirm"
                ));
            }
            (
                client
                    .post(url(via, "/v1/cluster/remove"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"node": node, "force": true}))
                    .send()
                    .await,
                false,
            )
        }
    };
    let resp = resp.map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    if pretty {
        print!("{}", render(&body));
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    }
    Ok(())
}

/// The status as a table.
pub fn render(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}  epoch {}  quorum {}  partitions {}",
        v["node"].as_str().unwrap_or("-"),
        v["epoch"],
        v["quorum"],
        v["partitions"]
    );
    let _ = writeln!(
        out,
        "{:<16} {:<22} {:<22} {:<8} {:>10} {:>12}",
        "MEMBER", "CLUSTER ADDR", "HTTP ADDR", "STATUS", "PARTITIONS", "LAST SEEN"
    );
    for m in v["members"].as_array().into_iter().flatten() {
        let status = if m["leaving"].as_bool() == Some(true) {
            format!("{}*", m["status"].as_str().unwrap_or("?"))
        } else {
            m["status"].as_str().unwrap_or("?").to_owned()
        };
        let _ = writeln!(
            out,
            "{:<16} {:<22} {:<22} {:<8} {:>10} {:>12}",
            m["name"].as_str().unwrap_or("?"),
            m["addr"].as_str().unwrap_or("?"),
            m["http_addr"].as_str().unwrap_or("?"),
            status,
            m["partitions"],
            m["last_seen_ms_ago"]
                .as_u64()
                .map(|ms| format!("{ms} ms ago"))
                .unwrap_or_else(|| "never".into()),
        );
    }
    let moving = v["moving"].as_array().map(Vec::len).unwrap_or(0);
    let _ = writeln!(out, "partitions moving: {moving}  (* = leaving)");
    out
}
