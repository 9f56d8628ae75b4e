//! The ledger of a chaos run: one JSON line per write the load driver sent, written as
//! soon as its outcome is known, so a server killed at any moment leaves a complete
//! account. Each line says whether the write was acknowledged (the server answered 2xx or
//! the gRPC `Ack` covered it) or is unknown (an error or no answer: it may or may not have
//! applied). The checker also appends what it resolved (unknown checkouts, adjustments and
//! vends), so later rounds stay exact. [`View::fold`] turns the lines into what the
//! checker needs; it is pure and unit-tested.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

/// A line of `(sku, quantity)`.
pub type Line = (String, u32);

/// The card a checkout or purchase used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Card {
    /// `4242424242424242`: the payment succeeds.
    Good,
    /// `4000000000000002`: declined, the order is cancelled.
    Declined,
}

impl Card {
    pub fn number(self) -> &'static str {
        match self {
            Card::Good => "4242424242424242",
            Card::Declined => "4000000000000002",
        }
    }

    /// The JSON `payment` object of a request with this card.
    pub fn payment(self) -> serde_json::Value {
        serde_json::json!({"card_number": self.number(), "exp_month": 12, "exp_year": 2030, "cvc": "123"})
    }
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// What the run starts from (written once, by `chaos seed`).
    Seed {
        /// `(sku, on_hand)` after seeding.
        skus: Vec<(String, i64)>,
        machine: String,
        secret: String,
        /// `(slot, level)` after seeding.
        slots: Vec<(u32, u32)>,
    },
    /// A load process started (informational).
    Load { seed: u64, at_ms: u64 },
    /// `PUT /v1/carts/{cart}/items/{sku}` with `qty`.
    CartLine {
        cart: Uuid,
        sku: String,
        qty: u32,
        ack: bool,
    },
    /// `POST /v1/carts/{cart}/checkout` with `key`. `order` when acknowledged (201/202);
    /// `lines` is what the cart held, `None` when an unknown write makes it uncertain.
    Checkout {
        cart: Uuid,
        key: String,
        card: Card,
        order: Option<Uuid>,
        lines: Option<Vec<Line>>,
        ack: bool,
    },
    /// `POST /v1/inventory/{sku}/adjustments`; `id` names it for a later resolution.
    Adjust {
        id: Uuid,
        sku: String,
        delta: i64,
        ack: bool,
    },
    /// `POST /v1/machines/{machine}/purchase`; `order` when acknowledged.
    Purchase {
        key: String,
        slot: u32,
        card: Card,
        order: Option<Uuid>,
        ack: bool,
    },
    /// A vend the simulated machine reported; `ack` once a gRPC `Ack` covered its seq.
    Vend {
        vend_id: Uuid,
        slot: u32,
        success: bool,
        order: Option<Uuid>,
        ack: bool,
    },
    /// The checker re-sent an unknown checkout with its key: what it stands for.
    CheckoutSettled { key: String, order: Option<Uuid> },
    /// The checker found that these unknown adjustments of `sku` added `delta` in all.
    AdjustSettled {
        sku: String,
        ids: Vec<Uuid>,
        delta: i64,
    },
    /// The checker found that these unknown successful vends of `slot` sold `units`.
    VendsSettled {
        slot: u32,
        ids: Vec<Uuid>,
        units: u64,
    },
}

impl Record {
    /// Whether this line counts as an acknowledged write.
    pub fn acked(&self) -> bool {
        match self {
            Record::CartLine { ack, .. }
            | Record::Checkout { ack, .. }
            | Record::Adjust { ack, .. }
            | Record::Purchase { ack, .. }
            | Record::Vend { ack, .. } => *ack,
            _ => false,
        }
    }
}

/// An append-only ledger file. Every record is one `write` of a whole line to a file
/// opened for appending, so what was written survives the writer's own exit at any
/// moment; [`Ledger::sync`] makes it durable.
pub struct Ledger {
    file: parking_lot::Mutex<std::fs::File>,
}

impl Ledger {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: parking_lot::Mutex::new(file),
        })
    }

    pub fn append(&self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.lock().write_all(&line)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.lock().sync_data()
    }
}

/// Parses a ledger. A torn last line (no newline) is ignored; any other bad line is an
/// error naming its number.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("ledger line {}: {e}", i + 1)))
        .collect()
}

/// The writes to one cart line, in the order they were sent: `(qty, acked)`.
pub type LineWrites = Vec<(u32, bool)>;

/// A checkout as the checker needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutView {
    pub cart: Uuid,
    pub key: String,
    pub card: Card,
    /// The order: acknowledged, or settled by the checker; `None` while unresolved or
    /// when the checker found there is none.
    pub order: Option<Uuid>,
    pub lines: Option<Vec<Line>>,
    pub ack: bool,
    /// Unknown at the edge and not yet resolved by the checker.
    pub unresolved: bool,
}

