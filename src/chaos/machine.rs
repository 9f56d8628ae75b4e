//! The simulated vending machine of a chaos run: a real gRPC session (Hello with the
//! secret, Welcome, cumulative Acks) built from the simulator's pure parts (its seq
//! journal, command book and command answers). It sells at random and dispenses app
//! purchases, and writes each vend to the ledger once an `Ack` (or a `Welcome.acked_seq`)
//! covers its seq. It reconnects through server restarts and replays what is unacked;
//! when told to finish it stops selling and waits (bounded) for the last acks, and what
//! is still unacked then goes to the ledger as unknown.

use super::ledger::{Ledger, Record};
use super::Counters;
use crate::grpc::pb::{
    self, machine_gateway_client::MachineGatewayClient, machine_message::Body, server_message,
    MachineMessage,
};
use crate::sim::journal::{CommandBook, SeqJournal};
use crate::sim::machine::{answer, hello, now_ms, sellable, SimSlot};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// What the machine should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sell and dispense.
    Run,
    /// Dispense only (the load is winding down).
    Drain,
    /// Get the last acks, then stop, at the latest at the deadline.
    Finish(Instant),
}

/// Fraction of vends that fail (motor jam).
const FAIL_RATE: f64 = 0.1;
/// The gap between cash sales: uniformly 100..=this ms.
const MAX_SALE_GAP_MS: u64 = 400;
/// Heartbeat at least this often, whatever the Welcome says.
const MAX_HEARTBEAT: Duration = Duration::from_secs(1);
/// Deadline of connecting, of the session call and of the Welcome.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// A vend sent and not yet acknowledged.
#[derive(Debug, Clone)]
struct PendingVend {
    vend_id: Uuid,
    slot: u32,
    success: bool,
    order: Option<Uuid>,
}

pub struct ChaosMachine {
    pub id: String,
    pub secret: String,
    pub gateway: String,
    pub slots: BTreeMap<u32, SimSlot>,
    journal: SeqJournal,
    book: CommandBook,
    pending: BTreeMap<u64, PendingVend>,
    ledger: Arc<Ledger>,
    counters: Arc<Counters>,
    rng: StdRng,
}

/// How a session ended.
enum End {
    /// Finished: every vend acknowledged, or the finish deadline passed.
    Done,
    /// The stream failed; reconnect.
    Retry,
}

impl ChaosMachine {
    pub fn new(
        id: String,
        secret: String,
        gateway: String,
        slots: BTreeMap<u32, SimSlot>,
        ledger: Arc<Ledger>,
        counters: Arc<Counters>,
        seed: u64,
    ) -> Self {
        Self {
            id,
            secret,
            gateway,
            slots,
            journal: SeqJournal::default(),
            book: CommandBook::default(),
            pending: BTreeMap::new(),
            ledger,
            counters,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn record(&self, r: Record) {
        self.counters.note(&r);
        if let Err(e) = self.ledger.append(&r) {
            eprintln!("chaos load: cannot write the ledger: {e}");
            std::process::exit(2);
        }
    }

    /// Everything up to `seq` is durable at the server: its vends are acknowledged.
    fn acked(&mut self, seq: u64) {
        self.journal.ack(seq);
        let later = self.pending.split_off(&(seq + 1));
        let done = std::mem::replace(&mut self.pending, later);
        for v in done.into_values() {
            self.record(Record::Vend {
                vend_id: v.vend_id,
                slot: v.slot,
                success: v.success,
                order: v.order,
                ack: true,
            });
        }
    }

    fn finished(&self, phase: Phase) -> bool {
        match phase {
            Phase::Finish(deadline) => self.pending.is_empty() || Instant::now() >= deadline,
            _ => false,
        }
    }

    /// Runs sessions until finished; unacknowledged vends then go to the ledger as unknown.
    pub async fn run(mut self, mut phase: watch::Receiver<Phase>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let now = *phase.borrow();
            if self.finished(now) {
                break;
            }
            if let Phase::Finish(deadline) = now {
                // No session to finish on: nothing more can be acked after the deadline.
                if Instant::now() >= deadline {
                    break;
                }
            }
            match self.session(&mut phase).await {
                End::Done => break,
                End::Retry => {
                    self.counters
                        .reconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let wait = backoff.mul_f64(self.rng.random_range(0.5..1.5));
                    let _ = tokio::time::timeout(wait, phase.changed()).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
        for v in std::mem::take(&mut self.pending).into_values() {
            self.record(Record::Vend {
                vend_id: v.vend_id,
                slot: v.slot,
                success: v.success,
                order: v.order,
                ack: false,
            });
        }
    }

    async fn session(&mut self, phase: &mut watch::Receiver<Phase>) -> End {
        let endpoint = match tonic::transport::Endpoint::from_shared(self.gateway.clone()) {
            Ok(e) => e.connect_timeout(DIAL_TIMEOUT),
            Err(_) => return End::Done,
        };
        let Ok(Ok(channel)) = tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect()).await else {
            return End::Retry;
        };
        let mut client = MachineGatewayClient::new(channel);
        let (tx, rx) = mpsc::channel::<MachineMessage>(1024);
        let hello = hello(&self.id, &self.secret, "chaos/1", self.journal.acked());
        if tx.send(hello).await.is_err() {
            return End::Retry;
        }
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut inbound = match tokio::time::timeout(DIAL_TIMEOUT, client.session(outbound)).await {
            Ok(Ok(r)) => r.into_inner(),
            _ => return End::Retry,
        };
        let welcome = match tokio::time::timeout(DIAL_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(pb::ServerMessage {
                body: Some(server_message::Body::Welcome(w)),
            }))) => w,
            _ => return End::Retry,
        };
        // The Welcome's seq is what the server holds durably: an ack in itself.
        self.acked(welcome.acked_seq);
        let replay: Vec<MachineMessage> = self.journal.unacked().cloned().collect();
        for m in replay {
            if tx.send(m).await.is_err() {
                return End::Retry;
            }
        }
        let hb =
            Duration::from_secs(u64::from(welcome.heartbeat_interval_s.max(1))).min(MAX_HEARTBEAT);
        let mut heartbeat = tokio::time::interval(hb);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(Duration::from_millis(100));
        let sale = tokio::time::sleep(self.sale_gap());
        tokio::pin!(sale);
        loop {
            let now = *phase.borrow();
            if self.finished(now) {
                return End::Done;
            }
            let out: Vec<(Body, Option<PendingVend>)> = tokio::select! {
                _ = heartbeat.tick() => vec![(Body::Heartbeat(pb::Heartbeat {
                    state: pb::heartbeat::State::Idle as i32,
                    temperature_c: 4.0,
                    door_open: false,
                }), None)],
                () = &mut sale => {
                    sale.as_mut().reset(Instant::now() + self.sale_gap());
                    if now == Phase::Run {
                        self.sale().into_iter().collect()
                    } else {
                        vec![]
                    }
                }
                _ = check.tick() => vec![],
                m = inbound.message() => match m {
                    Ok(Some(m)) => self.on_server(m),
                    _ => return End::Retry,
                },
            };
            for (body, vend) in out {
                let m = self.journal.push(body, now_ms());
                if let Some(v) = vend {
                    self.pending.insert(m.seq, v);
                }
                if tx.send(m).await.is_err() {
                    return End::Retry;
                }
            }
        }
    }

    fn sale_gap(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(100..=MAX_SALE_GAP_MS))
    }

