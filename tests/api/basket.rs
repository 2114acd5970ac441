use crate::helpers::{MEMBER, MEMBER2, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basket_groups_charges_by_category_with_french_amounts_and_the_balance() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.get("/basket").await;
    assert_eq!(page.status, 200);
    for caption in ["Cotisation", "Assurance", "Sorties", "Tee-shirts"] {
        assert!(
            page.body.contains(&format!("<caption>{caption}</caption>")),
            "{caption}"
        );
    }
    for amount in ["45,00 €", "21,50 €", "18,00 €", "12,50 €"] {
        assert!(page.body.contains(amount), "{amount} in the basket");
    }
    assert_eq!(
        page.text_of("balance-title").as_deref(),
        Some("Reste à payer")
    );
    assert_eq!(page.text_of("balance").as_deref(), Some("97,00 €"));
    // The pay form is pre-filled with what is owed, and offers the sandbox.
    assert!(page.body.contains("name=\"amount\""));
    assert_eq!(page.value_of("amount").as_deref(), Some("97,00"));
    assert!(page.body.contains("value=\"sandbox\""));
    assert!(page.body.contains("Aucun paiement pour le moment."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_sees_their_own_basket() {
    let app = spawn_app().await;
    let page = app.logged_in(MEMBER2).await.get("/basket").await;
    assert_eq!(page.text_of("balance").as_deref(), Some("131,50 €"));
    assert!(page.body.contains("Week-end en refuge"));
    assert!(!page.body.contains("Tee-shirt du club"));
    assert!(!page.body.contains("lac d&#39;Annecy") && !page.body.contains("lac d'Annecy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let app = spawn_app().await;
    for path in ["/basket", "/admin", "/admin/ledger", "/"] {
        let page = app.browser().get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/login"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_the_demo_twice_adds_nothing() {
    let app = spawn_app().await;
    let before = (
        app.count("SELECT COUNT(*) FROM users").await,
        app.count("SELECT COUNT(*) FROM basket_lines").await,
        app.count("SELECT COUNT(*) FROM journal_entries").await,
    );
    obole::demo::seed(&app.pool, &app.settings.accounts)
        .await
        .unwrap();
    let after = (
        app.count("SELECT COUNT(*) FROM users").await,
        app.count("SELECT COUNT(*) FROM basket_lines").await,
        app.count("SELECT COUNT(*) FROM journal_entries").await,
    );
    assert_eq!(before, (4, 7, 7));
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_more_than_owed_leaves_the_member_in_credit() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = browser.start_payment(&app, "100").await;
    browser.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let page = browser.get("/basket").await;
    assert_eq!(
        page.text_of("balance-title").as_deref(),
        Some("Vous êtes en crédit de")
    );
    assert_eq!(page.text_of("balance").as_deref(), Some("3,00 €"));
    // Nothing is owed, so nothing is proposed.
    assert_eq!(page.value_of("amount").as_deref(), Some(""));
}

/// Groups follow the categories' order and labels as the treasurer set them; a line whose
/// category no longer exists is its own group, last, named by its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_follow_the_categories_order_and_labels_and_orphans_come_last() {
    let app = spawn_app().await;
    sqlx::query(
        "UPDATE categories SET position = 9, label = 'Adhésion annuelle' WHERE code = 'dues'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let member_id = app.member_id(MEMBER.0).await;
    sqlx::query(
        "INSERT INTO basket_lines (id, member_id, kind, category, label, amount_cents, \
         posting_key, occurred_on, created_at) \
         VALUES ('orphan-line', $1, 'charge', 'gone', 'Ancienne ligne', 100, 'orphan-key', \
         '2026-01-01', '2026-01-01T00:00:00Z')",
    )
    .bind(&member_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let page = app.logged_in(MEMBER).await.get("/basket").await;
    assert_eq!(page.status, 200);
    let captions: Vec<&str> = page
        .body
        .split("<caption>")
        .skip(1)
        .filter_map(|rest| rest.split("</caption>").next())
        .collect();
    assert_eq!(
        captions,
        [
            "Assurance",
            "Sorties",
            "Tee-shirts",
            "Adhésion annuelle",
            "gone"
        ]
    );
    assert_eq!(page.text_of("balance").as_deref(), Some("98,00 €"));
}
