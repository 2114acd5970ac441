//! A manager's main tasks in the browser: a charge to one member, dues to every member, a
//! refund, the FEC export.

use std::time::Duration;

use super::{Chrome, DESKTOP};
use crate::helpers::{MANAGER, MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_adds_charges_refunds_and_exports_the_fec() {
    let app = spawn_app().await;
    let Some(b) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    // A payment to refund later, made as the member would.
    b.login(MEMBER).await;
    b.fill("amount", "20,00").await;
    b.click("#pay-button").await;
    b.text("#sandbox-amount").await;
    b.click("#sandbox-pay").await;
    b.wait_text("#payment-headline", "Paiement confirmé").await;
    let payment_id: String = sqlx::query_scalar("SELECT id FROM payments WHERE status = 'paid'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    b.c.delete_all_cookies().await.unwrap();

    b.login(MANAGER).await;
    b.shot("admin-dashboard").await;

    // One charge to one member.
    let member = app.member_id(MEMBER.0).await;
    b.goto(&format!("/admin/members/{member}")).await;
    b.fill("label", "Sortie escalade").await;
    b.fill("charge-amount", "15,00").await;
    b.click("#add-charge").await;
    let flash = b.text(".flash").await;
    assert!(flash.contains("15,00"), "{flash}");
    b.shot("admin-member").await;
    let charged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM basket_lines WHERE member_id = $1 AND label = 'Sortie escalade' \
         AND amount_cents = 1500",
    )
    .bind(&member)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(charged, 1);

    // Dues to every active member.
    b.goto("/admin/charges").await;
    b.click("input[name='target'][value='all']").await;
    b.fill("label", "Cotisation 2027-2028").await;
    b.fill("charge-amount", "45,00").await;
    b.fill("season", "2027-2028").await;
    b.click("#apply-bulk").await;
    b.text(".flash").await;
    b.shot("admin-bulk-charges").await;
    let dues: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM basket_lines WHERE label = 'Cotisation 2027-2028' AND amount_cents = 4500",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let members: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'member' AND active = 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(dues, members, "one due per active member");

    // A partial refund, confirmed by the gateway, then posted.
    b.goto(&format!("/admin/payments/{payment_id}")).await;
    b.fill("refund-amount", "5,00").await;
    b.click("#refund-button").await;
    b.text(".flash").await;
    b.shot("admin-refund").await;
    let mut refunded = 0;
    for _ in 0..100 {
        refunded = sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM basket_lines WHERE kind = 'refund'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if refunded > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refunded, 500);

    // The FEC, as the export button downloads it.
    b.goto("/admin/ledger").await;
    b.shot("admin-ledger").await;
    let fec = b
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/admin/ledger/export?format=fec&year=')
               .then(async r => done([r.status, r.headers.get('content-disposition') || '', await r.text()]))
               .catch(e => done([0, '', String(e)]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fec[0].as_i64(), Some(200), "{fec}");
    assert!(fec[1].as_str().unwrap().contains("FEC"), "{fec}");
    let body = fec[2].as_str().unwrap();
    assert!(body.starts_with("JournalCode\tJournalLib"), "{body}");
    assert!(body.contains("Sortie escalade"), "{body}");
    b.close().await;
}
