//! PayPlug-specific behaviour: the emulator refuses what PayPlug refuses (missing version
//! header, bad key, amounts out of range or not in integer cents, missing PSD2 blocks), the
//! connector sends what PayPlug needs, a notification is only a hint, and an unpaid payment
//! can be aborted.

use obole::gateways::payplug::{API_VERSION, EMULATOR_SECRET_KEY};
use serde_json::{Value, json};

use crate::contract::{GatewayDriver, send, spawn, start};
use crate::helpers::{MANAGER, MEMBER, TestApp, spawn_app_with};

struct PayPlug;

impl GatewayDriver for PayPlug {
    fn id(&self) -> &'static str {
        "payplug"
    }
    fn configure(&self, settings: &mut obole::config::Settings) {
        settings.gateways.push("payplug".into());
        settings.payplug.emulator = true;
    }
    fn point_api_at(&self, settings: &mut obole::config::Settings, base_url: &str) {
        settings.payplug.api_base = Some(format!("{base_url}/sandbox/payplug"));
    }
    async fn genuine_notification(
        &self,
        app: &TestApp,
        _: &str,
        gateway_ref: &str,
    ) -> crate::contract::Notification {
        (
            Vec::new(),
            serde_json::to_vec(&fetched(app, gateway_ref).await).unwrap(),
        )
    }
    async fn forged_notification(
        &self,
        app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> crate::contract::Notification {
        self.genuine_notification(app, payment_id, gateway_ref)
            .await
    }
    fn forged_status(&self) -> u16 {
        200
    }
}

fn valid_payment() -> Value {
    json!({
        "amount": 3000,
        "currency": "EUR",
        "billing": {"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@exemple.org"},
        "shipping": {
            "first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@exemple.org",
            "delivery_type": "DIGITAL_GOODS"
        },
        "hosted_payment": {
            "return_url": "https://portail.exemple.org/retour",
            "cancel_url": "https://portail.exemple.org/annule"
        },
        "notification_url": "https://portail.exemple.org/webhooks/payplug",
        "metadata": {"obole_payment_id": "p1"}
    })
}

/// Calls the emulated API as a client would: (HTTP status, JSON body).
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    version: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/sandbox/payplug/v1/{path}", app.address));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(version) = version {
        request = request.header("PayPlug-Version", version);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("emulator");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, body: &Value) -> (u16, Value) {
    call(
        app,
        reqwest::Method::POST,
        "payments",
        Some(EMULATOR_SECRET_KEY),
        Some(API_VERSION),
        Some(body),
    )
    .await
}

async fn fetched(app: &TestApp, gateway_ref: &str) -> Value {
    let (status, payment) = call(
        app,
        reqwest::Method::GET,
        &format!("payments/{gateway_ref}"),
        Some(EMULATOR_SECRET_KEY),
        Some(API_VERSION),
        None,
    )
    .await;
    assert_eq!(status, 200, "{payment}");
    payment
}

#[tokio::test]
async fn the_api_wants_the_secret_key_and_the_payplug_version_header() {
    let app = spawn(&PayPlug).await;
    let body = valid_payment();
    let post = reqwest::Method::POST;

    let (status, error) = call(
        &app,
        post.clone(),
        "payments",
        Some(EMULATOR_SECRET_KEY),
        None,
        Some(&body),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["object"], "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("PayPlug-Version"),
        "{error}"
    );

    let (status, error) = call(
        &app,
        post.clone(),
        "payments",
        Some(EMULATOR_SECRET_KEY),
        Some("2013-01-01"),
        Some(&body),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["object"], "error");

    for key in [
        None,
        Some("sk_test_not_the_key"),
        Some("sk_live_obole_payplug_emulator_key"),
    ] {
        let (status, error) = call(
            &app,
            post.clone(),
            "payments",
            key,
            Some(API_VERSION),
            Some(&body),
        )
        .await;
        assert_eq!(status, 401, "{key:?}: {error}");
        assert_eq!(error["object"], "error");
    }

    let (status, payment) = create(&app, &body).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["object"], "payment");
    assert_eq!(payment["is_live"], false);
    assert_eq!(payment["is_paid"], false);
    assert!(
        payment["hosted_payment"]["payment_url"]
            .as_str()
            .unwrap()
            .contains("/sandbox/payplug/pay/pay_")
    );
}

#[tokio::test]
async fn the_emulator_refuses_amounts_out_of_range_or_not_in_integer_cents() {
    let app = spawn(&PayPlug).await;
    for amount in [
        json!(30.5),
        json!(3000.0),
        json!("3000"),
        json!(98),
        json!(0),
        json!(-100),
        json!(2_000_001),
        Value::Null,
    ] {
        let mut body = valid_payment();
        body["amount"] = amount.clone();
        let (status, error) = create(&app, &body).await;
        assert_eq!(status, 400, "{amount}: {error}");
        assert!(error["details"]["amount"].is_string(), "{amount}: {error}");
    }
    for amount in [99, 2_000_000] {
        let mut body = valid_payment();
        body["amount"] = amount.into();
        assert_eq!(create(&app, &body).await.0, 201, "{amount}");
    }
}

