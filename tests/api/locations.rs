//! Stock locations over the real binary: a checkout draws a line from several locations
//! by their priority, the order's line says where its units came from, and a transfer
//! refused by its destination gives the units back to its source.

use serde_json::{json, Value};

use crate::helpers::*;

async fn adjust_at(app: &TestApp, sku: &str, location: &str, delta: i64) -> Resp {
    let body = json!({"delta": delta, "reason": "received", "location": location});
    app.admin_post(&format!("/v1/inventory/{sku}/adjustments"), Some(&body))
        .await
}

/// `(on_hand, reserved, available)` of `sku` at each location that holds any.
async fn at_locations(app: &TestApp, sku: &str) -> Vec<(String, i64, i64, i64)> {
    let inv = app.get(&format!("/v1/inventory/{sku}")).await;
    let inv = inv.expect(200);
    let rows: Vec<(String, i64, i64, i64)> = inv["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            (
                l["location"].as_str().unwrap().to_owned(),
                l["on_hand"].as_i64().unwrap(),
                l["reserved"].as_i64().unwrap(),
                l["available"].as_i64().unwrap(),
            )
        })
        .collect();
    let sum: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(
        inv["on_hand"].as_i64(),
        Some(sum),
        "total is the locations' sum"
    );
    rows
}

fn row(rows: &[(String, i64, i64, i64)], location: &str) -> (i64, i64, i64) {
    rows.iter()
        .find(|r| r.0 == location)
        .map(|r| (r.1, r.2, r.3))
        .unwrap_or((0, 0, 0))
}

async fn transfer(app: &TestApp, sku: &str, from: &str, to: &str, quantity: i64) -> Resp {
    let body = json!({"sku": sku, "from": from, "to": to, "quantity": quantity});
    app.admin_post("/v1/inventory/transfers", Some(&body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_draws_by_priority_and_a_refused_transfer_returns_its_units() {
    let app = spawn_app(AppOpts::new()).await;
    app.create_product("LOC-1", 500, "general").await;
    for (id, kind, priority) in [
        ("north", "warehouse", 1),
        ("south", "store", 2),
        ("van-1", "truck", 0),
    ] {
        let r = app
            .admin_put_json(
                &format!("/v1/locations/{id}"),
                &json!({"kind": kind, "name": id.to_uppercase(), "priority": priority}),
            )
            .await;
        assert_eq!(r.expect(201)["id"], id);
    }
    let list = app.admin_get("/v1/locations").await;
    assert_eq!(
        list.expect(200)["draw_order"],
        json!(["main", "north", "south"]),
        "trucks are not drawn from; main (priority 0) first"
    );
    adjust_at(&app, "LOC-1", "north", 3).await.expect(200);
    adjust_at(&app, "LOC-1", "south", 3).await.expect(200);
    adjust_at(&app, "LOC-1", "van-1", 9).await.expect(200);
    adjust_at(&app, "LOC-1", "nowhere", 3)
        .await
        .expect_error(400, "validation");
    adjust_at(&app, "LOC-1", "south", -4)
        .await
        .expect_error(409, "insufficient_stock");

    // 5 units: 3 from north (priority 1), then 2 from south; none from the truck.
    let cart = app.cart_with("LOC-1", 5).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(
        order["items"][0]["allocations"],
        json!([{"location": "north", "quantity": 3}, {"location": "south", "quantity": 2}])
    );
    let rows = at_locations(&app, "LOC-1").await;
    assert_eq!(row(&rows, "north"), (0, 0, 0));
    assert_eq!(row(&rows, "south"), (1, 0, 1));
    assert_eq!(row(&rows, "van-1"), (9, 0, 9));
    // Beyond what the drawn locations hold: out of stock, though the truck holds 9.
    let cart = app.cart_with("LOC-1", 2).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["failure"]["code"], "out_of_stock", "{order}");

    // A transfer holds its units at the source while in transit.
    let t = transfer(&app, "LOC-1", "van-1", "north", 4).await;
    assert_eq!(t.status, 201, "{}", t.text);
    assert_eq!(t.json["status"], "in_transit");
    let id = t.json["id"].as_str().unwrap().to_owned();
    let url = format!("/v1/inventory/LOC-1/transfers/{id}");
    assert_eq!(row(&at_locations(&app, "LOC-1").await, "van-1"), (9, 4, 5));
    // The destination closes before the units arrive: it refuses them, and they are
    // the source's again.
    assert_eq!(app.admin_delete("/v1/locations/north").await.status, 204);
    app.admin_post(&format!("{url}/receive"), None)
        .await
        .expect_error(409, "location_closed");
    let failed = app.admin_get(&url).await;
    let failed: &Value = failed.expect(200);
    assert_eq!(
        (failed["status"].as_str(), failed["failure"].as_str()),
        (Some("failed"), Some("destination_closed"))
    );
    let rows = at_locations(&app, "LOC-1").await;
    assert_eq!(row(&rows, "van-1"), (9, 0, 9));
    assert_eq!(row(&rows, "north"), (0, 0, 0));
    // A repeat answers the same, and moves nothing.
    app.admin_post(&format!("{url}/receive"), None)
        .await
        .expect_error(409, "location_closed");
    assert_eq!(row(&at_locations(&app, "LOC-1").await, "van-1"), (9, 0, 9));
    // A closed location takes no new transfer and is not drawn from.
    transfer(&app, "LOC-1", "van-1", "north", 1)
        .await
        .expect_error(409, "location_closed");
    let list = app.admin_get("/v1/locations").await;
    assert_eq!(list.expect(200)["draw_order"], json!(["main", "south"]));

    // Received: the units leave the source and are on hand at the destination.
    let t = transfer(&app, "LOC-1", "van-1", "south", 6).await;
    let id = t.expect(201)["id"].as_str().unwrap().to_owned();
    let url = format!("/v1/inventory/LOC-1/transfers/{id}");
    let got = app.admin_post(&format!("{url}/receive"), None).await;
    assert_eq!(got.expect(200)["status"], "received");
    let again = app.admin_post(&format!("{url}/receive"), None).await;
    assert_eq!(
        again.expect(200)["status"],
        "received",
        "a repeat is the same"
    );
    app.admin_post(&format!("{url}/cancel"), None)
        .await
        .expect_error(409, "invalid_transition");
    let rows = at_locations(&app, "LOC-1").await;
    assert_eq!(row(&rows, "van-1"), (3, 0, 3));
    assert_eq!(row(&rows, "south"), (7, 0, 7));

    // Refusals: more than the source has, the same place, an unknown location or SKU.
    transfer(&app, "LOC-1", "van-1", "south", 4)
        .await
        .expect_error(409, "insufficient_stock");
    transfer(&app, "LOC-1", "south", "south", 1)
        .await
        .expect_error(400, "validation");
    transfer(&app, "LOC-1", "mars", "south", 1)
        .await
        .expect_error(400, "validation");
    transfer(&app, "NOPE-1", "south", "main", 1)
        .await
        .expect_error(404, "not_found");
    app.admin_get(&format!(
        "/v1/inventory/LOC-1/transfers/{}",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect_error(404, "not_found");
    // A cancelled transfer gives its units back.
    let t = transfer(&app, "LOC-1", "south", "main", 2).await;
    let id = t.expect(201)["id"].as_str().unwrap().to_owned();
    let c = app
        .admin_post(&format!("/v1/inventory/LOC-1/transfers/{id}/cancel"), None)
        .await;
    assert_eq!(c.expect(200)["failure"], "cancelled");
    assert_eq!(row(&at_locations(&app, "LOC-1").await, "south"), (7, 0, 7));
}
