//! Reviews over the real binary: only a verified buyer writes one, moderation decides
//! what is listed, and the product's rating follows once the ratings projection ran.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

async fn write(app: &TestApp, token: &str, sku: &str, body: Value) -> Resp {
    let body = body.to_string();
    app.call(
        Some(token),
        "POST",
        &format!("/v1/products/{sku}/reviews"),
        Some(&body),
    )
    .await
}

/// Waits (bounded) for the product's rating to read `count` reviews averaging `avg`.
async fn wait_rating(app: &TestApp, sku: &str, count: u64, avg: Option<f64>) {
    let deadline = Deadline::new(
        Duration::from_secs(20),
        format!("{sku}'s rating to reach {count} reviews, {avg:?}"),
    );
    loop {
        let p = app
            .get(&format!("/v1/products/{sku}"))
            .await
            .expect(200)
            .clone();
        if p["rating_count"].as_u64() == Some(count) && p["rating_average"].as_f64() == avg {
            let r = app.get(&format!("/v1/products/{sku}/reviews")).await;
            let r = r.expect(200);
            assert_eq!(
                (r["rating_count"].as_u64(), r["rating_average"].as_f64()),
                (Some(count), avg)
            );
            return;
        }
        deadline.tick(Duration::from_millis(100)).await;
    }
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verified_buyers_review_and_approval_moves_the_rating() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("MUG-1", 900, 20).await;
    let ada = app.shopper("ada@example.com").await;
    let bob = app.shopper("bob@example.com").await;
    let carl = app.shopper("carl@example.com").await;
    for buyer in [&ada, &carl] {
        let cart = app.cart_as(Some(&buyer.access), "MUG-1", 1).await;
        assert_eq!(
            app.checkout_as(Some(&buyer.access), &cart).await["status"],
            "paid"
        );
    }

    let review = json!({"rating": 4, "title": "Solid mug", "body": "Keeps tea hot."});
    write(&app, &bob.access, "MUG-1", review.clone())
        .await
        .expect_error(403, "not_a_verified_buyer");
    write(&app, &ada.access, "NOPE-1", review.clone())
        .await
        .expect_error(404, "not_found");
    write(
        &app,
        &ada.access,
        "MUG-1",
        json!({"rating": 6, "title": "x"}),
    )
    .await
    .expect_error(400, "validation");
    app.call(
        None,
        "POST",
        "/v1/products/MUG-1/reviews",
        Some(&review.to_string()),
    )
    .await
    .expect_error(401, "unauthorized");

    let r = write(&app, &ada.access, "MUG-1", review.clone()).await;
    let created = r.expect(201).clone();
    assert_eq!(created["status"], "pending");
    let ada_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(ada_id, format!("MUG-1~{}", ada.id));
    // An edit with a link stays in moderation, and says why.
    let edited = write(
        &app,
        &ada.access,
        "MUG-1",
        json!({"rating": 4, "title": "Solid mug", "body": "More at https://example.com"}),
    )
    .await;
    assert_eq!(edited.expect(200)["flags"], json!(["link"]));
    let listed = app.get("/v1/products/MUG-1/reviews").await;
    assert_eq!(
        listed.expect(200)["items"],
        json!([]),
        "a pending review is not listed"
    );
    let queue = app.admin_get("/v1/reviews/pending").await;
    assert_eq!(queue.expect(200)["items"][0]["id"], ada_id);

    let approved = app
        .admin_post(&format!("/v1/reviews/{ada_id}/approve"), None)
        .await;
    assert_eq!(approved.expect(200)["status"], "approved");
    wait_rating(&app, "MUG-1", 1, Some(4.0)).await;
    assert_eq!(
        app.admin_get("/v1/reviews/pending").await.expect(200)["items"],
        json!([])
    );

    let carl_id = write(
        &app,
        &carl.access,
        "MUG-1",
        json!({"rating": 2, "title": "Chipped"}),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin_post(&format!("/v1/reviews/{carl_id}/approve"), None)
        .await
        .expect(200);
    wait_rating(&app, "MUG-1", 2, Some(3.0)).await;
    let recent = app.get("/v1/products/MUG-1/reviews?sort=recent").await;
    assert_eq!(titles(recent.expect(200)), ["Chipped", "Solid mug"]);
    let best = app.get("/v1/products/MUG-1/reviews?sort=rating").await;
    assert_eq!(titles(best.expect(200)), ["Solid mug", "Chipped"]);
    app.get("/v1/products/MUG-1/reviews?sort=stars")
        .await
        .expect_error(400, "validation");

    // Rejected: listed nowhere, and out of the rating.
    let rejected = app
        .admin_post(
            &format!("/v1/reviews/{carl_id}/reject"),
            Some(&json!({"reason": "not about the mug"})),
        )
        .await;
    assert_eq!(rejected.expect(200)["reason"], "not about the mug");
    wait_rating(&app, "MUG-1", 1, Some(4.0)).await;

    // Three shoppers' reports send an approved review back to moderation.
    for who in [&bob, &carl, &ada] {
        let r = app
            .call(
                Some(&who.access),
                "POST",
                &format!("/v1/reviews/{ada_id}/report"),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    wait_rating(&app, "MUG-1", 0, None).await;
    let queue = app.admin_get("/v1/reviews/pending").await;
    assert_eq!(queue.expect(200)["items"][0]["flags"], json!(["reported"]));
    app.admin_post("/v1/reviews/nope/approve", None)
        .await
        .expect_error(404, "not_found");
}
