//! `emporium chaos seed`: what every round starts from, made once through the API with
//! the operator token: the SKUs with their stock (the load generator's setup) and a
//! registered vending machine with a deep planogram. The result is the ledger's first
//! line.

use super::driver::REQUEST_TIMEOUT;
use super::ledger::{Ledger, Record};
use super::ChaosError;
use crate::loadgen::client::{Conn, Reply};
use crate::loadgen::mix::Mix;
use crate::loadgen::setup;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use std::path::Path;

/// SKUs the shoppers buy.
pub const PRODUCTS: usize = 4;
/// Units of each SKU at the start.
pub const STOCK: i64 = 100_000;
/// The machine's id.
pub const MACHINE: &str = "chaos-vm-1";
/// Slots of the machine, each this deep.
pub const SLOTS: u32 = 4;
pub const SLOT_LEVEL: u32 = 5_000;
/// A second stock location the operator adjusts at: a store drawn before `main` (same
/// priority, lower id), so checkouts split lines across the two.
pub const STORE: &str = "chaos-store";

async fn send_json(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: &Value,
) -> Result<Value, ChaosError> {
    match conn
        .send(&method, path, Some(Bytes::from(body.to_string())))
        .await
    {
        Reply::Status(s, b) if (200..300).contains(&s) => {
            serde_json::from_slice(&b).map_err(|e| ChaosError::Setup(format!("{path}: {e}")))
        }
        Reply::Status(s, b) => Err(ChaosError::Setup(format!(
            "{path}: {}",
            Reply::error_key(s, &b)
        ))),
        Reply::Timeout => Err(ChaosError::Setup(format!("{path}: timed out"))),
        Reply::Io(e) => Err(ChaosError::Setup(format!("{path}: {e}"))),
    }
}

/// Seeds the server at `addr` and writes the seed record to a new ledger.
pub async fn seed(addr: &str, token: &str, ledger: &Path, seed: u64) -> Result<String, ChaosError> {
    if ledger.exists()
        && std::fs::metadata(ledger)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    {
        return Err(ChaosError::Setup(format!(
            "{} exists already: seed once per data directory",
            ledger.display()
        )));
    }
    let catalog = setup::prepare(setup::SetupArgs {
        addr,
        admin_token: token,
        mix: Mix::Checkout,
        seed,
        products: PRODUCTS,
        stock: STOCK,
        carts: 0,
        timeout: REQUEST_TIMEOUT,
    })
    .await
    .map_err(ChaosError::Setup)?;
    let mut admin = Conn::new(addr, Some(token.to_owned()), REQUEST_TIMEOUT);
    send_json(
        &mut admin,
        Method::PUT,
        &format!("/v1/locations/{STORE}"),
        &json!({"kind": "store", "name": "Chaos store", "priority": 0}),
    )
    .await?;
    let path = format!("/v1/machines/{MACHINE}");
    let reg = send_json(
        &mut admin,
        Method::PUT,
        &path,
        &json!({"name": "Chaos machine", "location": "chaos-kill9"}),
    )
    .await?;
    let secret = match reg["secret"].as_str() {
        Some(s) => s.to_owned(),
        None => send_json(
            &mut admin,
            Method::POST,
            &format!("{path}/secret"),
            &json!({}),
        )
        .await?["secret"]
            .as_str()
            .ok_or_else(|| ChaosError::Setup("no secret in the rotation answer".into()))?
            .to_owned(),
    };
    let slots: Vec<Value> = (1..=SLOTS)
        .map(|n| json!({"slot": n, "sku": format!("CHAOS-VM-{n}"), "price_minor": 100 + 25 * n, "capacity": SLOT_LEVEL, "level": SLOT_LEVEL}))
        .collect();
    let machine = send_json(
        &mut admin,
        Method::PUT,
        &format!("{path}/planogram"),
        &json!({ "slots": slots }),
    )
    .await?;
    let levels: Vec<(u32, u32)> = machine["slots"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s["slot"].as_u64()? as u32, s["level"].as_u64()? as u32)))
                .collect()
        })
        .unwrap_or_default();
    if levels.len() != SLOTS as usize {
        return Err(ChaosError::Setup(format!(
            "the planogram answered {machine}"
        )));
    }
    let skus: Vec<(String, i64)> = catalog.skus.into_iter().zip(catalog.stock).collect();
    let record = Record::Seed {
        skus: skus.clone(),
        machine: MACHINE.to_owned(),
        secret,
        slots: levels,
    };
    let l = Ledger::open(ledger)?;
    l.append(&record)?;
    l.sync()?;
    Ok(format!(
        "chaos seed: {} SKUs of {} units, machine {MACHINE} with {SLOTS} slots of {SLOT_LEVEL}",
        skus.len(),
        STOCK
    ))
}
