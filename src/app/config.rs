//! Configuration, layered in this order: built-in defaults, then the TOML file, then
//! `EMPORIUM_*` environment variables (`__` separates sections, for example
//! `EMPORIUM_ACTORS__IDLE_TIMEOUT_MS`), then command-line flags.
//! `config/default.toml` documents every key.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub use super::config_events::{
    EmailConfig, NotificationsConfig, PushConfig, SmsConfig, WebhooksConfig,
};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub actors: ActorsConfig,
    pub supervision: SupervisionConfig,
    pub checkout: CheckoutConfig,
    pub payment: PaymentConfig,
    pub shop: ShopConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub log: LogConfig,
    pub grpc: GrpcConfig,
    pub vending: VendingConfig,
    pub inventory: InventoryConfig,
    pub reviews: ReviewsConfig,
    pub media: MediaConfig,
    pub projections: ProjectionsConfig,
    pub webhooks: WebhooksConfig,
    pub notifications: NotificationsConfig,
    pub cluster: crate::cluster::config::ClusterConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub addr: String,
    pub max_body_bytes: u64,
    pub max_auth_body_bytes: u64,
    pub max_in_flight: usize,
    pub request_timeout_ms: u64,
    pub shutdown_grace_ms: u64,
    /// A connection must send its first byte, then start its first request (the HTTP/2
    /// preface included), within this; else it is closed.
    pub first_byte_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed (HTTP/1 and /2).
    pub idle_timeout_ms: u64,
    /// Open connections per client IP (IPv6 by /64); trusted proxies are exempt.
    pub max_connections_per_ip: usize,
    /// Peers (CIDRs) whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<String>,
    pub cors: CorsConfig,
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser; empty disables CORS.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; TLS is on when both paths are set.
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Steady rate and burst per client (user id when authenticated, else IP).
    pub per_second: u32,
    pub burst: u32,
    /// Login and register, per client IP.
    pub auth_per_minute: u32,
    pub auth_burst: u32,
    /// Login and register, per account (normalised email), whatever the address.
    pub account_per_minute: u32,
    pub account_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 100,
            burst: 200,
            auth_per_minute: 20,
            auth_burst: 10,
            account_per_minute: 10,
            account_burst: 5,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            max_auth_body_bytes: 4 * 1024,
            max_in_flight: 1024,
            request_timeout_ms: 15_000,
            shutdown_grace_ms: 8_000,
            first_byte_timeout_ms: 10_000,
            idle_timeout_ms: 120_000,
            max_connections_per_ip: 1024,
            trusted_proxies: Vec::new(),
            cors: CorsConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub snapshot_every: u64,
    pub cache_capacity_mb: u64,
    pub group_commit_max_batch: usize,
    pub group_commit_queue: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            snapshot_every: 100,
            cache_capacity_mb: 256,
            group_commit_max_batch: 4096,
            group_commit_queue: 65_536,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsConfig {
    pub idle_timeout_ms: u64,
    pub ask_timeout_ms: u64,
    pub effect_retry_ms: u64,
    /// Caller messages one entity admits in flight; more get 503 `overloaded`.
    pub max_pending: usize,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        Self {
            idle_timeout_ms: 300_000,
            ask_timeout_ms: 5_000,
            effect_retry_ms: 500,
            max_pending: crate::router::DEFAULT_MAX_PENDING,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    pub max_restarts: usize,
    pub window_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub quarantine_ms: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            window_ms: 60_000,
            backoff_initial_ms: 50,
            backoff_max_ms: 5_000,
            quarantine_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutConfig {
    pub reservation_ttl_ms: u64,
    pub wait_ms: u64,
    pub payment_retries: u32,
    pub payment_retry_backoff_ms: u64,
    pub resume_concurrency: usize,
    /// An `Idempotency-Key` names its order for this long, and a payment step's outcome
    /// is replayed this long: 24 h, as Stripe keeps keys. Reused later, a key is a new
    /// request.
    pub idempotency_ttl_s: u64,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        Self {
            reservation_ttl_ms: 15 * 60 * 1000,
            wait_ms: 3_000,
            payment_retries: 3,
            payment_retry_backoff_ms: 100,
            resume_concurrency: 32,
            idempotency_ttl_s: 86_400,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentConfig {
    pub latency_ms: u64,
    /// Unused since payments are entities (each order keeps at most one outcome per
    /// payment step, so there is nothing to sweep); still accepted, so existing config
    /// files load.
    pub expiry_sweep_interval_ms: u64,
    /// Unused, like `expiry_sweep_interval_ms`.
    pub expiry_sweep_max: usize,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            expiry_sweep_interval_ms: 60_000,
            expiry_sweep_max: 1_000,
        }
    }
}

/// Bounds on what a SKU remembers.
/// How the projections read the partition logs (`crate::events::runner`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionsConfig {
    /// How often each projection looks for new entries in its partitions' logs.
    pub poll_ms: u64,
    /// Most log entries one projection handles per partition in one step (one durable
    /// write of its records and offset).
    pub batch: usize,
    /// The longest wait before a projection retries a partition whose handler failed
    /// (the wait doubles from `poll_ms` up to this).
    pub retry_max_ms: u64,
}

impl Default for ProjectionsConfig {
    fn default() -> Self {
        Self {
            poll_ms: 100,
            batch: 256,
            retry_max_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// Most closed reservations a SKU remembers to keep repeated saga steps idempotent
    /// (besides the one-day limit); the oldest are forgotten first.
    pub closed_reservations_max: u32,
    /// A SKU whose available stock falls from above this to at or below it raises the
    /// public event `stock.low`; 0 turns it off.
    pub low_stock_threshold: u32,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            closed_reservations_max: crate::domain::stock::DEFAULT_KEEP_CLOSED,
            low_stock_threshold: 5,
        }
    }
}

/// Product images.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Where images are stored: empty for the local filesystem under
    /// `{store.data_dir}/media`, or an `s3://bucket/prefix` URL (credentials and region
    /// from the usual `AWS_*` environment variables).
    pub store_url: String,
    /// Largest image accepted, in bytes.
    pub max_image_bytes: u64,
    /// Largest width or height accepted, in pixels.
    pub max_dimension: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            store_url: String::new(),
            max_image_bytes: 5 * 1024 * 1024,
            max_dimension: 8000,
        }
    }
}

