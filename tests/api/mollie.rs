//! Mollie specifics: amounts as exact decimal strings both ways, the unsigned webhook for an
//! unknown payment, what the emulator refuses, and obole's requests checked against Mollie's
//! published OpenAPI description.

use std::sync::{Arc, Mutex};

use obole::config::Settings;
use obole::domain::Money;
use obole::gateways::mollie::{EMULATOR_TEST_KEY, MollieGateway};
use obole::gateways::{CheckoutRequest, Gateway, RefundRequest};
use serde_json::{Value, json};

use crate::contract;
use crate::helpers::{MEMBER, TestApp, spawn_app_with};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/specs/mollie/specs.yaml"
);

fn enable_mollie(settings: &mut Settings) {
    settings.gateways.push("mollie".into());
    settings.mollie.emulator = true;
}

async fn spawn() -> TestApp {
    spawn_app_with(enable_mollie).await
}

/// Mollie's classic webhook: the payment's id, form-encoded, unsigned.
fn webhook(gateway_ref: &str) -> contract::Notification {
    (
        vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        format!("id={gateway_ref}").into_bytes(),
    )
}

fn connector(app: &TestApp) -> MollieGateway {
    MollieGateway::new(&app.settings, &app.address, reqwest::Client::new())
}

fn checkout_request(portal: &str, payment_id: &str, cents: i64) -> CheckoutRequest {
    CheckoutRequest {
        payment_id: payment_id.into(),
        amount: Money::from_cents(cents),
        currency: "EUR".into(),
        description: "Cotisation 2026".into(),
        payer_email: "membre@exemple.org".into(),
        payer_first_name: "Camille".into(),
        payer_last_name: "Martin".into(),
        return_url: format!("{portal}/payments/{payment_id}/return"),
        cancel_url: format!("{portal}/payments/{payment_id}/cancel"),
        error_url: format!("{portal}/payments/{payment_id}/error"),
        notification_url: format!("{portal}/webhooks/mollie"),
        installments: None,
        contains_donation: false,
    }
}

/// The payment as Mollie's API shows it (the emulator, with the test key).
async fn fetched(app: &TestApp, gateway_ref: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/mollie/v2/payments/{gateway_ref}",
            app.address
        ))
        .bearer_auth(EMULATOR_TEST_KEY)
        .send()
        .await
        .expect("emulator")
        .json()
        .await
        .expect("payment")
}

