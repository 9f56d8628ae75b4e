//! The vocabulary of a vending machine: limits, its state, the aggregate's inputs and
//! events, and the commands sent down to the machine.

use crate::domain::{Millis, Sku};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use uuid::Uuid;

/// The largest window of recent `vend_id`s that may be configured
/// (`vending.recent_vends_window`).
pub const MAX_RECENT_VENDS: usize = 10_000;
/// How many recent `vend_id`s a machine remembers until its timer applies the configured
/// window. See [`MachineState::vend_window`] for why a window is enough.
pub const DEFAULT_RECENT_VENDS: usize = 1_024;
/// How many finished (done, rejected, cancelled) commands are kept for display.
pub const MAX_RECENT_COMMANDS: usize = 64;
/// Most commands that may be waiting for the machine at once.
pub const MAX_PENDING_COMMANDS: usize = 1_000;
/// Most alarms open at once; further codes are skipped until some clear.
pub const MAX_OPEN_ALARMS: usize = 256;
/// Most slots in a planogram.
pub const MAX_SLOTS: usize = 1_000;
/// Largest slot capacity.
pub const MAX_CAPACITY: u32 = 10_000;
/// Largest price, in minor units.
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000;
/// Low-stock threshold used when none is configured.
pub const DEFAULT_LOW_STOCK_THRESHOLD: u32 = 2;
/// Longest free text (reasons, details, codes) kept from a machine message, in chars.
pub const MAX_TEXT: usize = 200;
/// A machine silent for this many heartbeat intervals is marked offline.
pub const SILENT_INTERVALS: u64 = 3;

/// What a machine reported in its last heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatState {
    #[default]
    Idle,
    Vending,
    Service,
    Fault,
}

/// How a vend was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendMethod {
    Cash,
    Cashless,
    App,
}

/// How serious an alarm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmSeverity {
    Info,
    Warning,
    Critical,
}

/// The status a machine reports for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Accepted,
    Done,
    Rejected,
    Busy,
}

/// Delivery status of a command sent to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Sent, not acked yet; re-sent after a timeout.
    Sent,
    /// The machine accepted it and will report `Done` or `Rejected`; not re-sent.
    Accepted,
    /// The machine was busy; re-sent after a timeout.
    Busy,
    Done,
    Rejected,
    /// Withdrawn by the server (a released app purchase); never re-sent.
    Cancelled,
}

impl CommandStatus {
    /// Whether the command is finished.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Rejected | Self::Cancelled)
    }
    /// The wire name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Busy => "busy",
            Self::Done => "done",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

impl From<AckStatus> for CommandStatus {
    fn from(a: AckStatus) -> Self {
        match a {
            AckStatus::Accepted => Self::Accepted,
            AckStatus::Done => Self::Done,
            AckStatus::Rejected => Self::Rejected,
            AckStatus::Busy => Self::Busy,
        }
    }
}

/// A command sent down the machine's stream (the server-to-machine `Command`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineCommand {
    SetPrice {
        slot: u32,
        price_minor: i64,
    },
    LockSlot {
        slot: u32,
        reason: String,
    },
    UnlockSlot {
        slot: u32,
    },
    Dispense {
        order_id: Uuid,
        slot: u32,
        deadline_unix_ms: Millis,
    },
    RequestAudit,
}

/// One slot of the planogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub sku: Sku,
    pub price_minor: i64,
    pub capacity: u32,
    pub level: u32,
    pub locked: bool,
}

/// One slot as an operator sets it; `locked` is kept from the current planogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpec {
    pub slot: u32,
    pub sku: Sku,
    pub price_minor: i64,
    pub capacity: u32,
    pub level: u32,
}

/// Who the machine is; set by `Register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub name: String,
    pub location: String,
    /// The hash of the machine's secret, computed at the edge.
    pub secret_hash: String,
    pub registered_at: Millis,
}

/// An open alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAlarm {
    pub severity: AlarmSeverity,
    pub raised_at: Millis,
}

