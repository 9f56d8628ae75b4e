//! Vending machines over real gRPC and HTTP against the real binary: sessions, online and
//! offline, authentication, replacement, exactly-once replay, app purchases, crashes,
//! commands, health and reflection.

use emporium::grpc::pb::{self, command};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::helpers::*;
use crate::machine_client::*;
use crate::users::*;

const CARD: &str = "4242424242424242";

fn purchase_body(slot: u32) -> Value {
    json!({"slot": slot, "email": "buyer@example.com",
           "payment": {"card_number": CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
}

async fn purchase(app: &TestApp, id: &str, slot: u32, token: Option<&str>) -> Resp {
    let mut rb = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/machines/{id}/purchase"),
        )
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&purchase_body(slot));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    send(rb).await
}

fn slot_of(machine: &Value, n: u64) -> &Value {
    machine["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == n)
        .expect("slot present")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_go_online_and_offline_authenticate_and_replace_each_other() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_VENDING__HEARTBEAT_INTERVAL_S", 1)).await;
    let secret = register_machine(&app, "vm-a", 2, 5).await;
    let grpc = app.grpc_address.clone();

    // Wrong secret, unknown machine, and a first message that is not Hello.
    for (id, s) in [("vm-a", "wrong"), ("vm-nope", secret.as_str())] {
        let status = connect(&grpc, id, s, 0).await.err().expect("refused");
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{id}: {status:?}"
        );
    }

    let mut s1 = connect(&grpc, "vm-a", &secret, 0).await.expect("session");
    assert_eq!(s1.welcome.acked_seq, 0);
    assert_eq!(s1.welcome.heartbeat_interval_s, 1);
    s1.send(1, heartbeat()).await;
    s1.wait_ack(1).await;
    let m = app.admin_get("/v1/machines/vm-a").await.expect(200).clone();
    assert_eq!(m["online"], true);
    assert_eq!(m["temperature_dc"], 45);
    assert_eq!(m["acked_seq"], 1);
    assert!(m.get("secret").is_none() && !m.to_string().contains(&secret));

    // A second session replaces the first, which ends ABORTED.
    let mut s2 = connect(&grpc, "vm-a", &secret, 1)
        .await
        .expect("second session");
    assert_eq!(s2.welcome.acked_seq, 1, "Welcome carries the durable seq");
    assert_eq!(s1.ended().await.code(), tonic::Code::Aborted);
    s2.send(2, heartbeat()).await;
    s2.wait_ack(2).await;

    // Disconnected: offline once the stream ends (see
    // `a_machine_whose_stream_ended_is_offline_at_once_and_takes_no_purchase`).
    drop(s2);
    let m = wait_machine(&app, "vm-a", "the machine to go offline", |m| {
        m["online"] == false
    })
    .await;
    assert!(m["last_seen"].is_string());
    let listed = app.admin_get("/v1/machines?online=false").await;
    assert_eq!(listed.expect(200)["items"][0]["id"], "vm-a");
    let listed = app.admin_get("/v1/machines?online=true").await;
    assert_eq!(listed.expect(200)["items"], json!([]));

    // Health answers SERVING; reflection lists the gateway.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "emporium.vending.v1.MachineGateway"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            r.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "service {service:?}"
        );
    }
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names
            .iter()
            .any(|n| n == "emporium.vending.v1.MachineGateway"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_vends_count_exactly_once() {
    let app = spawn_app(AppOpts::new()).await;
    let secret = register_machine(&app, "vm-r", 5, 40).await;
    let vends: Vec<(u64, Uuid, u32)> = (1..=100u64)
        .map(|seq| (seq, Uuid::new_v4(), (seq % 5) as u32 + 1))
        .collect();

    // Send all 100, then drop the stream without waiting for the acks.
    let s = connect(&app.grpc_address, "vm-r", &secret, 0)
        .await
        .unwrap();
    for (seq, id, slot) in &vends {
        s.send(*seq, cash_vend(*id, *slot)).await;
    }
    drop(s);

    // Reconnect and replay everything, then duplicates of the same seqs again.
    let mut s = connect(&app.grpc_address, "vm-r", &secret, 0)
        .await
        .unwrap();
    assert!(s.welcome.acked_seq <= 100);
    for (seq, id, slot) in vends.iter().chain(vends.iter().skip(80)) {
        s.send(*seq, cash_vend(*id, *slot)).await;
    }
    s.send(101, heartbeat()).await;
    s.wait_ack(101).await;

    let m = app.admin_get("/v1/machines/vm-r").await.expect(200).clone();
    assert_eq!(m["sales"]["units"], 100, "{}", m["sales"]);
    let levels: u64 = m["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_u64().unwrap())
        .sum();
    assert_eq!(
        levels,
        5 * 40 - 100,
        "the slot levels dropped by exactly 100"
    );
    let per_slot: u64 = m["sales"]["per_slot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["units"].as_u64().unwrap())
        .sum();
    assert_eq!(per_slot, 100);
    assert_eq!(m["acked_seq"], 101);

    // The public feed tells each counted vend once, with its vend id, and the session.
    crate::events_feed::caught_up(&app).await;
    let feed = crate::events_feed::whole_feed(&app, "&types=machine.vend,machine.online").await;
    let mut told: Vec<&str> = feed
        .iter()
        .filter(|e| e["type"] == "machine.vend" && e["data"]["machine_id"] == "vm-r")
        .map(|e| e["data"]["vend_id"].as_str().unwrap())
        .collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(told.len(), 100, "machine.vend once per counted vend");
    let mut sent: Vec<String> = vends.iter().map(|(_, id, _)| id.to_string()).collect();
    sent.sort();
    assert_eq!(told, sent.iter().map(String::as_str).collect::<Vec<_>>());
    let vend_events = feed.iter().filter(|e| e["type"] == "machine.vend").count();
    assert_eq!(vend_events, 100, "no replay is told again");
    assert!(feed
        .iter()
        .any(|e| e["type"] == "machine.online" && e["data"]["machine_id"] == "vm-r"));
}

/// Answers the next Dispense like a machine: the vend, then the command ack.
pub(crate) async fn vend_for_dispense(
    s: &mut Session,
    seq: &mut u64,
    success: bool,
) -> (String, u32) {
    let c = s
        .wait_command(|c| matches!(c.kind, Some(command::Kind::Dispense(_))))
        .await;
    let Some(command::Kind::Dispense(d)) = c.kind else {
        unreachable!()
    };
    *seq += 1;
    s.send(*seq, app_vend(&d.order_id, d.slot, success)).await;
    *seq += 1;
    let status = if success {
        pb::command_ack::Status::Done
    } else {
        pb::command_ack::Status::Rejected
    };
    s.send(*seq, command_ack(&c.command_id, status)).await;
    s.wait_ack(*seq).await;
    (d.order_id, d.slot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_purchases_capture_on_vend_and_void_on_failure_or_offline() {
    let app = spawn_app(roomy_opts()).await;
    let secret = register_machine(&app, "vm-p", 2, 5).await;
    register_machine(&app, "vm-off", 1, 5).await;
    let mut s = connect(&app.grpc_address, "vm-p", &secret, 0)
        .await
        .unwrap();
    let mut seq = 0;

    // Offline machine: 409 at once, and no order exists for the shopper.
    let shopper = app.shopper("vend-buyer@example.com").await;
    purchase(&app, "vm-off", 1, Some(&shopper.access))
        .await
        .expect_error(409, "machine_offline");
    let mine = app.get_as(&shopper.access, "/v1/me/orders").await;
    assert_eq!(mine.expect(200)["items"], json!([]), "no order, no charge");

    // Success: the machine vends, the payment is captured, the order is fulfilled.
    let buyer = {
        let app_url = app.address.clone();
        let client = app.client.clone();
        let token = shopper.access.clone();
        tokio::spawn(async move {
            let r = client
                .post(format!("{app_url}/v1/machines/vm-p/purchase"))
                .bearer_auth(token)
                .header("Idempotency-Key", "vend-ok-1")
                .json(&purchase_body(1))
                .send()
                .await
                .unwrap();
            read(r).await
        })
    };
    let (order_id, slot) = vend_for_dispense(&mut s, &mut seq, true).await;
    assert_eq!(slot, 1);
    let placed = buyer.await.unwrap();
    assert!(matches!(placed.status, 201 | 202), "{}", placed.text);
    assert_eq!(placed.json["id"], order_id.as_str());
    assert_eq!(placed.json["kind"], "vending");
    let o = wait_order(&app, &order_id, "the order to be fulfilled", |o| {
        o["status"] == "fulfilled"
    })
    .await;
    assert_eq!(o["payment"]["status"], "captured");
    assert_eq!(o["vending"]["status"], "vended");
    assert_eq!(o["vending"]["machine_id"], "vm-p");
    assert_eq!(o["total_minor"], 101);
    let m = app.admin_get("/v1/machines/vm-p").await.expect(200).clone();
    assert_eq!(slot_of(&m, 1)["level"], 4);
    assert_eq!(m["app_holds"], json!([]));
    assert_eq!(m["sales"]["units"], 1);

    // Failure: the vend fails, the payment is voided, the unit is released.
    let buyer = {
        let app_url = app.address.clone();
        let client = app.client.clone();
        tokio::spawn(async move {
            let r = client
                .post(format!("{app_url}/v1/machines/vm-p/purchase"))
                .header("Idempotency-Key", "vend-fail-1")
                .json(&purchase_body(2))
                .send()
                .await
                .unwrap();
            read(r).await
        })
    };
    let (order_id, _) = vend_for_dispense(&mut s, &mut seq, false).await;
    let placed = buyer.await.unwrap();
    assert!(matches!(placed.status, 201 | 202), "{}", placed.text);
    let o = wait_order(&app, &order_id, "the failed order to be cancelled", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(o["failure"]["code"], "vend_failed");
    assert_eq!(o["payment"]["status"], "voided");
    assert_eq!(o["vending"]["status"], "failed");
    let m = app.admin_get("/v1/machines/vm-p").await.expect(200).clone();
    assert_eq!(slot_of(&m, 2)["level"], 5);
    assert_eq!(slot_of(&m, 2)["available"], 5, "the unit is released");
    assert_eq!(m["sales"]["failed_vends"], 1);

    // The public slot view, and bad input.
    let slots = app.get("/v1/machines/vm-p/slots").await;
    assert_eq!(slots.expect(200)[0]["available"], true);
    purchase(&app, "vm-p", 99, None)
        .await
        .expect_error(404, "not_found");
    purchase(&app, "no such!", 1, None)
        .await
        .expect_error(400, "validation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispense_past_its_deadline_cancels_with_vend_timeout() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_VENDING__DISPENSE_TIMEOUT_MS", 1500)).await;
    let secret = register_machine(&app, "vm-t", 1, 3).await;
    let mut s = connect(&app.grpc_address, "vm-t", &secret, 0)
        .await
        .unwrap();
    let placed = purchase(&app, "vm-t", 1, None).await;
    assert!(matches!(placed.status, 201 | 202), "{}", placed.text);
    let order_id = placed.json["id"].as_str().unwrap().to_owned();
    // The machine gets the Dispense and never answers it.
    let c = s
        .wait_command(|c| matches!(c.kind, Some(command::Kind::Dispense(_))))
        .await;
    let Some(command::Kind::Dispense(d)) = c.kind else {
        unreachable!()
    };
    assert_eq!(d.order_id, order_id);
    assert!(d.deadline_unix_ms > 0);
    // Keep the machine online meanwhile.
    s.send(1, heartbeat()).await;
    let o = wait_order(&app, &order_id, "the order to time out", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(o["failure"]["code"], "vend_timeout");
    assert_eq!(o["payment"]["status"], "voided");
    let m = app.admin_get("/v1/machines/vm-t").await.expect(200).clone();
    assert_eq!(m["app_holds"], json!([]));
    assert_eq!(slot_of(&m, 1)["available"], 3);
    assert_eq!(m["recent_commands"][0]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_no_acked_message_and_counts_none_twice() {
    let mut app = spawn_app(AppOpts::new()).await;
    let secret = register_machine(&app, "vm-c", 6, 60).await;
    // Enough that the kill, right after the 20th ack, lands mid-stream.
    let vends: Vec<(u64, Uuid, u32)> = (1..=300u64)
        .map(|seq| (seq, Uuid::new_v4(), (seq % 6) as u32 + 1))
        .collect();
    let mut s = connect(&app.grpc_address, "vm-c", &secret, 0)
        .await
        .unwrap();
    for (seq, id, slot) in &vends {
        s.send(*seq, cash_vend(*id, *slot)).await;
    }
    s.wait_ack(20).await;
    app.kill();
    // Read the acks that were sent before the kill, until the stream fails or goes quiet
    // (a dead peer is not always noticed at once without keepalives).
    s.drain(Duration::from_secs(2)).await;
    let acked_before = s.acked;
    assert!(acked_before >= 20);
    eprintln!("killed with {acked_before} of 300 acked");
    drop(s);

    app.restart().await;
    let mut s = connect(&app.grpc_address, "vm-c", &secret, acked_before)
        .await
        .unwrap();
    assert!(
        s.welcome.acked_seq >= acked_before,
        "acked {acked_before} before the crash, the server has {} after",
        s.welcome.acked_seq
    );
    // The machine replays everything it had not seen acked.
    for (seq, id, slot) in vends.iter().filter(|v| v.0 > acked_before) {
        s.send(*seq, cash_vend(*id, *slot)).await;
    }
    s.wait_ack(300).await;
    let m = app.admin_get("/v1/machines/vm-c").await.expect(200).clone();
    assert_eq!(m["sales"]["units"], 300, "{}", m["sales"]);
    let levels: u64 = m["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_u64().unwrap())
        .sum();
    assert_eq!(levels, 6 * 60 - 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_resent_until_acked_and_done_updates_state() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_VENDING__COMMAND_RESEND_MS", 300)).await;
    let secret = register_machine(&app, "vm-k", 2, 5).await;
    let mut s = connect(&app.grpc_address, "vm-k", &secret, 0)
        .await
        .unwrap();

    let r = app
        .admin_post(
            "/v1/machines/vm-k/commands",
            Some(&json!({"type": "set_price", "slot": 1, "price_minor": 999})),
        )
        .await;
    let issued = r.expect(202).clone();
    assert_eq!(issued["status"], "sent");
    let id = issued["command_id"].as_str().unwrap().to_owned();
    let c = s.wait_command(|c| c.command_id == id).await;
    assert!(matches!(
        c.kind,
        Some(command::Kind::SetPrice(pb::SetPrice {
            slot: 1,
            price_minor: 999
        }))
    ));
    // Not acked: the same command comes again, with the same id.
    let deadline = Deadline::new(Duration::from_secs(10), "the command to be re-sent");
    while !s.commands.iter().any(|c| c.command_id == id) {
        assert!(!deadline.expired(), "no resend");
        s.next().await.unwrap().expect("stream open");
    }
    s.send(1, command_ack(&id, pb::command_ack::Status::Done))
        .await;
    s.wait_ack(1).await;
    let got = app
        .admin_get(&format!("/v1/machines/vm-k/commands/{id}"))
        .await;
    let got = got.expect(200);
    assert_eq!(got["status"], "done");
    assert!(got["attempts"].as_u64().unwrap() >= 2);
    let m = app.admin_get("/v1/machines/vm-k").await.expect(200).clone();
    assert_eq!(slot_of(&m, 1)["price_minor"], 999);
    assert_eq!(m["pending_commands"], json!([]));

    // The machine's journal is the audit trail: the command's events, no secret hash.
    let trail = app
        .admin_get("/v1/admin/entities/machine/vm-k/events")
        .await;
    let trail = trail.expect(200).to_string();
    assert!(
        trail.contains("CommandIssued") && trail.contains("SlotPriceSet"),
        "{trail}"
    );
    assert!(trail.contains("[redacted]") && !trail.contains(&secret_hash_of(&secret)));

    // Bad commands: unknown type, unknown slot, and shoppers may not send any.
    app.admin_post(
        "/v1/machines/vm-k/commands",
        Some(&json!({"type": "explode"})),
    )
    .await
    .expect_error(400, "validation");
    app.admin_post(
        "/v1/machines/vm-k/commands",
        Some(&json!({"type": "lock_slot", "slot": 42})),
    )
    .await
    .expect_error(404, "not_found");
    let shopper = app.shopper("cmd-shopper@example.com").await;
    app.post_as(
        Some(&shopper.access),
        "/v1/machines/vm-k/commands",
        Some(&json!({"type": "request_audit"})),
    )
    .await
    .expect_error(403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_sim_binary_registers_connects_sells_and_survives_drops() {
    let app = spawn_app(AppOpts::new()).await;
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_emporium"))
        .args(["vm-sim", "--gateway"])
        .arg(format!("http://{}", app.grpc_address))
        .arg("--http")
        .arg(&app.address)
        .args([
            "--machines",
            "3",
            "--sales-per-min",
            "600",
            "--flaky",
            "--flaky-mean-s",
            "1",
        ])
        .args(["--duration", "4s", "--id-prefix", "t"])
        .arg("--json")
        .arg(out.path())
        .env("EMPORIUM_ADMIN_TOKEN", ADMIN_TOKEN)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("vm-sim finished in time")
        .expect("vm-sim ran");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    assert!(
        summary["sessions_opened"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    assert_eq!(summary["auth_failures"], 0);
    let sold = summary["vends_ok"].as_u64().unwrap();
    assert!(sold > 0, "{summary}");
    let listed = app.admin_get("/v1/machines").await;
    let items = listed.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    // Sales the server counted are sales the machines made, never more (drops replay,
    // never double count); the last few may still have been in flight at the stop.
    let counted: u64 = items
        .iter()
        .map(|m| m["sales"]["units"].as_u64().unwrap())
        .sum();
    assert!(
        counted <= sold && counted > 0,
        "server {counted}, machines {sold}"
    );
}

fn secret_hash_of(secret: &str) -> String {
    emporium::grpc::gateway::secret_hash(secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_whose_stream_ended_is_offline_at_once_and_takes_no_purchase() {
    // 10 s heartbeats: the silence timer would take 30 s; the stream's end takes none.
    let app = spawn_app(roomy_opts().env("EMPORIUM_VENDING__HEARTBEAT_INTERVAL_S", 10)).await;
    let secret = register_machine(&app, "vm-gone", 1, 5).await;
    let mut s = connect(&app.grpc_address, "vm-gone", &secret, 0)
        .await
        .unwrap();
    s.send(1, heartbeat()).await;
    s.wait_ack(1).await;
    // A replaced session's end leaves the newer session online.
    let mut s2 = connect(&app.grpc_address, "vm-gone", &secret, 1)
        .await
        .unwrap();
    assert_eq!(s.ended().await.code(), tonic::Code::Aborted);
    s2.send(2, heartbeat()).await;
    s2.wait_ack(2).await;
    assert_eq!(
        app.admin_get("/v1/machines/vm-gone").await.expect(200)["online"],
        true
    );
    drop(s2);
    let dropped = Instant::now();
    wait_machine(&app, "vm-gone", "the machine to go offline", |m| {
        m["online"] == false
    })
    .await;
    assert!(
        dropped.elapsed() < Duration::from_secs(30),
        "offline only after {:?}: the silence timer, not the stream's end",
        dropped.elapsed()
    );
    let shopper = app.shopper("gone-buyer@example.com").await;
    purchase(&app, "vm-gone", 1, Some(&shopper.access))
        .await
        .expect_error(409, "machine_offline");
    let mine = app.get_as(&shopper.access, "/v1/me/orders").await;
    assert_eq!(mine.expect(200)["items"], json!([]), "no order, no charge");

    // The restock picklist: capacity minus level, for the slots short of it.
    let slots = json!({"slots": [
        {"slot": 1, "sku": "SKU-1", "price_minor": 101, "capacity": 8, "level": 3},
        {"slot": 2, "sku": "SKU-2", "price_minor": 102, "capacity": 4, "level": 4},
    ]});
    app.admin_put_json("/v1/machines/vm-gone/planogram", &slots)
        .await
        .expect(200);
    let pick = app.admin_get("/v1/machines/vm-gone/picklist").await;
    assert_eq!(
        pick.expect(200),
        &json!({"machine_id": "vm-gone", "total_units": 5, "lines": [
            {"slot": 1, "sku": "SKU-1", "capacity": 8, "level": 3, "to_load": 5}
        ]})
    );
}
