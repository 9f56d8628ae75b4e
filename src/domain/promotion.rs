//! The promotion book: one entity (id [`BOOK_ID`]) holding every promotion an operator
//! defined: its name and campaign, its conditions, its action, its validity window, its
//! optional coupon code and its limits. How many times a promotion was redeemed is not
//! here but in its own ledger ([`super::redemption`]), so checkouts redeeming one
//! promotion never queue behind edits of another.
//!
//! One entity rather than one per promotion: a cart is priced against the whole set (a
//! node keeps a recent copy, and a checkout reads it fresh), and the set is small and
//! bounded ([`MAX_PROMOTIONS`]). Pure: the caller passes the times.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};

/// The one id of the promotion book.
pub const BOOK_ID: &str = "promotions";
/// Most promotions a shop may hold, ended ones included (bounds the book's record).
pub const MAX_PROMOTIONS: usize = 200;
/// Most SKUs a condition names.
pub const MAX_CONDITION_SKUS: usize = 20;
/// Most categories a condition names.
pub const MAX_CONDITION_CATEGORIES: usize = 10;

/// What a promotion takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// A percentage (1 to 100) of each line the conditions select.
    PercentOff { percent: u32 },
    /// A fixed amount off the selected lines, shared between them by value.
    AmountOff { amount_minor: i64 },
    /// For every `buy_quantity` units of `buy_sku`, `get_quantity` units of `get_sku`
    /// are free (when the cart holds them).
    BuyXGetY {
        buy_sku: Sku,
        buy_quantity: u32,
        get_sku: Sku,
        get_quantity: u32,
    },
    /// Up to `quantity` units of `sku` in the cart are free.
    FreeItem { sku: Sku, quantity: u32 },
}

/// When a promotion applies. Empty lists select every line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// The cart's subtotal (before any discount) must reach this.
    pub min_subtotal_minor: i64,
    /// The cart must hold one of these; percentage and amount actions apply to them.
    pub skus: Vec<Sku>,
    /// The cart must hold a product of one of these categories; likewise.
    pub categories: Vec<String>,
}

impl Conditions {
    /// Whether a line of `sku` in `category` is one the conditions select.
    pub fn selects(&self, sku: &Sku, category: Option<&str>) -> bool {
        if self.skus.is_empty() && self.categories.is_empty() {
            return true;
        }
        self.skus.contains(sku) || category.is_some_and(|c| self.categories.iter().any(|x| x == c))
    }
}

/// A promotion as an operator defines it (validated by [`PromotionDef::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionDef {
    pub name: String,
    /// The campaign it belongs to, for reports.
    pub campaign: Option<String>,
    pub action: Action,
    pub conditions: Conditions,
    /// The coupon code (upper case); none: it applies by itself to every cart it fits.
    pub code: Option<String>,
    /// Most orders that may redeem it in total.
    pub usage_limit: Option<u32>,
    /// Most orders one customer may redeem it in.
    pub per_customer_limit: Option<u32>,
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    /// Whether it applies together with other promotions.
    pub combines: bool,
}

/// A coupon code as a shopper types it, in its stored form (trimmed, upper case), or why
/// it is not one: 1 to 32 of `A-Z 0-9 _ -`.
pub fn normalize_code(code: &str) -> Result<String, String> {
    let c = code.trim().to_ascii_uppercase();
    let ok = !c.is_empty()
        && c.len() <= 32
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(c)
    } else {
        Err("a coupon code is 1 to 32 letters, digits, '_' or '-'".into())
    }
}

/// A promotion id, or why it is not one: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn check_id(id: &str) -> Result<(), String> {
    Sku::parse(id)
        .map(|_| ())
        .map_err(|_| "a promotion id is 1 to 64 letters, digits, '.', '_' or '-'".into())
}

fn text(what: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.trim().chars().count();
    if n == 0 || n > max {
        return Err(format!("{what} must be 1 to {max} characters"));
    }
    Ok(())
}

