//! The public JSON shapes of entities. Internal events and states are not the contract;
//! these views are.

use crate::domain::cart::{CartState, CartStatus};
use crate::domain::order::OrderState;
use crate::domain::product::ProductState;
use crate::domain::stock::StockState;
use crate::domain::{Millis, Sku};
use serde_json::{json, Value};
use uuid::Uuid;

pub fn product(sku: &Sku, p: &ProductState, currency: &str) -> Value {
    let s = p.spec.as_ref();
    json!({
        "sku": sku,
        "name": s.map(|s| s.name.as_str()),
        "description": s.and_then(|s| s.description.as_deref()),
        "price_minor": s.map(|s| s.price_minor),
        "currency": currency,
        "category": s.map(|s| s.category.as_str()),
        "tags": s.map(|s| s.tags.clone()).unwrap_or_default(),
        "archived": p.archived,
    })
}

pub fn inventory(sku: &Sku, s: &StockState) -> Value {
    json!({"sku": sku, "on_hand": s.on_hand, "reserved": s.reserved, "available": s.available()})
}

pub fn cart(id: Uuid, c: &CartState, currency: &str) -> Value {
    let items: Vec<Value> = c
        .lines
        .iter()
        .map(|(sku, l)| {
            json!({"sku": sku, "quantity": l.quantity, "unit_price_minor": l.unit_price_minor, "line_total_minor": l.total_minor()})
        })
        .collect();
    json!({
        "id": id,
        "status": match c.status { CartStatus::Open => "open", CartStatus::CheckedOut => "checked_out" },
        "order_id": c.order_id,
        "items": items,
        "total_minor": c.total_minor(),
        "currency": currency,
        "version": c.version,
    })
}

pub fn order(id: Uuid, o: &OrderState) -> Value {
    let p = o.placement.as_ref();
    let items: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku,
                "quantity": l.quantity,
                "unit_price_minor": l.unit_price_minor,
                "line_total_minor": l.unit_price_minor * i64::from(l.quantity),
            })
        })
        .collect();
    let vending = o.vending.as_ref().map(|v| {
        json!({
            "machine_id": v.machine_id,
            "slot": v.slot,
            "deadline": rfc3339(v.deadline),
            "status": crate::domain::order::vend_status(o),
            "vend_id": v.vend_id,
        })
    });
    json!({
        "id": id,
        "kind": o.kind(),
        "cart_id": p.filter(|_| o.vending.is_none()).map(|p| p.cart_id),
        "vending": vending,
        "status": o.status.as_str(),
        "items": items,
        "total_minor": o.total_minor(),
        "currency": p.map(|p| p.currency.as_str()),
        "email": p.map(|p| p.email.as_str()),
        "payment": {"status": o.payment.status.as_str(), "last4": o.payment.last4},
        "failure": o.failure.as_ref().map(|f| json!({"code": f.code.as_str(), "message": f.message})),
        "history": o.history.iter().map(|(s, at)| json!({"status": s.as_str(), "at": rfc3339(*at)})).collect::<Vec<_>>(),
    })
}

/// Formats Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-22T07:13:22.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// The current year and month (UTC), for card expiry checks.
pub fn year_month(ms: Millis) -> (u32, u32) {
    let s = rfc3339(ms);
    (
        s[0..4].parse().unwrap_or(1970),
        s[5..7].parse().unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_331_602_123), "2026-11-22T07:13:22.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(year_month(1_795_331_602_123), (2026, 11));
    }
}
