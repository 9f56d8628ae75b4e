//! The vending machine's behavior, around the pure aggregate in `crate::domain::machine`:
//!
//! - the timer ([`MachineInput::Tick`]): app holds past their deadline, silence past three
//!   heartbeat intervals, and command resends;
//! - the outbox: each app-purchase outcome is delivered to its order, and removed only once
//!   the order has it, so a crash between the two repeats the delivery (orders de-duplicate);
//! - the push: a command issued or re-sent is handed to the machine's live session (if it
//!   has one on this node) once the event is durable; a push that cannot be made is simply
//!   retried by the resend timer;
//! - the revocation: once a secret rotation is durable, the machine's live session on this
//!   node is ended `UNAUTHENTICATED`;
//! - indexes: every registered machine, and the machines that must be active after a restart
//!   (online, or holding units, commands or undelivered outcomes).

use super::behavior::{Behavior, Effects};
use super::client::{EntityClient, RouteError};
use crate::domain::machine::{
    next_tick, AppOutcome, Machine, MachineCommand, MachineEvent, MachineInput, MachineState,
};
use crate::domain::order::{Order, OrderCommand};
use crate::domain::{Aggregate, Millis};
use crate::store::{Index, IndexOp};
use futures::future::BoxFuture;
use std::sync::Arc;
use uuid::Uuid;

/// Where commands for connected machines go (the gRPC sessions of this node).
pub trait CommandSink: Send + Sync + 'static {
    /// Hands a command to the machine's session; returns whether one took it.
    fn push(&self, machine_id: &str, command_id: Uuid, command: &MachineCommand) -> bool;
    /// The machine's secret changed: its session (if on this node) must end, refused.
    fn revoke(&self, machine_id: &str);
}

/// Timing of the machine timers.
#[derive(Debug, Clone, Copy)]
pub struct MachineTiming {
    pub heartbeat_interval_ms: u64,
    pub resend_after_ms: u64,
    /// `vending.recent_vends_window`, applied by the timer.
    pub recent_vends_window: u32,
}

/// The machine kind's hooks.
pub struct MachineBehavior {
    sink: Arc<dyn CommandSink>,
    timing: MachineTiming,
}

impl MachineBehavior {
    /// Its outbox reaches the orders through the [`Effects`] the entity shell hands it.
    pub fn new(sink: Arc<dyn CommandSink>, timing: MachineTiming) -> Self {
        Self { sink, timing }
    }
}

/// Tells an order how its vend ended; the machine forgets the outcome once the order has it.
async fn notify(effects: Effects, order_id: Uuid, outcome: AppOutcome) -> Option<MachineInput> {
    let cmd = OrderCommand::VendReported {
        report: outcome,
        at: effects.clock.now_ms(),
    };
    let client: &dyn EntityClient = &*effects.client;
    match client.command::<Order>(&order_id.to_string(), cmd).await {
        // A rejection means the order does not exist (or no longer cares): nothing to tell.
        Ok(_) | Err(RouteError::Rejected(_)) => Some(MachineInput::AppNotified { order_id }),
        Err(error) => {
            tracing::warn!(%order_id, %error, "cannot deliver a vend outcome yet; will retry");
            None
        }
    }
}

/// Whether the machine must be activated after a restart to keep its promises.
fn must_stay_active(s: &MachineState) -> bool {
    s.registration.is_some() && !Machine::can_passivate(s)
}

