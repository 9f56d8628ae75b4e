//! The order saga's steps at a vending machine: hold a slot's unit, send `Dispense`, and
//! release the hold. Each is idempotent at the machine, keyed by the order id.

use super::client::{EntityClient, RouteError};
use crate::clock::Clock;
use crate::domain::machine::{Machine, MachineCommand, MachineInput};
use crate::domain::order::{Effect, FailureCode, OrderCommand, OrderState};
use crate::domain::RejectionCode;
use uuid::Uuid;

/// The command id of an order's `Dispense`: derived from the order, so a repeated step
/// finds the command it already issued.
pub fn dispense_command_id(order_id: Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(order_id.as_bytes())
        .chain_update(b"dispense")
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

/// Performs a vending effect; `None` asks the actor to retry later.
pub(super) async fn perform(
    client: &dyn EntityClient,
    clock: &dyn Clock,
    s_line_sku: Option<crate::domain::Sku>,
    effect: Effect,
) -> Option<OrderCommand> {
    let at = clock.now_ms();
    let sku = s_line_sku?;
    match effect {
        Effect::ReserveSlot {
            machine_id,
            slot,
            order_id,
            deadline,
        } => {
            if at >= deadline {
                return Some(timed_out(at));
            }
            let cmd = MachineInput::ReserveForApp {
                order_id,
                slot,
                deadline,
            };
            match client.command::<Machine>(&machine_id, cmd).await {
                Ok(_) => Some(OrderCommand::LineReserved {
                    sku,
                    allocations: vec![],
                    at,
                }),
                Err(RouteError::Rejected(r)) => {
                    let code = if r.message.starts_with("machine_offline") {
                        FailureCode::MachineOffline
                    } else {
                        FailureCode::OutOfStock
                    };
                    Some(OrderCommand::SlotUnavailable {
                        code,
                        message: r.message,
                        at,
                    })
                }
                Err(e) => super::order_saga::transient("reserve slot", e),
            }
        }
        Effect::Dispense {
            machine_id,
            slot,
            order_id,
            deadline,
        } => {
            if at >= deadline {
                return Some(timed_out(at));
            }
            let cmd = MachineInput::IssueCommand {
                command_id: dispense_command_id(order_id),
                command: MachineCommand::Dispense {
                    order_id,
                    slot,
                    deadline_unix_ms: deadline,
                },
                at,
            };
            match client.command::<Machine>(&machine_id, cmd).await {
                Ok(_) => Some(OrderCommand::DispenseSent { at }),
                // The hold is gone: its deadline passed at the machine.
                Err(RouteError::Rejected(r)) if r.code == RejectionCode::InvalidTransition => {
                    Some(timed_out(at))
                }
                Err(RouteError::Rejected(r)) => Some(OrderCommand::SlotUnavailable {
                    code: FailureCode::VendFailed,
                    message: r.message,
                    at,
                }),
                Err(e) => super::order_saga::transient("dispense", e),
            }
        }
        Effect::ReleaseSlot {
            machine_id,
            order_id,
        } => {
            let cmd = MachineInput::ReleaseApp {
                order_id,
                reason: "order_cancelled".into(),
            };
            match client.command::<Machine>(&machine_id, cmd).await {
                // Releasing is a no-op when the machine no longer holds the unit.
                Ok(_) | Err(RouteError::Rejected(_)) => {
                    Some(OrderCommand::LineReleased { sku, at })
                }
                Err(e) => super::order_saga::transient("release slot", e),
            }
        }
        other => {
            tracing::error!(?other, "not a vending effect");
            None
        }
    }
}

fn timed_out(at: crate::domain::Millis) -> OrderCommand {
    OrderCommand::SlotUnavailable {
        code: FailureCode::VendTimeout,
        message: "the dispense deadline passed".into(),
        at,
    }
}

/// The SKU of a vending order's one line.
pub(super) fn line_sku(s: &OrderState) -> Option<crate::domain::Sku> {
    s.lines.first().map(|l| l.sku.clone())
}
