//! The warp side of the edge and the entry point of the listener.
//!
//! - [`routes`]: load shedding (503 `overloaded`, never a queue), the API, and error
//!   recovery into the JSON error shape. Everything around it (request ids, rate
//!   limits, CORS, security headers, metrics, the access log, TLS) is in
//!   [`super::edge`].
//! - [`serve`]: runs the edge on a bound listener until the shutdown future resolves,
//!   then lets in-flight requests finish for at most `http.shutdown_grace_ms`.

use super::all;
use super::allow::AllowTable;
use super::edge::{listener, tls, Edge};
use super::error::{self, Shed};
use crate::app::App;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// Load shedding, the API and error recovery, as one warp filter; a 405 carries
/// `Allow`.
pub fn routes(app: &App) -> BoxedFilter<(Response,)> {
    let (api, templates) = all(app).into_parts();
    let allow = Arc::new(AllowTable::new(&templates));
    let permits = Arc::new(Semaphore::new(app.config.http.max_in_flight.max(1)));
    let shed = warp::any().and_then(move || {
        let permits = permits.clone();
        async move {
            permits
                .try_acquire_owned()
                .map_err(|_| warp::reject::custom(Shed))
        }
    });
    let served = shed
        .and(api)
        .map(
            |permit: tokio::sync::OwnedSemaphorePermit, resp: Response| {
                drop(permit);
                resp
            },
        )
        .recover(error::recover)
        .unify();
    warp::path::full()
        .and(served)
        .map(move |path: warp::path::FullPath, resp: Response| allow.apply(path.as_str(), resp))
        .boxed()
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
/// `http.shutdown_grace_ms`. TLS is on when `http.tls` names a certificate and a key;
/// an unusable TLS configuration is an error before anything is served.
pub async fn serve(
    app: &App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls::load(&app.config.http.tls)?;
    if acceptor.is_some() {
        tracing::info!("TLS is on");
    }
    let edge = Arc::new(Edge::new(app, acceptor.is_some()));
    let grace = Duration::from_millis(app.config.http.shutdown_grace_ms);
    listener::run(edge, listener, acceptor, shutdown, grace).await;
    Ok(())
}
