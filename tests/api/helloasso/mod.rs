//! HelloAsso beyond the contract: the OAuth2 token's life, the payer prefill rules, signed
//! notifications, payment in terms, and obole's requests checked against HelloAsso's spec.

use obole::domain::Money;
use obole::gateways::helloasso::HelloAssoGateway;
use obole::gateways::{CheckoutRequest, Gateway, RefundRequest};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::contract::{act, send};
use crate::helpers::{Browser, MEMBER, TestApp, spawn_app_with};

mod spec;

async fn spawn(adjust: impl FnOnce(&mut obole::config::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.gateways.push("helloasso".into());
        s.helloasso.emulator = true;
        s.reconcile.interval_secs = 0;
        adjust(s);
    })
    .await
}

/// Starts a HelloAsso payment from the basket: (obole payment id, checkout page).
async fn start(app: &TestApp, browser: &Browser, amount: &str) -> (String, String) {
    let page = browser.pay(amount, "helloasso").await;
    assert_eq!(page.status, 303, "pay should redirect: {}", page.body);
    let hosted = page.location.expect("HelloAsso's checkout page");
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE redirect_url = $1")
        .bind(&hosted)
        .fetch_one(&app.pool)
        .await
        .expect("the attempt");
    (id, hosted)
}

/// Settles the checkout intent at the emulator, as the payer (or a monthly debit) would.
async fn control(app: &TestApp, gateway_ref: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/helloasso/{gateway_ref}",
            app.address
        ))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(response.status().is_success(), "{}", response.status());
}

/// A token from the emulated HelloAsso, with the test client's credentials.
pub(crate) async fn emulator_token(app: &TestApp) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/helloasso/oauth2/token", app.address))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "ha_emulator_client"),
            ("client_secret", "ha_emulator_secret"),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token");
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// The checkout intent as HelloAsso shows it.
pub(crate) async fn fetched_intent(app: &TestApp, gateway_ref: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/helloasso/v5/organizations/association-demo/checkout-intents/{gateway_ref}",
            app.address
        ))
        .bearer_auth(emulator_token(app).await)
        .send()
        .await
        .expect("HelloAsso API")
        .json()
        .await
        .expect("checkout intent")
}

/// An Order notification as HelloAsso sends it for this intent.
pub(crate) async fn order_notification(app: &TestApp, gateway_ref: &str) -> Vec<u8> {
    let intent = fetched_intent(app, gateway_ref).await;
    let data = intent
        .get("order")
        .cloned()
        .unwrap_or_else(|| json!({"checkoutIntentId": intent["id"]}));
    serde_json::to_vec(&json!({
        "eventType": "Order",
        "data": data,
        "metadata": intent["metadata"],
    }))
    .unwrap()
}

/// Everything obole sent to the emulated HelloAsso, oldest first.
async fn journal(app: &TestApp) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/_control/helloasso/_journal",
            app.address
        ))
        .send()
        .await
        .expect("journal")
        .json()
        .await
        .expect("journal entries")
}

