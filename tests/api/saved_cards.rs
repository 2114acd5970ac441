//! Saved cards, with Stripe and Stancer against their emulators: a member keeps the card while
//! paying (only the gateway's references are stored), a manager charges it, dues are charged
//! on their date exactly once, refusals post nothing and mail the member, a member sees and
//! withdraws only their own card, and gateways that cannot keep a card do not offer it.

mod charges;
mod dues;
mod emulators;

use obole::config::Settings;
use obole::gateways::Registry;
use serde_json::{Value, json};
use sqlx::Row;

use crate::contract::act;
use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app_with};

/// Offers the sandbox, Stripe and Stancer, backed by their emulators; no background sweep.
pub fn configure(settings: &mut Settings) {
    settings.gateways = vec!["sandbox".into(), "stripe".into(), "stancer".into()];
    settings.stripe.emulator = true;
    settings.stancer.emulator = true;
    settings.reconcile.interval_secs = 0;
}

async fn spawn() -> TestApp {
    spawn_app_with(configure).await
}

/// A saved card as stored: (gateway, customer id, payment method id, label, revoked).
type Stored = (String, String, String, Option<String>, i64);

async fn stored_cards(app: &TestApp, member_id: &str) -> Vec<Stored> {
    sqlx::query(
        "SELECT gateway, customer_id, payment_method_id, label, revoked \
         FROM saved_payment_methods WHERE member_id = $1 ORDER BY created_at, id",
    )
    .bind(member_id)
    .fetch_all(&app.pool)
    .await
    .expect("saved cards")
    .iter()
    .map(|r| {
        (
            r.get("gateway"),
            r.get("customer_id"),
            r.get("payment_method_id"),
            r.get("label"),
            r.get("revoked"),
        )
    })
    .collect()
}

/// Pays with `gateway` ticking "save my card": the gateway's page tells the payer the card is
/// kept, the payer pays, the member comes back. Returns the payment once confirmed.
async fn pay_saving_card(app: &TestApp, browser: &Browser, gateway: &str, amount: &str) -> String {
    let basket = browser.get("/basket").await;
    assert!(
        basket.body.contains("id=\"save-card\""),
        "the pay form offers to save the card"
    );
    let page = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", amount),
                ("gateway", gateway),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let hosted = page.location.expect("the gateway's page");
    let consent = browser.get(&hosted).await.text_of("sandbox-consent");
    assert!(
        consent
            .as_deref()
            .is_some_and(|c| c.contains("Carte enregistrée")),
        "the gateway's page asks for consent: {consent:?}"
    );
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(gateway)
    .fetch_one(&app.pool)
    .await
    .expect("the attempt");
    let back = act(browser, &hosted, "pay").await;
    browser.get_following(&back).await;
    app.wait_for_status(&id, "paid").await;
    id
}

/// Sets what a kept card answers to its next off-session charge, at its emulator.
async fn card_will(app: &TestApp, gateway: &str, method: &str, status: &str) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/{gateway}/{method}",
            app.address
        ))
        .json(&json!({ "status": status }))
        .send()
        .await
        .expect("control");
    assert!(response.status().is_success(), "{}", response.status());
}

/// The manager's "charge the saved card" form on the member's page, sent with `amount` (or
/// the amount it proposes) and the confirmation ticked.
async fn charge_from_member_page(
    manager: &Browser,
    member_id: &str,
    amount: Option<&str>,
    confirm: bool,
) -> Page {
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let amount = amount
        .map(str::to_string)
        .or_else(|| page.value_of("card-charge-amount"))
        .expect("the charge form");
    let token = page.csrf();
    let mut fields = vec![("amount", amount.as_str()), ("csrf_token", token.as_str())];
    if confirm {
        fields.push(("confirm", "yes"));
    }
    manager
        .post_form(
            &format!("/admin/members/{member_id}/saved-card/charge"),
            &fields,
        )
        .await
}

/// The off-session charges of a member: (payment id, status, outcome).
async fn off_session(app: &TestApp, member_id: &str) -> Vec<(String, String, String)> {
    sqlx::query(
        "SELECT p.id, p.status, o.outcome FROM off_session_charges o \
         JOIN payments p ON p.id = o.payment_id WHERE p.member_id = $1 ORDER BY p.created_at, p.id",
    )
    .bind(member_id)
    .fetch_all(&app.pool)
    .await
    .expect("off-session charges")
    .iter()
    .map(|r| (r.get("id"), r.get("status"), r.get("outcome")))
    .collect()
}

