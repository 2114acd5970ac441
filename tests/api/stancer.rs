//! Stancer specifics: no notification at all (the sweep or the member's return page confirm a
//! payment by reading it back), what obole asks Stancer for, refunds and their 50-cent
//! minimum, and what the emulator refuses as Stancer does.

use base64::Engine;
use obole::config::Settings;
use obole::gateways::stancer::{EMULATOR_SECRET_KEY, StancerGateway};
use obole::gateways::{Gateway, GatewayError};
use serde_json::{Value, json};

use crate::contract;
use crate::helpers::{Browser, MANAGER, MEMBER, TestApp, spawn_app_with};

fn enable_stancer(settings: &mut Settings) {
    settings.gateways.push("stancer".into());
    settings.stancer.emulator = true;
    settings.reconcile.interval_secs = 0;
}

async fn spawn() -> TestApp {
    spawn_app_with(enable_stancer).await
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// A read of Stancer's API (the emulator) with the emulator's key.
async fn api_get(app: &TestApp, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/sandbox/stancer/v2/{path}", app.address))
        .header("Authorization", basic(EMULATOR_SECRET_KEY))
        .send()
        .await
        .expect("emulator")
        .json()
        .await
        .expect("json")
}

async fn api_post(app: &TestApp, path: &str, auth: Option<String>, body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sandbox/stancer/v2/{path}", app.address))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.expect("emulator");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(app: &TestApp, browser: &Browser, amount: &str) -> (String, String) {
    let page = browser.pay(amount, "stancer").await;
    assert_eq!(page.status, 303, "pay should redirect: {}", page.body);
    let hosted = page.location.expect("hosted page");
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'stancer' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the attempt");
    (id, hosted)
}

async fn entries(app: &TestApp, id: &str) -> i64 {
    app.count_for(
        "SELECT COUNT(*) FROM journal_entries WHERE payment_id = $1",
        id,
    )
    .await
}

/// Settles the intent at the emulator with no webhook to tell obole.
async fn pay_quietly(app: &TestApp, id: &str, status: &str) {
    let gateway_ref = app.gateway_ref(id).await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/stancer/{gateway_ref}",
            app.address
        ))
        .json(&json!({"status": status, "notify": false}))
        .send()
        .await
        .expect("control");
    assert!(response.status().is_success());
}