async fn grants(app: &TestApp) -> Vec<String> {
    journal(app)
        .await
        .iter()
        .filter(|e| e["path"] == "/oauth2/token")
        .map(|e| e["grantType"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn checkout_bodies(app: &TestApp) -> Vec<Value> {
    journal(app)
        .await
        .into_iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/checkout-intents"))
        })
        .collect()
}

fn gateway(app: &TestApp) -> HelloAssoGateway {
    HelloAssoGateway::new(&app.settings, &app.address, reqwest::Client::new())
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_payments_still_work() {
    let app = spawn(|s| s.helloasso.token_ttl_secs = 2).await;
    let browser = app.logged_in(MEMBER).await;
    start(&app, &browser, "10").await;
    assert_eq!(grants(&app).await, ["client_credentials"]);
    // Past the point where obole renews (before HelloAsso's expiry).
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    start(&app, &browser, "12").await;
    assert_eq!(grants(&app).await, ["client_credentials", "refresh_token"]);
    // Long past expiry, the refresh token still renews it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    start(&app, &browser, "14").await;
    assert_eq!(
        grants(&app).await,
        ["client_credentials", "refresh_token", "refresh_token"]
    );
    let bodies = checkout_bodies(&app).await;
    assert!(bodies.iter().all(|b| b["authorized"] == true), "{bodies:?}");
}

#[tokio::test]
async fn a_token_refused_with_401_is_renewed_and_the_call_retried_once() {
    let app = spawn(|_| {}).await;
    let browser = app.logged_in(MEMBER).await;
    start(&app, &browser, "10").await;
    let expired = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/helloasso/_expire-tokens",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert!(expired.status().is_success());
    start(&app, &browser, "12").await;
    let bodies = checkout_bodies(&app).await;
    let authorized: Vec<bool> = bodies
        .iter()
        .map(|b| b["authorized"].as_bool().unwrap())
        .collect();
    assert_eq!(authorized, [true, false, true]);
    assert_eq!(grants(&app).await, ["client_credentials", "refresh_token"]);
}

#[tokio::test]
async fn wrong_client_credentials_are_refused_without_creating_anything() {
    // One obole plays HelloAsso with the test client; the other holds a wrong secret.
    let helloasso = spawn(|_| {}).await;
    let app = spawn(|s| {
        s.helloasso.api_base = Some(format!("{}/sandbox/helloasso", helloasso.address));
        s.helloasso.client_secret = SecretString::from("not-the-secret");
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", "helloasso").await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("a refusé cette demande")
    );
    assert_eq!(grants(&helloasso).await, ["client_credentials"]);
    assert!(checkout_bodies(&helloasso).await.is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn payer_names_helloasso_would_refuse_are_left_out_of_the_prefill() {
    let app = spawn(|_| {}).await;
    sqlx::query("UPDATE users SET first_name = 'Test', last_name = 'Martin2' WHERE email = $1")
        .bind(MEMBER.0)
        .execute(&app.pool)
        .await
        .unwrap();
    let browser = app.logged_in(MEMBER).await;
    start(&app, &browser, "10").await;
    let body = &checkout_bodies(&app).await[0]["body"];
    assert_eq!(body["payer"], json!({"email": MEMBER.0}));

    // Sent anyway, HelloAsso refuses them.
    let mut refused = body.clone();
    refused["payer"]["firstName"] = json!("Test");
    refused["payer"]["lastName"] = json!("Martin");
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/helloasso/v5/organizations/association-demo/checkout-intents",
            app.address
        ))
        .bearer_auth(emulator_token(&app).await)
        .json(&refused)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let message: Value = answer.json().await.unwrap();
    assert!(
        message["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("firstName"),
        "{message}"
    );
}

#[tokio::test]
async fn acceptable_payer_names_are_prefilled() {
    let app = spawn(|_| {}).await;
    let browser = app.logged_in(MEMBER).await;
    start(&app, &browser, "10").await;
    let body = &checkout_bodies(&app).await[0]["body"];
    assert_eq!(
        body["payer"],
        json!({"firstName": "Camille", "lastName": "Martin", "email": MEMBER.0})
    );
    assert_eq!(body["totalAmount"], 1000);
    assert_eq!(body["initialAmount"], 1000);
    assert_eq!(body["containsDonation"], false);
    assert!(body.get("terms").is_none());
}

#[tokio::test]
async fn with_a_signature_key_only_correctly_signed_notifications_are_accepted() {
    let key = "ha_signature_key_for_tests";
    let app = spawn(|s| s.helloasso.signature_key = Some(SecretString::from(key))).await;
    let browser = app.logged_in(MEMBER).await;

    // HelloAsso's own notifications are signed and accepted.
    let (id, hosted) = start(&app, &browser, "30").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;

    let (id, _) = start(&app, &browser, "20").await;
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    let body = order_notification(&app, &gateway_ref).await;
    let unsigned = send(&app, "helloasso", (vec![], body.clone())).await;
    assert_eq!(unsigned, 401);
    let wrong = obole::sandbox::common::hmac_sha256_hex(b"another key", &body);
    let forged = send(
        &app,
        "helloasso",
        (vec![("x-ha-signature".into(), wrong)], body.clone()),
    )
    .await;
    assert_eq!(forged, 401);
    assert_eq!(app.payment_status(&id).await, "pending");
    let right = obole::sandbox::common::hmac_sha256_hex(key.as_bytes(), &body);
    let genuine = send(
        &app,
        "helloasso",
        (vec![("x-ha-signature".into(), right)], body),
    )
    .await;
    assert_eq!(genuine, 200);
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

#[tokio::test]
async fn a_payment_notification_is_followed_to_its_checkout_intent() {
    let app = spawn(|_| {}).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &browser, "25").await;
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    let order: Value = serde_json::from_slice(&order_notification(&app, &gateway_ref).await)
        .map(|n: Value| n["data"].clone())
        .unwrap();
    // Only the order's id: obole reads the order, then the intent.
    let body = serde_json::to_vec(&json!({
        "eventType": "Payment",
        "data": {"id": order["payments"][0]["id"], "state": "Authorized", "amount": 2500,
                 "order": {"id": order["id"], "formType": "Checkout"}},
        "metadata": {},
    }))
    .unwrap();
    assert_eq!(send(&app, "helloasso", (vec![], body)).await, 200);
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

/// An attempt of 90,00 € created in three terms at the connector.
async fn attempt_in_three_terms(app: &TestApp) -> (String, String) {
    let member = app.member_id(MEMBER.0).await;
    let amount = Money::from_cents(9000);
    let payment =
        obole::payments::create_attempt(&app.pool, &member, "helloasso", amount, "EUR", true)
            .await
            .unwrap();
    let page = format!("{}/payments/{}", app.address, payment.id);
    let checkout = gateway(app)
        .create_payment(&CheckoutRequest {
            payment_id: payment.id.clone(),
            amount,
            currency: "EUR".into(),
            description: "Cotisation 2026-2027 en trois fois".into(),
            payer_email: MEMBER.0.into(),
            payer_first_name: "Camille".into(),
            payer_last_name: "Martin".into(),
            return_url: page.clone(),
            cancel_url: page.clone(),
            error_url: page,
            notification_url: format!("{}/webhooks/helloasso", app.address),
            installments: Some(3),
            contains_donation: false,
            save_card: None,
        })
        .await
        .expect("an intent in three terms");
    obole::payments::mark_pending(
        &app.pool,
        &payment.id,
        &checkout.gateway_ref,
        &checkout.redirect_url,
    )
    .await
    .unwrap();
    (payment.id, checkout.gateway_ref)
}

async fn fetch_and_apply(app: &TestApp, gateway_ref: &str) -> obole::gateways::GatewayReport {
    let report = gateway(app).fetch_payment(gateway_ref).await.unwrap();
    obole::payments::apply_report(
        &app.pool,
        &app.settings.accounts,
        "helloasso",
        "HelloAsso",
        &report,
    )
    .await
    .unwrap();
    report
}

#[tokio::test]
async fn installments_post_one_line_per_term_received() {
    let app = spawn(|_| {}).await;
    let (id, gateway_ref) = attempt_in_three_terms(&app).await;
    let body = &checkout_bodies(&app).await[0]["body"];
    assert_eq!(body["totalAmount"], 9000);
    assert_eq!(body["initialAmount"], 3000);
    let terms = body["terms"].as_array().unwrap();
    assert_eq!(terms.len(), 2);
    assert!(terms.iter().all(|t| t["amount"] == 3000));

    let pending = fetch_and_apply(&app, &gateway_ref).await;
    assert!(pending.captures.is_empty());
    assert_eq!(app.postings_for(&id).await, (0, 0));

    let settle = json!({"status": "paid", "notify": false});
    control(&app, &gateway_ref, settle.clone()).await;
    let first = fetch_and_apply(&app, &gateway_ref).await;
    assert_eq!(first.amount, Money::from_cents(9000));
    assert_eq!(first.captures.len(), 1);
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));

    // HelloAsso debits the next terms month after month.
    for (term, expected) in [(2, (2, 2)), (3, (3, 3))] {
        control(&app, &gateway_ref, settle.clone()).await;
        let report = fetch_and_apply(&app, &gateway_ref).await;
        assert_eq!(report.captures.len(), term);
        assert_eq!(app.postings_for(&id).await, expected);
    }
    // Read again, nothing is posted twice.
    fetch_and_apply(&app, &gateway_ref).await;
    assert_eq!(app.postings_for(&id).await, (3, 3));
    let paid: i64 = sqlx::query_scalar("SELECT paid_amount_cents FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(paid, 9000);
}

#[tokio::test]
async fn the_emulator_refuses_terms_that_do_not_add_up_to_the_total() {
    let app = spawn(|_| {}).await;
    attempt_in_three_terms(&app).await;
    let mut body = checkout_bodies(&app).await[0]["body"].clone();
    body["totalAmount"] = json!(9001);
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/helloasso/v5/organizations/association-demo/checkout-intents",
            app.address
        ))
        .bearer_auth(emulator_token(&app).await)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn the_emulator_refuses_calls_without_a_valid_token() {
    let app = spawn(|_| {}).await;
    let url = format!(
        "{}/sandbox/helloasso/v5/organizations/association-demo/checkout-intents/1",
        app.address
    );
    let client = reqwest::Client::new();
    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let made_up = client
        .get(&url)
        .bearer_auth("ha_at_made_up")
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 401);
    let json_grant = client
        .post(format!("{}/sandbox/helloasso/oauth2/token", app.address))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": "ha_emulator_client",
                      "client_secret": "ha_emulator_secret"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_grant.status(), 400, "the token endpoint takes a form");
    let valid = client
        .get(&url)
        .bearer_auth(emulator_token(&app).await)
        .send()
        .await
        .unwrap();
    assert_eq!(valid.status(), 404);
}

#[tokio::test]
async fn refunds_go_to_one_term_and_take_integer_cents_only() {
    let app = spawn(|_| {}).await;
    let (id, gateway_ref) = attempt_in_three_terms(&app).await;
    let settle = json!({"status": "paid", "notify": false});
    control(&app, &gateway_ref, settle.clone()).await;
    control(&app, &gateway_ref, settle).await;
    let report = fetch_and_apply(&app, &gateway_ref).await;
    let refund = |cents: i64, key: &str| RefundRequest {
        payment_id: id.clone(),
        gateway_ref: gateway_ref.clone(),
        capture_ids: report.captures.iter().map(|c| c.id.clone()).collect(),
        amount: Money::from_cents(cents),
        currency: "EUR".into(),
        idempotency_key: key.into(),
    };
    // Two terms of 30,00 € were received, but HelloAsso refunds one payment at a time.
    let too_much = gateway(&app).refund(&refund(4000, "r1")).await;
    assert!(
        matches!(&too_much, Err(obole::gateways::GatewayError::Rejected(m)) if m.contains("échéance")),
        "{too_much:?}"
    );
    // A whole term is refunded without `amount`, as HelloAsso's full refund.
    let whole = gateway(&app).refund(&refund(3000, "r2")).await.unwrap();
    assert_eq!(whole.amount, Money::from_cents(3000));
    let calls = journal(&app).await;
    let query = calls
        .iter()
        .rev()
        .find(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/refund")))
        .map(|e| e["query"].clone())
        .unwrap();
    assert!(query.get("amount").is_none(), "{query}");
    // The next one goes to the other term.
    let part = gateway(&app).refund(&refund(1250, "r3")).await.unwrap();
    assert_eq!(part.amount, Money::from_cents(1250));
    let after = gateway(&app).fetch_payment(&gateway_ref).await.unwrap();
    let refunded: i64 = after.refunds.iter().map(|r| r.amount.cents()).sum();
    assert_eq!(refunded, 4250);

    let term = &report.captures[1].id;
    let decimal = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/helloasso/v5/payments/{term}/refund?amount=12.50",
            app.address
        ))
        .bearer_auth(emulator_token(&app).await)
        .send()
        .await
        .unwrap();
    assert_eq!(decimal.status(), 400);
}
