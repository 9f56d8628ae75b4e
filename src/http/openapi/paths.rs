//! One `#[utoipa::path]` per route of `crate::http::api`.
//!
//! The real handlers take warp-specific arguments, so each route is described on a
//! small doc-only function of the same name here. Each lists the route's parameters,
//! body, success answers and the 4xx answers the handler itself can give. The answers
//! every route shares (429, 503, 504, 413 on routes with a body, and the `X-Request-Id`
//! header) are added by [`super::EdgeResponses`], from one table.
//!
//! Conventions: `security(("bearer" = []))` means a token is required;
//! `security((), ("bearer" = []))` means it is optional (a guest may call, and a
//! present token must be valid); no `security` means the route ignores it.
#![allow(dead_code)]

use super::schemas::*;

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

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
pub fn register() {}

/// Exchanges an email and password for a token pair.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "signed in", body = TokenPair),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`, the same for an unknown email and a wrong password", body = ErrorBody),
    ))]
pub fn login() {}

/// Rotates a refresh token: the presented token is used up and a new pair issued.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "a new pair", body = TokenPair),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_token`, or `refresh_token_reused` (the whole family is then revoked)", body = ErrorBody),
    ))]
pub fn refresh() {}

/// Revokes the refresh token's family.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "signed out"),
        (status = 400, description = "`invalid_json` or `validation`", body = ErrorBody),
        (status = 401, description = "`invalid_token`: not a refresh token", body = ErrorBody),
    ))]
pub fn logout() {}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/me", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the profile", body = Profile),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no profile", body = ErrorBody),
        (status = 404, description = "`not_found`: the user no longer exists", body = ErrorBody),
    ))]
pub fn get_me() {}

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
pub fn update_me() {}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/me/orders", tag = "me",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::machines::PARTIAL),
    ),
    responses(
        (status = 200, description = "a page of orders", body = OrderPage),
        (status = 400, description = "`validation`: a bad `limit` or `cursor`, or an unknown query parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token has no orders", body = ErrorBody),
    ))]
pub fn my_orders() {}

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
pub fn set_roles() {}

// ---------------------------------------------------------------------------------------
// Catalog and inventory
// ---------------------------------------------------------------------------------------

/// Creates or replaces a product. Operators and admins.
#[utoipa::path(put, path = "/v1/products/{sku}", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    request_body = ProductInput,
    responses(
        (status = 200, description = "updated", body = Product),
        (status = 201, description = "created", body = Product, links(
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
pub fn put_product() {}

/// Searches purchasable products, ordered by SKU.
#[utoipa::path(get, path = "/v1/products", tag = "catalog",
    params(
        ("q" = Option<String>, Query, max_length = 200, description = "words that must all prefix a word of the name, description or tags"),
        ("category" = Option<String>, Query, description = "exact category, case-insensitive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size (default 20)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = super::machines::PARTIAL),
    ),
    responses(
        (status = 200, description = "a page of products", body = ProductPage),
        (status = 400, description = "`validation`: a bad `limit`, `cursor` or `q`, or an unknown query parameter", body = ErrorBody),
    ))]
pub fn list_products() {}

/// A product, archived or not.
#[utoipa::path(get, path = "/v1/products/{sku}", tag = "catalog",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the product", body = Product),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_product() {}

/// Archives a product: it stays readable but can no longer be bought. Operators and admins.
#[utoipa::path(delete, path = "/v1/products/{sku}", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the archived product", body = Product),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn archive_product() {}

/// Adds or removes stock. Operators and admins.
#[utoipa::path(post, path = "/v1/inventory/{sku}/adjustments", tag = "catalog",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    request_body = InventoryAdjustment,
    responses(
        (status = 200, description = "the new stock", body = Inventory),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: on hand would fall below what is reserved", body = ErrorBody),
    ))]
pub fn adjust_inventory() {}

/// Stock of a product.
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "catalog",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU")),
    responses(
        (status = 200, description = "the stock", body = Inventory),
        (status = 400, description = "`validation`: not a valid SKU", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    ))]
pub fn get_inventory() {}

// ---------------------------------------------------------------------------------------
// Carts
// ---------------------------------------------------------------------------------------

/// Creates a cart, owned by the caller when a user token is given, else a guest cart.
#[utoipa::path(post, path = "/v1/carts", tag = "carts",
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "the new cart", body = Cart, links(
            ("GetCart" = (operation_id = "get_cart", parameters(("id" = "$response.body#/id")))),
            ("AddCartItem" = (operation_id = "add_cart_item", parameters(("id" = "$response.body#/id")))),
            ("CheckoutCart" = (operation_id = "checkout", parameters(("id" = "$response.body#/id")))),
            ("ClaimCart" = (operation_id = "claim_cart", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 401, description = "`invalid_token` or `token_expired`; `unauthorized` when guest carts are disabled", body = ErrorBody),
    ))]
pub fn create_cart() {}

