//! Many confirmations at once: each notification is stored with its verdict in the
//! transaction of what it changed (on SQLite, many of them in one transaction: group commit),
//! every one answered only once written, one that fails leaving nothing and its neighbours
//! unharmed.

use sqlx::Executor;

use crate::helpers::{MEMBER, TestApp, all_at_once, spawn_app};

/// `count` pending attempts of the demo member; (payment id, gateway reference) each.
async fn pending_payments(app: &TestApp, count: usize) -> Vec<(String, String)> {
    let browser = app.logged_in(MEMBER).await;
    let mut payments = Vec::new();
    for _ in 0..count {
        let (id, _) = browser.start_payment(app, "3").await;
        let gateway_ref = app.gateway_ref(&id).await;
        payments.push((id, gateway_ref));
    }
    payments
}

/// Sends every (body, signature) at the same moment; the statuses, in order.
async fn send_at_once(app: &TestApp, notifications: Vec<(Vec<u8>, String)>) -> Vec<u16> {
    let sends: Vec<_> = notifications
        .into_iter()
        .map(|(body, signature)| {
            let address = app.address.clone();
            async move {
                reqwest::Client::new()
                    .post(format!("{address}/webhooks/sandbox"))
                    .header("Content-Type", "application/json")
                    .header("X-Sandbox-Signature", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .collect();
    all_at_once(sends).await
}

fn confirmation(app: &TestApp, id: &str, gateway_ref: &str) -> (Vec<u8>, String) {
    let body = app.sandbox_event(id, gateway_ref, "succeeded", 300);
    let signature = app.sign(&body);
    (body, signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_sent_at_once_each_post_once_with_their_notification_stored() {
    let app = spawn_app().await;
    let payments = pending_payments(&app, 30).await;
    // Each confirmation twice, all sixty at the same moment.
    let notifications: Vec<_> = payments
        .iter()
        .flat_map(|(id, gateway_ref)| {
            [
                confirmation(&app, id, gateway_ref),
                confirmation(&app, id, gateway_ref),
            ]
        })
        .collect();
    let statuses = send_at_once(&app, notifications).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for (id, _) in &payments {
        assert_eq!(app.payment_status(id).await, "paid");
        assert_eq!(app.postings_for(id).await, (1, 1), "payment {id}");
        assert_eq!(
            app.count_for(
                "SELECT COUNT(*) FROM mail_outbox WHERE dedup_key LIKE 'receipt:' || $1 || ':%'",
                id
            )
            .await,
            1
        );
        let verdicts: Vec<String> = sqlx::query_scalar(
            "SELECT verdict FROM gateway_notifications WHERE payment_id = $1 ORDER BY verdict",
        )
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert_eq!(verdicts, vec!["duplicate", "posted"], "payment {id}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_notifications")
            .await,
        60
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

/// Makes the database refuse the basket line of one payment, as a fault would.
async fn refuse_basket_line_of(app: &TestApp, payment_id: &str) {
    let statements = if app.settings.database_url.starts_with("sqlite:") {
        vec![format!(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON basket_lines \
             WHEN NEW.payment_id = '{payment_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )]
    } else {
        vec![
            format!(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN \
                 IF NEW.payment_id = '{payment_id}' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_one BEFORE INSERT ON basket_lines \
             FOR EACH ROW EXECUTE FUNCTION refuse_one()"
                .to_string(),
        ]
    };
    for statement in statements {
        app.pool
            .execute(sqlx::AssertSqlSafe(statement))
            .await
            .expect("trigger");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_that_fails_among_others_leaves_nothing_and_the_others_post() {
    let app = spawn_app().await;
    let payments = pending_payments(&app, 25).await;
    let (failing, _) = payments[12].clone();
    refuse_basket_line_of(&app, &failing).await;
    let notifications: Vec<_> = payments
        .iter()
        .map(|(id, gateway_ref)| confirmation(&app, id, gateway_ref))
        .collect();
    let statuses = send_at_once(&app, notifications.clone()).await;

    for ((id, _), status) in payments.iter().zip(&statuses) {
        if *id == failing {
            assert_eq!(*status, 503, "the gateway must send it again");
            assert_eq!(app.payment_status(id).await, "pending");
            assert_eq!(app.postings_for(id).await, (0, 0));
            assert_eq!(
                app.count_for(
                    "SELECT COUNT(*) FROM mail_outbox WHERE dedup_key LIKE 'receipt:' || $1 || ':%'",
                    id
                )
                .await,
                0
            );
            assert_eq!(
                app.count_for(
                    "SELECT COUNT(*) FROM gateway_notifications WHERE payment_id = $1",
                    id
                )
                .await,
                0,
                "nothing of it is written"
            );
        } else {
            assert_eq!(*status, 200, "payment {id}");
            assert_eq!(app.payment_status(id).await, "paid");
            assert_eq!(app.postings_for(id).await, (1, 1), "payment {id}");
        }
    }

    // Once the fault is gone, the gateway's retry posts it, once.
    let drop = if app.settings.database_url.starts_with("sqlite:") {
        "DROP TRIGGER refuse_one"
    } else {
        "DROP TRIGGER refuse_one ON basket_lines"
    };
    app.pool.execute(drop).await.expect("drop the trigger");
    let (body, signature) = notifications[12].clone();
    assert_eq!(app.post_notification(body, Some(signature)).await, 200);
    assert_eq!(app.payment_status(&failing).await, "paid");
    assert_eq!(app.postings_for(&failing).await, (1, 1));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM basket_lines WHERE kind = 'payment'")
            .await,
        25
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}
