//! The JSON Schemas of the public event catalogue: the body a webhook receives, per event
//! type, as the OpenAPI 3.1 document's `webhooks` section describes it. The shapes here are
//! the ones [`super::catalogue`], [`super::catalogue_kinds`] and
//! [`super::catalogue_machines`] build; the tests hold the two together by checking real
//! events of every type against their schema.

use serde_json::{json, Map, Value};

use super::public::{EventType, SCHEMA_VERSION};

fn string() -> Value {
    json!({"type": "string"})
}

fn integer() -> Value {
    json!({"type": "integer"})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn object(props: &[(&str, Value)], optional: &[&str]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let required: Vec<&str> = props
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !optional.contains(k))
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

fn order_data(ty: EventType) -> Value {
    let item = object(
        &[
            ("sku", string()),
            ("quantity", integer()),
            ("unit_price_minor", integer()),
        ],
        &[],
    );
    let mut props = vec![
        ("order_id", uuid()),
        ("status", string()),
        ("total_minor", integer()),
        (
            "currency",
            json!({"type": "string", "description": "ISO 4217 code"}),
        ),
        ("email", string()),
        ("items", json!({"type": "array", "items": item})),
        (
            "channel",
            json!({"type": "string", "enum": ["web", "vending"]}),
        ),
        ("machine_id", string()),
        (
            "user_id",
            json!({"type": "string", "format": "uuid", "description": "the shopper who placed it; absent for a guest's order"}),
        ),
    ];
    if ty == EventType::OrderCancelled {
        props.push((
            "failure_code",
            json!({"type": ["string", "null"], "description": "why the order was cancelled"}),
        ));
    }
    object(&props, &["machine_id", "user_id"])
}

/// The JSON Schema of `data` for events of type `ty`.
pub fn data_schema(ty: EventType) -> Value {
    use EventType::*;
    match ty {
        OrderCreated | OrderPaid | OrderCancelled | OrderFulfilled | OrderRefunded => {
            order_data(ty)
        }
        StockAdjusted => object(
            &[
                ("sku", string()),
                ("on_hand", integer()),
                ("available", integer()),
                ("delta", integer()),
                ("location", string()),
            ],
            &[],
        ),
        StockLow => object(
            &[
                ("sku", string()),
                ("on_hand", integer()),
                ("available", integer()),
            ],
            &[],
        ),
        CartCheckedOut => object(&[("cart_id", uuid()), ("order_id", uuid())], &[]),
        UserRegistered => object(&[("user_id", uuid()), ("email", string())], &[]),
        MachineOnline | MachineOffline => object(&[("machine_id", string())], &[]),
        MachineAlarm => object(
            &[
                ("machine_id", string()),
                ("alarm", string()),
                (
                    "severity",
                    json!({"type": "string", "enum": ["info", "warning", "critical"]}),
                ),
            ],
            &[],
        ),
        MachineLowStock => object(
            &[
                ("machine_id", string()),
                ("slot", integer()),
                ("sku", string()),
                ("level", integer()),
            ],
            &[],
        ),
        MachineVend => object(
            &[
                ("machine_id", string()),
                ("vend_id", uuid()),
                ("slot", integer()),
                ("sku", string()),
                ("price_minor", integer()),
                (
                    "order_id",
                    json!({"type": ["string", "null"], "format": "uuid"}),
                ),
            ],
            &[],
        ),
        WebhookDisabled => object(&[("endpoint_id", uuid()), ("reason", string())], &[]),
        ReviewSubmitted | ReviewApproved | ReviewRejected => object(
            &[
                ("review_id", string()),
                ("sku", string()),
                (
                    "rating",
                    json!({"type": "integer", "minimum": 1, "maximum": 5}),
                ),
            ],
            &[],
        ),
    }
}

/// The JSON Schema of the whole body POSTed for an event of type `ty`.
pub fn body_schema(ty: EventType) -> Value {
    object(
        &[
            (
                "id",
                json!({"type": "string", "description": "stable across retries; deduplicate on it"}),
            ),
            ("type", json!({"type": "string", "const": ty.as_str()})),
            (
                "timestamp",
                json!({"type": "string", "format": "date-time"}),
            ),
            ("data", data_schema(ty)),
        ],
        &[],
    )
}

/// The OpenAPI 3.1 `webhooks` object: one entry per event type, a POST whose body is that
/// type's event, with the Standard Webhooks headers and what the receiver's status means.
pub fn openapi_webhooks() -> Value {
    let mut out = Map::new();
    for ty in EventType::ALL {
        let op = json!({
            "post": {
                "operationId": format!("webhook_{}", ty.as_str().replace('.', "_")),
                "summary": format!("`{}` (schema version {SCHEMA_VERSION})", ty.as_str()),
                "description": "Delivered at least once, in order per partition. Verify \
                    `webhook-signature` over `webhook-id.webhook-timestamp.body` \
                    (docs/WEBHOOKS.md) and deduplicate on `webhook-id`.",
                "tags": ["webhooks"],
                "parameters": [
                    {"in": "header", "name": "webhook-id", "required": true, "schema": {"type": "string"},
                     "description": "the event's id, the same on every attempt"},
                    {"in": "header", "name": "webhook-timestamp", "required": true, "schema": {"type": "string"},
                     "description": "seconds since the Unix epoch when this attempt was signed"},
                    {"in": "header", "name": "webhook-signature", "required": true, "schema": {"type": "string"},
                     "description": "space-separated `v1,<base64 HMAC-SHA256>`; two during a secret rotation"},
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": body_schema(ty)}},
                },
                "responses": {
                    "2XX": {"description": "accepted: the delivery is done"},
                    "410": {"description": "gone: the delivery goes to the dead-letter queue at once"},
                    "default": {"description": "408, 429 and 5xx (and timeouts) are retried with backoff; other 4xx go to the dead-letter queue"},
                },
            }
        });
        out.insert(ty.as_str().to_owned(), op);
    }
    Value::Object(out)
}

/// A value that matches `schema` (the subset used here): every property of an object,
/// one item of an array, the first of an `enum` or a type list that is not `null`, and
/// fixed strings and numbers. What a template is checked against before it is saved.
pub fn sample(schema: &Value) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "null",
    };
    match ty {
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .map(|props| props.iter().map(|(k, v)| (k.clone(), sample(v))).collect())
                .unwrap_or_default(),
        ),
        "array" => json!([sample(&schema["items"])]),
        "integer" => json!(1250),
        "boolean" => json!(true),
        "string" => match schema["format"].as_str() {
            Some("uuid") => json!("00000000-0000-4000-8000-000000000001"),
            Some("date-time") => json!("2026-01-01T00:00:00.000Z"),
            _ => json!("sample"),
        },
        _ => Value::Null,
    }
}

