//! The per-request pipeline around the warp API, in order:
//!
//! 1. request id (the client's valid `X-Request-Id`, else a new one), a `request` span
//!    carrying it, and the task-local [`RequestContext`] for handlers;
//! 2. CORS preflight answers;
//! 3. rate limits by route group (429 `rate_limited` + `Retry-After`), keyed by the
//!    client address: the peer's, or the one a trusted proxy names ([`super::forwarded`]);
//! 4. the tighter body limit of `/v1/auth/*` by `Content-Length` (413 + `Connection: close`);
//!    for login and register, the body is read (bounded) so the account's attempts are
//!    limited too, and a password-hashing slot is taken (503 `overloaded` when none is
//!    free) and held until the answer;
//! 5. the warp routes (load shedding, handlers, error recovery) under an overall deadline
//!    that also covers reading the body;
//! 6. on the way out: `X-Request-Id`, security headers, CORS headers, request metrics,
//!    and exactly one access-log line (`target: "emporium::access"`) with both the peer
//!    and the client address.
//!
//! A panic anywhere in steps 2 to 5 is caught here: the client gets 500 `internal`
//! (step 6 still runs), `emporium_http_panics_total` counts it, and an error line carries
//! the request id. No panic reaches the connection. Debug builds (and the
//! `fault-injection` feature) have a test hook: a request with `X-Emporium-Fault: panic`
//! panics inside the pipeline.

use super::cors::{Cors, Decision};
use super::forwarded::TrustedProxies;
use super::listener::ConnLimits;
use super::rate_limit::{self, ClientKey, Group, RateLimits};
use super::request_id;
use crate::app::App;
use crate::auth::password::HashSlots;
use crate::http::context::{self, RequestContext};
use crate::http::error::ApiError;
use crate::http::RouteTag;
use futures::FutureExt;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use metrics::{counter, histogram};
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, Method, Request, StatusCode};
use warp::reply::Response;

/// HSTS for two years, subdomains included; sent only when TLS is on.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Time allowed beyond `http.request_timeout_ms` for reading the body, before the
/// whole request is abandoned.
const BODY_ALLOWANCE: Duration = Duration::from_secs(1);

/// The test-only fault hook's header (debug builds and the `fault-injection` feature).
#[cfg(any(debug_assertions, feature = "fault-injection"))]
pub const FAULT_HEADER: &str = "x-emporium-fault";

/// The edge of one listener. Shared by every connection.
pub struct Edge {
    app: App,
    routes: BoxedFilter<(Response,)>,
    limits: Option<Arc<RateLimits>>,
    cors: Option<Cors>,
    tls: bool,
    max_auth_body: u64,
    deadline: Duration,
    trusted: TrustedProxies,
    hashes: HashSlots,
    conn_limits: ConnLimits,
}

impl Edge {
    /// The edge over [`crate::http::routes`]; `tls` switches HSTS on.
    pub fn new(app: &App, tls: bool) -> Self {
        let http = &app.config.http;
        Self {
            app: app.clone(),
            routes: crate::http::server::routes(app),
            limits: RateLimits::new(&app.config.rate_limit).map(Arc::new),
            cors: Cors::new(&http.cors.allowed_origins),
            tls,
            max_auth_body: http.max_auth_body_bytes,
            deadline: Duration::from_millis(http.request_timeout_ms) + BODY_ALLOWANCE,
            trusted: TrustedProxies::new(&http.trusted_proxies),
            hashes: HashSlots::new(app.config.auth.max_concurrent_hashes),
            conn_limits: ConnLimits {
                first_byte: Duration::from_millis(http.first_byte_timeout_ms.max(1)),
                idle: Duration::from_millis(http.idle_timeout_ms.max(1)),
                per_ip: http.max_connections_per_ip.max(1),
            },
        }
    }

    /// `http.trusted_proxies`.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// The connection-level limits for the listener.
    pub fn connection_limits(&self) -> ConnLimits {
        self.conn_limits
    }

    /// The rate limiters, for periodic sweeping (`None` when disabled).
    pub fn limits(&self) -> Option<&Arc<RateLimits>> {
        self.limits.as_ref()
    }

