//! Identity routes: register, login, refresh, logout, the caller's profile and orders,
//! and role changes by an admin.
//!
//! Login never says whether the email exists: an unknown email is checked against a
//! dummy argon2id hash, so both failures cost the same and answer the same.

use super::dto::identity::{
    Credentials, Profile, ProfileUpdate, RefreshRequest, Registered, RolesUpdate, TokenPair,
    TokenType,
};
use super::dto::orders::{Order as OrderView, OrderPage};
use super::dto::{missing, ErrorBody};
use super::error::ApiError;
use super::extract::{email as parse_email, uuid};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::{password, refresh, Principal};
use crate::clock::now_ms;
use crate::domain::order::Order;
use crate::domain::session::{Session, SessionCommand, SessionEvent};
use crate::domain::user::{ClaimEmail, EmailClaim, Role, User, UserCommand, UserState};
use crate::domain::RejectionCode;
use crate::router::RouteError;
use futures::StreamExt;
use serde::Deserialize;
use sha2::Digest;
use std::collections::BTreeSet;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

fn email_key(email: &str) -> String {
    hex::encode(sha2::Sha256::digest(email.as_bytes()))
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the email or password is wrong",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the refresh token is not valid",
    )
}

/// Creates an account with the `shopper` role.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "registered", body = Registered, links(
            ("SetRoles" = (operation_id = "set_roles", parameters(("user_id" = "$response.body#/user_id")))),
            ("UserEvents" = (operation_id = "entity_events", parameters(("kind" = "user"), ("id" = "$response.body#/user_id")))),
        )),
        (status = 400, description = "`invalid_json`, or `validation`: the email or password breaks a rule", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
    ))]
pub async fn register(app: App, c: Credentials) -> Result<Response, ApiError> {
    let email = parse_email(&c.email)?;
    password::validate(&c.password, &email).map_err(ApiError::validation)?;
    let hash = password::hash(c.password)
        .await
        .map_err(ApiError::internal)?;
    // The user is written first, then the email is claimed for it. If the claim loses
    // (the email is taken) the new user is unreachable and harmless.
    let user_id = Uuid::new_v4();
    let cmd = UserCommand::Register {
        email: email.clone(),
        password_hash: hash,
        at: now_ms(),
    };
    app.router
        .command::<User>(&user_id.to_string(), cmd)
        .await?;
    match app
        .router
        .command::<EmailClaim>(&email_key(&email), ClaimEmail { user_id })
        .await
    {
        Ok(_) => Ok(json(StatusCode::CREATED, &Registered { user_id })),
        Err(RouteError::Rejected(r)) if r.code == RejectionCode::Conflict => Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "an account with this email already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

/// A new access token and refresh token for `user_id`, in a new or existing family.
async fn token_pair(
    app: &App,
    user_id: Uuid,
    roles: &BTreeSet<Role>,
    refresh_token: String,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let access = app.identity.keys.issue(user_id, roles, now / 1000);
    let pair = TokenPair {
        access_token: access,
        refresh_token,
        expires_in: app.identity.keys.ttl_s(),
        token_type: TokenType::Bearer,
    };
    Ok(json(StatusCode::OK, &pair))
}

/// Exchanges an email and password for a token pair.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "signed in", body = TokenPair),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`, the same for an unknown email and a wrong password", body = ErrorBody),
    ))]
pub async fn login(app: App, c: Credentials) -> Result<Response, ApiError> {
    let Ok(email) = parse_email(&c.email) else {
        return Err(invalid_credentials());
    };
    let claim = app.router.get::<EmailClaim>(&email_key(&email)).await?;
    let user = match claim.user_id {
        Some(id) => Some((id, app.router.get::<User>(&id.to_string()).await?)),
        None => None,
    };
    let phc = user.as_ref().map_or_else(
        || app.identity.dummy_hash.clone(),
        |(_, u)| u.password_hash.clone(),
    );
    let ok = password::verify(c.password, phc).await;
    let Some((user_id, state)) = user.filter(|_| ok) else {
        return Err(invalid_credentials());
    };
    let family = Uuid::new_v4();
    let (secret, hash) = refresh::mint();
    let token = refresh::token(family, 0, &secret);
    let expires_at = now_ms() + app.identity.refresh_ttl_s * 1000;
    app.router
        .command::<Session>(
            &family.to_string(),
            SessionCommand::Start {
                user_id,
                token_hash: hash,
                expires_at,
            },
        )
        .await?;
    token_pair(&app, user_id, &state.roles, token).await
}