/// Inventory adjustments of one SKU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdjustView {
    pub acked: i64,
    /// What earlier checks resolved unknown adjustments to.
    pub settled: i64,
    /// Unknown adjustments not yet resolved: `(id, delta)`.
    pub unknown: Vec<(Uuid, i64)>,
    /// How many adjustments were acknowledged.
    pub acked_count: usize,
}

/// Vends of one machine slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotVends {
    /// Distinct acknowledged successful vends.
    pub acked_success: u64,
    /// Units earlier checks resolved unknown successful vends to.
    pub settled: u64,
    /// Unknown successful vends not yet resolved.
    pub unknown: Vec<Uuid>,
}

/// Everything the ledger says, folded.
#[derive(Debug, Default)]
pub struct View {
    /// `(sku, on_hand)` at the seed.
    pub skus: Vec<(String, i64)>,
    pub machine: String,
    pub secret: String,
    /// `(slot, level)` at the seed.
    pub slots: Vec<(u32, u32)>,
    pub seeded: bool,
    pub carts: BTreeMap<Uuid, BTreeMap<String, LineWrites>>,
    pub checkouts: Vec<CheckoutView>,
    pub adjustments: BTreeMap<String, AdjustView>,
    /// Acknowledged vending purchases.
    pub purchases: Vec<Uuid>,
    pub vends: BTreeMap<u32, SlotVends>,
    /// Acknowledged successful app vends: `order -> vend_id`.
    pub app_vends: BTreeMap<Uuid, Uuid>,
    /// Every vend id the machine reported, acknowledged or not.
    pub vend_ids: std::collections::BTreeSet<Uuid>,
    /// Acknowledged writes of every kind.
    pub acked_writes: u64,
}

impl View {
    /// Folds the records in order. Errors on what no honest ledger holds (a vend id
    /// acknowledged twice, a second seed).
    pub fn fold(records: &[Record]) -> Result<View, String> {
        let mut v = View::default();
        let mut acked_vends = std::collections::BTreeSet::new();
        for r in records {
            if r.acked() {
                v.acked_writes += 1;
            }
            match r {
                Record::Seed {
                    skus,
                    machine,
                    secret,
                    slots,
                } => {
                    if v.seeded {
                        return Err("the ledger holds two seeds".into());
                    }
                    v.seeded = true;
                    v.skus.clone_from(skus);
                    v.machine.clone_from(machine);
                    v.secret.clone_from(secret);
                    v.slots.clone_from(slots);
                    for (sku, _) in skus {
                        v.adjustments.entry(sku.clone()).or_default();
                    }
                    for (slot, _) in slots {
                        v.vends.entry(*slot).or_default();
                    }
                }
                Record::Load { .. } => {}
                Record::CartLine {
                    cart,
                    sku,
                    qty,
                    ack,
                } => v
                    .carts
                    .entry(*cart)
                    .or_default()
                    .entry(sku.clone())
                    .or_default()
                    .push((*qty, *ack)),
                Record::Checkout {
                    cart,
                    key,
                    card,
                    order,
                    lines,
                    ack,
                } => {
                    v.carts.entry(*cart).or_default();
                    v.checkouts.push(CheckoutView {
                        cart: *cart,
                        key: key.clone(),
                        card: *card,
                        order: *order,
                        lines: lines.clone(),
                        ack: *ack,
                        unresolved: !*ack,
                    });
                }
                Record::CheckoutSettled { key, order } => {
                    let c = v
                        .checkouts
                        .iter_mut()
                        .find(|c| &c.key == key && c.unresolved)
                        .ok_or_else(|| format!("settled checkout {key} is not unresolved"))?;
                    c.unresolved = false;
                    c.order = *order;
                }
                Record::Adjust {
                    id,
                    sku,
                    delta,
                    ack,
                } => {
                    let a = v.adjustments.entry(sku.clone()).or_default();
                    if *ack {
                        a.acked += delta;
                        a.acked_count += 1;
                    } else {
                        a.unknown.push((*id, *delta));
                    }
                }
                Record::AdjustSettled { sku, ids, delta } => {
                    let a = v.adjustments.entry(sku.clone()).or_default();
                    a.unknown.retain(|(id, _)| !ids.contains(id));
                    a.settled += delta;
                }
                Record::Purchase { order, ack, .. } => {
                    if let (true, Some(o)) = (*ack, order) {
                        v.purchases.push(*o);
                    }
                }
                Record::Vend {
                    vend_id,
                    slot,
                    success,
                    order,
                    ack,
                } => {
                    v.vend_ids.insert(*vend_id);
                    if !*success {
                        continue;
                    }
                    let s = v.vends.entry(*slot).or_default();
                    if *ack {
                        if !acked_vends.insert(*vend_id) {
                            return Err(format!("vend {vend_id} acknowledged twice"));
                        }
                        s.acked_success += 1;
                        if let Some(o) = order {
                            v.app_vends.insert(*o, *vend_id);
                        }
                    } else {
                        s.unknown.push(*vend_id);
                    }
                }
                Record::VendsSettled { slot, ids, units } => {
                    let s = v.vends.entry(*slot).or_default();
                    s.unknown.retain(|id| !ids.contains(id));
                    s.settled += units;
                }
            }
        }
        Ok(v)
    }

