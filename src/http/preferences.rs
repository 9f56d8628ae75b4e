//! A shopper's notification preferences: `GET /v1/me/preferences` and
//! `PATCH /v1/me/preferences` (channels on or off, marketing opt-in, the SMS phone, Web
//! Push subscriptions). The edge checks the formats; the entity
//! ([`crate::domain::preferences`]) holds the bounds and is the one writer.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::preferences::{PreferencesUpdate, PreferencesView, PushSubscriptionInput};
use super::dto::ErrorBody;
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::preferences::{Change, Preferences, PreferencesCommand, PushSubscription};
use crate::domain::user::User;
use crate::events::target::check_url;

/// Largest preferences body: eight subscriptions with long endpoints fit.
const MAX_BODY: u64 = 32 * 1024;

/// E.164: a `+`, then 8 to 15 digits, the first not 0.
pub fn e164(p: &str) -> bool {
    p.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// base64url (padding optional) of exactly `n` bytes.
fn key_of_len(s: &str, n: usize) -> bool {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .is_ok_and(|b| b.len() == n)
}

fn subscription(
    app: &App,
    i: usize,
    s: PushSubscriptionInput,
) -> Result<PushSubscription, ApiError> {
    let allow_private = app.config.notifications.push.allow_private_targets;
    check_url(&s.endpoint, allow_private)
        .map_err(|e| ApiError::validation(format!("push_subscriptions[{i}].endpoint: {e}")))?;
    if !s.endpoint.starts_with("https://") && !allow_private {
        return Err(ApiError::validation(format!(
            "push_subscriptions[{i}].endpoint must use https"
        )));
    }
    // Uncompressed P-256 points start with 4.
    let point = URL_SAFE_NO_PAD.decode(s.keys.p256dh.trim_end_matches('='));
    if !point.is_ok_and(|b| b.len() == 65 && b[0] == 4) {
        return Err(ApiError::validation(format!(
            "push_subscriptions[{i}].keys.p256dh must be an uncompressed P-256 key, base64url (65 bytes)"
        )));
    }
    if !key_of_len(&s.keys.auth, 16) {
        return Err(ApiError::validation(format!(
            "push_subscriptions[{i}].keys.auth must be 16 bytes, base64url"
        )));
    }
    Ok(PushSubscription {
        endpoint: s.endpoint,
        p256dh: s.keys.p256dh.trim_end_matches('=').to_owned(),
        auth: s.keys.auth.trim_end_matches('=').to_owned(),
    })
}

async fn existing_user(app: &App, id: Uuid) -> Result<(), ApiError> {
    if app.router.get::<User>(&id.to_string()).await?.exists() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no user {id}")))
    }
}

/// The caller's notification preferences (the defaults until they change one).
#[utoipa::path(get, path = "/v1/me/preferences", operation_id = "get_my_preferences", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's preferences", body = PreferencesView),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no preferences", body = ErrorBody),
        (status = 404, description = "`not_found`: the user no longer exists", body = ErrorBody),
    ))]
pub async fn get(app: App, id: Uuid) -> Result<Response, ApiError> {
    existing_user(&app, id).await?;
    let s = app.router.get::<Preferences>(&id.to_string()).await?;
    Ok(json(StatusCode::OK, &PreferencesView::new(&s)))
}

/// Changes the caller's notification preferences. Order receipts and cancellations go
/// only to the channels that are on; SMS needs a phone, push a subscription.
#[utoipa::path(patch, path = "/v1/me/preferences", operation_id = "update_my_preferences", tag = "me",
    security(("bearer" = [])),
    request_body = PreferencesUpdate,
    responses(
        (status = 200, description = "the preferences after the change", body = PreferencesView),
        (status = 400, description = "`invalid_json` or `validation` (a phone not in E.164, a push endpoint that is not a public https URL, keys of the wrong length, more than 8 subscriptions)", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no preferences", body = ErrorBody),
        (status = 404, description = "`not_found`: the user no longer exists", body = ErrorBody),
    ))]
pub async fn update(app: App, id: Uuid, b: PreferencesUpdate) -> Result<Response, ApiError> {
    let phone = match b.phone {
        Some(Some(p)) => {
            let p: String = p.chars().filter(|c| !" -()".contains(*c)).collect();
            if !e164(&p) {
                return Err(ApiError::validation(
                    "phone must be in E.164: a + and 8 to 15 digits (spaces, - and ( ) are dropped)",
                ));
            }
            Some(Some(p))
        }
        other => other,
    };
    let push_subscriptions = match b.push_subscriptions {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .enumerate()
                .map(|(i, s)| subscription(&app, i, s))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    existing_user(&app, id).await?;
    let change = Change {
        channels: b.channels.map(|c| c.pairs()).unwrap_or_default(),
        marketing_opt_in: b.marketing_opt_in,
        phone,
        push_subscriptions,
        at: now_ms(),
    };
    let applied = app
        .router
        .command::<Preferences>(&id.to_string(), PreferencesCommand::Change(change))
        .await?;
    Ok(json(StatusCode::OK, &PreferencesView::new(&applied.state)))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, patch, path};
    let read = route!(
        app,
        "GET /v1/me/preferences",
        path!("v1" / "me" / "preferences")
            .and(end())
            .and(get())
            .and(filters::user(app)),
        |u, a| self::get(a, u)
    );
    let write = route!(
        app,
        "PATCH /v1/me/preferences",
        path!("v1" / "me" / "preferences")
            .and(end())
            .and(patch())
            .and(filters::user(app))
            .and(filters::json_body(MAX_BODY)),
        |u, b, a| update(a, u, b)
    );
    read.or(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for ok in ["+15551234567", "+447946095800", "+4930123456"] {
            assert!(e164(ok), "{ok}");
        }
        for bad in [
            "15551234567",
            "+0123456789",
            "+1234",
            "+1234567890123456",
            "+1555abc4567",
            "",
        ] {
            assert!(!e164(bad), "{bad}");
        }
    }
}
