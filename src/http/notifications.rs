//! Notification history: `GET /v1/admin/notifications` (operators and admins; filter by
//! status, channel, event type), `POST /v1/admin/notifications/{id}/replay` (a dead
//! message gets one more round of sends), and `GET /v1/me/notifications` (the caller's
//! own, by their email address).
//!
//! The listings fan out through the router to every partition's owner (as the order
//! listings do), so any node answers for the whole cluster; a replay runs on the node
//! that owns the message's partition.

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
use crate::domain::notification::{ChannelKind, MessageFilter, MessageStatus};
use crate::domain::user::User;
use crate::events::EventType;
use crate::router::listing::RowData;
use crate::router::replay::ReplayOp;

/// Most messages one answer lists.
pub const MAX_PAGE: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminQuery {
    status: Option<String>,
    channel: Option<String>,
    event: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    partial: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeQuery {
    limit: Option<String>,
    cursor: Option<String>,
    partial: Option<String>,
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

/// A listing cursor: a `next_cursor` as [`listing_key`] makes them (16 hex digits and
/// a message id).
///
/// [`listing_key`]: crate::domain::notification::listing_key
fn cursor(v: Option<&str>) -> Result<Option<String>, ApiError> {
    match v.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c)
            if (17..=100).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Ok(Some(c.to_owned()))
        }
        Some(_) => Err(ApiError::validation("cursor is not valid")),
    }
}

async fn list(
    app: &App,
    f: MessageFilter,
    cursor: Option<String>,
    n: usize,
    partial: bool,
) -> Result<Response, ApiError> {
    let page = app.router.list_notifications(f, cursor, n, partial).await?;
    let items = page
        .rows
        .iter()
        .filter_map(|r| match &r.data {
            RowData::Notification(m) => Some(NotificationView::from(m.as_ref())),
            _ => None,
        })
        .collect();
    let body = NotificationList {
        items,
        next_cursor: page.next_cursor,
        missing_partitions: partial.then_some(page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Notification messages, newest first, from every partition's owner. Operators and
/// admins.
#[utoipa::path(get, path = "/v1/admin/notifications", operation_id = "list_notifications", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "`pending`, `sent` or `dead`"),
        ("channel" = Option<String>, Query, description = "`email`, `sms` or `push`"),
        ("event" = Option<String>, Query, description = "an event type such as `order.paid`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "how many (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
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
    let f = MessageFilter {
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
        ..MessageFilter::default()
    };
    let partial = super::machines::partial(q.partial.as_deref())?;
    list(&app, f, cursor(q.cursor.as_deref())?, n, partial).await
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
        (status = 404, description = "`not_found`: no dead message with that id", body = ErrorBody),
        (status = 503, description = "`partition_moving`: try again", body = ErrorBody),
    ))]
pub async fn replay(app: App, id: String) -> Result<Response, ApiError> {
    if id.len() > 100 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ApiError::not_found(format!("no dead message {id}")));
    }
    let replayed = app.router.replay(ReplayOp::Notification { id }).await?;
    Ok(json(StatusCode::ACCEPTED, &ReplayAccepted { replayed }))
}

/// The caller's messages (about their orders on any channel, or sent to their email
/// address), newest first.
#[utoipa::path(get, path = "/v1/me/notifications", operation_id = "my_notifications", tag = "me",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "how many (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
    ),
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
    let f = MessageFilter {
        mine: Some((user.to_string(), email)),
        ..MessageFilter::default()
    };
    let partial = super::machines::partial(q.partial.as_deref())?;
    list(&app, f, cursor(q.cursor.as_deref())?, n, partial).await
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
