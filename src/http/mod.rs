//! The warp HTTP edge: the v1 JSON API, health and metrics.
//!
//! - [`error`]: `ApiError` and the mapping of every failure to a status (one place).
//! - [`extract`]: bounded bodies, ids, operator auth, the idempotency key.
//! - [`catalog`], [`carts`], [`checkout`], [`orders`], [`admin`], [`machines`], [`vending`]:
//!   handlers by resource.
//! - [`idempotency`]: keyed order requests: the `Idempotency-Key` names the order.
//! - [`views`]: the public JSON shapes.
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
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod cluster;
pub mod context;
pub mod edge;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod machines;
pub mod openapi;
pub mod orders;
pub mod server;
pub mod vending;
pub mod views;

pub use server::{routes, serve};

use crate::app::App;
use error::ApiError;
use std::future::Future;
use std::time::Duration;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

/// The route template a response was produced by, for metrics and logs.
#[derive(Clone, Copy, Debug)]
pub struct RouteTag(pub &'static str);

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response_()
}

trait IntoResponse {
    fn into_response_(self) -> Response;
}
impl<T: warp::Reply> IntoResponse for T {
    fn into_response_(self) -> Response {
        self.into_response()
    }
}

/// Runs a handler under the request timeout and tags the response with its route.
async fn run<F>(route: &'static str, timeout: Duration, fut: F) -> Response
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let mut resp = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::unavailable(
            "timeout",
            "the request took too long",
            Duration::from_secs(1),
        )
        .into_response(),
    };
    resp.extensions_mut().insert(RouteTag(route));
    resp
}

fn with_app(app: App) -> impl Filter<Extract = (App,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

macro_rules! route {
    ($names:ident, $app:expr, $name:literal, $filter:expr, |$($arg:ident),*| $handler:expr) => {{
        $names.push($name);
        let timeout = Duration::from_millis($app.config.http.request_timeout_ms);
        $filter
            .and(with_app($app.clone()))
            .then(move |$($arg),*| run($name, timeout, $handler))
            .boxed()
    }};
}
pub(crate) use route;

async fn live(_app: App) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &serde_json::json!({"status": "live"})))
}

async fn ready(app: App) -> Result<Response, ApiError> {
    if let Some(reason) = app.router.store_failure() {
        return Err(ApiError::store_failed(reason));
    }
    let joined = app.cluster.as_ref().is_none_or(|c| c.map().is_some());
    if app.is_ready() && joined {
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({"status": "ready"}),
        ))
    } else {
        Err(ApiError::unavailable(
            "not_ready",
            "recovery is still running",
            Duration::from_secs(1),
        ))
    }
}

async fn metrics_text(app: App) -> Result<Response, ApiError> {
    let mut r = Response::new(app.metrics.render().into());
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(r)
}

/// Every route of the API, without the global wrappers.
pub fn api(app: &App) -> BoxedFilter<(Response,)> {
    api_and_templates(app).0
}

/// The route templates the API serves, e.g. `GET /v1/carts/{id}`.
pub fn route_templates(app: &App) -> Vec<&'static str> {
    api_and_templates(app).1
}

