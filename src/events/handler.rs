//! The seam between the projection runner and what reacts to public events: webhooks,
//! notifications and (later) read models each implement [`EventHandler`]. The runner
//! calls `handle` for every event of a partition in order and stores the partition's
//! offset only after it returns `Ok`, so delivery is at least once; a handler makes it
//! effectively once by keying what it writes on [`PublicEvent::id`].

use futures::future::BoxFuture;

use super::public::PublicEvent;
use crate::store::partition_store::Record;

/// Why a handler could not take an event now. Every error but `NotYet` is retried by the
/// runner with backoff (the offset does not move), so a handler never loses an event by failing.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// What the handler needs (an entity, a partition, a node) is unavailable now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The store refused a write (fail-stop applies: the runner stops this projection).
    #[error("storage: {0}")]
    Storage(String),
    /// Not a failure: the event is newer than what the handler can judge it by yet (the
    /// webhooks projection's endpoint list was read before the event was committed). The
    /// runner stores what came before it and takes the partition up again on its next
    /// pass, with no backoff.
    #[error("the event is newer than the handler's view; next pass")]
    NotYet,
}

/// A reaction to public events, run by one projection.
pub trait EventHandler: Send + Sync + 'static {
    /// The projection's name: the key of its offsets, stable across versions.
    fn name(&self) -> &'static str;

    /// Takes one event and answers the records this projection keeps in the event's
    /// partition for it (their keys are the projection's own; the store prefixes them).
    /// They are written in the same atomic batch as the offset that covers the event, so
    /// they are exactly once. Must be idempotent by `ev.id`, and must not wait on an
    /// outside system (an SMTP server, a webhook endpoint): delivery happens elsewhere,
    /// bounded per target. It may read entities through the router (a shopper's
    /// preferences), within the router's deadline.
    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>>;
}
