//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, generated from code with
//! `utoipa`.
//!
//! - each resource's handlers carry their own `#[utoipa::path]` (route, parameters,
//!   body, success answers and the 4xx answers the handler gives), and their request and
//!   response types are the `ToSchema` types of [`super::dto`] the handlers read and
//!   answer with; so the document describes what the server does.
//! - here: [`ApiDoc`], which gathers them; [`BearerScheme`], the `bearer` (JWT) HTTP
//!   security scheme; and [`EdgeResponses`], which adds the answers the edge gives on
//!   every route (429, 503, 504, 413, `X-Request-Id`, `Retry-After`) from one table,
//!   since no handler gives them.
//! - Conventions of the paths: `security(("bearer" = []))` means a token is required;
//!   `security((), ("bearer" = []))` means it is optional (a guest may call, and a present
//!   token must be valid); no `security` means the route ignores it. Query parameters
//!   are declared on the path, as the handlers read them as text to give their own
//!   `validation` errors.
//!
//! A test walks [`crate::http::route_templates`] and fails when a served route is missing
//! from the document.

use super::dto::audit::EntityKind;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::health::{self, HealthStatus};
use super::{
    admin, auth, carts, catalog, categories, checkout, cluster, coupons, events, images, locations,
    machines, notification_templates, notifications, orders, preferences, promotions,
    restock_visits, reviews, transfers, vending, webhooks,
};
use crate::app::App;
use std::sync::OnceLock;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response as OaResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ObjectBuilder, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

