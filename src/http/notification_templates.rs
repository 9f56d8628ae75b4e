//! Notification templates (operators and admins): `GET /v1/notification-templates`
//! lists the template used for each event and channel (saved or built in),
//! `PUT /v1/notification-templates/{event}/{channel}` saves one over the default once it
//! renders against the event's sample (else 400 naming the part and line), and `DELETE`
//! goes back to the default. Templates are one entity, reached through the router.

use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::notifications::{TemplateBody, TemplateList, TemplateSource, TemplateView};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::{now_ms, rfc3339};
use crate::domain::notification::ChannelKind;
use crate::domain::notification_template::{
    NotificationTemplates, SavedTemplate, TemplateCommand, TEMPLATES_ID,
};
use crate::events::notify::templates::{check, default_for, Template};
use crate::events::EventType;

fn event_type(e: &str) -> Result<EventType, ApiError> {
    EventType::parse(e).ok_or_else(|| ApiError::validation(format!("unknown event type {e:?}")))
}

/// The channel of a path.
fn channel(c: &str) -> Result<ChannelKind, ApiError> {
    match c {
        "email" => Ok(ChannelKind::Email),
        "sms" => Ok(ChannelKind::Sms),
        "push" => Ok(ChannelKind::Push),
        _ => Err(ApiError::validation("channel is email, sms or push")),
    }
}

fn saved_view(t: &SavedTemplate) -> TemplateView {
    TemplateView {
        event: t.event.clone(),
        channel: t.channel.into(),
        subject: t.subject.clone(),
        body: t.body.clone(),
        source: TemplateSource::Saved,
        updated_at: Some(rfc3339(t.updated_at)),
    }
}

/// The template used for each event type and channel: saved, else built in.
#[utoipa::path(get, path = "/v1/notification-templates", operation_id = "list_notification_templates", tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the templates in use", body = TemplateList),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list(app: App) -> Result<Response, ApiError> {
    let saved = app
        .router
        .get::<NotificationTemplates>(TEMPLATES_ID)
        .await?;
    let mut items = Vec::new();
    for (ty, ch) in EventType::ALL
        .into_iter()
        .flat_map(|t| [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Push].map(|c| (t, c)))
    {
        if let Some(t) = saved.get(ty.as_str(), ch) {
            items.push(saved_view(t));
        } else if let Some(t) = default_for(ty, ch) {
            items.push(TemplateView {
                event: ty.as_str().to_owned(),
                channel: ch.into(),
                subject: t.subject,
                body: t.body,
                source: TemplateSource::Default,
                updated_at: None,
            });
        }
    }
    Ok(json(StatusCode::OK, &TemplateList { items }))
}

/// Saves the template of an event type on a channel, over the default, once it renders
/// against a sample of the event. Messages created after it use it.
#[utoipa::path(put, path = "/v1/notification-templates/{event}/{channel}", operation_id = "put_notification_template", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("event" = String, Path, description = "an event type such as `order.paid`"),
        ("channel" = String, Path, description = "`email`, `sms` or `push`"),
    ),
    request_body = TemplateBody,
    responses(
        (status = 200, description = "saved", body = TemplateView),
        (status = 400, description = "`validation`: an unknown event or channel, a subject or body out of bounds, or a template that does not render (the message names `subject` or `body` and the line)", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn save(
    app: App,
    event: String,
    ch: String,
    b: TemplateBody,
) -> Result<Response, ApiError> {
    let ty = event_type(&event)?;
    let ch = channel(&ch)?;
    let t = Template {
        subject: b.subject,
        body: b.body,
    };
    check(&t, ty)
        .map_err(|e| ApiError::validation(format!("the template does not render: {e}")))?;
    let saved = SavedTemplate {
        event: ty.as_str().to_owned(),
        channel: ch,
        subject: t.subject,
        body: t.body,
        updated_at: now_ms(),
    };
    let applied = app
        .router
        .command::<NotificationTemplates>(TEMPLATES_ID, TemplateCommand::Save(saved.clone()))
        .await?;
    let view = applied
        .state
        .get(ty.as_str(), ch)
        .map(saved_view)
        .unwrap_or_else(|| saved_view(&saved));
    Ok(json(StatusCode::OK, &view))
}

/// Goes back to the built-in template of an event type on a channel.
#[utoipa::path(delete, path = "/v1/notification-templates/{event}/{channel}", operation_id = "delete_notification_template", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("event" = String, Path, description = "an event type such as `order.paid`"),
        ("channel" = String, Path, description = "`email`, `sms` or `push`"),
    ),
    responses(
        (status = 204, description = "the default is used again"),
        (status = 400, description = "`validation`: an unknown event or channel", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no template was saved for it", body = ErrorBody),
    ))]
pub async fn remove(app: App, event: String, ch: String) -> Result<Response, ApiError> {
    let ty = event_type(&event)?;
    let ch = channel(&ch)?;
    app.router
        .command::<NotificationTemplates>(
            TEMPLATES_ID,
            TemplateCommand::Delete {
                event: ty.as_str().to_owned(),
                channel: ch,
            },
        )
        .await?;
    let mut r = Response::new(Vec::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path};
    let staff = || filters::staff(app);
    let list = route!(
        app,
        "GET /v1/notification-templates",
        path!("v1" / "notification-templates")
            .and(end())
            .and(get())
            .and(staff()),
        |_p, a| list(a)
    );
    let save = route!(
        app,
        "PUT /v1/notification-templates/{event}/{channel}",
        path!("v1" / "notification-templates" / String / String)
            .and(end())
            .and(warp::put())
            .and(staff())
            .and(filters::body(app)),
        |event, ch, _p, b, a| save(a, event, ch, b)
    );
    let remove = route!(
        app,
        "DELETE /v1/notification-templates/{event}/{channel}",
        path!("v1" / "notification-templates" / String / String)
            .and(end())
            .and(warp::delete())
            .and(staff()),
        |event, ch, _p, a| remove(a, event, ch)
    );
    list.or(save).or(remove)
}
