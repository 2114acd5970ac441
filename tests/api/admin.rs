use crate::helpers::{MANAGER, MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_see_every_member_with_their_balance() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Camille Martin"));
    assert!(page.body.contains("Louis Bernard"));
    assert!(page.body.contains("97,00 € dus"));
    assert!(page.body.contains("131,50 € dus"));
    assert_eq!(page.text_of("total-owed").as_deref(), Some("228,50 €"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_shows_charges_and_receipts_and_balances() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let (id, hosted) = member.start_payment(&app, "97").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;

    let page = app.logged_in(MANAGER).await.get("/admin/ledger").await;
    assert_eq!(page.status, 200);
    for account in ["411", "756", "7068", "706", "707", "5112", "627"] {
        assert!(
            page.body.contains(&format!("<td>{account}</td>")),
            "account {account}"
        );
    }
    assert!(page.body.contains("Paiement Sandbox"));
    // Charges 97,00 + 131,50 and the receipt 97,00: 325,50 on each side.
    assert_eq!(page.text_of("total-debit").as_deref(), Some("325,50 €"));
    assert_eq!(page.text_of("total-credit").as_deref(), Some("325,50 €"));
    assert_eq!(
        page.text_of("balance-check").as_deref(),
        Some("Le journal est équilibré.")
    );

    let admin = app.logged_in(MANAGER).await.get("/admin").await;
    assert!(admin.body.contains("à jour"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_see_each_gateway_with_its_webhook_address_and_what_it_can_do() {
    let app = spawn_app().await;
    let page = app.logged_in(MANAGER).await.get("/admin/gateways").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("{}/webhooks/sandbox", app.address))
    );
    let sandbox = page.text_of("gateway-sandbox").unwrap();
    assert!(sandbox.contains("total ou partiel"), "{sandbox}");
    assert!(sandbox.contains("HMAC-SHA256"), "{sandbox}");
    assert!(
        sandbox.contains("ne permet pas d'enregistrer la carte"),
        "{sandbox}"
    );
    let member = app.logged_in(MEMBER).await.get("/admin/gateways").await;
    assert_eq!(member.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_see_a_payment_with_its_notifications_and_members_cannot() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let (id, hosted) = member.start_payment(&app, "12,34").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let page = app
        .logged_in(MANAGER)
        .await
        .get(&format!("/admin/payments/{id}"))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.text_of("paid-amount").as_deref(), Some("12,34 €"));
    assert!(page.body.contains("posted"));
    assert!(page.body.contains("x-sandbox-signature"));
    assert_eq!(
        member.get(&format!("/admin/payments/{id}")).await.status,
        403
    );
    let refund = member
        .post_form(
            &format!("/admin/payments/{id}/refund"),
            &[
                ("amount", "1"),
                ("csrf_token", &member.get("/basket").await.csrf()),
            ],
        )
        .await;
    assert_eq!(refund.status, 403);
    assert_eq!(app.payment_status(&id).await, "paid");
}
