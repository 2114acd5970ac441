//! Every page, on a desktop and on a 360 px phone: no serious accessibility violation (axe-core),
//! one h1, nothing that scrolls sideways. Screenshots of each.

use super::{Chrome, DESKTOP, PHONE};
use crate::helpers::{MANAGER, MEMBER, TestApp, spawn_app};

/// A paid payment of the member, so that its pages have content.
async fn paid_payment(app: &TestApp) -> String {
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = browser.start_payment(app, "20,00").await;
    let reference = app.gateway_ref(&id).await;
    let event = app.sandbox_event(&id, &reference, "succeeded", 2000);
    let signature = app.sign(&event);
    assert_eq!(app.post_notification(event, Some(signature)).await, 200);
    app.wait_for_status(&id, "paid").await;
    id
}

fn member_pages(payment: &str) -> Vec<String> {
    vec![
        "/basket".into(),
        format!("/payments/{payment}"),
        "/page-qui-n-existe-pas".into(),
    ]
}

fn manager_pages(app_member: &str, payment: &str) -> Vec<String> {
    vec![
        "/admin".into(),
        "/admin/members".into(),
        "/admin/members/new".into(),
        "/admin/members/import".into(),
        format!("/admin/members/{app_member}"),
        format!("/admin/members/{app_member}/edit"),
        format!("/admin/members/{app_member}/request"),
        "/admin/payments".into(),
        "/admin/requests".into(),
        "/admin/charges".into(),
        format!("/admin/payments/{payment}"),
        "/admin/ledger".into(),
        "/admin/balances".into(),
        "/admin/settings/accounts".into(),
        "/admin/gateways".into(),
        "/admin/audit".into(),
    ]
}

fn shot_name(path: &str, size: &str) -> String {
    let name: String = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| s.len() < 30)
        .collect::<Vec<_>>()
        .join("-");
    format!(
        "page-{}-{size}",
        if name.is_empty() { "home" } else { &name }
    )
}

async fn check_every_page(size: (u32, u32), label: &str) {
    let app = spawn_app().await;
    let payment = paid_payment(&app).await;
    let member = app.member_id(MEMBER.0).await;
    let Some(b) = Chrome::start(&app.address, size).await else {
        return;
    };
    for path in ["/login", "/password/forgot"] {
        b.goto(path).await;
        b.audit(path).await;
        b.assert_fits_width(path).await;
        b.shot(&shot_name(path, label)).await;
    }

    b.login(MEMBER).await;
    for path in member_pages(&payment) {
        b.goto(&path).await;
        b.audit(&path).await;
        b.assert_fits_width(&path).await;
        b.shot(&shot_name(&path, label)).await;
    }
    // The gateway's page (here the sandbox's) is part of the journey too.
    b.goto("/basket").await;
    b.click("#pay-button").await;
    b.text("#sandbox-amount").await;
    b.audit("sandbox hosted page").await;
    b.assert_fits_width("sandbox hosted page").await;

    b.c.delete_all_cookies().await.unwrap();
    b.login(MANAGER).await;
    for path in manager_pages(&member, &payment) {
        b.goto(&path).await;
        b.audit(&path).await;
        b.assert_fits_width(&path).await;
        b.shot(&shot_name(&path, label)).await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_audit_on_a_desktop() {
    check_every_page(DESKTOP, "desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_audit_and_fits_a_phone() {
    check_every_page(PHONE, "phone").await;
}