/// Spoils one part of a valid payment body.
type Breakage = fn(&mut Value);

#[tokio::test]
async fn the_emulator_refuses_payments_without_what_payplug_requires() {
    let app = spawn(&PayPlug).await;
    let broken: [(&str, Breakage); 9] = [
        ("billing", |b| b["billing"] = Value::Null),
        ("shipping", |b| b["shipping"] = Value::Null),
        ("billing.email", |b| {
            b["billing"]["email"] = "pas-un-courriel".into()
        }),
        ("shipping.delivery_type", |b| {
            b["shipping"]["delivery_type"] = "TELEPORT".into()
        }),
        ("hosted_payment.return_url", |b| {
            b["hosted_payment"]["return_url"] = "/retour".into()
        }),
        ("currency", |b| b["currency"] = "USD".into()),
        ("metadata.obole_payment_id", |b| {
            b["metadata"]["obole_payment_id"] = json!({"nested": 1})
        }),
        ("save_card", |b| b["save_card"] = true.into()),
        ("body", |b| b["amount_in_euros"] = 30.into()),
    ];
    for (field, breaks) in broken {
        let mut body = valid_payment();
        breaks(&mut body);
        let (status, error) = create(&app, &body).await;
        assert_eq!(status, 400, "{field}: {error}");
        let details = error["details"].as_object().unwrap();
        assert!(
            details.keys().any(|k| k.starts_with(field)),
            "{field}: {error}"
        );
    }
}

#[tokio::test]
async fn obole_sends_the_amount_the_attempt_and_the_psd2_blocks() {
    let app = spawn(&PayPlug).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &PayPlug, &browser, "30,25").await;
    let gateway_ref = app.gateway_ref(&id).await;
    assert!(gateway_ref.starts_with("pay_"));
    let payment = fetched(&app, &gateway_ref).await;
    assert_eq!(payment["amount"], 3025);
    assert_eq!(payment["currency"], "EUR");
    assert_eq!(payment["metadata"]["obole_payment_id"], id.as_str());
    assert_eq!(payment["billing"]["email"], MEMBER.0);
    assert_eq!(payment["shipping"]["delivery_type"], "DIGITAL_GOODS");
    assert_eq!(payment["hosted_payment"]["payment_url"], hosted.as_str());
    assert!(
        payment["notification"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/webhooks/payplug")
    );
    assert!(
        payment["hosted_payment"]["return_url"]
            .as_str()
            .unwrap()
            .starts_with(&app.address)
    );
}

#[tokio::test]
async fn an_amount_below_payplug_minimum_is_refused_and_nothing_is_recorded() {
    let app = spawn(&PayPlug).await;
    let browser = app.logged_in(MEMBER).await;
    let entries_before = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let page = browser.pay("0,98", "payplug").await;
    assert_eq!(
        page.status, 422,
        "a refusal of this request is the member's to fix"
    );
    assert!(page.location.is_none());
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("a refusé cette demande"),
        "{:?}",
        page.text_of("amount-error")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_entries").await,
        entries_before
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'failed'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE gateway_ref IS NOT NULL")
            .await,
        0
    );
    // The minimum itself is accepted.
    assert_eq!(browser.pay("0,99", "payplug").await.status, 303);
}

#[tokio::test]
async fn a_notification_claiming_paid_posts_nothing_until_payplug_says_so() {
    let app = spawn(&PayPlug).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, &PayPlug, &browser, "30").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let mut claim = fetched(&app, &gateway_ref).await;
    claim["is_paid"] = true.into();
    claim["paid_at"] = 1_700_000_000.into();
    let body = serde_json::to_vec(&claim).unwrap();

    assert_eq!(send(&app, "payplug", (Vec::new(), body.clone())).await, 200);
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));

    // Once PayPlug has the payment paid, the very same hint confirms it, once.
    crate::contract::control(
        &app,
        &PayPlug,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(send(&app, "payplug", (Vec::new(), body.clone())).await, 200);
    }
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

#[tokio::test]
async fn notifications_about_unknown_or_unreadable_resources_are_refused() {
    let app = spawn(&PayPlug).await;
    let unknown = serde_json::to_vec(
        &json!({"object": "payment", "id": "pay_unknownunknown", "is_paid": true}),
    )
    .unwrap();
    assert_eq!(send(&app, "payplug", (Vec::new(), unknown)).await, 401);
    let sneaky = serde_json::to_vec(&json!({"object": "payment", "id": "pay_1/refunds"})).unwrap();
    assert_eq!(send(&app, "payplug", (Vec::new(), sneaky)).await, 400);
    assert_eq!(
        send(&app, "payplug", (Vec::new(), b"not json".to_vec())).await,
        400
    );
    let plan = serde_json::to_vec(&json!({"object": "installment_plan", "id": "inst_1"})).unwrap();
    assert_eq!(send(&app, "payplug", (Vec::new(), plan)).await, 200);
}

