//! Webhook endpoints, their deliveries and the dead-letter queue, as `/v1/webhooks` and
//! `/v1/admin/dlq` read and answer them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::webhook::Endpoint;
use crate::events::webhooks::dlq::Listed;
use crate::events::webhooks::{Attempt, DeliveryState};

/// A new endpoint.
#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An `http` or `https` URL, at most 2048 characters, with no credentials; loopback
    /// and private addresses are refused unless `webhooks.allow_private_targets` is on.
    #[schema(example = "https://shop.example/hooks/emporium", max_length = 2048)]
    pub url: String,
    /// Event types (`order.paid`), or `["*"]` for every type.
    #[schema(min_items = 1, max_items = 32, example = json!(["order.paid", "order.cancelled"]))]
    pub events: Vec<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// A change to an endpoint; absent fields stay as they are.
#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 32)]
    pub events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `false` stops new deliveries (pending ones wait); `true` resumes them.
    pub enabled: Option<bool>,
}

/// An endpoint (its secret is shown only on creation and rotation).
#[derive(Serialize, ToSchema, Debug)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Why the runtime disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Until when the previous secret still signs, after a rotation.
    #[schema(format = DateTime)]
    pub previous_secret_valid_until: Option<String>,
}

impl From<&Endpoint> for WebhookView {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            events: e.events.clone(),
            description: e.description.clone(),
            enabled: e.enabled,
            created_at: rfc3339(e.created_at),
            disabled_reason: e.disabled_reason.clone(),
            previous_secret_valid_until: e.previous.as_ref().map(|(_, until)| rfc3339(*until)),
        }
    }
}

/// An endpoint with its signing secret.
#[derive(Serialize, ToSchema, Debug)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookView,
    /// `whsec_` + base64 of the key (Standard Webhooks); verify `webhook-signature` with it.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// Every endpoint.
#[derive(Serialize, ToSchema, Debug)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

wire_enum! {
    /// Where a delivery is.
    DeliveryStatus from DeliveryState { Pending, Delivered, Dead }
}

/// One attempt of a delivery.
#[derive(Serialize, ToSchema, Debug)]
pub struct AttemptView {
    #[schema(format = DateTime)]
    pub at: String,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// `ok`, `http_error`, `timeout`, `connection_error` or `refused`.
    pub outcome: String,
    pub latency_ms: u64,
    /// The start of the answer's body, or the error (at most 256 characters).
    pub excerpt: String,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            at: rfc3339(a.at),
            status: a.status,
            outcome: a.outcome.clone(),
            latency_ms: a.latency_ms,
            excerpt: a.excerpt.clone(),
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Serialize, ToSchema, Debug)]
pub struct DeliveryView {
    /// The record's id (what `POST /v1/admin/dlq/{id}/replay` takes).
    pub id: String,
    pub endpoint_id: Uuid,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts since it was queued or last replayed.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    /// The latest attempts (at most 32), oldest first.
    pub history: Vec<AttemptView>,
}

impl From<&Listed> for DeliveryView {
    fn from(l: &Listed) -> Self {
        let d = &l.delivery;
        Self {
            id: l.id.clone(),
            endpoint_id: d.endpoint,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.state.into(),
            attempts: d.tries,
            next_attempt_at: (d.state == DeliveryState::Pending).then(|| rfc3339(d.next_at)),
            last_status: d.last_status(),
            history: d.attempts.iter().map(Into::into).collect(),
        }
    }
}

/// An endpoint's deliveries on the answering node, the most recently attempted first.
#[derive(Serialize, ToSchema, Debug)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// One dead-lettered delivery.
#[derive(Serialize, ToSchema, Debug)]
pub struct DeadLetter {
    pub id: String,
    pub endpoint_id: Uuid,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempts: u32,
    /// The last HTTP status, if the endpoint answered.
    pub last_status: Option<u16>,
    /// The last attempt's outcome and excerpt.
    pub last_error: Option<String>,
}

impl From<&Listed> for DeadLetter {
    fn from(l: &Listed) -> Self {
        let d = &l.delivery;
        Self {
            id: l.id.clone(),
            endpoint_id: d.endpoint,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            attempts: d.tries,
            last_status: d.last_status(),
            last_error: d
                .attempts
                .last()
                .map(|a| format!("{}: {}", a.outcome, a.excerpt)),
        }
    }
}

/// A page of the dead-letter queue.
#[derive(Serialize, ToSchema, Debug)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetter>,
    /// Pass as `after` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// A replay was accepted: the deliveries are queued again, due at once.
#[derive(Serialize, ToSchema, Debug)]
pub struct ReplayAccepted {
    pub replayed: u32,
}