fn api_and_templates(app: &App) -> (BoxedFilter<(Response,)>, Vec<&'static str>) {
    use warp::path::end;
    use warp::{delete, get, patch, path, post, put};
    let mut n: Vec<&'static str> = Vec::new();
    let limit = app.config.http.max_body_bytes;
    let auth_limit = app.config.http.max_auth_body_bytes;
    let who = || extract::principal(app.identity.clone());
    let body = move || extract::body_bytes(limit);
    let small = move || extract::body_bytes(auth_limit);

    let live = route!(
        n,
        app,
        "GET /health/live",
        path!("health" / "live").and(end()).and(get()),
        |a| live(a)
    );
    let ready = route!(
        n,
        app,
        "GET /health/ready",
        path!("health" / "ready").and(end()).and(get()),
        |a| ready(a)
    );
    let metrics_route = route!(
        n,
        app,
        "GET /metrics",
        path!("metrics").and(end()).and(get()),
        |a| metrics_text(a)
    );
    let openapi_route = route!(
        n,
        app,
        "GET /openapi.json",
        path!("openapi.json").and(end()).and(get()),
        |a| openapi::serve(a)
    );

    let register = route!(
        n,
        app,
        "POST /v1/auth/register",
        path!("v1" / "auth" / "register")
            .and(end())
            .and(post())
            .and(small()),
        |b, a| auth::register(a, b)
    );
    let login = route!(
        n,
        app,
        "POST /v1/auth/login",
        path!("v1" / "auth" / "login")
            .and(end())
            .and(post())
            .and(small()),
        |b, a| auth::login(a, b)
    );
    let refresh = route!(
        n,
        app,
        "POST /v1/auth/refresh",
        path!("v1" / "auth" / "refresh")
            .and(end())
            .and(post())
            .and(small()),
        |b, a| auth::refresh_tokens(a, b)
    );
    let logout = route!(
        n,
        app,
        "POST /v1/auth/logout",
        path!("v1" / "auth" / "logout")
            .and(end())
            .and(post())
            .and(small()),
        |b, a| auth::logout(a, b)
    );
    let me = route!(
        n,
        app,
        "GET /v1/me",
        path!("v1" / "me").and(end()).and(get()).and(who()),
        |p, a| auth::me(a, p)
    );
    let update_me = route!(
        n,
        app,
        "PATCH /v1/me",
        path!("v1" / "me")
            .and(end())
            .and(patch())
            .and(who())
            .and(small()),
        |p, b, a| auth::update_me(a, p, b)
    );
    let my_orders = route!(
        n,
        app,
        "GET /v1/me/orders",
        path!("v1" / "me" / "orders")
            .and(end())
            .and(get())
            .and(who())
            .and(warp::query::<auth::PageQuery>()),
        |p, q, a| auth::my_orders(a, p, q)
    );
    let set_roles = route!(
        n,
        app,
        "PUT /v1/admin/users/{user_id}/roles",
        path!("v1" / "admin" / "users" / String / "roles")
            .and(end())
            .and(put())
            .and(who())
            .and(small()),
        |id, p, b, a| auth::set_roles(a, id, p, b)
    );

    let put_product = route!(
        n,
        app,
        "PUT /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(put())
            .and(who())
            .and(body()),
        |sku, p, b, a| catalog::put_product(a, sku, p, b)
    );
    let list_products = route!(
        n,
        app,
        "GET /v1/products",
        path!("v1" / "products")
            .and(end())
            .and(get())
            .and(warp::query::<catalog::ListQuery>()),
        |q, a| catalog::list_products(a, q)
    );
    let get_product = route!(
        n,
        app,
        "GET /v1/products/{sku}",
        path!("v1" / "products" / String).and(end()).and(get()),
        |sku, a| catalog::get_product(a, sku)
    );
    let archive_product = route!(
        n,
        app,
        "DELETE /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(delete())
            .and(who()),
        |sku, p, a| catalog::archive_product(a, sku, p)
    );
    let adjust = route!(
        n,
        app,
        "POST /v1/inventory/{sku}/adjustments",
        path!("v1" / "inventory" / String / "adjustments")
            .and(end())
            .and(post())
            .and(who())
            .and(body()),
        |sku, p, b, a| catalog::adjust(a, sku, p, b)
    );
    let inventory = route!(
        n,
        app,
        "GET /v1/inventory/{sku}",
        path!("v1" / "inventory" / String).and(end()).and(get()),
        |sku, a| catalog::get_inventory(a, sku)
    );

    let create_cart = route!(
        n,
        app,
        "POST /v1/carts",
        path!("v1" / "carts").and(end()).and(post()).and(who()),
        |p, a| carts::create(a, p)
    );
    let get_cart = route!(
        n,
        app,
        "GET /v1/carts/{id}",
        path!("v1" / "carts" / String)
            .and(end())
            .and(get())
            .and(who()),
        |id, p, a| carts::get(a, id, p)
    );
    let add_item = route!(
        n,
        app,
        "POST /v1/carts/{id}/items",
        path!("v1" / "carts" / String / "items")
            .and(end())
            .and(post())
            .and(who())
            .and(body()),
        |id, p, b, a| carts::add_item(a, id, p, b)
    );
    let set_item = route!(
        n,
        app,
        "PUT /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(put())
            .and(who())
            .and(body()),
        |id, sku, p, b, a| carts::set_item(a, id, sku, p, b)
    );
    let remove_item = route!(
        n,
        app,
        "DELETE /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(delete())
            .and(who()),
        |id, sku, p, a| carts::remove_item(a, id, sku, p)
    );
    let claim = route!(
        n,
        app,
        "POST /v1/carts/{id}/claim",
        path!("v1" / "carts" / String / "claim")
            .and(end())
            .and(post())
            .and(who()),
        |id, p, a| carts::claim(a, id, p)
    );
    let checkout = route!(
        n,
        app,
        "POST /v1/carts/{id}/checkout",
        path!("v1" / "carts" / String / "checkout")
            .and(end())
            .and(post())
            .and(who())
            .and(extract::idempotency_key())
            .and(body()),
        |id, p, key, b, a| checkout::checkout(a, id, p, key, b)
    );

    let get_order = route!(
        n,
        app,
        "GET /v1/orders/{id}",
        path!("v1" / "orders" / String)
            .and(end())
            .and(get())
            .and(who()),
        |id, p, a| orders::get(a, id, p)
    );
    let cancel = route!(
        n,
        app,
        "POST /v1/orders/{id}/cancel",
        path!("v1" / "orders" / String / "cancel")
            .and(end())
            .and(post())
            .and(who()),
        |id, p, a| orders::cancel(a, id, p)
    );
    let fulfil = route!(
        n,
        app,
        "POST /v1/orders/{id}/fulfil",
        path!("v1" / "orders" / String / "fulfil")
            .and(end())
            .and(post())
            .and(who()),
        |id, p, a| orders::fulfil(a, id, p)
    );
    let refund = route!(
        n,
        app,
        "POST /v1/orders/{id}/refund",
        path!("v1" / "orders" / String / "refund")
            .and(end())
            .and(post())
            .and(who()),
        |id, p, a| orders::refund(a, id, p)
    );
    let events = route!(
        n,
        app,
        "GET /v1/admin/entities/{kind}/{id}/events",
        path!("v1" / "admin" / "entities" / String / String / "events")
            .and(end())
            .and(get())
            .and(who())
            .and(warp::query::<admin::EventsQuery>()),
        |kind, id, p, q, a| admin::entity_events(a, kind, id, p, q)
    );

    // Hot shopper routes first: warp tries an `or` chain in order, and every miss costs
    // a rejection and a move of the chain's future (see docs/BENCHMARKS.md).
    let filter = get_cart
        .or(add_item)
        .unify()
        .or(create_cart)
        .unify()
        .or(checkout)
        .unify()
        .or(get_product)
        .unify()
        .or(list_products)
        .unify()
        .or(inventory)
        .unify()
        .or(get_order)
        .unify()
        .or(set_item)
        .unify()
        .or(remove_item)
        .unify()
        .or(claim)
        .unify()
        .or(live)
        .unify()
        .or(ready)
        .unify()
        .or(metrics_route)
        .unify()
        .or(openapi_route)
        .unify()
        .or(register)
        .unify()
        .or(login)
        .unify()
        .or(refresh)
        .unify()
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .or(update_me)
        .unify()
        .or(my_orders)
        .unify()
        .or(set_roles)
        .unify()
        .or(put_product)
        .unify()
        .or(archive_product)
        .unify()
        .or(adjust)
        .unify()
        .or(cancel)
        .unify()
        .or(fulfil)
        .unify()
        .or(refund)
        .unify()
        .or(events)
        .unify()
        .or(machines::routes(app, &mut n))
        .unify()
        .or(cluster::routes(app, &mut n))
        .unify()
        .boxed();
    (filter, n)
}
