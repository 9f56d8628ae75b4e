//! Stock locations and transfers: the bodies of `/v1/locations*` and
//! `/v1/inventory/transfers*`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::location::{Location, LocationKind};
use crate::domain::stock_location::{Transfer, TransferFailure, TransferStatus};

wire_enum! {
    /// What a location is: stores and warehouses sell online (a checkout draws from
    /// them); a truck's and a machine's units do not.
    LocationKindView from LocationKind { Store, Warehouse, Truck, Machine }
}

impl From<LocationKindView> for LocationKind {
    fn from(k: LocationKindView) -> Self {
        match k {
            LocationKindView::Store => Self::Store,
            LocationKindView::Warehouse => Self::Warehouse,
            LocationKindView::Truck => Self::Truck,
            LocationKindView::Machine => Self::Machine,
        }
    }
}

/// `PUT /v1/locations/{id}`: creates or replaces a location.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PutLocation {
    pub kind: LocationKindView,
    /// 1 to 100 characters.
    #[schema(example = "Riverside store")]
    pub name: String,
    /// Lower numbers are drawn first by a checkout (then by id); default 100.
    #[serde(default = "default_priority")]
    #[schema(example = 1)]
    pub priority: u32,
    /// A closed location is not drawn from and receives no transfer; default true.
    #[serde(default = "default_open")]
    pub open: bool,
}

fn default_priority() -> u32 {
    100
}

fn default_open() -> bool {
    true
}

/// A location.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LocationView {
    #[schema(example = "riverside")]
    pub id: String,
    pub kind: LocationKindView,
    pub name: String,
    pub priority: u32,
    pub open: bool,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl LocationView {
    pub fn new(id: &str, l: &Location) -> Self {
        Self {
            id: id.to_owned(),
            kind: l.kind.into(),
            name: l.name.clone(),
            priority: l.priority,
            open: l.open,
            updated_at: rfc3339(l.updated_at),
        }
    }
}

/// Every location (`main` included), by id, and the order a checkout draws from.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LocationList {
    pub items: Vec<LocationView>,
    /// The open stores and warehouses, by priority then id.
    pub draw_order: Vec<String>,
}

/// `POST /v1/inventory/transfers`: moves units of a SKU between locations.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateTransfer {
    #[schema(example = "MUG-BLUE", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(example = "main", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub from: String,
    #[schema(example = "riverside", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub to: String,
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 5)]
    pub quantity: i64,
}

wire_enum! {
    /// `in_transit`: held at the source; `received`: on hand at the destination;
    /// `failed`: released back to the source.
    TransferStatusView from TransferStatus { InTransit, Received, Failed }
}

wire_enum! {
    /// Why a transfer failed.
    TransferFailureView from TransferFailure { DestinationClosed, Cancelled }
}

/// A transfer and where it stands.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct TransferView {
    pub id: Uuid,
    pub sku: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    pub status: TransferStatusView,
    /// Set when it failed; `null` otherwise.
    #[schema(required = true)]
    pub failure: Option<TransferFailureView>,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// `null` while in transit.
    #[schema(required = true, format = DateTime)]
    pub finished_at: Option<String>,
}

impl TransferView {
    pub fn new(id: Uuid, sku: &str, t: &Transfer) -> Self {
        Self {
            id,
            sku: sku.to_owned(),
            from: t.from.clone(),
            to: t.to.clone(),
            quantity: t.quantity,
            status: t.status.into(),
            failure: t.failure.map(Into::into),
            started_at: rfc3339(t.started_at),
            finished_at: t.finished_at.map(rfc3339),
        }
    }
}

/// `POST /v1/machines/{id}/restock-visits`: what a driver put into a machine from a truck.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RestockVisit {
    /// The truck location the units come from (a location of kind `truck`).
    #[schema(example = "van-1", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub truck: String,
    /// 1 to 64 slots, each at most once.
    pub slots: Vec<RestockSlot>,
}

/// Units put into one slot.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RestockSlot {
    pub slot: u32,
    /// At least 1; the slot's level plus this may not exceed its capacity.
    #[schema(minimum = 1, example = 6)]
    pub quantity: u32,
}

/// A restock visit as recorded: per SKU, the units moved from the truck to the machine's
/// location, and the machine's own count against the ledger's before the visit.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RestockVisitView {
    pub id: Uuid,
    pub machine_id: String,
    pub truck: String,
    /// The machine's stock location (its id).
    pub location: String,
    pub lines: Vec<RestockLine>,
}

/// One SKU of a restock visit.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RestockLine {
    pub sku: String,
    pub slots: Vec<u32>,
    pub quantity: i64,
    /// The units of the SKU in the machine's slots as the machine last reported them.
    pub machine_reported: i64,
    /// The units the ledger held at the machine's location before the visit.
    pub ledger_before: i64,
    /// `machine_reported - ledger_before`: units the ledger did not know of (positive)
    /// or that the machine no longer has (negative).
    pub difference: i64,
}
