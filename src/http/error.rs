//! The one place where failures become HTTP statuses. Every error body is
//! `{"error":{"code":"snake_case","message":"..."}}`; 503 and 504 carry `Retry-After`.
//! A listing some partitions could not answer is 503 `partition_unavailable` whose
//! error also names them: `"partitions": [3, 17]`.

use super::dto::{ErrorBody, ErrorDetail};
use crate::domain::{Rejection, RejectionCode};
use crate::router::listing::{ListingError, ReadFailure};
use crate::router::{RouteError, UnavailableKind};
use std::time::Duration;
use warp::http::{header, StatusCode};
use warp::reply::Response;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// The partitions that could not answer (503 `partition_unavailable` of a listing).
    pub partitions: Option<Vec<u32>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            partitions: None,
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation", message)
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after: Duration,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
    /// The store failed (fail-stop): no write is acknowledged until the node restarts.
    pub fn store_failed(reason: impl std::fmt::Display) -> Self {
        Self::unavailable(
            "store_failed",
            format!("the store failed and accepts no writes until this node restarts: {reason}"),
            Duration::from_secs(5),
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::unavailable("unavailable", message, Duration::from_secs(1))
    }

    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                partitions: self.partitions,
            },
        };
        let mut resp =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response_();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot be reused.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        if let Some(d) = self.retry_after {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, secs.max(1).into());
        }
        resp
    }
}

/// `warp::Reply::into_response` under a name that does not clash with ours.
trait IntoResponse {
    fn into_response_(self) -> Response;
}
impl<T: warp::Reply> IntoResponse for T {
    fn into_response_(self) -> Response {
        self.into_response()
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        use RejectionCode as C;
        let status = match r.code {
            C::NotFound => StatusCode::NOT_FOUND,
            C::Validation => StatusCode::BAD_REQUEST,
            C::OutOfStock
            | C::InsufficientStock
            | C::CartCheckedOut
            | C::CartEmpty
            | C::InvalidTransition
            | C::ProductArchived
            | C::Conflict
            | C::EntityTooLarge
            | C::IdempotencyKeyReused
            | C::IdempotencyKeyExpired
            | C::CouponExpired
            | C::CouponExhausted
            | C::CouponNotApplicable
            | C::CouponLimitPerCustomer
            | C::LocationClosed => StatusCode::CONFLICT,
            C::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, r.code.as_str(), r.message)
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Rejected(r) => r.into(),
            RouteError::Timeout => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "the entity did not answer in time; the request was not applied",
                )
            },
            RouteError::Overloaded { retry_after } => ApiError::unavailable(
                "overloaded",
                "the entity has too many requests in flight",
                retry_after,
            ),
            RouteError::Unavailable {
                kind,
                retry_after,
                detail,
            } => ApiError::unavailable(kind.as_str(), detail, retry_after),
            RouteError::StoreFailed(reason) => ApiError::store_failed(reason),
            // Only forwarded requests see it, and they never reach an edge.
            RouteError::NotOwner { .. } => ApiError::unavailable(
                "partition_moving",
                "the partition is moving; retry",
                Duration::from_secs(1),
            ),
        }
    }
}

impl From<ListingError> for ApiError {
    fn from(e: ListingError) -> Self {
        match e {
            ListingError::Route(e) => e.into(),
            ListingError::PartitionsUnavailable {
                partitions,
                retry_after,
                detail,
            } => ApiError {
                partitions: Some(partitions),
                ..ApiError::unavailable(
                    UnavailableKind::PartitionUnavailable.as_str(),
                    detail,
                    retry_after,
                )
            },
            ListingError::Read(ReadFailure::Corrupt(detail)) => {
                ApiError::unavailable("entity_corrupt", detail, Duration::from_secs(30))
            }
            ListingError::Read(ReadFailure::Store(detail)) => {
                tracing::error!(error = %detail, "store read failed");
                ApiError::unavailable("store_unavailable", detail, Duration::from_secs(1))
            }
            ListingError::Read(ReadFailure::Unavailable { kind, detail }) => {
                ApiError::unavailable(kind.as_str(), detail, Duration::from_secs(1))
            }
        }
    }
}

impl From<crate::router::replay::ReplayFailure> for ApiError {
    fn from(e: crate::router::replay::ReplayFailure) -> Self {
        use crate::router::replay::ReplayFailure;
        match e {
            ReplayFailure::NotFound => ApiError::not_found("nothing dead by that id"),
            ReplayFailure::Moving => ApiError::unavailable(
                "partition_moving",
                "its partition is moving; try again",
                Duration::from_secs(1),
            ),
            ReplayFailure::Store(detail) => {
                tracing::error!(error = %detail, "a replay's write failed");
                ApiError::unavailable("store_unavailable", detail, Duration::from_secs(1))
            }
            ReplayFailure::Unavailable(detail) => ApiError::unavailable(
                UnavailableKind::PartitionUnavailable.as_str(),
                detail,
                Duration::from_secs(1),
            ),
        }
    }
}

impl From<crate::auth::password::Overloaded> for ApiError {
    fn from(e: crate::auth::password::Overloaded) -> Self {
        ApiError::unavailable("overloaded", e.to_string(), Duration::from_secs(1))
    }
}

/// Marker rejections raised by our own filters before a handler runs.
#[derive(Debug)]
pub struct Shed;
impl warp::reject::Reject for Shed {}

/// Turns every warp rejection into the JSON error shape.
pub async fn recover(r: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let err = if r.is_not_found() {
        ApiError::not_found("no such route")
    } else if r.find::<Shed>().is_some() {
        ApiError::unavailable(
            "overloaded",
            "the server is at its concurrency limit",
            Duration::from_secs(1),
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        ApiError::validation(format!("invalid query string: {e}"))
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        ApiError::validation(e.to_string())
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        )
    } else {
        tracing::warn!(rejection = ?r, "unhandled rejection");
        ApiError::validation(format!("bad request: {r:?}"))
    };
    let mut resp = err.into_response();
    resp.extensions_mut().insert(super::RouteTag("unmatched"));
    Ok(resp)
}