/// The document: every route of [`crate::http::api`] and its schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "emporium",
        description = "The emporium commerce API. Errors are always \
            `{\"error\":{\"code\",\"message\"}}`. Every response carries `X-Request-Id` \
            (the client's, if it sent a valid one). Send a JWT access token from \
            `POST /v1/auth/login` (or the bootstrap admin token) as \
            `Authorization: Bearer <token>`. Money is in integer minor units."
    ),
    paths(
        health::health_live,
        health::health_ready,
        health::metrics,
        health::openapi_json,
        auth::register,
        auth::login,
        auth::refresh_tokens,
        auth::logout,
        auth::me,
        auth::update_me,
        auth::my_orders,
        auth::set_roles,
        catalog::put_product,
        catalog::list_products,
        catalog::get_product,
        catalog::archive_product,
        catalog::adjust,
        catalog::get_inventory,
        carts::create,
        carts::get,
        carts::add_item,
        carts::set_item,
        carts::remove_item,
        carts::claim,
        checkout::checkout,
        orders::get,
        orders::cancel,
        orders::fulfil,
        orders::refund,
        admin::entity_events,
        machines::put_machine,
        machines::rotate_secret,
        machines::list_machines,
        machines::get_machine,
        machines::put_planogram,
        vending::issue_command,
        vending::get_command,
        machines::get_slots,
        machines::get_picklist,
        vending::purchase,
        cluster::get_status,
        cluster::leave,
        cluster::remove,
        cluster::fault,
        events::list_events,
        events::list_projections,
        events::reset_projection,
        webhooks::create,
        webhooks::list_all,
        webhooks::get_one,
        webhooks::update,
        webhooks::remove,
        webhooks::rotate,
        webhooks::deliveries,
        webhooks::list_dead,
        webhooks::replay_one,
        webhooks::replay_all,
        notifications::admin_list,
        notifications::replay,
        notifications::mine,
        notification_templates::list,
        notification_templates::save,
        notification_templates::remove,
        preferences::get,
        preferences::update,
        coupons::apply,
        coupons::remove,
        promotions::put,
        promotions::get,
        promotions::list,
        promotions::end,
        categories::put,
        categories::list,
        categories::get,
        categories::delete,
        reviews::write,
        reviews::list,
        reviews::pending,
        reviews::approve,
        reviews::reject,
        reviews::report,
        images::upload,
        images::get,
        locations::put,
        locations::list,
        locations::get,
        locations::close,
        transfers::create,
        transfers::get,
        transfers::receive,
        transfers::cancel,
        restock_visits::create,
    ),
    components(schemas(ErrorBody, HealthStatus, EntityKind)),
    modifiers(&BearerScheme, &EdgeResponses),
    tags(
        (name = "health", description = "probes, metrics and this document"),
        (name = "auth", description = "accounts and tokens"),
        (name = "me", description = "the signed-in user"),
        (name = "catalog", description = "products and stock"),
        (name = "inventory", description = "stock locations and transfers between them"),
        (name = "carts", description = "carts and checkout"),
        (name = "promotions", description = "promotions and coupon codes"),
        (name = "reviews", description = "product reviews and their moderation"),
        (name = "orders", description = "orders"),
        (name = "admin", description = "roles and the audit trail"),
        (name = "machines", description = "vending machines and app purchases"),
        (name = "cluster", description = "members, partitions and handoffs"),
        (name = "events", description = "the public event feed and the projections that build it"),
        (name = "webhooks", description = "signed deliveries of public events, their attempts and the dead-letter queue"),
        (name = "notifications", description = "messages sent about events (email, SMS, Web Push), their attempts and replays"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: a JWT access token, or the bootstrap admin token.
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token from `POST /v1/auth/login` or `POST /v1/auth/refresh` \
                 (HS256 JWT with `kid`; claims `sub`, `roles`, `exp`, `iat`, `jti`), or \
                 the configured bootstrap admin token, which acts as an admin.",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Answers the edge gives around the handlers, added to the operations they apply to.
pub struct EdgeResponses;

/// Routes the rate limiter exempts (probes and scrapes never get 429).
const RATE_LIMIT_EXEMPT: [&str; 3] = ["/health/live", "/health/ready", "/metrics"];

fn error_ref() -> RefOr<utoipa::openapi::schema::Schema> {
    RefOr::Ref(Ref::from_schema_name("Error"))
}

fn header(description: &str, ty: Type) -> Header {
    let mut h = Header::new(ObjectBuilder::new().schema_type(ty));
    h.description = Some(description.to_owned());
    h
}

fn request_id_header() -> Header {
    header(
        "Correlation id: the client's valid `X-Request-Id`, else a generated one.",
        Type::String,
    )
}

fn error_response(description: &str, retry_after: bool) -> OaResponse {
    let mut r = OaResponse::new(description);
    r.content.insert(
        "application/json".to_owned(),
        Content::new(Some(error_ref())),
    );
    if retry_after {
        r.headers.insert(
            "Retry-After".to_owned(),
            header(
                "Whole seconds to wait before retrying (at least 1).",
                Type::Integer,
            ),
        );
    }
    r
}

/// The operations of a path item with their method names.
fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

impl Modify for EdgeResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let mut add = |status: &str, r: OaResponse| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert(RefOr::T(r));
                };
                if op.request_body.is_some() {
                    add(
                        "413",
                        error_response(
                            "`payload_too_large`: the body exceeds the route's limit \
                             (`http.max_auth_body_bytes` for /v1/auth/* and PATCH /v1/me \
                             and role changes, else `http.max_body_bytes`)",
                            false,
                        ),
                    );
                }
                if !RATE_LIMIT_EXEMPT.contains(&path.as_str()) {
                    add(
                        "429",
                        error_response(
                            "`rate_limited`: over the client's rate limit (login and \
                             register have a tighter one)",
                            true,
                        ),
                    );
                }
                add(
                    "503",
                    error_response(
                        "`overloaded` (concurrency limit), `timeout` (request timeout), \
                         `not_ready`, or an entity or the store is unavailable \
                         (`entity_unavailable`, `entity_restarting`, `entity_quarantined`, \
                         `store_unavailable`), or a command's outcome is unknown \
                         (`outcome_unknown`: read before retrying)",
                        true,
                    ),
                );
                let uses_entities =
                    path.starts_with("/v1/") && !(path == "/v1/products" && method == "get");
                if uses_entities {
                    add(
                        "504",
                        error_response(
                            "`timeout`: an entity did not answer in time; the request was \
                             not applied and is safe to retry",
                            true,
                        ),
                    );
                }
                for r in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = r {
                        r.headers
                            .entry("X-Request-Id".to_owned())
                            .or_insert_with(request_id_header);
                    }
                }
            }
        }
    }
}

/// utoipa 5 serializes a Link Object's fields in snake_case (`operation_id`); OpenAPI
/// spells them in camelCase. Renames them in every response's `links`.
fn fix_link_keys(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|rs| rs.values_mut())
        .filter_map(|r| r.get_mut("links")?.as_object_mut())
        .flat_map(|ls| ls.values_mut())
        .filter_map(|l| l.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_owned(), v);
            }
        }
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        fix_link_keys(&mut doc);
        // OpenAPI 3.1's `webhooks`: what emporium POSTs to a subscriber, per event type.
        doc["webhooks"] = crate::events::schema::openapi_webhooks();
        doc
    })
}

