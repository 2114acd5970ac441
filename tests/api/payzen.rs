//! PayZen-specific behaviour, against obole's PayZen emulator: which IPNs prove anything
//! (the password's HMAC over the exact `kr-answer`, nothing else), the ERROR envelope answered
//! with HTTP 200, what the emulator refuses as PayZen does, refunds as CREDIT transactions,
//! and the back office telling that a payment order cannot be cancelled.

use obole::config::Settings;
use obole::gateways::payzen::{EMULATOR_PASSWORD, EMULATOR_SHOP_ID, ipn_hash};
use serde_json::{Value, json};

use crate::contract::{Notification, send};
use crate::helpers::{Browser, MANAGER, MEMBER, TestApp, spawn_app_with};

/// Offers PayZen to members, backed by obole's emulator.
pub fn configure(settings: &mut Settings) {
    settings.gateways.push("payzen".into());
    settings.payzen.emulator = true;
    settings.reconcile.interval_secs = 0;
}

/// The IPN form body the emulator would post about this payment order now.
pub async fn current_ipn(app: &TestApp, gateway_ref: &str) -> String {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/_control/payzen/{gateway_ref}/ipn",
            app.address
        ))
        .send()
        .await
        .expect("PayZen emulator")
        .text()
        .await
        .expect("an IPN")
}

/// The decoded `kr-answer` and `kr-hash` of an IPN form body.
pub fn ipn_fields(body: &str) -> (Value, String) {
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(body).expect("a form");
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    (
        serde_json::from_str(&get("kr-answer")).expect("kr-answer is JSON"),
        get("kr-hash"),
    )
}

/// An IPN form carrying exactly `answer`, signed with `key` and announced as `hash_key`.
pub fn signed_ipn(answer: &str, key: &str, hash_key: &str) -> String {
    serde_urlencoded::to_string([
        ("kr-hash", ipn_hash(key, answer).as_str()),
        ("kr-hash-algorithm", "sha256_hmac"),
        ("kr-hash-key", hash_key),
        ("kr-answer-type", "V4/Payment"),
        ("kr-answer", answer),
    ])
    .unwrap()
}

pub fn form(body: String) -> Notification {
    (
        vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body.into_bytes(),
    )
}

/// Calls a web service of the emulator with the test shop's keys (or others).
async fn call(app: &TestApp, service: &str, auth: (&str, &str), body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/payzen/api-payment/V4/{service}",
            app.address
        ))
        .basic_auth(auth.0, Some(auth.1))
        .json(&body)
        .send()
        .await
        .expect("PayZen emulator");
    let status = response.status().as_u16();
    (status, response.json().await.expect("an envelope"))
}

const SHOP: (&str, &str) = (EMULATOR_SHOP_ID, EMULATOR_PASSWORD);

async fn spawn() -> TestApp {
    spawn_app_with(configure).await
}

async fn start(app: &TestApp, browser: &Browser, amount: &str) -> String {
    let page = browser.pay(amount, "payzen").await;
    assert_eq!(page.status, 303, "{}", page.body);
    sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'payzen' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// A payment paid at the emulator, its IPN lost: (payment id, payment order id, IPN body).
async fn paid_quietly(app: &TestApp) -> (String, String, String) {
    let browser = app.logged_in(MEMBER).await;
    let id = start(app, &browser, "30").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let controlled = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/payzen/{gateway_ref}",
            app.address
        ))
        .json(&json!({"status": "paid", "notify": false}))
        .send()
        .await
        .unwrap();
    assert!(controlled.status().is_success());
    let ipn = current_ipn(app, &gateway_ref).await;
    (id, gateway_ref, ipn)
}