#[tokio::test]
async fn a_manager_aborts_an_unpaid_payment_at_payplug() {
    let app = spawn(&PayPlug).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &PayPlug, &browser, "12").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let page = manager
        .post_form(
            &format!("/admin/payments/{id}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.payment_status(&id).await, "cancelled");
    let payment = fetched(&app, &gateway_ref).await;
    assert_eq!(payment["failure"]["code"], "aborted");
    assert_eq!(payment["is_paid"], false);
    // The payer can no longer pay it.
    let late = browser.post_form(&hosted, &[("action", "pay")]).await;
    assert_eq!(late.status, 409);
    // Nor can it be aborted twice, or a paid payment aborted.
    let abort = json!({"aborted": true});
    let (status, error) = call(
        &app,
        reqwest::Method::PATCH,
        &format!("payments/{gateway_ref}"),
        Some(EMULATOR_SECRET_KEY),
        Some(API_VERSION),
        Some(&abort),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

#[tokio::test]
async fn refunds_are_checked_like_payplug_does() {
    let app = spawn(&PayPlug).await;
    let (_, unpaid) = create(&app, &valid_payment()).await;
    let id = unpaid["id"].as_str().unwrap().to_string();
    let path = format!("payments/{id}/refunds");
    let refund = |amount: Value| json!({"amount": amount});
    let post = reqwest::Method::POST;
    let key = Some(EMULATOR_SECRET_KEY);
    let (status, _) = call(
        &app,
        post.clone(),
        &path,
        key,
        Some(API_VERSION),
        Some(&refund(1000.into())),
    )
    .await;
    assert_eq!(status, 400, "an unpaid payment is not refundable");
    crate::contract::control(
        &app,
        &PayPlug,
        &id,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    for amount in [json!(9), json!(3001), json!(10.5), json!("1000")] {
        let (status, error) = call(
            &app,
            post.clone(),
            &path,
            key,
            Some(API_VERSION),
            Some(&refund(amount.clone())),
        )
        .await;
        assert_eq!(status, 400, "{amount}: {error}");
    }
    let (status, first) = call(
        &app,
        post.clone(),
        &path,
        key,
        Some(API_VERSION),
        Some(&refund(1000.into())),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["object"], "refund");
    assert_eq!(first["payment_id"], id.as_str());
    // Without an amount, the rest is refunded.
    let (status, rest) = call(&app, post, &path, key, Some(API_VERSION), Some(&json!({}))).await;
    assert_eq!(status, 201, "{rest}");
    assert_eq!(rest["amount"], 2000);
    let payment = fetched(&app, &id).await;
    assert_eq!(payment["amount_refunded"], 3000);
    assert_eq!(payment["is_refunded"], true);
    let (_, list) = call(
        &app,
        reqwest::Method::GET,
        &path,
        key,
        Some(API_VERSION),
        None,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refund_made_at_payplug_is_booked_from_its_notification() {
    let app = spawn(&PayPlug).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, &PayPlug, &browser, "40").await;
    crate::contract::act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let gateway_ref = app.gateway_ref(&id).await;
    // Refunded from PayPlug's own portal: obole learns it only from the refund's notification,
    // which names the payment that obole then re-reads.
    let (status, refund) = call(
        &app,
        reqwest::Method::POST,
        &format!("payments/{gateway_ref}/refunds"),
        Some(EMULATOR_SECRET_KEY),
        Some(API_VERSION),
        Some(&json!({"amount": 1500})),
    )
    .await;
    assert_eq!(status, 201, "{refund}");
    app.wait_for_status(&id, "partially_refunded").await;
    let refund_lines =
        "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'";
    assert_eq!(app.count_for(refund_lines, &id).await, 1);
    // The same refund notified again books nothing more.
    let again = serde_json::to_vec(&refund).unwrap();
    assert_eq!(send(&app, "payplug", (Vec::new(), again)).await, 200);
    assert_eq!(app.count_for(refund_lines, &id).await, 1);
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

#[tokio::test]
async fn with_a_refused_key_no_payment_starts_and_notifications_are_retried() {
    let app = spawn_app_with(|s| {
        PayPlug.configure(s);
        s.payplug.secret_key = "sk_test_revoked".to_string().into();
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", "payplug").await;
    assert_eq!(page.status, 502);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE gateway_ref IS NOT NULL")
            .await,
        0
    );
    // A genuine notification cannot be checked with a refused key: 503, so PayPlug retries.
    let (_, payment) = create(&app, &valid_payment()).await;
    let hint = serde_json::to_vec(&payment).unwrap();
    assert_eq!(send(&app, "payplug", (Vec::new(), hint)).await, 503);
}
