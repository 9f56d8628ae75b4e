//! The messages' content: a subject and a body per (event type, channel), in `minijinja`
//! (Jinja2) syntax, rendered once when a message is created, so a later change never
//! alters a message already queued.
//!
//! The context of a render is the public event: `event.id`, `event.type`,
//! `event.timestamp`, and `data` (its documented fields, [`crate::events::schema`]). The
//! filter `money(currency)` formats integer minor units (`2500 | money("EUR")` is
//! `25.00 EUR`).
//!
//! The defaults here: a receipt on `order.paid` and a note on `order.cancelled` to the
//! order's email, and `stock.low` to the operators; short forms of the two order messages
//! for SMS (the body is the text; the subject is not sent) and push (the subject is the
//! notification's title, the body its text).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::json;

use crate::domain::notification::{ChannelKind, Content};
use crate::events::public::{EventType, PublicEvent};

/// A template pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// A template that does not parse or render, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part} line {line}: {message}")]
pub struct TemplateError {
    /// `subject` or `body`.
    pub part: &'static str,
    pub line: usize,
    pub message: String,
}

const RECEIPT_SUBJECT: &str = "Your order {{ data.order_id[:8] }} is paid";
const RECEIPT_BODY: &str = "\
Thank you for your order.

Order: {{ data.order_id }}
{% for item in data.items %}
  {{ item.quantity }} x {{ item.sku }}  {{ item.unit_price_minor | money(data.currency) }} each
{%- endfor %}

Total: {{ data.total_minor | money(data.currency) }}
";
const CANCELLED_SUBJECT: &str = "Your order {{ data.order_id[:8] }} was cancelled";
const CANCELLED_BODY: &str = "\
Your order {{ data.order_id }} was cancelled{% if data.failure_code %} ({{ data.failure_code }}){% endif %}.
No payment was taken for it, or it was refunded.

Order total: {{ data.total_minor | money(data.currency) }}
";
const STOCK_LOW_SUBJECT: &str = "Low stock: {{ data.sku }} ({{ data.available }} available)";
const STOCK_LOW_BODY: &str = "\
SKU {{ data.sku }} is low: {{ data.available }} available, {{ data.on_hand }} on hand.
";

const PAID_SHORT_SUBJECT: &str = "Order {{ data.order_id[:8] }} is paid";
const PAID_SHORT_BODY: &str =
    "Thank you! Order {{ data.order_id[:8] }} is paid: {{ data.total_minor | money(data.currency) }}.";
const CANCELLED_SHORT_SUBJECT: &str = "Order {{ data.order_id[:8] }} was cancelled";
const CANCELLED_SHORT_BODY: &str = "Order {{ data.order_id[:8] }} was cancelled{% if data.failure_code %} ({{ data.failure_code }}){% endif %}; no payment was taken for it, or it was refunded.";

/// The default template of `ty` on `channel`, if there is one.
pub fn default_for(ty: EventType, channel: ChannelKind) -> Option<Template> {
    let (s, b) = match (ty, channel) {
        (EventType::OrderPaid, ChannelKind::Email) => (RECEIPT_SUBJECT, RECEIPT_BODY),
        (EventType::OrderCancelled, ChannelKind::Email) => (CANCELLED_SUBJECT, CANCELLED_BODY),
        (EventType::StockLow, ChannelKind::Email) => (STOCK_LOW_SUBJECT, STOCK_LOW_BODY),
        (EventType::OrderPaid, ChannelKind::Sms | ChannelKind::Push) => {
            (PAID_SHORT_SUBJECT, PAID_SHORT_BODY)
        }
        (EventType::OrderCancelled, ChannelKind::Sms | ChannelKind::Push) => {
            (CANCELLED_SHORT_SUBJECT, CANCELLED_SHORT_BODY)
        }
        _ => return None,
    };
    Some(Template {
        subject: s.into(),
        body: b.into(),
    })
}

