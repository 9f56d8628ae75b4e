//! Vending machines as operators see them, their planograms and commands, the slots
//! shoppers see, and the app purchase: the bodies of `/v1/machines*`.

use super::carts::Card;
use crate::clock::rfc3339;
use crate::domain::machine::{
    slot_availability, AlarmSeverity as DomainAlarmSeverity, CommandRecord,
    CommandStatus as DomainCommandStatus, HeartbeatState as DomainHeartbeatState,
    MachineCommand as DomainCommand, MachineState,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `PUT /v1/machines/{id}`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineInfo {
    /// 1 to 100 characters.
    #[schema(example = "Lobby, building 2", min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 200 characters; empty when absent.
    #[serde(default)]
    #[schema(example = "Main St 1, Springfield", max_length = 200)]
    pub location: String,
}

wire_enum! {
    HeartbeatState from DomainHeartbeatState { Idle, Vending, Service, Fault }
}

wire_enum! {
    AlarmSeverity from DomainAlarmSeverity { Info, Warning, Critical }
}

wire_enum! {
    CommandStatus from DomainCommandStatus {
        /// Sent (or queued for the next session); re-sent with the same id until acked.
        Sent,
        Accepted,
        Busy,
        Done,
        Rejected,
        Cancelled,
    }
}

/// An alarm the machine raised and has not cleared.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineAlarm {
    pub code: String,
    pub severity: AlarmSeverity,
    #[schema(format = DateTime)]
    pub raised_at: String,
}

/// One slot of the planogram, as the machine holds it now.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineSlot {
    pub slot: u32,
    pub sku: String,
    pub price_minor: i64,
    pub capacity: u32,
    pub level: u32,
    pub locked: bool,
    /// Level minus units held for app purchases.
    pub available: u32,
}

/// Units sold from a slot.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct SlotSales {
    pub slot: u32,
    pub units: u64,
}

/// Sales counters: successful vends only.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineSales {
    pub units: u64,
    pub value_minor: i64,
    pub failed_vends: u64,
    pub per_slot: Vec<SlotSales>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CommandType {
    SetPrice,
    LockSlot,
    UnlockSlot,
    Dispense,
    RequestAudit,
}

/// A command for a machine and its delivery status.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineCommand {
    pub command_id: Uuid,
    #[serde(rename = "type")]
    pub kind: CommandType,
    #[schema(required = true)]
    pub slot: Option<u32>,
    pub status: CommandStatus,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub issued_at: String,
    #[schema(format = DateTime)]
    pub sent_at: String,
    /// The machine's detail (e.g. why it rejected the command).
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl MachineCommand {
    pub fn new(id: Uuid, r: &CommandRecord) -> Self {
        let (kind, slot) = match &r.command {
            DomainCommand::SetPrice { slot, .. } => (CommandType::SetPrice, Some(*slot)),
            DomainCommand::LockSlot { slot, .. } => (CommandType::LockSlot, Some(*slot)),
            DomainCommand::UnlockSlot { slot } => (CommandType::UnlockSlot, Some(*slot)),
            DomainCommand::Dispense { slot, .. } => (CommandType::Dispense, Some(*slot)),
            DomainCommand::RequestAudit => (CommandType::RequestAudit, None),
        };
        Self {
            command_id: id,
            kind,
            slot,
            status: r.status.into(),
            attempts: r.attempts,
            issued_at: rfc3339(r.issued_at),
            sent_at: rfc3339(r.sent_at),
            detail: r.detail.clone(),
        }
    }
}

/// A unit held for an app purchase until the machine vends it or the deadline passes.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct AppHold {
    pub order_id: Uuid,
    pub slot: u32,
    #[schema(format = DateTime)]
    pub deadline: String,
}

/// A vending machine as operators see it. The secret hash is never shown.
// Not `deny_unknown_fields`: that would make its schema `additionalProperties: false`,
// which `MachineWithSecret` (this plus `secret`) would then break.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub location: String,
    #[schema(format = DateTime)]
    pub registered_at: String,
    pub online: bool,
    /// When the machine was last heard from; `null` if never.
    #[schema(required = true, format = DateTime)]
    pub last_seen: Option<String>,
    pub heartbeat_state: HeartbeatState,
    /// Cabinet temperature in tenths of a degree Celsius.
    pub temperature_dc: i32,
    pub door_open: bool,
    pub alarms: Vec<MachineAlarm>,
    pub low_stock_threshold: u32,
    /// Slots at or below the low-stock threshold.
    pub low_stock_slots: Vec<u32>,
    pub slots: Vec<MachineSlot>,
    pub sales: MachineSales,
    /// The highest machine message seq applied durably.
    pub acked_seq: u64,
    pub pending_commands: Vec<MachineCommand>,
    /// The last finished commands, newest first.
    pub recent_commands: Vec<MachineCommand>,
    pub app_holds: Vec<AppHold>,
}

