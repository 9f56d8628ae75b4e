//! Conversions between the wire messages of `emporium.vending.v1` and the machine
//! aggregate's inputs and commands. Malformed content is an `INVALID_ARGUMENT` status
//! naming the field, never a panic and never a half-applied message.

use super::pb::{self, machine_message::Body};
use crate::domain::machine::{
    AckStatus, AlarmSeverity, HeartbeatState, MachineCommand, MachineInput, VendMethod,
};
use crate::domain::Millis;
use tonic::Status;
use uuid::Uuid;

fn invalid(seq: u64, what: &str) -> Status {
    Status::invalid_argument(format!("message seq {seq}: {what}"))
}

fn parse_uuid(seq: u64, field: &str, s: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(s).map_err(|_| invalid(seq, &format!("{field} must be a UUID")))
}

/// Tenths of a degree from degrees Celsius; out-of-range or NaN readings are clamped.
fn deci_celsius(t: f32) -> i32 {
    if t.is_nan() {
        0
    } else {
        (t * 10.0).round().clamp(-10_000.0, 10_000.0) as i32
    }
}

/// A machine message after `Hello` as the aggregate's input; `at` is the server's clock.
pub fn machine_input(m: pb::MachineMessage, at: Millis) -> Result<MachineInput, Status> {
    let seq = m.seq;
    if seq == 0 {
        return Err(invalid(seq, "seq 0 is reserved for Hello"));
    }
    let body = m
        .body
        .ok_or_else(|| invalid(seq, "the message has no body"))?;
    Ok(match body {
        Body::Hello(_) => return Err(invalid(seq, "Hello is only allowed as the first message")),
        Body::Heartbeat(h) => {
            use pb::heartbeat::State;
            let state = match h.state() {
                State::Idle | State::Unspecified => HeartbeatState::Idle,
                State::Vending => HeartbeatState::Vending,
                State::Service => HeartbeatState::Service,
                State::Fault => HeartbeatState::Fault,
            };
            MachineInput::Heartbeat {
                seq,
                at,
                state,
                temperature_dc: deci_celsius(h.temperature_c),
                door_open: h.door_open,
            }
        }
        Body::Vend(v) => {
            use pb::vend_event::{PaymentMethod, Result as VendResult};
            let method = match v.payment_method() {
                PaymentMethod::Cash => VendMethod::Cash,
                PaymentMethod::Cashless => VendMethod::Cashless,
                PaymentMethod::App => VendMethod::App,
                PaymentMethod::Unspecified => {
                    return Err(invalid(seq, "vend.payment_method must be set"))
                }
            };
            let success = match v.result() {
                VendResult::Success => true,
                VendResult::Failure => false,
                VendResult::Unspecified => return Err(invalid(seq, "vend.result must be set")),
            };
            let order_id = match v.order_id.as_deref() {
                None | Some("") => None,
                Some(o) => Some(parse_uuid(seq, "vend.order_id", o)?),
            };
            MachineInput::Vend {
                seq,
                at,
                vend_id: parse_uuid(seq, "vend.vend_id", &v.vend_id)?,
                slot: v.slot,
                sku: v.sku,
                price_minor: v.price_minor,
                method,
                order_id,
                success,
                failure_reason: v.failure_reason,
            }
        }
        Body::Restock(r) => MachineInput::Restock {
            seq,
            at,
            slot: r.slot,
            level_after: r.level_after,
            operator_id: r.operator_id,
        },
        Body::Alarm(a) => {
            if a.code.is_empty() {
                return Err(invalid(seq, "alarm.code must not be empty"));
            }
            MachineInput::Alarm {
                seq,
                at,
                code: a.code,
                severity: match a.severity {
                    0 | 1 => AlarmSeverity::Info,
                    2 => AlarmSeverity::Warning,
                    _ => AlarmSeverity::Critical,
                },
                cleared: a.cleared,
            }
        }
        Body::CommandAck(c) => {
            use pb::command_ack::Status as S;
            let status = match c.status() {
                S::Accepted => AckStatus::Accepted,
                S::Done => AckStatus::Done,
                S::Rejected => AckStatus::Rejected,
                S::Busy => AckStatus::Busy,
                S::Unspecified => return Err(invalid(seq, "command_ack.status must be set")),
            };
            MachineInput::CommandAck {
                seq,
                at,
                command_id: parse_uuid(seq, "command_ack.command_id", &c.command_id)?,
                status,
                detail: c.detail,
            }
        }
    })
}

