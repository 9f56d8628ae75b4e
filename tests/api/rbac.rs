//! The RBAC matrix: every route, called as anonymous, shopper A, shopper B,
//! an operator and an admin (JWT users, not the bootstrap token), with the
//! expected outcome of each cell in one table. No call succeeds without
//! permission: every refused cell must be refused with the exact status and
//! error code, and the state checks at the end prove the refused calls
//! changed nothing.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Permitted, and the call succeeds: 2xx.
    Ok,
    /// Permitted, but the data says no (e.g. 409 `invalid_transition`).
    Is(u16),
    /// 401 `unauthorized`: a credential is needed.
    Unauth,
    /// 403 `forbidden`: authenticated, lacking the role.
    Forbidden,
    /// 404 `not_found`: someone else's cart or order, hidden.
    Hidden,
    /// 403 `forbidden` or 404 `not_found`: an operator writing to a shopper's
    /// cart or order. The contract grants staff reads there; the issue's
    /// role table gives operators catalog, inventory, fulfil and refund.
    Refused,
}
use Want::{Forbidden as F, Hidden as H, Is, Ok as OK, Refused as R, Unauth as U};

/// Columns of the table.
const WHO: [&str; 5] = ["anonymous", "shopper A", "shopper B", "operator", "admin"];
/// Cells are called in this order: the refused ones before shopper A, so the
/// owner's call afterwards also proves the refused calls consumed nothing.
const ORDER: [usize; 5] = [0, 2, 3, 4, 1];

struct Row {
    method: &'static str,
    /// `{name}` placeholders are filled from the fixture, per principal.
    path: &'static str,
    body: Option<&'static str>,
    want: [Want; 5],
}

const fn row(want: [Want; 5], method: &'static str, path: &'static str) -> Row {
    Row {
        method,
        path,
        body: None,
        want,
    }
}

const fn with(
    want: [Want; 5],
    method: &'static str,
    path: &'static str,
    body: &'static str,
) -> Row {
    Row {
        method,
        path,
        body: Some(body),
        want,
    }
}

const CHECKOUT: &str = r#"{"email":"rbac@example.com","payment":{"card_number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}"#;

