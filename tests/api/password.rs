//! Choosing a password from a mailed link: invitations (7 days) and resets of a forgotten
//! password (1 hour); each link works once, and the answer to a reset request says nothing
//! of whether the address is an account's.

use std::time::Duration;

use crate::helpers::{MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app};

/// The `.eml` files sent to this address so far, decoded enough to read links in them.
pub fn mails_to(app: &TestApp, to: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(&app.settings.mail.dir) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = dir
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let raw = std::fs::read_to_string(entry.path()).ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            // Quoted-printable: soft line breaks, then the escaped `=`.
            let text = raw
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            text.contains(&format!("To: {to}"))
                .then_some((modified, text))
        })
        .collect();
    mails.sort();
    mails.into_iter().map(|(_, text)| text).collect()
}

/// Waits (bounded) until `count` mails reached this address, and returns them, oldest first.
pub async fn wait_for_mails(app: &TestApp, to: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let mails = mails_to(app, to);
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{count} mail(s) to {to} expected, {} arrived",
        mails_to(app, to).len()
    );
}

/// The password link in a mail, as a path with its query.
pub fn password_link(mail: &str) -> String {
    let start = mail
        .find("/password/set?token=")
        .expect("a password link in the mail");
    let link: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '?' | '=' | '-' | '_'))
        .collect();
    assert!(link.len() > "/password/set?token=".len() + 40, "{link}");
    link
}

fn token_of(link: &str) -> &str {
    link.rsplit_once("token=").expect("a token").1
}

