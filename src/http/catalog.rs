//! Catalog and inventory routes: products (operator writes, public reads) and stock.

use super::dto::catalog::{
    Inventory, InventoryAdjustment, Product as ProductView, ProductInput, ProductPage,
};
use super::dto::{missing, ErrorBody};
use super::error::ApiError;
use super::extract::sku;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::category::{Categories, TREE_ID};
use crate::domain::product::{Product, ProductCommand, ProductEvent, ProductSpec};
use crate::domain::stock::{Stock, StockCommand};
use crate::domain::{EntityKind, Sku};
use crate::router::listing::RowData;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

/// Creates or replaces a product. Operators and admins.
#[utoipa::path(put, path = "/v1/products/{sku}", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    request_body = ProductInput,
    responses(
        (status = 200, description = "updated", body = ProductView),
        (status = 201, description = "created", body = ProductView, links(
            ("GetProduct" = (operation_id = "get_product", parameters(("sku" = "$response.body#/sku")))),
            ("GetInventory" = (operation_id = "get_inventory", parameters(("sku" = "$response.body#/sku")))),
            ("AdjustInventory" = (operation_id = "adjust_inventory", parameters(("sku" = "$response.body#/sku")))),
            ("ArchiveProduct" = (operation_id = "archive_product", parameters(("sku" = "$response.body#/sku")))),
            ("ProductEvents" = (operation_id = "entity_events", parameters(("kind" = "product"), ("id" = "$response.body#/sku")))),
        )),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
    ))]
pub async fn put_product(
    app: App,
    sku_s: String,
    p: Principal,
    b: ProductInput,
) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let spec = ProductSpec {
        name: b.name.trim().to_owned(),
        description: b
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty()),
        price_minor: b.price_minor,
        category: b.category.trim().to_owned(),
        tags: b.tags.iter().map(|t| t.trim().to_owned()).collect(),
    };
    spec.validate().map_err(ApiError::validation)?;
    let applied = app
        .router
        .command::<Product>(
            sku.as_str(),
            ProductCommand::Upsert {
                spec,
                by: p.actor(),
            },
        )
        .await?;
    let created = applied
        .events
        .iter()
        .any(|e| matches!(e, ProductEvent::Created { .. }));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(
        status,
        &ProductView::new(&sku, &applied.state, &app.config.shop.currency),
    ))
}

/// A product, archived or not.
#[utoipa::path(get, path = "/v1/products/{sku}", tag = "catalog",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the product", body = ProductView),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_product(app: App, sku_s: String) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let state = app.router.get::<Product>(sku.as_str()).await?;
    if !state.exists() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    Ok(json(
        StatusCode::OK,
        &ProductView::new(&sku, &state, &app.config.shop.currency),
    ))
}

/// Archives a product: it stays readable but can no longer be bought. Operators and admins.
#[utoipa::path(delete, path = "/v1/products/{sku}", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the archived product", body = ProductView),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn archive_product(app: App, sku_s: String, p: Principal) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let applied = app
        .router
        .command::<Product>(sku.as_str(), ProductCommand::Archive { by: p.actor() })
        .await?;
    Ok(json(
        StatusCode::OK,
        &ProductView::new(&sku, &applied.state, &app.config.shop.currency),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    category: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    partial: Option<String>,
}

/// Searches purchasable products, ordered by SKU.
#[utoipa::path(get, path = "/v1/products", tag = "catalog",
    params(
        ("q" = Option<String>, Query, max_length = 200, description = "words that must all prefix a word of the name, description or tags"),
        ("category" = Option<String>, Query, description = "a category id: its products and those of every category below it (case-insensitive)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
    ),
    responses(
        (status = 200, description = "a page of products", body = ProductPage),
        (status = 400, description = "`validation`: a bad `limit`, `cursor` or `q`, or an unknown query parameter", body = ErrorBody),
    ))]
