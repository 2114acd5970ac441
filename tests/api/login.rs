use crate::helpers::{MANAGER, MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_lands_on_their_basket_and_a_manager_on_the_admin() {
    let app = spawn_app().await;
    let member = app.browser().login(MEMBER.0, MEMBER.1).await;
    assert_eq!(member.status, 303);
    assert_eq!(member.location.as_deref(), Some("/basket"));
    let manager = app.browser().login(MANAGER.0, MANAGER.1).await;
    assert_eq!(manager.location.as_deref(), Some("/admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_case_and_spaces_do_not_matter() {
    let app = spawn_app().await;
    let page = app.browser().login("  Membre@Exemple.ORG ", MEMBER.1).await;
    assert_eq!(page.location.as_deref(), Some("/basket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_get_the_same_message() {
    let app = spawn_app().await;
    let wrong_password = app.browser().login(MEMBER.0, "not-the-password").await;
    let unknown = app.browser().login("nobody@exemple.org", "whatever").await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown.status, 401);
    let message = "Adresse e-mail ou mot de passe incorrect.";
    assert_eq!(
        wrong_password.text_of("login-error").as_deref(),
        Some(message)
    );
    assert_eq!(unknown.text_of("login-error").as_deref(), Some(message));
    // The email typed is kept, the password is not.
    assert!(wrong_password.body.contains("value=\"membre@exemple.org\""));
    assert!(!wrong_password.body.contains("not-the-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_throttled_even_with_the_right_password_then() {
    let app = spawn_app().await;
    let browser = app.browser();
    for _ in 0..5 {
        assert_eq!(browser.login(MEMBER.0, "wrong").await.status, 401);
    }
    let throttled = browser.login(MEMBER.0, MEMBER.1).await;
    assert_eq!(throttled.status, 429);
    assert!(
        throttled
            .text_of("login-error")
            .unwrap()
            .contains("Trop de tentatives")
    );
    // Another account from the same address is not locked by these five failures.
    let other = app.browser().login(MANAGER.0, MANAGER.1).await;
    assert_eq!(other.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failures_from_one_address_are_throttled_across_accounts() {
    let app = spawn_app_low_address_limit().await;
    let browser = app.browser();
    for i in 0..3 {
        let page = browser.login(&format!("ghost{i}@exemple.org"), "x").await;
        assert_eq!(page.status, 401);
    }
    assert_eq!(browser.login(MEMBER.0, MEMBER.1).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_at_the_same_moment_do_not_get_past_the_account_limit() {
    let app = spawn_app().await;
    let limit = app.settings.login_max_failures_per_account;
    // Twenty sessions each hold a login form, then all guess at once.
    let mut guessers = Vec::new();
    for _ in 0..20 {
        let browser = app.browser();
        let token = browser.get("/login").await.csrf();
        guessers.push((browser, token));
    }
    let answers =
        futures_util::future::join_all(guessers.iter().map(|(browser, token)| async move {
            browser
                .post_form(
                    "/login",
                    &[
                        ("email", MEMBER.0),
                        ("password", "a guess"),
                        ("csrf_token", token.as_str()),
                    ],
                )
                .await
        }))
        .await;
    let checked = answers.iter().filter(|page| page.status == 401).count();
    let refused = answers.iter().filter(|page| page.status == 429).count();
    assert_eq!(checked + refused, 20, "only 401 and 429 expected");
    assert!(
        checked as i64 <= limit,
        "{checked} guesses had their password checked; the limit is {limit}"
    );
    // What is stored is what was checked: the refused guesses left nothing behind.
    let stored: i64 = app
        .count_for(
            "SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1",
            &format!("account:{}", MEMBER.0),
        )
        .await;
    assert_eq!(stored, checked as i64);
    // Guesses that all count each other at once may all be refused (none checked): safe. The
    // account is then locked exactly when the checked ones reached the limit.
    let expected = if checked as i64 == limit { 429 } else { 303 };
    assert_eq!(
        app.browser().login(MEMBER.0, MEMBER.1).await.status,
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_leaves_no_attempt_behind_against_its_address() {
    let app = spawn_app_low_address_limit().await;
    // Behind a proxy every member shares one address: successful logins do not fill its quota.
    for _ in 0..6 {
        assert_eq!(app.browser().login(MEMBER.0, MEMBER.1).await.status, 303);
    }
    let stored: i64 = app
        .count_for(
            "SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1",
            "address:127.0.0.1",
        )
        .await;
    assert_eq!(stored, 0);
    // A failure is still recorded against both keys.
    assert_eq!(app.browser().login(MEMBER.0, "wrong").await.status, 401);
    let after: i64 = app
        .count_for(
            "SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1",
            "address:127.0.0.1",
        )
        .await;
    assert_eq!(after, 1);
}

async fn spawn_app_low_address_limit() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|s| s.login_max_failures_per_address = 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.get("/login").await;
    let page = browser
        .post_form("/login", &[("email", MEMBER.0), ("password", MEMBER.1)])
        .await;
    assert_eq!(page.status, 403);
    let forged = browser
        .post_form(
            "/login",
            &[
                ("email", MEMBER.0),
                ("password", MEMBER.1),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("Formulaire expiré"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_is_httponly_and_lax_and_pages_carry_security_headers() {
    let app = spawn_app().await;
    let page = app.browser().get("/login").await;
    let cookie = page
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.headers.contains_key("referrer-policy"));
    let missing = app.browser().get("/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_is_secure_when_the_portal_is_served_over_https() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.base_url = Some("https://portail.exemple.org".into());
    })
    .await;
    let page = app.browser().get("/login").await;
    let cookie = page.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(page.headers.contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    assert_eq!(basket.status, 200);
    let out = browser
        .post_form("/logout", &[("csrf_token", &basket.csrf())])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    let after = browser.get("/basket").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location.as_deref(), Some("/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_needs_the_csrf_token() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let out = browser.post_form("/logout", &[]).await;
    assert_eq!(out.status, 403);
    assert_eq!(browser.get("/basket").await.status, 200);
}
