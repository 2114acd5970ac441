//! The reconciliation sweep settles what notifications never told: a refund the gateway
//! completed later, and attempts abandoned long ago.

use std::time::Duration;

use obole::gateways::Registry;

use crate::contract::mollie::MollieDriver;
use crate::contract::{self, GatewayDriver};
use crate::helpers::{MANAGER, MEMBER, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_gateway_settles_later_is_posted_by_the_sweep() {
    let app = spawn_app_with(|s| {
        MollieDriver.configure(s);
        // Notifications are lost: only the sweep can learn anything.
        s.sandbox.notify_retry_ms = Vec::new();
        s.reconcile.interval_secs = 0;
    })
    .await;
    let registry = Registry::from_settings(&app.settings, &app.address, reqwest::Client::new())
        .expect("registry");
    let mut settings = app.settings.clone();
    settings.reconcile.pending_after_secs = -5;

    let browser = app.logged_in(MEMBER).await;
    let (id, _) = contract::start(&app, &MollieDriver, &browser, "40").await;
    let gateway_ref = app.gateway_ref(&id).await;
    contract::control(
        &app,
        &MollieDriver,
        &gateway_ref,
        serde_json::json!({"status": "paid", "notify": false}),
    )
    .await;
    obole::reconcile::run_once(&app.pool, &registry, &settings)
        .await
        .unwrap();
    assert_eq!(app.payment_status(&id).await, "paid");

    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let asked = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "15"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(asked.status, 303);
    // Mollie takes the refund as pending; nothing is posted yet.
    assert_eq!(app.payment_status(&id).await, "paid");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let counts = obole::reconcile::run_once(&app.pool, &registry, &settings)
        .await
        .unwrap();
    assert_eq!(counts.posted, 1, "{counts:?}");
    assert_eq!(app.payment_status(&id).await, "partially_refunded");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'")
            .await,
        1
    );
    // Once settled, the sweep no longer asks about it, and posts nothing more.
    let again = obole::reconcile::run_once(&app.pool, &registry, &settings)
        .await
        .unwrap();
    assert_eq!(again.posted, 0);
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
async fn attempts_abandoned_long_ago_are_expired_and_cancelled_at_the_gateway() {
    let app = spawn_app_with(|s| s.reconcile.interval_secs = 0).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = browser.start_payment(&app, "20").await;
    let registry = Registry::from_settings(&app.settings, &app.address, reqwest::Client::new())
        .expect("registry");
    let mut settings = app.settings.clone();
    settings.reconcile.pending_after_secs = -5;
    settings.reconcile.expire_after_secs = -5;
    let counts = obole::reconcile::run_once(&app.pool, &registry, &settings)
        .await
        .unwrap();
    assert_eq!(counts.expired, 1, "{counts:?}");
    assert_eq!(app.payment_status(&id).await, "expired");
    // The sandbox was told: its page no longer takes the payment.
    let page = browser.get(&hosted).await;
    assert!(page.body.contains("terminé"), "{}", page.body);
    assert_eq!(app.postings_for(&id).await, (0, 0));
}
