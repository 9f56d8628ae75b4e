//! One simulated machine: its slots, seq journal and command book, and the session loop
//! that connects, says Hello, replays what is unacked after the Welcome, heartbeats, sells
//! at random, answers commands, and reconnects with jittered backoff after any failure.

use super::journal::{CommandBook, SeqJournal};
use super::stats::Stats;
use crate::grpc::pb::{
    self, command::Kind, machine_gateway_client::MachineGatewayClient, machine_message::Body,
    server_message, MachineMessage,
};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Code;

/// How a simulated machine behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub gateway: String,
    pub sales_per_min: f64,
    pub fail_rate: f64,
    /// Mean seconds between injected connection drops; `None` never drops.
    pub flaky_mean_s: Option<f64>,
    /// Overrides the Welcome's heartbeat interval.
    pub heartbeat: Option<Duration>,
    /// TLS to the gateway (`--tls-ca`); `None` dials clear text.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

/// A slot as the machine knows it.
#[derive(Debug, Clone)]
pub struct SimSlot {
    pub sku: String,
    pub price_minor: i64,
    pub level: u32,
    pub locked: bool,
}

/// Wall-clock milliseconds, as a machine stamps its messages.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The slots a cash sale may come from: stocked and not locked.
pub fn sellable(slots: &BTreeMap<u32, SimSlot>) -> Vec<u32> {
    slots
        .iter()
        .filter(|(_, s)| s.level > 0 && !s.locked)
        .map(|(n, _)| *n)
        .collect()
}

/// A session's first message: `Hello` at seq 0, with the seq the machine holds as acked.
pub fn hello(id: &str, secret: &str, firmware: &str, last_acked_seq: u64) -> MachineMessage {
    MachineMessage {
        seq: 0,
        at_unix_ms: now_ms(),
        body: Some(Body::Hello(pb::Hello {
            machine_id: id.to_owned(),
            secret: secret.to_owned(),
            firmware: firmware.into(),
            planogram_version: 0,
            last_acked_seq,
        })),
    }
}

/// A stream error's kind for the summary: its gRPC code, with the message's start for
/// `Unknown` (transport failures all arrive as `Unknown`).
fn error_kind(s: &tonic::Status) -> String {
    if s.code() == Code::Unknown {
        let m: String = s.message().chars().take(60).collect();
        format!("Unknown: {m}")
    } else {
        format!("{:?}", s.code())
    }
}

/// The answer to a command: maybe a vend to report, and the ack status. Pure.
pub fn answer(
    kind: &Kind,
    slots: &mut BTreeMap<u32, SimSlot>,
    now_ms: i64,
    fail: bool,
) -> (Option<pb::VendEvent>, pb::command_ack::Status, String) {
    use pb::command_ack::Status;
    match kind {
        Kind::SetPrice(p) => match slots.get_mut(&p.slot) {
            Some(s) => {
                s.price_minor = p.price_minor;
                (None, Status::Done, String::new())
            }
            None => (None, Status::Rejected, "unknown_slot".into()),
        },
        Kind::LockSlot(l) => match slots.get_mut(&l.slot) {
            Some(s) => {
                s.locked = true;
                (None, Status::Done, String::new())
            }
            None => (None, Status::Rejected, "unknown_slot".into()),
        },
        Kind::UnlockSlot(u) => match slots.get_mut(&u.slot) {
            Some(s) => {
                s.locked = false;
                (None, Status::Done, String::new())
            }
            None => (None, Status::Rejected, "unknown_slot".into()),
        },
        Kind::RequestAudit(_) => (None, Status::Done, "audit sent".into()),
        Kind::Dispense(d) => {
            if now_ms > d.deadline_unix_ms {
                return (None, Status::Rejected, "deadline_passed".into());
            }
            let Some(s) = slots.get_mut(&d.slot) else {
                return (None, Status::Rejected, "unknown_slot".into());
            };
            let success = !fail && s.level > 0 && !s.locked;
            if success {
                s.level -= 1;
            }
            let vend = pb::VendEvent {
                vend_id: uuid::Uuid::new_v4().to_string(),
                slot: d.slot,
                sku: s.sku.clone(),
                price_minor: s.price_minor,
                payment_method: pb::vend_event::PaymentMethod::App as i32,
                order_id: Some(d.order_id.clone()),
                result: if success {
                    pb::vend_event::Result::Success as i32
                } else {
                    pb::vend_event::Result::Failure as i32
                },
                failure_reason: (!success).then(|| "motor_jam".to_owned()),
            };
            let status = if success {
                Status::Done
            } else {
                Status::Rejected
            };
            (Some(vend), status, String::new())
        }
    }
}

