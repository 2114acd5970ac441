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