/// Sales counters. Only successful vends count as sales.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesCounters {
    pub units: u64,
    pub value_minor: i64,
    pub failed_vends: u64,
    /// Units sold per slot, for slots in the planogram at the time of the vend.
    pub per_slot: BTreeMap<u32, u64>,
    /// Units sold per SKU (the SKU of the slot at the time of the vend): what the SKU's
    /// stock at this machine's location is reduced by (`events/machine_stock.rs`).
    pub per_sku: BTreeMap<Sku, u64>,
}

/// A command sent to the machine and its delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command: MachineCommand,
    pub issued_at: Millis,
    /// When it was last sent (the resend timer runs from here).
    pub sent_at: Millis,
    pub attempts: u32,
    pub status: CommandStatus,
    pub detail: Option<String>,
}

/// A unit held in a slot for an app purchase until the machine vends it or the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHold {
    pub slot: u32,
    pub deadline: Millis,
}

/// How an app purchase ended at the machine, kept until its order has been told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppOutcome {
    Vended {
        vend_id: Uuid,
    },
    Failed {
        reason: String,
    },
    /// The dispense deadline passed with no vend.
    TimedOut,
}

/// The last [`MachineState::vend_window`] vend ids, oldest first, with a set for lookups.
/// (The serialized shape is kept as it was: an old snapshot must never decode as a
/// different state; with a field added at the end of [`MachineState`] it fails instead,
/// and the machine is rebuilt from its events.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentVends {
    order: VecDeque<Uuid>,
    set: BTreeSet<Uuid>,
}

