//! What obole asks Stripe for (checked against Stripe's OpenAPI spec), and what the emulators
//! refuse as the gateways do when a saved card is charged.

use obole::domain::Money;
use obole::gateways::stripe::{EMULATOR_SECRET_KEY, StripeGateway};
use obole::gateways::{CheckoutRequest, Gateway, OffSessionRequest, SaveCard, SavedMethod};
use serde_json::{Value, json};

use super::{configure, pay_saving_card, spawn, stored_cards};
use crate::helpers::{MEMBER, MEMBER2, TestApp, spawn_app_with};
use crate::stripe::openapi::{form_tree, load_spec, problems_with, recorder};

/// A form POST to the Stripe emulator: (status, body, replayed).
async fn stripe_post(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    key: Option<&str>,
) -> (u16, Value, bool) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sandbox/stripe/v1/{path}", app.address))
        .bearer_auth(EMULATOR_SECRET_KEY)
        .form(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("Stripe emulator");
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

async fn stancer_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/sandbox/stancer/v2/{path}", app.address))
        .basic_auth(obole::gateways::stancer::EMULATOR_SECRET_KEY, Some(""))
        .json(&body)
        .send()
        .await
        .expect("Stancer emulator");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> String {
    body["error"]["message"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_emulator_refuses_off_session_charges_stripe_would_refuse() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    pay_saving_card(&app, &app.logged_in(MEMBER).await, "stripe", "30").await;
    let other_id = app.member_id(MEMBER2.0).await;
    pay_saving_card(&app, &app.logged_in(MEMBER2).await, "stripe", "30").await;
    let (_, customer, method, ..) = stored_cards(&app, &member_id).await[0].clone();
    let (_, _, others_method, ..) = stored_cards(&app, &other_id).await[0].clone();
    let charge = |amount: &'static str, customer: String, method: String| {
        vec![
            ("amount", amount.to_string()),
            ("currency", "eur".to_string()),
            ("customer", customer),
            ("payment_method", method),
            ("off_session", "true".to_string()),
            ("confirm", "true".to_string()),
        ]
    };
    let send = async |form: Vec<(&str, String)>, key: Option<&str>| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        stripe_post(&app, "payment_intents", &form, key).await
    };

    let good = charge("3000", customer.clone(), method.clone());
    let without = |name: &str| -> Vec<(&str, String)> {
        good.iter().filter(|(k, _)| *k != name).cloned().collect()
    };
    let (status, body, _) = send(without("off_session"), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "off_session");
    let (status, body, _) = send(without("confirm"), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("confirm=true"), "{body}");
    let (status, body, _) = send(charge("30.00", customer.clone(), method.clone()), None).await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (400, json!("amount"))
    );
    let (status, body, _) = send(charge("10", customer.clone(), method.clone()), None).await;
    assert!(
        status == 400 && message(&body).contains("at least"),
        "{body}"
    );
    let (status, body, _) = send(charge("3000", "cus_unknown".into(), method.clone()), None).await;
    assert!(
        status == 400 && message(&body).contains("No such customer"),
        "{body}"
    );
    let (status, body, _) = send(charge("3000", customer.clone(), "pm_unknown".into()), None).await;
    assert!(
        status == 400 && message(&body).contains("No such PaymentMethod"),
        "{body}"
    );
    let (status, body, _) = send(charge("3000", customer.clone(), others_method), None).await;
    assert!(
        status == 400 && message(&body).contains("does not belong"),
        "{body}"
    );
    let mut unknown = good.clone();
    unknown.push(("application_fee", "1".into()));
    assert_eq!(send(unknown, None).await.0, 400);

    // A good one succeeds, and its key replays the same answer.
    let (status, first, replayed) = send(good.clone(), Some("key-1")).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount_received"], 3000);
    let (status, again, replayed) = send(good.clone(), Some("key-1")).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again["id"], first["id"]);

    // A declined card answers 402, naming the intent it left; replayed as such.
    super::card_will(&app, "stripe", &method, "declined").await;
    let (status, declined, _) = send(good.clone(), Some("key-2")).await;
    assert_eq!(status, 402, "{declined}");
    assert_eq!(declined["error"]["type"], "card_error");
    assert_eq!(declined["error"]["code"], "card_declined");
    assert_eq!(
        declined["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    let (status, replay, replayed) = send(good.clone(), Some("key-2")).await;
    assert_eq!((status, replayed), (402, true));
    assert_eq!(
        replay["error"]["payment_intent"]["id"],
        declined["error"]["payment_intent"]["id"]
    );

    // Detached, the method cannot be charged nor detached again.
    let detach = format!("payment_methods/{method}/detach");
    assert_eq!(stripe_post(&app, &detach, &[], None).await.0, 200);
    let (status, body, _) = stripe_post(&app, &detach, &[], None).await;
    assert!(
        status == 400 && message(&body).contains("not attached"),
        "{body}"
    );
    let (status, body, _) = send(good, None).await;
    assert!(
        status == 400 && message(&body).contains("detached"),
        "{body}"
    );

    // A session cannot name a customer and an email, nor a customer Stripe does not know.
    let session = |extra: Vec<(&'static str, &'static str)>| {
        let mut form = vec![
            ("mode", "payment"),
            ("success_url", "http://127.0.0.1/ok"),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", "3000"),
            (
                "line_items[0][price_data][product_data][name]",
                "Cotisation",
            ),
        ];
        form.extend(extra);
        form
    };
    let (status, body, _) = stripe_post(
        &app,
        "checkout/sessions",
        &session(vec![("customer", "cus_unknown")]),
        None,
    )
    .await;
    assert!(
        status == 400 && message(&body).contains("No such customer"),
        "{body}"
    );
    let (status, body, _) = stripe_post(
        &app,
        "checkout/sessions",
        &session(vec![("customer", "cus_x"), ("customer_email", "a@b.fr")]),
        None,
    )
    .await;
    assert!(
        status == 400 && message(&body).contains("only specify one"),
        "{body}"
    );
    let (status, _, _) = stripe_post(
        &app,
        "checkout/sessions",
        &session(vec![("payment_intent_data[setup_future_usage]", "later")]),
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stancer_emulator_refuses_payments_on_cards_stancer_would_refuse() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stancer", "30").await;
    let (_, customer, card, ..) = stored_cards(&app, &member_id).await[0].clone();
    let payment = |unique: &str| {
        json!({
            "amount": 3000, "currency": "eur", "description": "Cotisation",
            "order_id": unique, "unique_id": unique, "capture": true,
            "customer": customer, "card": card,
        })
    };
    let with = |unique: &str, field: &str, value: Value| {
        let mut body = payment(unique);
        body[field] = value;
        body
    };
    let (status, body) = stancer_post(
        &app,
        "payments/",
        with("u1", "card", json!("card_unknown000000000000000")),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = stancer_post(
        &app,
        "payments/",
        with("u1", "customer", json!("cust_unknown000000000000000")),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = stancer_post(&app, "payments/", with("u1", "auth", json!(false))).await;
    assert_eq!(
        (status, body["error"]["message"]["auth"].is_string()),
        (400, true),
        "{body}"
    );
    let (status, _) = stancer_post(&app, "payments/", with("u1", "amount", json!(30.5))).await;
    assert_eq!(status, 400);
    let (status, _) = stancer_post(&app, "payments/", with("u1", "currency", json!("EUR"))).await;
    assert_eq!(status, 400);
    let mut no_customer = payment("u1");
    no_customer.as_object_mut().unwrap().remove("customer");
    assert_eq!(stancer_post(&app, "payments/", no_customer).await.0, 400);

    let (status, paid) = stancer_post(&app, "payments/", payment("u1")).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        (paid["status"].clone(), paid["response"].clone()),
        (json!("to_capture"), json!("00"))
    );
    let (status, body) = stancer_post(&app, "payments/", payment("u1")).await;
    assert_eq!(status, 409, "a unique_id is used once: {body}");

    // A card used without a customer is not kept: it cannot be charged again.
    let page = member.pay("10", "stancer").await;
    let hosted = page.location.unwrap();
    crate::contract::act(&member, &hosted, "pay").await;
    let single_use: String = sqlx::query_scalar(
        "SELECT gateway_ref FROM payments WHERE gateway = 'stancer' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let intent = super::stancer_get(&app, &format!("payment_intents/{single_use}")).await;
    let (status, body) = stancer_post(
        &app,
        "payments/",
        with("u2", "card", intent["card"].clone()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]["card"].is_string(), "{body}");

    // Customers need an email or a mobile, and a name of 4 characters or more.
    let (status, _) = stancer_post(&app, "customers/", json!({"name": "Camille Martin"})).await;
    assert_eq!(status, 400);
    let (status, _) = stancer_post(
        &app,
        "customers/",
        json!({"name": "Cam", "email": "c@exemple.org"}),
    )
    .await;
    assert_eq!(status, 400);
    // An intent for an unknown customer is refused.
    let (status, _) = stancer_post(
        &app,
        "payment_intents/",
        json!({"amount": 3000, "currency": "eur", "return_url": "https://asso.example/r",
               "customer": "cust_unknown000000000000000"}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_obole_asks_stripe_for_a_saved_card_follows_stripes_openapi_spec() {
    let (stand_in, seen) = recorder().await;
    let app = spawn_app_with(|s| {
        configure(s);
        s.stripe.api_base = Some(format!("{stand_in}/sandbox/stripe"));
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    let page = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30"),
                ("gateway", "stripe"),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let spec = load_spec();
    let first = seen.lock().unwrap()[0].clone();
    let problems = problems_with(&spec, "POST", "/v1/checkout/sessions", &first.body);
    assert!(problems.is_empty(), "{problems:#?}\n{}", first.body);
    let tree = form_tree(&first.body);
    assert_eq!(tree["customer_creation"], "always");
    assert_eq!(tree["customer_email"], MEMBER.0);
    assert_eq!(
        tree["payment_intent_data"]["setup_future_usage"],
        "off_session"
    );

    let gateway = StripeGateway::new(&app.settings, &app.address, reqwest::Client::new());
    let request = CheckoutRequest {
        payment_id: "pay_1".into(),
        amount: Money::from_cents(3000),
        currency: "EUR".into(),
        description: "Cotisation".into(),
        payer_email: "m@exemple.org".into(),
        payer_first_name: "M".into(),
        payer_last_name: "N".into(),
        return_url: "https://obole.example/payments/pay_1/return".into(),
        cancel_url: "https://obole.example/payments/pay_1/return".into(),
        error_url: "https://obole.example/payments/pay_1/return".into(),
        notification_url: "https://obole.example/webhooks/stripe".into(),
        installments: None,
        contains_donation: false,
        save_card: Some(SaveCard {
            customer_id: Some("cus_known".into()),
        }),
    };
    gateway.create_payment(&request).await.expect("the session");
    gateway
        .charge_saved_card(&OffSessionRequest {
            payment_id: "pay_2".into(),
            amount: Money::from_cents(2500),
            currency: "EUR".into(),
            description: "Cotisation — Camille Martin".into(),
            customer_id: "cus_known".into(),
            payment_method_id: "pm_known".into(),
        })
        .await
        .expect("the charge");
    gateway
        .forget_saved_card(&SavedMethod {
            customer_id: "cus_known".into(),
            payment_method_id: "pm_known".into(),
            label: None,
        })
        .await
        .expect("the detach");
    let seen = seen.lock().unwrap().clone();
    let known = &seen[1];
    assert!(problems_with(&spec, "POST", "/v1/checkout/sessions", &known.body).is_empty());
    let tree = form_tree(&known.body);
    assert_eq!(tree["customer"], "cus_known");
    assert!(tree.get("customer_email").is_none() && tree.get("customer_creation").is_none());

    let charge = &seen[2];
    assert_eq!(charge.path, "/sandbox/stripe/v1/payment_intents");
    assert_eq!(charge.idempotency_key.as_deref(), Some("pay_2"));
    let problems = problems_with(&spec, "POST", "/v1/payment_intents", &charge.body);
    assert!(problems.is_empty(), "{problems:#?}\n{}", charge.body);
    let tree = form_tree(&charge.body);
    assert_eq!(tree["amount"], "2500");
    assert_eq!(tree["off_session"], "true");
    assert_eq!(tree["confirm"], "true");
    assert_eq!(tree["payment_method"], "pm_known");
    assert_eq!(tree["metadata"]["obole_payment_id"], "pay_2");

    let detach = &seen[3];
    assert_eq!(
        detach.path,
        "/sandbox/stripe/v1/payment_methods/pm_known/detach"
    );
    let problems = problems_with(
        &spec,
        "POST",
        "/v1/payment_methods/{payment_method}/detach",
        &detach.body,
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
