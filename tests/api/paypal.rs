//! PayPal-specific behaviour, against obole's PayPal emulator: the capture made on the
//! member's return (not before) with PayPal's fee on 627, webhooks believed only when PayPal's
//! `verify-webhook-signature` says SUCCESS, IPNs only when the postback says VERIFIED, refunds
//! of a capture in full or in part, what the emulator refuses as PayPal does, and obole's
//! requests checked against the Orders v2 and Payments v2 specs (in `spec`).

mod spec;

use obole::config::Settings;
use obole::gateways::paypal::{EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET};
use serde_json::{Value, json};

use crate::contract::{Notification, act, send};
use crate::helpers::{Browser, MANAGER, MEMBER, TestApp, spawn_app_with};

/// Offers PayPal to members, backed by obole's emulator.
pub fn configure(settings: &mut Settings) {
    settings.gateways.push("paypal".into());
    settings.paypal.emulator = true;
    settings.reconcile.interval_secs = 0;
}

/// What the emulator knows of an order: the order, the request that created it, the webhook
/// events sent about it and its IPN history.
pub async fn inspect(app: &TestApp, order_id: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/_control/paypal/{order_id}",
            app.address
        ))
        .send()
        .await
        .expect("PayPal emulator")
        .json()
        .await
        .expect("the order")
}

fn notification_of(event: &Value) -> Notification {
    let headers = event["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (
        headers,
        event["body"].as_str().expect("body").as_bytes().to_vec(),
    )
}

/// The last webhook event PayPal sent about the order, as it was delivered.
pub async fn last_event(app: &TestApp, order_id: &str) -> Notification {
    let known = inspect(app, order_id).await;
    let event = known["events"]
        .as_array()
        .and_then(|e| e.last())
        .unwrap_or_else(|| panic!("no event sent about {order_id}: {known}"));
    notification_of(event)
}

/// A `PAYMENT.CAPTURE.COMPLETED` PayPal never sent, with headers of the right shape.
pub async fn forged_capture_event(app: &TestApp, order_id: &str) -> Notification {
    let order = inspect(app, order_id).await["order"].clone();
    let unit = &order["purchase_units"][0];
    let body = json!({
        "id": "WH-FORGED0000000000",
        "event_version": "1.0",
        "create_time": "2026-01-01T00:00:00Z",
        "resource_type": "capture",
        "resource_version": "2.0",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "summary": "Payment completed",
        "resource": {
            "id": "FORGEDCAPTURE0001",
            "status": "COMPLETED",
            "amount": unit["amount"],
            "custom_id": unit["custom_id"],
            "supplementary_data": {"related_ids": {"order_id": order_id}},
        },
    });
    (
        vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "PAYPAL-TRANSMISSION-ID".into(),
                uuid::Uuid::new_v4().to_string(),
            ),
            (
                "PAYPAL-TRANSMISSION-TIME".into(),
                "2026-01-01T00:00:00Z".into(),
            ),
            ("PAYPAL-TRANSMISSION-SIG".into(), "Zm9yZ2Vk".into()),
            (
                "PAYPAL-CERT-URL".into(),
                "https://api.paypal.com/v1/notifications/certs/CERT-forged".into(),
            ),
            ("PAYPAL-AUTH-ALGO".into(), "SHA256withRSA".into()),
        ],
        serde_json::to_vec(&body).unwrap(),
    )
}

async fn spawn() -> TestApp {
    spawn_app_with(configure).await
}

/// Starts a PayPal payment: (obole payment id, PayPal order id, approval page).
async fn start(app: &TestApp, browser: &Browser, amount: &str) -> (String, String, String) {
    let page = browser.pay(amount, "paypal").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'paypal' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let order_id = app.gateway_ref(&id).await;
    (id, order_id, page.location.expect("the approval page"))
}