impl RecentVends {
    /// Whether this vend id is remembered.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }
    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// Remembers `id`, forgetting the oldest beyond `window`.
    pub(super) fn insert(&mut self, id: Uuid, window: usize) {
        if self.set.insert(id) {
            self.order.push_back(id);
        }
        self.trim(window);
    }
    /// Forgets the oldest ids until at most `window` (and [`MAX_RECENT_VENDS`]) are left.
    pub(super) fn trim(&mut self, window: usize) {
        let window = window.clamp(1, MAX_RECENT_VENDS);
        while self.order.len() > window {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// The state of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    pub registration: Option<Registration>,
    pub online: bool,
    pub last_seen: Millis,
    pub heartbeat: HeartbeatState,
    /// Temperature in tenths of a degree Celsius.
    pub temperature_dc: i32,
    pub door_open: bool,
    pub alarms: BTreeMap<String, OpenAlarm>,
    pub planogram: BTreeMap<u32, Slot>,
    pub sales: SalesCounters,
    pub low_stock_threshold: u32,
    /// The highest machine seq applied.
    pub acked_seq: u64,
    pub recent_vends: RecentVends,
    /// Commands not finished yet, by command id.
    pub pending: BTreeMap<Uuid, CommandRecord>,
    /// The last [`MAX_RECENT_COMMANDS`] finished commands, oldest first.
    pub recent_commands: VecDeque<(Uuid, CommandRecord)>,
    /// App-purchase holds, by order id.
    pub holds: BTreeMap<Uuid, AppHold>,
    /// Outcomes of app purchases whose orders have not been told yet (an outbox).
    pub notices: BTreeMap<Uuid, AppOutcome>,
    /// How many vend ids `recent_vends` keeps: the configured `vending.recent_vends_window`,
    /// applied by the timer ([`MachineEvent::VendWindowSet`]), [`DEFAULT_RECENT_VENDS`]
    /// until then.
    ///
    /// Why a window is enough: a machine re-sends only messages it has not seen acked, under
    /// their original seq, and every seq at or below `acked_seq` is dropped whatever its
    /// content. The vend-id check only catches a vend re-sent under a new seq (a machine
    /// that lost its seq counter in a reset), which concerns the few vends around the reset,
    /// far fewer than the window. A vend re-sent after more than this many later vends
    /// would be counted again.
    pub vend_window: u32,
    /// How many sessions the machine opened: a session's `Disconnected` names its own,
    /// so the end of a replaced session does not mark a newer one offline.
    pub connection: u64,
}

impl Default for MachineState {
    fn default() -> Self {
        Self {
            registration: None,
            online: false,
            last_seen: 0,
            heartbeat: HeartbeatState::Idle,
            temperature_dc: 0,
            door_open: false,
            alarms: BTreeMap::new(),
            planogram: BTreeMap::new(),
            sales: SalesCounters::default(),
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
            acked_seq: 0,
            recent_vends: RecentVends::default(),
            pending: BTreeMap::new(),
            recent_commands: VecDeque::new(),
            holds: BTreeMap::new(),
            notices: BTreeMap::new(),
            vend_window: DEFAULT_RECENT_VENDS as u32,
            connection: 0,
        }
    }
}

impl MachineState {
    /// Units of `slot` held by app purchases.
    pub fn held(&self, slot: u32) -> u32 {
        self.holds.values().filter(|h| h.slot == slot).count() as u32
    }
    /// Units of `slot` that can still be sold: level minus app holds (0 if unknown).
    pub fn available_units(&self, slot: u32) -> u32 {
        self.planogram
            .get(&slot)
            .map_or(0, |s| s.level.saturating_sub(self.held(slot)))
    }
    /// A command by id, pending or recently finished.
    pub fn command(&self, id: &Uuid) -> Option<&CommandRecord> {
        self.pending.get(id).or_else(|| {
            self.recent_commands
                .iter()
                .find(|(c, _)| c == id)
                .map(|(_, r)| r)
        })
    }
    /// Slots at or below the low-stock threshold.
    pub fn low_stock_slots(&self) -> Vec<u32> {
        self.planogram
            .iter()
            .filter(|(_, s)| s.level <= self.low_stock_threshold)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// The aggregate's commands (`MachineCommand` is the one sent down to the machine).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MachineInput {
    /// Idempotent for the same name, location and secret hash; a conflict otherwise.
    Register {
        name: String,
        location: String,
        secret_hash: String,
        low_stock_threshold: u32,
        at: Millis,
    },
    UpdateInfo {
        name: String,
        location: String,
    },
    RotateSecret {
        secret_hash: String,
    },
    SetPlanogram {
        slots: Vec<SlotSpec>,
    },
    SetLowStockThreshold {
        threshold: u32,
    },
    Connected {
        at: Millis,
    },
    /// The session `connection` ended (its stream closed); a no-op when a newer session
    /// has opened since.
    Disconnected {
        at: Millis,
        connection: u64,
    },
    /// Marks the machine offline when `now - last_seen >= 3 * heartbeat_interval_ms`.
    MarkOfflineIfSilent {
        now: Millis,
        heartbeat_interval_ms: u64,
    },
    Heartbeat {
        seq: u64,
        at: Millis,
        state: HeartbeatState,
        temperature_dc: i32,
        door_open: bool,
    },
    Vend {
        seq: u64,
        at: Millis,
        vend_id: Uuid,
        slot: u32,
        sku: String,
        price_minor: i64,
        method: VendMethod,
        order_id: Option<Uuid>,
        success: bool,
        failure_reason: Option<String>,
    },
    Restock {
        seq: u64,
        at: Millis,
        slot: u32,
        level_after: u32,
        operator_id: Option<String>,
    },
    Alarm {
        seq: u64,
        at: Millis,
        code: String,
        severity: AlarmSeverity,
        cleared: bool,
    },
    CommandAck {
        seq: u64,
        at: Millis,
        command_id: Uuid,
        status: AckStatus,
        detail: String,
    },
    IssueCommand {
        command_id: Uuid,
        command: MachineCommand,
        at: Millis,
    },
    CommandResent {
        command_id: Uuid,
        at: Millis,
    },
    /// Holds one unit of `slot` for an app purchase until `deadline`.
    ReserveForApp {
        order_id: Uuid,
        slot: u32,
        deadline: Millis,
    },
    /// Drops an app hold (the order gave up) and cancels its `Dispense`.
    ReleaseApp {
        order_id: Uuid,
        reason: String,
    },
    /// The timer: times out app holds past their deadline, marks the machine offline when
    /// silent for [`SILENT_INTERVALS`] heartbeat intervals, and re-sends commands that were
    /// not acked within `resend_after_ms` (only while online).
    Tick {
        now: Millis,
        heartbeat_interval_ms: u64,
        resend_after_ms: u64,
        /// The configured `vending.recent_vends_window`; the timer applies it.
        recent_vends_window: u32,
    },
    /// A new session opened: every command still waiting for the machine (not `Accepted`)
    /// is sent again.
    ResendPending {
        at: Millis,
    },
    /// The order of an app purchase has been told its outcome.
    AppNotified {
        order_id: Uuid,
    },
}

/// Why a machine message changed nothing but its seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    DuplicateVend,
    UnknownSlot,
    UnknownCommand,
    TooManyAlarms,
}

/// The body of a machine message, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Only the seq advances.
    Skipped { reason: SkipReason },
    Heartbeat {
        state: HeartbeatState,
        temperature_dc: i32,
        door_open: bool,
    },
    Vend {
        vend_id: Uuid,
        slot: u32,
        sku: String,
        price_minor: i64,
        method: VendMethod,
        order_id: Option<Uuid>,
        success: bool,
        failure_reason: Option<String>,
    },
    /// `level_after` is already clamped to the slot's capacity.
    Restock {
        slot: u32,
        level_after: u32,
        operator_id: Option<String>,
    },
    Alarm {
        code: String,
        severity: AlarmSeverity,
        cleared: bool,
    },
    CommandAck {
        command_id: Uuid,
        status: AckStatus,
        detail: String,
    },
}

/// What happened to a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineEvent {
    Registered {
        name: String,
        location: String,
        secret_hash: String,
        low_stock_threshold: u32,
        at: Millis,
    },
    InfoUpdated {
        name: String,
        location: String,
    },
    SecretRotated {
        secret_hash: String,
    },
    PlanogramSet {
        slots: BTreeMap<u32, Slot>,
    },
    LowStockThresholdSet {
        threshold: u32,
    },
    Connected {
        at: Millis,
    },
    Disconnected {
        at: Millis,
    },
    WentOffline {
        at: Millis,
    },
    /// A machine message: advances `acked_seq` and `last_seen`, and marks it online.
    Received {
        seq: u64,
        at: Millis,
        message: Message,
    },
    /// A slot went from above the threshold to at or below it.
    LowStock {
        slot: u32,
        sku: Sku,
        level: u32,
    },
    SlotPriceSet {
        slot: u32,
        price_minor: i64,
    },
    SlotLockSet {
        slot: u32,
        locked: bool,
    },
    CommandIssued {
        command_id: Uuid,
        command: MachineCommand,
        at: Millis,
    },
    CommandResent {
        command_id: Uuid,
        at: Millis,
    },
    /// A command finished by the server (not by an ack): its hold was settled or released.
    CommandClosed {
        command_id: Uuid,
        status: CommandStatus,
        detail: String,
    },
    AppReserved {
        order_id: Uuid,
        slot: u32,
        deadline: Millis,
    },
    AppVendSucceeded {
        order_id: Uuid,
        vend_id: Uuid,
    },
    AppVendFailed {
        order_id: Uuid,
        reason: String,
    },
    AppReleased {
        order_id: Uuid,
        reason: String,
    },
    /// An app hold passed its deadline with no vend.
    AppTimedOut {
        order_id: Uuid,
    },
    /// The order of an app purchase was told its outcome.
    AppNotified {
        order_id: Uuid,
    },
    /// The window of remembered vend ids changed (configuration); the oldest beyond it are
    /// forgotten.
    VendWindowSet {
        window: u32,
    },
}
