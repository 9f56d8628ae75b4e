//! The warp HTTP edge: the v1 JSON API, health and metrics.
//!
//! A request flows edge -> route (path and method) -> extractor filters -> handler ->
//! router. Each resource module owns its routes (`pub fn routes(app) -> Routes`) and its
//! handlers; [`api`] only chains them.
//!
//! - resources: [`health`] (probes, metrics, the document), [`auth`] (register, login,
//!   refresh, logout and the caller's profile and orders), [`catalog`] (products and
//!   inventory), [`images`] (product images), [`categories`] (the category tree), [`locations`] (stock locations), [`transfers`] (stock moved between locations), [`restock_visits`] (a truck's units into a machine), [`carts`], [`checkout`], [`orders`], [`admin`] (roles and the audit
//!   trail), [`machines`], [`vending`] (machine commands and the app purchase),
//!   [`cluster`], [`events`] (the public event feed and the projections, live over SSE
//!   in [`events_sse`]), [`webhooks`]
//!   (endpoints, deliveries and the dead-letter queue), [`notifications`] (the message
//!   history and replays), [`notification_templates`] (saved over the defaults),
//!   [`preferences`] (a shopper's notification choices), [`promotions`] (promotions
//!   and their redemptions), [`coupons`] (a cart's coupon codes), [`reviews`] (reviews,
//!   their moderation and a product's rating).
//! - [`routes`]: [`Routes`] (a boxed filter and its templates), the `route!` builder,
//!   the request timeout and the route tag.
//! - [`filters`]: extractor filters (principal, `staff`/`admin`/`user` roles, typed JSON
//!   bodies) that hand the handler typed values or refuse with the exact `ApiError`.
//! - [`extract`]: validators (ids, SKUs, emails, access) and the raw body and key filters.
//! - [`allow`]: the `Allow` header of a 405, from the route templates.
//! - [`error`]: `ApiError` and the mapping of every failure to a status (one place).
//! - [`dto`]: the request and response types of every resource (serde and
//!   `ToSchema`), built from domain state by their constructors; the error body.
//! - [`idempotency`]: keyed order requests: the `Idempotency-Key` names the order.
//! - [`server`]: the API behind load shedding and error recovery, and `serve`, which
//!   hands it to the edge's listener.
//! - [`context`]: the per-request context (request id, user id).
//! - [`edge`]: request ids, rate limits, CORS, security headers, the access log, and the
//!   accept loop (plain or TLS) with graceful shutdown.
//! - [`openapi`]: the OpenAPI document served at `/openapi.json`.
//!
//! Every request passes a global concurrency limit (503 `overloaded` when full, never
//! an unbounded queue), a per-request timeout, and is counted by route template,
//! method and status.

pub mod admin;
pub mod allow;
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod categories;
pub mod checkout;
pub mod cluster;
pub mod context;
pub mod coupons;
pub mod dto;
pub mod edge;
pub mod error;
pub mod events;
pub mod events_sse;
pub mod extract;
pub mod filters;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod locations;
pub mod machines;
pub mod notification_templates;
pub mod notifications;
pub mod openapi;
pub mod orders;
pub mod preferences;
pub mod promotions;
pub mod restock_visits;
pub mod reviews;
pub mod routes;
pub mod server;
pub mod transfers;
pub mod vending;
pub mod webhooks;

pub use routes::{RouteTag, Routes};
pub use server::{routes, serve};

use crate::app::App;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

/// A JSON response of a DTO.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// Every route of the API, without the global wrappers.
pub fn api(app: &App) -> BoxedFilter<(Response,)> {
    all(app).into_parts().0
}

/// The route templates the API serves, e.g. `GET /v1/carts/{id}`.
pub fn route_templates(app: &App) -> Vec<&'static str> {
    all(app).into_parts().1
}

/// Every resource's routes. Hot shopper routes first: warp tries an `or` chain in
/// order, and every miss costs a rejection and a move of the chain's future (see
/// docs/BENCHMARKS.md).
pub(crate) fn all(app: &App) -> Routes {
    carts::routes(app)
        .or(checkout::routes(app))
        .or(catalog::routes(app))
        .or(orders::routes(app))
        .or(health::routes(app))
        .or(auth::routes(app))
        .or(admin::routes(app))
        .or(machines::routes(app))
        .or(vending::routes(app))
        .or(cluster::routes(app))
        .or(events::routes(app))
        .or(webhooks::routes(app))
        .or(notifications::routes(app))
        .or(notification_templates::routes(app))
        .or(preferences::routes(app))
        .or(promotions::routes(app))
        .or(coupons::routes(app))
        .or(categories::routes(app))
        .or(reviews::routes(app))
        .or(images::routes(app))
        .or(locations::routes(app))
        .or(transfers::routes(app))
        .or(restock_visits::routes(app))
}
