//! French by default, English on request: the choice is kept for visitors in their session and
//! for users on their account, and amounts follow the language.

use crate::helpers::{MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_switches_to_english_and_the_account_remembers_it() {
    let app = spawn_app().await;
    let visitor = app.browser();
    let login = visitor.get("/login").await;
    assert!(login.body.contains("<html lang=\"fr\">"), "{}", login.body);
    assert!(login.body.contains("Connexion"));

    let switched = visitor
        .post_form(
            "/lang",
            &[
                ("lang", "en"),
                ("back", "/login"),
                ("csrf_token", &login.csrf()),
            ],
        )
        .await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location.as_deref(), Some("/login"));
    let login = visitor.get("/login").await;
    assert!(login.body.contains("<html lang=\"en\">"), "{}", login.body);
    assert!(login.body.contains("Email address"), "{}", login.body);
    assert!(!login.body.contains("Mot de passe"));

    assert_eq!(visitor.login(MEMBER.0, MEMBER.1).await.status, 303);
    let basket = visitor.get("/basket").await;
    assert_eq!(basket.text_of("balance").as_deref(), Some("€97.00"));
    let member = app.member_id(MEMBER.0).await;
    let saved: Option<String> = sqlx::query_scalar("SELECT locale FROM users WHERE id = $1")
        .bind(&member)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(saved.as_deref(), Some("en"));

    // Another browser, another day: the account's language comes back at login.
    let elsewhere = app.logged_in(MEMBER).await;
    let basket = elsewhere.get("/basket").await;
    assert!(basket.body.contains("<html lang=\"en\">"));
    assert_eq!(basket.text_of("balance").as_deref(), Some("€97.00"));

    // And back to French, from a logged-in page.
    let back = elsewhere
        .post_form(
            "/lang",
            &[
                ("lang", "fr"),
                ("back", "/basket"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some("/basket"));
    let basket = elsewhere.get("/basket").await;
    assert_eq!(basket.text_of("balance").as_deref(), Some("97,00 €"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_refuses_what_it_does_not_offer_and_never_leaves_the_site() {
    let app = spawn_app().await;
    let visitor = app.browser();
    let login = visitor.get("/login").await;
    let token = login.csrf();
    let unknown = visitor
        .post_form(
            "/lang",
            &[("lang", "de"), ("back", "/login"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("pas proposée"), "{}", unknown.body);
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "",
    ] {
        let page = visitor
            .post_form(
                "/lang",
                &[("lang", "en"), ("back", back), ("csrf_token", &token)],
            )
            .await;
        assert_eq!(page.status, 303, "{back}");
        assert_eq!(page.location.as_deref(), Some("/"), "{back}");
    }
    let forged = app
        .browser()
        .post_form(
            "/lang",
            &[("lang", "en"), ("back", "/login"), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_follow_the_language() {
    let app = spawn_app().await;
    let visitor = app.browser();
    let missing = visitor.get("/nulle-part").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page introuvable"));
    let login = visitor.get("/login").await;
    visitor
        .post_form(
            "/lang",
            &[("lang", "en"), ("back", "/"), ("csrf_token", &login.csrf())],
        )
        .await;
    let missing = visitor.get("/nulle-part").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"), "{}", missing.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basket_and_the_payment_pages_read_in_english() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let basket = member.get("/basket").await;
    member
        .post_form(
            "/lang",
            &[
                ("lang", "en"),
                ("back", "/basket"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    let basket = member.get("/basket").await;
    for text in ["My basket", "Left to pay", "What I owe", "Payment method"] {
        assert!(basket.body.contains(text), "{text}: {}", basket.body);
    }
    for text in ["Mon panier", "Reste à payer", "Ce que je dois"] {
        assert!(!basket.body.contains(text), "{text} should be translated");
    }
    assert_eq!(basket.value_of("amount").as_deref(), Some("97.00"));

    let refused = member.pay("douze", "sandbox").await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("The amount must be a number"),
        "{}",
        refused.body
    );

    let (id, _) = member.start_payment(&app, "12.50").await;
    let page = member.get(&format!("/payments/{id}")).await;
    assert!(page.body.contains("Confirming"), "{}", page.body);
    assert!(page.body.contains("€12.50"), "{}", page.body);
}
