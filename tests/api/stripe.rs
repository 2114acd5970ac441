//! Stripe-specific behaviour, against obole's Stripe emulator: the signature's tolerance and
//! rolled secrets, the fee booked from the balance transaction, refunds made outside obole,
//! events obole does not track, what the emulator refuses as Stripe does, and the form obole
//! sends checked against Stripe's OpenAPI spec (in `openapi`).

pub(crate) mod openapi;

use obole::config::Settings;
use obole::gateways::stripe::{
    API_VERSION, EMULATOR_SECRET_KEY, EMULATOR_WEBHOOK_SECRET, signature_header,
};
use serde_json::{Value, json};

use crate::contract::{Notification, act, send};
use crate::helpers::{Browser, MANAGER, MEMBER, TestApp, spawn_app_with};

/// Offers Stripe to members, backed by obole's emulator.
pub fn configure(settings: &mut Settings) {
    settings.gateways.push("stripe".into());
    settings.stripe.emulator = true;
    settings.reconcile.interval_secs = 0;
}

/// The session as Stripe's API returns it now.
pub async fn session(app: &TestApp, gateway_ref: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/stripe/v1/checkout/sessions/{gateway_ref}",
            app.address
        ))
        .bearer_auth(EMULATOR_SECRET_KEY)
        .send()
        .await
        .expect("Stripe emulator")
        .json()
        .await
        .expect("a checkout session")
}

/// An event as Stripe delivers it, signed with `secret` at `timestamp`.
pub fn event(kind: &str, object: Value, secret: &str, timestamp: i64) -> Notification {
    let body = serde_json::to_vec(&json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "api_version": API_VERSION,
        "created": timestamp,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
    }))
    .unwrap();
    let signature = signature_header(secret, timestamp, &body);
    (vec![("Stripe-Signature".into(), signature)], body)
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn spawn() -> TestApp {
    spawn_app_with(configure).await
}

/// Starts a Stripe payment: (obole payment id, hosted page).
async fn start(app: &TestApp, browser: &Browser, amount: &str) -> (String, String) {
    let page = browser.pay(amount, "stripe").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'stripe' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (id, page.location.expect("the hosted page"))
}