    /// Answers one request from `peer` (the socket's address). Never fails: every error
    /// is a JSON response.
    pub async fn handle<B>(&self, req: Request<B>, peer: IpAddr) -> Response
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let client = self.trusted.client(peer, req.headers());
        let id = request_id::resolve(req.headers().get(request_id::HEADER));
        let ctx = RequestContext::new(id.clone());
        let span = tracing::info_span!("request", request_id = %id);
        let method = req.method().clone();
        let origin = req.headers().get(header::ORIGIN).cloned();
        let work = {
            let ctx = ctx.clone();
            async move {
                let caught = AssertUnwindSafe(self.dispatch(req, client))
                    .catch_unwind()
                    .await;
                let mut resp = caught.unwrap_or_else(|payload| panicked(&*payload, &ctx));
                let who = (peer, client);
                self.finish(&mut resp, &method, origin.as_ref(), started, &ctx, who);
                resp
            }
        };
        context::scope(ctx, work.instrument(span)).await
    }

    /// Everything between the request id and the way out, for a request of `client`.
    async fn dispatch<B>(&self, req: Request<B>, client: IpAddr) -> Response
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        #[cfg(any(debug_assertions, feature = "fault-injection"))]
        if req
            .headers()
            .get(FAULT_HEADER)
            .is_some_and(|v| v.as_bytes() == b"panic")
        {
            panic!("fault hook: {FAULT_HEADER}: panic");
        }
        if let Some(cors) = &self.cors {
            let decision = cors.decide(req.method(), req.headers());
            if decision != Decision::PassOn {
                return cors.preflight(&decision, req.headers().get(header::ORIGIN));
            }
        }
        let group = rate_limit::classify(req.method(), req.uri().path());
        if let Some(limits) = &self.limits {
            if let Some(group) = group {
                let key = self.client_key(&req, client);
                if let Err(wait) = limits.check(group, &key, client) {
                    tracing::debug!(?group, ?wait, "rate limited");
                    return rate_limited(wait);
                }
            }
        }
        if is_auth_path(req.uri().path()) && content_length(&req) > Some(self.max_auth_body) {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body exceeds {} bytes", self.max_auth_body),
            )
            .into_response();
        }
        if group != Some(Group::Auth) {
            return self.api(req).await;
        }
        // Login and register: the account's attempts, then a hashing slot.
        let Some(limits) = &self.limits else {
            return self.with_hash_slot(req).await;
        };
        let (parts, body) = req.into_parts();
        let bytes = match self.read_auth_body(body).await {
            Ok(b) => b,
            Err(resp) => return *resp,
        };
        if let Some(email) = email_of(&bytes) {
            if let Err(wait) = limits.check_account(&email) {
                tracing::debug!(?wait, "account rate limited");
                return rate_limited(wait);
            }
        }
        self.with_hash_slot(Request::from_parts(parts, Full::new(bytes)))
            .await
    }

    /// The API for a request that hashes or verifies a password, holding a hashing
    /// slot; 503 `overloaded` when none is free.
    async fn with_hash_slot<B>(&self, req: Request<B>) -> Response
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let slot = match self.hashes.try_acquire() {
            Ok(slot) => slot,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let resp = self.api(req).await;
        drop(slot);
        resp
    }

    /// The body of a login or register request, at most `http.max_auth_body_bytes`,
    /// within the request deadline.
    async fn read_auth_body<B>(&self, body: B) -> Result<bytes::Bytes, Box<Response>>
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = usize::try_from(self.max_auth_body).unwrap_or(usize::MAX);
        let read = Limited::new(body, limit).collect();
        match tokio::time::timeout(self.deadline, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Box::new(
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body exceeds {} bytes", self.max_auth_body),
                )
                .into_response(),
            )),
            Ok(Err(_)) => Err(Box::new(
                ApiError::validation("the request body could not be read").into_response(),
            )),
            Err(_) => Err(Box::new(abandoned(self.deadline))),
        }
    }

    /// The warp routes under the overall deadline.
    async fn api<B>(&self, req: Request<B>) -> Response
    where
        B: hyper::body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut api = warp::service(self.routes.clone());
        match tokio::time::timeout(self.deadline, api.call(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(never)) => match never {},
            Err(_) => abandoned(self.deadline),
        }
    }

    /// The user id of a valid bearer access token, else the client IP. A verified user
    /// is recorded in the request context right away.
    fn client_key<B>(&self, req: &Request<B>, client: IpAddr) -> ClientKey {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match token.map(|t| self.app.identity.keys.verify(t)) {
            Some(Ok(claims)) => {
                context::set_user(&claims.sub);
                ClientKey::User(claims.sub)
            }
            _ => ClientKey::Ip(rate_limit::ip_key(client)),
        }
    }

    fn finish(
        &self,
        resp: &mut Response,
        method: &Method,
        origin: Option<&HeaderValue>,
        started: Instant,
        ctx: &RequestContext,
        (peer, client): (IpAddr, IpAddr),
    ) {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            h.insert(request_id::HEADER, v);
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if self.tls {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        if let Some(cors) = &self.cors {
            cors.decorate(origin, resp);
        }

        let route = resp
            .extensions()
            .get::<RouteTag>()
            .map_or("unmatched", |t| t.0);
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        let m = method_label(method);
        counter!("emporium_http_requests_total", "route" => route, "method" => m, "status" => status.to_string()).increment(1);
        histogram!("emporium_http_request_duration_seconds", "route" => route, "method" => m)
            .record(elapsed.as_secs_f64());
        tracing::info!(
            target: "emporium::access",
            method = m,
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = %ctx.request_id,
            user_id = ctx.user_id(),
            %peer,
            %client,
            "request"
        );
    }
}

/// The answer to a request abandoned at the edge deadline.
fn abandoned(deadline: Duration) -> Response {
    tracing::warn!(?deadline, "request abandoned at the edge deadline");
    let mut resp = ApiError::unavailable(
        "timeout",
        "the request took too long",
        Duration::from_secs(1),
    )
    .into_response();
    // The body may be half read: the connection cannot be reused.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The `email` of a login or register body, if it has one; anything else is left to
/// the handler to refuse.
fn email_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        email: Option<String>,
    }
    serde_json::from_slice::<Probe>(body).ok()?.email
}

/// The answer to a request whose pipeline panicked: counted, logged with the request
/// id, and a 500 `internal` JSON error (the panic message stays in the log).
fn panicked(payload: &(dyn std::any::Any + Send), ctx: &RequestContext) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    counter!("emporium_http_panics_total").increment(1);
    tracing::error!(
        request_id = %ctx.request_id,
        panic = message,
        "request panicked; answered 500 internal"
    );
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred; the request id is in the X-Request-Id header",
    )
    .into_response()
}

/// Methods as metric labels: the standard ones, everything else as `OTHER` so a client
/// cannot grow the label set.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn is_auth_path(path: &str) -> bool {
    path.starts_with("/v1/auth/") || path == "/v1/auth"
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn rate_limited(wait: Duration) -> Response {
    ApiError {
        retry_after: Some(wait),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry after the time in Retry-After",
        )
    }
    .into_response()
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
