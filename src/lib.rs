pub mod actors;
pub mod cluster;
pub mod domain;
pub mod payment;
pub mod router;
pub mod store;
pub mod supervision;