    /// A random cash sale from a slot with stock.
    fn sale(&mut self) -> Option<(Body, Option<PendingVend>)> {
        if self.journal.is_full() {
            return None;
        }
        let stocked = sellable(&self.slots);
        if stocked.is_empty() {
            return None;
        }
        let n = stocked[self.rng.random_range(0..stocked.len())];
        let success = self.rng.random::<f64>() >= FAIL_RATE;
        let vend_id = Uuid::from_u128(self.rng.random());
        let s = self.slots.get_mut(&n)?;
        if success {
            s.level -= 1;
        }
        let body = Body::Vend(pb::VendEvent {
            vend_id: vend_id.to_string(),
            slot: n,
            sku: s.sku.clone(),
            price_minor: s.price_minor,
            payment_method: pb::vend_event::PaymentMethod::Cash as i32,
            order_id: None,
            result: if success {
                pb::vend_event::Result::Success as i32
            } else {
                pb::vend_event::Result::Failure as i32
            },
            failure_reason: (!success).then(|| "motor_jam".to_owned()),
        });
        Some((
            body,
            Some(PendingVend {
                vend_id,
                slot: n,
                success,
                order: None,
            }),
        ))
    }

    /// Handles a server message; returns what to send, a dispense's vend before the
    /// command's ack.
    fn on_server(&mut self, m: pb::ServerMessage) -> Vec<(Body, Option<PendingVend>)> {
        let Some(body) = m.body else {
            return vec![];
        };
        match body {
            server_message::Body::Ack(a) => {
                self.acked(a.up_to_seq);
                vec![]
            }
            server_message::Body::Welcome(_) => vec![],
            server_message::Body::Command(c) => {
                let mut out = vec![];
                let status = match self.book.answered(&c.command_id) {
                    Some(s) => s,
                    None => {
                        let Some(kind) = c.kind.as_ref() else {
                            return vec![];
                        };
                        let fail = self.rng.random::<f64>() < FAIL_RATE;
                        let (vend, status, _) = answer(kind, &mut self.slots, now_ms(), fail);
                        if let Some(v) = vend {
                            let pending =
                                v.vend_id.parse::<Uuid>().ok().map(|vend_id| PendingVend {
                                    vend_id,
                                    slot: v.slot,
                                    success: v.result() == pb::vend_event::Result::Success,
                                    order: v.order_id.as_deref().and_then(|o| o.parse().ok()),
                                });
                            out.push((Body::Vend(v), pending));
                        }
                        self.book.record(&c.command_id, status);
                        status
                    }
                };
                out.push((
                    Body::CommandAck(pb::CommandAck {
                        command_id: c.command_id,
                        status: status as i32,
                        detail: String::new(),
                    }),
                    None,
                ));
                out
            }
        }
    }
}
