//! The node's view of the webhook endpoint registry ([`crate::domain::webhook`]), an
//! [`EntitySnapshot`]: the queue projection judges by the time its read began whether
//! an endpoint created before an event is certainly in it.

use std::sync::Arc;

use crate::domain::webhook::{Webhooks, REGISTRY_ID};
use crate::events::snapshot::EntitySnapshot;
use crate::router::Router;

/// The registry as last read, and when that read began.
pub type Registry = EntitySnapshot<Webhooks>;

/// The registry's snapshot, empty until its first read.
pub fn registry(router: Router) -> Arc<Registry> {
    EntitySnapshot::new(router, REGISTRY_ID)
}