async fn notifications(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM gateway_notifications")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obole_asks_stancer_for_an_intent_in_integer_cents_carrying_its_attempt_id() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &browser, "42,10").await;
    let gateway_ref = app.gateway_ref(&id).await;
    assert!(gateway_ref.starts_with("pi_"), "{gateway_ref}");
    let intent = api_get(&app, &format!("payment_intents/{gateway_ref}")).await;
    assert_eq!(intent["amount"], json!(4210));
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["order_id"], id.as_str());
    assert_eq!(intent["metadata"]["payment_id"], id.as_str());
    assert_eq!(
        intent["return_url"],
        format!("{}/payments/{id}/return", app.address).as_str()
    );
    assert_eq!(intent["url"], hosted.as_str());
    assert_eq!(intent["status"], "require_payment_method");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_nobody_returns_from_is_confirmed_by_the_sweep_alone() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &browser, "30").await;
    // Paid, no webhook set at Stancer, and the payer closed the tab before the return page.
    pay_quietly(&app, &id, "paid").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(notifications(&app).await, 0, "Stancer notifies nobody");
    let registry = obole::gateways::Registry::from_settings(
        &app.settings,
        &app.address,
        reqwest::Client::new(),
    )
    .unwrap();
    let mut settings = app.settings.clone();
    settings.reconcile.pending_after_secs = -5;
    let counts = obole::reconcile::run_once(&app.pool, &registry, &settings)
        .await
        .expect("sweep");
    assert_eq!(counts.posted, 1, "{counts:?}");
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let capture: String =
        sqlx::query_scalar("SELECT posting_key FROM journal_entries WHERE payment_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let intent = api_get(
        &app,
        &format!("payment_intents/{}", app.gateway_ref(&id).await),
    )
    .await;
    let paym = intent["payment"].as_str().expect("a payment").to_string();
    assert!(capture.contains(&paym), "{capture} is keyed by {paym}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_return_page_confirms_the_payment_by_reading_it_back() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &browser, "25").await;
    pay_quietly(&app, &id, "paid").await;
    // The payment page asks the gateway once the attempt has been quiet for a few seconds.
    tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
    assert_eq!(app.payment_status(&id).await, "pending");
    let page = browser
        .get_following(&format!("/payments/{id}/return"))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.text_of("payment-headline").as_deref(),
        Some("Paiement confirmé")
    );
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert_eq!(notifications(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_card_fails_the_attempt_on_the_return_page() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &browser, "25").await;
    let back = contract::act(&browser, &hosted, "refuse").await;
    assert_eq!(back, format!("{}/payments/{id}/return", app.address));
    browser.get_following(&back).await;
    app.wait_for_status(&id, "failed").await;
    let intent = api_get(
        &app,
        &format!("payment_intents/{}", app.gateway_ref(&id).await),
    )
    .await;
    let payment = api_get(
        &app,
        &format!("payments/{}", intent["payment"].as_str().unwrap()),
    )
    .await;
    assert_eq!(payment["status"], "refused");
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_reach_stancer_in_cents_and_under_fifty_cents_are_refused_clearly() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &browser, "40").await;
    let back = contract::act(&browser, &hosted, "pay").await;
    browser.get_following(&back).await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let before = entries(&app, &id).await;
    let small = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "0,49"), ("csrf_token", &token)],
        )
        .await;
    assert!(small.status >= 400, "{}", small.status);
    let message = small.text_of("action-error").expect("a message");
    assert!(message.contains("0,50 €"), "{message}");
    assert_eq!(entries(&app, &id).await, before);
    assert_eq!(app.payment_status(&id).await, "paid");
    let intent = api_get(
        &app,
        &format!("payment_intents/{}", app.gateway_ref(&id).await),
    )
    .await;
    let paym = intent["payment"].as_str().unwrap().to_string();
    assert_eq!(
        api_get(&app, &format!("payments/{paym}")).await["refunds"],
        json!([])
    );
    let done = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "12,34"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    app.wait_for_status(&id, "partially_refunded").await;
    let refunds = api_get(&app, &format!("payments/{paym}")).await["refunds"].clone();
    assert_eq!(refunds.as_array().map(Vec::len), Some(1));
    assert_eq!(refunds[0]["amount"], json!(1234));
    // A read of the payment afterwards posts the refund no second time.
    let hint = contract::send(
        &app,
        "stancer",
        (
            vec![("Content-Type".into(), "application/json".into())],
            json!({"id": app.gateway_ref(&id).await})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(hint, 200);
    assert_eq!(entries(&app, &id).await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_what_stancer_refuses() {
    let app = spawn().await;
    let valid = json!({
        "amount": 3000, "currency": "eur", "description": "Cotisation",
        "order_id": "0193a0f2-7c1e-7cc1-9a53-7b2a4b6c8d9e",
        "return_url": format!("{}/payments/x/return", app.address),
    });
    let key = Some(basic(EMULATOR_SECRET_KEY));
    let (status, body) = api_post(&app, "payment_intents/", key.clone(), valid.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["url"].as_str().is_some());
    for auth in [
        None,
        Some(basic("stest_notTheRightKey000000000000")),
        Some(basic("sprod_oboleEmulatorSecret0000000")),
        Some(format!("Bearer {EMULATOR_SECRET_KEY}")),
    ] {
        let (status, body) = api_post(&app, "payment_intents/", auth, valid.to_string()).await;
        assert_eq!(status, 401);
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // The amount in euros, as a float: refused, not rounded.
    let float = valid.to_string().replace("3000", "30.00");
    let (status, body) = api_post(&app, "payment_intents/", key.clone(), float).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]["amount"].is_string(), "{body}");
    let mut long = valid.clone();
    long["order_id"] = json!("x".repeat(37));
    let (status, body) = api_post(&app, "payment_intents/", key.clone(), long.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]["order_id"].is_string(), "{body}");
    let mut unknown = valid.clone();
    unknown["webhook_url"] = json!("https://x.example/");
    let (status, _) = api_post(&app, "payment_intents/", key, unknown.to_string()).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_rejected_with_stancers_message() {
    let app = spawn().await;
    let mut settings = app.settings.clone();
    settings.stancer.secret_key = "stest_notTheRightKey000000000000".to_string().into();
    let gateway = StancerGateway::new(&settings, &app.address, reqwest::Client::new());
    let error = gateway.fetch_payment("pi_abc123").await.unwrap_err();
    match error {
        GatewayError::Rejected(message) => assert!(message.contains("not authorized"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_about_unknown_intents_or_without_an_id_post_nothing() {
    let app = spawn().await;
    let before = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let hint = |body: &str| {
        (
            vec![("Content-Type".into(), "application/json".into())],
            body.as_bytes().to_vec(),
        )
    };
    assert_eq!(
        contract::send(
            &app,
            "stancer",
            hint(r#"{"id":"pi_unknown000000000000000000"}"#)
        )
        .await,
        200
    );
    assert_eq!(
        contract::send(&app, "stancer", hint(r#"{"payment":"paym_x"}"#)).await,
        400
    );
    assert_eq!(
        contract::send(&app, "stancer", hint(r#"{"id":"pi_../../refunds"}"#)).await,
        400
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_entries").await,
        before
    );
}
