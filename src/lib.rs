//! emporium: a commerce runtime of durable, supervised entity actors.
//!
//! # Layout
//! - [`clock`]: the wall clock (`Clock`, system and manual), injected where tests drive
//!   time, and RFC 3339 formatting; imports nothing of the crate.
//! - [`domain`]: pure state machines (`decide`/`apply`) for every entity; no IO.
//! - [`store`]: the sled journal, keyed by partition (events, snapshots, indexes and a
//!   log per partition, with the projections' offsets and records), the partition verbs
//!   handoff and the projections use, group commit and the codec.
//! - [`actors`]: the ractor shell around an aggregate: recover, decide, persist, reply;
//!   behaviors reach other entities through its `EntityClient` trait only.
//! - [`supervision`]: the registry, per-kind supervisors, restart backoff, quarantine.
//! - [`router`]: addresses entities by `(kind, id)`; the only way callers reach an actor,
//!   and the `EntityClient` every kind it hosts is given. Imports flow down this list
//!   from `router` to `supervision` to `actors`, never back up.
//! - [`auth`]: principals, JWT access tokens, refresh tokens, password hashing.
//! - [`events`]: the public event catalogue derived from the partition logs (and its JSON
//!   Schemas), and the projection runner with durable per-partition offsets and its
//!   projections: the `feed`, signed webhook deliveries with retries and a dead-letter
//!   queue ([`events::webhooks`], sent only where [`events::target`] allows), and
//!   notifications by email, SMS and Web Push, as each shopper's preferences choose
//!   ([`events::notify`]).
//! - [`payment`]: the payment gateway trait and its Stripe-like simulator.
//! - [`media`]: product images, checked and stored content-addressed through
//!   `object_store` (the local filesystem, fsync'd, or any S3 API).
//! - [`http`]: the warp edge; the one place rejections become HTTP statuses.
//! - [`app`]: configuration, start-up (recovery, resuming sagas), shutdown.
//! - [`cluster`]: the seam where partitions and remote nodes will plug into the router.
//! - [`telemetry`]: tracing and Prometheus metrics.
//! - [`grpc`]: the vending machine gateway (`emporium.vending.v1`), health and reflection.
//! - [`sim`]: `emporium vm-sim`, a tonic client simulating many vending machines.
//! - [`fuzzing`]: the decoders of outside bytes as fuzz targets, and their seed corpus.
//! - [`chaos`]: `emporium chaos`, the kill -9 harness: a load with a ledger, and its checker.

pub mod actors;
pub mod app;
pub mod auth;
pub mod chaos;
pub mod clock;
pub mod cluster;
pub mod domain;
pub mod events;
pub mod fuzzing;
pub mod grpc;
pub mod http;
pub mod loadgen;
pub mod media;
pub mod payment;
pub mod router;
pub mod sim;
pub mod store;
pub mod supervision;
pub mod telemetry;
