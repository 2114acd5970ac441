//! A manager charges a member's saved card from the member's page.

use std::time::Duration;

use super::{
    card_will, charge_from_member_page, mails, manager, off_session, pay_saving_card, spawn,
    stored_cards,
};
use crate::helpers::{MEMBER, TestApp};

/// The flash message the payment's page shows once.
async fn flash(browser: &crate::helpers::Browser, payment_id: &str) -> String {
    let page = browser.get(&format!("/admin/payments/{payment_id}")).await;
    assert_eq!(page.status, 200);
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse(".flash").unwrap();
    html.select(&selector)
        .next()
        .map(|e| e.text().collect::<String>())
        .unwrap_or_default()
}

/// Waits (bounded) until the gateway's event about this payment was handled.
async fn event_handled(app: &TestApp, payment_id: &str) -> bool {
    for _ in 0..200 {
        let handled = app
            .count_for(
                "SELECT COUNT(*) FROM gateway_notifications WHERE payment_id = $1",
                payment_id,
            )
            .await;
        if handled > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_charges_the_stripe_card_for_what_is_owed_and_it_is_posted_once() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stripe", "30").await;
    let manager = manager(&app).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(
        page.text_of("member-card-label").as_deref(),
        Some("Visa •••• 4242")
    );
    assert_eq!(
        page.value_of("card-charge-amount").as_deref(),
        Some("67,00")
    );

    // Not confirmed, or more than owed: refused, nothing asked of Stripe.
    let unconfirmed = charge_from_member_page(&manager, &member_id, None, false).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(
        unconfirmed
            .text_of("card-charge-error")
            .unwrap()
            .contains("Cochez la case")
    );
    let too_much = charge_from_member_page(&manager, &member_id, Some("67,01"), true).await;
    assert_eq!(too_much.status, 422);
    assert_eq!(
        too_much.value_of("card-charge-amount").as_deref(),
        Some("67,01")
    );
    assert!(
        too_much
            .text_of("card-charge-error")
            .unwrap()
            .contains("ne peut pas dépasser ce que le membre doit (67,00 €)")
    );
    let nonsense = charge_from_member_page(&manager, &member_id, Some("douze"), true).await;
    assert_eq!(nonsense.status, 422);
    assert!(off_session(&app, &member_id).await.is_empty());

    let done = charge_from_member_page(&manager, &member_id, None, true).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let charges = off_session(&app, &member_id).await;
    assert_eq!(charges.len(), 1);
    let (payment_id, status, outcome) = charges[0].clone();
    assert_eq!(done.location, Some(format!("/admin/payments/{payment_id}")));
    assert_eq!((status.as_str(), outcome.as_str()), ("paid", "paid"));
    assert!(
        flash(&manager, &payment_id)
            .await
            .contains("Carte prélevée : 67,00 € encaissés")
    );
    assert!(app.gateway_ref(&payment_id).await.starts_with("pi_"));
    let fee: Option<i64> = sqlx::query_scalar("SELECT fee_cents FROM payments WHERE id = $1")
        .bind(&payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        fee.is_some_and(|f| f > 0),
        "Stripe's fee is booked: {fee:?}"
    );
    // Stripe's event about the charge comes after the answer: verified, posts nothing more.
    assert!(event_handled(&app, &payment_id).await);
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(page.text_of("member-balance").as_deref(), Some("À jour"));
    assert_eq!(
        page.value_of("card-charge-amount"),
        None,
        "nothing left to charge"
    );

    // The member was told, and receives the receipt.
    let told = mails(&app, &member_id, "saved_card_charge").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["payment_id"], payment_id.as_str());
    assert_eq!(told[0]["amount_cents"], 6700);
    assert_eq!(told[0]["card"], "Visa •••• 4242");
    let receipts = mails(&app, &member_id, "receipt").await;
    assert!(
        receipts
            .iter()
            .any(|r| r["payment_id"] == payment_id.as_str())
    );
    let audit = app
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'saved_card.charge'")
        .await;
    assert_eq!(audit, 1);

    // Refunded as any Stripe payment, posted once although Stripe's event follows.
    let page = manager.get(&format!("/admin/payments/{payment_id}")).await;
    let refunded = manager
        .post_form(
            &format!("/admin/payments/{payment_id}/refund"),
            &[("amount", "7"), ("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(refunded.status, 303, "{}", refunded.body);
    assert_eq!(app.payment_status(&payment_id).await, "partially_refunded");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.postings_for(&payment_id).await, (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_charges_the_stancer_card_and_may_refund_it() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stancer", "30").await;
    let manager = manager(&app).await;
    let done = charge_from_member_page(&manager, &member_id, Some("20"), true).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (payment_id, status, _) = off_session(&app, &member_id).await[0].clone();
    assert_eq!(status, "paid");
    let gateway_ref = app.gateway_ref(&payment_id).await;
    assert!(gateway_ref.starts_with("paym_"), "{gateway_ref}");
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
    // Stancer received the attempt as its unicity key, on the member's kept card.
    let at_stancer = super::stancer_get(&app, &format!("payments/{gateway_ref}")).await;
    assert_eq!(at_stancer["unique_id"], payment_id.as_str());
    assert_eq!(at_stancer["amount"], 2000);
    assert_eq!(
        at_stancer["card"].as_str(),
        Some(stored_cards(&app, &member_id).await[0].2.as_str())
    );
    let page = manager.get(&format!("/admin/payments/{payment_id}")).await;
    let refunded = manager
        .post_form(
            &format!("/admin/payments/{payment_id}/refund"),
            &[("amount", "5"), ("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(refunded.status, 303, "{}", refunded.body);
    assert_eq!(app.payment_status(&payment_id).await, "partially_refunded");
    assert_eq!(app.postings_for(&payment_id).await, (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_unauthenticated_charge_posts_nothing_and_the_member_is_asked_to_pay() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stripe", "30").await;
    let method = stored_cards(&app, &member_id).await[0].2.clone();
    let manager = manager(&app).await;
    let entries_before = app.journal_totals().await.2;

    card_will(&app, "stripe", &method, "declined").await;
    let done = charge_from_member_page(&manager, &member_id, None, true).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (declined, status, outcome) = off_session(&app, &member_id).await[0].clone();
    assert_eq!((status.as_str(), outcome.as_str()), ("failed", "declined"));
    let said = flash(&manager, &declined).await;
    assert!(said.contains("La banque a refusé le prélèvement"), "{said}");
    assert!(said.contains("Your card was declined"), "{said}");

    card_will(&app, "stripe", &method, "authentication_required").await;
    let done = charge_from_member_page(&manager, &member_id, None, true).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (unauthenticated, status, outcome) = off_session(&app, &member_id).await[1].clone();
    assert_eq!(
        (status.as_str(), outcome.as_str()),
        ("failed", "authentication_required")
    );
    let said = flash(&manager, &unauthenticated).await;
    assert!(said.contains("confirme lui-même"), "{said}");
    let reason: Option<String> =
        sqlx::query_scalar("SELECT failure_reason FROM payments WHERE id = $1")
            .bind(&unauthenticated)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(reason.unwrap().contains("authentification"));

    // Stripe's events about both come and change nothing: no money, no posting.
    assert!(event_handled(&app, &declined).await);
    assert!(event_handled(&app, &unauthenticated).await);
    for id in [&declined, &unauthenticated] {
        assert_eq!(app.payment_status(id).await, "failed");
        assert_eq!(app.postings_for(id).await, (0, 0));
    }
    assert_eq!(app.journal_totals().await.2, entries_before);
    assert_eq!(super::balance(&member).await, "67,00 €");
    let failed = mails(&app, &member_id, "saved_card_failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["authentication_required"], false);
    assert_eq!(failed[1]["authentication_required"], true);
    assert_eq!(failed[1]["payment_id"], unauthenticated.as_str());
    // The card stays: the member may authenticate a later charge by paying by hand.
    assert_eq!(stored_cards(&app, &member_id).await[0].4, 0);
}
