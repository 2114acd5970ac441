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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_exports_as_csv_and_as_a_legal_fec_file() {
    let app = crate::helpers::spawn_app_with(|s| s.siren = "123456789".into()).await;
    let member = app.logged_in(MEMBER).await;
    let (id, hosted) = member.start_payment(&app, "50").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let manager = app.logged_in(MANAGER).await;
    let year = time::OffsetDateTime::now_utc().year();

    let fec = manager
        .get(&format!("/admin/ledger/export?format=fec&year={year}"))
        .await;
    assert_eq!(fec.status, 200);
    let disposition = fec.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains(&format!("123456789FEC{year}1231.txt")),
        "{disposition}"
    );
    let lines: Vec<&str> = fec.body.lines().collect();
    assert!(lines[0].starts_with("JournalCode\tJournalLib\tEcritureNum\tEcritureDate"));
    // Seeded charges (7 entries of 2 lines) and the receipt (3 lines).
    assert_eq!(lines.len(), 1 + 14 + 3);
    assert!(lines.iter().all(|l| l.split('\t').count() == 18));
    let (mut debit, mut credit) = (0i64, 0i64);
    for line in &lines[1..] {
        let cols: Vec<&str> = line.split('\t').collect();
        debit += cols[11].replace(',', "").parse::<i64>().unwrap();
        credit += cols[12].replace(',', "").parse::<i64>().unwrap();
    }
    assert_eq!(debit, credit);
    assert!(fec.body.contains("\t627\tServices bancaires"));

    let csv = manager
        .get(&format!("/admin/ledger/export?format=csv&year={year}"))
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(csv.body.starts_with('\u{feff}'));
    assert!(
        csv.body
            .contains("Date;Journal;Écriture;Libellé;Membre;Compte;Débit;Crédit")
    );
    assert!(csv.body.contains("Camille Martin"));
    assert_eq!(csv.body.lines().count(), 1 + 17);

    // Another year holds nothing; bad input is a clear 400.
    let empty = manager
        .get("/admin/ledger/export?format=fec&year=2001")
        .await;
    assert_eq!(empty.body.lines().count(), 1);
    assert_eq!(
        manager.get("/admin/ledger/export?format=xls").await.status,
        400
    );
    assert_eq!(
        manager.get("/admin/ledger/export?year=deux").await.status,
        400
    );
    assert_eq!(
        member.get("/admin/ledger/export?format=fec").await.status,
        403
    );
}
