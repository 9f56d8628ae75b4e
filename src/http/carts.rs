//! Cart routes: create, read, change lines, and claim a guest cart. Prices come from the
//! catalog at the moment an item is added. A cart belongs to the user who created (or
//! claimed) it; anyone else gets 404, so ids do not leak. Guest carts are usable by
//! their id while `auth.allow_guest_checkout` is on.

use super::dto::carts::{AddItem, Cart as CartView, SetItemQuantity};
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{may_use, sku, uuid, Access};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::actors::promotion_steps::quote;
use crate::actors::EntityClient;
use crate::app::App;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::domain::cart::{Cart, CartCommand, CartState};
use crate::domain::pricing::Priced;
use crate::domain::product::Product;
use crate::domain::Sku;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

/// How old a node's copy of the promotion book may be when it prices a cart it shows.
pub const PROMOTIONS_MAX_AGE_MS: u64 = 1000;

/// The cart priced with the promotions that apply to it now.
pub async fn priced(app: &App, c: &CartState) -> Result<Priced, ApiError> {
    let book = app.promotions.recent(PROMOTIONS_MAX_AGE_MS).await?;
    let lines: Vec<_> = c
        .lines
        .iter()
        .map(|(s, l)| (s.clone(), l.quantity, l.unit_price_minor))
        .collect();
    let customer = c.owner.map(|o| o.to_string());
    let client: &dyn EntityClient = &app.router;
    Ok(quote(
        client,
        &book,
        &lines,
        &c.coupons,
        customer.as_deref(),
        now_ms(),
    )
    .await?)
}

async fn view(app: &App, id: Uuid, c: &CartState) -> Result<CartView, ApiError> {
    let p = priced(app, c).await?;
    Ok(CartView::new(id, c, &p, &app.config.shop.currency))
}

/// Creates a cart, owned by the caller when a user token is given, else a guest cart.
#[utoipa::path(post, path = "/v1/carts", operation_id = "create_cart", tag = "carts",
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "the new cart", body = CartView, links(
            ("GetCart" = (operation_id = "get_cart", parameters(("id" = "$response.body#/id")))),
            ("AddCartItem" = (operation_id = "add_cart_item", parameters(("id" = "$response.body#/id")))),
            ("CheckoutCart" = (operation_id = "checkout", parameters(("id" = "$response.body#/id")))),
            ("ClaimCart" = (operation_id = "claim_cart", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 401, description = "`invalid_token` or `token_expired`; `unauthorized` when guest carts are disabled", body = ErrorBody),
    ))]
pub async fn create(app: App, p: Principal) -> Result<Response, ApiError> {
    let owner = p.user_id();
    if owner.is_none() && p == Principal::Anonymous && !app.identity.allow_guest_checkout {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "guest carts are disabled; sign in first",
        ));
    }
    let id = Uuid::new_v4();
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::Create { owner })
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &view(&app, id, &applied.state).await?,
    ))
}

/// A cart. Someone else's cart is 404.
#[utoipa::path(get, path = "/v1/carts/{id}", operation_id = "get_cart", tag = "carts",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, id: String, p: Principal) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let c = accessible(&app, &p, id, Access::Read).await?;
    Ok(json(StatusCode::OK, &view(&app, id, &c).await?))
}

/// The cart's state if it exists and `p` may use it that way; 404 otherwise.
pub async fn accessible(
    app: &App,
    p: &Principal,
    id: Uuid,
    access: Access,
) -> Result<CartState, ApiError> {
    let c = app.router.get::<Cart>(&id.to_string()).await?;
    if c.created && may_use(p, c.owner, app.identity.allow_guest_checkout, access) {
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

/// Adds units of a product at its current price.
#[utoipa::path(post, path = "/v1/carts/{id}/items", operation_id = "add_cart_item", tag = "carts",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    request_body = AddItem,
    responses(
        (status = 200, description = "the cart", body = CartView, links(
            ("SetCartItem" = (operation_id = "set_cart_item", parameters(("id" = "$response.body#/id"), ("sku" = "$response.body#/items/0/sku")))),
            ("RemoveCartItem" = (operation_id = "remove_cart_item", parameters(("id" = "$response.body#/id"), ("sku" = "$response.body#/items/0/sku")))),
            ("CheckoutCart" = (operation_id = "checkout", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart or product", body = ErrorBody),
        (status = 409, description = "`product_archived`, `cart_checked_out`, or a line limit reached", body = ErrorBody),
    ))]
pub async fn add_item(
    app: App,
    id: String,
    p: Principal,
    b: AddItem,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let sku = Sku::parse(&b.sku).map_err(ApiError::validation)?;
    let max = crate::domain::ids::MAX_ADD_QUANTITY;
    if !(1..=max).contains(&b.quantity) {
        return Err(ApiError::validation(format!(
            "quantity must be between 1 and {max}"
        )));
    }
    accessible(&app, &p, id, Access::Write).await?;
    let unit_price_minor = price_of(&app, &sku).await?;
    let cmd = CartCommand::AddItem {
        sku,
        quantity: b.quantity,
        unit_price_minor,
    };
    let applied = app.router.command::<Cart>(&id.to_string(), cmd).await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state).await?))
}

/// Sets a line's quantity; 0 removes the line.
#[utoipa::path(put, path = "/v1/carts/{id}/items/{sku}", operation_id = "set_cart_item", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU"),
    ),
    request_body = SetItemQuantity,
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, product or line", body = ErrorBody),
        (status = 409, description = "`product_archived`, `cart_checked_out`, or a line limit reached", body = ErrorBody),
    ))]
