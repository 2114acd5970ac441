//! Every mail in its recipient's language (the one saved on their account; French when none),
//! and the member's other pages (paying, the saved card, the payment request's link, passwords,
//! the gateways' emulated pages) in the reader's.

mod pages;
pub(crate) mod reading;

use std::time::Duration;

use reading::{Mail, assert_english_mail, assert_english_page, wait_for_mail};

use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, TestApp, spawn_app};

/// The secretary: a manager who never chose a language.
const SECRETARY: (&str, &str) = ("secretaire@exemple.org", "secretaire-demo");

/// Chooses a language with the switch at the foot of `from`.
async fn choose(browser: &Browser, lang: &str, from: &str) {
    let page = browser.get(from).await;
    let chosen = browser
        .post_form(
            "/lang",
            &[("lang", lang), ("back", from), ("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A `YYYY-MM-DD` date written in English (`2 Nov 2026`) and in French (`02/11/2026`).
fn dates(iso: &str) -> (String, String) {
    let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let month = MONTHS[m.parse::<usize>().expect("a month") - 1];
    (
        format!("{} {month} {y}", d.trim_start_matches('0')),
        format!("{d}/{m}/{y}"),
    )
}

/// Today (UTC), and tomorrow in case the day changes while the test runs.
fn todays() -> [String; 2] {
    let today = time::OffsetDateTime::now_utc().date();
    [today, today.next_day().expect("a tomorrow")].map(|d| d.to_string())
}

/// Pays `amount` from the basket in the sandbox; waits for the confirmation.
async fn pay_in_sandbox(app: &TestApp, browser: &Browser, amount: &str) -> String {
    let (id, hosted) = browser.start_payment(app, amount).await;
    browser.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_gets_the_receipt_in_the_language_of_their_account() {
    let app = spawn_app().await;
    let english = app.logged_in(MEMBER).await;
    choose(&english, "en", "/basket").await;
    let french = app.logged_in(MEMBER2).await;
    pay_in_sandbox(&app, &english, "97.00").await;
    pay_in_sandbox(&app, &french, "131,50").await;

    let mail = wait_for_mail(&app, MEMBER.0, "€97.00").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration: payment of €97.00 received"
    );
    let days = todays().map(|d| dates(&d).0);
    for body in [&mail.text, &mail.html] {
        assert!(body.contains("Hello Camille Martin,"), "{body}");
        assert!(
            days.iter().any(|day| body.contains(&format!(
                "Association de démonstration has received your payment of €97.00 \
                 (Sandbox (test payment)) on {day}."
            ))),
            "{body}"
        );
    }
    assert!(mail.text.contains("/payments/"), "{}", mail.text);
    assert!(mail.html.contains("See your receipt"), "{}", mail.html);
    assert_english_mail(&mail);

    // Nothing chosen: French, as before.
    let mail = wait_for_mail(&app, MEMBER2.0, "131,50").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration : paiement de 131,50 € reçu"
    );
    let days = todays().map(|d| dates(&d).1);
    assert!(
        mail.text.contains("Bonjour Louis Bernard,"),
        "{}",
        mail.text
    );
    assert!(
        days.iter().any(|day| mail.text.contains(&format!(
            "a bien reçu votre paiement de 131,50 € (Sandbox (paiement de test)), le {day}."
        ))),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("<html lang=\"fr\">"));
    assert!(!mail.contains("Hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_links_and_invitations_follow_the_account_language() {
    let app = spawn_app().await;
    // Louis chose English on his account; Camille chose nothing.
    let louis = app.logged_in(MEMBER2).await;
    choose(&louis, "en", "/basket").await;

    // Asked from a browser that chose nothing: the mail follows the account.
    for who in [MEMBER2.0, MEMBER.0] {
        let visitor = app.browser();
        let form = visitor.get("/password/forgot").await;
        let sent = visitor
            .post_form(
                "/password/forgot",
                &[("email", who), ("csrf_token", &form.csrf())],
            )
            .await;
        assert_eq!(sent.status, 303, "{}", sent.body);
    }
    let mail = wait_for_mail(&app, MEMBER2.0, "/password/set?token=").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration: choose a new password"
    );
    assert!(mail.text.contains("Hello Louis Bernard,"), "{}", mail.text);
    assert!(
        mail.text
            .contains("To choose it, open this link (valid for 60 minutes, once):"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Choose a new password"), "{}", mail.html);
    assert_english_mail(&mail);
    let french = wait_for_mail(&app, MEMBER.0, "/password/set?token=").await;
    assert_eq!(
        french.subject,
        "Association de démonstration : choisir un nouveau mot de passe"
    );
    assert!(
        french.text.contains("valable 60 minutes"),
        "{}",
        french.text
    );

    // The link opens, in a fresh browser, in the account's language, and says it there.
    let start = mail.text.find("/password/set?token=").unwrap();
    let link: String = mail.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let form = app.browser().get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Choose a password"), "{}", form.body);
    assert!(form.body.contains("Hello Louis!"), "{}", form.body);
    assert_english_page(&form);

    // Invitations too, sent again from the member's page by a manager reading French.
    let manager = app.logged_in(MANAGER).await;
    for who in [MEMBER2.0, MEMBER.0] {
        let id = app.member_id(who).await;
        let page = manager.get(&format!("/admin/members/{id}")).await;
        let sent = manager
            .post_form(
                &format!("/admin/members/{id}/invitation"),
                &[("csrf_token", &page.csrf())],
            )
            .await;
        assert_eq!(sent.status, 303, "{}", sent.body);
    }
    let mail = wait_for_mail(&app, MEMBER2.0, "Choose my password").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration: your access to the members' portal"
    );
    assert!(
        mail.text
            .contains("open this link (valid for 7 days, once):"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Choose my password"), "{}", mail.html);
    assert_english_mail(&mail);
    let french = wait_for_mail(&app, MEMBER.0, "vous ouvre un accès").await;
    assert!(french.text.contains("valable 7 jours"), "{}", french.text);
    assert!(french.text.contains("Bonjour Camille Martin,"));
}

/// The request link (`/r/…`) in a mail, as a path.
fn request_link(app: &TestApp, mail: &Mail) -> String {
    let prefix = format!("{}/r/", app.address);
    let start = mail.text.find(&prefix).expect("a request link") + app.address.len();
    mail.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

/// A manager asks a member to pay, from the member's page.
async fn send_request(
    app: &TestApp,
    manager: &Browser,
    member: &str,
    gateway: &str,
    message: &str,
) {
    let id = app.member_id(member).await;
    let form = manager.get(&format!("/admin/members/{id}/request")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let key = {
        let html = scraper::Html::parse_document(&form.body);
        let selector = scraper::Selector::parse("input[name=form_key]").unwrap();
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value"))
            .expect("a form key")
            .to_string()
    };
    let sent = manager
        .post_form(
            &format!("/admin/members/{id}/request"),
            &[
                ("gateway", gateway),
                ("message", message),
                ("form_key", &key),
                ("csrf_token", &form.csrf()),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
}

/// Pays through a request's link in `browser` (the sandbox), and waits until it is paid.
async fn pay_through_link(app: &TestApp, browser: &Browser, link: &str, member: &str) {
    let page = browser.get(link).await;
    let started = browser
        .post_form(
            &format!("{link}/pay"),
            &[("gateway", "sandbox"), ("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let hosted = started.location.expect("the gateway's page");
    browser.post_form(&hosted, &[("action", "pay")]).await;
    let member_id = app.member_id(member).await;
    for _ in 0..200 {
        let paid = app
            .count_for(
                "SELECT COUNT(*) FROM payment_requests WHERE member_id = $1 AND status = 'paid'",
                &member_id,
            )
            .await;
        if paid == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the request of {member} was never paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_requests_follow_the_member_and_the_paid_notice_the_manager() {
    let app = spawn_app().await;
    // The treasurer and Camille read English; the secretary and Louis chose nothing. Each
    // manager asks the member who reads the other language.
    let treasurer = app.logged_in(MANAGER).await;
    choose(&treasurer, "en", "/basket").await;
    let camille = app.logged_in(MEMBER).await;
    choose(&camille, "en", "/basket").await;
    let secretary = app.logged_in(SECRETARY).await;
    send_request(
        &app,
        &secretary,
        MEMBER.0,
        "sandbox",
        "Please pay before the outing.",
    )
    .await;
    send_request(&app, &treasurer, MEMBER2.0, "", "").await;

    let mail = wait_for_mail(&app, MEMBER.0, "€97.00").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration: payment request of €97.00"
    );
    let expires: String =
        sqlx::query_scalar("SELECT expires_at FROM payment_requests WHERE member_id = $1")
            .bind(app.member_id(MEMBER.0).await)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (until, _) = dates(&expires);
    // The gateway the secretary chose is named in English too.
    for wanted in [
        "Hello Camille Martin,",
        "Association de démonstration asks you to pay €97.00.",
        "Message from Sami Registre:",
        "Please pay before the outing.",
        "What is owed:",
        "- Cotisation 2026-2027: €45.00",
        "Left to pay: €97.00",
        &format!("To pay with Sandbox (test payment), open this link (valid until {until}):"),
    ] {
        assert!(mail.text.contains(wanted), "{wanted}: {}", mail.text);
    }
    assert!(
        mail.html.contains("Pay €97.00 with Sandbox (test payment)"),
        "{}",
        mail.html
    );
    assert_english_mail(&mail);

    // Louis's mail is French, though the treasurer who sent it reads English.
    let french = wait_for_mail(&app, MEMBER2.0, "131,50").await;
    for wanted in [
        "Bonjour Louis Bernard,",
        "vous demande de régler 131,50 €.",
        "Reste à payer : 131,50 €",
        "Pour payer, ouvrez ce lien",
    ] {
        assert!(french.text.contains(wanted), "{wanted}: {}", french.text);
    }

    // Each link opens, in a fresh browser, in its member's language.
    let link = request_link(&app, &mail);
    let visitor = app.browser();
    let page = visitor.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.text_of("request-headline").as_deref(),
        Some("Payment request")
    );
    assert_eq!(page.text_of("request-pay").as_deref(), Some("Pay €97.00"));
    assert_eq!(
        page.text_of("request-gateway").as_deref(),
        Some("Sandbox (test payment)")
    );
    assert!(page.body.contains("Left to pay"));
    assert_english_page(&page);
    let french_link = request_link(&app, &french);
    let louis_visitor = app.browser();
    let page = louis_visitor.get(&french_link).await;
    assert_eq!(
        page.text_of("request-headline").as_deref(),
        Some("Demande de paiement")
    );
    assert!(page.body.contains("<html lang=\"fr\">"));

    // Paid through the links: each manager is told in their own language.
    pay_through_link(&app, &louis_visitor, &french_link, MEMBER2.0).await;
    let notice = wait_for_mail(&app, MANAGER.0, "Louis Bernard").await;
    assert_eq!(
        notice.subject,
        "Association de démonstration: payment request paid by Louis Bernard"
    );
    let days = todays().map(|d| dates(&d).0);
    assert!(
        days.iter().any(|day| notice.text.contains(&format!(
            "Louis Bernard paid the payment request you sent them: €131.50, on {day}."
        ))),
        "{}",
        notice.text
    );
    assert!(notice.html.contains("See the request"), "{}", notice.html);
    assert_english_mail(&notice);

    pay_through_link(&app, &visitor, &link, MEMBER.0).await;
    let notice = wait_for_mail(&app, SECRETARY.0, "Camille Martin").await;
    assert_eq!(
        notice.subject,
        "Association de démonstration : demande de paiement réglée par Camille Martin"
    );
    assert!(
        notice.text.contains(
            "Camille Martin a réglé la demande de paiement que vous lui avez envoyée : 97,00 €"
        ),
        "{}",
        notice.text
    );
    let paid = visitor.get(&link).await;
    assert_eq!(
        paid.text_of("request-headline").as_deref(),
        Some("Request paid")
    );
    assert_english_page(&paid);
}

/// A manager may set a new member's language on the form: the invitation goes out in it, the
/// choice shows again on the form, and a language not offered is refused on its field.
#[tokio::test]
async fn a_member_created_in_english_is_invited_in_english() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let form = manager.get("/admin/members/new").await;
    assert!(form.body.contains("id=\"locale\""), "{}", form.body);
    let fields = |locale: &'static str, email: &'static str| {
        vec![
            ("last_name", "Smith"),
            ("first_name", "Jane"),
            ("email", email),
            ("phone", ""),
            ("address", ""),
            ("role", "member"),
            ("locale", locale),
            ("invite", "on"),
        ]
    };

    let mut refused = fields("de", "jane.de@exemple.org");
    let token = form.csrf();
    refused.push(("csrf_token", &token));
    let page = manager.post_form("/admin/members", &refused).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        page.text_of("locale-error").as_deref(),
        Some("Choisissez une langue proposée.")
    );
    let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
        .bind("jane.de@exemple.org")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(none, 0);

    let mut created = fields("en", "jane@exemple.org");
    created.push(("csrf_token", &token));
    let done = manager.post_form("/admin/members", &created).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mail = wait_for_mail(&app, "jane@exemple.org", "Choose my password").await;
    assert_eq!(
        mail.subject,
        "Association de démonstration: your access to the members' portal"
    );
    assert_english_mail(&mail);

    let id = app.member_id("jane@exemple.org").await;
    let edit = manager.get(&format!("/admin/members/{id}/edit")).await;
    assert!(
        edit.body
            .contains("<option value=\"en\" lang=\"en\" selected>"),
        "{}",
        edit.body
    );
    // Left to the member again: the account no longer holds a language.
    let mut cleared = fields("", "jane@exemple.org");
    cleared.retain(|(name, _)| *name != "invite");
    let token = edit.csrf();
    cleared.push(("csrf_token", &token));
    let saved = manager
        .post_form(&format!("/admin/members/{id}/edit"), &cleared)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let locale: Option<String> = sqlx::query_scalar("SELECT locale FROM users WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(locale, None);
}