/// A cart. Someone else's cart is 404.
#[utoipa::path(get, path = "/v1/carts/{id}", tag = "carts",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    responses(
        (status = 200, description = "the cart", body = Cart),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_cart() {}

/// Adds units of a product at its current price.
#[utoipa::path(post, path = "/v1/carts/{id}/items", tag = "carts",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    request_body = AddItem,
    responses(
        (status = 200, description = "the cart", body = Cart, links(
            ("SetCartItem" = (operation_id = "set_cart_item", parameters(("id" = "$response.body#/id"), ("sku" = "$response.body#/items/0/sku")))),
            ("RemoveCartItem" = (operation_id = "remove_cart_item", parameters(("id" = "$response.body#/id"), ("sku" = "$response.body#/items/0/sku")))),
            ("CheckoutCart" = (operation_id = "checkout", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart or product", body = ErrorBody),
        (status = 409, description = "`product_archived`, `cart_checked_out`, or a line limit reached", body = ErrorBody),
    ))]
pub fn add_cart_item() {}

/// Sets a line's quantity; 0 removes the line.
#[utoipa::path(put, path = "/v1/carts/{id}/items/{sku}", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU"),
    ),
    request_body = SetItemQuantity,
    responses(
        (status = 200, description = "the cart", body = Cart),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, product or line", body = ErrorBody),
        (status = 409, description = "`product_archived`, `cart_checked_out`, or a line limit reached", body = ErrorBody),
    ))]
pub fn set_cart_item() {}

/// Removes a line.
#[utoipa::path(delete, path = "/v1/carts/{id}/items/{sku}", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE", description = "the SKU"),
    ),
    responses(
        (status = 200, description = "the cart", body = Cart),
        (status = 400, description = "`validation`: not a UUID or SKU", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart or line", body = ErrorBody),
        (status = 409, description = "`cart_checked_out`", body = ErrorBody),
    ))]
pub fn remove_cart_item() {}

/// Takes over a guest cart (or re-claims one's own). Needs a user token.
#[utoipa::path(post, path = "/v1/carts/{id}/claim", tag = "carts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    responses(
        (status = 200, description = "the cart, now owned by the caller", body = Cart),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the bootstrap admin token cannot own carts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, or someone else's", body = ErrorBody),
        (status = 409, description = "`cart_checked_out`", body = ErrorBody),
    ))]
pub fn claim_cart() {}

/// Places an order from the cart and waits briefly for payment. Idempotent by key: a
/// repeat with the same key and body replays the first answer.
#[utoipa::path(post, path = "/v1/carts/{id}/checkout", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; the same key with another body is 409"),
    ),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "the order, settled (paid or cancelled)", body = Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("id" = "$response.body#/id")))),
            ("CancelOrder" = (operation_id = "cancel_order", parameters(("id" = "$response.body#/id")))),
            ("FulfilOrder" = (operation_id = "fulfil_order", parameters(("id" = "$response.body#/id")))),
            ("RefundOrder" = (operation_id = "refund_order", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 202, description = "the order, still being processed", body = Order),
        (status = 400, description = "`validation` (body, card, or a missing or bad `Idempotency-Key`) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart", body = ErrorBody),
        (status = 409, description = "`cart_empty`, `cart_checked_out`, `idempotency_key_reused` or `idempotency_key_expired` (reused past its last generation)", body = ErrorBody),
    ))]
pub fn checkout() {}

// ---------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------

/// An order. Someone else's order is 404.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order", body = Order),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_order() {}

/// Cancels an order that is not yet paid.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order, settled", body = Order),
        (status = 202, description = "the order, compensation still running", body = Order),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub fn cancel_order() {}

/// Marks a paid order fulfilled. Operators and admins.
#[utoipa::path(post, path = "/v1/orders/{id}/fulfil", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order", body = Order),
        (status = 202, description = "the order, still settling", body = Order),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub fn fulfil_order() {}

/// Refunds a paid or fulfilled order. Operators and admins.
#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order, refunded", body = Order),
        (status = 202, description = "the order, refund still running", body = Order),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub fn refund_order() {}

// ---------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------

/// An entity's journalled events: the audit trail. Operators and admins.
#[utoipa::path(get, path = "/v1/admin/entities/{kind}/{id}/events", tag = "admin",
    security(("bearer" = [])),
    params(
        ("kind" = EntityKind, Path, description = "the entity kind"),
        ("id" = String, Path, description = "a SKU for `product` and `sku`/`inventory`, a UUID for `cart`, `order` and `user`, a machine id for `machine`"),
        ("after_seq" = Option<u64>, Query, minimum = 0, description = "only events after this sequence number"),
        ("limit" = Option<u32>, Query, minimum = 0, description = "most events to return (default 1000, at most 10000; a page also stops after about 2 MiB of events: page on with `after_seq`)"),
    ),
    responses(
        (status = 200, description = "the events", body = EntityEvents),
        (status = 400, description = "`validation`: an unknown kind, a bad id, or a bad query", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`: the entity has no events", body = ErrorBody),
    ))]
pub fn entity_events() {}