/// The matrix. Columns: anonymous, shopper A, shopper B, operator, admin.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Health, metrics, documentation: public.
    row([OK, OK, OK, OK, OK],     "GET",    "/health/live"),
    row([OK, OK, OK, OK, OK],     "GET",    "/health/ready"),
    row([OK, OK, OK, OK, OK],     "GET",    "/metrics"),
    row([OK, OK, OK, OK, OK],     "GET",    "/openapi.json"),
    // Catalog and inventory: reads are public, writes need operator.
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/products"),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/products/{sku}"),
    with([U, F, F, OK, OK],       "PUT",    "/v1/products/{sku}", r#"{"name":"Set by {who}","price_minor":1000,"category":"general"}"#),
    row([U, F, F, OK, OK],        "DELETE", "/v1/products/{arch}"),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/inventory/{sku}"),
    with([U, F, F, OK, OK],       "POST",   "/v1/inventory/{adj_sku}/adjustments", r#"{"delta":1,"reason":"rbac {who}"}"#),
    // Guest carts: usable by whoever holds the id; claiming needs a user.
    row([OK, OK, OK, OK, OK],     "POST",   "/v1/carts"),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/carts/{guest}"),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/carts/{guest}/items", r#"{"sku":"{sku}","quantity":1}"#),
    with([OK, OK, OK, OK, OK],    "PUT",    "/v1/carts/{guest}/items/{sku}", r#"{"quantity":2}"#),
    row([OK, OK, OK, OK, OK],     "DELETE", "/v1/carts/{guest}/items/{sku}"),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/carts/{guest_co}/checkout", CHECKOUT),
    row([U, OK, OK, OK, OK],      "POST",   "/v1/carts/{guest}/claim"),
    // Shopper A's carts: hidden from other shoppers; staff may read them,
    // only the admin ("everything") may change them. {cart_w} and {co_cart}
    // are A's carts; the operator and admin columns get A-owned carts of
    // their own.
    row([H, OK, H, OK, OK],       "GET",    "/v1/carts/{cart_a}"),
    with([H, OK, H, R, OK],       "POST",   "/v1/carts/{cart_w}/items", r#"{"sku":"{sku}","quantity":1}"#),
    with([H, OK, H, R, OK],       "PUT",    "/v1/carts/{cart_w}/items/{sku}", r#"{"quantity":3}"#),
    row([H, OK, H, R, OK],        "DELETE", "/v1/carts/{cart_w}/items/{sku}"),
    row([U, OK, H, H, H],         "POST",   "/v1/carts/{cart_a}/claim"),
    with([H, OK, H, R, OK],       "POST",   "/v1/carts/{co_cart}/checkout", CHECKOUT),
    // Shopper A's paid order ({paid} is A's order for the first three
    // columns and a paid order of its own for the operator and the admin).
    row([H, OK, H, OK, OK],       "GET",    "/v1/orders/{order_a}"),
    row([H, Is(409), H, R, Is(409)], "POST", "/v1/orders/{order_a}/cancel"),
    row([U, F, F, OK, OK],        "POST",   "/v1/orders/{paid}/fulfil"),
    row([U, F, F, OK, OK],        "POST",   "/v1/orders/{paid}/refund"),
    // The audit trail: operator.
    row([U, F, F, OK, OK],        "GET",    "/v1/admin/entities/product/{sku}/events"),
    row([U, F, F, OK, OK],        "GET",    "/v1/admin/entities/user/{user_c}/events"),
    // Roles: admin only, and nobody can raise their own.
    with([U, F, F, F, OK],        "PUT",    "/v1/admin/users/{user_c}/roles", r#"{"roles":["operator"]}"#),
    with([U, F, F, F, OK],        "PUT",    "/v1/admin/users/{self}/roles", r#"{"roles":["admin"]}"#),
    // Auth routes: the body is the credential.
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/auth/register", r#"{"email":"{email}","password":"{password}"}"#),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/auth/login", r#"{"email":"{c_email}","password":"{password}"}"#),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/auth/refresh", r#"{"refresh_token":"{refresh}"}"#),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/auth/logout", r#"{"refresh_token":"{logout}"}"#),
    // Events out: operators read the feed and the projections, admins reset one.
    row([U, F, F, OK, OK],        "GET",    "/v1/events"),
    row([U, F, F, OK, OK],        "GET",    "/v1/admin/projections"),
    row([U, F, F, F, Is(202)],    "POST",   "/v1/admin/projections/feed/reset"),
    // Webhooks and their dead-letter queue: operators (an unknown endpoint is 404).
    with([U, F, F, Is(201), Is(201)], "POST", "/v1/webhooks", r#"{"url":"https://example.com/hook","events":["order.paid"]}"#),
    row([U, F, F, OK, OK],        "GET",    "/v1/webhooks"),
    row([U, F, F, Is(404), Is(404)], "GET", "/v1/webhooks/00000000-0000-4000-8000-00000000000a"),
    with([U, F, F, Is(404), Is(404)], "PATCH", "/v1/webhooks/00000000-0000-4000-8000-00000000000a", r#"{"enabled":false}"#),
    row([U, F, F, Is(404), Is(404)], "DELETE", "/v1/webhooks/00000000-0000-4000-8000-00000000000a"),
    row([U, F, F, Is(404), Is(404)], "POST", "/v1/webhooks/00000000-0000-4000-8000-00000000000a/secret"),
    row([U, F, F, Is(404), Is(404)], "GET", "/v1/webhooks/00000000-0000-4000-8000-00000000000a/deliveries"),
    row([U, F, F, OK, OK],        "GET",    "/v1/admin/dlq"),
    row([U, F, F, Is(202), Is(202)], "POST", "/v1/admin/dlq/replay?endpoint=00000000-0000-4000-8000-00000000000a"),
    row([U, F, F, Is(404), Is(404)], "POST", "/v1/admin/dlq/0.00/replay"),
    row([U, F, F, OK, OK],        "GET",    "/v1/admin/notifications"),
    row([U, F, F, OK, OK],        "GET",    "/v1/notification-templates"),
    with([U, F, F, OK, OK],       "PUT",    "/v1/notification-templates/order.paid/email", r#"{"subject":"s","body":"b"}"#),
    row([U, F, F, Is(404), Is(404)], "DELETE", "/v1/notification-templates/stock.low/email"),
    row([U, F, F, Is(404), Is(404)], "POST", "/v1/admin/notifications/ntf_0/replay"),
    // Cluster: operators read it, admins change it (this node runs alone: 409).
    row([U, F, F, OK, OK],        "GET",    "/v1/cluster"),
    row([U, F, F, F, Is(409)],    "POST",   "/v1/cluster/leave"),
    with([U, F, F, F, Is(409)],   "POST",   "/v1/cluster/remove", r#"{"node":"node9","force":true}"#),
    with([U, F, F, F, Is(409)],   "POST",   "/v1/cluster/fault", r#"{"blackhole":false}"#),
    // Vending machines: operators manage them; shoppers and guests see slots and buy.
    // {vm} is registered and never connected, so every purchase is 409 machine_offline.
    with([U, F, F, OK, OK],       "PUT",    "/v1/machines/{vm_new}", r#"{"name":"Set by {who}","location":"Lobby"}"#),
    row([U, F, F, OK, OK],        "POST",   "/v1/machines/{vm}/secret"),
    row([U, F, F, OK, OK],        "GET",    "/v1/machines"),
    row([U, F, F, OK, OK],        "GET",    "/v1/machines/{vm}"),
    with([U, F, F, OK, OK],       "PUT",    "/v1/machines/{vm}/planogram", r#"{"slots":[{"slot":1,"sku":"COLA","price_minor":150,"capacity":8,"level":8}]}"#),
    with([U, F, F, OK, OK],       "POST",   "/v1/machines/{vm}/commands", r#"{"type":"request_audit"}"#),
    row([U, F, F, OK, OK],        "GET",    "/v1/machines/{vm}/commands/{vm_cmd}"),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/machines/{vm}/slots"),
    row([U, F, F, OK, OK],        "GET",    "/v1/machines/{vm}/picklist"),
    with([U, F, F, Is(400), Is(400)], "POST", "/v1/machines/{vm}/restock-visits", r#"{"truck":"no-truck","slots":[{"slot":1,"quantity":1}]}"#),
    with([Is(409), Is(409), Is(409), Is(409), Is(409)], "POST", "/v1/machines/{vm}/purchase", r#"{"slot":1,"email":"vend@rbac.example","payment":{"card_number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}"#),
    // The caller's own profile and orders.
    row([U, OK, OK, OK, OK],      "GET",    "/v1/me"),
    with([U, OK, OK, OK, OK],     "PATCH",  "/v1/me", r#"{"name":"{who}"}"#),
    row([U, OK, OK, OK, OK],      "GET",    "/v1/me/orders"),
    row([U, OK, OK, OK, OK],      "GET",    "/v1/me/notifications"),
    row([U, OK, OK, OK, OK],      "GET",    "/v1/me/preferences"),
    with([U, OK, OK, OK, OK],     "PATCH",  "/v1/me/preferences", r#"{"marketing_opt_in":true}"#),
    // Promotions: operators define them; a cart's coupons go with the cart ({cpn} is a
    // guest cart per principal).
    with([U, F, F, OK, OK],       "PUT",    "/v1/promotions/rbac-promo", r#"{"name":"By {who}","code":"RBAC5","action":{"type":"percent_off","percent":5}}"#),
    row([U, F, F, OK, OK],        "GET",    "/v1/promotions"),
    row([U, F, F, OK, OK],        "GET",    "/v1/promotions/rbac-promo"),
    with([OK, OK, OK, OK, OK],    "POST",   "/v1/carts/{cpn}/coupons", r#"{"code":"RBAC5"}"#),
    row([OK, OK, OK, OK, OK],     "DELETE", "/v1/carts/{cpn}/coupons/RBAC5"),
    with([H, OK, H, R, OK],       "POST",   "/v1/carts/{cpn_a}/coupons", r#"{"code":"RBAC5"}"#),
    row([U, F, F, OK, OK],        "DELETE", "/v1/promotions/rbac-promo"),
    // Categories: anyone reads the tree; operators change it.
    with([U, F, F, OK, OK],       "PUT",    "/v1/categories/rbac-cat", r#"{"name":"By {who}"}"#),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/categories"),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/categories/rbac-cat"),
    row([U, F, F, OK, Is(404)],   "DELETE", "/v1/categories/rbac-cat"),
    // Reviews: only a verified buyer writes one (A bought rbac-01); anyone reads them;
    // operators moderate; any user reports.
    with([U, OK, Is(403), Is(403), Is(403)], "POST", "/v1/products/rbac-01/reviews", r#"{"rating":5,"title":"By {who}"}"#),
    row([OK, OK, OK, OK, OK],     "GET",    "/v1/products/rbac-01/reviews"),
    row([U, F, F, OK, OK],        "GET",    "/v1/reviews/pending"),
    row([U, F, F, OK, OK],        "POST",   "/v1/reviews/{rev}/approve"),
    with([U, F, F, OK, OK],       "POST",   "/v1/reviews/{rev}/reject", r#"{"reason":"by {who}"}"#),
    row([U, OK, OK, OK, OK],      "POST",   "/v1/reviews/{rev}/report"),
    // Images: operators upload (this body is no image: 415 past the role check); anyone
    // reads one (none by this id: 404).
    with([U, F, F, Is(415), Is(415)], "POST", "/v1/products/rbac-01/images", "not an image"),
    row([Is(404), Is(404), Is(404), Is(404), Is(404)], "GET", "/v1/products/rbac-01/images/0000000000000000000000000000000000000000000000000000000000000000"),
    // Locations and transfers: operators (rbac-01 has 1000 units at main; no transfer
    // has the nil-like id).
    with([U, F, F, OK, OK],       "PUT",    "/v1/locations/rbac-loc", r#"{"kind":"store","name":"By {who}"}"#),
    row([U, F, F, OK, OK],        "GET",    "/v1/locations"),
    row([U, F, F, OK, OK],        "GET",    "/v1/locations/rbac-loc"),
    with([U, F, F, Is(201), Is(201)], "POST", "/v1/inventory/transfers", r#"{"sku":"rbac-01","from":"main","to":"rbac-loc","quantity":1}"#),
    row([U, F, F, Is(404), Is(404)], "GET", "/v1/inventory/rbac-01/transfers/00000000-0000-4000-8000-00000000000a"),
    row([U, F, F, Is(404), Is(404)], "POST", "/v1/inventory/rbac-01/transfers/00000000-0000-4000-8000-00000000000a/receive"),
    row([U, F, F, Is(404), Is(404)], "POST", "/v1/inventory/rbac-01/transfers/00000000-0000-4000-8000-00000000000a/cancel"),
    row([U, F, F, OK, OK],        "DELETE", "/v1/locations/rbac-loc"),
];

/// Placeholder values: `(name, one value per principal)`.
struct Fixture {
    values: Vec<(&'static str, [String; 5])>,
}

impl Fixture {
    fn same(&mut self, name: &'static str, v: &str) {
        self.values
            .push((name, std::array::from_fn(|_| v.to_string())));
    }

    fn each(&mut self, name: &'static str, v: [String; 5]) {
        self.values.push((name, v));
    }

    fn fill(&self, template: &str, who: usize) -> String {
        let mut s = template.to_string();
        for (name, v) in &self.values {
            s = s.replace(&format!("{{{name}}}"), &v[who]);
        }
        if let Some(name) = placeholder(&s) {
            panic!("no value for {{{name}}} in {template}");
        }
        s
    }
}

/// `None` when the response matches; else a description of the mismatch.
fn check(want: Want, resp: &Resp) -> Option<String> {
    let is = |status: u16, code: &str| resp.status == status && resp.error_code() == Some(code);
    let good = match want {
        Want::Ok => (200..300).contains(&resp.status),
        Want::Is(s) => resp.status == s,
        Want::Unauth => is(401, "unauthorized"),
        Want::Forbidden => is(403, "forbidden"),
        Want::Hidden => is(404, "not_found"),
        Want::Refused => is(403, "forbidden") || is(404, "not_found"),
    };
    (!good).then(|| format!("want {want:?}, got {} {}", resp.status, resp.text))
}

/// The first `{name}` placeholder left in `s`, if any.
fn placeholder(s: &str) -> Option<&str> {
    s.match_indices('{').find_map(|(i, _)| {
        let rest = &s[i + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some(name)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_matrix() {
    let app = spawn_app(roomy_opts()).await;

    // Principals: JWT users with the roles granted by the bootstrap admin.
    let a = app.shopper("shopper-a@rbac.example").await;
    let b = app.shopper("shopper-b@rbac.example").await;
    let op = app
        .user_with_roles("operator@rbac.example", &["operator"])
        .await;
    let admin = app.user_with_roles("admin@rbac.example", &["admin"]).await;
    let c_email = "target-c@rbac.example";
    let c = app.shopper(c_email).await;
    let tokens: [Option<&str>; 5] = [
        None,
        Some(&a.access),
        Some(&b.access),
        Some(&op.access),
        Some(&admin.access),
    ];

    // Catalog.
    app.stocked_product("rbac-01", 1000, 1000).await;
    app.create_product("rbac-adj", 500, "general").await;
    let arch: [String; 5] = std::array::from_fn(|i| format!("rbac-arch-{i}"));
    for sku in &arch {
        app.create_product(sku, 100, "general").await;
    }

    // Carts and orders. Guest carts are created anonymously, one per principal.
    let mut guest: [String; 5] = Default::default();
    let mut guest_co: [String; 5] = Default::default();
    let mut cpn: [String; 5] = Default::default();
    for i in 0..5 {
        guest[i] = app.cart_as(None, "rbac-01", 1).await;
        guest_co[i] = app.cart_as(None, "rbac-01", 1).await;
        cpn[i] = app.cart_as(None, "rbac-01", 1).await;
    }
    let cart_a = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    let cpn_a = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    let co_cart_a = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    // Operator and admin write to A-owned carts of their own, so that their
    // cells do not depend on each other.
    let mut staff_carts = Vec::new();
    for _ in 0..4 {
        staff_carts.push(app.cart_as(Some(&a.access), "rbac-01", 1).await);
    }
    let [cart_w_op, co_cart_op, cart_w_admin, co_cart_admin] =
        <[String; 4]>::try_from(staff_carts).expect("four carts");
    let for_a = |op: &str, admin: &str, rest: &str| -> [String; 5] {
        [rest, rest, rest, op, admin].map(String::from)
    };
    let paid_order = |order: Value| {
        assert_eq!(order["status"], "paid", "{order}");
        order["id"].as_str().expect("order id").to_string()
    };
    let cart = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    let order_a = paid_order(app.checkout_as(Some(&a.access), &cart).await);
    let cart = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    let paid_op = paid_order(app.checkout_as(Some(&a.access), &cart).await);
    let cart = app.cart_as(Some(&a.access), "rbac-01", 1).await;
    let paid_admin = paid_order(app.checkout_as(Some(&a.access), &cart).await);

    // Refresh tokens of user C: two sessions per principal.
    let mut refresh: [String; 5] = Default::default();
    let mut logout: [String; 5] = Default::default();
    for i in 0..5 {
        refresh[i] = app.login_ok(&c.id, c_email).await.refresh;
        logout[i] = app.login_ok(&c.id, c_email).await.refresh;
    }

    // A vending machine with one slot, and a command issued to it.
    let vm = app
        .call(
            Some(ADMIN_TOKEN),
            "PUT",
            "/v1/machines/rbac-vm",
            Some(r#"{"name":"RBAC"}"#),
        )
        .await;
    vm.expect(201);
    app.call(
        Some(ADMIN_TOKEN),
        "PUT",
        "/v1/machines/rbac-vm/planogram",
        Some(r#"{"slots":[{"slot":1,"sku":"COLA","price_minor":150,"capacity":8,"level":8}]}"#),
    )
    .await
    .expect(200);
    let cmd = app
        .call(
            Some(ADMIN_TOKEN),
            "POST",
            "/v1/machines/rbac-vm/commands",
            Some(r#"{"type":"request_audit"}"#),
        )
        .await;
    let vm_cmd = cmd.expect(202)["command_id"].as_str().unwrap().to_owned();

    let mut fx = Fixture { values: vec![] };
    fx.same("vm", "rbac-vm");
    fx.same("vm_cmd", &vm_cmd);
    fx.each(
        "vm_new",
        std::array::from_fn(|i| format!("rbac-vm-new-{i}")),
    );
    fx.same("sku", "rbac-01");
    fx.same("adj_sku", "rbac-adj");
    fx.each("arch", arch.clone());
    fx.each("guest", guest.clone());
    fx.each("guest_co", guest_co);
    fx.each("cpn", cpn);
    fx.same("cpn_a", &cpn_a);
    fx.same("rev", &format!("rbac-01~{}", a.id));
    fx.same("cart_a", &cart_a);
    fx.each("cart_w", for_a(&cart_w_op, &cart_w_admin, &cart_a));
    fx.each("co_cart", for_a(&co_cart_op, &co_cart_admin, &co_cart_a));
    fx.same("order_a", &order_a);
    fx.each(
        "paid",
        [
            order_a.clone(),
            order_a.clone(),
            order_a.clone(),
            paid_op,
            paid_admin,
        ],
    );
    fx.same("user_c", &c.id);
    fx.each(
        "self",
        [
            b.id.clone(),
            a.id.clone(),
            b.id.clone(),
            op.id.clone(),
            admin.id.clone(),
        ],
    );
    fx.each(
        "email",
        std::array::from_fn(|i| format!("new-{i}@rbac.example")),
    );
    fx.same("c_email", c_email);
    fx.same("password", PASSWORD);
    fx.each("refresh", refresh);
    fx.each("logout", logout);
    fx.each(
        "who",
        ["anonymous", "shopper-a", "shopper-b", "operator", "admin"].map(String::from),
    );

    // Every route in the OpenAPI document has a row.
    check_table_covers_openapi(&app).await;

    let mut failures = Vec::new();
    let mut calls = 0;
    for r in TABLE {
        for who in ORDER {
            let path = fx.fill(r.path, who);
            let body = r.body.map(|b| fx.fill(b, who));
            let resp = app
                .call(tokens[who], r.method, &path, body.as_deref())
                .await;
            calls += 1;
            if let Some(why) = check(r.want[who], &resp) {
                failures.push(format!("{} {} as {}: {why}", r.method, r.path, WHO[who]));
            }
        }
    }

    // The refused calls changed nothing; the permitted ones took effect.
    let mut state = |what: String, got: Value, want: Value| {
        if got != want {
            failures.push(format!("state: {what}: got {got}, want {want}"));
        }
    };
    let product = app.call(None, "GET", "/v1/products/rbac-01", None).await;
    state(
        "product name (last permitted writer)".into(),
        product.json["name"].clone(),
        json!("Set by admin"),
    );
    for (i, sku) in arch.iter().enumerate() {
        let p = app
            .call(None, "GET", &format!("/v1/products/{sku}"), None)
            .await;
        state(
            format!("{sku} archived after DELETE by {}", WHO[i]),
            p.json["archived"].clone(),
            json!(i >= 3),
        );
    }
    let promo = app.admin_get("/v1/promotions/rbac-promo").await;
    state(
        "promotion (last permitted writer, then ended)".into(),
        json!([promo.json["name"], promo.json["status"]]),
        json!(["By admin", "ended"]),
    );
    let coupons = app
        .call(Some(&a.access), "GET", &format!("/v1/carts/{cpn_a}"), None)
        .await;
    state(
        "A's cart holds the coupon A and the admin entered".into(),
        coupons.json["coupons"][0]["code"].clone(),
        json!("RBAC5"),
    );
    let inv = app.call(None, "GET", "/v1/inventory/rbac-adj", None).await;
    state(
        "rbac-adj on_hand (operator +1, admin +1)".into(),
        inv.json["on_hand"].clone(),
        json!(2),
    );
    let order = app
        .call(
            Some(&a.access),
            "GET",
            &format!("/v1/orders/{order_a}"),
            None,
        )
        .await;
    state(
        "order A status".into(),
        order.json["status"].clone(),
        json!("paid"),
    );
    for (user, roles) in [
        (&a, json!(["shopper"])),
        (&b, json!(["shopper"])),
        (&op, json!(["operator"])),
    ] {
        let me = app.call(Some(&user.access), "GET", "/v1/me", None).await;
        state(
            format!("roles of {}", user.email),
            me.json["roles"].clone(),
            roles,
        );
    }
    let c_now = app.login_ok(&c.id, c_email).await;
    let me = app.call(Some(&c_now.access), "GET", "/v1/me", None).await;
    state(
        "roles of C, set by the admin".into(),
        me.json["roles"].clone(),
        json!(["operator"]),
    );
    // The operator's writes to A's carts did nothing.
    let cart = app
        .call(
            Some(&a.access),
            "GET",
            &format!("/v1/carts/{cart_w_op}"),
            None,
        )
        .await;
    state(
        "A's cart after the operator's item calls".into(),
        json!(line_quantity(&cart.json, "rbac-01")),
        json!(1),
    );
    let cart = app
        .call(
            Some(&a.access),
            "GET",
            &format!("/v1/carts/{co_cart_op}"),
            None,
        )
        .await;
    state(
        "A's cart after the operator's checkout".into(),
        cart.json["status"].clone(),
        json!("open"),
    );
    // A's cart is still A's; the anonymous claim left the guest cart a guest's.
    let cart = app
        .call(None, "GET", &format!("/v1/carts/{cart_a}"), None)
        .await;
    state(
        "anonymous GET of A's cart".into(),
        json!(cart.status),
        json!(404),
    );
    let cart = app
        .call(Some(&a.access), "GET", &format!("/v1/carts/{cart_a}"), None)
        .await;
    state("A's GET of A's cart".into(), json!(cart.status), json!(200));
    let cart = app
        .call(None, "GET", &format!("/v1/carts/{}", guest[0]), None)
        .await;
    state(
        "anonymous GET of the guest cart it failed to claim".into(),
        json!(cart.status),
        json!(200),
    );
    // A claimed guest cart is its claimer's.
    let cart = app
        .call(None, "GET", &format!("/v1/carts/{}", guest[2]), None)
        .await;
    state(
        "anonymous GET of the cart B claimed".into(),
        json!(cart.status),
        json!(404),
    );
    let cart = app
        .call(
            Some(&b.access),
            "GET",
            &format!("/v1/carts/{}", guest[2]),
            None,
        )
        .await;
    state(
        "B's GET of the cart B claimed".into(),
        json!(cart.status),
        json!(200),
    );

    assert!(
        failures.is_empty(),
        "{} problems in {calls} RBAC calls and the state after them:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Fails when `/openapi.json` documents a route (method and path) that has
/// no row in `TABLE`. Path parameters of the document match any segment.
async fn check_table_covers_openapi(app: &TestApp) {
    let resp = app.get("/openapi.json").await;
    let doc = resp.expect(200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "OpenAPI 3.x: {}",
        &resp.text[..resp.text.len().min(200)]
    );
    let paths = doc["paths"].as_object().expect("openapi paths");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_ascii_uppercase();
            if !["GET", "PUT", "POST", "DELETE", "PATCH"].contains(&method.as_str()) {
                continue;
            }
            let covered = TABLE
                .iter()
                .any(|r| r.method == method && template_matches(path, r.path));
            if !covered {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes in /openapi.json without a row in the RBAC table: {missing:?}"
    );
}

fn template_matches(doc: &str, table: &str) -> bool {
    let d: Vec<&str> = doc.trim_end_matches('/').split('/').collect();
    let table = table.split('?').next().unwrap_or(table);
    let t: Vec<&str> = table.trim_end_matches('/').split('/').collect();
    d.len() == t.len()
        && d.iter().zip(&t).all(|(d, t)| {
            let param = |s: &str| s.starts_with('{') && s.ends_with('}');
            param(d) || d == t
        })
}