/// Rotates a refresh token: the presented token is used up and a new pair issued.
#[utoipa::path(post, path = "/v1/auth/refresh", operation_id = "refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "a new pair", body = TokenPair),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_token`, or `refresh_token_reused` (the whole family is then revoked)", body = ErrorBody),
    ))]
pub async fn refresh_tokens(app: App, b: RefreshRequest) -> Result<Response, ApiError> {
    let presented = refresh::parse(&b.refresh_token).ok_or_else(invalid_token)?;
    let family = presented.family;
    // The new token's generation is the family's after the rotation, so the secret is
    // minted now and the token is spelled once the rotation is applied.
    let (secret, next) = refresh::mint();
    let now = now_ms();
    let cmd = SessionCommand::Rotate {
        presented: presented.hash,
        generation: presented.generation,
        next,
        now,
        expires_at: now + app.identity.refresh_ttl_s * 1000,
    };
    let applied = match app
        .router
        .command::<Session>(&family.to_string(), cmd)
        .await
    {
        Ok(a) => a,
        Err(RouteError::Rejected(r)) if r.code == RejectionCode::Unauthorized => {
            return Err(invalid_token())
        }
        Err(e) => return Err(e.into()),
    };
    if applied
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::Revoked { reuse: true, .. }))
    {
        tracing::warn!("refresh token reused; the family is revoked");
        metrics::counter!("emporium_refresh_token_reuse_total").increment(1);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_reused",
            "this refresh token was already used; every session of this login is revoked",
        ));
    }
    let user_id = applied.state.user_id.ok_or_else(invalid_token)?;
    let token = refresh::token(family, applied.state.generation, &secret);
    let u = app.router.get::<User>(&user_id.to_string()).await?;
    token_pair(&app, user_id, &u.roles, token).await
}

/// Revokes the refresh token's family.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "signed out"),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_token`: not a refresh token", body = ErrorBody),
    ))]
pub async fn logout(app: App, b: RefreshRequest) -> Result<Response, ApiError> {
    let presented = refresh::parse(&b.refresh_token).ok_or_else(invalid_token)?;
    let family = presented.family.to_string();
    let state = app.router.get::<Session>(&family).await?;
    match refresh::logout_check(&state, &presented) {
        refresh::Logout::Refuse => return Err(invalid_token()),
        refresh::Logout::AlreadyRevoked => {}
        refresh::Logout::Revoke => {
            let revoke = SessionCommand::Revoke {
                reason: "logout".into(),
            };
            app.router.command::<Session>(&family, revoke).await?;
        }
    }
    let mut r = Response::new(Vec::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

async fn existing_user(app: &App, id: Uuid) -> Result<UserState, ApiError> {
    let u = app.router.get::<User>(&id.to_string()).await?;
    if u.exists() {
        Ok(u)
    } else {
        Err(ApiError::not_found(format!("no user {id}")))
    }
}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/me", operation_id = "get_me", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the profile", body = Profile),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no profile", body = ErrorBody),
        (status = 404, description = "`not_found`: the user no longer exists", body = ErrorBody),
    ))]
pub async fn me(app: App, id: Uuid) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &Profile::new(id, &existing_user(&app, id).await?),
    ))
}

fn valid_phone(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or(p);
    (5..=20).contains(&p.len())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || " ()-".contains(c))
        && digits.chars().any(|c| c.is_ascii_digit())
}

/// Changes the caller's name and phone.
#[utoipa::path(patch, path = "/v1/me", tag = "me",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "the updated profile", body = Profile),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no profile", body = ErrorBody),
        (status = 404, description = "`not_found`: the user no longer exists", body = ErrorBody),
    ))]
pub async fn update_me(app: App, id: Uuid, b: ProfileUpdate) -> Result<Response, ApiError> {
    let name = b.name.map(|n| n.trim().to_owned());
    if name
        .as_ref()
        .is_some_and(|n| !(1..=100).contains(&n.chars().count()))
    {
        return Err(ApiError::validation("name must be 1 to 100 characters"));
    }
    let phone = b.phone.map(|n| n.trim().to_owned());
    if phone.as_deref().is_some_and(|p| !valid_phone(p)) {
        return Err(ApiError::validation(
            "phone must be 5 to 20 characters: digits, spaces, ( ) - and a leading +",
        ));
    }
    existing_user(&app, id).await?;
    let applied = app
        .router
        .command::<User>(&id.to_string(), UserCommand::UpdateProfile { name, phone })
        .await?;
    Ok(json(StatusCode::OK, &Profile::new(id, &applied.state)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    partial: Option<String>,
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/me/orders", tag = "me",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
    ),
    responses(
        (status = 200, description = "a page of orders", body = OrderPage),
        (status = 400, description = "`validation`: a bad `limit` or `cursor`, or an unknown query parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no orders", body = ErrorBody),
    ))]
