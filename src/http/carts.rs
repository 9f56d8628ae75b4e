//! Cart routes: create, read, and change lines. Prices come from the catalog at the
//! moment an item is added.

use super::error::ApiError;
use super::extract::{parse_json, sku, uuid};
use super::{json, views};
use crate::app::App;
use crate::domain::cart::{Cart, CartCommand, CartState};
use crate::domain::product::Product;
use crate::domain::Sku;
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

fn view(app: &App, id: Uuid, c: &CartState) -> serde_json::Value {
    views::cart(id, c, &app.config.shop.currency)
}

pub async fn create(app: App) -> Result<Response, ApiError> {
    let id = Uuid::new_v4();
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::Create)
        .await?;
    Ok(json(StatusCode::CREATED, &view(&app, id, &applied.state)))
}

pub async fn get(app: App, id: String) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let c = existing(&app, id).await?;
    Ok(json(StatusCode::OK, &view(&app, id, &c)))
}

/// The cart's state, or 404 if it was never created.
pub async fn existing(app: &App, id: Uuid) -> Result<CartState, ApiError> {
    let c = app.router.get::<Cart>(&id.to_string()).await?;
    if c.created {
        Ok(c)
    } else {
        Err(ApiError::not_found(format!("no cart {id}")))
    }
}

/// The current price of a purchasable product: 404 if unknown, 409 if archived.
async fn price_of(app: &App, sku: &Sku) -> Result<i64, ApiError> {
    let p = match app.catalog.get(sku) {
        Some(p) => p,
        None => app.router.get::<Product>(sku.as_str()).await?,
    };
    match &p.spec {
        None => Err(ApiError::not_found(format!("no product {sku}"))),
        Some(_) if p.archived => Err(ApiError::new(
            StatusCode::CONFLICT,
            "product_archived",
            format!("{sku} is archived and cannot be bought"),
        )),
        Some(s) => Ok(s.price_minor),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    sku: String,
    quantity: u32,
}

pub async fn add_item(
    app: App,
    id: String,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let b: AddBody = parse_json(&body?)?;
    let sku = Sku::parse(&b.sku).map_err(ApiError::validation)?;
    if !(1..=crate::domain::ids::MAX_ADD_QUANTITY).contains(&b.quantity) {
        return Err(ApiError::validation(format!(
            "quantity must be between 1 and {}",
            crate::domain::ids::MAX_ADD_QUANTITY
        )));
    }
    existing(&app, id).await?;
    let unit_price_minor = price_of(&app, &sku).await?;
    let cmd = CartCommand::AddItem {
        sku,
        quantity: b.quantity,
        unit_price_minor,
    };
    let applied = app.router.command::<Cart>(&id.to_string(), cmd).await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    quantity: u32,
}

pub async fn set_item(
    app: App,
    id: String,
    sku_s: String,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let sku = sku(&sku_s)?;
    let b: SetBody = parse_json(&body?)?;
    if b.quantity > crate::domain::ids::MAX_LINE_QUANTITY {
        return Err(ApiError::validation(format!(
            "quantity must be between 0 and {}",
            crate::domain::ids::MAX_LINE_QUANTITY
        )));
    }
    let cart = existing(&app, id).await?;
    let unit_price_minor = match (b.quantity, cart.lines.get(&sku)) {
        (0, Some(l)) => l.unit_price_minor,
        _ => price_of(&app, &sku).await?,
    };
    let cmd = CartCommand::SetQuantity {
        sku,
        quantity: b.quantity,
        unit_price_minor,
    };
    let applied = app.router.command::<Cart>(&id.to_string(), cmd).await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state)))
}

pub async fn remove_item(app: App, id: String, sku_s: String) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let sku = sku(&sku_s)?;
    existing(&app, id).await?;
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::RemoveItem { sku })
        .await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state)))
}
