//! Payment requests: a manager asks a member (or all who owe) to pay by a mail whose link
//! leads straight to paying, without a password; the manager is told once when it is paid.

use std::time::Duration;

use sqlx::Row;

use crate::helpers::{
    Browser, MANAGER, MEMBER, MEMBER_OWES_CENTS, MEMBER2, Page, TestApp, spawn_app,
};

/// The demo's second member owes 131,50 €.
const MEMBER2_OWES_CENTS: i64 = 13150;

/// Every mail written so far to `to`, its quoted-printable text decoded.
fn mails_to(app: &TestApp, to: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(&app.settings.mail.dir) else {
        return Vec::new();
    };
    dir.filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter(|raw| raw.contains(&format!("To: {to}")))
        .map(|raw| crate::language_mail::reading::decode_quoted_printable(&raw))
        .collect()
}

/// Waits (bounded) until `count` mails were written to `to`; returns them.
async fn wait_for_mails(app: &TestApp, to: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let mails = mails_to(app, to);
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {count} mail(s) to {to}, found {}",
        mails_to(app, to).len()
    );
}

/// The request link in a mail, as a path (`/r/{token}`).
fn link_in(app: &TestApp, mail: &str) -> String {
    let start = mail
        .find(&format!("{}/r/", app.address))
        .expect("a request link in the mail")
        + app.address.len();
    let token: String = mail[start + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{mail}");
    format!("/r/{token}")
}

/// A manager sends a request to one member from the member's page.
async fn send_request(
    manager: &Browser,
    member_id: &str,
    gateway: &str,
    message: &str,
) -> (Page, String) {
    let member = manager.get(&format!("/admin/members/{member_id}")).await;
    assert!(
        member
            .body
            .contains(&format!("/admin/members/{member_id}/request")),
        "the member page links to the request form"
    );
    let form = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    assert_eq!(form.status, 200);
    let key = form.form_key();
    let token = form.csrf();
    let page = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", gateway),
                ("message", message),
                ("form_key", key.as_str()),
                ("csrf_token", token.as_str()),
            ],
        )
        .await;
    (page, key)
}

async fn request_field(app: &TestApp, member_id: &str, column: &str) -> Option<String> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM payment_requests WHERE member_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(member_id)
    .fetch_one(&app.pool)
    .await
    .expect("a payment request")
    .get::<Option<String>, _>(0)
}

