//! The cluster: partitioned ownership of entities over ractor_cluster.
//!
//! - [`partition_of`] (from [`crate::store::partition`]): the entity → partition hash;
//! - [`map`], [`placement`]: the versioned cluster map and its balanced, fewest-moves
//!   changes; [`paxos`], [`propose`]: agreement on each epoch by a majority;
//! - [`transport`], [`wire`]: the node server, our listener and dialer, the one
//!   remote-capable agent per node and the versioned protocol;
//! - [`node`], [`runtime`], [`detector`]: this node's view (map, health, quorum,
//!   partition gates), heartbeats, joins and the handling of peer requests;
//! - [`handoff`]: moving a partition's data to its next owner;
//! - [`cli`], [`config`]: `emporium cluster ...` and `[cluster]`.
//!
//! `docs/ARCHITECTURE.md` explains why at most one node writes a partition.

pub mod cli;
pub mod config;
pub mod detector;
pub mod handoff;
pub mod map;
pub mod node;
pub mod paxos;
pub mod placement;
pub mod propose;
pub mod runtime;
pub mod transport;
pub mod wire;

pub use node::{Cluster, Placement};

pub use crate::store::partition::partition_of;