/// Mails queued for a member, of one kind: their JSON payloads.
async fn mails(app: &TestApp, member_id: &str, kind: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, String>(
        "SELECT payload FROM mail_outbox WHERE recipient_id = $1 AND kind = $2 ORDER BY created_at",
    )
    .bind(member_id)
    .bind(kind)
    .fetch_all(&app.pool)
    .await
    .expect("mail outbox")
    .iter()
    .map(|p| serde_json::from_str(p).expect("a payload"))
    .collect()
}

fn registry(app: &TestApp) -> Registry {
    Registry::from_settings(&app.settings, &app.address, reqwest::Client::new()).expect("registry")
}

async fn balance(browser: &Browser) -> String {
    browser
        .get("/basket")
        .await
        .text_of("balance")
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_with_stripe_and_saving_the_card_keeps_only_the_gateway_references() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let browser = app.logged_in(MEMBER).await;
    let id = pay_saving_card(&app, &browser, "stripe", "30").await;
    let cards = stored_cards(&app, &member_id).await;
    assert_eq!(cards.len(), 1, "{cards:?}");
    let (gateway, customer, method, label, revoked) = cards[0].clone();
    assert_eq!(gateway, "stripe");
    assert!(customer.starts_with("cus_"), "{customer}");
    assert!(method.starts_with("pm_"), "{method}");
    assert_eq!(label.as_deref(), Some("Visa •••• 4242"));
    assert_eq!(revoked, 0);
    // What is stored is these references, a label, the consent and its payment: no card data.
    let row = sqlx::query("SELECT * FROM saved_payment_methods")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let columns: Vec<&str> = row.columns().iter().map(sqlx::Column::name).collect();
    assert_eq!(
        columns,
        [
            "id",
            "member_id",
            "gateway",
            "customer_id",
            "payment_method_id",
            "label",
            "consent_payment_id",
            "consented_at",
            "revoked",
            "revoked_at",
            "created_at"
        ]
    );
    assert_eq!(row.get::<String, _>("consent_payment_id"), id);
    // At Stripe the method is now the customer's, for off-session use.
    let session = crate::stripe::session(&app, &app.gateway_ref(&id).await).await;
    assert_eq!(session["customer"], customer.as_str());
    let method_at_stripe = stripe_get(&app, &format!("payment_methods/{method}")).await;
    assert_eq!(method_at_stripe["customer"], customer.as_str());
    // The payment itself was posted as any other, and the basket shows the card.
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let basket = browser.get("/basket").await;
    assert_eq!(
        basket.text_of("saved-card-label").as_deref(),
        Some("Visa •••• 4242")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_with_stancer_and_saving_the_card_keeps_only_the_gateway_references() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let browser = app.logged_in(MEMBER).await;
    let id = pay_saving_card(&app, &browser, "stancer", "30").await;
    let cards = stored_cards(&app, &member_id).await;
    assert_eq!(cards.len(), 1, "{cards:?}");
    let (gateway, customer, card, label, _) = cards[0].clone();
    assert_eq!(gateway, "stancer");
    assert!(customer.starts_with("cust_"), "{customer}");
    assert!(card.starts_with("card_"), "{card}");
    assert_eq!(label.as_deref(), Some("Visa •••• 4242"));
    // The intent was made for the member's customer, and the card kept (tokenized) for it.
    let intent = stancer_get(
        &app,
        &format!("payment_intents/{}", app.gateway_ref(&id).await),
    )
    .await;
    assert_eq!(intent["customer"], customer.as_str());
    assert_eq!(intent["card"], card.as_str());
    let at_stancer = stancer_get(&app, &format!("cards/{card}")).await;
    assert_eq!(at_stancer["tokenize"], true);
    let customer_at_stancer = stancer_get(&app, &format!("customers/{customer}")).await;
    assert_eq!(customer_at_stancer["email"], MEMBER.0);
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_box_ticked_no_card_is_kept_and_a_second_card_replaces_the_first() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let browser = app.logged_in(MEMBER).await;
    // Unticked: Stripe is not asked to keep anything.
    let page = browser.pay("10", "stripe").await;
    assert_eq!(page.status, 303);
    let hosted = page.location.unwrap();
    assert_eq!(browser.get(&hosted).await.text_of("sandbox-consent"), None);
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'stripe'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    assert!(stored_cards(&app, &member_id).await.is_empty());
    let intent = stripe_get(
        &app,
        &format!(
            "payment_intents/{}",
            crate::stripe::session(&app, &app.gateway_ref(&id).await).await["payment_intent"]
                .as_str()
                .unwrap()
        ),
    )
    .await;
    assert_eq!(intent["setup_future_usage"], Value::Null);

    // Two cards kept in turn: the later one is in use, for the same Stripe customer.
    pay_saving_card(&app, &browser, "stripe", "10").await;
    pay_saving_card(&app, &browser, "stripe", "10").await;
    let cards = stored_cards(&app, &member_id).await;
    assert_eq!(cards.len(), 2, "{cards:?}");
    assert_eq!(cards[0].4, 1, "the first card is set aside");
    assert_eq!(cards[1].4, 0);
    assert_eq!(
        cards[0].1, cards[1].1,
        "one customer per member at a gateway"
    );
    assert_ne!(cards[0].2, cards[1].2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_and_withdraws_only_their_own_card() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let owner = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &owner, "stripe", "30").await;
    let card_id: String = sqlx::query_scalar("SELECT id FROM saved_payment_methods")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let method: String = sqlx::query_scalar("SELECT payment_method_id FROM saved_payment_methods")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // Another member sees nothing of it, cannot withdraw it, nor reach the member's page.
    let other = app.logged_in(MEMBER2).await;
    let basket = other.get("/basket").await;
    assert!(basket.text_of("saved-card").is_none());
    assert!(!basket.body.contains("4242"));
    let refused = other
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &basket.csrf())],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        other
            .get(&format!("/admin/members/{member_id}"))
            .await
            .status,
        403
    );
    assert_eq!(stored_cards(&app, &member_id).await[0].4, 0, "still in use");

    // Without the CSRF token, nothing either.
    let no_token = owner
        .post_form(&format!("/basket/saved-card/{card_id}/forget"), &[])
        .await;
    assert_eq!(no_token.status, 403);
    assert_eq!(stored_cards(&app, &member_id).await[0].4, 0);

    // The owner withdraws it: revoked at obole, detached at Stripe.
    let basket = owner.get("/basket").await;
    let done = owner
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &basket.csrf())],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/basket"));
    let after = owner.get("/basket").await;
    assert!(after.text_of("saved-card").is_none());
    assert!(after.body.contains("est retirée"), "{}", after.body);
    assert_eq!(stored_cards(&app, &member_id).await[0].4, 1);
    let revoked_at: Option<String> =
        sqlx::query_scalar("SELECT revoked_at FROM saved_payment_methods")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(revoked_at.is_some());
    assert_eq!(
        stripe_get(&app, &format!("payment_methods/{method}")).await["customer"],
        Value::Null
    );
    // Withdrawing it again finds nothing.
    let again = owner
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &after.csrf())],
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_that_cannot_keep_a_card_do_not_offer_it() {
    // HelloAsso (and the built-in sandbox) alone: no option at all.
    let app = spawn_app_with(|s| {
        s.gateways = vec!["sandbox".into(), "helloasso".into()];
        s.helloasso.emulator = true;
        s.reconcile.interval_secs = 0;
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    assert!(!basket.body.contains("save_card"), "{}", basket.body);
    // Even asked for, it is refused before anything reaches HelloAsso.
    let refused = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30"),
                ("gateway", "helloasso"),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text_of("amount-error")
            .unwrap()
            .contains("HelloAsso ne permet pas d'enregistrer une carte")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);

    // With Stripe and Stancer enabled, the option names them, and the sandbox still refuses.
    let app = spawn().await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    let help = basket.text_of("save-card-help").unwrap();
    assert!(help.contains("Stripe, Stancer"), "{help}");
    assert!(basket.value_of("save-card").is_some());
    let refused = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30"),
                ("gateway", "sandbox"),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    let html = scraper::Html::parse_document(&refused.body);
    let ticked = scraper::Selector::parse("#save-card[checked]").unwrap();
    assert!(
        html.select(&ticked).next().is_some(),
        "the box stays ticked"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

/// A GET of the Stripe emulator's API.
async fn stripe_get(app: &TestApp, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/sandbox/stripe/v1/{path}", app.address))
        .bearer_auth(obole::gateways::stripe::EMULATOR_SECRET_KEY)
        .send()
        .await
        .expect("Stripe emulator")
        .json()
        .await
        .expect("json")
}

/// A GET of the Stancer emulator's API.
async fn stancer_get(app: &TestApp, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/sandbox/stancer/v2/{path}", app.address))
        .basic_auth(obole::gateways::stancer::EMULATOR_SECRET_KEY, Some(""))
        .send()
        .await
        .expect("Stancer emulator")
        .json()
        .await
        .expect("json")
}

/// `MANAGER` logged in.
async fn manager(app: &TestApp) -> Browser {
    app.logged_in(MANAGER).await
}