/// A payment started with Stripe and paid at the emulator, its notification lost.
async fn paid_quietly(app: &TestApp) -> (String, String) {
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(app, &browser, "30").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let controlled = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/stripe/{gateway_ref}",
            app.address
        ))
        .json(&json!({"status": "paid", "notify": false}))
        .send()
        .await
        .unwrap();
    assert!(controlled.status().is_success());
    (id, gateway_ref)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_signed_six_minutes_ago_is_refused() {
    let app = spawn().await;
    let (id, gateway_ref) = paid_quietly(&app).await;
    let session = session(&app, &gateway_ref).await;
    let stale = event(
        "checkout.session.completed",
        session,
        EMULATOR_WEBHOOK_SECRET,
        now() - 6 * 60,
    );
    assert_eq!(send(&app, "stripe", stale).await, 401);
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_signed_beyond_the_tolerance_in_the_future_is_refused() {
    let app = spawn().await;
    let (id, gateway_ref) = paid_quietly(&app).await;
    let session = session(&app, &gateway_ref).await;
    let early = event(
        "checkout.session.completed",
        session,
        EMULATOR_WEBHOOK_SECRET,
        now() + 6 * 60,
    );
    assert_eq!(send(&app, "stripe", early).await, 401);
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_signature_among_several_v1_values_is_accepted() {
    let app = spawn().await;
    let (id, gateway_ref) = paid_quietly(&app).await;
    let session = session(&app, &gateway_ref).await;
    let (headers, body) = event(
        "checkout.session.completed",
        session,
        EMULATOR_WEBHOOK_SECRET,
        now(),
    );
    let good = headers[0].1.clone();
    let (timestamp, good_v1) = good.split_once(",v1=").unwrap();
    let old_secret = signature_header("whsec_rolled_away", now(), &body);
    let old_v1 = old_secret.split_once(",v1=").unwrap().1;
    // Only wrong v1 values: refused.
    let wrong = format!("{timestamp},v1={old_v1},v1={}", "0".repeat(64));
    assert_eq!(
        send(
            &app,
            "stripe",
            (vec![("Stripe-Signature".into(), wrong)], body.clone())
        )
        .await,
        401
    );
    assert_eq!(app.postings_for(&id).await, (0, 0));
    let several = format!("{timestamp},v1={old_v1},v1={good_v1},v0={old_v1}");
    let status = send(
        &app,
        "stripe",
        (vec![("Stripe-Signature".into(), several)], body),
    )
    .await;
    assert!((200..300).contains(&status), "{status}");
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fee_of_the_balance_transaction_lands_on_account_627() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &browser, "42,10").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let session: Value = reqwest::Client::new()
        .get(format!(
            "{}/sandbox/stripe/v1/checkout/sessions/{gateway_ref}",
            app.address
        ))
        .query(&[(
            "expand[]",
            "payment_intent.latest_charge.balance_transaction",
        )])
        .bearer_auth(EMULATOR_SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fee = session["payment_intent"]["latest_charge"]["balance_transaction"]["fee"]
        .as_i64()
        .expect("a fee on the balance transaction");
    assert!(fee > 0);
    let booked: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(l.debit_cents), 0) AS BIGINT) FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id WHERE e.payment_id = $1 AND l.account = '627'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(booked, fee);
    let clearing: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(l.debit_cents), 0) AS BIGINT) FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id WHERE e.payment_id = $1 AND l.account = '5112'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(clearing, 4210 - fee);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_made_in_the_stripe_dashboard_is_posted_from_its_event() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &browser, "30").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let session = session(&app, &app.gateway_ref(&id).await).await;
    let intent = session["payment_intent"].as_str().unwrap().to_string();
    let refund = reqwest::Client::new()
        .post(format!("{}/sandbox/stripe/v1/refunds", app.address))
        .bearer_auth(EMULATOR_SECRET_KEY)
        .form(&[("payment_intent", intent.as_str()), ("amount", "1000")])
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);
    // Only the signed charge.refunded event tells obole.
    app.wait_for_status(&id, "partially_refunded").await;
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
async fn unknown_event_types_are_acknowledged_and_change_nothing() {
    let app = spawn().await;
    let (id, gateway_ref) = paid_quietly(&app).await;
    let session = session(&app, &gateway_ref).await;
    let before = app.count("SELECT COUNT(*) FROM journal_entries").await;
    for kind in [
        "customer.created",
        "checkout.session.something_new",
        "payment_intent.succeeded",
    ] {
        let event = event(kind, session.clone(), EMULATOR_WEBHOOK_SECRET, now());
        let status = send(&app, "stripe", event).await;
        assert!((200..300).contains(&status), "{kind}: {status}");
    }
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_entries").await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_key_is_refused_and_the_attempt_fails() {
    let app = spawn_app_with(|s| {
        configure(s);
        s.stripe.secret_key = "sk_test_not_the_key".to_string().into();
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("30", "stripe").await;
    assert_ne!(page.status, 303, "{}", page.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE gateway = 'stripe' AND status = 'failed'")
            .await,
        1
    );
}

/// Posts a form to the emulator as a client of Stripe's API would.
async fn post_form(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    idempotency_key: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sandbox/stripe{path}", app.address))
        .form(form);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const GOOD_SESSION: &[(&str, &str)] = &[
    ("mode", "payment"),
    (
        "success_url",
        "https://obole.example/ok?session_id={CHECKOUT_SESSION_ID}",
    ),
    ("line_items[0][quantity]", "1"),
    ("line_items[0][price_data][currency]", "eur"),
    ("line_items[0][price_data][unit_amount]", "3000"),
    (
        "line_items[0][price_data][product_data][name]",
        "Cotisation",
    ),
];

fn with(
    extra: &[(&'static str, &'static str)],
    without: &str,
) -> Vec<(&'static str, &'static str)> {
    GOOD_SESSION
        .iter()
        .copied()
        .filter(|(k, _)| *k != without)
        .chain(extra.iter().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_what_stripe_refuses() {
    let app = spawn().await;
    let path = "/v1/checkout/sessions";
    let (status, body) = post_form(&app, path, None, None, GOOD_SESSION).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _) = post_form(&app, path, Some("sk_test_wrong"), None, GOOD_SESSION).await;
    assert_eq!(status, 401);

    let key = Some(EMULATOR_SECRET_KEY);
    let refused = [
        (
            with(&[("notification_url", "https://x.example")], ""),
            "notification_url",
        ),
        (
            with(
                &[("line_items[0][price_data][unit_amount]", "30.00")],
                "line_items[0][price_data][unit_amount]",
            ),
            "line_items[0][price_data][unit_amount]",
        ),
        (with(&[], "success_url"), "success_url"),
        (
            with(&[], "line_items[0][price_data][product_data][name]"),
            "line_items[0][price_data][product_data][name]",
        ),
        (with(&[("metadata[a][b]", "c")], ""), "metadata[a][b]"),
        (
            with(
                &[("line_items[0][price_data][unit_amount]", "49")],
                "line_items[0][price_data][unit_amount]",
            ),
            "line_items",
        ),
    ];
    for (form, param) in refused {
        let (status, body) = post_form(&app, path, key, None, &form).await;
        assert_eq!(status, 400, "{param}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let (status, first) = post_form(&app, path, key, Some("k1"), GOOD_SESSION).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["livemode"], false);
    assert_eq!(first["amount_total"], 3000);
    let (_, again) = post_form(&app, path, key, Some("k1"), GOOD_SESSION).await;
    assert_eq!(again["id"], first["id"], "a retried request is not doubled");
    let other = with(&[("client_reference_id", "x")], "");
    let (status, body) = post_form(&app, path, key, Some("k1"), &other).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");

    let id = first["id"].as_str().unwrap();
    let (status, body) = post_form(
        &app,
        "/v1/refunds",
        key,
        None,
        &[("payment_intent", "pi_nope"), ("amount", "100")],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = post_form(&app, &format!("{path}/{id}/expire"), key, None, &[]).await;
    assert_eq!(status, 200);
    let (status, body) = post_form(&app, &format!("{path}/{id}/expire"), key, None, &[]).await;
    assert_eq!(
        status, 400,
        "an expired session cannot expire again: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_by_a_manager_stays_cancelled_when_stripes_event_follows() {
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &browser, "10").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let page = manager
        .post_form(
            &format!("/admin/payments/{id}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let gateway_ref = app.gateway_ref(&id).await;
    assert_eq!(session(&app, &gateway_ref).await["status"], "expired");
    // Stripe's checkout.session.expired event arrives about a second later.
    for _ in 0..40 {
        if app
            .count("SELECT COUNT(*) FROM gateway_notifications")
            .await
            > 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_notifications")
            .await,
        1
    );
    assert_eq!(app.payment_status(&id).await, "cancelled");
    assert_eq!(app.postings_for(&id).await, (0, 0));
}