async fn nothing_changed(app: &TestApp, id: &str) {
    assert_eq!(app.payment_status(id).await, "pending");
    assert_eq!(app.postings_for(id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipn_signed_with_another_key_is_refused_and_changes_nothing() {
    let app = spawn().await;
    let (id, _, ipn) = paid_quietly(&app).await;
    let (answer, _) = ipn_fields(&ipn);
    let wrong = signed_ipn(&answer.to_string(), "testpassword_other", "password");
    assert_eq!(send(&app, "payzen", form(wrong)).await, 401);
    nothing_changed(&app, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipn_whose_answer_was_reserialized_is_refused() {
    let app = spawn().await;
    let (id, _, ipn) = paid_quietly(&app).await;
    let (answer, hash) = ipn_fields(&ipn);
    // Same JSON value, other bytes: the hash covers the bytes PayZen sent.
    let pretty = serde_json::to_string_pretty(&answer).unwrap();
    let moved = serde_urlencoded::to_string([
        ("kr-hash", hash.as_str()),
        ("kr-hash-algorithm", "sha256_hmac"),
        ("kr-hash-key", "password"),
        ("kr-answer-type", "V4/Payment"),
        ("kr-answer", pretty.as_str()),
    ])
    .unwrap();
    assert_eq!(send(&app, "payzen", form(moved)).await, 401);
    nothing_changed(&app, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_return_signed_with_the_hmac_key_is_no_ipn() {
    let app = spawn().await;
    let (id, _, ipn) = paid_quietly(&app).await;
    let (answer, _) = ipn_fields(&ipn);
    // Even a hash that matches under the password is refused once it claims the HMAC key.
    let browser_copy = signed_ipn(&answer.to_string(), EMULATOR_PASSWORD, "sha256_hmac");
    assert_eq!(send(&app, "payzen", form(browser_copy)).await, 401);
    let unsigned = serde_urlencoded::to_string([("kr-answer", answer.to_string())]).unwrap();
    assert_eq!(send(&app, "payzen", form(unsigned)).await, 401);
    nothing_changed(&app, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correctly_signed_ipn_for_a_paid_order_posts_once() {
    let app = spawn().await;
    let (id, gateway_ref, ipn) = paid_quietly(&app).await;
    let (answer, _) = ipn_fields(&ipn);
    assert_eq!(answer["orderStatus"], "PAID");
    assert_eq!(answer["paymentOrderId"], gateway_ref.as_str());
    assert_eq!(answer["orderDetails"]["orderId"], id.as_str());
    for _ in 0..3 {
        assert_eq!(send(&app, "payzen", form(ipn.clone())).await, 200);
    }
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let fee: Option<i64> = sqlx::query_scalar("SELECT fee_cents FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(fee.unwrap_or(0) == 0, "PayZen reports no fee: {fee:?}");
}

/// A PayZen that refuses every call the way it refuses a bad request: HTTP 200, ERROR.
async fn refusing_payzen() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok().json(json!({
                "webService": "Charge/CreatePaymentOrder", "version": "V4", "status": "ERROR",
                "answer": {
                    "errorCode": "INT_902", "errorMessage": "web-service input data validation error",
                    "detailedErrorCode": null, "detailedErrorMessage": "invalid amount",
                    "_type": "V4/WebService/WebServiceError",
                },
                "mode": "TEST", "_type": "V4/WebService/Response",
            }))
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_envelope_with_http_200_is_a_clear_refusal_for_the_member() {
    let refusing = refusing_payzen().await;
    let app = spawn_app_with(|s| {
        configure(s);
        s.payzen.api_base = Some(refusing);
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("30", "payzen").await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.text_of("amount-error")
            .unwrap_or_default()
            .contains("a refusé")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, 7);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'failed'")
            .await,
        1
    );
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM payments LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reason.contains("INT_902"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_are_refused_and_so_is_the_payment() {
    let app = spawn_app_with(|s| {
        configure(s);
        s.payzen.password = "testpassword_wrong".to_string().into();
    })
    .await;
    let (status, body) = call(
        &app,
        "Charge/PaymentOrder/Get",
        (EMULATOR_SHOP_ID, "testpassword_wrong"),
        json!({"paymentOrderId": "x"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], "ERROR");
    let browser = app.logged_in(MEMBER).await;
    assert_eq!(browser.pay("30", "payzen").await.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_what_payzen_refuses() {
    let app = spawn().await;
    let good = json!({
        "amount": 3000, "currency": "EUR", "orderId": "pay_1",
        "channelOptions": {"channelType": "URL"},
    });
    let (status, body) = call(&app, "Charge/CreatePaymentOrder", SHOP, good.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")));
    assert!(body["answer"]["paymentURL"].as_str().is_some());
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for (field, value) in [
        ("amount", json!("30.00")),
        ("amount", json!(30.5)),
        ("amount", json!(0)),
        ("amount", json!(-100)),
        ("currency", json!("EURO")),
        ("currency", json!("ZZZ")),
        ("orderId", json!("x".repeat(65))),
        ("channelOptions", json!({"channelType": "PIGEON"})),
        ("returnUrl", json!("https://obole.example/")),
    ] {
        let mut body = good.clone();
        body[field] = value;
        cases.push((field, body));
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("orderId");
    cases.push(("orderId", missing));
    for (field, body) in cases {
        let (status, answer) = call(&app, "Charge/CreatePaymentOrder", SHOP, body.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer["status"], "ERROR", "{field}: {body}");
        assert!(answer["answer"]["errorCode"].as_str().is_some());
    }
    let (status, _) = call(&app, "Charge/CreatePaymentOrder", ("00000000", "x"), good).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_are_credit_transactions_and_never_exceed_the_debit() {
    let app = spawn().await;
    let (id, _, ipn) = paid_quietly(&app).await;
    assert_eq!(send(&app, "payzen", form(ipn)).await, 200);
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let done = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "12,50"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    app.wait_for_status(&id, "partially_refunded").await;
    let (_, order) = call(&app, "Order/Get", SHOP, json!({"orderId": id})).await;
    let transactions = order["answer"]["transactions"].as_array().unwrap();
    let credit = transactions
        .iter()
        .find(|t| t["operationType"] == "CREDIT")
        .expect("a credit");
    assert_eq!(credit["amount"], 1250);
    let debit = transactions
        .iter()
        .find(|t| t["operationType"] == "DEBIT")
        .unwrap();
    // PayZen itself refuses more than what is left of the debit.
    let (_, too_much) = call(
        &app,
        "Transaction/CancelOrRefund",
        SHOP,
        json!({"uuid": debit["uuid"], "amount": 1751, "currency": "EUR"}),
    )
    .await;
    assert_eq!(too_much["status"], "ERROR");
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'",
            &id
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_says_a_payment_order_cannot_be_cancelled() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let id = start(&app, &browser, "10").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let page = manager
        .post_form(
            &format!("/admin/payments/{id}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.text_of("action-error")
            .unwrap()
            .contains("elle expirera d'elle-même")
    );
    assert_eq!(app.payment_status(&id).await, "pending");
}
