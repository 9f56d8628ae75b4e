//! The dispatcher: one task per node that delivers the due records of the partitions the
//! node owns.
//!
//! Each pass reads the registry, then for every enabled endpoint reads the first
//! [`WINDOW`] queue records of that endpoint in every local partition and launches the due
//! ones, earliest due first across the partitions, while the endpoint has fewer than
//! `webhooks.max_in_flight` attempts in flight. A record is never launched twice at once. A slow endpoint therefore fills
//! only its own slots: other endpoints, the projections and checkouts never wait on it.
//!
//! An attempt's result is written under the partition's gate (`Ownership::hold`), after
//! re-reading the record: if the partition left, or the record is gone (replayed, reset,
//! its endpoint deleted), the result is dropped, and the new owner delivers again (at
//! least once). Every write is one durable batch ([`crate::store::Partition::write_projected`]).
//!
//! Housekeeping (every [`HOUSEKEEPING_EVERY`]): queue records of deleted endpoints are
//! removed, delivered records past `webhooks.log_retention_s` are pruned, and the DLQ
//! depth gauge is set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::client::{self, Post};
use super::registry::Registry;
use super::{endpoint_of, Delivery, DeliveryState, DLQ, LOG, QUEUE};
use crate::app::config::WebhooksConfig;
use crate::clock::now_ms;
use crate::domain::webhook::{Endpoint, WebhookCommand, Webhooks, WebhooksState, REGISTRY_ID};
use crate::domain::Millis;
use crate::events::in_flight::{earliest_first, Claim, Due, InFlight};
use crate::events::retry::{next_step, NextStep};
use crate::events::runner::Ownership;
use crate::router::Router;
use crate::store::{codec, Journal, ProjectedOp, StoreError};

/// Most queue records of one endpoint one pass looks at per partition.
pub const WINDOW: usize = 256;
/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// Most records one housekeeping run looks at per partition and family.
const HOUSEKEEPING_SCAN: usize = 10_000;

/// The node's webhook dispatcher.
pub struct Dispatcher {
    journal: Journal,
    owner: Arc<dyn Ownership>,
    registry: Arc<Registry>,
    router: Router,
    config: WebhooksConfig,
    client: reqwest::Client,
    flight: InFlight<Uuid>,
    /// Since when every attempt to an endpoint failed.
    failing_since: Mutex<HashMap<Uuid, Millis>>,
}

fn decode(v: &[u8]) -> Option<Delivery> {
    codec::decode(v).ok()
}

/// A seed for the jitter of one attempt: stable per record and attempt.
fn seed(key: &[u8], tries: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    tries.hash(&mut h);
    now_ms().hash(&mut h);
    h.finish()
}

impl Dispatcher {
    pub fn new(
        journal: Journal,
        owner: Arc<dyn Ownership>,
        registry: Arc<Registry>,
        router: Router,
        config: WebhooksConfig,
    ) -> Arc<Self> {
        let client = client::build(
            config.allow_private_targets,
            Duration::from_millis(config.timeout_ms),
        );
        Arc::new(Self {
            journal,
            owner,
            registry,
            router,
            config,
            client,
            flight: InFlight::default(),
            failing_since: Mutex::new(HashMap::new()),
        })
    }

