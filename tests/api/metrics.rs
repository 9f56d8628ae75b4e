//! `/metrics` parses as Prometheus text and has the families the issue asks
//! for.

use prometheus_parse::{Sample, Value as PValue};

use crate::helpers::*;

fn family<'a>(scrape: &'a prometheus_parse::Scrape, name: &str) -> Vec<&'a Sample> {
    scrape.samples.iter().filter(|s| s.metric == name).collect()
}

#[track_caller]
fn assert_histogram(scrape: &prometheus_parse::Scrape, text: &str, name: &str) {
    let samples = family(scrape, name);
    assert!(!samples.is_empty(), "no samples of {name}:\n{text}");
    assert!(
        samples
            .iter()
            .all(|s| matches!(s.value, PValue::Histogram(_))),
        "{name} is a histogram (with _bucket lines):\n{text}"
    );
    assert!(
        text.contains(&format!("{name}_bucket{{")),
        "{name}_bucket lines:\n{text}"
    );
    assert!(
        text.contains(&format!("{name}_count")),
        "{name}_count:\n{text}"
    );
    assert!(text.contains(&format!("{name}_sum")), "{name}_sum:\n{text}");
    let total: f64 = samples
        .iter()
        .filter_map(|s| match &s.value {
            PValue::Histogram(buckets) => buckets.iter().map(|b| b.count).reduce(f64::max),
            _ => None,
        })
        .sum();
    assert!(total > 0.0, "{name} has observations:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_http_actors_journal_and_sagas() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("fan-01", 2999, 10).await;
    let cart = app.cart_with("fan-01", 1).await;
    assert_eq!(
        app.checkout_and_wait(&cart, GOOD_CARD).await["status"],
        "paid"
    );
    let declined = app.cart_with("fan-01", 1).await;
    assert_eq!(
        app.checkout_and_wait(&declined, DECLINED_CARD).await["status"],
        "cancelled"
    );
    app.get("/v1/products/nope").await.expect(404);

    let resp = app.get("/metrics").await;
    assert_eq!(resp.status, 200);
    let content_type = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("text/plain"),
        "content-type: {content_type}"
    );
    let text = resp.text;
    let scrape = parse_metrics(&text);
    assert!(!scrape.samples.is_empty());

    // HTTP requests by route, method and status (read with our own label
    // parser: route templates contain `{` and `}`).
    let requests = samples(&text, "emporium_http_requests_total");
    assert!(
        !requests.is_empty(),
        "emporium_http_requests_total:\n{text}"
    );
    for (labels, _) in &requests {
        for label in ["route", "method", "status"] {
            assert!(labels.contains_key(label), "{label} label on {labels:?}");
        }
        let route = &labels["route"];
        assert!(
            !route.contains(&cart) && !route.contains(&declined),
            "routes are templates, not raw paths (bounded cardinality): {route}"
        );
    }
    let has = |method: &str, status: &str, route_part: &str| {
        requests.iter().any(|(l, v)| {
            l["method"] == method
                && l["status"] == status
                && l["route"].contains(route_part)
                && *v >= 1.0
        })
    };
    assert!(
        has("POST", "201", "checkout"),
        "checkout 201 counted:\n{text}"
    );
    assert!(
        has("POST", "201", "carts"),
        "POST /v1/carts 201 counted:\n{text}"
    );
    assert!(has("PUT", "201", "products"), "PUT 201 counted:\n{text}");
    assert!(has("GET", "404", "products"), "GET 404 counted:\n{text}");
    let latency = samples(&text, "emporium_http_request_duration_seconds_bucket");
    assert!(
        latency
            .iter()
            .any(|(l, _)| l.get("route").is_some_and(|r| r.contains("checkout"))),
        "checkout latency histogram:\n{text}"
    );
    assert_histogram(&scrape, &text, "emporium_http_request_duration_seconds");

    // Active actors by kind; every kind took part in the purchase.
    for kind in ["product", "cart", "sku", "order"] {
        assert!(
            sample_value(&scrape, "emporium_actors_active", &[("kind", kind)]).is_some(),
            "emporium_actors_active{{kind=\"{kind}\"}}:\n{text}"
        );
    }

    // The journal's group commit.
    assert_histogram(&scrape, &text, "emporium_journal_fsync_batch_size");
    assert_histogram(&scrape, &text, "emporium_journal_flush_duration_seconds");

    // Saga outcomes by result: one paid, one declined.
    let outcomes = family(&scrape, "emporium_saga_outcomes_total");
    let results: Vec<&str> = outcomes
        .iter()
        .filter_map(|s| s.labels.get("result"))
        .collect();
    assert!(
        results.len() >= 2,
        "two different saga results: {results:?}\n{text}"
    );
    let total: f64 = outcomes
        .iter()
        .map(|s| match s.value {
            PValue::Counter(v) | PValue::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(total >= 2.0, "saga outcomes counted: {total}\n{text}");

    // Restarts: nothing has restarted, but the family must be exported.
    assert!(
        text.lines()
            .any(|l| l.starts_with("emporium_actor_restarts_total")
                || l.starts_with("# TYPE emporium_actor_restarts_total")),
        "emporium_actor_restarts_total is exported:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_answer() {
    let app = spawn_app(AppOpts::new()).await;
    app.get("/health/live").await.expect(200);
    app.get("/health/ready").await.expect(200);
    // Scraping twice works and both scrapes parse.
    parse_metrics(&app.metrics_text().await);
    let text = app.metrics_text().await;
    parse_metrics(&text);
    assert!(
        samples(&text, "emporium_http_requests_total")
            .iter()
            .any(|(l, _)| l.get("route").is_some_and(|r| r.contains("metrics"))),
        "the first scrape is itself counted:\n{text}"
    );
}
