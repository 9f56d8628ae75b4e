//! The application: configuration, start-up and shutdown.
//!
//! Start-up order: open the store, resolve the operator token, rebuild the catalog
//! view, start the supervision tree and the router, seed the demo catalog if asked,
//! bind HTTP, then resume every unsettled order (bounded concurrency) and only then
//! report ready. Shutdown: stop accepting, finish in-flight requests, flush the store.

pub mod cluster_local;
pub mod config;
pub mod config_events;
pub mod demo;
pub mod root;
pub mod secrets;

use crate::actors::catalog::Catalog;
use crate::actors::entity::EntityConfig;
use crate::actors::machine::{MachineBehavior, MachineTiming};
use crate::actors::order_saga::{OrderSaga, ProductBehavior, SagaConfig, StockBehavior};
use crate::actors::NoBehavior;
use crate::domain::cart::Cart;
use crate::domain::machine::Machine;
use crate::domain::order::Order;
use crate::domain::payment::Payment;
use crate::domain::product::Product;
use crate::domain::session::Session;
use crate::domain::stock::Stock;
use crate::domain::user::{EmailClaim, User};
use crate::payment::{PaymentGateway, Simulator};
use crate::router::Router;
use crate::store::{Index, Store, StoreOptions};
use crate::supervision::{KindRuntime, RestartPolicy};
use config::Config;
use futures::StreamExt;
use ractor::ActorCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("actor system: {0}")]
    Spawn(String),
    #[error("secret file: {0}")]
    SecretFile(#[from] secrets::SecretFileError),
    #[error("{path}: the admin token is {len} characters; it must be at least {} (delete the file to have one generated)", config::MIN_ADMIN_TOKEN)]
    ShortAdminToken {
        path: std::path::PathBuf,
        len: usize,
    },
    #[error("notifications: {0}")]
    Notifications(String),
    #[error("{0}")]
    Media(#[from] crate::media::MediaError),
    #[error("{path}: {error}")]
    Key {
        path: std::path::PathBuf,
        error: crate::auth::jwt::KeyError,
    },
}

/// Everything the edge needs. Cheap to clone: one shared [`AppParts`] behind an `Arc`
/// (a clone per request and per route used to copy a dozen handles; see
/// `docs/BENCHMARKS.md`). Fields are reached through `Deref`.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of an [`App`].
pub struct AppParts {
    pub config: Arc<Config>,
    pub router: Router,
    /// Private to `app`: the edges reach data through the router only.
    store: Store,
    pub catalog: Arc<Catalog>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub admin_token: Arc<String>,
    pub identity: Arc<crate::auth::Identity>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The vending machine sessions open on this node.
    pub sessions: Arc<crate::grpc::Sessions>,
    /// This node in its cluster (`cluster.enabled`), else `None`.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The projections of the partition logs this node owns, and their runner's task.
    pub projections: Arc<crate::events::runner::Projections>,
    projections_task: tokio::task::JoinHandle<()>,
    dispatcher_task: tokio::task::JoinHandle<()>,
    /// The notification sender.
    notifier_task: tokio::task::JoinHandle<()>,
    /// Where product images are stored.
    pub media: Arc<crate::media::Media>,
    /// This node's recent copy of the promotion book, for pricing the carts it shows.
    pub promotions:
        Arc<crate::events::snapshot::EntitySnapshot<crate::domain::promotion::Promotions>>,
    ready: Arc<AtomicBool>,
    root: ActorCell,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let dir = config.store.data_dir.clone();
        secrets::create_data_dir(&dir)?;
        let metrics = crate::telemetry::metrics();
        let store = Store::open(
            &dir,
            &StoreOptions {
                cache_capacity_bytes: config.store.cache_capacity_mb * 1024 * 1024,
                group_commit_max_batch: config.store.group_commit_max_batch,
                group_commit_queue: config.store.group_commit_queue,
                partitions: config.cluster.partitions,
            },
        )?;
        let admin_token = resolve_admin_token(&config, &dir)?;
        let identity = Arc::new(build_identity(&config, &dir, &admin_token).await?);
        // Once, before any actor runs: the previous build's payment ledger becomes the
        // orders' payment entities.
        crate::payment::legacy::fold(&store, crate::clock::now_ms()).await?;
        let simulator = Arc::new(
            Simulator::new(Duration::from_millis(config.payment.latency_ms))
                .with_ttl(Duration::from_secs(config.checkout.idempotency_ttl_s)),
        );
        let gateway: Arc<dyn PaymentGateway> = simulator.clone();
        let catalog = Arc::new(Catalog::default());
        rebuild_catalog(&store, &catalog);

        let root = root::start()
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let entity = || EntityConfig {
            snapshot_every: config.store.snapshot_every,
            idle_timeout: Duration::from_millis(config.actors.idle_timeout_ms),
            effect_retry: Duration::from_millis(config.actors.effect_retry_ms),
            clock: crate::clock::system(),
        };
        let s = &config.supervision;
        let policy = RestartPolicy {
            max_restarts: s.max_restarts,
            window: Duration::from_millis(s.window_ms),
            backoff_initial: Duration::from_millis(s.backoff_initial_ms),
            backoff_max: Duration::from_millis(s.backoff_max_ms),
            quarantine: Duration::from_millis(s.quarantine_ms),
        };
        let journal = store.journal().clone();
        let saga = OrderSaga::new(
            gateway.clone(),
            SagaConfig {
                payment_retries: config.checkout.payment_retries,
                payment_retry_backoff: Duration::from_millis(
                    config.checkout.payment_retry_backoff_ms,
                ),
                keep_closed: config.inventory.closed_reservations_max,
            },
        );
        let parent = root.clone();
        let start = Kinds {
            journal: &journal,
            entity: &entity,
            policy: &policy,
            parent: &parent,
        };
        let products = start
            .kind::<Product>(Arc::new(ProductBehavior {
                catalog: catalog.clone(),
            }))
            .await?;
        let carts = start.kind::<Cart>(Arc::new(NoBehavior)).await?;
        let skus = start
            .kind::<Stock>(Arc::new(StockBehavior {
                keep_closed: config.inventory.closed_reservations_max,
            }))
            .await?;
        let orders = start.kind::<Order>(Arc::new(saga)).await?;
        let payments = start.kind::<Payment>(Arc::new(NoBehavior)).await?;
        let users = start.kind::<User>(Arc::new(NoBehavior)).await?;
        let emails = start.kind::<EmailClaim>(Arc::new(NoBehavior)).await?;
        let sessions = start.kind::<Session>(Arc::new(NoBehavior)).await?;
        let webhooks = start
            .kind::<crate::domain::webhook::Webhooks>(Arc::new(NoBehavior))
            .await?;
        let templates = start
            .kind::<crate::domain::notification_template::NotificationTemplates>(Arc::new(
                NoBehavior,
            ))
            .await?;
        let preferences = start
            .kind::<crate::domain::preferences::Preferences>(Arc::new(NoBehavior))
            .await?;
        let promotions = start
            .kind::<crate::domain::promotion::Promotions>(Arc::new(NoBehavior))
            .await?;
        let redemptions = start
            .kind::<crate::domain::redemption::Redemptions>(Arc::new(NoBehavior))
            .await?;
        let categories = start
            .kind::<crate::domain::category::Categories>(Arc::new(NoBehavior))
            .await?;
        let reviews = start
            .kind::<crate::domain::review::Review>(Arc::new(crate::actors::reviews::ReviewBehavior))
            .await?;
        let locations = start
            .kind::<crate::domain::location::Locations>(Arc::new(NoBehavior))
            .await?;
        let machine_sessions = Arc::new(crate::grpc::Sessions::default());
        let cluster = if config.cluster.enabled {
            Some(crate::cluster::Cluster::open(
                config.cluster.clone(),
                &store,
            )?)
        } else {
            None
        };
        let sink = Arc::new(cluster_local::ClusterSink {
            sessions: machine_sessions.clone(),
            cluster: OnceLock::new(),
        });
        if let Some(c) = &cluster {
            let _ = sink.cluster.set(c.clone());
        }
        let machines = start
            .kind::<Machine>(Arc::new(MachineBehavior::new(
                sink,
                MachineTiming {
                    heartbeat_interval_ms: u64::from(config.vending.heartbeat_interval_s) * 1000,
                    resend_after_ms: config.vending.command_resend_ms,
                    recent_vends_window: config.vending.recent_vends_window,
                },
            )))
            .await?;
        let runner_slot = Arc::new(OnceLock::new());
        let router = Router::builder(Duration::from_millis(config.actors.ask_timeout_ms))
            .max_pending(config.actors.max_pending)
            .with(products)
            .with(carts)
            .with(skus)
            .with(orders)
            .with(payments)
            .with(users)
            .with(emails)
            .with(sessions)
            .with(machines)
            .with(webhooks)
            .with(templates)
            .with(preferences)
            .with(promotions)
            .with(redemptions)
            .with(categories)
            .with(reviews)
            .with(locations)
            .cluster(cluster.clone())
            .store_health(store.health().clone())
            .listings(Arc::new(cluster_local::LocalReads {
                journal: store.journal().clone(),
                catalog: catalog.clone(),
                projections: runner_slot.clone(),
            }))
            // The simulator reaches the payment entities through the router that hosts
            // them (built after it: the orders using it are hosted here too).
            .bind(move |client| simulator.bind_client(client))
            .build();
        if let Some(c) = &cluster {
            c.set_local(Arc::new(cluster_local::ClusterLocal {
                router: router.clone(),
                store: store.clone(),
                catalog: catalog.clone(),
                sessions: machine_sessions.clone(),
                cluster: c.clone(),
                resume_concurrency: config.checkout.resume_concurrency,
            }));
        }
        let owner: Arc<dyn crate::events::runner::Ownership> = match &cluster {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(crate::events::runner::Alone(store.journal().partitions())),
        };
        let registry = crate::events::webhooks::registry::registry(router.clone());
        let queue = crate::events::webhooks::queue::WebhookQueue {
            registry: registry.clone(),
            journal: store.journal().clone(),
        };
        let nc = &config.notifications;
        let mut channels: Vec<Arc<dyn crate::events::notify::channel::Channel>> = Vec::new();
        if !nc.email.smtp_url.0.is_empty() {
            let email = crate::events::notify::email::SmtpEmail::new(
                &nc.email.smtp_url.0,
                &nc.email.from,
                Duration::from_millis(nc.timeout_ms),
            )
            .map_err(StartError::Notifications)?;
            channels.push(Arc::new(email));
        }
        if !nc.sms.base_url.is_empty() {
            let sms = crate::events::notify::sms::TwilioSms::new(
                &nc.sms,
                Duration::from_millis(nc.timeout_ms),
            )
            .map_err(StartError::Notifications)?;
            channels.push(Arc::new(sms));
        }
        if !nc.push.vapid_private_key_path.is_empty() {
            let push = crate::events::notify::push::WebPush::new(
                &nc.push,
                Duration::from_millis(nc.timeout_ms),
            )
            .map_err(StartError::Notifications)?;
            tracing::info!(
                application_server_key = push.public_key(),
                "notify: Web Push is on"
            );
            channels.push(Arc::new(push));
        }
        let notify_queue = crate::events::notify::queue::NotifyQueue {
            journal: store.journal().clone(),
            templates: crate::events::snapshot::EntitySnapshot::new(
                router.clone(),
                crate::domain::notification_template::TEMPLATES_ID,
            ),
            router: router.clone(),
            channels: channels.iter().map(|c| c.kind()).collect(),
            operators: nc.email.operators.clone(),
            policy: crate::domain::notification::RetryPolicy {
                initial_ms: nc.retry_initial_ms,
                max_ms: 6 * 3600 * 1000,
                max_attempts: nc.max_attempts,
            },
        };
        let projections = crate::events::runner::Projections::new(
            store.journal().clone(),
            owner.clone(),
            config.projections.clone(),
            i64::from(config.inventory.low_stock_threshold),
            vec![
                Arc::new(crate::events::feed::Feed),
                Arc::new(queue),
                Arc::new(notify_queue),
                Arc::new(crate::events::ratings::Ratings {
                    router: router.clone(),
                }),
                Arc::new(crate::events::machine_stock::MachineStock {
                    router: router.clone(),
                }),
            ],
        );
        let _ = runner_slot.set(projections.clone());
        let projections_task = projections.start();
        let dispatcher = crate::events::webhooks::dispatch::Dispatcher::new(
            store.journal().clone(),
            owner.clone(),
            registry,
            router.clone(),
            config.webhooks.clone(),
        );
        let dispatcher_task = dispatcher.start();
        let notifier_task = crate::events::notify::dispatch::Dispatcher::new(
            store.journal().clone(),
            owner.clone(),
            channels,
            config.notifications.clone(),
        )
        .start();
        let notifications = crate::events::notify::history::Notifications::new(
            store.journal().clone(),
            owner.clone(),
        );
        let deliveries =
            crate::events::webhooks::dlq::Deliveries::new(store.journal().clone(), owner);
        // Replays run where the dead letters are: the router forwards them to the owners.
        router.set_replays(Arc::new(crate::events::replays::LocalReplays {
            deliveries,
            notifications,
            projections: projections.clone(),
        }));
        let promotions = crate::events::snapshot::EntitySnapshot::new(
            router.clone(),
            crate::domain::promotion::BOOK_ID,
        );
        let media = Arc::new(crate::media::Media::open(&config.media.store_url, &dir)?);
        Ok(Self(Arc::new(AppParts {
            config: Arc::new(config),
            media,
            promotions,
            router,
            store,
            catalog,
            gateway,
            admin_token: Arc::new(admin_token),
            identity,
            metrics,
            sessions: machine_sessions,
            cluster,
            projections,
            projections_task,
            dispatcher_task,
            notifier_task,
            ready: Arc::new(AtomicBool::new(false)),
            root,
        })))
    }

    /// The store's fail-stop state (for the process: exit once it failed).
    pub fn store_health(&self) -> &crate::store::StoreHealth {
        self.store.health()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Resumes every order whose saga had not settled, and every machine with timers or
    /// outcomes to deliver, then marks the app ready. Activation is throttled so a restart
    /// does not wake everything at once.
    pub async fn recover(&self) {
        let orders = self.resume::<Order>(Index::OpenOrders).await;
        let machines = self.resume::<Machine>(Index::LiveMachines).await;
        tracing::info!(
            orders,
            machines,
            "recovery done: unsettled orders and live machines resumed"
        );
        self.ready.store(true, Ordering::Release);
    }

    async fn resume<A: crate::domain::Aggregate>(&self, index: Index) -> usize {
        let ids: Vec<String> = self
            .store
            .journal()
            .index_keys(index)
            .filter_map(|r| {
                r.map_err(|e| tracing::error!(error = %e, ?index, "reading a recovery index"))
                    .ok()
            })
            .collect();
        let count = ids.len();
        resume_ids::<A>(&self.router, ids, self.config.checkout.resume_concurrency).await;
        count
    }

    /// Stops the actor system and flushes the store.
    pub async fn shutdown(&self) {
        self.ready.store(false, Ordering::Release);
        self.projections_task.abort();
        self.dispatcher_task.abort();
        self.notifier_task.abort();
        if let Some(c) = &self.cluster {
            // Stale copies of partitions handed off are dropped before the process ends
            // (a drained node leaves the map first), bounded like the rest of shutdown.
            let grace = Duration::from_millis(self.config.http.shutdown_grace_ms);
            if tokio::time::timeout(grace, c.drop_stale()).await.is_err() {
                tracing::warn!(
                    "shutdown: stale partition copies left; the next handoff here clears them"
                );
            }
        }
        self.root.stop(Some("shutdown".into()));
        if let Err(e) = self.store.flush_blocking() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

/// Activates `ids` of kind `A`, at most `concurrency` at once (start-up recovery, and
/// partitions gained from another node).
pub(crate) async fn resume_ids<A: crate::domain::Aggregate>(
    router: &Router,
    ids: Vec<String>,
    concurrency: usize,
) {
    futures::stream::iter(ids)
        .for_each_concurrent(concurrency.max(1), |id| {
            let router = router.clone();
            async move {
                if let Err(e) = router.activate::<A>(&id).await {
                    tracing::error!(kind = %A::KIND, id = %crate::domain::LogId(A::KIND, &id), error = %e, "could not resume");
                }
            }
        })
        .await;
}

/// What every kind's runtime starts with.
struct Kinds<'a, F: Fn() -> EntityConfig> {
    journal: &'a crate::store::Journal,
    entity: &'a F,
    policy: &'a RestartPolicy,
    parent: &'a ActorCell,
}

impl<F: Fn() -> EntityConfig> Kinds<'_, F> {
    async fn kind<A: crate::domain::Aggregate>(
        &self,
        behavior: Arc<dyn crate::actors::Behavior<A>>,
    ) -> Result<Arc<KindRuntime<A>>, StartError> {
        KindRuntime::<A>::start(
            self.journal.clone(),
            behavior,
            (self.entity)(),
            self.policy.clone(),
            Some(self.parent.clone()),
        )
        .await
        .map_err(|e| StartError::Spawn(e.to_string()))
    }
}

fn rebuild_catalog(store: &Store, catalog: &Catalog) {
    let journal = store.journal();
    for sku in journal.index_keys(Index::Products).filter_map(Result::ok) {
        match (
            crate::domain::Sku::parse(&sku),
            journal.load::<Product>(&sku),
        ) {
            (Ok(s), Ok(rec)) => catalog.upsert(&s, &rec.state),
            (_, Err(e)) => {
                tracing::error!(%sku, error = %e, "product does not recover; left out of the catalog")
            }
            (Err(e), _) => tracing::error!(%sku, error = %e, "bad sku in the product index"),
        }
    }
    tracing::info!(products = catalog.len(), "catalog rebuilt");
}

/// The operator token: config or env, else `<data-dir>/admin.token`, created (0600) if
/// missing; an existing file open to group or others is refused.
fn resolve_admin_token(config: &Config, dir: &Path) -> Result<String, StartError> {
    if !config.auth.admin_token.0.is_empty() {
        return Ok(config.auth.admin_token.0.clone());
    }
    let path = dir.join("admin.token");
    if let Some(t) = secrets::read_secret_file(&path)? {
        let t = t.trim().to_owned();
        if !t.is_empty() && t.len() < config::MIN_ADMIN_TOKEN {
            return Err(StartError::ShortAdminToken { path, len: t.len() });
        }
        if !t.is_empty() {
            tracing::info!(path = %path.display(), "operator token read from file");
            return Ok(t);
        }
    }
    let token = {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        hex::encode(b)
    };
    write_private(&path, &token)?;
    tracing::info!(path = %path.display(), "generated an operator token");
    Ok(token)
}

/// The JWT key set: from config (or env), else `<data-dir>/jwt.key` (`kid secret-hex` per
/// line), created (0600) with one random key on first start. The file is refused when
/// group or others may read it, a line is not `kid hex`, or a key is under 32 bytes.
async fn build_identity(
    config: &Config,
    dir: &Path,
    bootstrap: &str,
) -> Result<crate::auth::Identity, StartError> {
    let mut keys: Vec<(String, Vec<u8>)> = config
        .auth
        .jwt_keys
        .iter()
        .map(|k| (k.kid.clone(), k.secret.0.as_bytes().to_vec()))
        .collect();
    let mut source = std::path::PathBuf::from("auth.jwt_keys");
    if keys.is_empty() {
        let path = dir.join("jwt.key");
        if let Some(text) = secrets::read_secret_file(&path)? {
            keys = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let (kid, secret) = l.trim().split_once(' ').ok_or(())?;
                    Ok((kid.to_owned(), hex::decode(secret.trim()).map_err(|_| ())?))
                })
                .collect::<Result<_, ()>>()
                .map_err(|()| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: every line must be `kid secret-hex`", path.display()),
                    )
                })?;
        }
        if keys.is_empty() {
            use rand::RngCore;
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            let kid = format!("k{}", &hex::encode(secret)[..8]);
            write_private(&path, &format!("{kid} {}\n", hex::encode(secret)))?;
            tracing::info!(path = %path.display(), %kid, "generated a JWT signing key");
            keys = vec![(kid, secret.to_vec())];
        }
        source = path;
    }
    let key_set = crate::auth::jwt::KeySet::try_new(&keys, config.auth.access_token_ttl_s)
        .map_err(|error| StartError::Key {
            path: source,
            error,
        })?;
    let dummy = {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        crate::auth::password::hash(hex::encode(b))
            .await
            .map_err(std::io::Error::other)?
    };
    Ok(crate::auth::Identity::new(
        key_set,
        bootstrap.to_owned(),
        dummy,
        config.auth.refresh_token_ttl_s,
        config.auth.allow_guest_checkout,
    ))
}

use secrets::write_private;

#[cfg(test)]
mod tests;
