//! Reviews: a verified buyer writes (or edits) one per product; anyone reads a product's
//! approved reviews with its rating; shoppers report one; operators and admins approve
//! or reject, from the moderation queue.
//!
//! A review is an entity placed in its product's partition; the listings read the review
//! index through the router, and the product's rating is kept by the `ratings`
//! projection.

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::reviews::{ProductReviews, RejectReview, ReviewPage, ReviewView, WriteReview};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::extract::sku;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::product::Product;
use crate::domain::review::{
    content_flags, parse_review_id, review_id, Review, ReviewCommand, ReviewStatus, ReviewText,
    PENDING_PREFIX,
};
use crate::domain::Sku;
use uuid::Uuid;

/// Orders of the caller read to find a paid one holding the SKU (newest first).
const MAX_ORDERS_CHECKED: usize = 1000;
/// Reviews fetched at once for a listing page.
const FETCH: usize = 10;

/// Whether `user` has a paid (or fulfilled) order holding `sku`.
async fn verified_buyer(app: &App, user: Uuid, sku: &Sku) -> Result<bool, ApiError> {
    let mut cursor = None;
    let mut seen = 0;
    while seen < MAX_ORDERS_CHECKED {
        let page = app
            .router
            .list_user_orders(user, cursor, 100, false)
            .await?;
        let ids: Vec<String> = page
            .rows
            .iter()
            .filter_map(|r| r.key.rsplit('/').next().map(str::to_owned))
            .collect();
        seen += ids.len();
        for chunk in ids.chunks(FETCH) {
            let orders =
                futures::future::try_join_all(chunk.iter().map(|id| app.router.get::<Order>(id)))
                    .await?;
            let bought = orders.iter().any(|o| {
                matches!(o.status, OrderStatus::Paid | OrderStatus::Fulfilled)
                    && o.lines.iter().any(|l| &l.sku == sku)
            });
            if bought {
                return Ok(true);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(false)
}

/// The reviews `ids` (read [`FETCH`] at a time) that are in `status`: a listing's keys
/// and the reviews' states are written in one batch, so this only drops a review whose
/// state changed after the listing was read.
async fn fetch(
    app: &App,
    ids: &[String],
    status: ReviewStatus,
) -> Result<Vec<ReviewView>, ApiError> {
    let mut items = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(FETCH) {
        let states =
            futures::future::try_join_all(chunk.iter().map(|id| app.router.get::<Review>(id)))
                .await?;
        items.extend(
            chunk
                .iter()
                .zip(&states)
                .filter(|(_, s)| s.status == status)
                .filter_map(|(id, s)| ReviewView::new(id, s)),
        );
    }
    Ok(items)
}

async fn review(app: &App, id: &str) -> Result<ReviewView, ApiError> {
    if parse_review_id(id).is_none() {
        return Err(ApiError::not_found(format!("no review {id}")));
    }
    let s = app.router.get::<Review>(id).await?;
    ReviewView::new(id, &s).ok_or_else(|| ApiError::not_found(format!("no review {id}")))
}

/// Writes the caller's review of a product (201), or edits it (200; an edit goes back to
/// moderation unless reviews are auto-approved). Only a verified buyer: a shopper with a
/// paid order holding the SKU.
#[utoipa::path(post, path = "/v1/products/{sku}/reviews", operation_id = "write_review", tag = "reviews",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product")),
    request_body = WriteReview,
    responses(
        (status = 200, description = "the review, edited", body = ReviewView),
        (status = 201, description = "the review, written", body = ReviewView),
        (status = 400, description = "`validation` (rating 1 to 5, title, body) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`not_a_verified_buyer`: no paid order of the caller holds this product", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    ))]
pub async fn write(
    app: App,
    sku_s: String,
    user: Uuid,
    b: WriteReview,
) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let product = app.router.get::<Product>(sku.as_str()).await?;
    if !product.exists() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    if !verified_buyer(&app, user, &sku).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_verified_buyer",
            format!("only a shopper with a paid order holding {sku} may review it"),
        ));
    }
    let id = review_id(&sku, user);
    let existed = app.router.get::<Review>(&id).await?.text.is_some();
    let cfg = &app.config.reviews;
    let flags = content_flags(
        &format!("{}\n{}", b.title, b.body),
        &cfg.blocked_words,
        cfg.flag_links,
    );
    let cmd = ReviewCommand::Write {
        text: ReviewText {
            sku,
            author: user,
            rating: b.rating,
            title: b.title.trim().to_owned(),
            body: b.body.trim().to_owned(),
        },
        flags,
        auto_approve: cfg.auto_approve,
        now: now_ms(),
    };
    let applied = app.router.command::<Review>(&id, cmd).await?;
    let view = ReviewView::new(&id, &applied.state)
        .ok_or_else(|| ApiError::internal("a written review has no text"))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A product's approved reviews, newest first (`sort=recent`, the default) or best