pub async fn set_item(
    app: App,
    id: String,
    sku_s: String,
    p: Principal,
    b: SetItemQuantity,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let sku = sku(&sku_s)?;
    let max = crate::domain::ids::MAX_LINE_QUANTITY;
    if b.quantity > max {
        return Err(ApiError::validation(format!(
            "quantity must be between 0 and {max}"
        )));
    }
    let cart = accessible(&app, &p, id, Access::Write).await?;
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
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state).await?))
}

/// Removes a line.
#[utoipa::path(delete, path = "/v1/carts/{id}/items/{sku}", operation_id = "remove_cart_item", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU"),
    ),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 400, description = "`validation`: not a UUID or SKU", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart or line", body = ErrorBody),
        (status = 409, description = "`cart_checked_out`", body = ErrorBody),
    ))]
pub async fn remove_item(
    app: App,
    id: String,
    sku_s: String,
    p: Principal,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let sku = sku(&sku_s)?;
    accessible(&app, &p, id, Access::Write).await?;
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::RemoveItem { sku })
        .await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state).await?))
}

/// Takes over a guest cart (or re-claims one's own). Needs a user token.
#[utoipa::path(post, path = "/v1/carts/{id}/claim", operation_id = "claim_cart", tag = "carts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    responses(
        (status = 200, description = "the cart, now owned by the caller", body = CartView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token cannot own carts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, or someone else's", body = ErrorBody),
        (status = 409, description = "`cart_checked_out`", body = ErrorBody),
    ))]
pub async fn claim(app: App, id: String, owner: Uuid) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let c = app.router.get::<Cart>(&id.to_string()).await?;
    let claimable = c.created
        && (c.owner == Some(owner) || (c.owner.is_none() && app.identity.allow_guest_checkout));
    if !claimable {
        return Err(ApiError::not_found(format!("no cart {id}")));
    }
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::Claim { owner })
        .await?;
    Ok(json(StatusCode::OK, &view(&app, id, &applied.state).await?))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, get, path, post, put};
    let who = || filters::principal(app);
    let get_cart = route!(
        app,
        "GET /v1/carts/{id}",
        path!("v1" / "carts" / String)
            .and(end())
            .and(get())
            .and(who()),
        |id, p, a| self::get(a, id, p)
    );
    let add_item = route!(
        app,
        "POST /v1/carts/{id}/items",
        path!("v1" / "carts" / String / "items")
            .and(end())
            .and(post())
            .and(who())
            .and(filters::body(app)),
        |id, p, b, a| add_item(a, id, p, b)
    );
    let create_cart = route!(
        app,
        "POST /v1/carts",
        path!("v1" / "carts").and(end()).and(post()).and(who()),
        |p, a| create(a, p)
    );
    let set_item = route!(
        app,
        "PUT /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(put())
            .and(who())
            .and(filters::body(app)),
        |id, sku, p, b, a| set_item(a, id, sku, p, b)
    );
    let remove_item = route!(
        app,
        "DELETE /v1/carts/{id}/items/{sku}",
        path!("v1" / "carts" / String / "items" / String)
            .and(end())
            .and(delete())
            .and(who()),
        |id, sku, p, a| remove_item(a, id, sku, p)
    );
    let claim = route!(
        app,
        "POST /v1/carts/{id}/claim",
        path!("v1" / "carts" / String / "claim")
            .and(end())
            .and(post())
            .and(filters::user(app)),
        |id, u, a| claim(a, id, u)
    );
    get_cart
        .or(add_item)
        .or(create_cart)
        .or(set_item)
        .or(remove_item)
        .or(claim)
}
