//! Notifications (issue 15, point 4) over the real binary and a real SMTP server on
//! loopback: a paid order sends exactly one receipt with its lines and total (and one
//! signed `order.paid` webhook), `stock.low` reaches the operators, the history routes
//! list what was sent; a send refused until a kill -9 is sent after the restart with
//! the same message id; a recipient refused for good is dead after one attempt and sent
//! on replay.

use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::GOOD_CARD;
use crate::helpers::*;
use crate::sink::{verifies, Sink};
use crate::smtp::Smtp;

fn opts(smtp: &Smtp) -> AppOpts {
    AppOpts::new().config(format!(
        r#"
[projections]
poll_ms = 20
[webhooks]
allow_private_targets = true
poll_ms = 20
retry_initial_ms = 40
[notifications]
poll_ms = 20
retry_initial_ms = 40
[notifications.email]
smtp_url = "{}"
from = "Test Shop <shop@example.com>"
operators = ["ops@example.com"]
"#,
        smtp.url
    ))
}

/// The messages `GET /v1/admin/notifications?{query}` lists.
async fn listed(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app
        .admin_get(&format!("/v1/admin/notifications?{query}"))
        .await;
    r.expect(200)["items"].as_array().unwrap().clone()
}

/// Waits until the message about `event_type` to `to` has `status`, and returns it.
async fn wait_status(app: &TestApp, event_type: &str, to: &str, status: &str) -> Value {
    let deadline = Deadline::new(
        Duration::from_secs(30),
        format!("the {event_type} message to {to} to be {status}"),
    );
    loop {
        let found = listed(app, &format!("event={event_type}&limit=200"))
            .await
            .into_iter()
            .find(|m| m["recipient"] == to && m["status"] == status);
        if let Some(m) = found {
            return m;
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
}

async fn order_for(app: &TestApp, sku: &str, quantity: i64, email: &str) -> Value {
    let cart = app.cart_with(sku, quantity).await;
    let body = json!({
        "email": email,
        "payment": {"card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    });
    let r = app.checkout(&cart, &crate::domain::new_key(), &body).await;
    assert!(matches!(r.status, 201 | 202), "checkout: {}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let order = app.wait_order_terminal(&id, Duration::from_secs(30)).await;
    assert_eq!(order["status"], "paid", "{order}");
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_sends_one_receipt_and_one_signed_webhook_and_low_stock_reaches_operators() {
    let smtp = Smtp::start();
    let app = spawn_app(opts(&smtp)).await;
    let sink = Sink::start(&[], 200).await;
    let hook = app
        .admin_post(
            "/v1/webhooks",
            Some(&json!({"url": sink.url, "events": ["order.paid"]})),
        )
        .await
        .expect(201)
        .clone();
    // 7 on hand; 2 sold leaves 5, at the default threshold of 5: one stock.low.
    app.stocked_product("mail-mug", 1250, 7).await;
    let shopper = app.shopper("buyer@example.com").await;
    let order = order_for(&app, "mail-mug", 2, "buyer@example.com").await;
    let order_id = order["id"].as_str().unwrap();

    let mails = smtp.wait_for("buyer@example.com", 1, 30).await;
    let receipt = &mails[0];
    assert_eq!(
        receipt.subject(),
        format!("Your order {} is paid", &order_id[..8])
    );
    assert!(receipt.from.contains("shop@example.com"), "{receipt:?}");
    let currency = order["currency"].as_str().unwrap();
    assert!(
        receipt
            .data
            .contains(&format!("2 x mail-mug  12.50 {currency} each")),
        "the receipt lists the line: {}",
        receipt.data
    );
    assert!(
        receipt.data.contains(&format!("Total: 25.00 {currency}")),
        "the receipt has the total: {}",
        receipt.data
    );
    assert!(receipt.data.contains(order_id), "{}", receipt.data);

    // Sent, recorded once, with its attempt; no second receipt follows.
    let sent = wait_status(&app, "order.paid", "buyer@example.com", "sent").await;
    assert_eq!(sent["channel"], "email");
    assert_eq!(sent["attempts"].as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(sent["attempts"][0]["ok"], true);
    assert!(
        sent["attempts"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("250"),
        "{sent}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        smtp.wait_for("buyer@example.com", 1, 5).await.len(),
        1,
        "exactly one receipt"
    );

    // One order.paid webhook, and its signature verifies.
    let got = sink.wait_for(1, 30).await;
    let paid: Vec<_> = got
        .iter()
        .filter(|r| r.json()["data"]["order_id"] == order_id)
        .collect();
    assert_eq!(paid.len(), 1, "{got:?}");
    assert!(verifies(paid[0], hook["secret"].as_str().unwrap()));

    // stock.low went to the operators.
    let alerts = smtp.wait_for("ops@example.com", 1, 30).await;
    assert_eq!(alerts[0].subject(), "Low stock: mail-mug (5 available)");

    // The shopper sees their own messages, not the operators'.
    let mine = app.get_as(&shopper.access, "/v1/me/notifications").await;
    let items = mine.expect(200)["items"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|m| m["recipient"] == "buyer@example.com"),
        "{items:?}"
    );
    assert!(items
        .iter()
        .any(|m| m["event_type"] == "order.paid" && m["status"] == "sent"));

    // Filters, and bad input as a clear 400.
    let low = listed(&app, "event=stock.low&channel=email&status=sent").await;
    assert!(low
        .iter()
        .all(|m| m["event_type"] == "stock.low" && m["recipient"] == "ops@example.com"));
    assert!(listed(&app, "status=dead").await.is_empty());
    app.admin_get("/v1/admin/notifications?status=lost")
        .await
        .expect_error(400, "validation");
    app.admin_get("/v1/admin/notifications?event=order.nope")
        .await
        .expect_error(400, "validation");
    app.admin_get("/v1/admin/notifications?limit=0")
        .await
        .expect_error(400, "validation");
    app.admin_get("/v1/admin/notifications?nope=1")
        .await
        .expect_error(400, "validation");
    app.admin_post("/v1/admin/notifications/ntf_nope/replay", None)
        .await
        .expect_error(404, "not_found");
    // The metrics count the sends.
    let m = app.metrics_text().await;
    assert!(
        m.contains("emporium_notifications_total{channel=\"email\",outcome=\"sent\"}"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_before_the_send_still_sends_with_the_same_id_and_a_refusal_is_replayed() {
    let smtp = Smtp::start();
    let mut app = spawn_app(opts(&smtp)).await;
    app.stocked_product("mail-kill", 900, 50).await;

    // The server refuses (451): the receipt is tried, kept, and the node dies.
    smtp.refuse();
    let order = order_for(&app, "mail-kill", 1, "later@example.com").await;
    let deadline = Deadline::new(Duration::from_secs(30), "a refused send");
    while smtp.refused() == 0 {
        deadline.tick(Duration::from_millis(25)).await;
    }
    let pending = wait_status(&app, "order.paid", "later@example.com", "pending").await;
    app.kill();
    smtp.accept();
    app.restart().await;
    let mails = smtp.wait_for("later@example.com", 1, 30).await;
    assert!(mails[0].data.contains(order["id"].as_str().unwrap()));
    let sent = wait_status(&app, "order.paid", "later@example.com", "sent").await;
    assert_eq!(
        sent["id"], pending["id"],
        "one message id across the restart"
    );
    assert!(
        sent["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["ok"] == false),
        "the refused attempt is in the history: {sent}"
    );
    assert_eq!(smtp.wait_for("later@example.com", 1, 5).await.len(), 1);

    // A mailbox refused for good (550): dead after one attempt, then sent on replay.
    smtp.gone("gone@example.com");
    order_for(&app, "mail-kill", 1, "gone@example.com").await;
    let dead = wait_status(&app, "order.paid", "gone@example.com", "dead").await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 1, "{dead}");
    assert!(smtp
        .mails()
        .iter()
        .all(|m| !m.to.contains(&"gone@example.com".to_owned())));
    smtp.back("gone@example.com");
    let id = dead["id"].as_str().unwrap();
    let r = app
        .admin_post(&format!("/v1/admin/notifications/{id}/replay"), None)
        .await;
    assert_eq!(r.expect(202)["replayed"], 1);
    smtp.wait_for("gone@example.com", 1, 30).await;
    let sent = wait_status(&app, "order.paid", "gone@example.com", "sent").await;
    assert_eq!(sent["id"], id);
    // Replaying what is no longer dead is a 404, not a second send.
    app.admin_post(&format!("/v1/admin/notifications/{id}/replay"), None)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_server_that_never_answers_does_not_fail_a_checkout() {
    // A listener that accepts and never says a word: every send waits for its deadline.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let app = spawn_app(AppOpts::new().config(format!(
        r#"
[projections]
poll_ms = 20
[notifications]
poll_ms = 20
retry_initial_ms = 40
timeout_ms = 500
[notifications.email]
smtp_url = "smtp://127.0.0.1:{port}"
"#
    )))
    .await;
    app.stocked_product("mail-silent", 100, 1000).await;
    let shop = |n: usize| {
        let app = &app;
        async move {
            for i in 0..n {
                order_for(app, "mail-silent", 1, &format!("quiet{i}@example.com")).await;
            }
        }
    };
    // 40 checkouts, 4 at a time, while every send hangs until its deadline: each is paid
    // (order_for asserts it); the latency comparison is a benchmark's, not a test's.
    futures::future::join_all((0..4).map(|_| shop(10))).await;
    // The sends were tried and timed out meanwhile, and the messages wait for a retry.
    let m = wait_status(&app, "order.paid", "quiet0@example.com", "pending").await;
    let deadline = Deadline::new(Duration::from_secs(30), "a timed-out attempt");
    loop {
        let m = listed(&app, "event=order.paid&status=pending&limit=200")
            .await
            .into_iter()
            .find(|x| x["id"] == m["id"])
            .expect("still pending");
        if let Some(a) = m["attempts"].as_array().and_then(|a| a.first()) {
            assert_eq!(a["ok"], false, "{m}");
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_template_is_checked_on_save_and_used_for_the_next_messages() {
    let smtp = Smtp::start();
    let app = spawn_app(opts(&smtp)).await;
    let list = app
        .admin_get("/v1/notification-templates")
        .await
        .expect(200)
        .clone();
    let paid = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event"] == "order.paid")
        .cloned()
        .expect("order.paid has a default template");
    assert_eq!(paid["source"], "default", "{paid}");

    // A template naming a field the event lacks is refused with its part and line.
    let path = "/v1/notification-templates/order.paid/email";
    let bad = json!({"subject": "Paid", "body": "Hello\n{{ data.customer_name }}"});
    let r = app.admin_put_json(path, &bad).await;
    r.expect_error(400, "validation");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("body line 2"),
        "{}",
        r.text
    );
    let syntax = json!({"subject": "{% if %}", "body": ""});
    app.admin_put_json(path, &syntax)
        .await
        .expect_error(400, "validation");
    let ok = json!({
        "subject": "Receipt {{ data.order_id[:8] }} from the test shop",
        "body": "Paid: {{ data.total_minor | money(data.currency) }}\n",
    });
    for (p, why) in [
        (
            "/v1/notification-templates/order.nope/email",
            "unknown event",
        ),
        (
            "/v1/notification-templates/order.paid/fax",
            "an unknown channel",
        ),
    ] {
        let r = app.admin_put_json(p, &ok).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text);
    }
    let extra = json!({"subject": "s", "body": "b", "html": "<p>"});
    assert_eq!(app.admin_put_json(path, &extra).await.status, 400);

    let saved = app.admin_put_json(path, &ok).await.expect(200).clone();
    assert_eq!(saved["source"], "saved");
    assert_eq!(saved["subject"], ok["subject"]);

    // The next paid order's receipt is the saved template's.
    app.stocked_product("tmpl-mug", 1250, 10).await;
    let order = order_for(&app, "tmpl-mug", 2, "tmpl@example.com").await;
    let mail = &smtp.wait_for("tmpl@example.com", 1, 30).await[0];
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        mail.subject(),
        format!("Receipt {} from the test shop", &id[..8])
    );
    assert!(
        mail.data.contains(&format!(
            "Paid: 25.00 {}",
            order["currency"].as_str().unwrap()
        )),
        "{}",
        mail.data
    );

    // Deleting it goes back to the default.
    let r = app.admin_delete(path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.admin_delete(path).await.expect_error(404, "not_found");
    let list = app
        .admin_get("/v1/notification-templates")
        .await
        .expect(200)
        .clone();
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["event"] == "order.paid" && t["source"] == "default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_lists_the_whole_clusters_messages() {
    let smtp = Smtp::start();
    let env = [
        ("EMPORIUM_PROJECTIONS__POLL_MS", "20"),
        ("EMPORIUM_NOTIFICATIONS__POLL_MS", "20"),
        ("EMPORIUM_NOTIFICATIONS__EMAIL__SMTP_URL", smtp.url.as_str()),
    ];
    let nodes = crate::cluster::cluster_with(3, false, &env).await;
    let st = crate::cluster::status(&nodes[0]).await;
    let sku = crate::cluster::sku_on(&st, "MAIL-CLUSTER", "node1");
    nodes[0].stocked_product(&sku, 500, 100).await;
    // Eight orders: their partitions (by random order id) spread over the three nodes.
    let mut ids = Vec::new();
    for i in 0..8 {
        let order = order_for(&nodes[i % 3], &sku, 1, "everywhere@example.com").await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    smtp.wait_for("everywhere@example.com", 8, 60).await;
    for node in &nodes {
        let deadline = Deadline::new(
            Duration::from_secs(30),
            "every receipt listed by every node",
        );
        loop {
            let items = listed(node, "event=order.paid&status=sent&limit=200").await;
            let listed_ids: std::collections::HashSet<String> = items
                .iter()
                .filter(|m| m["recipient"] == "everywhere@example.com")
                .map(|m| m["event_id"].as_str().unwrap().to_owned())
                .collect();
            if listed_ids.len() == ids.len() {
                break;
            }
            deadline.tick(Duration::from_millis(50)).await;
        }
    }
    // Pages of 3, newest first, from node2: every message once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let r = nodes[1]
            .admin_get(&format!(
                "/v1/admin/notifications?event=order.paid&limit=3&cursor={cursor}"
            ))
            .await;
        let page = r.expect(200).clone();
        for m in page["items"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert_eq!(unique.len(), 8, "no message twice: {seen:?}");
}
