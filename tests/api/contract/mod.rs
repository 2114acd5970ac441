//! The contract every gateway passes, end to end against its emulator: success, refusal,
//! error, back, duplicate and concurrent notifications, forged notification, amount mismatch,
//! lost notification caught by the sweep, refund, cancel, gateway down or slow.
//!
//! A gateway joins by implementing [`GatewayDriver`] (in `drivers/<name>.rs`) and adding one
//! `contract_tests!` line below.

pub mod helloasso;
pub mod mollie;
pub mod paypal;
pub mod payplug;
pub mod payzen;
pub mod sandbox;
pub mod stancer;
pub mod stripe;

use std::time::Duration;

use obole::config::Settings;
use obole::gateways::{Capabilities, Registry};
use serde_json::json;

use crate::helpers::{
    Browser, MANAGER, MEMBER, MEMBER_OWES_CENTS, TestApp, all_at_once, spawn_app_with,
};

/// A notification as a test sends it: headers and raw body.
pub type Notification = (Vec<(String, String)>, Vec<u8>);

#[allow(async_fn_in_trait)]
pub trait GatewayDriver: Sync {
    /// The gateway's id, as in `settings.gateways`.
    fn id(&self) -> &'static str;
    /// Enables the gateway, backed by its emulator.
    fn configure(&self, settings: &mut Settings);
    /// Points the connector's API at another address (a dead or silent port).
    fn point_api_at(&self, settings: &mut Settings, base_url: &str);
    /// The notification the gateway sends about this payment once something happened.
    async fn genuine_notification(
        &self,
        app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> Notification;
    /// A notification claiming the payment is paid, which the gateway never sent or does
    /// not back (wrong signature; or a hint about a payment the gateway says is unpaid).
    async fn forged_notification(
        &self,
        app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> Notification;
    /// What obole answers a forged notification: 401 for signed gateways, 2xx for gateways
    /// whose notifications are only hints to re-fetch.
    fn forged_status(&self) -> u16;
}

pub async fn spawn<D: GatewayDriver>(driver: &D) -> TestApp {
    spawn_app_with(|s| {
        driver.configure(s);
        s.reconcile.interval_secs = 0;
    })
    .await
}

pub fn capabilities<D: GatewayDriver>(app: &TestApp, driver: &D) -> Capabilities {
    registry(app)
        .get(driver.id())
        .expect("gateway enabled")
        .capabilities()
}

fn registry(app: &TestApp) -> Registry {
    Registry::from_settings(&app.settings, &app.address, reqwest::Client::new()).expect("registry")
}

/// Starts a payment with this gateway: (obole payment id, hosted page URL).
pub async fn start<D: GatewayDriver>(
    app: &TestApp,
    driver: &D,
    browser: &Browser,
    amount: &str,
) -> (String, String) {
    let page = browser.pay(amount, driver.id()).await;
    assert_eq!(
        page.status,
        303,
        "{}: pay should redirect: {}",
        driver.id(),
        page.body
    );
    let hosted = page.location.expect("hosted page");
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(driver.id())
    .fetch_one(&app.pool)
    .await
    .expect("the attempt");
    assert_eq!(app.payment_status(&id).await, "pending");
    (id, hosted)
}

/// Acts on the emulator's hosted page as the payer; returns where the browser is sent.
pub async fn act(browser: &Browser, hosted: &str, action: &str) -> String {
    let page = browser.get(hosted).await;
    assert_eq!(page.status, 200, "hosted page {hosted}: {}", page.body);
    let form_action = {
        let html = scraper::Html::parse_document(&page.body);
        let selector = scraper::Selector::parse("#sandbox-form").unwrap();
        html.select(&selector)
            .next()
            .and_then(|f| f.value().attr("action"))
            .expect("the hosted page's form")
            .to_string()
    };
    let target = if form_action.starts_with("http") {
        form_action
    } else {
        let origin = &hosted[..hosted[8..].find('/').map_or(hosted.len(), |i| i + 8)];
        format!("{origin}{form_action}")
    };
    let back = browser.post_form(&target, &[("action", action)]).await;
    assert_eq!(back.status, 303, "{action}: {}", back.body);
    back.location.expect("a return URL")
}

/// Settles the payment at the emulator without the payer (test control).
pub async fn control<D: GatewayDriver>(
    app: &TestApp,
    driver: &D,
    gateway_ref: &str,
    body: serde_json::Value,
) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/{}/{gateway_ref}",
            app.address,
            driver.id()
        ))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(
        response.status().is_success(),
        "control: {}",
        response.status()
    );
}

pub async fn send(app: &TestApp, driver_id: &str, notification: Notification) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/{driver_id}", app.address))
        .body(notification.1);
    for (name, value) in notification.0 {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .expect("notification")
        .status()
        .as_u16()
}

