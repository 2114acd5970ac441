//! The form obole sends to create a Checkout Session, checked against Stripe's OpenAPI spec
//! (`../shared/specs/stripe/spec3.yaml`): the operation exists, every parameter name is one
//! of it, required ones are present, values have the declared types, lengths and enums.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use obole::domain::Money;
use obole::gateways::stripe::StripeGateway;
use obole::gateways::{Gateway, RefundRequest};

use super::configure;
use crate::helpers::{MEMBER, spawn_app_with};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/stripe/spec3.yaml"
);

/// A request as a stand-in for Stripe's API received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub method: String,
    pub path: String,
    pub body: String,
    pub idempotency_key: Option<String>,
    stripe_version: Option<String>,
}

pub(crate) type Seen = Arc<Mutex<Vec<Received>>>;

/// A stand-in for api.stripe.com that records requests and answers with an open session (or
/// a refund).
pub(crate) async fn recorder() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
            let kept = kept.clone();
            async move {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                kept.lock().unwrap().push(Received {
                    method: request.method().to_string(),
                    path: request.path().to_string(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    idempotency_key: header("idempotency-key"),
                    stripe_version: header("stripe-version"),
                });
                if request.path().ends_with("/v1/refunds") {
                    return HttpResponse::Ok().json(json!({
                        "id": "re_recorded", "object": "refund", "amount": 1500,
                        "status": "succeeded", "payment_intent": "pi_recorded",
                    }));
                }
                HttpResponse::Ok().json(json!({
                    "id": "cs_test_recorded", "object": "checkout.session", "status": "open",
                    "payment_status": "unpaid", "amount_total": 3000, "currency": "eur",
                    "livemode": false, "url": "https://checkout.stripe.com/c/pay/cs_test_recorded",
                }))
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

pub(crate) fn load_spec() -> Value {
    let text = std::fs::read_to_string(SPEC).expect("the Stripe spec beside the repository");
    serde_yaml::from_str(&text).expect("the Stripe spec parses")
}

/// The form as a tree: `a[b][0]=x` becomes `{"a": {"b": {"0": "x"}}}`.
pub(crate) fn form_tree(body: &str) -> Value {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(body).expect("a form body");
    let mut tree = json!({});
    for (key, value) in pairs {
        let mut segments = vec![key.split('[').next().unwrap().to_string()];
        segments.extend(
            key.split('[')
                .skip(1)
                .map(|s| s.trim_end_matches(']').to_string()),
        );
        let mut node = &mut tree;
        let last = segments.len() - 1;
        for (i, segment) in segments.into_iter().enumerate() {
            let map = node
                .as_object_mut()
                .expect("a key used both as a value and a map");
            node = if i == last {
                map.insert(segment.clone(), json!(value));
                map.get_mut(&segment).unwrap()
            } else {
                map.entry(segment).or_insert_with(|| json!({}))
            };
        }
    }
    tree
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => reference
            .trim_start_matches("#/")
            .split('/')
            .fold(spec, |node, part| &node[part]),
        None => schema,
    }
}

/// Checks a form tree against a request schema: names exist, required ones are present, and
/// each value has the declared type, length and enum.
fn check(spec: &Value, schema: &Value, given: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if let Some(options) = schema["anyOf"].as_array() {
        let fits = options.iter().any(|option| {
            let mut trial = Vec::new();
            check(spec, option, given, at, &mut trial);
            trial.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: fits none of the allowed shapes"));
        }
        return;
    }
    match (schema["type"].as_str(), given) {
        (Some("object"), Value::Object(fields)) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or("");
                if !fields.contains_key(name) {
                    problems.push(format!("{at}[{name}]: required but missing"));
                }
            }
            for (name, value) in fields {
                let inner = format!("{at}[{name}]");
                match (
                    schema["properties"].get(name),
                    &schema["additionalProperties"],
                ) {
                    (Some(property), _) => check(spec, property, value, &inner, problems),
                    (None, extra @ Value::Object(_)) => check(spec, extra, value, &inner, problems),
                    _ => problems.push(format!("{inner}: not a parameter of this operation")),
                }
            }
        }
        (Some("array"), Value::Object(items)) => {
            for (index, value) in items {
                if index.parse::<usize>().is_err() {
                    problems.push(format!("{at}[{index}]: not an array index"));
                }
                check(
                    spec,
                    &schema["items"],
                    value,
                    &format!("{at}[{index}]"),
                    problems,
                );
            }
        }
        (Some(kind), Value::String(text)) => {
            let fits = match kind {
                "integer" => text.parse::<i64>().is_ok(),
                "boolean" => text == "true" || text == "false",
                "number" => text.parse::<f64>().is_ok(),
                "string" => true,
                _ => false,
            };
            if !fits {
                problems.push(format!("{at}: {text:?} is not of type {kind}"));
            }
            if let Some(max) = schema["maxLength"].as_u64()
                && text.chars().count() as u64 > max
            {
                problems.push(format!("{at}: longer than {max}"));
            }
            if let Some(allowed) = schema["enum"].as_array()
                && !allowed.iter().any(|a| a == text)
            {
                problems.push(format!("{at}: {text:?} is not one of {allowed:?}"));
            }
        }
        (kind, _) => problems.push(format!(
            "{at}: given a {given} where the spec wants {kind:?}"
        )),
    }
}

