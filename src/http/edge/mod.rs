//! The production HTTP edge around the warp API: everything between the socket and the
//! routes.
//!
//! - [`listener`]: our own hyper-util accept loop (plain or TLS), bounded connections
//!   (global and [`per_ip`]), first-byte, handshake, header and idle timeouts, HTTP/2
//!   keep-alive, graceful shutdown.
//! - [`forwarded`]: the client address behind trusted proxies (`Forwarded`,
//!   `X-Forwarded-For`).
//! - [`tls`]: the rustls acceptor from `http.tls`.
//! - [`pipeline`]: the per-request pipeline ([`Edge`]): request id and span, CORS, rate
//!   limits, auth body limit, per-account attempts and hashing slots of login and
//!   register, the API under a deadline, panics caught as 500, security headers,
//!   metrics and the access log.
//! - [`rate_limit`]: governor keyed limiters by route group.
//! - [`cors`]: the CORS policy from `http.cors.allowed_origins`.
//! - [`request_id`]: accepting or generating `X-Request-Id`.

pub mod cors;
pub mod forwarded;
pub mod listener;
pub mod per_ip;
pub mod pipeline;
pub mod rate_limit;
pub mod request_id;
pub mod tls;

pub use pipeline::Edge;