    /// Starts the dispatcher's task.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(this.config.poll_ms.max(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_housekeeping: Option<Instant> = None;
            loop {
                tick.tick().await;
                let state = match this.registry.refresh().await {
                    Ok((_, s)) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "webhooks: the registry is unavailable; next pass");
                        continue;
                    }
                };
                if let Err(e) = this.pass(&state) {
                    tracing::error!(error = %e, "webhooks: reading the queue failed");
                }
                if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                    last_housekeeping = Some(Instant::now());
                    if let Err(e) = this.housekeeping(&state).await {
                        tracing::error!(error = %e, "webhooks: housekeeping failed");
                    }
                }
            }
        })
    }

    /// Launches every due record this node may deliver now.
    fn pass(self: &Arc<Self>, state: &WebhooksState) -> Result<(), StoreError> {
        let now = now_ms();
        let max = self.config.max_in_flight.max(1);
        for e in state.endpoints.values().filter(|e| e.enabled) {
            if self.flight.busy(&e.id) >= max {
                continue;
            }
            let mut due = Vec::new();
            for p in self.owner.local() {
                let part = self.journal.partition(p);
                for (k, v) in part.projected(QUEUE, Some(e.id.as_bytes()), WINDOW)? {
                    if endpoint_of(&k) != Some(e.id) {
                        break;
                    }
                    let Some(d) = decode(&v) else { continue };
                    if d.next_at > now {
                        continue;
                    }
                    due.push(Due {
                        at: d.next_at,
                        p,
                        key: k.to_vec(),
                        item: d,
                    });
                }
            }
            for d in earliest_first(due) {
                if self.flight.busy(&e.id) >= max {
                    break;
                }
                let Some(slot) = self.flight.claim(d.p, &d.key, &e.id, max) else {
                    continue;
                };
                tokio::spawn(self.clone().deliver(slot, d.item, e.clone()));
            }
        }
        Ok(())
    }

    async fn deliver(self: Arc<Self>, slot: Claim<Uuid>, d: Delivery, endpoint: Endpoint) {
        let now = now_ms();
        let (outcome, attempt) = client::attempt(
            &self.client,
            Post {
                url: &endpoint.url,
                event_id: &d.event_id,
                body: &d.body,
                keys: endpoint.signing_keys(now),
                allow_private: self.config.allow_private_targets,
                timeout: Duration::from_millis(self.config.timeout_ms),
                now,
            },
        )
        .await;
        metrics::histogram!("emporium_webhook_delivery_seconds")
            .record(attempt.latency_ms as f64 / 1000.0);
        let step = next_step(
            d.tries.saturating_add(1),
            outcome,
            self.config.retry_initial_ms,
            self.config.max_attempts,
            seed(&slot.key, d.tries),
        );
        let label = match step {
            NextStep::Delivered => "delivered",
            NextStep::RetryAfter { .. } => "retried",
            NextStep::DeadLetter => "dead_lettered",
        };
        match self.settle(slot.p, &slot.key, attempt, step).await {
            Ok(true) => {
                metrics::counter!("emporium_webhook_deliveries_total", "outcome" => label)
                    .increment(1);
            }
            Ok(false) => {
                metrics::counter!("emporium_webhook_deliveries_total", "outcome" => "dropped")
                    .increment(1);
            }
            Err(e) => {
                tracing::error!(error = %e, "webhooks: storing an attempt failed");
            }
        }
        self.track(&endpoint, step, now).await;
        drop(slot);
    }

    /// Writes an attempt's result; `false` when it was dropped (the partition left, or
    /// the record is no longer queued).
    async fn settle(
        &self,
        p: u32,
        key: &[u8],
        attempt: super::Attempt,
        step: NextStep,
    ) -> Result<bool, StoreError> {
        let Some(_held) = self.owner.hold(p) else {
            return Ok(false);
        };
        let part = self.journal.partition(p);
        let Some(mut d) = part.projected_get(QUEUE, key)?.as_deref().and_then(decode) else {
            return Ok(false);
        };
        let at = attempt.at;
        d.record(attempt);
        let ops = match step {
            NextStep::Delivered => {
                d.state = DeliveryState::Delivered;
                vec![
                    (QUEUE, key.to_vec(), None),
                    (LOG, key.to_vec(), Some(codec::encode(&d))),
                ]
            }
            NextStep::RetryAfter { ms } => {
                d.next_at = now_ms().max(at).saturating_add(ms);
                vec![(QUEUE, key.to_vec(), Some(codec::encode(&d)))]
            }
            NextStep::DeadLetter => {
                d.state = DeliveryState::Dead;
                vec![
                    (QUEUE, key.to_vec(), None),
                    (DLQ, key.to_vec(), Some(codec::encode(&d))),
                ]
            }
        };
        part.write_projected(ops).await?;
        Ok(true)
    }

    /// Keeps when an endpoint began failing, and disables it once that is older than
    /// `webhooks.disable_after_s`.
    async fn track(&self, endpoint: &Endpoint, step: NextStep, now: Millis) {
        let disable = {
            let mut f = self.failing_since.lock().unwrap_or_else(|p| p.into_inner());
            if step == NextStep::Delivered {
                f.remove(&endpoint.id);
                false
            } else {
                let since = *f.entry(endpoint.id).or_insert(now);
                let over = now.saturating_sub(since) >= self.config.disable_after_s * 1000;
                if over {
                    f.remove(&endpoint.id);
                }
                over
            }
        };
        if !disable {
            return;
        }
        let reason = format!(
            "every attempt failed for {} s or more",
            self.config.disable_after_s
        );
        tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, %reason, "webhooks: disabling an endpoint");
        let cmd = WebhookCommand::AutoDisable {
            id: endpoint.id,
            reason,
            now,
        };
        if let Err(e) = self.router.command::<Webhooks>(REGISTRY_ID, cmd).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "webhooks: disabling failed; tried again on the next failure");
        }
    }

    /// The endpoint ids with records in `family` of partition `p` (one seek per id).
    fn endpoints_in(&self, p: u32, family: &str) -> Result<Vec<Uuid>, StoreError> {
        let part = self.journal.partition(p);
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        while out.len() < 1000 {
            let next = part.projected(family, after.as_deref(), 1)?;
            let Some(id) = next.first().and_then(|(k, _)| endpoint_of(k)) else {
                break;
            };
            out.push(id);
            let mut past = id.as_bytes().to_vec();
            past.extend_from_slice(&[0xff; 9]);
            after = Some(past);
        }
        Ok(out)
    }

    async fn housekeeping(&self, state: &WebhooksState) -> Result<(), StoreError> {
        let now = now_ms();
        let keep_from = now.saturating_sub(self.config.log_retention_s.saturating_mul(1000));
        let mut dlq_depth = 0usize;
        for p in self.owner.local() {
            let Some(_held) = self.owner.hold(p) else {
                continue;
            };
            let part = self.journal.partition(p);
            let mut ops: Vec<ProjectedOp<'_>> = Vec::new();
            for id in self.endpoints_in(p, QUEUE)? {
                if state.endpoints.contains_key(&id) {
                    continue;
                }
                for (k, _) in part.projected(QUEUE, Some(id.as_bytes()), HOUSEKEEPING_SCAN)? {
                    if endpoint_of(&k) != Some(id) {
                        break;
                    }
                    ops.push((QUEUE, k, None));
                }
            }
            for id in self.endpoints_in(p, LOG)? {
                for (k, v) in part.projected(LOG, Some(id.as_bytes()), HOUSEKEEPING_SCAN)? {
                    if endpoint_of(&k) != Some(id) {
                        break;
                    }
                    let last = decode(&v).and_then(|d| d.attempts.last().map(|a| a.at));
                    // Log keys of one endpoint are in log order: the old come first.
                    if last.is_some_and(|at| at >= keep_from) {
                        break;
                    }
                    ops.push((LOG, k, None));
                }
            }
            dlq_depth += part.projected(DLQ, None, HOUSEKEEPING_SCAN)?.len();
            if !ops.is_empty() {
                tracing::info!(partition = p, removed = ops.len(), "webhooks: housekeeping");
                part.write_projected(ops).await?;
            }
        }
        metrics::gauge!("emporium_webhook_dlq_depth").set(dlq_depth as f64);
        Ok(())
    }
}