/// Opens the link and posts a new password through its form.
async fn choose_password(app: &TestApp, link: &str, password: &str) -> Page {
    let browser = app.browser();
    let form = browser.get(link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    browser
        .post_form(
            "/password/set",
            &[
                ("token", token_of(link)),
                ("password", password),
                ("confirmation", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
}

async fn ask_reset(app: &TestApp, email: &str) -> Page {
    let browser = app.browser();
    let form = browser.get("/password/forgot").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    browser
        .post_form(
            "/password/forgot",
            &[("email", email), ("csrf_token", &csrf)],
        )
        .await
}

/// A member created by the treasurer with an invitation.
async fn invite_new_member(app: &TestApp, email: &str) -> String {
    let manager = app.logged_in(MANAGER).await;
    let form = manager.get("/admin/members/new").await;
    let csrf = form.csrf();
    let page = manager
        .post_form(
            "/admin/members",
            &[
                ("last_name", "Lefèvre"),
                ("first_name", "Zoé"),
                ("email", email),
                ("phone", ""),
                ("address", ""),
                ("role", "member"),
                ("invite", "on"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    app.member_id(email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_link_sets_the_password_once() {
    let app = spawn_app().await;
    let email = "zoe.lefevre@exemple.org";
    invite_new_member(&app, email).await;
    // Created without a password: nothing logs in yet.
    assert_eq!(app.browser().login(email, "").await.status, 401);
    let mails = wait_for_mails(&app, email, 1).await;
    assert!(mails[0].contains("Bonjour Zo"), "{}", mails[0]);
    assert!(mails[0].contains("7 jours"));
    let link = password_link(&mails[0]);
    assert!(mails[0].contains(&format!("{}{link}", app.address)));

    // A mismatch or a short password is refused, and the link still works after that.
    let browser = app.browser();
    let form = browser.get(&link).await;
    assert!(form.body.contains("bienvenue"));
    let csrf = form.csrf();
    for (password, confirmation, message) in [
        ("court", "court", "au moins 10"),
        ("un-long-secret-1", "un-long-secret-2", "différents"),
    ] {
        let page = browser
            .post_form(
                "/password/set",
                &[
                    ("token", token_of(&link)),
                    ("password", password),
                    ("confirmation", confirmation),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, 422);
        assert!(page.text_of("password-error").unwrap().contains(message));
    }

    let done = choose_password(&app, &link, "mon-nouveau-secret").await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/login"));
    let logged = app.browser().login(email, "mon-nouveau-secret").await;
    assert_eq!(logged.status, 303);
    assert_eq!(logged.location.as_deref(), Some("/basket"));

    // The second use is refused, by the link and by its form.
    let again = app.browser().get(&link).await;
    assert_eq!(again.status, 410);
    assert!(again.text_of("link-error").unwrap().contains("déjà servi"));
    let login_form = app.browser();
    let csrf = login_form.get("/login").await.csrf();
    let replay = login_form
        .post_form(
            "/password/set",
            &[
                ("token", token_of(&link)),
                ("password", "un-autre-secret"),
                ("confirmation", "un-autre-secret"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(replay.status, 410);
    assert_eq!(
        app.browser().login(email, "un-autre-secret").await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_hash_of_a_link_is_stored_and_the_outbox_holds_no_token() {
    let app = spawn_app().await;
    let email = "zoe.lefevre@exemple.org";
    invite_new_member(&app, email).await;
    let mails = wait_for_mails(&app, email, 1).await;
    let link = password_link(&mails[0]);
    let token = token_of(&link).to_string();
    let pattern = format!("%{token}%");
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM password_tokens WHERE token_hash LIKE $1 OR user_id LIKE $1",
    )
    .bind(&pattern)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE payload LIKE $1")
        .bind(&pattern)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((stored, queued), (0, 0));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM password_tokens WHERE purpose = 'invitation'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invitation_is_refused() {
    let app = spawn_app().await;
    let email = "zoe.lefevre@exemple.org";
    invite_new_member(&app, email).await;
    let link = password_link(&wait_for_mails(&app, email, 1).await[0]);
    // Its form was opened in time, but it is sent after the link expired.
    let browser = app.browser();
    let csrf = browser.get(&link).await.csrf();
    sqlx::query("UPDATE password_tokens SET expires_at = '2001-01-01T00:00:00Z'")
        .execute(&app.pool)
        .await
        .unwrap();
    let page = browser.get(&link).await;
    assert_eq!(page.status, 410);
    assert!(page.text_of("link-error").unwrap().contains("expiré"));
    let late = browser
        .post_form(
            "/password/set",
            &[
                ("token", token_of(&link)),
                ("password", "mon-nouveau-secret"),
                ("confirmation", "mon-nouveau-secret"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(late.status, 410);
    assert_eq!(
        app.browser()
            .login(email, "mon-nouveau-secret")
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_or_missing_token_is_refused_with_a_message() {
    let app = spawn_app().await;
    let browser = app.browser();
    for path in [
        "/password/set",
        "/password/set?token=",
        "/password/set?token=abc",
        "/password/set?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/password/set?token=%27%20OR%201%3D1",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 400, "{path}");
        assert!(page.text_of("link-error").unwrap().contains("pas valable"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_resends_an_invitation_from_the_member_page() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER2.0).await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    assert!(page.body.contains("send-invitation"));
    let csrf = page.csrf();
    let sent = manager
        .post_form(
            &format!("/admin/members/{member_id}/invitation"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(sent.status, 303);
    let after = manager.get(&format!("/admin/members/{member_id}")).await;
    assert!(
        after
            .body
            .contains("Une invitation est envoyée à membre2@exemple.org")
    );
    let link = password_link(&wait_for_mails(&app, MEMBER2.0, 1).await[0]);
    assert_eq!(
        choose_password(&app, &link, "louis-a-choisi").await.status,
        303
    );
    assert_eq!(app.browser().login(MEMBER2.0, MEMBER2.1).await.status, 401);
    assert_eq!(
        app.browser()
            .login(MEMBER2.0, "louis-a-choisi")
            .await
            .status,
        303
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'member.invite'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_replaced_through_the_mailed_link() {
    let app = spawn_app().await;
    let login = app.browser().get("/login").await;
    assert!(login.body.contains("href=\"/password/forgot\""));

    // Two requests: two links. Using the second voids the first.
    let first = ask_reset(&app, MEMBER.0).await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location.as_deref(), Some("/login"));
    ask_reset(&app, "  Membre@Exemple.ORG ").await;
    let mails = wait_for_mails(&app, MEMBER.0, 2).await;
    assert!(mails[0].contains("60 minutes"));
    let links: Vec<String> = mails.iter().map(|m| password_link(m)).collect();
    assert_ne!(links[0], links[1]);

    let done = choose_password(&app, &links[1], "camille-nouveau").await;
    assert_eq!(done.status, 303);
    assert_eq!(app.browser().login(MEMBER.0, MEMBER.1).await.status, 401);
    let member = app.browser();
    assert_eq!(member.login(MEMBER.0, "camille-nouveau").await.status, 303);
    assert_eq!(member.get("/basket").await.status, 200);
    let stale = app.browser().get(&links[0]).await;
    assert_eq!(stale.status, 410);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM password_tokens WHERE used_at IS NULL")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    let app = spawn_app().await;
    let known = ask_reset(&app, MEMBER.0).await;
    let unknown = ask_reset(&app, "personne@exemple.org").await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.location, unknown.location);
    // The page they land on says the same thing.
    let flash = |page: &Page| {
        page.body
            .contains("Si un compte correspond à cette adresse")
    };
    let browser = app.browser();
    let csrf = browser.get("/password/forgot").await.csrf();
    browser
        .post_form(
            "/password/forgot",
            &[("email", "personne@exemple.org"), ("csrf_token", &csrf)],
        )
        .await;
    assert!(flash(&browser.get("/login").await));
    let browser = app.browser();
    let csrf = browser.get("/password/forgot").await.csrf();
    browser
        .post_form(
            "/password/forgot",
            &[("email", MEMBER.0), ("csrf_token", &csrf)],
        )
        .await;
    assert!(flash(&browser.get("/login").await));

    wait_for_mails(&app, MEMBER.0, 2).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_outbox WHERE kind = 'password_reset'")
            .await,
        2
    );
    assert!(mails_to(&app, "personne@exemple.org").is_empty());
    // A malformed address is a form error, not a hint.
    let bad = ask_reset(&app, "pas-une-adresse").await;
    assert_eq!(bad.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_throttled_per_address_typed_and_per_client() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(ask_reset(&app, MEMBER.0).await.status, 303);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Three mails per account and hour; the others got the same answer.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_outbox WHERE kind = 'password_reset'")
            .await,
        3
    );
    // Ten requests per client address and hour, whatever the addresses typed.
    for i in 0..5 {
        let page = ask_reset(&app, &format!("inconnu{i}@exemple.org")).await;
        assert_eq!(page.status, 303);
    }
    let throttled = ask_reset(&app, MEMBER2.0).await;
    assert_eq!(throttled.status, 429);
    assert!(
        throttled
            .text_of("forgot-error")
            .unwrap()
            .contains("Trop de demandes")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_member_gets_no_link_and_earlier_links_stop_working() {
    let app = spawn_app().await;
    ask_reset(&app, MEMBER.0).await;
    let link = password_link(&wait_for_mails(&app, MEMBER.0, 1).await[0]);
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    let csrf = manager
        .get(&format!("/admin/members/{member_id}/edit"))
        .await
        .csrf();
    let page = manager
        .post_form(
            &format!("/admin/members/{member_id}/deactivate"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(app.browser().get(&link).await.status, 410);
    assert_eq!(ask_reset(&app, MEMBER.0).await.status, 303);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails_to(&app, MEMBER.0).len(), 1);
}