pub async fn list_products(app: App, q: ListQuery) -> Result<Response, ApiError> {
    let limit = match q.limit.as_deref() {
        None | Some("") => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(
                    "limit must be an integer from 1 to 100",
                ))
            }
        },
    };
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(Sku::parse(c).map_err(|_| ApiError::validation("cursor is not valid"))?),
        None => None,
    };
    if q.q.as_ref().is_some_and(|s| s.len() > 200) {
        return Err(ApiError::validation("q must be at most 200 characters"));
    }
    let partial = super::machines::partial(q.partial.as_deref())?;
    let categories = match q.category.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let tree = app.router.get::<Categories>(TREE_ID).await?;
            Some(tree.descendants(c).into_iter().collect())
        }
    };
    let page = app
        .router
        .search_products(
            q.q.clone(),
            categories,
            cursor.map(|c| c.to_string()),
            limit,
            partial,
        )
        .await?;
    let currency = &app.config.shop.currency;
    let items: Vec<_> = page
        .rows
        .iter()
        .filter_map(|r| match &r.data {
            RowData::Product(state) => Some((Sku::parse(&r.key).ok()?, state)),
            RowData::Key | RowData::Notification(_) | RowData::Record(_) => None,
        })
        .map(|(sku, state)| ProductView::new(&sku, state, currency))
        .collect();
    let body = ProductPage {
        items,
        next_cursor: page.next_cursor,
        missing_partitions: missing(partial, &page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Adds or removes stock. Operators and admins.
#[utoipa::path(post, path = "/v1/inventory/{sku}/adjustments", operation_id = "adjust_inventory", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    request_body = InventoryAdjustment,
    responses(
        (status = 200, description = "the new stock", body = Inventory),
        (status = 400, description = "`validation` (an unknown location among them) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: on hand at the location would fall below what is reserved there", body = ErrorBody),
    ))]
pub async fn adjust(
    app: App,
    sku_s: String,
    p: Principal,
    b: InventoryAdjustment,
) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    require_product(&app, &sku).await?;
    let location = b
        .location
        .unwrap_or_else(|| crate::domain::location::MAIN.to_owned());
    let book = app
        .router
        .get::<crate::domain::location::Locations>(crate::domain::location::BOOK_ID)
        .await?;
    if book.get(&location).is_none() {
        return Err(ApiError::validation(format!(
            "location: no location {location}"
        )));
    }
    let applied = app
        .router
        .command::<Stock>(
            sku.as_str(),
            StockCommand::Adjust {
                delta: b.delta,
                reason: b.reason,
                by: p.actor(),
                location,
            },
        )
        .await?;
    Ok(json(StatusCode::OK, &Inventory::new(&sku, &applied.state)))
}

/// Stock of a product.
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "catalog",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the stock", body = Inventory),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    ))]
pub async fn get_inventory(app: App, sku_s: String) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    if !app
        .router
        .entity_exists(EntityKind::Sku, sku.as_str())
        .await?
    {
        require_product(&app, &sku).await?;
    }
    let state = app.router.get::<Stock>(sku.as_str()).await?;
    Ok(json(StatusCode::OK, &Inventory::new(&sku, &state)))
}

async fn require_product(app: &App, sku: &Sku) -> Result<(), ApiError> {
    if app.catalog.contains(sku) {
        return Ok(());
    }
    let p = app.router.get::<Product>(sku.as_str()).await?;
    if p.exists() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no product {sku}")))
    }
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, get, path, post, put};
    let get_product = route!(
        app,
        "GET /v1/products/{sku}",
        path!("v1" / "products" / String).and(end()).and(get()),
        |sku, a| get_product(a, sku)
    );
    let list_products = route!(
        app,
        "GET /v1/products",
        path!("v1" / "products")
            .and(end())
            .and(get())
            .and(warp::query::<ListQuery>()),
        |q, a| list_products(a, q)
    );
    let inventory = route!(
        app,
        "GET /v1/inventory/{sku}",
        path!("v1" / "inventory" / String).and(end()).and(get()),
        |sku, a| get_inventory(a, sku)
    );
    let put_product = route!(
        app,
        "PUT /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(put())
            .and(filters::staff(app))
            .and(filters::body(app)),
        |sku, p, b, a| put_product(a, sku, p, b)
    );
    let archive_product = route!(
        app,
        "DELETE /v1/products/{sku}",
        path!("v1" / "products" / String)
            .and(end())
            .and(delete())
            .and(filters::staff(app)),
        |sku, p, a| archive_product(a, sku, p)
    );
    let adjust = route!(
        app,
        "POST /v1/inventory/{sku}/adjustments",
        path!("v1" / "inventory" / String / "adjustments")
            .and(end())
            .and(post())
            .and(filters::staff(app))
            .and(filters::body(app)),
        |sku, p, b, a| adjust(a, sku, p, b)
    );
    get_product
        .or(list_products)
        .or(inventory)
        .or(put_product)
        .or(archive_product)
        .or(adjust)
}
