//! Supervision: who owns which live actor, and what happens when one stops or fails.
//!
//! - [`registry`]: the per-kind map from entity id to its slot (active, activating,
//!   stopping, restarting, quarantined). The single point that guarantees one live actor
//!   per `(kind, id)` on this node.
//! - [`kind`]: a kind's runtime: activation on first message, and the kind supervisor
//!   that restarts failed entities with exponential backoff and quarantines an entity
//!   past its restart-intensity limit.
//! - [`policy`]: restart backoff and intensity settings.

pub mod kind;
pub mod policy;
pub mod registry;

pub use kind::{KindRuntime, KindSupervisor};
pub use policy::RestartPolicy;
