//! A member never sees or acts on another member's basket or payments.

use crate::helpers::{MEMBER, MEMBER2, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_read_another_members_payment() {
    let app = spawn_app().await;
    let owner = app.logged_in(MEMBER).await;
    let (id, hosted) = owner.start_payment(&app, "33,33").await;
    owner.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    assert_eq!(owner.get(&format!("/payments/{id}")).await.status, 200);

    let intruder = app.logged_in(MEMBER2).await;
    let page = intruder.get(&format!("/payments/{id}")).await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("33,33"));
    assert!(!page.body.contains("Camille"));
    // Their own basket shows none of it.
    let basket = intruder.get("/basket").await;
    assert!(!basket.body.contains("33,33"));
    assert!(!basket.body.contains(&id));
    assert_eq!(basket.text_of("balance").as_deref(), Some("131,50 €"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_started_by_one_member_is_charged_to_them_only() {
    let app = spawn_app().await;
    let member2 = app.logged_in(MEMBER2).await;
    let (id, hosted) = member2.start_payment(&app, "10").await;
    member2.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let member = app.logged_in(MEMBER).await.get("/basket").await;
    assert_eq!(member.text_of("balance").as_deref(), Some("97,00 €"));
    let member2_basket = member2.get("/basket").await;
    assert_eq!(
        member2_basket.text_of("balance").as_deref(),
        Some("121,50 €")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_cannot_open_the_managers_pages() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    for path in ["/admin", "/admin/ledger"] {
        let page = member.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.body.contains("Louis"), "{path} leaked a name");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_malformed_payment_ids_are_404() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    for id in [
        "nope",
        "01900000-0000-7000-8000-000000000000",
        "%27%20OR%201%3D1",
    ] {
        assert_eq!(
            member.get(&format!("/payments/{id}")).await.status,
            404,
            "{id}"
        );
    }
}
