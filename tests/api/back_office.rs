//! Managers' charges: to one member, to many at once, each posted once.

use crate::helpers::{MANAGER, MEMBER, MEMBER2, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_adds_a_charge_to_one_member_once_even_if_the_form_is_sent_twice() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.text_of("member-balance").as_deref(),
        Some("97,00 € dus")
    );
    let key = page.form_key();
    let token = page.csrf();
    let fields = [
        ("category", "outings"),
        ("label", "Sortie raquettes"),
        ("amount", "22,50"),
        ("season", "2026-2027"),
        ("date", "2026-12-01"),
        ("form_key", key.as_str()),
        ("csrf_token", token.as_str()),
    ];
    let url = format!("/admin/members/{member_id}/charges");
    assert_eq!(manager.post_form(&url, &fields).await.status, 303);
    assert_eq!(manager.post_form(&url, &fields).await.status, 303);
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(
        page.text_of("member-balance").as_deref(),
        Some("119,50 € dus")
    );
    assert!(
        page.text_of("statement")
            .unwrap()
            .contains("Sortie raquettes")
    );
    // The member sees it in the right group of their basket.
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert!(basket.body.contains("Sortie raquettes"));
    assert_eq!(basket.text_of("balance").as_deref(), Some("119,50 €"));
    // Posted once: debit 411, credit the outings income account (two outings were seeded).
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_lines WHERE account = '706'")
            .await,
        3
    );
    let (debit, credit, entries) = app.journal_totals().await;
    assert_eq!((debit, entries), (credit, 8));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'charge.add'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_charge_is_refused_with_a_message_and_adds_nothing() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let key = page.form_key();
    let token = page.csrf();
    let cases = [
        ("dues", "", "10", "2026-12-01", "libellé"),
        ("dues", "Cotisation", "-3", "2026-12-01", "négatif"),
        ("dues", "Cotisation", "10", "01/12/2026", "AAAA-MM-JJ"),
        ("bogus", "Cotisation", "10", "2026-12-01", "catégorie"),
        (
            "dues",
            "Cotisation",
            "1,001",
            "2026-12-01",
            "deux décimales",
        ),
    ];
    for (category, label, amount, date, message) in cases {
        let page = manager
            .post_form(
                &format!("/admin/members/{member_id}/charges"),
                &[
                    ("category", category),
                    ("label", label),
                    ("amount", amount),
                    ("season", ""),
                    ("date", date),
                    ("form_key", &key),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{label} {amount} {date}");
        let error = page.text_of("charge-error").unwrap();
        assert!(error.contains(message), "{error}");
    }
    assert_eq!(app.journal_totals().await.2, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn season_dues_go_to_every_member_once() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get("/admin/charges").await;
    assert_eq!(page.status, 200);
    let key = page.form_key();
    let token = page.csrf();
    let fields = [
        ("target", "all"),
        ("category", "dues"),
        ("label", "Cotisation 2027-2028"),
        ("amount", "45"),
        ("season", "2027-2028"),
        ("date", "2027-09-01"),
        ("form_key", key.as_str()),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        manager.post_form("/admin/charges", &fields).await.status,
        303
    );
    let again = manager.post_form("/admin/charges", &fields).await;
    assert_eq!(again.status, 303);
    let dashboard = manager.get("/admin").await;
    assert!(dashboard.body.contains("déjà été envoyé"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM basket_lines WHERE label = 'Cotisation 2027-2028'")
            .await,
        2
    );
    let member2 = app.logged_in(MEMBER2).await.get("/basket").await;
    assert_eq!(member2.text_of("balance").as_deref(), Some("176,50 €"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_charge_can_target_only_members_who_are_up_to_date() {
    let app = spawn_app().await;
    // The first member settles everything.
    let member = app.logged_in(MEMBER).await;
    let (id, hosted) = member.start_payment(&app, "97").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;

    let manager = app.logged_in(MANAGER).await;
    let page = manager.get("/admin/charges").await;
    let fields = [
        ("target", "up_to_date"),
        ("category", "shirts"),
        ("label", "Sweat du club"),
        ("amount", "30"),
        ("season", ""),
        ("date", "2026-12-01"),
        ("form_key", &page.form_key()),
        ("csrf_token", &page.csrf()),
    ];
    assert_eq!(
        manager.post_form("/admin/charges", &fields).await.status,
        303
    );
    let member_id = app.member_id(MEMBER.0).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM basket_lines WHERE label = 'Sweat du club'")
            .await,
        1
    );
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE label = 'Sweat du club' AND member_id = $1",
            &member_id
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_cannot_add_charges() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    let token = member.get("/basket").await.csrf();
    let page = member
        .post_form(
            &format!("/admin/members/{member_id}/charges"),
            &[
                ("category", "dues"),
                ("label", "x"),
                ("amount", "-50"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(member.get("/admin/charges").await.status, 403);
    assert_eq!(
        member
            .get(&format!("/admin/members/{member_id}"))
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_actions_are_in_the_audit_log_with_who_and_what() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let (id, hosted) = member.start_payment(&app, "20").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    let token = manager.get(&format!("/admin/payments/{id}")).await.csrf();
    let refund = manager
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[("amount", "5"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(refund.status, 303);
    let page = manager.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    let log = page.text_of("audit").unwrap();
    assert!(log.contains("payment.refund"), "{log}");
    assert!(log.contains(MANAGER.0), "{log}");
    assert!(log.contains("\"amount_cents\":500"), "{log}");
    assert_eq!(member.get("/admin/audit").await.status, 403);
}
