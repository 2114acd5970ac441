//! Mollie specifics: amounts as exact decimal strings both ways, the unsigned webhook for an
//! unknown payment, what the emulator refuses, and obole's requests checked against Mollie's
//! published OpenAPI description.

use obole::config::Settings;
use obole::domain::Money;
use obole::gateways::mollie::{EMULATOR_TEST_KEY, MollieGateway};
use obole::gateways::{CheckoutRequest, Gateway, RefundRequest};
use serde_json::{Value, json};

mod spec;

use crate::contract;
use crate::helpers::{MEMBER, TestApp, spawn_app_with};

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

pub(crate) fn checkout_request(portal: &str, payment_id: &str, cents: i64) -> CheckoutRequest {
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
        save_card: None,
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
    // A live key is never the emulator's, even when the portal is configured with one.
    let live_key = "live_oboleEmulatorKey0000000000000";
    let live = spawn_app_with(|s| {
        enable_mollie(s);
        s.mollie.api_key = live_key.to_string().into();
    })
    .await;
    let (status, _, _) = create_raw(&live, Some(live_key), valid_body(&live)).await;
    assert_eq!(status, 401);
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
