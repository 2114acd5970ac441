//! A payment request, from the manager's browser to the member's phone and back: sent from
//! the member's page, followed from the mail in a fresh browser, paid in the sandbox, shown
//! paid to the member and in the manager's list.

use super::{Chrome, DESKTOP, PHONE};
use crate::helpers::{MANAGER, MEMBER, MEMBER_OWES_CENTS, TestApp, spawn_app};
use crate::password::wait_for_mails;

/// The request's link in the mail, as a path (`/r/{token}`).
fn request_link(app: &TestApp, mail: &str) -> String {
    let prefix = format!("{}/r/", app.address);
    let start = mail.find(&prefix).expect("a request link in the mail") + prefix.len();
    let token: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    assert!(token.len() > 30, "{mail}");
    format!("/r/{token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sends_a_payment_request_the_member_pays_it_from_the_mail_and_both_see_it_paid() {
    let app = spawn_app().await;
    let Some(manager) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    let member_id = app.member_id(MEMBER.0).await;
    manager.login(MANAGER).await;
    manager.goto(&format!("/admin/members/{member_id}")).await;
    manager.click("#new-request").await;
    manager
        .wait_path(&format!("/admin/members/{member_id}/request"))
        .await;
    manager.audit("new payment request").await;
    manager
        .fill(
            "request-message",
            "Merci de régler la cotisation avant la sortie.",
        )
        .await;
    manager.shot("request-new").await;
    manager.click("#send-request").await;
    let flash = manager.text(".flash").await;
    assert!(flash.contains("97,00"), "{flash}");

    // The member opens the mail's link on a phone, logged in nowhere.
    let mails = wait_for_mails(&app, MEMBER.0, 1).await;
    let link = request_link(&app, mails.last().unwrap());
    let Some(member) = Chrome::start(&app.address, PHONE).await else {
        return;
    };
    member.goto(&link).await;
    let owed = member.text("#request-amount").await;
    assert_eq!(owed, "97,00 €");
    assert!(
        member
            .text("#request-message")
            .await
            .contains("avant la sortie")
    );
    member.audit("payment request link").await;
    member.assert_fits_width("payment request link").await;
    member.shot("request-link-phone").await;
    member.click("#request-pay").await;
    assert_eq!(member.text("#sandbox-amount").await, "97,00 €");
    member.click("#sandbox-pay").await;

    // Back on the link's page, which waits for the notification and then says it is paid.
    member
        .wait_text("#request-headline", "Demande réglée")
        .await;
    member.audit("payment request paid").await;
    member.shot("request-paid-phone").await;
    let (status, paid): (String, i64) = sqlx::query_as(
        "SELECT r.status, p.amount_cents FROM payment_requests r \
         JOIN payments p ON p.id = r.payment_id WHERE r.member_id = $1",
    )
    .bind(&member_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), paid), ("paid", MEMBER_OWES_CENTS));
    member.close().await;

    // The manager's list shows it paid, with its payment.
    manager.goto("/admin/requests").await;
    let row = manager.text("#requests tbody tr").await;
    assert!(row.contains("Payée") && row.contains("97,00 €"), "{row}");
    let marked = manager
        .js("return document.querySelector('#requests tbody tr .status').className;")
        .await;
    assert!(marked.as_str().unwrap().contains("ok"), "{marked}");
    manager.audit("payment requests, one paid").await;
    manager.shot("requests-paid").await;
    manager.close().await;
}
