//! Extractor filters: each yields a typed value to the handler or refuses the request
//! with the exact `ApiError` it has always answered, so a handler starts at its
//! business logic.
//!
//! - [`principal`]: the caller (anonymous when no `Authorization`; a header that is not
//!   a valid credential is 401).
//! - [`staff`], [`admin`]: the caller, with the operator (or admin) or admin role.
//! - [`user`]: a signed-in user's id (not anonymous, not the bootstrap token).
//! - [`json_body`]: a bounded body parsed into a DTO (`payload_too_large`,
//!   `invalid_json`, `validation`).
//!
//! A refusal is the [`Refused`] rejection, recovered by the route it was raised in (see
//! [`super::routes`]). Checks that must come after the handler's own (an idempotent
//! request's key and body are looked at only once the caller may use the entity) use
//! the `Result`-yielding filters of [`super::extract`] instead.

use super::error::ApiError;
use super::extract;
use crate::app::App;
use crate::auth::Principal;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

/// An extractor refused the request with this answer.
#[derive(Debug)]
pub struct Refused(pub ApiError);
impl warp::reject::Reject for Refused {}

fn refuse(e: ApiError) -> Rejection {
    warp::reject::custom(Refused(e))
}

async fn ok_or_refuse<T>(r: Result<T, ApiError>) -> Result<T, Rejection> {
    r.map_err(refuse)
}

/// The caller, from the `Authorization` header.
pub fn principal(app: &App) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    extract::principal(app.identity.clone()).and_then(ok_or_refuse)
}

/// The caller, an operator or an admin.
pub fn staff(app: &App) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    principal(app).and_then(|p: Principal| ok_or_refuse(extract::staff(&p).map(|()| p)))
}

/// The caller, an admin.
pub fn admin(app: &App) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    principal(app).and_then(|p: Principal| ok_or_refuse(extract::admin(&p).map(|()| p)))
}

/// The signed-in user's id.
pub fn user(app: &App) -> impl Filter<Extract = (uuid::Uuid,), Error = Rejection> + Clone {
    principal(app).and_then(|p: Principal| ok_or_refuse(extract::user(&p)))
}

/// The body (at most `limit` bytes) parsed as JSON into `T`.
pub fn json_body<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    extract::body_bytes(limit).and_then(|b: Result<bytes::Bytes, ApiError>| {
        ok_or_refuse(b.and_then(|b| extract::parse_json::<T>(&b)))
    })
}

/// [`json_body`] with the API's limit, `http.max_body_bytes`.
pub fn body<T: DeserializeOwned + Send>(
    app: &App,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_body(app.config.http.max_body_bytes)
}

/// [`json_body`] with the identity routes' limit, `http.max_auth_body_bytes`.
pub fn small_body<T: DeserializeOwned + Send>(
    app: &App,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_body(app.config.http.max_auth_body_bytes)
}

/// The body (at most `limit` bytes) as a JSON value, or why not: for idempotent
/// requests, whose body is judged after the caller's access.
pub fn deferred_json(
    limit: u64,
) -> impl Filter<Extract = (Result<serde_json::Value, ApiError>,), Error = Rejection> + Clone {
    extract::body_bytes(limit)
        .map(|b: Result<bytes::Bytes, ApiError>| b.and_then(|b| extract::parse_json(&b)))
}