async fn balance(browser: &Browser) -> String {
    browser
        .get("/basket")
        .await
        .text_of("balance")
        .unwrap_or_default()
}

// ---- the scenarios ------------------------------------------------------------------------

pub async fn success<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, driver, &browser, "30,00").await;
    let back = act(&browser, &hosted, "pay").await;
    // The return page never takes the gateway's word from the URL; it ends up confirmed.
    let page = browser.get_following(&back).await;
    assert_eq!(page.status, 200, "return page {back}");
    app.wait_for_status(&id, "paid").await;
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
    assert_eq!(balance(&browser).await, "67,00 €");
    let page = browser.get(&format!("/payments/{id}")).await;
    assert_eq!(
        page.text_of("payment-headline").as_deref(),
        Some("Paiement confirmé")
    );
}

pub async fn refusal<D: GatewayDriver>(driver: &D, action: &str) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, driver, &browser, "20").await;
    let back = act(&browser, &hosted, action).await;
    let page = browser.get_following(&back).await;
    assert!(
        page.status < 500,
        "return page after {action}: {}",
        page.status
    );
    // Give a notification time to land; nothing may be posted whatever arrives.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = app.payment_status(&id).await;
    assert!(
        ["failed", "cancelled", "pending"].contains(&status.as_str()),
        "{action}: {status}"
    );
    assert_eq!(app.postings_for(&id).await, (0, 0), "{action}");
    let page = browser.get(&format!("/payments/{id}")).await;
    assert_ne!(
        page.text_of("payment-headline").as_deref(),
        Some("Paiement confirmé")
    );
    assert_eq!(
        balance(&browser).await,
        obole::domain::Money::from_cents(MEMBER_OWES_CENTS).to_string()
    );
}

pub async fn duplicate_and_concurrent_notifications<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, driver, &browser, "42,10").await;
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        driver,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    let notification = driver.genuine_notification(&app, &id, &gateway_ref).await;
    for _ in 0..2 {
        let status = send(&app, driver.id(), notification.clone()).await;
        assert!((200..300).contains(&status), "duplicate answered {status}");
    }
    let sends: Vec<_> = (0..20)
        .map(|_| {
            let (app_address, id, n) = (app.address.clone(), driver.id(), notification.clone());
            async move {
                let mut request = reqwest::Client::new()
                    .post(format!("{app_address}/webhooks/{id}"))
                    .body(n.1);
                for (name, value) in n.0 {
                    request = request.header(name, value);
                }
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .collect();
    let statuses = all_at_once(sends).await;
    assert!(
        statuses.iter().all(|s| (200..300).contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

pub async fn forged_notification<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, driver, &browser, "30").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let forged = driver.forged_notification(&app, &id, &gateway_ref).await;
    assert_eq!(
        send(&app, driver.id(), forged).await,
        driver.forged_status()
    );
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    assert!(
        app.count("SELECT COUNT(*) FROM gateway_notifications")
            .await
            >= 1,
        "the forged notification is kept for the audit"
    );
}

pub async fn amount_mismatch<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, driver, &browser, "30").await;
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        driver,
        &gateway_ref,
        json!({"status": "paid", "amount": 2000, "notify": false}),
    )
    .await;
    let notification = driver.genuine_notification(&app, &id, &gateway_ref).await;
    let status = send(&app, driver.id(), notification).await;
    assert!((200..300).contains(&status), "{status}");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    let anomaly: Option<String> = sqlx::query_scalar("SELECT anomaly FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        anomaly
            .as_deref()
            .unwrap_or("")
            .starts_with("amount_mismatch"),
        "{anomaly:?}"
    );
}

pub async fn lost_notification_caught_by_the_sweep<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, driver, &browser, "25").await;
    let gateway_ref = app.gateway_ref(&id).await;
    control(
        &app,
        driver,
        &gateway_ref,
        json!({"status": "paid", "notify": false}),
    )
    .await;
    let mut settings = app.settings.clone();
    settings.reconcile.pending_after_secs = -5;
    let counts = obole::reconcile::run_once(&app.pool, &registry(&app), &settings)
        .await
        .expect("sweep");
    assert_eq!(counts.posted, 1, "{counts:?}");
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    // A second sweep, or a late notification, posts nothing more.
    obole::reconcile::run_once(&app.pool, &registry(&app), &settings)
        .await
        .expect("sweep");
    let late = driver.genuine_notification(&app, &id, &gateway_ref).await;
    send(&app, driver.id(), late).await;
    assert_eq!(app.postings_for(&id).await, (1, 1));
}

