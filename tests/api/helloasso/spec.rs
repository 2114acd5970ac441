//! obole's requests checked against HelloAsso's OpenAPI spec: operation, method, parameter
//! names, required fields, types and lengths.

use obole::domain::Money;
use obole::gateways::{Gateway, RefundRequest};
use serde_json::{Value, json};

use super::{
    attempt_in_three_terms, checkout_bodies, control, fetch_and_apply, gateway, journal, spawn,
    start,
};
use crate::helpers::MEMBER;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/helloasso/helloasso.json"
);

fn spec() -> Value {
    serde_json::from_str(&std::fs::read_to_string(SPEC).expect("the HelloAsso spec")).unwrap()
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        // Schema names contain dots: the name is everything after the last slash.
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            spec["components"]["schemas"]
                .get(name)
                .unwrap_or_else(|| panic!("unresolved {reference}"))
        }
        None => schema,
    }
}

/// What in `value` the schema does not allow: types, int32 range, lengths, required and
/// unknown properties.
fn violations(spec: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(spec, schema);
    let mut out = Vec::new();
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            out.push(format!("{at}: null not allowed"));
        }
        return out;
    }
    match schema["type"].as_str() {
        Some("integer") => match value.as_i64() {
            Some(n) if schema["format"] == "int32" && i32::try_from(n).is_err() => {
                out.push(format!("{at}: {n} is not an int32"))
            }
            Some(_) => {}
            None => out.push(format!("{at}: {value} is not an integer")),
        },
        Some("string") => match value.as_str() {
            Some(s) => {
                let len = s.chars().count() as u64;
                if schema["maxLength"].as_u64().is_some_and(|max| len > max) {
                    out.push(format!("{at}: longer than {}", schema["maxLength"]));
                }
                if schema["minLength"].as_u64().is_some_and(|min| len < min) {
                    out.push(format!("{at}: shorter than {}", schema["minLength"]));
                }
                if schema["format"] == "date-time"
                    && time::OffsetDateTime::parse(
                        s,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_err()
                {
                    out.push(format!("{at}: {s} is not a date-time"));
                }
            }
            None => out.push(format!("{at}: {value} is not a string")),
        },
        Some("boolean") if !value.is_boolean() => out.push(format!("{at}: not a boolean")),
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    out.extend(violations(
                        spec,
                        &schema["items"],
                        item,
                        &format!("{at}[{i}]"),
                    ));
                }
            }
            None => out.push(format!("{at}: not an array")),
        },
        Some("object") => match value.as_object() {
            Some(object) => {
                let properties = schema["properties"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for required in schema["required"].as_array().into_iter().flatten() {
                    if !object.contains_key(required.as_str().unwrap()) {
                        out.push(format!("{at}.{}: required", required.as_str().unwrap()));
                    }
                }
                for (key, item) in object {
                    match properties.get(key) {
                        Some(property) => {
                            out.extend(violations(spec, property, item, &format!("{at}.{key}")))
                        }
                        None if schema["additionalProperties"] == false => {
                            out.push(format!("{at}.{key}: not in the schema"))
                        }
                        None => {}
                    }
                }
            }
            None => out.push(format!("{at}: not an object")),
        },
        _ => {}
    }
    out
}

/// The spec's operation for a path obole called (`/v5/...`; the spec's server ends in `/v5`).
fn operation<'a>(spec: &'a Value, method: &str, called: &str) -> &'a Value {
    let called: Vec<&str> = called.trim_start_matches("/v5").split('/').collect();
    let (_, item) = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| {
            let template: Vec<&str> = template.split('/').collect();
            template.len() == called.len()
                && template
                    .iter()
                    .zip(&called)
                    .all(|(t, c)| t.starts_with('{') || t == c)
        })
        .unwrap_or_else(|| panic!("no operation in the spec for {called:?}"));
    item.get(method)
        .unwrap_or_else(|| panic!("no {method} for {called:?}"))
}

fn body_schema(operation: &Value) -> &Value {
    &operation["requestBody"]["content"]["application/json"]["schema"]
}

#[test]
fn the_spec_check_catches_what_helloasso_would_refuse() {
    let spec = spec();
    let op = operation(&spec, "post", "/v5/organizations/x/checkout-intents");
    let bad = json!({
        "totalAmount": "30.00", "initialAmount": 3000.5, "itemName": "x".repeat(251),
        "backUrl": "https://a", "returnUrl": "https://a", "containsDonation": "no",
        "payer": {"firstName": "Camille", "phone": "0600000000"},
        "terms": [{"amount": 1000}], "reference": "pay_1"
    });
    let found = violations(&spec, body_schema(op), &bad, "body");
    for expected in [
        "body.totalAmount: \"30.00\" is not an integer",
        "body.initialAmount: 3000.5 is not an integer",
        "body.itemName: longer than 250",
        "body.errorUrl: required",
        "body.containsDonation: not a boolean",
        "body.payer.phone: not in the schema",
        "body.terms[0].date: required",
        "body.reference: not in the schema",
    ] {
        assert!(
            found.iter().any(|f| f == expected),
            "{expected} in {found:?}"
        );
    }
}

#[tokio::test]
async fn obole_requests_match_helloassos_openapi_spec() {
    let spec = spec();
    let app = spawn(|_| {}).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &browser, "30").await;
    attempt_in_three_terms(&app).await;

    let calls = checkout_bodies(&app).await;
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let op = operation(&spec, "post", call["path"].as_str().unwrap());
        let found = violations(&spec, body_schema(op), &call["body"], "body");
        assert!(found.is_empty(), "{found:?} in {}", call["body"]);
    }

    // A partial refund: the query parameters the refund operation declares.
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    let report = fetch_and_apply(&app, &gateway_ref).await;
    let outcome = gateway(&app)
        .refund(&RefundRequest {
            payment_id: id.clone(),
            gateway_ref: gateway_ref.clone(),
            capture_ids: report.captures.iter().map(|c| c.id.clone()).collect(),
            amount: Money::from_cents(1000),
            currency: "EUR".into(),
            idempotency_key: "refund-1".into(),
        })
        .await
        .expect("a partial refund");
    assert_eq!(outcome.amount, Money::from_cents(1000));
    let refund = journal(&app)
        .await
        .into_iter()
        .find(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/refund")))
        .expect("the refund call");
    let op = operation(&spec, "post", refund["path"].as_str().unwrap());
    let parameters = op["parameters"].as_array().unwrap();
    let query = refund["query"].as_object().unwrap();
    assert_eq!(query["amount"], "1000");
    for (name, value) in query {
        let declared = parameters
            .iter()
            .find(|p| p["name"] == name.as_str() && p["in"] == "query")
            .unwrap_or_else(|| panic!("{name} is not a query parameter of the refund"));
        let typed = match declared["schema"]["type"].as_str() {
            Some("integer") => json!(value.as_str().unwrap().parse::<i64>().expect("integer")),
            Some("boolean") => json!(value.as_str().unwrap().parse::<bool>().expect("boolean")),
            _ => value.clone(),
        };
        let found = violations(&spec, &declared["schema"], &typed, name);
        assert!(found.is_empty(), "{found:?}");
    }
}
