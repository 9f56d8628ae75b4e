//! The public event feed (`GET /v1/events`) and the projections' status
//! (`GET /v1/admin/projections`, `POST /v1/admin/projections/{name}/reset`).

use crate::clock::rfc3339;
use crate::events::runner::{State, Status};
use crate::events::{EventType, PublicEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One public event.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Event {
    /// Stable across every redelivery of the event: deduplicate on it.
    #[schema(example = "evt_0003_000000000017_order_paid")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the underlying change was committed; RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The version of this type's `data` shape.
    pub schema_version: u32,
    /// Events are ordered within a partition only.
    pub partition: u32,
    /// The type's documented fields: for `order.*` `order_id`, `status`, `total_minor`,
    /// `currency`, `email`, `items`, `channel` (and `failure_code` when cancelled);
    /// `user.registered` `user_id`, `email`; `stock.adjusted` `sku`, `on_hand`,
    /// `available`, `delta`; `cart.checked_out` `cart_id`, `order_id`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<PublicEvent> for Event {
    fn from(e: PublicEvent) -> Self {
        Self {
            id: e.id,
            event_type: e.r#type,
            timestamp: rfc3339(e.at),
            schema_version: e.schema_version,
            partition: e.partition,
            data: e.data,
        }
    }
}

/// A page of the feed.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `after` for the events that follow (also when `items` is empty: it
    /// records what this page read past).
    pub next_cursor: String,
    /// With `partial=true`: the partitions that could not answer (empty if none); their
    /// events come on a later page, the cursor is left where it was for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// A partition as a projection sees it.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ProjectionPartition {
    pub partition: u32,
    /// Every log entry up to this seq is handled.
    pub offset: u64,
    pub last_seq: u64,
    /// `last_seq - offset`.
    pub lag_events: u64,
    /// How long the oldest unhandled entry has waited.
    pub lag_seconds: f64,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionState {
    Running,
    /// A handler failed; its partitions are retried with a doubling wait.
    Retrying,
    /// A reset is asked for and not applied yet.
    Resetting,
    /// The store refused a write; the projection stopped (fail-stop).
    Failed,
}

/// A projection and its progress in the partitions this node owns.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Projection {
    pub name: String,
    pub state: ProjectionState,
    /// Why it is retrying or failed; `null` otherwise.
    #[schema(required = true)]
    pub error: Option<String>,
    /// Public events handled since this node started.
    pub events_total: u64,
    /// Unhandled log entries, summed over the partitions.
    pub lag_events: u64,
    /// The longest wait of an unhandled entry.
    pub lag_seconds: f64,
    pub partitions: Vec<ProjectionPartition>,
}

impl From<Status> for Projection {
    fn from(s: Status) -> Self {
        let (state, error) = match s.state {
            State::Running => (ProjectionState::Running, None),
            State::Retrying { error } => (ProjectionState::Retrying, Some(error)),
            State::Resetting => (ProjectionState::Resetting, None),
            State::Failed { error } => (ProjectionState::Failed, Some(error)),
        };
        let partitions: Vec<ProjectionPartition> = s
            .partitions
            .iter()
            .map(|l| ProjectionPartition {
                partition: l.partition,
                offset: l.offset,
                last_seq: l.last_seq,
                lag_events: l.last_seq.saturating_sub(l.offset),
                lag_seconds: l.lag_ms as f64 / 1000.0,
            })
            .collect();
        Self {
            name: s.name.to_owned(),
            state,
            error,
            events_total: s.events,
            lag_events: partitions.iter().map(|p| p.lag_events).sum(),
            lag_seconds: partitions.iter().map(|p| p.lag_seconds).fold(0.0, f64::max),
            partitions,
        }
    }
}

/// `GET /v1/admin/projections`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ProjectionList {
    /// The answering node (`null` when it runs alone); the partitions listed are the
    /// whole cluster's, each from its owner.
    #[schema(required = true)]
    pub node: Option<String>,
    pub items: Vec<Projection>,
    /// The partitions whose owner could not answer (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// `POST /v1/admin/projections/{name}/reset`: accepted; the runner applies it between
/// steps, then rebuilds from the start of every log.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ResetAccepted {
    pub name: String,
    pub state: ProjectionState,
}
