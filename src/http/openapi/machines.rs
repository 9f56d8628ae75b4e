//! The vending machine routes in the OpenAPI document: their schemas (mirroring
//! `crate::http::machines::machine_view`, `command_view` and the request bodies) and one
//! `#[utoipa::path]` per route.
#![allow(dead_code)]

use super::schemas::{Card, ErrorBody, Order};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// `PUT /v1/machines/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineInfo {
    /// 1 to 100 characters.
    #[schema(example = "Lobby, building 2", min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 200 characters.
    #[schema(example = "Main St 1, Springfield", max_length = 200)]
    pub location: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatState {
    Idle,
    Vending,
    Service,
    Fault,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmSeverity {
    Info,
    Warning,
    Critical,
}

/// An alarm the machine raised and has not cleared.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineAlarm {
    pub code: String,
    pub severity: AlarmSeverity,
    #[schema(format = DateTime)]
    pub raised_at: String,
}

/// One slot of the planogram, as the machine holds it now.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotSales {
    pub slot: u32,
    pub units: u64,
}

/// Sales counters: successful vends only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineSales {
    pub units: u64,
    pub value_minor: i64,
    pub failed_vends: u64,
    pub per_slot: Vec<SlotSales>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandType {
    SetPrice,
    LockSlot,
    UnlockSlot,
    Dispense,
    RequestAudit,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Sent (or queued for the next session); re-sent with the same id until acked.
    Sent,
    Accepted,
    Busy,
    Done,
    Rejected,
    Cancelled,
}

/// A command for a machine and its delivery status.
#[derive(Deserialize, ToSchema)]
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

/// A unit held for an app purchase until the machine vends it or the deadline passes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppHold {
    pub order_id: Uuid,
    pub slot: u32,
    #[schema(format = DateTime)]
    pub deadline: String,
}

/// A vending machine as operators see it. The secret hash is never shown.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

/// A machine with its secret: returned once, on registration or rotation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineWithSecret {
    #[serde(flatten)]
    pub machine: Machine,
    /// The machine's secret for `Hello`; only its hash is stored, so it is shown only now.
    pub secret: String,
}

/// `GET /v1/machines`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineList {
    pub items: Vec<Machine>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default)]
    pub missing_partitions: Option<Vec<u32>>,
}

/// One slot of a planogram as set by an operator.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Planogram {
    #[schema(max_items = 1000)]
    pub slots: Vec<PlanogramSlot>,
}

/// `POST /v1/machines/{id}/commands`: `{"type": ...}` with the command's fields.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandRequest {
    SetPrice {
        slot: u32,
        #[schema(minimum = 0, maximum = 1_000_000_000)]
        price_minor: i64,
    },
    LockSlot {
        slot: u32,
        reason: Option<String>,
    },
    UnlockSlot {
        slot: u32,
    },
    RequestAudit,
}

/// A slot as shoppers see it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotOffer {
    pub slot: u32,
    pub sku: String,
    pub price_minor: i64,
    /// Whether a unit can be bought now (not locked, not all held).
    pub available: bool,
}

/// `POST /v1/machines/{id}/purchase`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub slot: u32,
    /// Where to send the receipt; a signed-in user's own address if absent.
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    pub payment: Card,
}

const STAFF_401: &str = "`unauthorized`, `invalid_token` or `token_expired`";
const STAFF_403: &str = "`forbidden`: not an operator or admin";
/// The `partial` parameter of every cluster-wide listing.
pub(super) const PARTIAL: &str =
    "true: answer 200 with what could be read and name the partitions \
    that could not in `missing_partitions`; otherwise such partitions make the listing 503 \
    `partition_unavailable` whose error names them in `partitions`";

/// Registers a machine (201, with its secret, once) or updates its name and location (200).
#[utoipa::path(put, path = "/v1/machines/{id}", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the machine")),
    request_body = MachineInfo,
    responses(
        (status = 200, description = "the machine, updated", body = Machine),
        (status = 201, description = "the machine, registered, with its secret", body = MachineWithSecret),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub fn put_machine() {}

/// Issues a new secret for the machine; the old one stops working for new sessions.
#[utoipa::path(post, path = "/v1/machines/{id}/secret", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the machine with its new secret", body = MachineWithSecret),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn rotate_machine_secret() {}

/// Registered machines of the whole cluster (at most 1000 read a page), in id order,
/// filtered by connectivity, alarms and low stock.
#[utoipa::path(get, path = "/v1/machines", tag = "machines",
    security(("bearer" = [])),
    params(
        ("online" = Option<bool>, Query, description = "only machines online (true) or offline (false)"),
        ("alarm" = Option<bool>, Query, description = "only machines with (true) or without (false) open alarms"),
        ("low_stock" = Option<bool>, Query, description = "only machines with (true) or without (false) low-stock slots"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = PARTIAL),
    ),
    responses(
        (status = 200, description = "the machines", body = MachineList),
        (status = 400, description = "`validation`: a filter that is not true or false", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub fn list_machines() {}

/// A machine's full state.
#[utoipa::path(get, path = "/v1/machines/{id}", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the machine", body = Machine),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_machine() {}

/// Replaces the planogram.
#[utoipa::path(put, path = "/v1/machines/{id}/planogram", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    request_body = Planogram,
    responses(
        (status = 200, description = "the machine", body = Machine),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: a removed slot holds units for app orders", body = ErrorBody),
    ))]
pub fn put_planogram() {}

/// Sends a command to the machine; it is re-sent with the same id until acked.
#[utoipa::path(post, path = "/v1/machines/{id}/commands", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    request_body = CommandRequest,
    responses(
        (status = 202, description = "the command and its delivery status", body = MachineCommand),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such machine or slot", body = ErrorBody),
        (status = 409, description = "`conflict`: too many commands pending", body = ErrorBody),
    ))]
pub fn issue_machine_command() {}

/// A command's delivery status.
#[utoipa::path(get, path = "/v1/machines/{id}/commands/{command_id}", tag = "machines",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "the machine"),
        ("command_id" = Uuid, Path, description = "the command"),
    ),
    responses(
        (status = 200, description = "the command", body = MachineCommand),
        (status = 400, description = "`validation`: a bad id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_machine_command() {}

/// The machine's slots for shoppers: SKU, price and availability. Public.
#[utoipa::path(get, path = "/v1/machines/{id}/slots", tag = "machines",
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the slots", body = Vec<SlotOffer>),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub fn get_machine_slots() {}

/// Buys one unit from a slot: an order of kind `vending`. The machine dispenses it; the
/// payment is captured only when the machine reports the vend, and voided otherwise.
#[utoipa::path(post, path = "/v1/machines/{id}/purchase", tag = "machines",
    security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "the machine"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; the same key with another body is 409"),
    ),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "the order, settled (fulfilled or cancelled)", body = Order),
        (status = 202, description = "the order, while the machine dispenses", body = Order),
        (status = 400, description = "`validation` (body, card, or a missing or bad `Idempotency-Key`) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized` (guest purchases are off), `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such machine or slot", body = ErrorBody),
        (status = 409, description = "`machine_offline` (nothing charged), `slot_locked`, `out_of_stock`, `idempotency_key_reused` or `idempotency_key_expired` (reused past its last generation)", body = ErrorBody),
    ))]
pub fn purchase_from_machine() {}
