//! The category tree over the real binary: a product names its category by id, and a
//! listing filtered by a category includes every category below it, as the tree is now.

use serde_json::{json, Value};

use crate::helpers::*;

fn skus(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn listed(app: &TestApp, category: &str) -> Vec<String> {
    let r = app.get(&format!("/v1/products?category={category}")).await;
    skus(r.expect(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_filter_includes_its_subcategories_and_the_tree_stays_a_tree() {
    let app = spawn_app(AppOpts::new()).await;
    for (id, name, parent) in [
        ("home", "Home", None),
        ("kitchen", "Kitchen", Some("home")),
        ("mugs", "Mugs & Cups", Some("kitchen")),
        ("garden", "Garden", None),
    ] {
        let r = app
            .admin_put_json(
                &format!("/v1/categories/{id}"),
                &json!({"name": name, "parent": parent}),
            )
            .await;
        assert_eq!(r.expect(201)["id"], id);
    }
    let again = app
        .admin_put_json(
            "/v1/categories/mugs",
            &json!({"name": "Mugs & Cups", "parent": "kitchen", "position": 2}),
        )
        .await;
    assert_eq!(again.expect(200)["slug"], "mugs-cups");

    let tree = app.get("/v1/categories").await;
    let tree = tree.expect(200);
    let roots: Vec<&str> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(roots, ["garden", "home"]);
    assert_eq!(tree["items"][1]["children"][0]["children"][0]["id"], "mugs");
    assert_eq!(
        app.get("/v1/categories/kitchen").await.expect(200)["children"][0]["id"],
        "mugs"
    );
    app.get("/v1/categories/nope")
        .await
        .expect_error(404, "not_found");

    for (sku, category) in [
        ("MUG-1", "mugs"),
        ("PAN-1", "kitchen"),
        ("RUG-1", "home"),
        ("HOE-1", "garden"),
    ] {
        app.create_product(sku, 500, category).await;
    }
    assert_eq!(listed(&app, "home").await, ["MUG-1", "PAN-1", "RUG-1"]);
    assert_eq!(listed(&app, "kitchen").await, ["MUG-1", "PAN-1"]);
    assert_eq!(listed(&app, "mugs").await, ["MUG-1"]);
    assert_eq!(listed(&app, "garden").await, ["HOE-1"]);

    // The tree refuses a cycle, an unknown parent, a taken slug, and removing a parent.
    let put = |id: &str, body: Value| {
        let path = format!("/v1/categories/{id}");
        let app = &app;
        async move { app.admin_put_json(&path, &body).await }
    };
    put("home", json!({"name": "Home", "parent": "mugs"}))
        .await
        .expect_error(400, "validation");
    put("x", json!({"name": "X", "parent": "nowhere"}))
        .await
        .expect_error(400, "validation");
    put("y", json!({"name": "Y", "slug": "garden"}))
        .await
        .expect_error(409, "conflict");
    app.admin_delete("/v1/categories/kitchen")
        .await
        .expect_error(409, "conflict");

    // Moving a branch moves its products with it.
    put("mugs", json!({"name": "Mugs & Cups", "parent": "garden"}))
        .await
        .expect(200);
    assert_eq!(listed(&app, "garden").await, ["HOE-1", "MUG-1"]);
    assert_eq!(listed(&app, "home").await, ["PAN-1", "RUG-1"]);
    let r = app.admin_delete("/v1/categories/mugs").await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(listed(&app, "garden").await, ["HOE-1"]);
}
