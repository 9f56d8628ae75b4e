//! A scripted vending machine for tests: a real tonic client of `MachineGateway.Session`
//! whose every message is chosen by the test, and helpers to register machines over HTTP.

use emporium::grpc::pb::{
    self, machine_gateway_client::MachineGatewayClient, machine_message::Body, server_message,
    MachineMessage, ServerMessage,
};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::helpers::*;

/// How long any single wait on the stream may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// Registers `id` with a planogram of `slots` (slot n: sku `SKU-n`, price 100+n, capacity
/// and level `level`) and returns its secret.
pub async fn register_machine(app: &TestApp, id: &str, slots: u32, level: u32) -> String {
    let r = app
        .admin_put_json(
            &format!("/v1/machines/{id}"),
            &json!({"name": format!("Machine {id}"), "location": "Lobby"}),
        )
        .await;
    let secret = r.expect(201)["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let planogram: Vec<Value> = (1..=slots)
        .map(|n| json!({"slot": n, "sku": format!("SKU-{n}"), "price_minor": 100 + n, "capacity": level, "level": level}))
        .collect();
    app.admin_put_json(
        &format!("/v1/machines/{id}/planogram"),
        &json!({ "slots": planogram }),
    )
    .await
    .expect(200);
    secret
}

/// One session of a scripted machine.
pub struct Session {
    tx: mpsc::Sender<MachineMessage>,
    inbound: Streaming<ServerMessage>,
    pub welcome: pb::Welcome,
    /// The highest `Ack.up_to_seq` seen.
    pub acked: u64,
    /// Commands received, in order.
    pub commands: Vec<pb::Command>,
}

/// The `Hello` that opens a session (shared by every gRPC test).
pub fn hello(id: &str, secret: &str, last_acked_seq: u64) -> MachineMessage {
    MachineMessage {
        seq: 0,
        at_unix_ms: 0,
        body: Some(Body::Hello(pb::Hello {
            machine_id: id.into(),
            secret: secret.into(),
            firmware: "test-1.0".into(),
            planogram_version: 0,
            last_acked_seq,
        })),
    }
}

/// Opens a session; the status if the server refuses it.
pub async fn connect(
    grpc: &str,
    id: &str,
    secret: &str,
    last_acked_seq: u64,
) -> Result<Session, Status> {
    let mut client = tokio::time::timeout(
        WAIT,
        MachineGatewayClient::connect(format!("http://{grpc}")),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    let (tx, rx) = mpsc::channel(512);
    tx.send(hello(id, secret, last_acked_seq)).await.unwrap();
    let outbound =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut inbound = tokio::time::timeout(WAIT, client.session(outbound))
        .await
        .expect("session call timed out")?
        .into_inner();
    let first = tokio::time::timeout(WAIT, inbound.message())
        .await
        .expect("Welcome timed out")?
        .expect("stream ended before Welcome");
    let Some(server_message::Body::Welcome(welcome)) = first.body else {
        panic!("the first server message is not Welcome: {first:?}");
    };
    // The Welcome's seq is what the server holds durably: an ack in itself.
    Ok(Session {
        tx,
        inbound,
        acked: welcome.acked_seq,
        welcome,
        commands: vec![],
    })
}

pub fn heartbeat() -> Body {
    Body::Heartbeat(pb::Heartbeat {
        state: pb::heartbeat::State::Idle as i32,
        temperature_c: 4.5,
        door_open: false,
    })
}

pub fn cash_vend(vend_id: uuid::Uuid, slot: u32) -> Body {
    Body::Vend(pb::VendEvent {
        vend_id: vend_id.to_string(),
        slot,
        sku: format!("SKU-{slot}"),
        price_minor: 100 + i64::from(slot),
        payment_method: pb::vend_event::PaymentMethod::Cash as i32,
        order_id: None,
        result: pb::vend_event::Result::Success as i32,
        failure_reason: None,
    })
}

pub fn app_vend(order_id: &str, slot: u32, success: bool) -> Body {
    Body::Vend(pb::VendEvent {
        vend_id: uuid::Uuid::new_v4().to_string(),
        slot,
        sku: format!("SKU-{slot}"),
        price_minor: 100 + i64::from(slot),
        payment_method: pb::vend_event::PaymentMethod::App as i32,
        order_id: Some(order_id.into()),
        result: if success {
            pb::vend_event::Result::Success as i32
        } else {
            pb::vend_event::Result::Failure as i32
        },
        failure_reason: (!success).then(|| "motor_jam".into()),
    })
}

pub fn command_ack(command_id: &str, status: pb::command_ack::Status) -> Body {
    Body::CommandAck(pb::CommandAck {
        command_id: command_id.into(),
        status: status as i32,
        detail: String::new(),
    })
}

impl Session {
    /// Sends a message with this seq (no wait for its ack).
    pub async fn send(&self, seq: u64, body: Body) {
        let m = MachineMessage {
            seq,
            at_unix_ms: 0,
            body: Some(body),
        };
        tokio::time::timeout(WAIT, self.tx.send(m))
            .await
            .expect("send timed out")
            .expect("the session's outbound stream is closed");
    }

    /// The next server message; `Err` is the status the server ended the stream with.
    pub async fn next(&mut self) -> Result<Option<ServerMessage>, Status> {
        let m = tokio::time::timeout(WAIT, self.inbound.message())
            .await
            .expect("no server message in time")?;
        if let Some(ServerMessage {
            body: Some(server_message::Body::Ack(a)),
        }) = &m
        {
            self.acked = self.acked.max(a.up_to_seq);
        }
        if let Some(ServerMessage {
            body: Some(server_message::Body::Command(c)),
        }) = &m
        {
            self.commands.push(c.clone());
        }
        Ok(m)
    }

    /// Reads whatever arrives until the stream ends, fails, or is quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Ok(Some(m))) = tokio::time::timeout(quiet, self.inbound.message()).await {
            if let Some(server_message::Body::Ack(a)) = &m.body {
                self.acked = self.acked.max(a.up_to_seq);
            }
        }
    }

    /// Reads until an ack covers `seq`.
    pub async fn wait_ack(&mut self, seq: u64) {
        while self.acked < seq {
            self.next()
                .await
                .expect("stream error while waiting for an ack")
                .expect("stream ended while waiting for an ack");
        }
    }

    /// Takes the first received command matching `pick`, reading until one arrives.
    pub async fn wait_command(&mut self, pick: impl Fn(&pb::Command) -> bool) -> pb::Command {
        loop {
            if let Some(i) = self.commands.iter().position(&pick) {
                return self.commands.remove(i);
            }
            self.next()
                .await
                .expect("stream error while waiting for a command")
                .expect("stream ended while waiting for a command");
        }
    }

    /// Reads until the server ends the stream, and returns its status.
    pub async fn ended(&mut self) -> Status {
        loop {
            match self.next().await {
                Err(status) => return status,
                Ok(None) => return Status::ok(""),
                Ok(Some(_)) => {}
            }
        }
    }
}

/// Polls the operator view of a machine until `done` holds.
pub async fn wait_machine(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Deadline::new(Duration::from_secs(20), what.to_owned());
    loop {
        let r = app.admin_get(&format!("/v1/machines/{id}")).await;
        let v = r.expect(200).clone();
        if done(&v) {
            return v;
        }
        if deadline.expired() {
            panic!("timed out waiting for {what}; the machine is {v}");
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

/// Polls an order (as the operator) until `done` holds.
pub async fn wait_order(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Deadline::new(Duration::from_secs(20), what.to_owned());
    loop {
        let r = app.admin_get(&format!("/v1/orders/{id}")).await;
        let v = r.expect(200).clone();
        if done(&v) {
            return v;
        }
        if deadline.expired() {
            panic!(
                "timed out waiting for {what}; the order is {v}\n{}",
                app.logs()
            );
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}
