//! Notification history: `GET /v1/admin/notifications` (operators and admins; filter by
//! status, channel, event type), `POST /v1/admin/notifications/{id}/replay` (a dead
//! message gets one more round of sends), and `GET /v1/me/notifications` (the caller's
//! own, by their email address).
//!
//! Messages are read from the partitions the answering node owns (like the webhook
//! deliveries): in a cluster each node answers for its own partitions.

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::notifications::{NotificationList, NotificationView};
use super::dto::webhooks::ReplayAccepted;
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::domain::notification::{ChannelKind, MessageStatus};
use crate::domain::user::User;
use crate::events::notify::history::{Filter, ReplayError};
use crate::events::EventType;

/// Most messages one answer lists.
pub const MAX_PAGE: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminQuery {
    status: Option<String>,
    channel: Option<String>,
    event: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeQuery {
    limit: Option<String>,
}

fn limit(v: Option<&str>) -> Result<usize, ApiError> {
    super::extract::page_limit(v, 50, MAX_PAGE)
}

fn status(v: &str) -> Result<MessageStatus, ApiError> {
    match v {
        "pending" => Ok(MessageStatus::Pending),
        "sent" => Ok(MessageStatus::Sent),
        "dead" => Ok(MessageStatus::Dead),
        _ => Err(ApiError::validation("status is pending, sent or dead")),
    }
}

fn channel(v: &str) -> Result<ChannelKind, ApiError> {
    match v {
        "email" => Ok(ChannelKind::Email),
        "sms" => Ok(ChannelKind::Sms),
        "push" => Ok(ChannelKind::Push),
        _ => Err(ApiError::validation("channel is email, sms or push")),
    }
}

fn list(app: &App, f: &Filter, n: usize) -> Result<Response, ApiError> {
    let items = app
        .notifications
        .list(f, n)
        .map_err(ApiError::store_failed)?;
    let body = NotificationList {
        items: items.iter().map(NotificationView::from).collect(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Notification messages in the partitions the answering node owns, newest first.
/// Operators and admins.
#[utoipa::path(get, path = "/v1/admin/notifications", operation_id = "list_notifications", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "`pending`, `sent` or `dead`"),
        ("channel" = Option<String>, Query, description = "`email`, `sms` or `push`"),
        ("event" = Option<String>, Query, description = "an event type such as `order.paid`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "how many (default 50)"),
    ),
    responses(
        (status = 200, description = "messages, newest first", body = NotificationList),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn admin_list(app: App, q: AdminQuery) -> Result<Response, ApiError> {
    let n = limit(q.limit.as_deref())?;
    let event_type = match q.event.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(
            EventType::parse(e)
                .ok_or_else(|| ApiError::validation(format!("unknown event type {e:?}")))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let f = Filter {
        status: q
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(status)
            .transpose()?,
        channel: q
            .channel
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(channel)
            .transpose()?,
        event_type,
        ..Filter::default()
    };
    list(&app, &f, n)
}

/// Sends a dead message again: one more round of attempts, due at once. Operators and
/// admins.
#[utoipa::path(post, path = "/v1/admin/notifications/{id}/replay", operation_id = "replay_notification", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the message's id (`ntf_...`)")),
    responses(
        (status = 202, description = "queued again", body = ReplayAccepted),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no dead message with that id on this node", body = ErrorBody),
        (status = 503, description = "`partition_moving`: try again", body = ErrorBody),
    ))]
pub async fn replay(app: App, id: String) -> Result<Response, ApiError> {
    app.notifications.replay(&id).await.map_err(|e| match e {
        ReplayError::NotFound => ApiError::not_found(format!("no dead message {id} here")),
        ReplayError::Moving => ApiError::unavailable(
            "partition_moving",
            "the message's partition is moving; try again",
            std::time::Duration::from_secs(1),
        ),
        ReplayError::Store(e) => ApiError::store_failed(e),
    })?;
    Ok(json(StatusCode::ACCEPTED, &ReplayAccepted { replayed: 1 }))
}

/// The caller's messages (about their orders on any channel, or sent to their email
/// address), newest first.
#[utoipa::path(get, path = "/v1/me/notifications", operation_id = "my_notifications", tag = "me",
    security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "how many (default 50)")),
    responses(
        (status = 200, description = "messages, newest first", body = NotificationList),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no messages", body = ErrorBody),
    ))]
pub async fn mine(app: App, user: Uuid, q: MeQuery) -> Result<Response, ApiError> {
    let n = limit(q.limit.as_deref())?;
    let u = app.router.get::<User>(&user.to_string()).await?;
    let Some(email) = u.email else {
        return Err(ApiError::not_found(format!("no user {user}")));
    };
    let f = Filter {
        mine: Some((user.to_string(), email)),
        ..Filter::default()
    };
    list(&app, &f, n)
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let staff = || filters::staff(app);
    let admin_list = route!(
        app,
        "GET /v1/admin/notifications",
        path!("v1" / "admin" / "notifications")
            .and(end())
            .and(get())
            .and(staff())
            .and(warp::query::<AdminQuery>()),
        |_p, q, a| admin_list(a, q)
    );
    let replay = route!(
        app,
        "POST /v1/admin/notifications/{id}/replay",
        path!("v1" / "admin" / "notifications" / String / "replay")
            .and(end())
            .and(post())
            .and(staff()),
        |id, _p, a| replay(a, id)
    );
    let mine = route!(
        app,
        "GET /v1/me/notifications",
        path!("v1" / "me" / "notifications")
            .and(end())
            .and(get())
            .and(filters::user(app))
            .and(warp::query::<MeQuery>()),
        |u, q, a| mine(a, u, q)
    );
    admin_list.or(replay).or(mine)
}
