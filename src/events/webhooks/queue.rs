//! The `webhooks` projection: one delivery record per (event, endpoint that wants it),
//! written with the projection's offset in the event's partition ([`super::QUEUE`]).
//!
//! An endpoint gets the events decided after it was created. To never miss one, an
//! event is queued only against a registry read that began at least [`SKEW_MARGIN_MS`]
//! after the event's time: every endpoint created before the event (on any node whose
//! clock is within the margin) is then in the read. An event newer than that waits for
//! the next pass ([`HandlerError::NotYet`]), which costs at most one poll interval.
//!
//! After a reset, an event already delivered or dead (in [`super::LOG`] or
//! [`super::DLQ`], which a reset keeps) is not queued again.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::registry::Registry;
use super::{key, Delivery, DLQ, LOG, QUEUE};
use crate::events::handler::{EventHandler, HandlerError};
use crate::events::public::PublicEvent;
use crate::store::partition_store::Record;
use crate::store::{codec, Journal};

/// The clock difference between nodes the queue tolerates.
pub const SKEW_MARGIN_MS: u64 = 250;

/// The projection's handler.
pub struct WebhookQueue {
    pub registry: Arc<Registry>,
    pub journal: Journal,
}

impl EventHandler for WebhookQueue {
    fn name(&self) -> &'static str {
        QUEUE
    }

    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            self.registry
                .caught_up(ev.at, SKEW_MARGIN_MS, "the webhook registry")
                .await?;
            Ok(self.records(ev))
        })
    }
}

impl WebhookQueue {
    fn records(&self, ev: &PublicEvent) -> Vec<Record> {
        let (_, registry) = self.registry.current();
        let part = self.journal.partition(ev.partition);
        let mut out = Vec::new();
        for e in registry.endpoints.values() {
            if !e.enabled || !e.wants(ev.r#type.as_str()) || e.created_at > ev.at {
                continue;
            }
            let k = key(e.id, ev);
            let done = [LOG, DLQ]
                .iter()
                .any(|family| matches!(part.projected_get(family, &k), Ok(Some(_))));
            if !done {
                out.push((k, codec::encode(&Delivery::new(e.id, ev))));
            }
        }
        out
    }
}
