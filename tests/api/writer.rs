//! The one writer of payment state, fed reports directly: installments (several captures),
//! refunds, and what does not add up.

use obole::domain::{Money, PaymentStatus};
use obole::gateways::{Capture, GatewayReport, RefundFact};
use obole::payments::{self, Applied};

use crate::helpers::{MEMBER, TestApp, spawn_app};

async fn pending(app: &TestApp, amount: &str) -> (String, String) {
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = browser.start_payment(app, amount).await;
    let gateway_ref = app.gateway_ref(&id).await;
    (id, gateway_ref)
}

fn report(id: &str, gateway_ref: &str, amount: i64) -> GatewayReport {
    GatewayReport {
        gateway_ref: gateway_ref.to_string(),
        reference: Some(id.to_string()),
        status: PaymentStatus::Paid,
        amount: Money::from_cents(amount),
        currency: "EUR".into(),
        live: false,
        event_id: None,
        captures: Vec::new(),
        refunds: Vec::new(),
        saved_method: None,
    }
}

fn capture(id: &str, cents: i64) -> Capture {
    Capture {
        id: id.into(),
        amount: Money::from_cents(cents),
        fee: None,
    }
}

async fn apply(app: &TestApp, report: &GatewayReport) -> Applied {
    payments::apply_report(
        &app.pool,
        &app.settings.accounts,
        "sandbox",
        "Sandbox",
        report,
    )
    .await
    .expect("apply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_installment_posts_its_own_line_once() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending(&app, "90").await;
    let mut r = report(&id, &gateway_ref, 9000);
    r.captures = vec![capture("term-1", 3000)];
    assert!(matches!(apply(&app, &r).await, Applied::Posted { .. }));
    assert_eq!(app.payment_status(&id).await, "paid");
    // The same term again, then the second term arrives with the first.
    assert!(matches!(apply(&app, &r).await, Applied::Unchanged { .. }));
    r.captures.push(capture("term-2", 3000));
    assert!(matches!(apply(&app, &r).await, Applied::Posted { .. }));
    r.captures.push(capture("term-3", 3000));
    apply(&app, &r).await;
    apply(&app, &r).await;
    assert_eq!(app.postings_for(&id).await, (3, 3));
    let paid: i64 = sqlx::query_scalar("SELECT paid_amount_cents FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(paid, 9000);
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_beyond_the_amount_are_flagged_and_post_nothing() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending(&app, "30").await;
    let mut r = report(&id, &gateway_ref, 3000);
    r.captures = vec![capture("a", 2000), capture("b", 2000)];
    assert!(matches!(apply(&app, &r).await, Applied::Flagged { .. }));
    assert_eq!(app.postings_for(&id).await, (0, 0));
    let mut r = report(&id, &gateway_ref, 3000);
    r.captures = vec![Capture {
        id: "c".into(),
        amount: Money::from_cents(3000),
        fee: Some(Money::from_cents(3001)),
    }];
    assert!(matches!(apply(&app, &r).await, Applied::Flagged { .. }));
    assert_eq!(app.postings_for(&id).await, (0, 0));
    assert_eq!(app.payment_status(&id).await, "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_post_once_and_never_exceed_what_was_paid() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending(&app, "50").await;
    let mut r = report(&id, &gateway_ref, 5000);
    r.captures = vec![capture(&gateway_ref, 5000)];
    apply(&app, &r).await;
    // A refund reported before the payment is known paid would be flagged; here it is paid.
    r.refunds = vec![RefundFact {
        id: "re_1".into(),
        amount: Money::from_cents(2000),
    }];
    assert!(matches!(apply(&app, &r).await, Applied::Posted { .. }));
    assert!(matches!(apply(&app, &r).await, Applied::Unchanged { .. }));
    assert_eq!(app.payment_status(&id).await, "partially_refunded");
    r.refunds.push(RefundFact {
        id: "re_2".into(),
        amount: Money::from_cents(3001),
    });
    assert!(matches!(apply(&app, &r).await, Applied::Flagged { .. }));
    r.refunds[1].amount = Money::from_cents(3000);
    assert!(matches!(apply(&app, &r).await, Applied::Posted { .. }));
    assert_eq!(app.payment_status(&id).await, "refunded");
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1 AND kind = 'refund'",
            &id
        )
        .await,
        2
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_of_an_unpaid_payment_is_flagged() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending(&app, "50").await;
    let mut r = report(&id, &gateway_ref, 5000);
    r.status = PaymentStatus::Pending;
    r.refunds = vec![RefundFact {
        id: "re_x".into(),
        amount: Money::from_cents(100),
    }];
    assert!(matches!(apply(&app, &r).await, Applied::Flagged { .. }));
    assert_eq!(app.postings_for(&id).await, (0, 0));
}
