//! The ractor shell around an aggregate.
//!
//! - [`entity`]: the generic entity actor: recover from the journal, decide, persist
//!   (and wait for the fsync), apply, reply; run side effects; passivate when idle.
//! - [`admission`]: the per-entity bound on messages in flight, and the ticket that
//!   drops a message whose caller's deadline passed before it started.
//! - [`behavior`]: the per-kind hooks an entity actor calls (side effects, timers,
//!   indexes, projections). Domain logic stays in `crate::domain`.
//! - [`order_saga`]: the order's behavior: performs each saga step at the edge.
//! - [`catalog`]: the in-memory product listing, fed by the product actors.
//! - [`machine`]: the vending machine's behavior: timers, the order outbox, the session push.
//! - [`vending_steps`]: the order saga's steps at a vending machine.

pub mod admission;
pub mod behavior;
pub mod catalog;
pub mod entity;
pub mod machine;
pub mod order_saga;
pub mod vending_steps;

pub use behavior::{Behavior, NoBehavior};
pub use entity::{Applied, CommandReply, EntityActor, EntityMsg};
