//! Events out: the public event catalogue ([`public`]) derived from the partition logs,
//! and (as they land) the projections that react to it: webhooks and notifications.

pub mod handler;
pub mod public;

pub use handler::{EventHandler, HandlerError};
pub use public::{EventType, PublicEvent, SCHEMA_VERSION};
