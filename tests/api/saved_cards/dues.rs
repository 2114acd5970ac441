//! Dues charged on their date: once, whatever the sweeps; never on a withdrawn card, never for
//! a due older than the consent, never more than owed; failures mail the member.

use std::time::Duration;

use obole::saved_cards::dues::{self, DueCounts};

use super::{
    balance, card_will, charge_from_member_page, mails, manager, off_session, pay_saving_card,
    registry, spawn, stored_cards,
};
use crate::helpers::{Browser, MEMBER, Page, TestApp, all_at_once, spawn_app_with};

fn today() -> String {
    obole::db::today_text()
}

fn days_from_today(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    obole::db::format_timestamp(date)[..10].to_string()
}

/// Adds a charge to the member with the manager's form; returns the answer.
async fn add_charge(
    manager: &Browser,
    member_id: &str,
    label: &str,
    amount: &str,
    date: &str,
    due_on: &str,
) -> Page {
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let key = page.form_key();
    manager
        .post_form(
            &format!("/admin/members/{member_id}/charges"),
            &[
                ("category", "outings"),
                ("label", label),
                ("amount", amount),
                ("season", ""),
                ("date", date),
                ("due_on", due_on),
                ("form_key", &key),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await
}

async fn run_dues(app: &TestApp) -> DueCounts {
    dues::run_once(&app.pool, &registry(app), &app.settings)
        .await
        .expect("the dues job")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_is_charged_once_on_its_date_even_if_the_job_runs_twice_or_at_once() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stripe", "97").await;
    let manager = manager(&app).await;
    let today = today();
    for (label, amount, due_on) in [
        ("Sortie au lac", "25", today.as_str()),
        ("Sortie d'été", "10", &days_from_today(30)),
        ("Tee-shirt", "5", ""),
    ] {
        let added = add_charge(&manager, &member_id, label, amount, &today, due_on).await;
        assert_eq!(added.status, 303, "{}", added.body);
    }
    assert_eq!(balance(&member).await, "40,00 €");

    // Three passes at once, then two more, one of them the whole reconciliation sweep.
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (pool, registry, settings) =
                (app.pool.clone(), registry(&app), app.settings.clone());
            async move {
                dues::run_once(&pool, &registry, &settings)
                    .await
                    .expect("dues")
            }
        })
        .collect();
    let counts = all_at_once(runs).await;
    assert_eq!(
        counts.iter().map(|c| c.charged).sum::<u64>(),
        1,
        "{counts:?}"
    );
    assert_eq!(run_dues(&app).await, DueCounts::default());
    let swept = obole::reconcile::run_once(&app.pool, &registry(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!((swept.dues_charged, swept.dues_failed), (0, 0));

    let charges = off_session(&app, &member_id).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    let (payment_id, status, _) = charges[0].clone();
    assert_eq!(status, "paid");
    let amount: i64 = sqlx::query_scalar("SELECT amount_cents FROM payments WHERE id = $1")
        .bind(&payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(amount, 2500, "the due line, not what is not due yet");
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
    assert_eq!(balance(&member).await, "15,00 €");
    // Only today's line was claimed, by that payment; the summer outing waits for its date.
    let claims: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT outcome, payment_id FROM due_charge_claims")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        claims,
        vec![("charged".to_string(), Some(payment_id.clone()))]
    );
    let told = mails(&app, &member_id, "saved_card_charge").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["reason"], "Sortie au lac");
    assert_eq!(told[0]["amount_cents"], 2500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_the_bank_wants_authenticated_posts_nothing_and_mails_a_way_to_pay() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    pay_saving_card(&app, &member, "stancer", "97").await;
    let card = stored_cards(&app, &member_id).await[0].2.clone();
    card_will(&app, "stancer", &card, "authentication_required").await;
    let manager = manager(&app).await;
    let today = today();
    let added = add_charge(&manager, &member_id, "Week-end", "25", &today, &today).await;
    assert_eq!(added.status, 303, "{}", added.body);

    let swept = obole::reconcile::run_once(&app.pool, &registry(&app), &app.settings)
        .await
        .unwrap();
    assert_eq!((swept.dues_charged, swept.dues_failed), (0, 1));
    let (payment_id, status, outcome) = off_session(&app, &member_id).await[0].clone();
    assert_eq!(
        (status.as_str(), outcome.as_str()),
        ("failed", "authentication_required")
    );
    assert_eq!(app.postings_for(&payment_id).await, (0, 0));
    assert_eq!(balance(&member).await, "25,00 €");
    let failed = mails(&app, &member_id, "saved_card_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["authentication_required"], true);
    // Once per due: the next sweep does not try again.
    assert_eq!(run_dues(&app).await, DueCounts::default());
    assert_eq!(off_session(&app, &member_id).await.len(), 1);

    // The mail tells why and where to pay by hand.
    let dir = std::path::PathBuf::from(&app.settings.mail.dir);
    let mut found = None;
    for _ in 0..100 {
        found = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
                .find(|m| m.contains("(authentification)"))
        });
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = found.expect("the failure mail was sent");
    assert!(mail.contains("To: membre@exemple.org"), "{mail}");
    assert!(mail.contains(&format!("{}/basket", app.address)), "{mail}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_cards_dues_before_the_consent_and_dues_already_paid_are_not_charged() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    // Paid more than owed: 33,00 € in credit.
    pay_saving_card(&app, &member, "stripe", "130").await;
    let manager = manager(&app).await;
    let today = today();
    let yesterday = days_from_today(-1);
    // Due yesterday, before the card was kept: the consent is for later dues.
    let before = add_charge(
        &manager, &member_id, "Ancienne", "20", &yesterday, &yesterday,
    )
    .await;
    assert_eq!(before.status, 303, "{}", before.body);
    assert_eq!(run_dues(&app).await, DueCounts::default());
    assert!(off_session(&app, &member_id).await.is_empty());

    // Due today, but still covered by the credit: nothing to charge.
    let covered = add_charge(&manager, &member_id, "Couverte", "5", &today, &today).await;
    assert_eq!(covered.status, 303);
    let counts = run_dues(&app).await;
    assert_eq!(counts.nothing_owed, 1, "{counts:?}");
    assert!(off_session(&app, &member_id).await.is_empty());

    // Withdrawn: neither the job nor a manager charges it.
    let basket = member.get("/basket").await;
    let card_id: String = sqlx::query_scalar("SELECT id FROM saved_payment_methods")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let withdrawn = member
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &basket.csrf())],
        )
        .await;
    assert_eq!(withdrawn.status, 303);
    let after = add_charge(&manager, &member_id, "Après retrait", "50", &today, &today).await;
    assert_eq!(after.status, 303);
    assert_eq!(run_dues(&app).await, DueCounts::default());
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(page.text_of("member-card-label"), None);
    assert_eq!(page.value_of("card-charge-amount"), None);
    let refused = charge_from_member_page(&manager, &member_id, Some("10"), true).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text_of("card-charge-error")
            .unwrap()
            .contains("pas de carte enregistrée")
    );
    assert!(off_session(&app, &member_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_dates_are_checked_and_set_by_the_single_and_bulk_forms() {
    let app = spawn().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = manager(&app).await;
    let today = today();
    for (due_on, problem) in [
        ("01/12/2026", "l'échéance au format AAAA-MM-JJ"),
        (days_from_today(-1).as_str(), "ne peut pas précéder"),
    ] {
        let refused = add_charge(&manager, &member_id, "Sortie", "10", &today, due_on).await;
        assert_eq!(refused.status, 422);
        assert!(
            refused.text_of("charge-error").unwrap().contains(problem),
            "{due_on}"
        );
        assert_eq!(refused.value_of("due-on").as_deref(), Some(due_on));
    }
    let due = days_from_today(10);
    let added = add_charge(&manager, &member_id, "Sortie", "10", &today, &due).await;
    assert_eq!(added.status, 303);

    let form = manager.get("/admin/charges").await;
    let bulk = manager
        .post_form(
            "/admin/charges",
            &[
                ("target", "all"),
                ("category", "dues"),
                ("label", "Cotisation 2027"),
                ("amount", "45"),
                ("season", "2027-2028"),
                ("date", &today),
                ("due_on", &due),
                ("form_key", &form.form_key()),
                ("csrf_token", &form.csrf()),
            ],
        )
        .await;
    assert_eq!(bulk.status, 303, "{}", bulk.body);
    let due_dates: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT due_on FROM basket_lines WHERE label IN ('Sortie', 'Cotisation 2027')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(due_dates.len(), 3, "one for the member, two in bulk");
    assert!(due_dates.iter().all(|d| d.as_deref() == Some(due.as_str())));
    let without: i64 = app
        .count("SELECT COUNT(*) FROM basket_lines WHERE kind = 'charge' AND due_on IS NULL")
        .await;
    assert_eq!(without, 7, "the demo's charges have no due date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_the_gateway_does_not_answer_is_left_for_a_manager_and_not_charged_again() {
    // Stripe out of reach; the member kept a card earlier.
    let app = spawn_app_with(|s| {
        super::configure(s);
        s.stripe.api_base = Some("http://127.0.0.1:9/sandbox/stripe".into());
    })
    .await;
    let member_id = app.member_id(MEMBER.0).await;
    let now = obole::db::now_text();
    sqlx::query(
        "INSERT INTO saved_payment_methods (id, member_id, gateway, customer_id, \
         payment_method_id, label, consented_at, revoked, created_at) \
         VALUES ($1, $2, 'stripe', 'cus_kept', 'pm_kept', 'Visa •••• 4242', $3, 0, $3)",
    )
    .bind(obole::db::new_id())
    .bind(&member_id)
    .bind(&now)
    .execute(&app.pool)
    .await
    .unwrap();
    let manager = manager(&app).await;
    let today = today();
    let added = add_charge(&manager, &member_id, "Week-end", "25", &today, &today).await;
    assert_eq!(added.status, 303, "{}", added.body);

    let counts = run_dues(&app).await;
    assert_eq!((counts.charged, counts.failed), (0, 1), "{counts:?}");
    let (payment_id, status, outcome) = off_session(&app, &member_id).await[0].clone();
    assert_eq!((status.as_str(), outcome.as_str()), ("created", "unknown"));
    let reason: Option<String> =
        sqlx::query_scalar("SELECT failure_reason FROM payments WHERE id = $1")
            .bind(&payment_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(reason.unwrap().contains("n'a pas répondu"));
    // The member was told of the charge, not of a failure nobody knows of.
    assert_eq!(mails(&app, &member_id, "saved_card_charge").await.len(), 1);
    assert!(
        mails(&app, &member_id, "saved_card_failed")
            .await
            .is_empty()
    );
    // The due may have been charged: it is never charged again.
    assert_eq!(run_dues(&app).await, DueCounts::default());
    assert_eq!(off_session(&app, &member_id).await.len(), 1);
    assert_eq!(app.postings_for(&payment_id).await, (0, 0));
}