pub async fn serve(_app: App) -> Result<Response, ApiError> {
    static BYTES: OnceLock<bytes::Bytes> = OnceLock::new();
    let body = BYTES
        .get_or_init(|| {
            serde_json::to_vec(document())
                .expect("the OpenAPI document serializes")
                .into()
        })
        .clone();
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Every `$ref` in a JSON document, in document order (the checks of the document, here
/// and in the API tests, walk it with this).
pub fn refs_in(v: &serde_json::Value) -> Vec<&str> {
    fn walk<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::config::Config;
    use serde_json::Value;

    /// Routes that answer nothing but 200 (or 503 while starting): the rate limiter
    /// exempts them and they read no input, so they have no 4xx to declare.
    const NO_CLIENT_ERRORS: [&str; 3] = ["GET /health/live", "GET /health/ready", "GET /metrics"];

    fn operations_of(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
        out
    }

    #[tokio::test]
    async fn every_served_route_is_in_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.data_dir = dir.path().to_owned();
        let app = App::build(cfg).await.unwrap();
        let templates = crate::http::route_templates(&app);
        assert!(
            templates.len() >= 30,
            "suspiciously few routes: {templates:?}"
        );

        let doc = document();
        let missing: Vec<&str> = templates
            .iter()
            .copied()
            .filter(|t| {
                let (method, path) = t.split_once(' ').expect("METHOD /path");
                doc["paths"][path][method.to_lowercase()].is_null()
            })
            .collect();
        assert!(
            missing.is_empty(),
            "routes served but missing from /openapi.json: {missing:?}"
        );

        // Nothing documented that is not served either.
        let extra: Vec<String> = operations_of(doc)
            .into_iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .filter(|t| !templates.contains(&t.as_str()))
            .collect();
        assert!(extra.is_empty(), "documented but not served: {extra:?}");
    }

    #[test]
    fn the_document_is_openapi_3_with_the_bearer_scheme() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["type"], "http");
        assert_eq!(bearer["scheme"], "bearer");
        assert_eq!(bearer["bearerFormat"], "JWT");
        let error = &doc["components"]["schemas"]["Error"];
        assert_eq!(error["required"], serde_json::json!(["error"]));
    }

    #[test]
    fn every_operation_declares_its_client_errors() {
        let doc = document();
        let mut lacking = Vec::new();
        for (method, path, op) in operations_of(doc) {
            let template = format!("{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            let has_4xx = responses.keys().any(|s| s.starts_with('4'));
            if !has_4xx && !NO_CLIENT_ERRORS.contains(&template.as_str()) {
                lacking.push(template.clone());
            }
            for (status, r) in responses {
                assert!(
                    !r["headers"]["X-Request-Id"].is_null(),
                    "{template} {status} lacks X-Request-Id"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{template} {status} is not the Error schema"
                    );
                }
            }
            assert!(responses.contains_key("503"), "{template} lacks 503");
        }
        assert!(lacking.is_empty(), "operations without a 4xx: {lacking:?}");
    }

    #[test]
    fn routes_that_need_a_token_say_so() {
        let doc = document();
        let security = |m: &str, p: &str| doc["paths"][p][m]["security"].clone();
        let required = serde_json::json!([{"bearer": []}]);
        let optional = serde_json::json!([{}, {"bearer": []}]);
        assert_eq!(security("get", "/v1/me"), required);
        assert_eq!(security("put", "/v1/admin/users/{user_id}/roles"), required);
        assert_eq!(security("put", "/v1/products/{sku}"), required);
        assert_eq!(security("post", "/v1/carts"), optional);
        assert_eq!(security("post", "/v1/carts/{id}/checkout"), optional);
        assert!(security("get", "/v1/products").is_null());
        let key = doc["paths"]["/v1/carts/{id}/checkout"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .expect("Idempotency-Key parameter");
        assert_eq!(key["in"], "header");
        assert_eq!(key["required"], true);
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let refs = refs_in(doc);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "$ref {r} does not resolve"
            );
        }
    }

    #[test]
    fn links_point_at_existing_operations() {
        let doc = document();
        let ops = operations_of(doc);
        let ids: Vec<&str> = ops
            .iter()
            .filter_map(|(_, _, op)| op["operationId"].as_str())
            .collect();
        let mut seen = 0;
        for (_, _, op) in &ops {
            for r in op["responses"].as_object().unwrap().values() {
                for l in r["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    let target = l["operationId"].as_str().expect("operationId, camelCase");
                    assert!(ids.contains(&target), "link to unknown {target}");
                    assert!(l.get("operation_id").is_none());
                    seen += 1;
                }
            }
        }
        assert!(seen > 0, "no links");
    }

    #[tokio::test]
    async fn serves_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.data_dir = dir.path().to_owned();
        let app = App::build(cfg).await.unwrap();
        let r = serve(app).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