/// One simulated machine.
pub struct SimMachine {
    pub id: String,
    pub secret: String,
    pub slots: BTreeMap<u32, SimSlot>,
    journal: SeqJournal,
    book: CommandBook,
}

/// Why a session ended.
enum End {
    /// Reconnect after a backoff; why the session ended (`None`: a drop we injected).
    Retry(Option<String>),
    /// The server refused the secret: stop this machine.
    Unauthenticated,
}

impl SimMachine {
    pub fn new(id: String, secret: String, slots: BTreeMap<u32, SimSlot>) -> Self {
        Self {
            id,
            secret,
            slots,
            journal: SeqJournal::default(),
            book: CommandBook::default(),
        }
    }

    /// Runs sessions until `stop` fires; reconnects with jittered exponential backoff.
    pub async fn run(
        mut self,
        b: Behaviour,
        stats: Arc<Stats>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                return;
            }
            let end = tokio::select! {
                e = self.session(&b, &stats) => e,
                _ = stop.changed() => return,
            };
            match end {
                End::Unauthenticated => {
                    stats.auth_failures.inc();
                    tracing::error!(machine = %self.id, "the gateway refused this machine's secret; stopping it");
                    return;
                }
                End::Retry(why) => {
                    // Failures while stopping are the stop itself, not the gateway's.
                    if *stop.borrow() {
                        return;
                    }
                    if let Some(kind) = why {
                        stats.errors.record(&kind);
                    }
                    stats.reconnects.inc();
                    let jitter = rand::rng().random_range(0.5..1.5);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {},
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn session(&mut self, b: &Behaviour, stats: &Stats) -> End {
        let endpoint = match tonic::transport::Endpoint::from_shared(b.gateway.clone()) {
            Ok(e) => e
                .connect_timeout(Duration::from_secs(5))
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_timeout(Duration::from_secs(10)),
            Err(_) => return End::Unauthenticated,
        };
        let endpoint = match &b.tls {
            None => endpoint,
            Some(tls) => match endpoint.tls_config(tls.clone()) {
                Ok(e) => e,
                Err(_) => return End::Retry(Some("tls_config".into())),
            },
        };
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(_) => return End::Retry(Some("connect".into())),
        };
        let mut client = MachineGatewayClient::new(channel);
        let (tx, rx) = mpsc::channel::<MachineMessage>(1024);
        let hello = hello(&self.id, &self.secret, "vm-sim/1", self.journal.acked());
        if tx.send(hello).await.is_err() {
            return End::Retry(Some("send".into()));
        }
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let call = tokio::time::timeout(Duration::from_secs(10), client.session(outbound)).await;
        let mut inbound = match call {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(s)) if s.code() == Code::Unauthenticated => return End::Unauthenticated,
            Ok(Err(s)) => return End::Retry(Some(error_kind(&s))),
            Err(_) => return End::Retry(Some("hello_timeout".into())),
        };
        let welcome = match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
            Ok(Ok(Some(pb::ServerMessage {
                body: Some(server_message::Body::Welcome(w)),
            }))) => w,
            Ok(Err(s)) if s.code() == Code::Unauthenticated => return End::Unauthenticated,
            _ => return End::Retry(Some("no_welcome".into())),
        };
        stats.sessions.inc();
        stats.online.add(1);
        let end = self.connected(b, stats, welcome, tx, inbound).await;
        stats.online.add(-1);
        end
    }

    async fn connected(
        &mut self,
        b: &Behaviour,
        stats: &Stats,
        welcome: pb::Welcome,
        tx: mpsc::Sender<MachineMessage>,
        mut inbound: tonic::Streaming<pb::ServerMessage>,
    ) -> End {
        self.journal.ack(welcome.acked_seq);
        for m in self.journal.unacked() {
            if tx.send(m.clone()).await.is_err() {
                return End::Retry(Some("send".into()));
            }
            stats.sent.inc();
            stats.replayed.inc();
        }
        let hb = b.heartbeat.unwrap_or(Duration::from_secs(u64::from(
            welcome.heartbeat_interval_s.max(1),
        )));
        let mut heartbeat = tokio::time::interval(hb);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let next_sale = |rate: f64| -> Duration {
            if rate <= 0.0 {
                return Duration::from_secs(86_400);
            }
            // Exponential inter-arrival times: a Poisson process of `rate` sales per minute.
            let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
            Duration::from_secs_f64(-u.ln() * 60.0 / rate)
        };
        let sale = tokio::time::sleep(next_sale(b.sales_per_min));
        tokio::pin!(sale);
        let drop_after = b.flaky_mean_s.map(|mean| {
            let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
            Duration::from_secs_f64(-u.ln() * mean)
        });
        let flaky = tokio::time::sleep(drop_after.unwrap_or(Duration::from_secs(86_400 * 365)));
        tokio::pin!(flaky);
        loop {
            let out: Vec<Body> = tokio::select! {
                _ = heartbeat.tick() => vec![Body::Heartbeat(pb::Heartbeat {
                    state: pb::heartbeat::State::Idle as i32,
                    temperature_c: 4.0 + rand::rng().random_range(-0.5..0.5),
                    door_open: false,
                })],
                () = &mut sale => {
                    sale.as_mut().reset(tokio::time::Instant::now() + next_sale(b.sales_per_min));
                    self.sale(b, stats).into_iter().collect()
                }
                () = &mut flaky, if drop_after.is_some() => {
                    stats.injected_drops.inc();
                    return End::Retry(None);
                }
                m = inbound.message() => match m {
                    Ok(Some(m)) => self.on_server(m, stats, b),
                    Ok(None) => return End::Retry(Some("stream_ended".into())),
                    Err(s) => return End::Retry(Some(error_kind(&s))),
                },
            };
            for body in out {
                let m = self.journal.push(body, now_ms());
                stats.max_unacked.max(self.journal.len() as u64);
                if tx.send(m).await.is_err() {
                    return End::Retry(Some("send".into()));
                }
                stats.sent.inc();
            }
        }
    }

    /// A random cash or cashless sale from a slot with stock, or nothing.
    fn sale(&mut self, b: &Behaviour, stats: &Stats) -> Option<Body> {
        if self.journal.is_full() {
            return None;
        }
        let mut rng = rand::rng();
        let stocked = sellable(&self.slots);
        if stocked.is_empty() {
            return None;
        }
        let n = stocked[rng.random_range(0..stocked.len())];
        let s = self.slots.get_mut(&n)?;
        let success = rng.random::<f64>() >= b.fail_rate;
        if success {
            s.level -= 1;
            stats.vends_ok.inc();
        } else {
            stats.vends_failed.inc();
        }
        let method = if rng.random::<bool>() {
            pb::vend_event::PaymentMethod::Cash
        } else {
            pb::vend_event::PaymentMethod::Cashless
        };
        Some(Body::Vend(pb::VendEvent {
            vend_id: uuid::Uuid::new_v4().to_string(),
            slot: n,
            sku: s.sku.clone(),
            price_minor: s.price_minor,
            payment_method: method as i32,
            order_id: None,
            result: if success {
                pb::vend_event::Result::Success as i32
            } else {
                pb::vend_event::Result::Failure as i32
            },
            failure_reason: (!success).then(|| "motor_jam".to_owned()),
        }))
    }

    /// Handles a server message; returns what to send, in order (a dispense's vend
    /// before the command's ack).
    fn on_server(&mut self, m: pb::ServerMessage, stats: &Stats, b: &Behaviour) -> Vec<Body> {
        let Some(body) = m.body else {
            return vec![];
        };
        match body {
            server_message::Body::Ack(a) => {
                self.journal.ack(a.up_to_seq);
                stats.acked.set_max(a.up_to_seq);
                stats.acks.inc();
                vec![]
            }
            server_message::Body::Welcome(_) => vec![],
            server_message::Body::Command(c) => {
                stats.commands.inc();
                let mut out = vec![];
                let (status, detail) = match self.book.answered(&c.command_id) {
                    Some(s) => (s, "repeated".to_owned()),
                    None => {
                        let Some(kind) = c.kind.as_ref() else {
                            return vec![];
                        };
                        let fail = rand::rng().random::<f64>() < b.fail_rate;
                        let (vend, status, detail) = answer(kind, &mut self.slots, now_ms(), fail);
                        if let Some(v) = vend {
                            stats.dispenses.inc();
                            out.push(Body::Vend(v));
                        }
                        self.book.record(&c.command_id, status);
                        (status, detail)
                    }
                };
                out.push(Body::CommandAck(pb::CommandAck {
                    command_id: c.command_id,
                    status: status as i32,
                    detail,
                }));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> BTreeMap<u32, SimSlot> {
        BTreeMap::from([(
            1,
            SimSlot {
                sku: "COLA".into(),
                price_minor: 150,
                level: 1,
                locked: false,
            },
        )])
    }

    fn dispense(deadline: i64) -> Kind {
        Kind::Dispense(pb::Dispense {
            order_id: "o1".into(),
            slot: 1,
            deadline_unix_ms: deadline,
        })
    }

    #[test]
    fn dispense_vends_before_the_deadline_and_refuses_after() {
        use pb::command_ack::Status;
        let mut s = slots();
        let (vend, status, detail) = answer(&dispense(100), &mut s, 200, false);
        assert!(vend.is_none());
        assert_eq!(
            (status, detail.as_str()),
            (Status::Rejected, "deadline_passed")
        );
        assert_eq!(s[&1].level, 1);
        let (vend, status, _) = answer(&dispense(300), &mut s, 200, false);
        let vend = vend.expect("a vend");
        assert_eq!(vend.order_id.as_deref(), Some("o1"));
        assert_eq!(vend.result(), pb::vend_event::Result::Success);
        assert_eq!(status, Status::Done);
        assert_eq!(s[&1].level, 0);
        // Empty slot: the vend fails and is reported as such.
        let (vend, status, _) = answer(&dispense(300), &mut s, 200, false);
        assert_eq!(vend.unwrap().result(), pb::vend_event::Result::Failure);
        assert_eq!(status, Status::Rejected);
    }

    #[test]
    fn set_price_and_locks_apply_locally() {
        use pb::command_ack::Status;
        let mut s = slots();
        let set = Kind::SetPrice(pb::SetPrice {
            slot: 1,
            price_minor: 99,
        });
        assert_eq!(answer(&set, &mut s, 0, false).1, Status::Done);
        assert_eq!(s[&1].price_minor, 99);
        let lock = Kind::LockSlot(pb::LockSlot {
            slot: 1,
            reason: "x".into(),
        });
        answer(&lock, &mut s, 0, false);
        assert!(s[&1].locked);
        let bad = Kind::UnlockSlot(pb::UnlockSlot { slot: 9 });
        assert_eq!(answer(&bad, &mut s, 0, false).1, Status::Rejected);
    }
}
