//! The notification dispatcher: one task per node that sends the due messages of the
//! partitions the node owns.
//!
//! Each pass reads each local partition's [`QUEUE`] from the start (keys are ordered by
//! due time), orders the due records of all of them by due time, and launches them while
//! their channel has fewer than `notifications.max_in_flight` sends in flight; a record is
//! never launched twice at once. A slow or failing provider holds only its own channel's slots: the projections
//! and checkouts never wait on it.
//!
//! A send's result is recorded under the partition's gate, after re-reading the record,
//! with the pure state machine ([`crate::domain::notification`]): sent moves it to
//! [`LOG`], a retry to its new due key, dead to [`DLQ`], each in one durable batch. A
//! kill -9 before that write leaves the record queued: it is sent again after the
//! restart, with the same message id (at least once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Channel;
use super::{done_key, number_of, queue_key, Stored, DLQ, LOG, QUEUE};
use crate::app::config::NotificationsConfig;
use crate::clock::now_ms;
use crate::domain::notification::{apply, decide, ChannelKind, MessageCommand, MessageStatus};
use crate::events::in_flight::{earliest_first, Claim, Due, InFlight};
use crate::events::runner::Ownership;
use crate::store::{codec, Journal, ProjectedOp, StoreError};

/// Most queue records one pass looks at per partition.
pub const WINDOW: usize = 256;
/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
const HOUSEKEEPING_SCAN: usize = 10_000;

/// The node's notification dispatcher.
pub struct Dispatcher {
    journal: Journal,
    owner: Arc<dyn Ownership>,
    channels: HashMap<ChannelKind, Arc<dyn Channel>>,
    config: NotificationsConfig,
    flight: InFlight<ChannelKind>,
}

fn decode(v: &[u8]) -> Option<Stored> {
    codec::decode(v).ok()
}

