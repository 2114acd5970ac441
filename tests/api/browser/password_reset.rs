//! A forgotten password, as a member lives it: the link on the login page, the mail, the link
//! in it opened in the browser, a new password, and logging in with it.

use super::{Chrome, PHONE};
use crate::helpers::MEMBER;
use crate::look::{SVG, app_with_logo};
use crate::password::{password_link, wait_for_mails};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_forgot_the_password_gets_a_link_by_mail_and_chooses_a_new_one() {
    // With a logo, which the login page shows above its form.
    let app = app_with_logo("logo.svg", SVG.as_bytes()).await;
    let Some(b) = Chrome::start(&app.address, PHONE).await else {
        return;
    };
    b.goto("/login").await;
    b.shot("login-with-logo").await;
    b.click("#forgot-link").await;
    b.wait_path("/password/forgot").await;
    b.audit("forgotten password").await;
    b.fill("email", MEMBER.0).await;
    b.click("#send-link").await;
    let answer = b.text(".flash").await;
    assert!(!answer.is_empty());
    b.shot("password-link-sent").await;
    b.audit("link sent").await;

    let mails = wait_for_mails(&app, MEMBER.0, 1).await;
    let link = password_link(mails.last().unwrap());
    b.goto(&link).await;
    b.text("#set-password").await;
    b.audit("choose a password").await;
    b.assert_fits_width("choose a password").await;
    b.fill("password", "un nouveau mot de passe").await;
    b.fill("confirmation", "un nouveau mot de passe").await;
    b.shot("password-choose").await;
    b.click("#set-password").await;
    b.wait_path("/login").await;
    b.audit("login after a new password").await;

    // The old password no longer opens the account; the new one does.
    b.fill("email", MEMBER.0).await;
    b.fill("password", MEMBER.1).await;
    b.click("button.primary").await;
    b.text("#login-error").await;
    b.login((MEMBER.0, "un nouveau mot de passe")).await;
    b.wait_path("/basket").await;
    b.shot("password-new-login").await;

    // The link was for once only.
    b.c.delete_all_cookies().await.unwrap();
    b.goto(&link).await;
    b.text("#link-error").await;
    b.close().await;
}
