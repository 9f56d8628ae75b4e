//! The machine-stock projection: a vending machine's sales leave the SKU's units at the
//! machine's location (the location named by the machine's id). On every `machine.vend`
//! it reads how many units of that SKU the machine has sold in all (its per-SKU sales
//! counter) and tells the SKU that total; the SKU takes off only what is beyond the total
//! it already took, so a repeated, reordered or replayed event (a projection reset)
//! changes nothing twice. The machine stays the only writer of its sales and the SKU of
//! its units.

use futures::future::BoxFuture;

use super::handler::{EventHandler, HandlerError};
use super::public::{EventType, PublicEvent};
use crate::domain::machine::Machine;
use crate::domain::stock::{Stock, StockCommand};
use crate::domain::Sku;
use crate::router::Router;
use crate::store::partition_store::Record;

pub struct MachineStock {
    pub router: Router,
}

fn unavailable(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Unavailable(format!("machine stock: {e}"))
}

/// The stock location of machine `machine_id`: its id.
pub fn machine_location(machine_id: &str) -> String {
    machine_id.to_owned()
}

impl EventHandler for MachineStock {
    fn name(&self) -> &'static str {
        "machine_stock"
    }

    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            if ev.r#type != EventType::MachineVend {
                return Ok(Vec::new());
            }
            let Some(machine) = ev.data["machine_id"].as_str() else {
                return Ok(Vec::new());
            };
            let state = self
                .router
                .get::<Machine>(machine)
                .await
                .map_err(unavailable)?;
            // The machine counts a sale under its slot's SKU; the event names the SKU the
            // machine reported. Both are told (usually they are one).
            let mut skus: Vec<Sku> = ev.data["sku"]
                .as_str()
                .and_then(|s| Sku::parse(s).ok())
                .into_iter()
                .collect();
            let slot = ev.data["slot"].as_u64().and_then(|n| u32::try_from(n).ok());
            if let Some(sl) = slot.and_then(|n| state.planogram.get(&n)) {
                if !skus.contains(&sl.sku) {
                    skus.push(sl.sku.clone());
                }
            }
            for sku in skus {
                let Some(total) = state.sales.per_sku.get(&sku).copied() else {
                    continue;
                };
                let cmd = StockCommand::MachineSales {
                    location: machine_location(machine),
                    total,
                };
                self.router
                    .command::<Stock>(sku.as_str(), cmd)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(Vec::new())
        })
    }
}
