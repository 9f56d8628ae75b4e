//! Validated identifiers and shared limits. Once a `Sku` exists it is valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, passed into the domain by the caller.
pub type Millis = u64;

/// Most units one add-to-cart call may add.
pub const MAX_ADD_QUANTITY: u32 = 100;
/// Most units one cart line may hold.
pub const MAX_LINE_QUANTITY: u32 = 1000;
/// Most distinct lines one cart may hold (bounds the checkout saga's work).
pub const MAX_CART_LINES: usize = 100;

/// A stock keeping unit: `[A-Za-z0-9._-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "sku must match [A-Za-z0-9._-]{{1,64}}, got {:?}",
                truncate(s, 80)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}
impl From<Sku> for String {
    fn from(s: Sku) -> String {
        s.0
    }
}
impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The kinds of entity the runtime hosts. The byte is part of every journal key and
/// never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Product,
    Cart,
    Sku,
    Order,
    Payment,
    User,
    Email,
    Session,
    Machine,
    /// The webhook endpoint registry (one entity).
    Webhook,
    /// The notification templates saved over the defaults (one entity).
    NotificationTemplate,
    /// A shopper's notification preferences (keyed by the user id).
    Preferences,
    /// The promotion book (one entity).
    Promotion,
    /// One promotion's redemption ledger (keyed by the promotion id).
    Redemption,
    /// The category tree (one entity).
    Category,
    /// A shopper's review of a product (`{sku}~{user}`, placed with the product).
    Review,
    /// The stock locations (stores, warehouses, trucks, machines): one book.
    Location,
}

impl EntityKind {
    pub const ALL: [EntityKind; 17] = [
        Self::Product,
        Self::Cart,
        Self::Sku,
        Self::Order,
        Self::Payment,
        Self::User,
        Self::Email,
        Self::Session,
        Self::Machine,
        Self::Webhook,
        Self::NotificationTemplate,
        Self::Preferences,
        Self::Promotion,
        Self::Redemption,
        Self::Category,
        Self::Review,
        Self::Location,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Cart => "cart",
            Self::Sku => "sku",
            Self::Order => "order",
            Self::Payment => "payment",
            Self::User => "user",
            Self::Email => "email",
            Self::Session => "session",
            Self::Machine => "machine",
            Self::Webhook => "webhook",
            Self::NotificationTemplate => "notification_template",
            Self::Preferences => "preferences",
            Self::Promotion => "promotion",
            Self::Redemption => "redemption",
            Self::Category => "category",
            Self::Review => "review",
            Self::Location => "location",
        }
    }
    /// The kind of a journal key byte, if it names one.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.byte() == b)
    }
    pub fn byte(self) -> u8 {
        match self {
            Self::Product => 1,
            Self::Cart => 2,
            Self::Sku => 3,
            Self::Order => 4,
            Self::Payment => 5,
            Self::User => 6,
            Self::Email => 7,
            Self::Session => 8,
            Self::Machine => 9,
            Self::Webhook => 10,
            Self::NotificationTemplate => 11,
            Self::Preferences => 12,
            Self::Promotion => 13,
            Self::Redemption => 14,
            Self::Category => 15,
            Self::Review => 16,
            Self::Location => 17,
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "product" => Some(Self::Product),
            "cart" => Some(Self::Cart),
            "sku" | "inventory" => Some(Self::Sku),
            "order" => Some(Self::Order),
            "payment" => Some(Self::Payment),
            "user" => Some(Self::User),
            "email" => Some(Self::Email),
            "session" => Some(Self::Session),
            "machine" => Some(Self::Machine),
            "webhook" => Some(Self::Webhook),
            "notification_template" => Some(Self::NotificationTemplate),
            "preferences" => Some(Self::Preferences),
            "promotion" => Some(Self::Promotion),
            "redemption" => Some(Self::Redemption),
            "category" => Some(Self::Category),
            "review" => Some(Self::Review),
            "location" => Some(Self::Location),
            _ => None,
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity id as it may appear in a log line. The ids of sessions (a refresh token's
/// family, part of a bearer credential) and email claims (a shopper's address) are
/// secrets or personal data: they are logged as a short hash that still lets an operator
/// match the lines of one entity. Every other id is logged as it is.
pub struct LogId<'a>(pub EntityKind, pub &'a str);

impl fmt::Display for LogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            EntityKind::Session | EntityKind::Email => {
                use sha2::{Digest, Sha256};
                let digest = Sha256::digest(self.1.as_bytes());
                write!(f, "sha256:{}", hex::encode(&digest[..6]))
            }
            _ => f.write_str(self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_personal_ids_are_logged_as_a_hash() {
        let family = "0f3c6a0e-5d8c-4a79-9d3e-2f8b1c7a9e11";
        let logged = LogId(EntityKind::Session, family).to_string();
        assert!(
            !logged.contains(family) && logged.starts_with("sha256:"),
            "{logged}"
        );
        assert_eq!(logged, LogId(EntityKind::Session, family).to_string());
        let email = LogId(EntityKind::Email, "ann@example.com").to_string();
        assert!(!email.contains("ann"), "{email}");
        assert_eq!(LogId(EntityKind::Cart, "cart-1").to_string(), "cart-1");
    }

    #[test]
    fn sku_accepts_the_documented_alphabet_only() {
        assert!(Sku::parse("ABC-1.2_x").is_ok());
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
        assert!(Sku::parse(&"a".repeat(65)).is_err());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("a b").is_err());
        assert!(Sku::parse("a/b").is_err());
    }

    #[test]
    fn kind_bytes_are_distinct_and_round_trip() {
        let mut bytes: Vec<u8> = EntityKind::ALL.iter().map(|k| k.byte()).collect();
        bytes.dedup();
        assert_eq!(bytes.len(), EntityKind::ALL.len());
        for k in EntityKind::ALL {
            assert_eq!(EntityKind::parse(k.as_str()), Some(k));
        }
    }
}
