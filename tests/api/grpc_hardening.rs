//! Issue 14, point 4: the gRPC listener pays only for authenticated machines. Against the
//! real binary: caps on connections per IP, streams per connection, pending Hellos and
//! sessions (unauthenticated streams included); no actor for an unknown machine; TLS
//! (tonic client and `vm-sim --tls-ca`); a rotated secret ends the live session.

use emporium::grpc::pb::{self, machine_gateway_client::MachineGatewayClient, MachineMessage};
use serde_json::Value;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

use crate::domain::samples;
use crate::helpers::*;
use crate::machine_client::*;

async fn channel(grpc: &str) -> Channel {
    tokio::time::timeout(
        WAIT,
        Endpoint::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect(),
    )
    .await
    .expect("connect timed out")
    .expect("connect")
}

/// A stream that never sends anything: the call's result (it ends when the server ends
/// it), and the sender that keeps it open.
fn silent_stream(
    ch: Channel,
) -> (
    tokio::task::JoinHandle<Result<(), tonic::Status>>,
    mpsc::Sender<MachineMessage>,
) {
    let (tx, rx) = mpsc::channel::<MachineMessage>(1);
    let call = tokio::spawn(async move {
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut client = MachineGatewayClient::new(ch);
        let mut inbound = client.session(outbound).await?.into_inner();
        inbound.message().await?;
        Ok(())
    });
    (call, tx)
}

/// One gauge or counter sample, summed over labels matching `label` (`None`: all).
async fn metric(app: &TestApp, name: &str, label: Option<(&str, &str)>) -> f64 {
    let text = app.metrics_text().await;
    samples(&text, name)
        .into_iter()
        .filter(|(l, _)| label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v)))
        .map(|(_, v)| v)
        .sum()
}

/// Waits (bounded) until `name` reads `want`.
async fn wait_metric(app: &TestApp, name: &str, want: f64) {
    let deadline = Deadline::new(WAIT, format!("{name} to reach {want}"));
    while metric(app, name, None).await != want {
        deadline.tick(Duration::from_millis(20)).await;
    }
}

