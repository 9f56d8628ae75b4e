//! Per-kind hooks of an entity actor. Each returns data or a future; the actor decides
//! when to call it. Nothing here changes entity state except through commands.

use super::client::EntityClient;
use crate::clock::Clock;
use crate::domain::{Aggregate, Millis};
use crate::store::IndexOp;
use futures::future::BoxFuture;
use std::sync::Arc;

/// What a side effect may use, handed to it by the entity shell: the way to other
/// entities and the kind's clock. Cheap to clone.
#[derive(Clone)]
pub struct Effects {
    pub client: Arc<dyn EntityClient>,
    pub clock: Arc<dyn Clock>,
}

/// What an entity actor asks of its kind, beyond `decide`/`apply`.
pub trait Behavior<A: Aggregate>: Send + Sync + 'static {
    /// The next side effect to run, as a future yielding the command that reports its
    /// outcome. `None` from the future means "try again later". At most one effect per
    /// entity runs at a time. `effects` is how it reaches other entities, and its clock.
    fn next_effect(
        &self,
        _id: &str,
        _state: &A::State,
        _effects: &Effects,
    ) -> Option<BoxFuture<'static, Option<A::Command>>> {
        None
    }

    /// When the entity wants a timer command (wall-clock ms), if ever.
    fn next_wakeup(&self, _state: &A::State) -> Option<Millis> {
        None
    }

    /// The command to run when the timer fires.
    fn on_wakeup(&self, _state: &A::State, _now: Millis) -> Option<A::Command> {
        None
    }

    /// Index changes to write in the same batch as these events.
    fn index_ops(&self, _id: &str, _events: &[A::Event], _after: &A::State) -> Vec<IndexOp> {
        vec![]
    }

    /// Called after events are durable (projections, metrics).
    fn on_persisted(&self, _id: &str, _events: &[A::Event], _after: &A::State) {}

    /// Whether callers waiting for the entity to settle may be answered.
    fn is_settled(&self, _state: &A::State) -> bool {
        true
    }
}

/// A kind with no hooks.
pub struct NoBehavior;
impl<A: Aggregate> Behavior<A> for NoBehavior {}
