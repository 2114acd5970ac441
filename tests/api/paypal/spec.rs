//! obole's requests to PayPal checked against PayPal's OpenAPI specs
//! (`../shared/specs/paypal/*.json`): each request's method and path is an operation of the
//! spec, its required header parameters are sent, and its JSON body fits the operation's
//! schema (required fields, types, lengths, enums, no field the schema does not declare).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Map, Value, json};

use obole::domain::Money;
use obole::gateways::paypal::PayPalGateway;
use obole::gateways::{CheckoutRequest, Gateway, IncomingNotification, RefundRequest};

use super::configure;

fn spec(name: &str) -> Value {
    let path = format!(
        "{}/../shared/specs/paypal/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the spec")).expect("JSON spec")
}

#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

type Seen = Arc<Mutex<Vec<Received>>>;

/// A stand-in for api-m.paypal.com that records requests and answers as PayPal would.
async fn recorder() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(Received {
                    method: request.method().to_string(),
                    path: request.path().to_string(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                        })
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                answer(request.method().as_str(), request.path())
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (address, seen)
}

fn order(status: &str, captured: bool) -> Value {
    let mut unit = json!({
        "reference_id": "p1", "custom_id": "p1", "invoice_id": "p1",
        "amount": {"currency_code": "EUR", "value": "30.00"},
    });
    if captured {
        unit["payments"] = json!({"captures": [{
            "id": "CAPTURE1", "status": "COMPLETED",
            "amount": {"currency_code": "EUR", "value": "30.00"},
            "seller_receivable_breakdown": {"paypal_fee": {"currency_code": "EUR", "value": "1.22"}},
        }]});
    }
    json!({
        "id": "ORDER1", "status": status, "purchase_units": [unit],
        "links": [{"href": "https://www.paypal.com/checkoutnow?token=ORDER1", "rel": "payer-action", "method": "GET"}],
    })
}

fn answer(method: &str, path: &str) -> HttpResponse {
    match (method, path) {
        ("POST", "/v1/oauth2/token") => HttpResponse::Ok().json(json!({
            "access_token": "A21AAtoken", "token_type": "Bearer", "expires_in": 32400,
        })),
        ("POST", "/v2/checkout/orders") => {
            HttpResponse::Ok().json(order("PAYER_ACTION_REQUIRED", false))
        }
        ("GET", "/v2/checkout/orders/ORDER1") => HttpResponse::Ok().json(order("APPROVED", false)),
        ("POST", "/v2/checkout/orders/ORDER1/capture") => {
            HttpResponse::Created().json(order("COMPLETED", true))
        }
        ("POST", "/v2/payments/captures/CAPTURE1/refund") => HttpResponse::Created().json(json!({
            "id": "REFUND1", "status": "COMPLETED",
            "amount": {"currency_code": "EUR", "value": "12.50"},
        })),
        ("POST", "/v1/notifications/verify-webhook-signature") => {
            HttpResponse::Ok().json(json!({"verification_status": "SUCCESS"}))
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

/// The spec's operation for this request: a path template whose segments match.
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('/').collect();
    spec["paths"]
        .as_object()?
        .iter()
        .find(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .and_then(|(_, item)| item.get(method.to_ascii_lowercase()))
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(spec, spec.pointer(pointer).expect("a resolvable $ref"))
        }
        None => schema,
    }
}

/// Every property a schema declares, through `allOf`.
fn declared(spec: &Value, schema: &Value, into: &mut Map<String, Value>) -> bool {
    let schema = resolve(spec, schema);
    if schema.get("oneOf").is_some()
        || schema.get("anyOf").is_some()
        || schema
            .get("additionalProperties")
            .is_some_and(|a| a != false)
    {
        return false;
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        into.extend(properties.clone());
    }
    schema
        .get("allOf")
        .and_then(Value::as_array)
        .is_none_or(|all| all.iter().all(|s| declared(spec, s, into)))
}

fn validate(spec: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    validate_part(spec, schema, value, path, errors, true);
}

/// `whole`: the schema is the value's whole schema, not one part of an `allOf` (whose other
/// parts declare the other fields).
fn validate_part(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
    whole: bool,
) {
    let schema = resolve(spec, schema);
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        validate_part(spec, sub, value, path, errors, false);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(choices) = schema[key].as_array() {
            let fits = choices.iter().any(|c| {
                let mut e = Vec::new();
                validate(spec, c, value, path, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{path}: fits none of {key}"));
            }
        }
    }
    let kind = schema["type"].as_str();
    match (kind, value) {
        (Some("string"), Value::String(s)) => {
            let n = s.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|m| n < m) {
                errors.push(format!("{path}: shorter than minLength"));
            }
            if schema["maxLength"].as_u64().is_some_and(|m| n > m) {
                errors.push(format!("{path}: longer than maxLength"));
            }
            if let Some(allowed) = schema["enum"].as_array()
                && !allowed.contains(value)
            {
                errors.push(format!("{path}: {s:?} not in the enum"));
            }
        }
        (Some("integer"), v) if v.is_i64() || v.is_u64() => {}
        (Some("number"), Value::Number(_)) => {}
        (Some("boolean"), Value::Bool(_)) => {}
        (Some("array"), Value::Array(items)) => {
            if schema["minItems"]
                .as_u64()
                .is_some_and(|m| (items.len() as u64) < m)
            {
                errors.push(format!("{path}: fewer than minItems"));
            }
            if schema["maxItems"]
                .as_u64()
                .is_some_and(|m| (items.len() as u64) > m)
            {
                errors.push(format!("{path}: more than maxItems"));
            }
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{path}/{i}"), errors);
            }
        }
        (Some("object") | None, Value::Object(fields)) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    errors.push(format!("{path}: required {name} missing"));
                }
            }
            let mut properties = Map::new();
            let closed = whole && declared(spec, schema, &mut properties) && !properties.is_empty();
            if !whole {
                declared(spec, schema, &mut properties);
            }
            for (name, field) in fields {
                match properties.get(name) {
                    Some(property) => {
                        validate(spec, property, field, &format!("{path}/{name}"), errors)
                    }
                    None if closed => errors.push(format!("{path}/{name}: not in the spec")),
                    None => {}
                }
            }
        }
        (None, _) => {}
        (Some(kind), other) => errors.push(format!("{path}: {other} is not a {kind}")),
    }
}