/// rated first (`sort=rating`), with the product's rating. Public.
#[utoipa::path(get, path = "/v1/products/{sku}/reviews", operation_id = "list_product_reviews", tag = "reviews",
    params(
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product"),
        ("sort" = Option<String>, Query, description = "`recent` (default) or `rating`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "the reviews and the rating", body = ProductReviews),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    ))]
pub async fn list(app: App, sku_s: String, q: ListQuery) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let by = match q.sort.as_deref() {
        None | Some("") | Some("recent") => "t",
        Some("rating") => "r",
        Some(other) => {
            return Err(ApiError::validation(format!(
                "sort is recent or rating, not {other:?}"
            )))
        }
    };
    let limit = super::extract::page_limit(q.limit.as_deref(), 20, 50)?;
    let product = app.router.get::<Product>(sku.as_str()).await?;
    if !product.exists() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    let prefix = format!("{sku}/{by}/");
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = app
        .router
        .list_reviews(&prefix, cursor, limit, false)
        .await?;
    let ids: Vec<String> = page
        .rows
        .iter()
        .filter_map(|r| r.key.rsplit('/').next())
        .filter_map(|a| Uuid::parse_str(a).ok())
        .map(|author| review_id(&sku, author))
        .collect();
    let items = fetch(&app, &ids, ReviewStatus::Approved).await?;
    let body = ProductReviews {
        items,
        rating_average: product.rating.average(),
        rating_count: product.rating.count,
        next_cursor: page.next_cursor,
    };
    Ok(json(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Reviews waiting for moderation, newest first. Operators and admins.
#[utoipa::path(get, path = "/v1/reviews/pending", operation_id = "list_pending_reviews", tag = "reviews",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "the queue", body = ReviewPage),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn pending(app: App, q: QueueQuery) -> Result<Response, ApiError> {
    let limit = super::extract::page_limit(q.limit.as_deref(), 20, 50)?;
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = app
        .router
        .list_reviews(PENDING_PREFIX, cursor, limit, false)
        .await?;
    let ids: Vec<String> = page
        .rows
        .iter()
        .filter_map(|r| r.key.split_once('/').map(|(_, id)| id.to_owned()))
        .collect();
    let items = fetch(&app, &ids, ReviewStatus::Pending).await?;
    let body = ReviewPage {
        items,
        next_cursor: page.next_cursor,
    };
    Ok(json(StatusCode::OK, &body))
}

async fn moderate(app: &App, id: &str, cmd: ReviewCommand) -> Result<Response, ApiError> {
    review(app, id).await?;
    let applied = app.router.command::<Review>(id, cmd).await?;
    let view = ReviewView::new(id, &applied.state)
        .ok_or_else(|| ApiError::not_found(format!("no review {id}")))?;
    Ok(json(StatusCode::OK, &view))
}

/// Approves a review: it is listed under its product and counts in its rating.
/// Operators and admins.
#[utoipa::path(post, path = "/v1/reviews/{id}/approve", operation_id = "approve_review", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the review (`{sku}~{author}`)")),
    responses(
        (status = 200, description = "the review", body = ReviewView),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn approve(app: App, id: String) -> Result<Response, ApiError> {
    moderate(&app, &id, ReviewCommand::Approve { now: now_ms() }).await
}

/// Rejects a review with a reason: it is listed nowhere. Operators and admins.
#[utoipa::path(post, path = "/v1/reviews/{id}/reject", operation_id = "reject_review", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the review (`{sku}~{author}`)")),
    request_body = RejectReview,
    responses(
        (status = 200, description = "the review", body = ReviewView),
        (status = 400, description = "`validation`: a reason of 1 to 500 characters; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn reject(app: App, id: String, b: RejectReview) -> Result<Response, ApiError> {
    let cmd = ReviewCommand::Reject {
        reason: b.reason,
        now: now_ms(),
    };
    moderate(&app, &id, cmd).await
}

/// Reports a review; three reports send an approved one back to moderation. Any signed-in
/// user, once per review.
#[utoipa::path(post, path = "/v1/reviews/{id}/report", operation_id = "report_review", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the review (`{sku}~{author}`)")),
    responses(
        (status = 204, description = "reported"),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn report(app: App, id: String, user: Uuid) -> Result<Response, ApiError> {
    review(&app, &id).await?;
    app.router
        .command::<Review>(
            &id,
            ReviewCommand::Report {
                by: user,
                now: now_ms(),
            },
        )
        .await?;
    use warp::Reply as _;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let write_review = route!(
        app,
        "POST /v1/products/{sku}/reviews",
        path!("v1" / "products" / String / "reviews")
            .and(end())
            .and(post())
            .and(filters::user(app))
            .and(filters::small_body(app)),
        |sku, u, b, a| write(a, sku, u, b)
    );
    let list_reviews = route!(
        app,
        "GET /v1/products/{sku}/reviews",
        path!("v1" / "products" / String / "reviews")
            .and(end())
            .and(get())
            .and(warp::query::<ListQuery>()),
        |sku, q, a| list(a, sku, q)
    );
    let pending_reviews = route!(
        app,
        "GET /v1/reviews/pending",
        path!("v1" / "reviews" / "pending")
            .and(end())
            .and(get())
            .and(filters::staff(app))
            .and(warp::query::<QueueQuery>()),
        |_p, q, a| pending(a, q)
    );
    let approve_review = route!(
        app,
        "POST /v1/reviews/{id}/approve",
        path!("v1" / "reviews" / String / "approve")
            .and(end())
            .and(post())
            .and(filters::staff(app)),
        |id, _p, a| approve(a, id)
    );
    let reject_review = route!(
        app,
        "POST /v1/reviews/{id}/reject",
        path!("v1" / "reviews" / String / "reject")
            .and(end())
            .and(post())
            .and(filters::staff(app))
            .and(filters::small_body(app)),
        |id, _p, b, a| reject(a, id, b)
    );
    let report_review = route!(
        app,
        "POST /v1/reviews/{id}/report",
        path!("v1" / "reviews" / String / "report")
            .and(end())
            .and(post())
            .and(filters::user(app)),
        |id, u, a| report(a, id, u)
    );
    write_review
        .or(list_reviews)
        .or(pending_reviews)
        .or(approve_review)
        .or(reject_review)
        .or(report_review)
}