pub async fn refund<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let caps = capabilities(&app, driver);
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = start(&app, driver, &browser, "40").await;
    act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/payments/{id}")).await;
    assert_eq!(page.status, 200);
    let token = page.csrf();
    if !caps.refund {
        let refused = manager
            .post_form(
                &format!("/admin/payments/{id}/refund"),
                &[("amount", "40"), ("csrf_token", &token)],
            )
            .await;
        assert_eq!(refused.status, 422);
        return;
    }
    // Too much is refused with a clear message, and nothing happens.
    let too_much = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "40,01"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(too_much.status, 422);
    assert!(
        too_much
            .text_of("action-error")
            .unwrap()
            .contains("40,00 €")
    );
    let first = if caps.partial_refund { "15" } else { "40" };
    let done = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", first), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let expected = if caps.partial_refund {
        "partially_refunded"
    } else {
        "refunded"
    };
    app.wait_for_status(&id, expected).await;
    let refund_lines = app
        .count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'",
            &id,
        )
        .await;
    assert_eq!(refund_lines, 1);
    if caps.partial_refund {
        assert_eq!(balance(&browser).await, "72,00 €");
        manager
            .post_form(
                &format!("/admin/payments/{id}/refund"),
                &[("amount", "25"), ("csrf_token", &token)],
            )
            .await;
        app.wait_for_status(&id, "refunded").await;
    }
    assert_eq!(balance(&browser).await, "97,00 €");
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
    // A late notification about the refunds posts nothing more.
    let gateway_ref = app.gateway_ref(&id).await;
    let late = driver.genuine_notification(&app, &id, &gateway_ref).await;
    send(&app, driver.id(), late).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM journal_entries WHERE payment_id = $1",
            &id
        )
        .await,
        if caps.partial_refund { 3 } else { 2 }
    );
}

pub async fn cancel<D: GatewayDriver>(driver: &D) {
    let app = spawn(driver).await;
    let caps = capabilities(&app, driver);
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = start(&app, driver, &browser, "10").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let page = manager
        .post_form(
            &format!("/admin/payments/{id}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    if caps.cancel {
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(app.payment_status(&id).await, "cancelled");
        // The gateway agrees: asking it changes nothing.
        let gateway_ref = app.gateway_ref(&id).await;
        let n = driver.genuine_notification(&app, &id, &gateway_ref).await;
        send(&app, driver.id(), n).await;
        assert_eq!(app.payment_status(&id).await, "cancelled");
    } else {
        assert_eq!(page.status, 422);
        assert!(page.text_of("action-error").unwrap().contains("expirera"));
        assert_eq!(app.payment_status(&id).await, "pending");
    }
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

pub async fn gateway_down<D: GatewayDriver>(driver: &D) {
    let app = spawn_app_with(|s| {
        driver.configure(s);
        driver.point_api_at(s, "http://127.0.0.1:9");
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", driver.id()).await;
    assert_eq!(page.status, 502);
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("ne répond pas")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, 7);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'failed'")
            .await,
        1
    );
}

pub async fn gateway_slow<D: GatewayDriver>(driver: &D) {
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_with(|s| {
        driver.configure(s);
        driver.point_api_at(s, &silent_address);
        s.gateway_timeout_ms = 500;
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", driver.id()).await;
    assert_eq!(page.status, 502);
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("ne répond pas")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, 7);
}

/// The whole contract for one gateway, as a module of tests.
#[macro_export]
macro_rules! contract_tests {
    ($module:ident, $driver:expr) => {
        mod $module {
            use $crate::contract as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn success() {
                c::success(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refusal() {
                c::refusal(&$driver, "refuse").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn error() {
                c::refusal(&$driver, "error").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn back() {
                c::refusal(&$driver, "back").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn duplicate_and_concurrent_notifications() {
                c::duplicate_and_concurrent_notifications(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn forged_notification() {
                c::forged_notification(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amount_mismatch() {
                c::amount_mismatch(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lost_notification_caught_by_the_sweep() {
                c::lost_notification_caught_by_the_sweep(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refund() {
                c::refund(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cancel() {
                c::cancel(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gateway_down() {
                c::gateway_down(&$driver).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gateway_slow() {
                c::gateway_slow(&$driver).await
            }
        }
    };
}

contract_tests!(sandbox_contract, super::sandbox::SandboxDriver);
contract_tests!(payplug_contract, super::payplug::PayPlugDriver);
contract_tests!(mollie_contract, super::mollie::MollieDriver);
contract_tests!(helloasso_contract, super::helloasso::HelloAssoDriver);
contract_tests!(stripe_contract, super::stripe::StripeDriver);
contract_tests!(payzen_contract, super::payzen::PayZenDriver);
contract_tests!(stancer_contract, super::stancer::StancerDriver);
contract_tests!(paypal_contract, super::paypal::PayPalDriver);