async fn ended_with(call: tokio::task::JoinHandle<Result<(), tonic::Status>>) -> Code {
    let r = tokio::time::timeout(WAIT, call)
        .await
        .expect("the silent stream ended in time")
        .expect("the task ran");
    r.expect_err("the server ended the silent stream").code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_hellos_and_unauthenticated_streams_are_bounded() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_GRPC__MAX_PENDING_HELLOS", 2)
            .env("EMPORIUM_GRPC__MAX_SESSIONS", 3)
            .env("EMPORIUM_GRPC__HELLO_TIMEOUT_MS", 1500),
    )
    .await;
    let secret = register_machine(&app, "vm-p1", 1, 5).await;
    let secret2 = register_machine(&app, "vm-p2", 1, 5).await;

    // Two streams that never say Hello hold both pending slots.
    let (a, _ka) = silent_stream(channel(&app.grpc_address).await);
    let (b, _kb) = silent_stream(channel(&app.grpc_address).await);
    wait_metric(&app, "emporium_grpc_streams", 2.0).await;
    let refused = connect(&app.grpc_address, "vm-p1", &secret, 0)
        .await
        .err()
        .expect("no pending slot is free");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // The Hello deadline ends them, and their slots come back.
    assert_eq!(ended_with(a).await, Code::Unauthenticated);
    assert_eq!(ended_with(b).await, Code::Unauthenticated);
    wait_metric(&app, "emporium_grpc_streams", 0.0).await;

    // max_sessions counts streams that have not authenticated.
    let mut one = connect(&app.grpc_address, "vm-p1", &secret, 0)
        .await
        .expect("a free node admits the machine");
    let (c, _kc) = silent_stream(channel(&app.grpc_address).await);
    let (d, _kd) = silent_stream(channel(&app.grpc_address).await);
    wait_metric(&app, "emporium_grpc_streams", 3.0).await;
    let refused = connect(&app.grpc_address, "vm-p2", &secret2, 0)
        .await
        .err()
        .expect("the node is full of streams");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("sessions"),
        "refused by max_sessions: {refused:?}"
    );
    assert!(
        metric(
            &app,
            "emporium_grpc_refused_total",
            Some(("reason", "max_sessions"))
        )
        .await
            >= 1.0
    );
    assert_eq!(ended_with(c).await, Code::Unauthenticated);
    assert_eq!(ended_with(d).await, Code::Unauthenticated);
    // The authenticated session was untouched throughout.
    one.send(1, heartbeat()).await;
    one.wait_ack(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_machine_is_refused_without_activating_an_actor() {
    let app = spawn_app(AppOpts::new()).await;
    assert_eq!(app.active_actors("machine").await, 0.0);
    for id in ["ghost-1", "ghost-2", "ghost-3"] {
        let refused = connect(&app.grpc_address, id, "whatever", 0)
            .await
            .err()
            .expect("an unknown machine is refused");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    assert_eq!(
        app.active_actors("machine").await,
        0.0,
        "no machine actor was started for an unknown id"
    );
    // A registered machine still connects (so the check is not refusing everything).
    let secret = register_machine(&app, "vm-real", 1, 5).await;
    connect(&app.grpc_address, "vm-real", &secret, 0)
        .await
        .expect("a registered machine connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_holds_at_most_its_stream_cap() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_GRPC__MAX_STREAMS_PER_CONNECTION", 1)
            .env("EMPORIUM_GRPC__HELLO_TIMEOUT_MS", 1500),
    )
    .await;
    let secret = register_machine(&app, "vm-s1", 1, 5).await;
    let ch = channel(&app.grpc_address).await;
    let (silent, _keep) = silent_stream(ch.clone());
    wait_metric(&app, "emporium_grpc_streams", 1.0).await;
    // A second stream on the same connection waits for the first to end.
    let (tx, rx) = mpsc::channel::<MachineMessage>(4);
    tx.send(hello("vm-s1", &secret, 0)).await.unwrap();
    let second = tokio::spawn(async move {
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut client = MachineGatewayClient::new(ch);
        let mut inbound = client.session(outbound).await?.into_inner();
        inbound.message().await
    });
    assert_eq!(ended_with(silent).await, Code::Unauthenticated);
    let welcome = tokio::time::timeout(WAIT, second)
        .await
        .expect("the second stream ran once the first ended")
        .unwrap()
        .expect("the second stream was welcomed")
        .expect("a message");
    assert!(
        matches!(welcome.body, Some(pb::server_message::Body::Welcome(_))),
        "{welcome:?}"
    );
    assert!(
        metric(
            &app,
            "emporium_grpc_refused_total",
            Some(("reason", "first_byte_timeout"))
        )
        .await
            == 0.0,
        "the connection was not cut"
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_ip_cap_are_closed_and_silent_ones_time_out() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_GRPC__MAX_CONNECTIONS_PER_IP", 2)
            .env("EMPORIUM_GRPC__HELLO_TIMEOUT_MS", 1500),
    )
    .await;
    let secret = register_machine(&app, "vm-c1", 1, 5).await;
    let addr = app.grpc_address.clone();
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    wait_metric(&app, "emporium_grpc_connections", 2.0).await;
    // The third from this address is closed at accept: EOF, no HTTP/2 settings.
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, third.read(&mut buf))
        .await
        .expect("the refused connection was closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert_eq!(
        metric(
            &app,
            "emporium_grpc_refused_total",
            Some(("reason", "per_ip"))
        )
        .await,
        1.0
    );
    // The silent two are closed after the first-byte deadline.
    for mut s in silent {
        let mut all = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut all))
            .await
            .expect("a silent connection was closed in time")
            .ok();
    }
    wait_metric(&app, "emporium_grpc_connections", 0.0).await;
    assert!(
        metric(
            &app,
            "emporium_grpc_refused_total",
            Some(("reason", "first_byte_timeout"))
        )
        .await
            >= 2.0
    );
    // And then a machine connects from the same address.
    connect(&app.grpc_address, "vm-c1", &secret, 0)
        .await
        .expect("the slots came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_secret_ends_the_live_session_and_refuses_the_old_secret() {
    let app = spawn_app(AppOpts::new()).await;
    let old = register_machine(&app, "vm-r1", 1, 5).await;
    let mut session = connect(&app.grpc_address, "vm-r1", &old, 0)
        .await
        .expect("connects");
    session.send(1, heartbeat()).await;
    session.wait_ack(1).await;

    let rotated = app.admin_post("/v1/machines/vm-r1/secret", None).await;
    let new = rotated.expect(200)["secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    assert_ne!(new, old);
    // The live session ends UNAUTHENTICATED, without anything else first.
    let end = loop {
        match session.next().await {
            Ok(Some(m)) => assert!(
                !matches!(m.body, Some(pb::server_message::Body::Ack(ref a)) if a.up_to_seq > 1),
                "nothing new is acked after the rotation: {m:?}"
            ),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::Unauthenticated, "{end:?}");

    let refused = connect(&app.grpc_address, "vm-r1", &old, 1)
        .await
        .err()
        .expect("the old secret is refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut again = connect(&app.grpc_address, "vm-r1", &new, 1)
        .await
        .expect("the new secret connects");
    again.send(2, heartbeat()).await;
    again.wait_ack(2).await;
    assert!(
        metric(&app, "emporium_grpc_sessions_revoked_total", None).await >= 1.0,
        "the session was revoked by the rotation"
    );
}

struct Pem {
    dir: tempfile::TempDir,
    cert: String,
}

fn self_signed() -> Pem {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = ck.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    Pem { dir, cert }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_the_grpc_listener_for_tonic_clients_and_vm_sim() {
    let pem = self_signed();
    let app = spawn_app(
        AppOpts::new()
            .env(
                "EMPORIUM_GRPC__TLS__CERT_PATH",
                pem.dir.path().join("cert.pem").display(),
            )
            .env(
                "EMPORIUM_GRPC__TLS__KEY_PATH",
                pem.dir.path().join("key.pem").display(),
            ),
    )
    .await;
    let secret = register_machine(&app, "vm-t1", 1, 5).await;

    // A TLS client that trusts the certificate gets a session.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pem.cert))
        .domain_name("localhost");
    let ch = tokio::time::timeout(
        WAIT,
        Endpoint::from_shared(format!("https://{}", app.grpc_address))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect(),
    )
    .await
    .expect("TLS connect in time")
    .expect("TLS connect");
    let (tx, rx) = mpsc::channel::<MachineMessage>(4);
    tx.send(hello("vm-t1", &secret, 0)).await.unwrap();
    let outbound =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut inbound = tokio::time::timeout(WAIT, MachineGatewayClient::new(ch).session(outbound))
        .await
        .expect("session in time")
        .expect("session over TLS")
        .into_inner();
    let first = tokio::time::timeout(WAIT, inbound.message())
        .await
        .expect("Welcome in time")
        .expect("Welcome")
        .expect("a message");
    assert!(
        matches!(first.body, Some(pb::server_message::Body::Welcome(_))),
        "{first:?}"
    );
    drop(tx);
    drop(inbound);

    // A clear-text client gets nothing from the TLS port.
    let plain = tokio::time::timeout(
        WAIT,
        MachineGatewayClient::connect(format!("http://{}", app.grpc_address)),
    )
    .await
    .expect("the plain attempt ended in time");
    if let Ok(mut c) = plain {
        let (_t, r) = mpsc::channel::<MachineMessage>(1);
        let outbound =
            futures::stream::unfold(r, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let r = tokio::time::timeout(WAIT, c.session(outbound))
            .await
            .expect("the plain call ended in time");
        assert!(r.is_err(), "clear text is not served on a TLS port");
    }

    // vm-sim dials it with --tls-ca.
    let machines = pem.dir.path().join("machines.csv");
    std::fs::write(&machines, format!("vm-t1,{secret}\n")).unwrap();
    let out = pem.dir.path().join("sim.json");
    let port = app.grpc_address.rsplit(':').next().unwrap().to_owned();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_emporium"))
        .args(["vm-sim", "--gateway"])
        .arg(format!("https://127.0.0.1:{port}"))
        .arg("--tls-ca")
        .arg(pem.dir.path().join("cert.pem"))
        .arg("--machines-file")
        .arg(&machines)
        .args(["--machines", "1", "--sales-per-min", "600"])
        .args(["--duration", "3s", "--heartbeat-ms", "200"])
        .arg("--json")
        .arg(&out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("vm-sim finished in time")
        .expect("vm-sim ran");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        summary["sessions_opened"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert_eq!(summary["auth_failures"], 0, "{summary}");
}
