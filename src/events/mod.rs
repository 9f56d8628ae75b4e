//! Events out: the public event catalogue ([`public`]) derived from the partition logs
//! by the pure mapping in [`catalogue`], and (as they land) the projections that react
//! to it: webhooks (signed per [`signing`], retried per [`retry`]) and notifications
//! ([`notify`]: email, SMS and Web Push), and each product's rating from its approved
//! reviews ([`ratings`]), and each SKU's units at a vending machine from the machine's
//! sales ([`machine_stock`]); [`replays`] queues dead letters again on the node that owns
//! them.
//! [`schema`] holds the JSON Schemas of the catalogue the OpenAPI document publishes.

pub mod catalogue;
pub mod catalogue_kinds;
pub mod catalogue_machines;
pub mod feed;
pub mod handler;
pub mod in_flight;
pub mod machine_stock;
pub mod notify;
pub mod public;
pub mod ratings;
pub mod replays;
pub mod retry;
pub mod runner;
pub mod schema;
pub mod signing;
pub mod snapshot;
pub mod source;
pub mod target;
pub mod webhooks;

pub use handler::{EventHandler, HandlerError};
pub use public::{EventType, PublicEvent, SCHEMA_VERSION};
