//! Promotions (`/v1/promotions`, operators and admins): define, read, list and end them.
//!
//! The definitions are one entity, the promotion book; each promotion's redemptions are
//! its own ledger entity. Both are reached through the router like every entity; a
//! promotion's answer carries its ledger's counts.

use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::promotions::{
    Action as ActionDto, Conditions as ConditionsDto, Promotion as PromotionView, PromotionList,
    PutPromotion,
};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::{now_ms, parse_rfc3339};
use crate::domain::promotion::{
    check_id, normalize_code, Action, Conditions, Promotion, PromotionCommand, PromotionDef,
    Promotions, BOOK_ID,
};
use crate::domain::redemption::Redemptions;
use crate::domain::Sku;

/// How many ledgers a list reads at once.
const LEDGER_READS: usize = 8;

fn sku(field: &str, s: &str) -> Result<Sku, ApiError> {
    Sku::parse(s).map_err(|e| ApiError::validation(format!("{field}: {e}")))
}

fn time(field: &str, s: Option<&str>) -> Result<Option<u64>, ApiError> {
    s.map(|t| parse_rfc3339(t).map_err(|e| ApiError::validation(format!("{field}: {e}"))))
        .transpose()
}

fn action(a: ActionDto) -> Result<Action, ApiError> {
    Ok(match a {
        ActionDto::PercentOff { percent } => Action::PercentOff { percent },
        ActionDto::AmountOff { amount_minor } => Action::AmountOff { amount_minor },
        ActionDto::BuyXGetY {
            buy_sku,
            buy_quantity,
            get_sku,
            get_quantity,
        } => Action::BuyXGetY {
            buy_sku: sku("action.buy_sku", &buy_sku)?,
            buy_quantity,
            get_sku: sku("action.get_sku", &get_sku)?,
            get_quantity,
        },
        ActionDto::FreeItem { sku: s, quantity } => Action::FreeItem {
            sku: sku("action.sku", &s)?,
            quantity,
        },
    })
}

fn conditions(c: ConditionsDto) -> Result<Conditions, ApiError> {
    Ok(Conditions {
        min_subtotal_minor: c.min_subtotal_minor,
        skus: c
            .skus
            .iter()
            .map(|s| sku("conditions.skus", s))
            .collect::<Result<_, _>>()?,
        categories: c.categories.iter().map(|c| c.trim().to_owned()).collect(),
    })
}

/// The definition a request asks for, checked field by field.
fn definition(b: PutPromotion) -> Result<PromotionDef, ApiError> {
    let def = PromotionDef {
        name: b.name.trim().to_owned(),
        campaign: b.campaign.map(|c| c.trim().to_owned()),
        action: action(b.action)?,
        conditions: conditions(b.conditions)?,
        code: b
            .code
            .as_deref()
            .map(normalize_code)
            .transpose()
            .map_err(|e| ApiError::validation(format!("code: {e}")))?,
        usage_limit: b.usage_limit,
        per_customer_limit: b.per_customer_limit,
        starts_at: time("starts_at", b.starts_at.as_deref())?,
        ends_at: time("ends_at", b.ends_at.as_deref())?,
        combines: b.combines,
    };
    def.validate().map_err(ApiError::validation)?;
    Ok(def)
}

/// `p` with its ledger's counts.
async fn view(app: &App, p: &Promotion) -> Result<PromotionView, ApiError> {
    let now = now_ms();
    let ledger = app.router.get::<Redemptions>(&p.id).await?;
    let reserved = ledger.live(now).count() as u32;
    Ok(PromotionView::new(p, now, ledger.consumed, reserved))
}

fn checked_id(id: &str) -> Result<(), ApiError> {
    check_id(id).map_err(ApiError::validation)
}

