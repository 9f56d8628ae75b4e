//! The warp HTTP edge: the v1 JSON API, health and metrics.
//!
//! - [`error`]: `ApiError` and the mapping of every failure to a status (one place).
//! - [`extract`]: bounded bodies, ids, operator auth, the idempotency key.
//! - [`catalog`], [`carts`], [`checkout`], [`orders`], [`admin`]: handlers by resource.
//! - [`views`]: the public JSON shapes.
//!
//! Every request passes a global concurrency limit (503 `overloaded` when full, never
//! an unbounded queue), a per-request timeout, and is counted by route template,
//! method and status.

pub mod admin;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod error;
pub mod extract;
pub mod orders;
pub mod views;

use crate::app::App;
use error::{ApiError, Shed};
use metrics::{counter, histogram};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
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
    ($app:expr, $name:literal, $filter:expr, |$($arg:ident),*| $handler:expr) => {{
        let timeout = Duration::from_millis($app.config.http.request_timeout_ms);
        $filter
            .and(with_app($app.clone()))
            .then(move |$($arg),*| run($name, timeout, $handler))
            .boxed()
    }};
}

async fn live(_app: App) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &serde_json::json!({"status": "live"})))
}

async fn ready(app: App) -> Result<Response, ApiError> {
    if app.is_ready() {
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
    use warp::path::end;
    use warp::{delete, get, path, post, put};
    let limit = app.config.http.max_body_bytes;
    let op = || extract::operator(app.admin_token.clone());
    let body = move || extract::body_bytes(limit);

    let live = route!(
        app,
        "GET /health/live",
        path!("health" / "live").and(end()).and(get()),
        |a| live(a)
    );
    let ready = route!(
        app,
        "GET /health/ready",
        path!("health" / "ready").and(end()).and(get()),
        |a| ready(a)
    );
    let metrics_route = route!(
        app,
        "GET /metrics",
        path!("metrics").and(end()).and(get()),
        |a| metrics_text(a)
    );

    let put_product = route!(
        app,
        "PUT /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(put())
            .and(op())
            .and(body()),
        |sku, auth, b, a| catalog::put_product(a, sku, auth, b)
    );
    let list_products = route!(
        app,
        "GET /v1/products",
        path!("v1" / "products")
            .and(end())
            .and(get())
            .and(warp::query::<catalog::ListQuery>()),
        |q, a| catalog::list_products(a, q)
    );
    let get_product = route!(
        app,
        "GET /v1/products/{sku}",
        path!("v1" / "products" / String).and(end()).and(get()),
        |sku, a| catalog::get_product(a, sku)
    );
    let archive_product = route!(
        app,
        "DELETE /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(delete())
            .and(op()),
        |sku, auth, a| catalog::archive_product(a, sku, auth)
    );
    let adjust = route!(
        app,
        "POST /v1/inventory/{sku}/adjustments",
        path!("v1" / "inventory" / String / "adjustments")
            .and(end())
            .and(post())
            .and(op())
            .and(body()),
        |sku, auth, b, a| catalog::adjust(a, sku, auth, b)
    );
    let inventory = route!(
        app,
        "GET /v1/inventory/{sku}",
        path!("v1" / "inventory" / String).and(end()).and(get()),
        |sku, a| catalog::get_inventory(a, sku)
    );

    let create_cart = route!(
        app,
        "POST /v1/carts",
        path!("v1" / "carts").and(end()).and(post()),
        |a| carts::create(a)
    );
    let get_cart = route!(
        app,
        "GET /v1/carts/{id}",
        path!("v1" / "carts" / String).and(end()).and(get()),
        |id, a| carts::get(a, id)
    );
    let add_item = route!(
        app,
        "POST /v1/carts/{id}/items",
        path!("v1" / "carts" / String / "items")
            .and(end())
            .and(post())
            .and(body()),
        |id, b, a| carts::add_item(a, id, b)
    );
    let set_item = route!(
        app,
        "PUT /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(put())
            .and(body()),
        |id, sku, b, a| carts::set_item(a, id, sku, b)
    );
    let remove_item = route!(
        app,
        "DELETE /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(delete()),
        |id, sku, a| carts::remove_item(a, id, sku)
    );
    let checkout = route!(
        app,
        "POST /v1/carts/{id}/checkout",
        path!("v1" / "carts" / String / "checkout")
            .and(end())
            .and(post())
            .and(extract::idempotency_key())
            .and(body()),
        |id, key, b, a| checkout::checkout(a, id, key, b)
    );

    let get_order = route!(
        app,
        "GET /v1/orders/{id}",
        path!("v1" / "orders" / String).and(end()).and(get()),
        |id, a| orders::get(a, id)
    );
    let cancel = route!(
        app,
        "POST /v1/orders/{id}/cancel",
        path!("v1" / "orders" / String / "cancel")
            .and(end())
            .and(post()),
        |id, a| orders::cancel(a, id)
    );
    let fulfil = route!(
        app,
        "POST /v1/orders/{id}/fulfil",
        path!("v1" / "orders" / String / "fulfil")
            .and(end())
            .and(post())
            .and(op()),
        |id, auth, a| orders::fulfil(a, id, auth)
    );
    let refund = route!(
        app,
        "POST /v1/orders/{id}/refund",
        path!("v1" / "orders" / String / "refund")
            .and(end())
            .and(post())
            .and(op()),
        |id, auth, a| orders::refund(a, id, auth)
    );
    let events = route!(
        app,
        "GET /v1/admin/entities/{kind}/{id}/events",
        path!("v1" / "admin" / "entities" / String / String / "events")
            .and(end())
            .and(get())
            .and(op())
            .and(warp::query::<admin::EventsQuery>()),
        |kind, id, auth, q, a| admin::entity_events(a, kind, id, auth, q)
    );

    live.or(ready)
        .unify()
        .or(metrics_route)
        .unify()
        .or(put_product)
        .unify()
        .or(list_products)
        .unify()
        .or(get_product)
        .unify()
        .or(archive_product)
        .unify()
        .or(adjust)
        .unify()
        .or(inventory)
        .unify()
        .or(create_cart)
        .unify()
        .or(get_cart)
        .unify()
        .or(add_item)
        .unify()
        .or(set_item)
        .unify()
        .or(remove_item)
        .unify()
        .or(checkout)
        .unify()
        .or(get_order)
        .unify()
        .or(cancel)
        .unify()
        .or(fulfil)
        .unify()
        .or(refund)
        .unify()
        .or(events)
        .unify()
        .boxed()
}

/// The full edge: load shedding, the API, error recovery, metrics and the access log.
pub fn routes(app: &App) -> BoxedFilter<(Response,)> {
    let permits = Arc::new(Semaphore::new(app.config.http.max_in_flight));
    let shed = warp::any().and_then(move || {
        let permits = permits.clone();
        async move {
            permits
                .try_acquire_owned()
                .map_err(|_| warp::reject::custom(Shed))
        }
    });
    let api = api(app);
    warp::any()
        .map(Instant::now)
        .and(warp::method())
        .and(
            shed.and(api)
                .map(|permit: tokio::sync::OwnedSemaphorePermit, resp: Response| {
                    drop(permit);
                    resp
                })
                .recover(error::recover)
                .unify(),
        )
        .map(|started: Instant, method: warp::http::Method, mut resp: Response| {
            let route = resp.extensions().get::<RouteTag>().map_or("unmatched", |t| t.0);
            let status = resp.status().as_u16();
            let elapsed = started.elapsed();
            let m = method.as_str().to_owned();
            counter!("emporium_http_requests_total", "route" => route, "method" => m.clone(), "status" => status.to_string()).increment(1);
            histogram!("emporium_http_request_duration_seconds", "route" => route, "method" => m).record(elapsed.as_secs_f64());
            tracing::debug!(target: "emporium::access", %method, route, status, latency_us = elapsed.as_micros() as u64, "request");
            resp.headers_mut().insert("x-content-type-options", warp::http::HeaderValue::from_static("nosniff"));
            resp
        })
        .boxed()
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
/// `grace`.
pub async fn serve(
    app: &App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let grace = Duration::from_millis(app.config.http.shutdown_grace_ms);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = warp::serve(routes(app))
        .incoming(listener)
        .graceful(async move {
            let _ = stop_rx.await;
        });
    let mut task = tokio::spawn(server.run());
    tokio::select! {
        _ = &mut task => return,
        _ = shutdown => {}
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop_tx.send(());
    if tokio::time::timeout(grace, &mut task).await.is_err() {
        tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
        task.abort();
    }
}
