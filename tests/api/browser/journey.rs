//! The member's main journey: log in, edit the amount, pay in the sandbox, see the line; and a
//! refused payment.

use super::{Chrome, DESKTOP};
use crate::helpers::{MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_logs_in_edits_the_amount_pays_in_the_sandbox_and_sees_the_payment() {
    let app = spawn_app().await;
    let Some(b) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    b.goto("/login").await;
    b.shot("login").await;
    b.login(MEMBER).await;

    let amount = b.c.find(fantoccini::Locator::Id("amount")).await.unwrap();
    assert_eq!(
        amount.prop("value").await.unwrap().as_deref(),
        Some("97,00")
    );
    b.shot("basket").await;
    b.fill("amount", "25,50").await;
    b.click("#pay-button").await;

    assert_eq!(b.text("#sandbox-amount").await, "25,50 €");
    b.shot("sandbox").await;
    b.click("#sandbox-pay").await;

    // Back on obole: the page refreshes itself until the notification is processed.
    b.wait_text("#payment-headline", "Paiement confirmé").await;
    b.shot("confirmed").await;

    b.goto("/basket").await;
    assert_eq!(b.text("#balance").await, "71,50 €");
    let payments = b.text("#payments").await;
    assert!(
        payments.contains("25,50 €") && payments.contains("Payé"),
        "{payments}"
    );
    b.shot("basket-after").await;
    let paid: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM basket_lines WHERE kind = 'payment'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(paid, 2550);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_says_so_and_leaves_the_balance() {
    let app = spawn_app().await;
    let Some(b) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    b.login(MEMBER).await;
    b.click("#pay-button").await;
    b.text("#sandbox-amount").await;
    b.click("#sandbox-refuse").await;
    b.wait_text("#payment-headline", "Paiement refusé").await;
    b.shot("refused").await;
    b.audit("refused payment").await;
    b.goto("/basket").await;
    assert_eq!(b.text("#balance").await, "97,00 €");
    let posted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM basket_lines WHERE kind = 'payment'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(posted, 0);
    b.close().await;
}
