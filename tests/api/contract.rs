//! The API contract (issue 20): a 405 names the route's methods in `Allow`, and the
//! served OpenAPI document parses and every `$ref` in it resolves.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_carries_allow_with_the_routes_methods() {
    let app = spawn_app(AppOpts::new()).await;
    let id = "6d3c8f5e-8f3a-4b6e-9a59-6c1f0f3b2a11";
    let cases = [
        (Method::PATCH, "/v1/carts".to_string(), "POST"),
        (Method::TRACE, format!("/v1/carts/{id}"), "GET"),
        (
            Method::PATCH,
            format!("/v1/carts/{id}/items/MUG-BLUE"),
            "PUT, DELETE",
        ),
        (
            Method::POST,
            "/v1/products/MUG-BLUE".into(),
            "GET, PUT, DELETE",
        ),
        (Method::DELETE, "/health/live".into(), "GET"),
        (Method::PUT, "/v1/me".into(), "GET, PATCH"),
    ];
    for (method, path, allow) in cases {
        let r = send(app.request(method.clone(), &path)).await;
        r.expect_error(405, "method_not_allowed");
        let got = r
            .headers
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
        assert_eq!(got, allow, "{method} {path}");
    }
    // A served method answers as before, without Allow.
    let ok = app.get("/health/live").await;
    ok.expect(200);
    assert!(ok.headers.get("allow").is_none());
}

/// Follows a local JSON pointer (`#/components/schemas/Cart`).
fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    doc.pointer(r.strip_prefix('#')?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_parses_and_every_ref_resolves() {
    let app = spawn_app(AppOpts::new()).await;
    let r = app.get("/openapi.json").await;
    let doc = r.expect(200);
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    // OpenAPI 3.1's `webhooks`: one POST per public event type, with its body's schema.
    let hooks = doc["webhooks"].as_object().expect("a webhooks section");
    assert_eq!(hooks.len(), emporium::events::EventType::ALL.len());
    let paid = &hooks["order.paid"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    for field in [
        "order_id",
        "status",
        "total_minor",
        "currency",
        "email",
        "items",
    ] {
        assert!(
            paid["properties"]["data"]["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "order.paid's data requires {field}: {paid}"
        );
    }
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "suspiciously few paths: {}", paths.len());
    let all = emporium::http::openapi::refs_in(doc);
    assert!(all.len() > 20, "suspiciously few $refs: {}", all.len());
    let dangling: Vec<&str> = all
        .iter()
        .copied()
        .filter(|r| resolve(doc, r).is_none())
        .collect();
    assert!(
        dangling.is_empty(),
        "$refs that do not resolve: {dangling:?}"
    );
}
