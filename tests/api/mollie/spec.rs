//! obole's requests to Mollie checked against Mollie's published OpenAPI description: the
//! operation (method and path), its header parameters, and the body against the request
//! schema (types, required and unknown properties, read-only ones, enums, lengths).

use std::sync::{Arc, Mutex};

use obole::config::Settings;
use obole::domain::Money;
use obole::gateways::mollie::{EMULATOR_TEST_KEY, MollieGateway};
use obole::gateways::{Gateway, RefundRequest};
use serde_json::{Value, json};

use super::checkout_request;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/mollie/specs.yaml"
);

/// What a fake Mollie received: method, path, headers, body.
type Received = Arc<Mutex<Vec<(String, String, Vec<(String, String)>, Value)>>>;

/// A fake Mollie that records each request and answers with a canned resource.
async fn recording_mollie() -> (String, Received) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            async move {
                let headers = request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                store.lock().unwrap().push((
                    request.method().to_string(),
                    request.uri().to_string(),
                    headers,
                    json,
                ));
                let answer = if request.path().ends_with("/refunds") {
                    json!({"resource": "refund", "id": "re_4qqhO89gsT", "status": "pending",
                           "amount": {"currency": "EUR", "value": "15.00"}, "paymentId": "tr_7UhSN1zuXS"})
                } else {
                    json!({"resource": "payment", "id": "tr_7UhSN1zuXS", "mode": "test", "status": "open",
                           "amount": {"currency": "EUR", "value": "30.00"},
                           "_links": {"checkout": {"href": "https://www.mollie.com/checkout/select-method/7UhSN1zuXS", "type": "text/html"}}})
                };
                HttpResponse::Created()
                    .content_type("application/hal+json")
                    .body(answer.to_string())
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (address, received)
}