/// A command as sent down the stream.
pub fn command_message(command_id: Uuid, c: &MachineCommand) -> pb::ServerMessage {
    use pb::command::Kind;
    let kind = match c {
        MachineCommand::SetPrice { slot, price_minor } => Kind::SetPrice(pb::SetPrice {
            slot: *slot,
            price_minor: *price_minor,
        }),
        MachineCommand::LockSlot { slot, reason } => Kind::LockSlot(pb::LockSlot {
            slot: *slot,
            reason: reason.clone(),
        }),
        MachineCommand::UnlockSlot { slot } => Kind::UnlockSlot(pb::UnlockSlot { slot: *slot }),
        MachineCommand::Dispense {
            order_id,
            slot,
            deadline_unix_ms,
        } => Kind::Dispense(pb::Dispense {
            order_id: order_id.to_string(),
            slot: *slot,
            deadline_unix_ms: i64::try_from(*deadline_unix_ms).unwrap_or(i64::MAX),
        }),
        MachineCommand::RequestAudit => Kind::RequestAudit(pb::RequestAudit {}),
    };
    pb::ServerMessage {
        body: Some(pb::server_message::Body::Command(pb::Command {
            command_id: command_id.to_string(),
            kind: Some(kind),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, body: Body) -> pb::MachineMessage {
        pb::MachineMessage {
            seq,
            at_unix_ms: 0,
            body: Some(body),
        }
    }

    #[test]
    fn messages_convert_and_bad_content_is_invalid_argument() {
        let hb = pb::Heartbeat {
            state: pb::heartbeat::State::Fault as i32,
            temperature_c: 4.26,
            door_open: true,
        };
        match machine_input(msg(3, Body::Heartbeat(hb)), 99).unwrap() {
            MachineInput::Heartbeat {
                seq: 3,
                at: 99,
                state: HeartbeatState::Fault,
                temperature_dc: 43,
                door_open: true,
            } => {}
            other => panic!("unexpected {other:?}"),
        }
        let bad_vend = pb::VendEvent {
            vend_id: "not-a-uuid".into(),
            payment_method: pb::vend_event::PaymentMethod::Cash as i32,
            result: pb::vend_event::Result::Success as i32,
            ..Default::default()
        };
        let e = machine_input(msg(4, Body::Vend(bad_vend)), 1).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("vend.vend_id"), "{}", e.message());
        let e = machine_input(msg(0, Body::Heartbeat(Default::default())), 1).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = machine_input(msg(5, Body::Hello(Default::default())), 1).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let ack = pb::CommandAck {
            command_id: Uuid::nil().to_string(),
            status: 0,
            detail: String::new(),
        };
        assert!(machine_input(msg(6, Body::CommandAck(ack)), 1).is_err());
        assert_eq!(deci_celsius(f32::NAN), 0);
        assert_eq!(deci_celsius(1e30), 10_000);
    }

    #[test]
    fn commands_keep_their_id_and_fields() {
        let id = Uuid::from_u128(5);
        let m = command_message(
            id,
            &MachineCommand::Dispense {
                order_id: Uuid::from_u128(9),
                slot: 2,
                deadline_unix_ms: 1234,
            },
        );
        let Some(pb::server_message::Body::Command(c)) = m.body else {
            panic!("not a command")
        };
        assert_eq!(c.command_id, id.to_string());
        assert!(matches!(
            c.kind,
            Some(pb::command::Kind::Dispense(pb::Dispense {
                slot: 2,
                deadline_unix_ms: 1234,
                ..
            }))
        ));
    }
}
