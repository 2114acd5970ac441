//! The managers' list of every payment attempt, with its filters.

use crate::helpers::{MANAGER, MEMBER, MEMBER2, TestApp, spawn_app};

/// Starts a sandbox payment as `who` and, with `notify`, has the sandbox confirm `cents`.
async fn payment(app: &TestApp, who: (&str, &str), amount: &str, notify: Option<i64>) -> String {
    let browser = app.logged_in(who).await;
    let (id, _) = browser.start_payment(app, amount).await;
    if let Some(cents) = notify {
        let reference = app.gateway_ref(&id).await;
        let body = app.sandbox_event(&id, &reference, "succeeded", cents);
        assert_eq!(
            app.post_notification(body.clone(), Some(app.sign(&body)))
                .await,
            200
        );
    }
    id
}

fn rows(page: &crate::helpers::Page) -> usize {
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse("#payments-list tbody tr").unwrap();
    html.select(&selector).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_list_every_payment_and_filter_them() {
    let app = spawn_app().await;
    let paid = payment(&app, MEMBER, "20,00", Some(2000)).await;
    app.wait_for_status(&paid, "paid").await;
    let open = payment(&app, MEMBER2, "15,00", None).await;
    // Confirmed for another amount than asked: flagged, not posted.
    let flagged = payment(&app, MEMBER2, "30,00", Some(1000)).await;

    let manager = app.logged_in(MANAGER).await;
    let all = manager.get("/admin/payments").await;
    assert_eq!(all.status, 200);
    assert_eq!(rows(&all), 3);
    assert_eq!(
        all.text_of("payments-total").as_deref(),
        Some("3 paiement(s).")
    );
    for id in [&paid, &open, &flagged] {
        assert!(all.body.contains(&format!("/admin/payments/{id}")), "{id}");
    }

    let only_paid = manager.get("/admin/payments?status=paid").await;
    assert_eq!(rows(&only_paid), 1);
    assert!(only_paid.body.contains(&paid));
    assert!(only_paid.body.contains("0,40 €"), "the fee is shown");

    let by_member = manager.get("/admin/payments?q=bernard").await;
    assert_eq!(rows(&by_member), 2, "Louis Bernard's two attempts");
    assert!(!by_member.body.contains(&format!("/admin/payments/{paid}")));

    let to_check = manager.get("/admin/payments?flagged=1").await;
    assert_eq!(rows(&to_check), 1);
    assert!(to_check.body.contains("amount_mismatch"));

    let other_gateway = manager.get("/admin/payments?gateway=stripe").await;
    assert_eq!(rows(&other_gateway), 0);

    let bad = manager.get("/admin/payments?status=volé").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Statut inconnu"), "{}", bad.body);
    let injected = manager
        .get("/admin/payments?gateway=x%27%20OR%201%3D1--")
        .await;
    assert_eq!(injected.status, 400);

    let member = app.logged_in(MEMBER).await;
    assert_eq!(member.get("/admin/payments").await.status, 403);
}