impl Dispatcher {
    pub fn new(
        journal: Journal,
        owner: Arc<dyn Ownership>,
        channels: Vec<Arc<dyn Channel>>,
        config: NotificationsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            journal,
            owner,
            channels: channels.into_iter().map(|c| (c.kind(), c)).collect(),
            config,
            flight: InFlight::default(),
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
                if let Err(e) = this.pass() {
                    tracing::error!(error = %e, "notify: reading the queue failed");
                }
                if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                    last_housekeeping = Some(Instant::now());
                    if let Err(e) = this.housekeeping().await {
                        tracing::error!(error = %e, "notify: housekeeping failed");
                    }
                }
            }
        })
    }

    /// Launches the due messages this node may send now, earliest due first across all
    /// its partitions ([`earliest_first`]).
    fn pass(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = now_ms();
        let mut due = Vec::new();
        for p in self.owner.local() {
            let part = self.journal.partition(p);
            for (k, v) in part.projected(QUEUE, None, WINDOW)? {
                let Some(at) = number_of(&k).filter(|at| *at <= now) else {
                    break; // ordered by due time: nothing after this is due
                };
                let Some(s) = decode(&v) else { continue };
                let Some(kind) = s.message.channel else {
                    continue;
                };
                if !self.channels.contains_key(&kind) {
                    continue; // the channel was turned off: kept until it is back
                }
                due.push(Due {
                    at,
                    p,
                    key: k.to_vec(),
                    item: (s, kind),
                });
            }
        }
        for d in earliest_first(due) {
            let (s, kind) = d.item;
            let Some(channel) = self.channels.get(&kind).cloned() else {
                continue;
            };
            let Some(slot) = self
                .flight
                .claim(d.p, &d.key, &kind, self.config.max_in_flight)
            else {
                continue;
            };
            tokio::spawn(self.clone().send(slot, s, channel));
        }
        Ok(())
    }

    async fn send(self: Arc<Self>, slot: Claim<ChannelKind>, s: Stored, channel: Arc<dyn Channel>) {
        let Some(content) = s.message.content.clone() else {
            return;
        };
        let started = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_millis(self.config.timeout_ms),
            channel.send(&s.message.id, &s.message.recipient, &content),
        )
        .await
        .unwrap_or_else(|_| {
            Err(super::channel::SendError {
                permanent: false,
                detail: format!("no answer within {} ms", self.config.timeout_ms),
            })
        });
        metrics::histogram!("emporium_notification_send_seconds", "channel" => slot.group.as_str())
            .record(started.elapsed().as_secs_f64());
        let (ok, permanent, detail) = match result {
            Ok(answer) => (true, false, answer),
            Err(e) => (false, e.permanent, e.detail),
        };
        if !ok {
            tracing::warn!(message = %s.message.id, channel = slot.group.as_str(), %detail, permanent, "notify: a send failed");
        }
        let cmd = MessageCommand::RecordAttempt {
            now: now_ms(),
            ok,
            permanent,
            detail,
        };
        match self.settle(slot.p, &slot.key, cmd).await {
            Ok(Some(status)) => {
                let outcome = match status {
                    MessageStatus::Sent => "sent",
                    MessageStatus::Dead => "dead_lettered",
                    _ => "retried",
                };
                metrics::counter!("emporium_notifications_total", "channel" => slot.group.as_str(), "outcome" => outcome)
                    .increment(1);
            }
            Ok(None) => {
                metrics::counter!("emporium_notifications_total", "channel" => slot.group.as_str(), "outcome" => "dropped")
                    .increment(1);
            }
            Err(e) => tracing::error!(error = %e, "notify: storing an attempt failed"),
        }
        drop(slot);
    }

    /// Records an attempt; `None` when it was dropped (the partition left, or the record
    /// is no longer queued at this key).
    async fn settle(
        &self,
        p: u32,
        key: &[u8],
        cmd: MessageCommand,
    ) -> Result<Option<MessageStatus>, StoreError> {
        let Some(_held) = self.owner.hold(p) else {
            return Ok(None);
        };
        let part = self.journal.partition(p);
        let Some(mut s) = part.projected_get(QUEUE, key)?.as_deref().and_then(decode) else {
            return Ok(None);
        };
        let Ok(events) = decide(&s.message, &cmd) else {
            return Ok(None); // not pending any more
        };
        for e in &events {
            apply(&mut s.message, e);
        }
        let id = s.message.id.clone();
        let status = s.message.status;
        let ops: Vec<ProjectedOp<'_>> = match status {
            MessageStatus::Sent => vec![
                (QUEUE, key.to_vec(), None),
                (LOG, done_key(s.pseq, &id), Some(codec::encode(&s))),
            ],
            MessageStatus::Dead => vec![
                (QUEUE, key.to_vec(), None),
                (DLQ, done_key(s.pseq, &id), Some(codec::encode(&s))),
            ],
            _ => vec![
                (QUEUE, key.to_vec(), None),
                (
                    QUEUE,
                    queue_key(s.message.due_at, &id),
                    Some(codec::encode(&s)),
                ),
            ],
        };
        part.write_projected(ops).await?;
        Ok(Some(status))
    }

    async fn housekeeping(&self) -> Result<(), StoreError> {
        let keep_from = now_ms().saturating_sub(self.config.log_retention_s.saturating_mul(1000));
        let mut dlq_depth = 0usize;
        for p in self.owner.local() {
            let Some(_held) = self.owner.hold(p) else {
                continue;
            };
            let part = self.journal.partition(p);
            let mut ops: Vec<ProjectedOp<'_>> = Vec::new();
            for (k, v) in part.projected(LOG, None, HOUSEKEEPING_SCAN)? {
                let last = decode(&v).and_then(|s| s.message.attempts.last().map(|a| a.at));
                // Log keys are in log order: the old come first.
                if last.is_some_and(|at| at >= keep_from) {
                    break;
                }
                ops.push((LOG, k, None));
            }
            dlq_depth += part.projected(DLQ, None, HOUSEKEEPING_SCAN)?.len();
            if !ops.is_empty() {
                tracing::info!(partition = p, removed = ops.len(), "notify: housekeeping");
                part.write_projected(ops).await?;
            }
        }
        metrics::gauge!("emporium_notification_dlq_depth").set(dlq_depth as f64);
        Ok(())
    }
}
