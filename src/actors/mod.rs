//! The ractor shell around an aggregate.
//!
//! - [`entity`]: the generic entity actor: recover from the journal, decide, persist
//!   (and wait for the fsync), apply, reply; run side effects; passivate when idle.
//! - [`admission`]: the per-entity bound on messages in flight, and the ticket that
//!   drops a message whose caller's deadline passed before it started.
//! - [`behavior`]: the per-kind hooks an entity actor calls (side effects, timers,
//!   indexes, projections). Domain logic stays in `crate::domain`.
//! - [`client`]: the narrow way a behavior reaches another entity ([`EntityClient`],
//!   which the router implements), and its typed failure ([`RouteError`]).
//! - [`unavailable`]: the typed kinds of "the entity cannot serve this" (503 codes).
//! - [`order_saga`]: the order's behavior: performs each saga step at the edge.
//! - [`catalog`]: the in-memory product listing, fed by the product actors.
//! - [`machine`]: the vending machine's behavior: timers, the order outbox, the session push.
//! - [`vending_steps`]: the order saga's steps at a vending machine.
//! - [`reviews`]: the review's listing index entries.
//! - [`promotion_steps`]: pricing a cart (shared by the cart view and the checkout) and
//!   the order saga's promotion steps (price, reserve, consume, release).
//!
//! Layering: `actors` sits below `supervision` and `router` and imports neither
//! (`layering_tests.rs` holds it): it reaches entities through [`EntityClient`] and
//! asks to passivate through [`entity::Slots`]; time comes from `crate::clock`.

pub mod admission;
pub mod behavior;
pub mod catalog;
pub mod client;
pub mod entity;
pub mod machine;
pub mod order_saga;
pub mod promotion_steps;
pub mod reviews;
pub mod unavailable;
pub mod vending_steps;

pub use behavior::{Behavior, Effects, NoBehavior};
pub use client::{Applied, CommandReply, EntityClient, RouteError};
pub use entity::{EntityActor, EntityMsg};

#[cfg(test)]
mod layering_tests;