/// Review moderation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewsConfig {
    /// Approve a review at once when the content filter finds nothing in it.
    pub auto_approve: bool,
    /// Words (whole, case-insensitive) that send a review to moderation.
    pub blocked_words: Vec<String>,
    /// Whether a link in a review sends it to moderation.
    pub flag_links: bool,
}

impl Default for ReviewsConfig {
    fn default() -> Self {
        Self {
            auto_approve: false,
            blocked_words: Vec::new(),
            flag_links: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShopConfig {
    pub currency: String,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
        }
    }
}

/// The gRPC listener for vending machines (with health and reflection).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    pub addr: String,
    /// Machine streams open at once, authenticated or still waiting for their Hello; more
    /// get RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// How long a new session may take to send its Hello (and a TLS client its handshake).
    pub hello_timeout_ms: u64,
    /// Largest machine message accepted.
    pub max_message_bytes: usize,
    /// Streams that have not yet had their Hello verified, node-wide; more get
    /// RESOURCE_EXHAUSTED before any work is done for them.
    pub max_pending_hellos: usize,
    /// Open connections (TCP or TLS) from one IP address; more are closed at accept.
    pub max_connections_per_ip: usize,
    /// Open connections in all; more are closed at accept.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open at once (a machine needs one).
    pub max_streams_per_connection: u32,
    /// TLS on the gRPC listener: on when both paths are set (PEM, as `http.tls`).
    pub tls: TlsConfig,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:50051".into(),
            max_sessions: 10_000,
            hello_timeout_ms: 3_000,
            max_message_bytes: 64 * 1024,
            max_pending_hellos: 256,
            max_connections_per_ip: 64,
            max_connections: 12_000,
            max_streams_per_connection: 4,
            tls: TlsConfig::default(),
        }
    }
}

/// Vending machine behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VendingConfig {
    /// Told to machines in Welcome; silent for 3 intervals means offline.
    pub heartbeat_interval_s: u32,
    /// A command not acked within this is sent again with the same id.
    pub command_resend_ms: u64,
    /// An app purchase's Dispense deadline, from placement.
    pub dispense_timeout_ms: u64,
    /// A slot at or below this level raises LowStock (set at registration).
    pub low_stock_threshold: u32,
    /// How many recent vend ids a machine remembers to drop re-sent vends.
    pub recent_vends_window: u32,
}