async fn create_raw(app: &TestApp, key: Option<&str>, body: Value) -> (u16, String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sandbox/mollie/v2/payments", app.address))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("emulator");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        status,
        content_type,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn valid_body(app: &TestApp) -> Value {
    json!({
        "amount": {"currency": "EUR", "value": "30.00"},
        "description": "Cotisation",
        "redirectUrl": format!("{}/retour", app.address),
        "webhookUrl": format!("{}/webhooks/mollie", app.address),
        "metadata": {"payment_id": "p1"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_travel_as_exact_decimal_strings_both_ways() {
    let app = spawn().await;
    let gateway = connector(&app);
    for (cents, wire) in [(1, "0.01"), (123_456, "1234.56"), (4210, "42.10")] {
        let checkout = gateway
            .create_payment(&checkout_request(
                &app.address,
                &format!("pay_{cents}"),
                cents,
            ))
            .await
            .expect("created");
        let payment = fetched(&app, &checkout.gateway_ref).await;
        assert_eq!(payment["amount"], json!({"currency": "EUR", "value": wire}));
        let client = reqwest::Client::new();
        let settled = client
            .post(format!(
                "{}/sandbox/_control/mollie/{}",
                app.address, checkout.gateway_ref
            ))
            .json(&json!({"status": "paid", "notify": false}))
            .send()
            .await
            .unwrap();
        assert!(settled.status().is_success());
        let report = gateway
            .fetch_payment(&checkout.gateway_ref)
            .await
            .expect("fetched");
        assert_eq!(report.amount, Money::from_cents(cents), "{wire}");
        assert_eq!(report.captures[0].amount, Money::from_cents(cents));
        assert_eq!(
            report.reference.as_deref(),
            Some(format!("pay_{cents}").as_str())
        );
    }
}

/// Starts a payment with Mollie from the basket: (obole payment id, hosted page URL).
async fn start_mollie(
    app: &TestApp,
    browser: &crate::helpers::Browser,
    amount: &str,
) -> (String, String) {
    let page = browser.pay(amount, "mollie").await;
    assert_eq!(page.status, 303, "pay should redirect: {}", page.body);
    let hosted = page.location.expect("hosted page");
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'mollie' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the attempt");
    (id, hosted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cent_paid_through_the_portal_is_one_cent_in_the_journal() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start_mollie(&app, &browser, "0,01").await;
    let payment = fetched(&app, &app.gateway_ref(&id).await).await;
    assert_eq!(payment["amount"]["value"], "0.01");
    assert_eq!(payment["metadata"]["payment_id"], id.as_str());
    let back = contract::act(&browser, &hosted, "pay").await;
    assert!(back.starts_with(&app.address), "{back}");
    app.wait_for_status(&id, "paid").await;
    let paid: i64 = sqlx::query_scalar("SELECT paid_amount_cents FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(paid, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_for_an_unknown_payment_is_answered_200_and_posts_nothing() {
    let app = spawn().await;
    let before = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let status = contract::send(&app, "mollie", webhook("tr_unknown1234")).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_entries").await,
        before
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_notifications WHERE verdict = 'ignored'")
            .await,
        1
    );
    // Not even an id: unreadable, and still nothing posted.
    let status = contract::send(&app, "mollie", (vec![], b"payment=tr_unknown1234".to_vec())).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_entries").await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_unverifiable_while_mollie_is_down() {
    let app = spawn_app_with(|s| {
        enable_mollie(s);
        s.mollie.api_base = Some("http://127.0.0.1:9".into());
    })
    .await;
    let status = contract::send(&app, "mollie", webhook("tr_whatever123")).await;
    assert_eq!(status, 503, "Mollie must retry later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_numeric_or_inexact_amount_values() {
    let app = spawn().await;
    for value in [
        json!(30),
        json!(30.0),
        json!("30"),
        json!("30.0"),
        json!("30.001"),
    ] {
        let mut body = valid_body(&app);
        body["amount"]["value"] = value.clone();
        let (status, content_type, problem) = create_raw(&app, Some(EMULATOR_TEST_KEY), body).await;
        assert_eq!(status, 422, "{value}");
        assert_eq!(content_type, "application/hal+json");
        assert_eq!(problem["field"], "amount.value", "{value}");
        assert_eq!(problem["status"], 422);
    }
    let (status, _, problem) = create_raw(&app, Some(EMULATOR_TEST_KEY), json!({"amount": {"currency": "EUR", "value": "1.00"}, "description": "x", "redirectUrl": "https://exemple.org", "profileId": "pfl_x"})).await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "profileId");
    let (status, _, payment) = create_raw(&app, Some(EMULATOR_TEST_KEY), valid_body(&app)).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["mode"], "test");
    assert!(payment["_links"]["checkout"]["href"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_a_bad_or_missing_key() {
    let app = spawn().await;
    for key in [
        None,
        Some("test_notTheKeyOfThisProfile0000000"),
        Some("live_oboleEmulatorKey0000000000000"),
    ] {
        let (status, _, problem) = create_raw(&app, key, valid_body(&app)).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(problem["title"], "Unauthorized Request");
    }
    // The connector reports Mollie's refusal with Mollie's words.
    let mut settings: Settings = app.settings.clone();
    settings.mollie.api_key = "test_wrongKey00000000000000000000".to_string().into();
    let gateway = MollieGateway::new(&settings, &app.address, reqwest::Client::new());
    match gateway
        .create_payment(&checkout_request(&app.address, "p", 100))
        .await
    {
        Err(obole::gateways::GatewayError::Rejected(message)) => {
            assert!(message.contains("authenticate"), "{message}")
        }
        other => panic!(
            "expected a rejection, got {:?}",
            other.map(|c| c.gateway_ref)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_is_replayed_and_a_reused_key_refused() {
    let app = spawn().await;
    let gateway = connector(&app);
    let request = checkout_request(&app.address, "pay_retried", 2500);
    let first = gateway.create_payment(&request).await.expect("created");
    let again = gateway.create_payment(&request).await.expect("replayed");
    assert_eq!(first.gateway_ref, again.gateway_ref);
    let send = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/sandbox/mollie/v2/payments", app.address))
            .bearer_auth(EMULATOR_TEST_KEY)
            .header("Idempotency-Key", "key-1")
            .json(&body)
            .send()
    };
    let created = send(valid_body(&app)).await.unwrap();
    assert_eq!(created.status(), 201);
    let replayed = send(valid_body(&app)).await.unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(
        replayed.headers().get("idempotent-replayed").unwrap(),
        "true"
    );
    let mut other = valid_body(&app);
    other["amount"]["value"] = json!("31.00");
    assert_eq!(send(other).await.unwrap().status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_is_pending_at_mollie_until_refunded_then_posted_once() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start_mollie(&app, &browser, "40").await;
    contract::act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let outcome = connector(&app)
        .refund(&RefundRequest {
            payment_id: id.clone(),
            gateway_ref: gateway_ref.clone(),
            capture_ids: vec![],
            amount: Money::from_cents(1000),
            currency: "EUR".into(),
            idempotency_key: "refund-once".into(),
        })
        .await
        .expect("refund asked");
    assert_eq!(outcome.status, obole::gateways::RefundStatus::Pending);
    assert_eq!(outcome.amount, Money::from_cents(1000));
    // Mollie settles it and calls the webhook with the payment's id; obole posts it once.
    app.wait_for_status(&id, "partially_refunded").await;
    let payment = fetched(&app, &gateway_ref).await;
    assert_eq!(payment["amountRefunded"]["value"], "10.00");
    assert_eq!(payment["amountRemaining"]["value"], "30.00");
    contract::send(&app, "mollie", webhook(&gateway_ref)).await;
    let refunds = app
        .count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'",
            &id,
        )
        .await;
    assert_eq!(refunds, 1);
    // More than what remains is refused by Mollie, with its words.
    let too_much = connector(&app)
        .refund(&RefundRequest {
            payment_id: id.clone(),
            gateway_ref,
            capture_ids: vec![],
            amount: Money::from_cents(3001),
            currency: "EUR".into(),
            idempotency_key: "refund-too-much".into(),
        })
        .await;
    assert!(
        matches!(&too_much, Err(obole::gateways::GatewayError::Rejected(m)) if m.contains("higher than")),
        "{:?}",
        too_much.map(|o| o.refund_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_refund_is_marked_succeeded_once_mollie_has_refunded_it() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start_mollie(&app, &browser, "20").await;
    contract::act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(crate::helpers::MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let done = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "20"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    // Mollie answers `pending`: nothing is posted before its webhook says `refunded`.
    assert_eq!(app.payment_status(&id).await, "paid");
    app.wait_for_status(&id, "refunded").await;
    let status: String = sqlx::query_scalar("SELECT status FROM refunds WHERE payment_id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "succeeded");
}

// ---- obole's requests against Mollie's OpenAPI description -------------------------------

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
                    request.path().to_string(),
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

    fn header_parameters(&self, path: &str, method: &str) -> Vec<String> {
        self.operation(path, method)["parameters"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str().map(str::to_ascii_lowercase))
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

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
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
