//! Probes, metrics and the OpenAPI document: `GET /health/live`, `GET /health/ready`,
//! `GET /metrics`, `GET /openapi.json`. None of them reads a token or a body.

use super::error::ApiError;
use super::routes::{route, Routes};
use super::{json, openapi};
use crate::app::App;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

/// A probe's answer.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Live,
    Ready,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "alive", body = Health)))]
pub async fn health_live(_app: App) -> Result<Response, ApiError> {
    let body = Health {
        status: HealthStatus::Live,
    };
    Ok(json(StatusCode::OK, &body))
}

/// Readiness: recovery has finished and requests can be served.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready", body = Health)))]
pub async fn health_ready(app: App) -> Result<Response, ApiError> {
    if let Some(reason) = app.router.store_failure() {
        return Err(ApiError::store_failed(reason));
    }
    let joined = app.cluster.as_ref().is_none_or(|c| c.map().is_some());
    if app.is_ready() && joined {
        let body = Health {
            status: HealthStatus::Ready,
        };
        Ok(json(StatusCode::OK, &body))
    } else {
        Err(ApiError::unavailable(
            "not_ready",
            "recovery is still running",
            Duration::from_secs(1),
        ))
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "metrics", body = String,
        content_type = "text/plain")))]
pub async fn metrics(app: App) -> Result<Response, ApiError> {
    let mut r = Response::new(app.metrics.render().into());
    r.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(r)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "the OpenAPI document", body = Object)))]
pub async fn openapi_json(app: App) -> Result<Response, ApiError> {
    openapi::serve(app).await
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path};
    let live = route!(
        app,
        "GET /health/live",
        path!("health" / "live").and(end()).and(get()),
        |a| health_live(a)
    );
    let ready = route!(
        app,
        "GET /health/ready",
        path!("health" / "ready").and(end()).and(get()),
        |a| health_ready(a)
    );
    let metrics = route!(
        app,
        "GET /metrics",
        path!("metrics").and(end()).and(get()),
        |a| self::metrics(a)
    );
    let doc = route!(
        app,
        "GET /openapi.json",
        path!("openapi.json").and(end()).and(get()),
        |a| openapi_json(a)
    );
    live.or(ready).or(metrics).or(doc)
}