impl PromotionDef {
    /// Checks every field and says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        use super::product::MAX_PRICE_MINOR;
        text("name", &self.name, 200)?;
        if let Some(c) = &self.campaign {
            text("campaign", c, 64)?;
        }
        match &self.action {
            Action::PercentOff { percent } if !(1..=100).contains(percent) => {
                return Err("action.percent must be between 1 and 100".into())
            }
            Action::AmountOff { amount_minor } if !(1..=MAX_PRICE_MINOR).contains(amount_minor) => {
                return Err(format!(
                    "action.amount_minor must be between 1 and {MAX_PRICE_MINOR}"
                ))
            }
            Action::BuyXGetY {
                buy_quantity,
                get_quantity,
                ..
            } if !(1..=100).contains(buy_quantity) || !(1..=100).contains(get_quantity) => {
                return Err("action.buy_quantity and get_quantity must be 1 to 100".into())
            }
            Action::FreeItem { quantity, .. } if !(1..=100).contains(quantity) => {
                return Err("action.quantity must be 1 to 100".into())
            }
            _ => {}
        }
        let c = &self.conditions;
        if !(0..=MAX_PRICE_MINOR).contains(&c.min_subtotal_minor) {
            return Err(format!(
                "conditions.min_subtotal_minor must be between 0 and {MAX_PRICE_MINOR}"
            ));
        }
        if c.skus.len() > MAX_CONDITION_SKUS {
            return Err(format!(
                "conditions.skus names at most {MAX_CONDITION_SKUS}"
            ));
        }
        if c.categories.len() > MAX_CONDITION_CATEGORIES {
            return Err(format!(
                "conditions.categories names at most {MAX_CONDITION_CATEGORIES}"
            ));
        }
        for cat in &c.categories {
            text("a category", cat, 64)?;
        }
        if let Some(code) = &self.code {
            if normalize_code(code)? != *code {
                return Err("code must be stored upper case and trimmed".into());
            }
        }
        if self.usage_limit == Some(0) || self.per_customer_limit == Some(0) {
            return Err("a limit, when given, is at least 1".into());
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            if e <= s {
                return Err("ends_at must be after starts_at".into());
            }
        }
        Ok(())
    }
}

/// Why a promotion does not apply at some moment (its window, or an operator ended it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotStarted,
    Open,
    Over,
}

/// One promotion in the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: String,
    pub def: PromotionDef,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When an operator ended it (`DELETE`); it never applies again unless redefined.
    pub ended_at: Option<Millis>,
}