struct Spec {
    root: serde_yaml::Value,
}

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(SPEC).expect("Mollie's spec beside the repository");
        Spec {
            root: serde_yaml::from_str(&text).expect("the spec is YAML"),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a serde_yaml::Value) -> &'a serde_yaml::Value {
        match schema.get("$ref").and_then(|r| r.as_str()) {
            Some(reference) => {
                let mut node = &self.root;
                for part in reference.trim_start_matches("#/").split('/') {
                    node = node
                        .get(part)
                        .unwrap_or_else(|| panic!("{reference} in the spec"));
                }
                self.resolve(node)
            }
            None => schema,
        }
    }

    fn operation(&self, path: &str, method: &str) -> &serde_yaml::Value {
        self.root["paths"]
            .get(path)
            .and_then(|p| p.get(method))
            .unwrap_or_else(|| panic!("{method} {path} is not in Mollie's spec"))
    }

    fn request_schema(&self, path: &str, method: &str) -> &serde_yaml::Value {
        &self.operation(path, method)["requestBody"]["content"]["application/json"]["schema"]
    }

    /// The operation's parameters in `location` (header, query): name and allowed values
    /// (an operation may narrow a shared parameter's schema beside its `$ref`).
    fn parameters(&self, path: &str, method: &str, location: &str) -> Vec<(String, Vec<String>)> {
        self.operation(path, method)["parameters"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter(|p| self.resolve(p)["in"] == location)
            .filter_map(|p| {
                let name = self.resolve(p)["name"].as_str()?.to_ascii_lowercase();
                let values = [p, self.resolve(p)]
                    .iter()
                    .filter_map(|node| node.get("schema")?.get("enum")?.as_sequence())
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                Some((name, values))
            })
            .collect()
    }

    fn header_parameters(&self, path: &str, method: &str) -> Vec<String> {
        self.parameters(path, method, "header")
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// Every property a schema declares, through `$ref` and `allOf`, with its schema.
    fn properties<'a>(
        &'a self,
        schema: &'a serde_yaml::Value,
    ) -> Vec<(String, &'a serde_yaml::Value)> {
        let mut out = Vec::new();
        for node in [schema, self.resolve(schema)] {
            if let Some(props) = node.get("properties").and_then(|p| p.as_mapping()) {
                for (name, prop) in props {
                    out.push((name.as_str().unwrap_or("").to_string(), prop));
                }
            }
            for part in node
                .get("allOf")
                .and_then(|a| a.as_sequence())
                .into_iter()
                .flatten()
            {
                out.extend(self.properties(part));
            }
        }
        out
    }

    fn required<'a>(&'a self, schema: &'a serde_yaml::Value) -> Vec<String> {
        let mut out = Vec::new();
        for node in [schema, self.resolve(schema)] {
            for name in node
                .get("required")
                .and_then(|r| r.as_sequence())
                .into_iter()
                .flatten()
            {
                out.push(name.as_str().unwrap_or("").to_string());
            }
            for part in node
                .get("allOf")
                .and_then(|a| a.as_sequence())
                .into_iter()
                .flatten()
            {
                out.extend(self.required(part));
            }
        }
        out
    }

    /// The problems of `value` against `schema`: types, required and unknown properties,
    /// read-only properties sent, enums, maximum lengths.
    /// `part`: a piece of an `allOf`, whose properties are checked with the whole's.
    fn check(
        &self,
        schema: &serde_yaml::Value,
        value: &Value,
        at: &str,
        part: bool,
        problems: &mut Vec<String>,
    ) {
        let resolved = self.resolve(schema);
        for node in [schema, resolved] {
            if node.get("readOnly").and_then(|r| r.as_bool()) == Some(true) {
                problems.push(format!("{at} is read-only"));
            }
            if let Some(types) = node.get("type") {
                let allowed: Vec<&str> = match types {
                    serde_yaml::Value::String(t) => vec![t.as_str()],
                    serde_yaml::Value::Sequence(ts) => {
                        ts.iter().filter_map(|t| t.as_str()).collect()
                    }
                    _ => vec![],
                };
                let actual = match value {
                    Value::Null => "null",
                    Value::Bool(_) => "boolean",
                    Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    Value::Array(_) => "array",
                    Value::Object(_) => "object",
                };
                let fits = allowed.contains(&actual)
                    || (actual == "integer" && allowed.contains(&"number"));
                if !fits {
                    problems.push(format!("{at} is {actual}, the spec wants {allowed:?}"));
                }
            }
            if let (Some(values), Some(text)) = (
                node.get("enum").and_then(|e| e.as_sequence()),
                value.as_str(),
            ) && !values.iter().any(|v| v.as_str() == Some(text))
            {
                problems.push(format!("{at}: {text:?} is not one of the spec's values"));
            }
            if let (Some(max), Some(text)) = (
                node.get("maxLength").and_then(|m| m.as_u64()),
                value.as_str(),
            ) && text.chars().count() as u64 > max
            {
                problems.push(format!("{at} is longer than {max}"));
            }
            for part in node
                .get("allOf")
                .and_then(|a| a.as_sequence())
                .into_iter()
                .flatten()
            {
                self.check(part, value, at, true, problems);
            }
            for key in ["oneOf", "anyOf"] {
                if let Some(options) = node.get(key).and_then(|o| o.as_sequence()) {
                    let fits = options.iter().any(|option| {
                        let mut inner = Vec::new();
                        self.check(option, value, at, false, &mut inner);
                        inner.is_empty()
                    });
                    if !fits {
                        problems.push(format!("{at} fits none of the spec's {key}"));
                    }
                }
            }
            if std::ptr::eq(schema, resolved) {
                break;
            }
        }
        if let (Value::Object(map), false) = (value, part) {
            let properties = self.properties(schema);
            // Entities list response fields as required too; those are read-only.
            let read_only = |name: &str| {
                properties.iter().any(|(n, prop)| {
                    n == name
                        && [*prop, self.resolve(prop)]
                            .iter()
                            .any(|p| p.get("readOnly").and_then(|r| r.as_bool()) == Some(true))
                })
            };
            for name in self.required(schema) {
                if !map.contains_key(&name) && !read_only(&name) {
                    problems.push(format!("{at}.{name} is required by the spec"));
                }
            }
            if !properties.is_empty() {
                for (name, field) in map {
                    match properties.iter().find(|(n, _)| n == name) {
                        Some((_, prop)) => {
                            self.check(prop, field, &format!("{at}.{name}"), false, problems)
                        }
                        None => problems.push(format!("{at}.{name} is not in the spec")),
                    }
                }
            }
        }
    }

    fn problems(&self, path: &str, method: &str, body: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        self.check(
            self.request_schema(path, method),
            body,
            "body",
            false,
            &mut problems,
        );
        problems
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obole_requests_follow_the_spec_of_create_payment_and_create_refund() {
    let spec = Spec::load();
    let (fake, received) = recording_mollie().await;
    let mut settings = Settings::default();
    settings.mollie.api_base = Some(fake.clone());
    let gateway = MollieGateway::new(
        &settings,
        "https://portail.exemple.org",
        reqwest::Client::new(),
    );
    let checkout = gateway
        .create_payment(&checkout_request(
            "https://portail.exemple.org",
            "pay_spec",
            3000,
        ))
        .await
        .expect("created");
    assert_eq!(checkout.gateway_ref, "tr_7UhSN1zuXS");
    gateway
        .refund(&RefundRequest {
            payment_id: "pay_spec".into(),
            gateway_ref: "tr_7UhSN1zuXS".into(),
            capture_ids: vec![],
            amount: Money::from_cents(1500),
            currency: "EUR".into(),
            idempotency_key: "ref_1".into(),
        })
        .await
        .expect("refund asked");

    gateway
        .fetch_payment("tr_7UhSN1zuXS")
        .await
        .expect("fetched");
    gateway.cancel("tr_7UhSN1zuXS").await.expect("cancelled");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    let (method, path, headers, body) = &received[0];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/v2/payments"));
    let _ = spec.operation("/v2/payments", "post");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(
        spec.header_parameters("/v2/payments", "post")
            .contains(&"idempotency-key".to_string())
    );
    assert_eq!(header("idempotency-key").as_deref(), Some("pay_spec"));
    assert_eq!(
        header("authorization").as_deref(),
        Some(format!("Bearer {EMULATOR_TEST_KEY}").as_str())
    );
    let problems = spec.problems("/v2/payments", "post", body);
    assert!(problems.is_empty(), "{problems:#?}\n{body:#}");
    assert_eq!(body["amount"], json!({"currency": "EUR", "value": "30.00"}));
    assert_eq!(body["metadata"]["payment_id"], "pay_spec");

    let (method, path, headers, body) = &received[1];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/v2/payments/tr_7UhSN1zuXS/refunds")
    );
    let _ = spec.operation("/v2/payments/{paymentId}/refunds", "post");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "idempotency-key" && v == "ref_1")
    );
    let problems = spec.problems("/v2/payments/{paymentId}/refunds", "post", body);
    assert!(problems.is_empty(), "{problems:#?}\n{body:#}");
    assert_eq!(body["amount"]["value"], "15.00");

    let (method, uri, _, _) = &received[2];
    let (path, query) = uri.split_once('?').expect("a query");
    assert_eq!(
        (method.as_str(), path),
        ("GET", "/v2/payments/tr_7UhSN1zuXS")
    );
    let allowed = spec.parameters("/v2/payments/{paymentId}", "get", "query");
    for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        let (_, values) = allowed
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("query parameter {name} is not in the spec"));
        assert!(
            values.is_empty() || values.iter().any(|v| v == value),
            "{name}={value} not in {values:?}"
        );
    }
    let (method, uri, _, body) = &received[3];
    assert_eq!(
        (method.as_str(), uri.as_str()),
        ("DELETE", "/v2/payments/tr_7UhSN1zuXS")
    );
    let _ = spec.operation("/v2/payments/{paymentId}", "delete");
    assert_eq!(body, &Value::Null, "a cancel carries no body");
}

#[test]
fn the_spec_check_can_fail() {
    let spec = Spec::load();
    let bad = json!({
        "amount": {"currency": "EUR", "value": 30},
        "redirectUrl": "https://exemple.org",
        "status": "paid",
        "amountCents": 3000
    });
    let problems = spec.problems("/v2/payments", "post", &bad);
    for expected in [
        "body.amount.value is integer",
        "body.description is required",
        "body.status is read-only",
        "body.amountCents is not in the spec",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected} in {problems:#?}"
        );
    }
}
