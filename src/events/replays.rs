//! This node's side of the router's replays ([`crate::router::replay`]): a dead webhook
//! delivery, an endpoint's dead deliveries and a dead notification message, each queued
//! again under its partition's gate, and a projection reset, for the partitions this
//! node owns.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::notify::history::{self, Notifications};
use super::runner::{Projections, ResetError};
use super::webhooks::dlq::{self, Deliveries};
use crate::router::replay::{ReplayFailure, ReplayOp, ReplaySource};

/// The replays of this node's partitions.
pub struct LocalReplays {
    pub deliveries: Arc<Deliveries>,
    pub notifications: Arc<Notifications>,
    pub projections: Arc<Projections>,
}

fn delivery_failure(e: dlq::ReplayError) -> ReplayFailure {
    match e {
        dlq::ReplayError::NotFound(_) => ReplayFailure::NotFound,
        dlq::ReplayError::Moving(_) => ReplayFailure::Moving,
        dlq::ReplayError::Store(e) => ReplayFailure::Store(e.to_string()),
    }
}

impl ReplaySource for LocalReplays {
    fn replay(&self, op: ReplayOp) -> BoxFuture<'static, Result<u32, ReplayFailure>> {
        let (deliveries, notifications) = (self.deliveries.clone(), self.notifications.clone());
        let projections = self.projections.clone();
        Box::pin(async move {
            match op {
                ReplayOp::Delivery { id, .. } => deliveries
                    .replay(&id)
                    .await
                    .map(|()| 1)
                    .map_err(delivery_failure),
                ReplayOp::Endpoint { endpoint } => deliveries
                    .replay_endpoint(endpoint)
                    .await
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .map_err(delivery_failure),
                ReplayOp::ResetProjection { name } => match projections.reset(&name) {
                    Ok(()) => {
                        tracing::warn!(projection = %name, "projection reset requested");
                        Ok(1)
                    }
                    Err(ResetError::Unknown(_)) => Err(ReplayFailure::NotFound),
                },
                ReplayOp::Notification { id } => notifications
                    .replay(&id)
                    .await
                    .map(|()| 1)
                    .map_err(|e| match e {
                        history::ReplayError::NotFound => ReplayFailure::NotFound,
                        history::ReplayError::Moving => ReplayFailure::Moving,
                        history::ReplayError::Store(e) => ReplayFailure::Store(e.to_string()),
                    }),
            }
        })
    }
}
