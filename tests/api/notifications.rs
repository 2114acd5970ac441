//! The sandbox's server-to-server notifications: duplicated, concurrent, forged, unknown,
//! mismatched. Exactly one posting for a payment, whatever arrives.

use crate::helpers::{MANAGER, MEMBER, TestApp, all_at_once, spawn_app};

/// A pending attempt whose hosted page nobody touched (the emulator sends nothing).
async fn pending_payment(app: &TestApp, amount: &str) -> (String, String) {
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = browser.start_payment(app, amount).await;
    let gateway_ref = app.gateway_ref(&id).await;
    (id, gateway_ref)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_notification_posts_once() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending_payment(&app, "30").await;
    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 3000);
    let signature = app.sign(&body);
    for _ in 0..3 {
        let status = app
            .post_notification(body.clone(), Some(signature.clone()))
            .await;
        assert_eq!(status, 200, "a known duplicate is acknowledged");
    }
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    let verdicts: Vec<String> = sqlx::query_scalar(
        "SELECT verdict FROM gateway_notifications WHERE payment_id = $1 ORDER BY received_at, id",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(verdicts, vec!["posted", "duplicate", "duplicate"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_notifications_post_exactly_once() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending_payment(&app, "42,10").await;
    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 4210);
    let signature = app.sign(&body);
    let address = app.address.clone();
    let sends: Vec<_> = (0..20)
        .map(|_| {
            let (body, signature, address) = (body.clone(), signature.clone(), address.clone());
            async move {
                reqwest::Client::new()
                    .post(format!("{address}/webhooks/sandbox"))
                    .header("X-Sandbox-Signature", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .collect();
    let statuses = all_at_once(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM gateway_notifications WHERE payment_id = $1 AND verdict = 'posted'",
            &id
        )
        .await,
        1
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_notifications_change_nothing_and_are_kept_for_the_audit() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending_payment(&app, "30").await;
    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 3000);

    assert_eq!(app.post_notification(body.clone(), None).await, 401);
    let wrong_secret = obole::sandbox::sign("not-the-secret", &body);
    assert_eq!(
        app.post_notification(body.clone(), Some(wrong_secret))
            .await,
        401
    );
    assert_eq!(
        app.post_notification(body.clone(), Some("sha256=zz".into()))
            .await,
        401
    );
    // A signature of other bytes does not cover these.
    let mut tampered = body.clone();
    let other = app.sandbox_event(&id, &gateway_ref, "succeeded", 300_000);
    let signature_of_other = app.sign(&other);
    tampered.extend_from_slice(b" ");
    assert_eq!(
        app.post_notification(other.clone(), Some(app.sign(&body)))
            .await,
        401
    );
    assert_eq!(
        app.post_notification(tampered, Some(signature_of_other))
            .await,
        401
    );

    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_notifications WHERE verdict = 'rejected'")
            .await,
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_but_unreadable_notification_gets_a_400() {
    let app = spawn_app().await;
    let body = b"{not json".to_vec();
    let status = app
        .post_notification(body.clone(), Some(app.sign(&body)))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_for_an_unknown_payment_posts_nothing() {
    let app = spawn_app().await;
    let body = app.sandbox_event(
        "01900000-0000-7000-8000-000000000000",
        "sbx_pay_unknown",
        "succeeded",
        1000,
    );
    let status = app
        .post_notification(body.clone(), Some(app.sign(&body)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(app.journal_totals().await.2, 7);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_notifications WHERE verdict = 'unknown_payment'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_mismatch_posts_nothing_and_is_flagged_for_managers() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending_payment(&app, "30").await;
    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 2000);
    assert_eq!(
        app.post_notification(body.clone(), Some(app.sign(&body)))
            .await,
        200
    );
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
    let anomaly: Option<String> = sqlx::query_scalar("SELECT anomaly FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(anomaly.unwrap().starts_with("amount_mismatch"));

    let admin = app.logged_in(MANAGER).await.get("/admin").await;
    assert!(admin.body.contains("Paiements à vérifier"));
    assert!(admin.body.contains(&id));
    assert!(admin.body.contains("amount_mismatch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_that_does_not_match_the_attempt_is_flagged() {
    let app = spawn_app().await;
    let (id, _) = pending_payment(&app, "30").await;
    let body = app.sandbox_event(&id, "sbx_pay_someone_else", "succeeded", 3000);
    assert_eq!(
        app.post_notification(body.clone(), Some(app.sign(&body)))
            .await,
        200
    );
    assert_eq!(app.payment_status(&id).await, "pending");
    assert_eq!(app.postings_for(&id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_refusal_after_payment_changes_nothing_and_paid_after_refusal_is_flagged() {
    let app = spawn_app().await;
    let (id, gateway_ref) = pending_payment(&app, "30").await;
    let paid = app.sandbox_event(&id, &gateway_ref, "succeeded", 3000);
    let refused = app.sandbox_event(&id, &gateway_ref, "refused", 3000);
    assert_eq!(
        app.post_notification(paid.clone(), Some(app.sign(&paid)))
            .await,
        200
    );
    assert_eq!(
        app.post_notification(refused.clone(), Some(app.sign(&refused)))
            .await,
        200
    );
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));

    let (other, other_ref) = pending_payment(&app, "10").await;
    let refused = app.sandbox_event(&other, &other_ref, "refused", 1000);
    let paid = app.sandbox_event(&other, &other_ref, "succeeded", 1000);
    assert_eq!(
        app.post_notification(refused.clone(), Some(app.sign(&refused)))
            .await,
        200
    );
    assert_eq!(
        app.post_notification(paid.clone(), Some(app.sign(&paid)))
            .await,
        200
    );
    assert_eq!(app.payment_status(&other).await, "failed");
    assert_eq!(app.postings_for(&other).await, (0, 0));
    let anomaly: Option<String> = sqlx::query_scalar("SELECT anomaly FROM payments WHERE id = $1")
        .bind(&other)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(anomaly.unwrap().starts_with("paid_after_close"));
}