/// Creates a promotion (201) or replaces its definition (200); redefining an ended one
/// makes it live again. Operators and admins.
#[utoipa::path(put, path = "/v1/promotions/{id}", operation_id = "put_promotion", tag = "promotions",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "spring-10", description = "the promotion")),
    request_body = PutPromotion,
    responses(
        (status = 200, description = "the promotion, redefined", body = PromotionView),
        (status = 201, description = "the promotion, created", body = PromotionView),
        (status = 400, description = "`validation` (the field named) or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 409, description = "`conflict`: another live promotion has the code", body = ErrorBody),
    ))]
pub async fn put(app: App, id: String, b: PutPromotion) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let def = definition(b)?;
    let before = app.router.get::<Promotions>(BOOK_ID).await?;
    let existed = before.promotions.contains_key(&id);
    let cmd = PromotionCommand::Put {
        id: id.clone(),
        def: Box::new(def),
        now: now_ms(),
    };
    let applied = app.router.command::<Promotions>(BOOK_ID, cmd).await?;
    let p = applied
        .state
        .promotions
        .get(&id)
        .ok_or_else(|| ApiError::internal("a defined promotion is not in the book"))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &view(&app, p).await?))
}

/// One promotion, with its redemptions. Operators and admins.
#[utoipa::path(get, path = "/v1/promotions/{id}", operation_id = "get_promotion", tag = "promotions",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the promotion")),
    responses(
        (status = 200, description = "the promotion", body = PromotionView),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, id: String) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let book = app.router.get::<Promotions>(BOOK_ID).await?;
    let p = book
        .promotions
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no promotion {id}")))?;
    Ok(json(StatusCode::OK, &view(&app, p).await?))
}

/// Every promotion (at most 200, ended ones included), by id. Operators and admins.
#[utoipa::path(get, path = "/v1/promotions", operation_id = "list_promotions", tag = "promotions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the promotions", body = PromotionList),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list(app: App) -> Result<Response, ApiError> {
    let book = app.router.get::<Promotions>(BOOK_ID).await?;
    let all: Vec<Promotion> = book.promotions.values().cloned().collect();
    let mut items = Vec::with_capacity(all.len());
    for chunk in all.chunks(LEDGER_READS) {
        let views = futures::future::try_join_all(chunk.iter().map(|p| view(&app, p))).await?;
        items.extend(views);
    }
    Ok(json(StatusCode::OK, &PromotionList { items }))
}

/// Ends a promotion now: it applies to no cart or checkout after this (orders already
/// holding a redemption keep it). Operators and admins.
#[utoipa::path(delete, path = "/v1/promotions/{id}", operation_id = "end_promotion", tag = "promotions",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the promotion")),
    responses(
        (status = 200, description = "the promotion, ended", body = PromotionView),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn end(app: App, id: String) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let cmd = PromotionCommand::End {
        id: id.clone(),
        now: now_ms(),
    };
    let applied = app.router.command::<Promotions>(BOOK_ID, cmd).await?;
    let p = applied
        .state
        .promotions
        .get(&id)
        .ok_or_else(|| ApiError::internal("an ended promotion is not in the book"))?;
    Ok(json(StatusCode::OK, &view(&app, p).await?))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, get, path, put};
    let put_promotion = route!(
        app,
        "PUT /v1/promotions/{id}",
        path!("v1" / "promotions" / String)
            .and(end())
            .and(put())
            .and(filters::staff(app))
            .and(filters::body(app)),
        |id, _p, b, a| self::put(a, id, b)
    );
    let get_promotion = route!(
        app,
        "GET /v1/promotions/{id}",
        path!("v1" / "promotions" / String)
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |id, _p, a| self::get(a, id)
    );
    let list_promotions = route!(
        app,
        "GET /v1/promotions",
        path!("v1" / "promotions")
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |_p, a| list(a)
    );
    let end_promotion = route!(
        app,
        "DELETE /v1/promotions/{id}",
        path!("v1" / "promotions" / String)
            .and(end())
            .and(delete())
            .and(filters::staff(app)),
        |id, _p, a| self::end(a, id)
    );
    put_promotion
        .or(get_promotion)
        .or(list_promotions)
        .or(end_promotion)
}