pub async fn my_orders(app: App, id: Uuid, q: PageQuery) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(
            "limit must be an integer from 1 to 100",
        ));
    }
    let partial = super::machines::partial(q.partial.as_deref())?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c)
            if c.len() <= 128
                && c.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'/' || b == b'-') =>
        {
            Some(c.to_owned())
        }
        Some(_) => return Err(ApiError::validation("cursor is not valid")),
        None => None,
    };
    let page = app
        .router
        .list_user_orders(id, cursor, limit, partial)
        .await?;
    // Each order from its owner, 16 at a time, in the page's order.
    let ids: Vec<Uuid> = page
        .rows
        .iter()
        .filter_map(|r| {
            r.key
                .rsplit('/')
                .next()
                .and_then(|s| Uuid::parse_str(s).ok())
        })
        .collect();
    let router = app.router.clone();
    let states: Vec<_> = futures::stream::iter(ids)
        .map(|order_id| {
            let router = router.clone();
            async move { (order_id, router.get::<Order>(&order_id.to_string()).await) }
        })
        .buffered(16)
        .collect()
        .await;
    let mut items = Vec::with_capacity(states.len());
    for (order_id, o) in states {
        items.push(OrderView::new(order_id, &o?));
    }
    let body = OrderPage {
        items,
        next_cursor: page.next_cursor,
        missing_partitions: missing(partial, &page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Replaces a user's roles. Admins only; takes effect on the user's next login or refresh.
#[utoipa::path(put, path = "/v1/admin/users/{user_id}/roles", tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "the user")),
    request_body = RolesUpdate,
    responses(
        (status = 200, description = "the user's profile with the new roles", body = Profile),
        (status = 400, description = "`validation`: not a UUID, or an unknown role; or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    ))]
pub async fn set_roles(
    app: App,
    id: String,
    p: Principal,
    b: RolesUpdate,
) -> Result<Response, ApiError> {
    let id = uuid("user id", &id)?;
    let roles = b
        .roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                ApiError::validation(format!(
                    "unknown role {r:?}; roles are shopper, operator, admin"
                ))
            })
        })
        .collect::<Result<BTreeSet<Role>, ApiError>>()?;
    existing_user(&app, id).await?;
    let applied = app
        .router
        .command::<User>(
            &id.to_string(),
            UserCommand::SetRoles {
                roles,
                by: p.actor(),
            },
        )
        .await?;
    Ok(json(StatusCode::OK, &Profile::new(id, &applied.state)))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, patch, path, post};
    let register = route!(
        app,
        "POST /v1/auth/register",
        path!("v1" / "auth" / "register")
            .and(end())
            .and(post())
            .and(filters::small_body(app)),
        |b, a| register(a, b)
    );
    let login = route!(
        app,
        "POST /v1/auth/login",
        path!("v1" / "auth" / "login")
            .and(end())
            .and(post())
            .and(filters::small_body(app)),
        |b, a| login(a, b)
    );
    let refresh = route!(
        app,
        "POST /v1/auth/refresh",
        path!("v1" / "auth" / "refresh")
            .and(end())
            .and(post())
            .and(filters::small_body(app)),
        |b, a| refresh_tokens(a, b)
    );
    let logout = route!(
        app,
        "POST /v1/auth/logout",
        path!("v1" / "auth" / "logout")
            .and(end())
            .and(post())
            .and(filters::small_body(app)),
        |b, a| logout(a, b)
    );
    let me = route!(
        app,
        "GET /v1/me",
        path!("v1" / "me")
            .and(end())
            .and(get())
            .and(filters::user(app)),
        |u, a| me(a, u)
    );
    let update_me = route!(
        app,
        "PATCH /v1/me",
        path!("v1" / "me")
            .and(end())
            .and(patch())
            .and(filters::user(app))
            .and(filters::small_body(app)),
        |u, b, a| update_me(a, u, b)
    );
    let my_orders = route!(
        app,
        "GET /v1/me/orders",
        path!("v1" / "me" / "orders")
            .and(end())
            .and(get())
            .and(filters::user(app))
            .and(warp::query::<PageQuery>()),
        |u, q, a| my_orders(a, u, q)
    );
    register
        .or(login)
        .or(refresh)
        .or(logout)
        .or(me)
        .or(update_me)
        .or(my_orders)
}