async fn wait_for_request_status(app: &TestApp, member_id: &str, status: &str) {
    for _ in 0..100 {
        if request_field(app, member_id, "status").await.as_deref() == Some(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the request never reached {status}; it is {:?}",
        request_field(app, member_id, "status").await
    );
}

/// Pays through the basket in the sandbox and waits for the confirmation.
async fn pay_basket(app: &TestApp, member: &Browser, amount: &str) -> String {
    let (id, hosted) = member.start_payment(app, amount).await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_mail_pays_through_its_link_without_login_and_tells_the_manager_once() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;

    let (sent, _) =
        send_request(&manager, &member_id, "", "Merci de régler avant la sortie.").await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let flash = manager.get(sent.location.as_deref().unwrap()).await;
    assert!(
        flash.body.contains("Demande de paiement de 97,00"),
        "{}",
        flash.body
    );
    assert_eq!(
        request_field(&app, &member_id, "status").await.as_deref(),
        Some("sent")
    );
    let amount: i64 = sqlx::query_scalar("SELECT amount_cents FROM payment_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(amount, MEMBER_OWES_CENTS);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'payment_request.send'")
            .await,
        1
    );

    // The mail: what is owed, the amount, the message, and the link.
    let mail = wait_for_mails(&app, MEMBER.0, 1).await.remove(0);
    assert!(mail.contains("vous demande de régler 97,00"), "{mail}");
    assert!(mail.contains("Cotisation 2026-2027"), "{mail}");
    assert!(mail.contains("Merci de régler avant la sortie."), "{mail}");
    assert!(mail.contains("Reste à payer : 97,00"), "{mail}");
    let link = link_in(&app, &mail);
    let token = link.trim_start_matches("/r/");
    // Only the token's hash is kept: not in the request, not in the outbox.
    let stored = request_field(&app, &member_id, "token_hash").await.unwrap();
    assert_eq!(stored.len(), 64);
    assert_ne!(stored, token);
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM mail_outbox WHERE payload LIKE '%' || $1 || '%'",
            token,
        )
        .await,
        0
    );

    // The link opens without login: the member's name, the lines, the amount owed now.
    let visitor = app.browser();
    let page = visitor.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.text_of("request-amount").as_deref(), Some("97,00 €"));
    assert!(
        page.text_of("request-lines")
            .unwrap()
            .contains("Cotisation 2026-2027")
    );
    assert!(page.body.contains("Camille Martin"));
    assert!(
        page.text_of("request-message")
            .unwrap()
            .contains("avant la sortie")
    );
    // ...but it is no session: the basket and the rest still ask for a login.
    for path in ["/basket", "/admin/requests", "/admin"] {
        let other = visitor.get(path).await;
        assert_eq!(other.status, 303, "{path}");
        assert_eq!(other.location.as_deref(), Some("/login"), "{path}");
    }

    // Paying creates an attempt linked to the request and goes to the gateway.
    let csrf = page.csrf();
    let go = visitor
        .post_form(
            &format!("{link}/pay"),
            &[("gateway", "sandbox"), ("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(go.status, 303, "{}", go.body);
    let hosted = go.location.unwrap();
    assert!(hosted.contains("/sandbox/pay/"), "{hosted}");
    let payment_id: String = sqlx::query_scalar("SELECT payment_id FROM payment_request_attempts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let cents: i64 = sqlx::query_scalar("SELECT amount_cents FROM payments WHERE id = $1")
        .bind(&payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(cents, MEMBER_OWES_CENTS);
    // Opened again before paying at the gateway: a word about the attempt, and still the button.
    let meanwhile = visitor.get(&link).await;
    assert!(
        meanwhile.text_of("request-pending").is_some(),
        "{}",
        meanwhile.body
    );
    assert!(meanwhile.text_of("request-pay").is_some());
    // Back from the gateway (which proves nothing): the page waits for the confirmation.
    let waiting = visitor
        .get(&format!("{link}/retour?status=succeeded"))
        .await;
    assert_eq!(waiting.status, 303);
    let waiting = visitor.get(waiting.location.as_deref().unwrap()).await;
    assert_eq!(
        waiting.text_of("request-headline").as_deref(),
        Some("Confirmation en cours")
    );
    assert!(waiting.body.contains("http-equiv=\"refresh\""));
    assert!(waiting.text_of("request-pay").is_none());
    assert_eq!(app.payment_status(&payment_id).await, "pending");
    let back = visitor.post_form(&hosted, &[("action", "pay")]).await;
    assert_eq!(back.status, 303);
    app.wait_for_status(&payment_id, "paid").await;
    wait_for_request_status(&app, &member_id, "paid").await;
    assert_eq!(
        request_field(&app, &member_id, "payment_id")
            .await
            .as_deref(),
        Some(payment_id.as_str())
    );

    // The member comes back to the link, which says it is settled.
    let done = visitor
        .get_following(back.location.as_deref().unwrap())
        .await;
    assert_eq!(done.status, 200);
    assert_eq!(
        done.text_of("request-headline").as_deref(),
        Some("Demande réglée")
    );
    assert!(done.text_of("request-pay").is_none());

    // The notification arrives twice more: the manager is told exactly once.
    let gateway_ref = app.gateway_ref(&payment_id).await;
    for _ in 0..2 {
        let body = app.sandbox_event(&payment_id, &gateway_ref, "succeeded", MEMBER_OWES_CENTS);
        assert_eq!(
            app.post_notification(body.clone(), Some(app.sign(&body)))
                .await,
            200
        );
    }
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
    let notices = wait_for_mails(&app, MANAGER.0, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(mails_to(&app, MANAGER.0).len(), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_outbox WHERE kind = 'payment_request_paid'")
            .await,
        1
    );
    assert!(
        notices[0].contains("Camille Martin a réglé la demande"),
        "{}",
        notices[0]
    );
    assert!(notices[0].contains("97,00"), "{}", notices[0]);

    // Once paid, the link pays no more.
    let again = visitor
        .post_form(
            &format!("{link}/pay"),
            &[("gateway", "sandbox"), ("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(again.status, 410);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 1);

    // The manager sees it paid, with its payment.
    let listed = manager.get("/admin/requests?status=paid").await;
    assert_eq!(listed.status, 200);
    let table = listed.text_of("requests").expect("the requests table");
    assert!(
        table.contains("Camille Martin") && table.contains("Payée"),
        "{table}"
    );
    assert!(
        listed
            .body
            .contains(&format!("/admin/payments/{payment_id}"))
    );
    let member_basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert_eq!(
        member_basket.text_of("balance-title").as_deref(),
        Some("Vous êtes à jour")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_all_who_owe_confirms_the_count_and_a_second_submission_sends_nothing() {
    let app = spawn_app().await;
    // The first member pays everything: only the second one still owes.
    let member = app.logged_in(MEMBER).await;
    pay_basket(&app, &member, "97,00").await;

    let manager = app.logged_in(MANAGER).await;
    let list = manager.get("/admin/requests").await;
    assert_eq!(list.status, 200);
    let summary = list.text_of("owing-summary").unwrap();
    assert!(
        summary.contains("1 membre(s)") && summary.contains("131,50 €"),
        "{summary}"
    );
    let key = list.form_key();
    let csrf = list.csrf();
    let fields = |confirm: &'static str| {
        [
            ("gateway", "sandbox".to_string()),
            ("message", "Rappel de cotisation".to_string()),
            ("form_key", key.clone()),
            ("confirm", confirm.to_string()),
            ("csrf_token", csrf.clone()),
        ]
    };

    // First the confirmation: how many members, how much; nothing is sent yet.
    let preview = fields("");
    let preview: Vec<(&str, &str)> = preview.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let confirm = manager.post_form("/admin/requests/all", &preview).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let summary = confirm.text_of("confirm-summary").unwrap();
    assert!(
        summary.contains("1 membre(s)") && summary.contains("131,50 €"),
        "{summary}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_requests").await, 0);
    assert_eq!(
        confirm.value_of("confirm-key").as_deref(),
        Some(key.as_str())
    );

    // Confirmed: one request, to the member who owes. Sent again: nothing more.
    let confirmed = fields("yes");
    let confirmed: Vec<(&str, &str)> = confirmed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = manager.post_form("/admin/requests/all", &confirmed).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let again = manager.post_form("/admin/requests/all", &confirmed).await;
    assert_eq!(again.status, 303);
    let flash = manager.get("/admin/requests").await;
    assert!(flash.body.contains("déjà été envoyé"), "{}", flash.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_requests").await, 1);
    let member2_id = app.member_id(MEMBER2.0).await;
    let row = sqlx::query("SELECT member_id, amount_cents, gateway FROM payment_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("member_id"), member2_id);
    assert_eq!(row.get::<i64, _>("amount_cents"), MEMBER2_OWES_CENTS);
    assert_eq!(
        row.get::<Option<String>, _>("gateway").as_deref(),
        Some("sandbox")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'payment_request.send_all'")
            .await,
        1
    );
    let mail = wait_for_mails(&app, MEMBER2.0, 1).await.remove(0);
    assert!(
        mail.contains("Rappel de cotisation") && mail.contains("131,50"),
        "{mail}"
    );
    // The member who paid got a receipt, but no request.
    assert!(mails_to(&app, MEMBER.0).iter().all(|m| !m.contains("/r/")));

    // The manager chose the gateway: the link offers only it.
    let page = app.browser().get(&link_in(&app, &mail)).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.text_of("request-gateway").as_deref(),
        Some("Sandbox (paiement de test)")
    );
    assert!(!page.body.contains("type=\"radio\""));

    // The list filters by status; an unknown status is a clear 400.
    let sent = manager.get("/admin/requests?status=sent").await;
    assert!(sent.text_of("requests").unwrap().contains("Louis Bernard"));
    let paid = manager.get("/admin/requests?status=paid").await;
    assert!(paid.text_of("requests").is_none());
    assert!(paid.text_of("no-requests").is_some());
    let bogus = manager.get("/admin/requests?status=bogus").await;
    assert_eq!(bogus.status, 400);
    assert!(bogus.body.contains("Statut inconnu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_says_so_and_its_link_cannot_pay() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    let (sent, _) = send_request(&manager, &member_id, "", "").await;
    assert_eq!(sent.status, 303);
    let mail = wait_for_mails(&app, MEMBER.0, 1).await.remove(0);
    assert!(!mail.contains("Message de"), "no message was given: {mail}");
    let link = link_in(&app, &mail);
    let visitor = app.browser();
    let open = visitor.get(&link).await;
    assert_eq!(open.status, 200);
    let csrf = open.csrf();

    let request_id: String = sqlx::query_scalar("SELECT id FROM payment_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let detail = manager.get(&format!("/admin/requests/{request_id}")).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.text_of("request-status").as_deref(), Some("Envoyée"));
    // Cancelling is a POST with the CSRF token.
    let forged = manager
        .post_form(&format!("/admin/requests/{request_id}/cancel"), &[])
        .await;
    assert_eq!(forged.status, 403);
    let cancel = manager
        .post_form(
            &format!("/admin/requests/{request_id}/cancel"),
            &[("csrf_token", detail.csrf().as_str())],
        )
        .await;
    assert_eq!(cancel.status, 303);
    assert_eq!(
        request_field(&app, &member_id, "status").await.as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'payment_request.cancel'")
            .await,
        1
    );
    let twice = manager
        .post_form(
            &format!("/admin/requests/{request_id}/cancel"),
            &[("csrf_token", detail.csrf().as_str())],
        )
        .await;
    assert_eq!(twice.status, 409);
    assert!(twice.text_of("action-error").unwrap().contains("annulée"));

    let closed = visitor.get(&link).await;
    assert_eq!(closed.status, 410);
    assert_eq!(
        closed.text_of("request-headline").as_deref(),
        Some("Demande annulée")
    );
    assert!(closed.text_of("request-pay").is_none());
    let pay = visitor
        .post_form(
            &format!("{link}/pay"),
            &[("gateway", "sandbox"), ("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(pay.status, 410);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_says_so_with_a_410() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    send_request(&manager, &member_id, "", "").await;
    // Thirty days by default.
    let created = request_field(&app, &member_id, "created_at").await.unwrap();
    let expires = request_field(&app, &member_id, "expires_at").await.unwrap();
    let date = |s: &str| {
        time::Date::parse(
            &s[..10],
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap()
    };
    assert_eq!((date(&expires) - date(&created)).whole_days(), 30);
    let link = link_in(&app, &wait_for_mails(&app, MEMBER.0, 1).await[0]);

    sqlx::query("UPDATE payment_requests SET expires_at = '2000-01-01T00:00:00Z'")
        .execute(&app.pool)
        .await
        .unwrap();
    let page = app.browser().get(&link).await;
    assert_eq!(page.status, 410);
    assert_eq!(
        page.text_of("request-headline").as_deref(),
        Some("Demande expirée")
    );
    assert_eq!(
        request_field(&app, &member_id, "status").await.as_deref(),
        Some("expired")
    );
    let listed = manager.get("/admin/requests?status=expired").await;
    assert!(
        listed
            .text_of("requests")
            .unwrap()
            .contains("Camille Martin")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unknown_and_other_members_tokens_are_a_404() {
    let app = spawn_app().await;
    let member2_id = app.member_id(MEMBER2.0).await;
    let manager = app.logged_in(MANAGER).await;
    send_request(&manager, &member2_id, "", "").await;
    let link = link_in(&app, &wait_for_mails(&app, MEMBER2.0, 1).await[0]);

    let visitor = app.browser();
    let forged = format!("/r/{}", "A".repeat(43));
    for path in ["/r/nothing", forged.as_str(), "/r/..%2F..%2Fadmin"] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("Page introuvable"), "{path}");
    }
    // A token with one character changed is forged too.
    let mut altered = link.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(visitor.get(&altered).await.status, 404);
    let login = visitor.get("/login").await;
    let pay = visitor
        .post_form(
            &format!("{forged}/pay"),
            &[
                ("gateway", "sandbox"),
                ("csrf_token", login.csrf().as_str()),
            ],
        )
        .await;
    assert_eq!(pay.status, 404);

    // Another member, logged in, cannot open it; the member it was sent to can.
    let other = app.logged_in(MEMBER).await;
    assert_eq!(other.get(&link).await.status, 404);
    let owner = app.logged_in(MEMBER2).await;
    let own = owner.get(&link).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.text_of("request-amount").as_deref(), Some("131,50 €"));
    // The other member's own basket does not show the request's member's data either.
    assert!(!other.get("/basket").await.body.contains("Louis Bernard"));
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_cannot_use_the_request_pages_of_managers() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    let basket = member.get("/basket").await;
    let csrf = basket.csrf();
    for path in [
        "/admin/requests".to_string(),
        format!("/admin/members/{member_id}/request"),
        "/admin/requests/00000000-0000-0000-0000-000000000000".to_string(),
    ] {
        assert_eq!(member.get(&path).await.status, 403, "{path}");
    }
    let key = uuid::Uuid::now_v7().to_string();
    let fields = [
        ("gateway", ""),
        ("message", ""),
        ("form_key", key.as_str()),
        ("confirm", "yes"),
        ("csrf_token", csrf.as_str()),
    ];
    assert_eq!(
        member
            .post_form("/admin/requests/all", &fields)
            .await
            .status,
        403
    );
    assert_eq!(
        member
            .post_form(&format!("/admin/members/{member_id}/request"), &fields)
            .await
            .status,
        403
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_requests").await, 0);
    // Anonymous visitors are sent to the login page.
    let anonymous = app.browser().get("/admin/requests").await;
    assert_eq!(anonymous.status, 303);
    // The secretary (a manager, not an admin) may send them.
    let secretary = app
        .logged_in(("secretaire@exemple.org", "secretaire-demo"))
        .await;
    assert_eq!(secretary.get("/admin/requests").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_forms_are_refused_with_a_message_and_send_nothing() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    let form = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    let key = form.form_key();
    let csrf = form.csrf();
    let long = "x".repeat(1001);
    let url = format!("/admin/members/{member_id}/request");
    let cases = [
        ("paypal-inconnu", "", key.as_str(), "moyens de paiement"),
        ("", long.as_str(), key.as_str(), "1000 caractères"),
        ("", "bonjour\u{7}", key.as_str(), "caractères de contrôle"),
        ("", "", "pas-une-clef", "expiré"),
    ];
    for (gateway, message, form_key, expected) in cases {
        let page = manager
            .post_form(
                &url,
                &[
                    ("gateway", gateway),
                    ("message", message),
                    ("form_key", form_key),
                    ("csrf_token", csrf.as_str()),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{expected}");
        let error = page.text_of("request-error").expect("a message");
        assert!(error.contains(expected), "{error}");
    }
    // No CSRF token: 403. An unknown member: 404. Someone who owes nothing: 422.
    let no_csrf = manager
        .post_form(&url, &[("gateway", ""), ("form_key", key.as_str())])
        .await;
    assert_eq!(no_csrf.status, 403);
    let unknown = manager
        .post_form(
            "/admin/members/nobody/request",
            &[("form_key", key.as_str()), ("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(unknown.status, 404);
    let treasurer_id = app.member_id(MANAGER.0).await;
    let nothing = manager
        .post_form(
            &format!("/admin/members/{treasurer_id}/request"),
            &[("form_key", key.as_str()), ("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(nothing.status, 422);
    assert!(
        nothing
            .text_of("request-error")
            .unwrap()
            .contains("ne doit rien")
    );
    let unreadable = manager
        .post_form("/admin/requests/all", &[("confirm", "yes")])
        .await;
    assert_eq!(unreadable.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_requests").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 0);

    // On the link, a gateway that is not offered is refused and starts nothing.
    send_request(&manager, &member_id, "", "").await;
    let link = link_in(&app, &wait_for_mails(&app, MEMBER.0, 1).await[0]);
    let visitor = app.browser();
    let page = visitor.get(&link).await;
    let pay = visitor
        .post_form(
            &format!("{link}/pay"),
            &[("gateway", "inconnu"), ("csrf_token", page.csrf().as_str())],
        )
        .await;
    assert_eq!(pay.status, 422);
    assert!(
        pay.text_of("request-error")
            .unwrap()
            .contains("moyens de paiement")
    );
    let no_token = visitor
        .post_form(&format!("{link}/pay"), &[("gateway", "sandbox")])
        .await;
    assert_eq!(no_token.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_the_whole_basket_settles_open_requests_and_a_part_does_not() {
    let app = spawn_app().await;
    let member_id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    send_request(&manager, &member_id, "", "").await;
    let link = link_in(&app, &wait_for_mails(&app, MEMBER.0, 1).await[0]);

    // A part through the basket: the request stays open, for what is left.
    let member = app.logged_in(MEMBER).await;
    pay_basket(&app, &member, "30,00").await;
    assert_eq!(
        request_field(&app, &member_id, "status").await.as_deref(),
        Some("sent")
    );
    let page = member.get(&link).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.text_of("request-amount").as_deref(), Some("67,00 €"));
    assert!(page.text_of("request-changed").unwrap().contains("97,00 €"));

    // The rest through the basket too: the request is settled by that payment.
    let last = pay_basket(&app, &member, "67,00").await;
    wait_for_request_status(&app, &member_id, "paid").await;
    assert_eq!(
        request_field(&app, &member_id, "payment_id")
            .await
            .as_deref(),
        Some(last.as_str())
    );
    let notice = wait_for_mails(&app, MANAGER.0, 1).await.remove(0);
    assert!(notice.contains("depuis son panier"), "{notice}");
    let settled = member.get(&link).await;
    assert_eq!(
        settled.text_of("request-headline").as_deref(),
        Some("Demande réglée")
    );
}