/// The digits after the point of a currency's minor unit (ISO 4217).
fn exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `minor` units of `currency` as `25.00 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    let e = exponent(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if e == 0 {
        return format!("{sign}{abs} {currency}");
    }
    let unit = 10u64.pow(e);
    format!(
        "{sign}{}.{:0width$} {currency}",
        abs / unit,
        abs % unit,
        width = e as usize
    )
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // A field the template names but the event lacks is an error, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("money", |minor: i64, currency: String| {
        money(minor, &currency)
    });
    env
}

fn render_one(
    env: &Environment<'_>,
    part: &'static str,
    src: &str,
    ctx: &serde_json::Value,
) -> Result<String, TemplateError> {
    let at = |e: minijinja::Error| TemplateError {
        part,
        line: e.line().unwrap_or(1),
        message: e.detail().unwrap_or(&e.to_string()).to_owned(),
    };
    let t = env.template_from_str(src).map_err(at)?;
    t.render(ctx).map_err(at)
}

/// Whether `t` renders against a sample event of type `ty` (its documented fields, see
/// [`crate::events::schema::sample_event`]): how a template is checked before it is
/// saved, so a field it names that the event lacks is a 400 with its line.
pub fn check(t: &Template, ty: EventType) -> Result<(), TemplateError> {
    render(t, &crate::events::schema::sample_event(ty)).map(|_| ())
}

/// Renders `t` against `ev`.
pub fn render(t: &Template, ev: &PublicEvent) -> Result<Content, TemplateError> {
    let ctx = json!({
        "event": {
            "id": ev.id,
            "type": ev.r#type.as_str(),
            "timestamp": crate::clock::rfc3339(ev.at),
        },
        "data": ev.data,
    });
    let env = env();
    Ok(Content {
        subject: render_one(&env, "subject", &t.subject, &ctx)?
            .trim()
            .to_owned(),
        body: render_one(&env, "body", &t.body, &ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid() -> PublicEvent {
        PublicEvent {
            id: "evt_1".into(),
            r#type: EventType::OrderPaid,
            at: 1_764_763_200_000,
            schema_version: 1,
            partition: 1,
            pseq: 2,
            data: json!({
                "order_id": "0b9e3a1c-0000-0000-0000-000000000001", "status": "paid",
                "total_minor": 2550, "currency": "EUR", "email": "a@example.com",
                "items": [{"sku": "MUG", "quantity": 2, "unit_price_minor": 1275}],
                "channel": "web",
            }),
        }
    }

    #[test]
    fn the_receipt_lists_the_lines_and_the_total() {
        let t = default_for(EventType::OrderPaid, ChannelKind::Email).unwrap();
        let c = render(&t, &paid()).unwrap();
        assert_eq!(c.subject, "Your order 0b9e3a1c is paid");
        assert!(c.body.contains("2 x MUG  12.75 EUR each"), "{}", c.body);
        assert!(c.body.contains("Total: 25.50 EUR"), "{}", c.body);
    }

    #[test]
    fn money_follows_the_currency_exponent() {
        assert_eq!(money(2500, "USD"), "25.00 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-1999, "EUR"), "-19.99 EUR");
        assert_eq!(money(1200, "JPY"), "1200 JPY");
        assert_eq!(money(1234, "KWD"), "1.234 KWD");
    }

    #[test]
    fn a_missing_field_or_bad_syntax_names_the_line() {
        let bad = Template {
            subject: "ok".into(),
            body: "line one\n{{ data.nope }}".into(),
        };
        let e = render(&bad, &paid()).unwrap_err();
        assert_eq!((e.part, e.line), ("body", 2), "{e}");
        let syntax = Template {
            subject: "{% if %}".into(),
            body: String::new(),
        };
        assert_eq!(render(&syntax, &paid()).unwrap_err().part, "subject");
    }

    #[test]
    fn a_check_against_the_sample_catches_an_unknown_field() {
        let t = default_for(EventType::OrderPaid, ChannelKind::Email).unwrap();
        assert_eq!(check(&t, EventType::OrderPaid), Ok(()));
        let bad = Template {
            subject: "Paid".into(),
            body: "Hello\n{{ data.customer_name }}".into(),
        };
        let e = check(&bad, EventType::OrderPaid).unwrap_err();
        assert_eq!((e.part, e.line), ("body", 2), "{e}");
        // The same field is fine where the event has it.
        let ok = Template {
            subject: "{{ data.sku }}".into(),
            body: String::new(),
        };
        assert_eq!(check(&ok, EventType::StockLow), Ok(()));
        assert!(check(&ok, EventType::UserRegistered).is_err());
    }

    #[test]
    fn every_default_renders_against_its_event() {
        let cancelled = PublicEvent {
            r#type: EventType::OrderCancelled,
            data: {
                let mut d = paid().data;
                d["failure_code"] = json!("payment_declined");
                d
            },
            ..paid()
        };
        let low = PublicEvent {
            r#type: EventType::StockLow,
            data: json!({"sku": "MUG", "on_hand": 4, "available": 3}),
            ..paid()
        };
        for ev in [paid(), cancelled, low] {
            let t = default_for(ev.r#type, ChannelKind::Email).unwrap();
            let c = render(&t, &ev).unwrap();
            assert!(!c.subject.is_empty() && !c.body.is_empty());
        }
    }
}
