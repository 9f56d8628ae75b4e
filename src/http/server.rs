//! The edge around the API: load shedding, error recovery, request metrics, the access
//! log, and the listener with graceful shutdown.

use super::error::{self, Shed};
use super::{api, RouteTag};
use crate::app::App;
use metrics::{counter, histogram};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

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