/// Checks a recorded request against its spec; returns what is wrong.
fn check(spec: &Value, request: &Received) -> Vec<String> {
    let Some(operation) = operation(spec, &request.method, &request.path) else {
        return vec![format!(
            "{} {} is no operation of the spec",
            request.method, request.path
        )];
    };
    let mut errors = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let parameter = resolve(spec, parameter);
        if parameter["in"] == "header" && parameter["required"] == true {
            let name = parameter["name"].as_str().unwrap_or_default();
            if !request
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
            {
                errors.push(format!("required header {name} missing"));
            }
        }
    }
    if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") {
        match serde_json::from_str::<Value>(&request.body) {
            Ok(body) => validate(spec, schema, &body, "", &mut errors),
            Err(_) if request.body.is_empty() => {}
            Err(e) => errors.push(format!("body is not JSON: {e}")),
        }
    }
    errors
}

fn header<'a>(request: &'a Received, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obole_s_requests_fit_paypal_s_specs() {
    let (address, seen) = recorder().await;
    let mut settings = obole::config::Settings::default();
    configure(&mut settings);
    settings.paypal.api_base = Some(address);
    let gateway = PayPalGateway::new(&settings, "http://portail", reqwest::Client::new());
    let checkout = gateway
        .create_payment(&CheckoutRequest {
            payment_id: "p1".into(),
            amount: Money::from_cents(3000),
            currency: "EUR".into(),
            description: "Cotisation 2026 — une description bien plus longue que ce que PayPal accepte dans le champ description d'une unité d'achat, qui est de 127 caractères".into(),
            payer_email: "jeanne@exemple.org".into(),
            payer_first_name: "Jeanne".into(),
            payer_last_name: "Martin".into(),
            return_url: "http://portail/payments/p1/return".into(),
            cancel_url: "http://portail/payments/p1/return?retour=abandon".into(),
            error_url: "http://portail/payments/p1/return?retour=erreur".into(),
            notification_url: "http://portail/webhooks/paypal".into(),
            installments: None,
            contains_donation: false,
            save_card: None,
        })
        .await
        .expect("created");
    assert_eq!(checkout.gateway_ref, "ORDER1");
    assert_eq!(
        checkout.redirect_url,
        "https://www.paypal.com/checkoutnow?token=ORDER1"
    );
    let report = gateway.fetch_payment("ORDER1").await.expect("captured");
    assert_eq!(report.captures[0].fee, Some(Money::from_cents(122)));
    gateway
        .refund(&RefundRequest {
            payment_id: "p1".into(),
            gateway_ref: "ORDER1".into(),
            capture_ids: vec!["CAPTURE1".into()],
            amount: Money::from_cents(1250),
            currency: "EUR".into(),
            idempotency_key: "refund-1".into(),
        })
        .await
        .expect("refunded");
    let event =
        br#"{"id":"WH-1","event_type":"CHECKOUT.ORDER.APPROVED","resource":{"id":"ORDER1"}}"#;
    let headers: Vec<(String, String)> = [
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
        (
            "PAYPAL-CERT-URL",
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
        ),
        (
            "PAYPAL-TRANSMISSION-ID",
            "b8a5a3e0-1f2c-11e5-8f6c-0b4a1a2b3c4d",
        ),
        ("PAYPAL-TRANSMISSION-SIG", "c2lnbmF0dXJl"),
        ("PAYPAL-TRANSMISSION-TIME", "2026-01-01T00:00:00Z"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    gateway
        .verify_notification(&IncomingNotification {
            headers: &headers,
            body: event,
        })
        .await
        .expect("verified")
        .expect("a report");

    let orders = spec("checkout_orders_v2.json");
    let payments = spec("payments_payment_v2.json");
    let webhooks = spec("notifications_webhooks_v1.json");
    let seen = seen.lock().unwrap().clone();
    let mut checked = 0;
    for request in &seen {
        let spec = match request.path.as_str() {
            p if p.starts_with("/v2/checkout/") => &orders,
            p if p.starts_with("/v2/payments/") => &payments,
            p if p.starts_with("/v1/notifications/") => &webhooks,
            "/v1/oauth2/token" => {
                assert!(
                    header(request, "authorization")
                        .unwrap()
                        .starts_with("Basic ")
                );
                assert_eq!(request.body, "grant_type=client_credentials");
                continue;
            }
            other => panic!("unexpected request to {other}"),
        };
        assert!(
            header(request, "authorization")
                .unwrap()
                .starts_with("Bearer "),
            "{request:?}"
        );
        let errors = check(spec, request);
        assert!(
            errors.is_empty(),
            "{} {}: {errors:?}",
            request.method,
            request.path
        );
        checked += 1;
    }
    assert_eq!(checked, 7, "{seen:?}");
    // One token for all calls: it is cached.
    assert_eq!(
        seen.iter().filter(|r| r.path == "/v1/oauth2/token").count(),
        1
    );
    let by_path = |path: &str| seen.iter().find(|r| r.path == path).unwrap();
    let create = by_path("/v2/checkout/orders");
    assert_eq!(header(create, "paypal-request-id"), Some("p1"));
    let body: Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(body["intent"], "CAPTURE");
    assert_eq!(body["purchase_units"][0]["custom_id"], "p1");
    assert_eq!(body["purchase_units"][0]["invoice_id"], "p1");
    assert_eq!(body["purchase_units"][0]["amount"]["value"], "30.00");
    let context = &body["payment_source"]["paypal"]["experience_context"];
    assert_eq!(context["return_url"], "http://portail/payments/p1/return");
    assert_eq!(context["user_action"], "PAY_NOW");
    assert_eq!(context["locale"], "fr-FR");
    let capture = by_path("/v2/checkout/orders/ORDER1/capture");
    assert!(header(capture, "paypal-request-id").is_some());
    let refund = by_path("/v2/payments/captures/CAPTURE1/refund");
    assert_eq!(header(refund, "paypal-request-id"), Some("refund-1"));
    let body: Value = serde_json::from_str(&refund.body).unwrap();
    assert_eq!(
        body["amount"],
        json!({"currency_code": "EUR", "value": "12.50"})
    );
    let verify = by_path("/v1/notifications/verify-webhook-signature");
    let body: Value = serde_json::from_str(&verify.body).unwrap();
    assert_eq!(body["webhook_id"], settings.paypal.webhook_id);
    // The event goes back byte for byte, as PayPal signed it.
    assert!(
        verify.body.contains(&format!(
            "\"webhook_event\":{}",
            String::from_utf8_lossy(event)
        )),
        "{}",
        verify.body
    );
}

#[test]
fn the_checker_catches_what_the_spec_forbids() {
    let orders = spec("checkout_orders_v2.json");
    let request = |body: Value| Received {
        method: "POST".into(),
        path: "/v2/checkout/orders".into(),
        headers: Vec::new(),
        body: body.to_string(),
    };
    let good = json!({"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": "30.00"}}]});
    assert_eq!(check(&orders, &request(good)), Vec::<String>::new());
    for bad in [
        json!({"purchase_units": [{"amount": {"currency_code": "EUR", "value": "30.00"}}]}),
        json!({"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": 30}}]}),
        json!({"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EURO", "value": "30.00"}}]}),
        json!({"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": "30.00"}, "metadata": {}}]}),
        json!({"intent": "CAPTURE", "purchase_units": [{"custom_id": "x".repeat(128), "amount": {"currency_code": "EUR", "value": "30.00"}}]}),
    ] {
        assert!(!check(&orders, &request(bad.clone())).is_empty(), "{bad}");
    }
    let wrong_path = Received {
        method: "PUT".into(),
        path: "/v2/checkout/orders".into(),
        headers: Vec::new(),
        body: String::new(),
    };
    assert!(!check(&orders, &wrong_path).is_empty());
}