/// The payer approves at PayPal; every notification about the order is lost.
async fn approve_quietly(app: &TestApp, order_id: &str) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/paypal/{order_id}",
            app.address
        ))
        .json(&json!({"status": "paid", "notify": false}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// A Bearer token from the emulator, as the merchant's REST app gets one.
async fn token(app: &TestApp) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/paypal/v1/oauth2/token", app.address))
        .basic_auth(EMULATOR_CLIENT_ID, Some(EMULATOR_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .expect("a token")
        .to_string()
}

async fn api_post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/sandbox/paypal/{path}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn booked_on(app: &TestApp, id: &str, account: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(l.debit_cents), 0) AS BIGINT) FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id WHERE e.payment_id = $1 AND l.account = $2",
    )
    .bind(id)
    .bind(account)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_order_is_captured_on_the_members_return_with_the_fee_on_627() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, _) = start(&app, &browser, "30").await;
    approve_quietly(&app, &order_id).await;
    // Approved is not paid: nothing happens until someone captures. The payment page asks
    // the gateway again once the payment has been quiet for 4 seconds.
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(
        inspect(&app, &order_id).await["order"]["status"],
        "APPROVED"
    );
    let page = browser
        .get_following(&format!(
            "/payments/{id}/return?token={order_id}&PayerID=PAYER1"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(app.payment_status(&id).await, "paid");
    let known = inspect(&app, &order_id).await;
    assert_eq!(known["order"]["status"], "COMPLETED");
    let capture = &known["order"]["purchase_units"][0]["payments"]["captures"][0];
    let fee = obole::gateways::paypal::parse_value(
        capture["seller_receivable_breakdown"]["paypal_fee"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
    .cents();
    assert_eq!(fee, 35 + 87, "2,9 % + 0,35 € of 30 €");
    assert_eq!(booked_on(&app, &id, "627").await, fee);
    assert_eq!(app.postings_for(&id).await, (1, 1));
    // The capture's own event, and another return, post nothing more.
    let late = last_event(&app, &order_id).await;
    assert!(String::from_utf8_lossy(&late.1).contains("PAYMENT.CAPTURE.COMPLETED"));
    assert_eq!(send(&app, "paypal", late).await, 200);
    browser
        .get_following(&format!("/payments/{id}/return?token={order_id}"))
        .await;
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert_eq!(
        inspect(&app, &order_id).await["order"]["purchase_units"][0]["payments"]["captures"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_paypal_does_not_verify_is_refused_and_changes_nothing() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, _) = start(&app, &browser, "30").await;
    approve_quietly(&app, &order_id).await;
    let (headers, body) = last_event(&app, &order_id).await;
    // The same event re-serialised differently is not what PayPal signed.
    let reordered =
        serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_eq!(
        send(&app, "paypal", (headers.clone(), reordered)).await,
        401
    );
    // The right body with another transmission's signature.
    let mut wrong_sig = headers.clone();
    for (name, value) in wrong_sig.iter_mut() {
        if name == "PAYPAL-TRANSMISSION-SIG" {
            *value = "c2lnbmF0dXJl".into();
        }
    }
    assert_eq!(send(&app, "paypal", (wrong_sig, body.clone())).await, 401);
    // No transmission headers at all.
    let bare = vec![("Content-Type".into(), "application/json".into())];
    assert_eq!(send(&app, "paypal", (bare, body.clone())).await, 401);
    // Nothing was believed: not even a capture was attempted.
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(
        inspect(&app, &order_id).await["order"]["status"],
        "APPROVED"
    );
    assert_eq!(app.postings_for(&id).await, (0, 0));
    // The genuine one is believed.
    assert_eq!(send(&app, "paypal", (headers, body)).await, 200);
    assert_eq!(app.payment_status(&id).await, "paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipn_is_believed_only_when_paypal_answers_verified() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, _) = start(&app, &browser, "30").await;
    approve_quietly(&app, &order_id).await;
    // Captured outside obole (from PayPal's dashboard, say): obole has not heard of it.
    let token = token(&app).await;
    let (status, _) = api_post(
        &app,
        &token,
        &format!("v2/checkout/orders/{order_id}/capture"),
        json!({}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(app.payment_status(&id).await, "pending");
    let ipn = inspect(&app, &order_id).await["ipns"][0]
        .as_str()
        .expect("an IPN")
        .to_string();
    let form = |body: String| -> Notification {
        (
            vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body.into_bytes(),
        )
    };
    // Altered by one character: PayPal answers INVALID.
    let altered = ipn.replacen("payment_status=Completed", "payment_status=Completec", 1);
    assert_ne!(altered, ipn);
    assert_eq!(send(&app, "paypal", form(altered)).await, 401);
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    // The message as PayPal sent it: VERIFIED, then the order is read from the API.
    assert_eq!(send(&app, "paypal", form(ipn.clone())).await, 200);
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert!(booked_on(&app, &id, "627").await > 0);
    assert_eq!(send(&app, "paypal", form(ipn)).await, 200);
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

async fn refund(manager: &Browser, id: &str, amount: &str) -> u16 {
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", amount), ("csrf_token", &token)],
        )
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_is_refunded_in_part_then_in_full_at_paypal() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, hosted) = start(&app, &browser, "30").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    assert_eq!(refund(&manager, &id, "12,50").await, 303);
    app.wait_for_status(&id, "partially_refunded").await;
    let known = inspect(&app, &order_id).await;
    let payments = &known["order"]["purchase_units"][0]["payments"];
    assert_eq!(payments["captures"][0]["status"], "PARTIALLY_REFUNDED");
    assert_eq!(payments["refunds"][0]["amount"]["value"], "12.50");
    assert_eq!(refund(&manager, &id, "17,50").await, 303);
    app.wait_for_status(&id, "refunded").await;
    let known = inspect(&app, &order_id).await;
    let payments = &known["order"]["purchase_units"][0]["payments"];
    assert_eq!(payments["captures"][0]["status"], "REFUNDED");
    assert_eq!(payments["refunds"].as_array().unwrap().len(), 2);
    // PayPal refuses to refund more than is left.
    let capture_id = payments["captures"][0]["id"].as_str().unwrap();
    let (status, error) = api_post(
        &app,
        &token(&app).await,
        &format!("v2/payments/captures/{capture_id}/refund"),
        json!({"amount": {"currency_code": "EUR", "value": "1.00"}}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["details"][0]["issue"], "CAPTURE_FULLY_REFUNDED");
    let refund_lines = app
        .count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'",
            &id,
        )
        .await;
    assert_eq!(refund_lines, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_capture_is_refunded_at_once() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, hosted) = start(&app, &browser, "30").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    assert_eq!(refund(&manager, &id, "30").await, 303);
    app.wait_for_status(&id, "refunded").await;
    let known = inspect(&app, &order_id).await;
    let payments = &known["order"]["purchase_units"][0]["payments"];
    assert_eq!(payments["captures"][0]["status"], "REFUNDED");
    assert_eq!(payments["refunds"][0]["amount"]["value"], "30.00");
    // The refund carries obole's refund id, the key a retry would reuse.
    let refund_id: String = sqlx::query_scalar("SELECT id FROM refunds WHERE payment_id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(known["refund_requests"][0]["invoice_id"], refund_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_whose_funding_is_declined_ends_failed_without_posting() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, order_id, hosted) = start(&app, &browser, "30").await;
    let back = act(&browser, &hosted, "refuse").await;
    assert!(back.contains(&format!("token={order_id}")), "{back}");
    assert!(back.contains("PayerID="), "{back}");
    browser.get_following(&back).await;
    app.wait_for_status(&id, "failed").await;
    assert_eq!(app.postings_for(&id).await, (0, 0));
    let known = inspect(&app, &order_id).await;
    assert_eq!(
        known["order"]["purchase_units"][0]["payments"]["captures"][0]["status"],
        "DECLINED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_what_paypal_refuses() {
    let app = spawn().await;
    let client = reqwest::Client::new();
    let wrong = client
        .post(format!("{}/sandbox/paypal/v1/oauth2/token", app.address))
        .basic_auth(EMULATOR_CLIENT_ID, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let valid = json!({
        "intent": "CAPTURE",
        "purchase_units": [{
            "custom_id": "p1", "invoice_id": "p1",
            "amount": {"currency_code": "EUR", "value": "30.00"}
        }],
        "payment_source": {"paypal": {"experience_context": {
            "return_url": "https://portail.exemple.org/retour",
            "cancel_url": "https://portail.exemple.org/abandon",
            "user_action": "PAY_NOW"
        }}}
    });
    let (status, error) = api_post(&app, "not-a-token", "v2/checkout/orders", valid.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(error["name"], "AUTHENTICATION_FAILURE");

    let token = token(&app).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            {
                let mut v = valid.clone();
                v["purchase_units"][0]["amount"]["value"] = json!(30.0);
                v
            },
            400,
            "INVALID_PARAMETER_SYNTAX",
        ),
        (
            {
                let mut v = valid.clone();
                v["purchase_units"][0]["amount"]["value"] = json!("30.001");
                v
            },
            422,
            "DECIMAL_PRECISION",
        ),
        (
            {
                let mut v = valid.clone();
                v.as_object_mut().unwrap().remove("intent");
                v
            },
            400,
            "MISSING_REQUIRED_PARAMETER",
        ),
        (
            {
                let mut v = valid.clone();
                v["purchase_units"][0]["custom_id"] = json!("x".repeat(128));
                v
            },
            400,
            "INVALID_STRING_LENGTH",
        ),
        (
            {
                let mut v = valid.clone();
                v["payment_source"]["paypal"]["experience_context"]["user_action"] =
                    json!("PAY_LATER");
                v
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ];
    for (body, expected, issue) in cases {
        let (status, error) = api_post(&app, &token, "v2/checkout/orders", body.clone()).await;
        assert_eq!(status, expected, "{body} → {error}");
        assert_eq!(error["details"][0]["issue"], issue, "{error}");
        assert!(error["debug_id"].is_string());
    }
    let (status, order) = api_post(&app, &token, "v2/checkout/orders", valid.clone()).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "PAYER_ACTION_REQUIRED");
    // One invoice id, one order.
    let (status, error) = api_post(&app, &token, "v2/checkout/orders", valid).await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["issue"], "DUPLICATE_INVOICE_ID");
    // Nothing to capture before the payer approves.
    let (status, error) = api_post(
        &app,
        &token,
        &format!(
            "v2/checkout/orders/{}/capture",
            order["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["issue"], "ORDER_NOT_APPROVED");
}