    /// Orders the checker must find: acknowledged or settled checkouts with an order.
    pub fn orders(&self) -> impl Iterator<Item = &CheckoutView> {
        self.checkouts.iter().filter(|c| c.order.is_some())
    }

    /// Checkouts still to resolve.
    pub fn unresolved(&self) -> impl Iterator<Item = &CheckoutView> {
        self.checkouts.iter().filter(|c| c.unresolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn seed() -> Record {
        Record::Seed {
            skus: vec![("A".into(), 100)],
            machine: "m".into(),
            secret: "s".into(),
            slots: vec![(1, 50)],
        }
    }

    #[test]
    fn records_round_trip_through_lines_and_a_torn_tail_is_ignored() {
        let rs = vec![
            seed(),
            Record::CartLine {
                cart: u(1),
                sku: "A".into(),
                qty: 2,
                ack: true,
            },
            Record::Checkout {
                cart: u(1),
                key: "k".into(),
                card: Card::Declined,
                order: Some(u(9)),
                lines: Some(vec![("A".into(), 2)]),
                ack: true,
            },
        ];
        let mut text: String = rs
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        text.push_str(r#"{"t":"cart_li"#);
        assert_eq!(parse(&text).unwrap(), rs);
        assert!(parse("{\"t\":\"nope\"}\n").unwrap_err().contains("line 1"));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn the_fold_counts_acks_and_tracks_what_is_unresolved() {
        let rs = vec![
            seed(),
            Record::Adjust {
                id: u(1),
                sku: "A".into(),
                delta: 5,
                ack: true,
            },
            Record::Adjust {
                id: u(2),
                sku: "A".into(),
                delta: 7,
                ack: false,
            },
            Record::Adjust {
                id: u(3),
                sku: "A".into(),
                delta: -2,
                ack: false,
            },
            Record::AdjustSettled {
                sku: "A".into(),
                ids: vec![u(2)],
                delta: 7,
            },
            Record::Checkout {
                cart: u(4),
                key: "k1".into(),
                card: Card::Good,
                order: None,
                lines: None,
                ack: false,
            },
            Record::Vend {
                vend_id: u(5),
                slot: 1,
                success: true,
                order: Some(u(6)),
                ack: true,
            },
            Record::Vend {
                vend_id: u(7),
                slot: 1,
                success: true,
                order: None,
                ack: false,
            },
            Record::Vend {
                vend_id: u(8),
                slot: 1,
                success: false,
                order: None,
                ack: true,
            },
        ];
        let v = View::fold(&rs).unwrap();
        assert_eq!(v.acked_writes, 3);
        let a = &v.adjustments["A"];
        assert_eq!(
            (a.acked, a.settled, a.unknown.clone()),
            (5, 7, vec![(u(3), -2)])
        );
        assert_eq!(v.unresolved().count(), 1);
        assert_eq!(v.orders().count(), 0);
        let s = &v.vends[&1];
        assert_eq!((s.acked_success, s.unknown.clone()), (1, vec![u(7)]));
        assert_eq!(v.app_vends[&u(6)], u(5));
        assert_eq!(v.vend_ids.len(), 3);

        let mut settled = rs;
        settled.push(Record::CheckoutSettled {
            key: "k1".into(),
            order: Some(u(10)),
        });
        let v = View::fold(&settled).unwrap();
        assert_eq!(v.unresolved().count(), 0);
        assert_eq!(v.orders().next().unwrap().order, Some(u(10)));
    }

    #[test]
    fn a_dishonest_ledger_is_refused() {
        let twice = Record::Vend {
            vend_id: u(1),
            slot: 1,
            success: true,
            order: None,
            ack: true,
        };
        assert!(View::fold(&[seed(), twice.clone(), twice]).is_err());
        assert!(View::fold(&[seed(), seed()]).is_err());
        let stray = Record::CheckoutSettled {
            key: "x".into(),
            order: None,
        };
        assert!(View::fold(&[seed(), stray]).is_err());
    }
}
