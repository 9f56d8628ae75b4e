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

/// A machine `id` with slots 1 and 2 of `SKU-1` and slot 3 of `SKU-3`, each holding 4 of
/// 10 as the operator set them; returns its secret.
async fn machine_at_four(app: &TestApp, id: &str) -> String {
    let r = app
        .admin_put_json(
            &format!("/v1/machines/{id}"),
            &json!({"name": "Lobby machine", "location": "Lobby"}),
        )
        .await;
    let secret = r.expect(201)["secret"].as_str().unwrap().to_owned();
    let slots = json!({"slots": [
        {"slot": 1, "sku": "SKU-1", "price_minor": 150, "capacity": 10, "level": 4},
        {"slot": 2, "sku": "SKU-1", "price_minor": 150, "capacity": 10, "level": 4},
        {"slot": 3, "sku": "SKU-3", "price_minor": 200, "capacity": 10, "level": 4},
    ]});
    app.admin_put_json(&format!("/v1/machines/{id}/planogram"), &slots)
        .await
        .expect(200);
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restock_visit_moves_truck_stock_into_the_machine_and_its_vends_take_it_out() {
    use crate::machine_client::*;
    use std::time::Duration;
    let app = spawn_app(AppOpts::new()).await;
    let secret = machine_at_four(&app, "vm-loc").await;
    app.admin_put_json(
        "/v1/locations/van-1",
        &json!({"kind": "truck", "name": "Van 1"}),
    )
    .await
    .expect(201);
    for (sku, units) in [("SKU-1", 20), ("SKU-3", 5)] {
        app.create_product(sku, 150, "drinks").await;
        adjust_at(&app, sku, "van-1", units).await.expect(200);
    }
    let visit = |slots: Value| {
        let app = &app;
        async move {
            app.admin_post(
                "/v1/machines/vm-loc/restock-visits",
                Some(&json!({"truck": "van-1", "slots": slots})),
            )
            .await
        }
    };

    // The truck holds 5 of SKU-3, not 6: the visit moves nothing, SKU-1 included.
    visit(json!([{"slot": 1, "quantity": 6}, {"slot": 3, "quantity": 6}]))
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(
        row(&at_locations(&app, "SKU-1").await, "van-1"),
        (20, 0, 20)
    );
    assert_eq!(row(&at_locations(&app, "SKU-1").await, "vm-loc"), (0, 0, 0));
    // Over a slot's capacity, an unknown slot, a slot twice, a location that is no truck.
    for bad in [
        json!([{"slot": 1, "quantity": 7}]),
        json!([{"slot": 9, "quantity": 1}]),
        json!([{"slot": 1, "quantity": 1}, {"slot": 1, "quantity": 1}]),
        json!([]),
    ] {
        visit(bad).await.expect_error(400, "validation");
    }
    app.admin_post(
        "/v1/machines/vm-loc/restock-visits",
        Some(&json!({"truck": "main", "slots": [{"slot": 1, "quantity": 1}]})),
    )
    .await
    .expect_error(400, "validation");

    let v = visit(json!([
        {"slot": 1, "quantity": 6}, {"slot": 2, "quantity": 3}, {"slot": 3, "quantity": 5}
    ]))
    .await;
    let v = v.expect(201).clone();
    assert_eq!(v["location"], "vm-loc");
    assert_eq!(
        v["lines"],
        json!([
            {"sku": "SKU-1", "slots": [1, 2], "quantity": 9, "machine_reported": 8,
             "ledger_before": 0, "difference": 8},
            {"sku": "SKU-3", "slots": [3], "quantity": 5, "machine_reported": 4,
             "ledger_before": 0, "difference": 4},
        ]),
        "the machine reports 8 and 4 units the ledger never held"
    );
    let rows = at_locations(&app, "SKU-1").await;
    assert_eq!(
        (row(&rows, "van-1"), row(&rows, "vm-loc")),
        ((11, 0, 11), (9, 0, 9))
    );
    assert_eq!(row(&at_locations(&app, "SKU-3").await, "van-1"), (0, 0, 0));

    // The machine's vends take units out at its location, once each however often told.
    let mut s = connect(&app.grpc_address, "vm-loc", &secret, 0)
        .await
        .unwrap();
    let vends = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    s.send(1, cash_vend(vends[0], 1)).await;
    s.send(2, cash_vend(vends[1], 2)).await;
    s.send(3, cash_vend(vends[0], 1)).await; // a replay of the first
    s.send(4, heartbeat()).await;
    s.wait_ack(4).await;
    let deadline = Deadline::new(
        Duration::from_secs(20),
        "the machine's vends to leave its location",
    );
    loop {
        let rows = at_locations(&app, "SKU-1").await;
        if row(&rows, "vm-loc").0 <= 7 {
            assert_eq!(row(&rows, "vm-loc"), (7, 0, 7));
            // On hand over every location plus units sold = units received.
            let on_hand: i64 = rows.iter().map(|r| r.1).sum();
            assert_eq!(on_hand + 2, 20);
            break;
        }
        deadline.tick(Duration::from_millis(100)).await;
    }
    crate::events_feed::caught_up(&app).await;
    assert_eq!(row(&at_locations(&app, "SKU-1").await, "vm-loc"), (7, 0, 7));
}