impl Machine {
    /// The registered machine `id` of state `s`.
    pub fn new(id: &str, s: &MachineState) -> Self {
        let reg = s.registration.as_ref();
        Self {
            id: id.to_owned(),
            name: reg.map(|r| r.name.clone()).unwrap_or_default(),
            location: reg.map(|r| r.location.clone()).unwrap_or_default(),
            registered_at: rfc3339(reg.map_or(0, |r| r.registered_at)),
            online: s.online,
            last_seen: (s.last_seen > 0).then(|| rfc3339(s.last_seen)),
            heartbeat_state: s.heartbeat.into(),
            temperature_dc: s.temperature_dc,
            door_open: s.door_open,
            alarms: s
                .alarms
                .iter()
                .map(|(code, a)| MachineAlarm {
                    code: code.clone(),
                    severity: a.severity.into(),
                    raised_at: rfc3339(a.raised_at),
                })
                .collect(),
            low_stock_threshold: s.low_stock_threshold,
            low_stock_slots: s.low_stock_slots(),
            slots: s
                .planogram
                .iter()
                .map(|(n, sl)| MachineSlot {
                    slot: *n,
                    sku: sl.sku.to_string(),
                    price_minor: sl.price_minor,
                    capacity: sl.capacity,
                    level: sl.level,
                    locked: sl.locked,
                    available: s.available_units(*n),
                })
                .collect(),
            sales: MachineSales {
                units: s.sales.units,
                value_minor: s.sales.value_minor,
                failed_vends: s.sales.failed_vends,
                per_slot: s
                    .sales
                    .per_slot
                    .iter()
                    .map(|(n, u)| SlotSales {
                        slot: *n,
                        units: *u,
                    })
                    .collect(),
            },
            acked_seq: s.acked_seq,
            pending_commands: s
                .pending
                .iter()
                .map(|(id, r)| MachineCommand::new(*id, r))
                .collect(),
            recent_commands: s
                .recent_commands
                .iter()
                .rev()
                .map(|(id, r)| MachineCommand::new(*id, r))
                .collect(),
            app_holds: s
                .holds
                .iter()
                .map(|(o, h)| AppHold {
                    order_id: *o,
                    slot: h.slot,
                    deadline: rfc3339(h.deadline),
                })
                .collect(),
        }
    }
}

/// A machine with its secret: returned once, on registration or rotation.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct MachineWithSecret {
    #[serde(flatten)]
    pub machine: Machine,
    /// The machine's secret for `Hello`; only its hash is stored, so it is shown only now.
    pub secret: String,
}

/// `GET /v1/machines`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineList {
    pub items: Vec<Machine>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// One slot of a planogram as set by an operator.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PlanogramSlot {
    pub slot: u32,
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "COLA-330")]
    pub sku: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price_minor: i64,
    #[schema(minimum = 1, maximum = 10_000)]
    pub capacity: u32,
    /// At most `capacity`.
    pub level: u32,
}

/// `PUT /v1/machines/{id}/planogram`: replaces every slot (locks are kept).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Planogram {
    #[schema(max_items = 1000)]
    pub slots: Vec<PlanogramSlot>,
}

/// `POST /v1/machines/{id}/commands`: `{"type": ...}` with the command's fields.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandRequest {
    SetPrice {
        slot: u32,
        #[schema(minimum = 0, maximum = 1_000_000_000)]
        price_minor: i64,
    },
    LockSlot {
        slot: u32,
        /// Why; empty when absent.
        #[serde(default)]
        reason: String,
    },
    UnlockSlot {
        slot: u32,
    },
    RequestAudit,
}

impl From<CommandRequest> for DomainCommand {
    fn from(c: CommandRequest) -> Self {
        match c {
            CommandRequest::SetPrice { slot, price_minor } => Self::SetPrice { slot, price_minor },
            CommandRequest::LockSlot { slot, reason } => Self::LockSlot { slot, reason },
            CommandRequest::UnlockSlot { slot } => Self::UnlockSlot { slot },
            CommandRequest::RequestAudit => Self::RequestAudit,
        }
    }
}

/// A slot as shoppers see it.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct SlotOffer {
    pub slot: u32,
    pub sku: String,
    pub price_minor: i64,
    /// Whether a unit can be bought now (not locked, not all held).
    pub available: bool,
}

impl SlotOffer {
    /// Every slot of the machine's planogram, in slot order.
    pub fn all(s: &MachineState) -> Vec<Self> {
        slot_availability(s)
            .into_iter()
            .map(|(slot, sku, price_minor, available)| Self {
                slot,
                sku: sku.to_string(),
                price_minor,
                available,
            })
            .collect()
    }
}

/// `POST /v1/machines/{id}/purchase`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub slot: u32,
    /// Where to send the receipt; a signed-in user's own address if absent.
    #[serde(default)]
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    pub payment: Card,
}

/// One slot of a restock picklist.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PickLine {
    pub slot: u32,
    pub sku: String,
    pub capacity: u32,
    /// The level the machine last reported.
    pub level: u32,
    /// Units to bring: capacity minus level.
    pub to_load: u32,
}

/// What a restock visit must bring to a machine, slot by slot.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Picklist {
    pub machine_id: String,
    /// Slots short of capacity, by slot number.
    pub lines: Vec<PickLine>,
    /// Units in all.
    pub total_units: u32,
}

impl Picklist {
    pub fn new(id: &str, s: &crate::domain::machine::MachineState) -> Self {
        let lines: Vec<PickLine> = s
            .planogram
            .iter()
            .filter(|(_, sl)| sl.capacity > sl.level)
            .map(|(n, sl)| PickLine {
                slot: *n,
                sku: sl.sku.to_string(),
                capacity: sl.capacity,
                level: sl.level,
                to_load: sl.capacity - sl.level,
            })
            .collect();
        Self {
            machine_id: id.to_owned(),
            total_units: lines.iter().map(|l| l.to_load).sum(),
            lines,
        }
    }
}
