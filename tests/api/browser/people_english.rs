//! The manager's people pages in English, and their forms' error states, pass the audit and
//! fit a phone: the English texts have other lengths, and each error is tied to its field.

use super::{Chrome, PHONE};
use crate::helpers::{MANAGER, MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_pages_in_english_and_their_errors_pass_the_audit_on_a_phone() {
    let app = spawn_app().await;
    let member = app.member_id(MEMBER.0).await;
    let Some(b) = Chrome::start(&app.address, PHONE).await else {
        return;
    };
    b.login(MANAGER).await;
    b.goto("/admin").await;
    b.js("document.getElementById('lang-choice').value = 'en';
          document.getElementById('lang-submit').click(); return true;")
        .await;
    b.wait_text("h1", "Dashboard").await;
    for path in [
        "/admin".to_string(),
        "/admin/members".to_string(),
        "/admin/members/new".to_string(),
        "/admin/members/import".to_string(),
        format!("/admin/members/{member}"),
        format!("/admin/members/{member}/edit"),
        format!("/admin/members/{member}/request"),
        "/admin/requests".to_string(),
        "/admin/charges".to_string(),
    ] {
        b.goto(&path).await;
        b.audit(&path).await;
        b.assert_fits_width(&path).await;
    }

    // A new member with a wrong email and no last name: each message next to its field.
    b.goto("/admin/members/new").await;
    b.fill("first_name", "Ann").await;
    b.fill("email", "not-an-address").await;
    b.js(
        "document.querySelector('form[action=\"/admin/members\"]').noValidate = true; return true;",
    )
    .await;
    b.click("#save-member").await;
    assert_eq!(b.text("#email-error").await, "Give a valid email address.");
    assert_eq!(b.text("#last_name-error").await, "Give the last name.");
    b.audit("the member form with errors").await;
    b.assert_fits_width("the member form with errors").await;
    b.shot("member-form-errors-en-phone").await;

    // A charge whose amount is not a number.
    b.goto(&format!("/admin/members/{member}")).await;
    b.fill("label", "Shirt").await;
    b.fill("charge-amount", "twelve").await;
    b.click("#add-charge").await;
    assert!(
        b.text("#charge-error")
            .await
            .starts_with("The amount must be a number")
    );
    b.audit("the charge form with an error").await;
    b.assert_fits_width("the charge form with an error").await;
    b.close().await;
}