impl Default for VendingConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_s: 10,
            command_resend_ms: 10_000,
            dispense_timeout_ms: 30_000,
            low_stock_threshold: 2,
            recent_vends_window: crate::domain::machine::DEFAULT_RECENT_VENDS as u32,
        }
    }
}

/// A secret that never prints.
#[derive(Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bootstrap admin bearer token. Empty: `EMPORIUM_ADMIN_TOKEN`, else generated on first start.
    pub admin_token: Secret,
    /// JWT signing keys; the first signs, all verify. Empty: one is generated into the
    /// data dir on first start.
    pub jwt_keys: Vec<JwtKey>,
    pub access_token_ttl_s: u64,
    pub refresh_token_ttl_s: u64,
    /// Carts created without a token stay usable by their id.
    pub allow_guest_checkout: bool,
    /// Password hashes and verifications (login, register) run at once; past it, 503
    /// `overloaded`.
    pub max_concurrent_hashes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_token: Secret::default(),
            jwt_keys: vec![],
            access_token_ttl_s: 900,
            refresh_token_ttl_s: 30 * 24 * 3600,
            allow_guest_checkout: true,
            max_concurrent_hashes: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    pub kid: String,
    /// At least 32 bytes.
    pub secret: Secret,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Values given on the command line; each overrides every other layer.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    pub http_addr: Option<String>,
    pub grpc_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
}

/// The shortest bootstrap admin token accepted: it is a bearer secret with every right.
pub const MIN_ADMIN_TOKEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Value(String),
}