/// A made-up event of type `ty` whose `data` matches its schema.
pub fn sample_event(ty: EventType) -> super::PublicEvent {
    super::PublicEvent {
        id: super::PublicEvent::id_for(0, 1, ty),
        r#type: ty,
        at: 1_767_225_600_000,
        schema_version: SCHEMA_VERSION,
        partition: 0,
        pseq: 1,
        data: sample(&data_schema(ty)),
    }
}

/// Whether `v` matches `schema` for the subset of JSON Schema used here (`type`, also as a
/// list, `required`, `properties`, `items`, `enum`, `const`): how the tests hold events
/// and their documented shapes together.
pub fn conforms(schema: &Value, v: &Value) -> Result<(), String> {
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        _ => false,
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t) => return Err(format!("{v} is not {t}")),
        Value::Array(ts) if !ts.iter().filter_map(Value::as_str).any(type_ok) => {
            return Err(format!("{v} is none of {ts:?}"))
        }
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{v} is not {c}"));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(v) {
            return Err(format!("{v} is not one of {allowed:?}"));
        }
    }
    if let (Some(Value::Array(req)), Some(obj)) = (schema.get("required"), v.as_object()) {
        for k in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(k) {
                return Err(format!("missing `{k}`"));
            }
        }
    }
    if let (Some(Value::Object(props)), Some(obj)) = (schema.get("properties"), v.as_object()) {
        for (k, val) in obj {
            let s = props
                .get(k)
                .ok_or_else(|| format!("undocumented field `{k}`"))?;
            conforms(s, val).map_err(|e| format!("{k}: {e}"))?;
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, val) in arr.iter().enumerate() {
            conforms(items, val).map_err(|e| format!("[{i}]: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_an_entry_with_its_body() {
        let w = openapi_webhooks();
        for ty in EventType::ALL {
            let s = &w[ty.as_str()]["post"]["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(s["properties"]["type"]["const"], ty.as_str());
            assert!(s["properties"]["data"]["required"].is_array());
        }
        assert_eq!(w.as_object().unwrap().len(), EventType::ALL.len());
    }

    #[test]
    fn every_sample_matches_its_schema() {
        for ty in EventType::ALL {
            let ev = sample_event(ty);
            assert_eq!(conforms(&data_schema(ty), &ev.data), Ok(()), "{ty:?}");
        }
        assert_eq!(
            sample_event(EventType::OrderPaid).data["items"][0]["sku"],
            "sample"
        );
    }

    #[test]
    fn the_checker_rejects_what_the_schema_forbids() {
        let s = data_schema(EventType::UserRegistered);
        let ok = json!({"user_id": "00000000-0000-0000-0000-000000000001", "email": "a@b.c"});
        assert_eq!(conforms(&s, &ok), Ok(()));
        assert!(conforms(&s, &json!({"user_id": "x"})).is_err());
        assert!(conforms(&s, &json!({"user_id": "x", "email": 3})).is_err());
        assert!(conforms(&s, &json!({"user_id": "x", "email": "e", "extra": 1})).is_err());
        let c = data_schema(EventType::OrderCancelled);
        assert_eq!(
            c["properties"]["failure_code"]["type"],
            json!(["string", "null"])
        );
    }
}