pub(crate) fn problems_with(spec: &Value, method: &str, path: &str, body: &str) -> Vec<String> {
    let operation = &spec["paths"][path][method.to_ascii_lowercase()];
    if operation.is_null() {
        return vec![format!("{method} {path}: no such operation in the spec")];
    }
    let schema =
        &operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let mut problems = Vec::new();
    check(spec, schema, &form_tree(body), "", &mut problems);
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_obole_creates_follows_stripes_openapi_spec() {
    let (stand_in, seen) = recorder().await;
    let app = spawn_app_with(|s| {
        configure(s);
        s.stripe.api_base = Some(format!("{stand_in}/sandbox/stripe"));
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("30", "stripe").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let created = seen.lock().unwrap()[0].clone();
    let (method, body) = (created.method.clone(), created.body.clone());
    let path = created
        .path
        .trim_start_matches("/sandbox/stripe")
        .to_string();
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/v1/checkout/sessions")
    );
    let spec = load_spec();
    let problems = problems_with(&spec, &method, &path, &body);
    assert!(problems.is_empty(), "{problems:#?}\n{body}");
    let tree = form_tree(&body);
    assert_eq!(tree["line_items"]["0"]["price_data"]["unit_amount"], "3000");
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'stripe'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tree["client_reference_id"], id.as_str());
    assert_eq!(
        tree["payment_intent_data"]["metadata"]["obole_payment_id"],
        id.as_str()
    );

    // The same check finds what Stripe would refuse.
    let wrong =
        format!("{body}&line_items[0][price_data][unit_amount]=30.00&notification_url=x&mode=pay");
    let wrong = wrong.replace(
        "line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=3000&",
        "",
    );
    let found = problems_with(&spec, "POST", &path, &wrong).join("\n");
    assert!(
        found
            .contains("[line_items][0][price_data][unit_amount]: \"30.00\" is not of type integer"),
        "{found}"
    );
    assert!(
        found.contains("[notification_url]: not a parameter"),
        "{found}"
    );
    assert!(found.contains("[mode]: \"pay\" is not one of"), "{found}");
    let no_url = body
        .split('&')
        .filter(|pair| !pair.starts_with("success_url="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(
        problems_with(&spec, "POST", &path, &no_url)
            .iter()
            .any(|p| p == "[success_url]: required but missing")
    );
    assert!(!problems_with(&spec, "POST", "/v1/checkout/session", &body).is_empty());

    let id: &str = &id;
    assert_eq!(created.idempotency_key.as_deref(), Some(id));
    assert_eq!(
        created.stripe_version.as_deref(),
        Some(obole::gateways::stripe::API_VERSION)
    );

    // Refunds and expiry follow the spec too.
    let gateway = StripeGateway::new(&app.settings, &app.address, reqwest::Client::new());
    gateway
        .refund(&RefundRequest {
            payment_id: id.to_string(),
            gateway_ref: "cs_test_recorded".into(),
            capture_ids: vec!["pi_recorded".into()],
            amount: Money::from_cents(1500),
            currency: "EUR".into(),
            idempotency_key: "refund-key-1".into(),
        })
        .await
        .expect("the refund");
    gateway
        .cancel("cs_test_recorded")
        .await
        .expect("the expiry");
    let seen = seen.lock().unwrap().clone();
    let refund = &seen[1];
    assert_eq!(refund.path, "/sandbox/stripe/v1/refunds");
    assert_eq!(refund.idempotency_key.as_deref(), Some("refund-key-1"));
    let problems = problems_with(&spec, &refund.method, "/v1/refunds", &refund.body);
    assert!(problems.is_empty(), "{problems:#?}\n{}", refund.body);
    assert_eq!(form_tree(&refund.body)["amount"], "1500");
    assert_eq!(form_tree(&refund.body)["payment_intent"], "pi_recorded");
    let expiry = &seen[2];
    assert_eq!(
        expiry.path,
        "/sandbox/stripe/v1/checkout/sessions/cs_test_recorded/expire"
    );
    assert!(expiry.idempotency_key.is_some());
    let problems = problems_with(
        &spec,
        &expiry.method,
        "/v1/checkout/sessions/{session}/expire",
        &expiry.body,
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