impl Config {
    /// Loads the layers. Without `file`, `config/default.toml` is read if it exists.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.exists() => return Err(ConfigError::Missing(f.to_owned())),
            Some(f) => fig = fig.merge(Toml::file(f)),
            None => {
                let default = Path::new("config/default.toml");
                if default.exists() {
                    fig = fig.merge(Toml::file(default));
                }
            }
        }
        fig = fig.merge(
            Env::prefixed("EMPORIUM_")
                .split("__")
                .ignore(&["admin_token", "cluster_cookie"]),
        );
        if let Ok(token) = std::env::var("EMPORIUM_ADMIN_TOKEN") {
            fig = fig.merge(Serialized::default("auth.admin_token", token));
        }
        if let Some(a) = &overrides.http_addr {
            fig = fig.merge(Serialized::default("http.addr", a));
        }
        if let Some(a) = &overrides.grpc_addr {
            fig = fig.merge(Serialized::default("grpc.addr", a));
        }
        if let Some(d) = &overrides.data_dir {
            fig = fig.merge(Serialized::default("store.data_dir", d));
        }
        if let Some(f) = overrides.log_format {
            fig = fig.merge(Serialized::default("log.format", f));
        }
        let mut cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.validate()?;
        cfg.cluster.resolve().map_err(ConfigError::Value)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Value(m.to_owned()));
        if self.http.addr.parse::<std::net::SocketAddr>().is_err() {
            return bad("http.addr must be IP:PORT");
        }
        if self.grpc.addr.parse::<std::net::SocketAddr>().is_err() {
            return bad("grpc.addr must be IP:PORT");
        }
        if self.vending.heartbeat_interval_s == 0
            || self.vending.command_resend_ms == 0
            || self.vending.dispense_timeout_ms == 0
            || self.grpc.max_sessions == 0
        {
            return bad("vending intervals and grpc.max_sessions must be positive");
        }
        if self.grpc.max_pending_hellos == 0
            || self.grpc.max_connections_per_ip == 0
            || self.grpc.max_connections == 0
            || self.grpc.max_streams_per_connection == 0
            || self.grpc.hello_timeout_ms == 0
        {
            return bad("grpc limits and grpc.hello_timeout_ms must be positive");
        }
        if self.grpc.tls.cert_path.is_some() != self.grpc.tls.key_path.is_some() {
            return bad("grpc.tls needs both cert_path and key_path (or neither)");
        }
        let token = self.auth.admin_token.0.len();
        if token != 0 && token < MIN_ADMIN_TOKEN {
            return bad(&format!(
                "auth.admin_token (EMPORIUM_ADMIN_TOKEN) is {token} characters; it must be at least {MIN_ADMIN_TOKEN} (`openssl rand -hex 32` makes one)"
            ));
        }
        if self.store.snapshot_every == 0 {
            return bad("store.snapshot_every must be at least 1");
        }
        if self.shop.currency.len() != 3
            || !self.shop.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return bad("shop.currency must be a 3-letter ISO 4217 code such as USD");
        }
        if let Some(e) = self
            .auth
            .jwt_keys
            .iter()
            .find_map(|k| crate::auth::jwt::check_key(&k.kid, k.secret.0.as_bytes()).err())
        {
            return bad(&format!("auth.jwt_keys: {e}"));
        }
        if self.http.tls.cert_path.is_some() != self.http.tls.key_path.is_some() {
            return bad("http.tls needs both cert_path and key_path");
        }
        let pr = &self.projections;
        if pr.poll_ms == 0 || !(1..=10_000).contains(&pr.batch) || pr.retry_max_ms < pr.poll_ms {
            return bad(
                "projections.poll_ms must be positive, projections.batch 1 to 10000, and projections.retry_max_ms at least poll_ms",
            );
        }
        if self.inventory.closed_reservations_max == 0
            || self.vending.recent_vends_window == 0
            || self.vending.recent_vends_window as usize > crate::domain::machine::MAX_RECENT_VENDS
        {
            return bad(
                "inventory.closed_reservations_max must be positive and vending.recent_vends_window 1 to 10000",
            );
        }
        if self.checkout.idempotency_ttl_s == 0
            || self.payment.expiry_sweep_interval_ms == 0
            || self.payment.expiry_sweep_max == 0
        {
            return bad(
                "checkout.idempotency_ttl_s and the payment expiry sweep settings must be positive",
            );
        }
        if self.actors.max_pending == 0 {
            return bad("actors.max_pending must be positive");
        }
        if self.http.first_byte_timeout_ms == 0
            || self.http.idle_timeout_ms == 0
            || self.http.max_connections_per_ip == 0
        {
            return bad("http.first_byte_timeout_ms, http.idle_timeout_ms and http.max_connections_per_ip must be positive");
        }
        if let Some(bad_cidr) = self
            .http
            .trusted_proxies
            .iter()
            .find(|c| crate::http::edge::forwarded::parse_cidr(c).is_none())
        {
            return bad(&format!(
                "http.trusted_proxies: {bad_cidr:?} is not a CIDR such as 10.0.0.0/8 or an IP"
            ));
        }
        self.notifications.validate().map_err(ConfigError::Value)?;
        if self.http.max_in_flight == 0 || self.store.group_commit_max_batch == 0 {
            return bad("http.max_in_flight and store.group_commit_max_batch must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_file_matches_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let from_file: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .extract()
            .expect("config/default.toml parses");
        let a = serde_json::to_value(&from_file).unwrap();
        let b = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(a, b, "config/default.toml and Config::default() disagree");
    }

    #[test]
    fn flags_override_file_values() {
        let o = Overrides {
            http_addr: Some("127.0.0.1:0".into()),
            grpc_addr: Some("127.0.0.1:0".into()),
            data_dir: Some("/tmp/x".into()),
            log_format: Some(LogFormat::Json),
        };
        let c = Config::load(None, &o).unwrap();
        assert_eq!(c.http.addr, "127.0.0.1:0");
        assert_eq!(c.store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(matches!(
            Config::load(Some(Path::new("/nonexistent.toml")), &o),
            Err(ConfigError::Missing(_))
        ));
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "<redacted>");
    }

    #[test]
    fn an_admin_token_under_32_characters_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("emporium.toml");
        let o = Overrides::default();
        if std::env::var_os("EMPORIUM_ADMIN_TOKEN").is_some() {
            return; // the environment overrides the file; nothing to check here
        }
        std::fs::write(&file, "[auth]\nadmin_token = \"short-token\"\n").unwrap();
        match Config::load(Some(&file), &o) {
            Err(ConfigError::Value(m)) => assert!(m.contains("at least 32"), "{m}"),
            other => panic!("a short admin token was accepted: {other:?}"),
        }
        let long = "x".repeat(MIN_ADMIN_TOKEN);
        std::fs::write(&file, format!("[auth]\nadmin_token = \"{long}\"\n")).unwrap();
        assert_eq!(
            Config::load(Some(&file), &o).unwrap().auth.admin_token.0,
            long
        );
    }
}