impl Promotion {
    pub fn window(&self, now: Millis) -> Window {
        if self.ended_at.is_some_and(|e| e <= now) || self.def.ends_at.is_some_and(|e| e <= now) {
            Window::Over
        } else if self.def.starts_at.is_some_and(|s| now < s) {
            Window::NotStarted
        } else {
            Window::Open
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionsState {
    pub promotions: BTreeMap<String, Promotion>,
}

impl PromotionsState {
    /// The live (not ended) promotion whose code is `code`: a code belongs to one.
    pub fn live_by_code(&self, code: &str) -> Option<&Promotion> {
        self.promotions
            .values()
            .find(|p| p.ended_at.is_none() && p.def.code.as_deref() == Some(code))
    }

    /// The promotion a coupon code names: the live one, else the one that held it last
    /// (so a cart shows an ended coupon as expired, not as unknown).
    pub fn by_code(&self, code: &str) -> Option<&Promotion> {
        self.live_by_code(code).or_else(|| {
            self.promotions
                .values()
                .filter(|p| p.def.code.as_deref() == Some(code))
                .max_by_key(|p| p.updated_at)
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PromotionCommand {
    /// Creates the promotion or replaces its definition (a redefined ended one is live
    /// again).
    Put {
        id: String,
        def: Box<PromotionDef>,
        now: Millis,
    },
    /// Ends it now; a no-op for an ended one.
    End { id: String, now: Millis },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionEvent {
    Defined {
        id: String,
        def: Box<PromotionDef>,
        at: Millis,
    },
    Ended {
        id: String,
        at: Millis,
    },
}

pub struct Promotions;

impl Aggregate for Promotions {
    const KIND: EntityKind = EntityKind::Promotion;
    type State = PromotionsState;
    type Command = PromotionCommand;
    type Event = PromotionEvent;

    fn decide(
        s: &PromotionsState,
        cmd: &PromotionCommand,
    ) -> Result<Vec<PromotionEvent>, Rejection> {
        match cmd {
            PromotionCommand::Put { id, def, now } => {
                check_id(id).or_else(|e| reject(RejectionCode::Validation, e))?;
                def.validate()
                    .or_else(|e| reject(RejectionCode::Validation, e))?;
                let existing = s.promotions.get(id);
                if existing.is_none() && s.promotions.len() >= MAX_PROMOTIONS {
                    return reject(
                        RejectionCode::Validation,
                        format!("a shop holds at most {MAX_PROMOTIONS} promotions"),
                    );
                }
                if let Some(code) = &def.code {
                    if let Some(other) = s.live_by_code(code).filter(|o| o.id != *id) {
                        return reject(
                            RejectionCode::Conflict,
                            format!("the code {code} belongs to promotion {}", other.id),
                        );
                    }
                }
                if existing.is_some_and(|p| p.def == **def && p.ended_at.is_none()) {
                    return Ok(vec![]);
                }
                Ok(vec![PromotionEvent::Defined {
                    id: id.clone(),
                    def: def.clone(),
                    at: *now,
                }])
            }
            PromotionCommand::End { id, now } => match s.promotions.get(id) {
                None => reject(RejectionCode::NotFound, format!("no promotion {id}")),
                Some(p) if p.ended_at.is_some() => Ok(vec![]),
                Some(_) => Ok(vec![PromotionEvent::Ended {
                    id: id.clone(),
                    at: *now,
                }]),
            },
        }
    }

    fn apply(s: &mut PromotionsState, e: &PromotionEvent) {
        match e {
            PromotionEvent::Defined { id, def, at } => {
                let p = s.promotions.entry(id.clone()).or_insert_with(|| Promotion {
                    id: id.clone(),
                    def: (**def).clone(),
                    created_at: *at,
                    updated_at: *at,
                    ended_at: None,
                });
                p.def = (**def).clone();
                p.updated_at = *at;
                p.ended_at = None;
            }
            PromotionEvent::Ended { id, at } => {
                if let Some(p) = s.promotions.get_mut(id) {
                    p.ended_at = Some(*at);
                    p.updated_at = *at;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn def(code: Option<&str>) -> PromotionDef {
        PromotionDef {
            name: "Ten off".into(),
            campaign: Some("spring".into()),
            action: Action::PercentOff { percent: 10 },
            conditions: Conditions::default(),
            code: code.map(str::to_owned),
            usage_limit: Some(10),
            per_customer_limit: None,
            starts_at: None,
            ends_at: None,
            combines: true,
        }
    }

    fn run(s: &mut PromotionsState, c: PromotionCommand) -> Result<(), Rejection> {
        for e in Promotions::decide(s, &c)? {
            Promotions::apply(s, &e);
        }
        Ok(())
    }

    #[test]
    fn a_code_belongs_to_one_live_promotion_and_an_ended_one_frees_it() {
        let mut s = PromotionsState::default();
        let put = |id: &str, code| PromotionCommand::Put {
            id: id.into(),
            def: Box::new(def(code)),
            now: 1,
        };
        run(&mut s, put("a", Some("SAVE10"))).unwrap();
        let e = run(&mut s, put("b", Some("SAVE10"))).unwrap_err();
        assert_eq!(e.code, RejectionCode::Conflict);
        run(
            &mut s,
            PromotionCommand::End {
                id: "a".into(),
                now: 5,
            },
        )
        .unwrap();
        assert_eq!(s.promotions["a"].window(5), Window::Over);
        assert_eq!(s.promotions["a"].window(4), Window::Open);
        run(&mut s, put("b", Some("SAVE10"))).unwrap();
        assert_eq!(s.by_code("SAVE10").unwrap().id, "b");
        // The same definition again changes nothing.
        assert!(Promotions::decide(&s, &put("b", Some("SAVE10")))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn definitions_are_checked_field_by_field() {
        let mut d = def(Some("save10"));
        assert!(d.validate().unwrap_err().contains("upper case"));
        d.code = Some("SAVE10".into());
        d.action = Action::PercentOff { percent: 0 };
        assert!(d.validate().unwrap_err().contains("percent"));
        d.action = Action::AmountOff { amount_minor: 500 };
        d.starts_at = Some(10);
        d.ends_at = Some(10);
        assert!(d.validate().unwrap_err().contains("ends_at"));
        d.ends_at = None;
        d.usage_limit = Some(0);
        assert!(d.validate().unwrap_err().contains("limit"));
        d.usage_limit = None;
        assert_eq!(d.validate(), Ok(()));
        assert_eq!(normalize_code(" save-10 ").unwrap(), "SAVE-10");
        assert!(normalize_code("no spaces").is_err());
    }
}
