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