impl Behavior<Machine> for MachineBehavior {
    fn next_effect(
        &self,
        _id: &str,
        state: &MachineState,
        effects: &Effects,
    ) -> Option<BoxFuture<'static, Option<MachineInput>>> {
        let (order_id, outcome) = state.notices.iter().next()?;
        Some(Box::pin(notify(
            effects.clone(),
            *order_id,
            outcome.clone(),
        )))
    }

    fn next_wakeup(&self, state: &MachineState) -> Option<Millis> {
        next_tick(
            state,
            self.timing.heartbeat_interval_ms,
            self.timing.resend_after_ms,
        )
    }

    fn on_wakeup(&self, _state: &MachineState, now: Millis) -> Option<MachineInput> {
        Some(MachineInput::Tick {
            now,
            heartbeat_interval_ms: self.timing.heartbeat_interval_ms,
            resend_after_ms: self.timing.resend_after_ms,
            recent_vends_window: self.timing.recent_vends_window,
        })
    }

    fn index_ops(&self, id: &str, events: &[MachineEvent], after: &MachineState) -> Vec<IndexOp> {
        let mut ops = vec![];
        if events
            .iter()
            .any(|e| matches!(e, MachineEvent::Registered { .. }))
        {
            ops.push(IndexOp::Put(Index::Machines, id.to_owned()));
        }
        // Heartbeats are most of the traffic and change neither condition.
        let only_heartbeats = events.iter().all(|e| {
            matches!(
                e,
                MachineEvent::Received {
                    message: crate::domain::machine::Message::Heartbeat { .. },
                    ..
                }
            )
        });
        if !only_heartbeats {
            ops.push(if must_stay_active(after) {
                IndexOp::Put(Index::LiveMachines, id.to_owned())
            } else {
                IndexOp::Remove(Index::LiveMachines, id.to_owned())
            });
        }
        ops
    }

    fn on_persisted(&self, id: &str, events: &[MachineEvent], after: &MachineState) {
        for e in events {
            let command_id = match e {
                MachineEvent::CommandIssued { command_id, .. }
                | MachineEvent::CommandResent { command_id, .. } => command_id,
                MachineEvent::LowStock { slot, sku, level } => {
                    tracing::info!(machine = id, slot, %sku, level, "low stock");
                    metrics::counter!("emporium_machine_low_stock_total").increment(1);
                    continue;
                }
                MachineEvent::WentOffline { .. } => {
                    metrics::counter!("emporium_machine_offline_total").increment(1);
                    continue;
                }
                MachineEvent::SecretRotated { .. } => {
                    self.sink.revoke(id);
                    continue;
                }
                _ => continue,
            };
            if let Some(rec) = after.pending.get(command_id) {
                if !self.sink.push(id, *command_id, &rec.command) {
                    tracing::debug!(machine = id, %command_id, "no session for the command; the resend timer will retry");
                }
            }
        }
    }
}

/// A sink for nodes without a gRPC listener (and tests): takes nothing.
pub struct NoSessions;

impl CommandSink for NoSessions {
    fn push(&self, _: &str, _: Uuid, _: &MachineCommand) -> bool {
        false
    }
    fn revoke(&self, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::machine::Message;

    fn behavior() -> MachineBehavior {
        MachineBehavior::new(
            Arc::new(NoSessions),
            MachineTiming {
                heartbeat_interval_ms: 1000,
                resend_after_ms: 5000,
                recent_vends_window: 64,
            },
        )
    }

    #[test]
    fn registration_indexes_the_machine_and_heartbeats_write_no_index() {
        let reg = MachineEvent::Registered {
            name: "n".into(),
            location: String::new(),
            secret_hash: "h".into(),
            low_stock_threshold: 2,
            at: 1,
        };
        let mut s = MachineState::default();
        Machine::apply(&mut s, &reg);
        let ops = behavior().index_ops("vm-1", &[reg], &s);
        assert!(matches!(&ops[0], IndexOp::Put(Index::Machines, id) if id == "vm-1"));
        assert!(matches!(&ops[1], IndexOp::Remove(Index::LiveMachines, _)));
        let connected = MachineEvent::Connected { at: 2 };
        Machine::apply(&mut s, &connected);
        let ops = behavior().index_ops("vm-1", &[connected], &s);
        assert!(matches!(&ops[..], [IndexOp::Put(Index::LiveMachines, id)] if id == "vm-1"));
        let hb = MachineEvent::Received {
            seq: 1,
            at: 3,
            message: Message::Heartbeat {
                state: Default::default(),
                temperature_dc: 0,
                door_open: false,
            },
        };
        assert!(behavior().index_ops("vm-1", &[hb], &s).is_empty());
    }

    #[test]
    fn the_timer_follows_the_pure_schedule() {
        let mut s = MachineState::default();
        Machine::apply(&mut s, &MachineEvent::Connected { at: 10_000 });
        assert_eq!(behavior().next_wakeup(&s), Some(13_000));
        assert!(matches!(
            behavior().on_wakeup(&s, 13_000),
            Some(MachineInput::Tick {
                now: 13_000,
                heartbeat_interval_ms: 1000,
                resend_after_ms: 5000,
                recent_vends_window: 64,
            })
        ));
    }
}
