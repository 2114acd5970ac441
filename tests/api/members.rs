//! Members management: the directory (search, filters, pagination), creating, editing,
//! deactivating and reactivating people, roles only admins may give, and CSV imports that
//! create every valid row or nothing.

use std::time::{Duration, Instant};

use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app};
use crate::password::{mails_to, wait_for_mails};

/// The association's secretary: a manager, not an admin.
const SECRETARY: (&str, &str) = ("secretaire@exemple.org", "secretaire-demo");

/// The directory's count and the names on its page.
fn listed(page: &Page) -> (i64, Vec<String>) {
    assert_eq!(page.status, 200, "{}", page.body);
    let count = page
        .text_of("member-count")
        .expect("a count")
        .parse()
        .expect("a number");
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse("#member-list tbody tr td:first-child").unwrap();
    let names = html
        .select(&selector)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect();
    (count, names)
}

async fn db_count(app: &TestApp, sql: &'static str) -> i64 {
    app.count(sql).await
}

/// Balances as the ledger of baskets says, computed here independently of the directory.
const BALANCE: &str = "(SELECT COALESCE(SUM(CASE WHEN b.kind = 'charge' THEN b.amount_cents \
     WHEN b.kind = 'payment' THEN -b.amount_cents ELSE b.amount_cents END), 0) \
     FROM basket_lines b WHERE b.member_id = u.id)";

async fn create_member(browser: &Browser, fields: &[(&str, &str)]) -> Page {
    let form = browser.get("/admin/members/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let mut all: Vec<(&str, &str)> = vec![
        ("last_name", "Lefèvre"),
        ("first_name", "Zoé"),
        ("email", "zoe.lefevre@exemple.org"),
        ("phone", ""),
        ("address", ""),
        ("role", "member"),
    ];
    for (key, value) in fields {
        match all.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => all.push((key, value)),
        }
    }
    all.push(("csrf_token", &csrf));
    browser.post_form("/admin/members", &all).await
}

async fn post_action(browser: &Browser, member_id: &str, action: &str) -> Page {
    let csrf = browser
        .get(&format!("/admin/members/{member_id}/edit"))
        .await
        .csrf();
    browser
        .post_form(
            &format!("/admin/members/{member_id}/{action}"),
            &[("csrf_token", &csrf)],
        )
        .await
}

/// Pays through the sandbox until the payment is recorded.
async fn pay(app: &TestApp, who: (&str, &str), amount: &str) {
    let browser = app.logged_in(who).await;
    let (id, hosted) = browser.start_payment(app, amount).await;
    browser.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_counts_searches_and_filters_as_the_database_says() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    // Louis pays more than he owes (in credit); Zoé is new (settled); Paul is deactivated.
    pay(&app, MEMBER2, "140").await;
    assert_eq!(create_member(&manager, &[]).await.status, 303);
    let paul = create_member(
        &manager,
        &[
            ("last_name", "Durand"),
            ("first_name", "Paul"),
            ("email", "paul@exemple.org"),
        ],
    )
    .await;
    assert_eq!(paul.status, 303);
    let paul_id = app.member_id("paul@exemple.org").await;
    assert_eq!(
        post_action(&manager, &paul_id, "deactivate").await.status,
        303
    );

    let (all, names) = listed(&manager.get("/admin/members").await);
    assert_eq!(all, db_count(&app, "SELECT COUNT(*) FROM users").await);
    assert_eq!(all, 6);
    // Sorted by last name, whatever the accents.
    assert_eq!(
        names,
        [
            "Bernard Louis",
            "Durand Paul",
            "Lefèvre Zoé",
            "Martin Camille",
            "Registre Sami",
            "Trésor Claire",
        ]
    );
    let cases: [(&str, String); 5] = [
        (
            "owing",
            format!("SELECT COUNT(*) FROM users u WHERE u.active = 1 AND {BALANCE} > 0"),
        ),
        (
            "credit",
            format!("SELECT COUNT(*) FROM users u WHERE u.active = 1 AND {BALANCE} < 0"),
        ),
        (
            "settled",
            format!("SELECT COUNT(*) FROM users u WHERE u.active = 1 AND {BALANCE} = 0"),
        ),
        (
            "inactive",
            "SELECT COUNT(*) FROM users u WHERE u.active = 0".to_string(),
        ),
        (
            "active",
            "SELECT COUNT(*) FROM users u WHERE u.active = 1".to_string(),
        ),
    ];
    let expected_names = [
        ("owing", vec!["Martin Camille"]),
        ("credit", vec!["Bernard Louis"]),
        (
            "settled",
            vec!["Lefèvre Zoé", "Registre Sami", "Trésor Claire"],
        ),
        ("inactive", vec!["Durand Paul"]),
    ];
    for (filter, sql) in &cases {
        let expected: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let (count, names) = listed(
            &manager
                .get(&format!("/admin/members?filter={filter}"))
                .await,
        );
        assert_eq!(count, expected, "{filter}");
        if let Some((_, want)) = expected_names.iter().find(|(f, _)| f == filter) {
            assert_eq!(&names, want, "{filter}");
        }
    }
    let credit = manager.get("/admin/members?filter=credit").await;
    assert!(
        credit
            .text_of("member-list")
            .unwrap()
            .contains("8,50 € en crédit")
    );

    // Search: case, accents and word order do not matter; email too; no match says so.
    for (q, want) in [
        ("lefevre", vec!["Lefèvre Zoé"]),
        ("ZOÉ", vec!["Lefèvre Zoé"]),
        ("camille martin", vec!["Martin Camille"]),
        ("membre2@", vec!["Bernard Louis"]),
        ("%", vec![]),
        ("_", vec![]),
    ] {
        let page = manager
            .get(&format!(
                "/admin/members?{}",
                serde_urlencoded::to_string([("q", q)]).unwrap()
            ))
            .await;
        let (count, names) = listed(&page);
        assert_eq!(names, want, "{q}");
        assert_eq!(count, want.len() as i64, "{q}");
        if want.is_empty() {
            assert!(page.text_of("no-member").is_some());
        }
    }
    let (count, _) = listed(
        &manager
            .get("/admin/members?q=exemple.org&filter=owing")
            .await,
    );
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_members_are_listed_page_by_page() {
    let app = spawn_app().await;
    // 10,000 members in one statement, each with one charge for every third of them.
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, first_name, last_name, active, \
         created_at, name_key) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         SELECT 'bulk-' || i, 'bulk' || i || '@exemple.org', 'x', 'member', 'Prénom', \
                'Nom' || (100000 + i), 1, '2026-01-01T00:00:00Z', 'nom' || (100000 + i) || ' prenom' \
         FROM n",
    )
    .execute(&app.pool)
    .await
    .expect("bulk members");
    sqlx::query(
        "INSERT INTO basket_lines (id, member_id, kind, category, label, amount_cents, \
         posting_key, occurred_on, created_at) \
         SELECT 'line-' || id, id, 'charge', 'dues', 'Cotisation', 4500, 'bulk:' || id, \
                '2026-01-01', '2026-01-01T00:00:00Z' \
         FROM users WHERE id LIKE 'bulk-%' AND (CAST(SUBSTR(id, 6) AS BIGINT) % 3) = 0",
    )
    .execute(&app.pool)
    .await
    .expect("bulk charges");
    let manager = app.logged_in(MANAGER).await;

    let started = Instant::now();
    let first = manager.get("/admin/members").await;
    let elapsed = started.elapsed();
    let (count, names) = listed(&first);
    assert_eq!(count, 10_004);
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "Bernard Louis");
    assert_eq!(names[1], "Martin Camille");
    assert_eq!(names[2], "Nom100001 Prénom");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(first.text_of("page-number").as_deref(), Some("1"));

    // The last page, and a page past the end (shown as the last one).
    let last = manager.get("/admin/members?page=201").await;
    let (_, names) = listed(&last);
    assert_eq!(names.len(), 4);
    assert_eq!(names[0], "Nom109999 Prénom");
    assert_eq!(names[3], "Trésor Claire");
    assert!(last.text_of("page-next").is_none());
    assert!(last.text_of("page-previous").is_some());
    let beyond = manager.get("/admin/members?page=9999").await;
    assert_eq!(beyond.text_of("page-number").as_deref(), Some("201"));
    let bogus = manager.get("/admin/members?page=abc&filter=nope").await;
    assert_eq!(listed(&bogus).0, 10_004);

    // Owing: the demo's two members and every third bulk member; its second page follows.
    let owing = manager.get("/admin/members?filter=owing").await;
    assert_eq!(listed(&owing).0, 2 + 3333);
    let next = {
        let html = scraper::Html::parse_document(&owing.body);
        let selector = scraper::Selector::parse("#page-next").unwrap();
        html.select(&selector)
            .next()
            .and_then(|a| a.value().attr("href"))
            .expect("a next link")
            .to_string()
    };
    assert!(next.contains("filter=owing"), "{next}");
    let (_, names) = listed(&manager.get(&next).await);
    assert_eq!(names[0], "Nom100147 Prénom");
    let (count, names) = listed(&manager.get("/admin/members?q=nom104242").await);
    assert_eq!((count, names.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gets_403_on_every_members_management_route() {
    let app = spawn_app().await;
    let other = app.member_id(MEMBER2.0).await;
    let member = app.logged_in(MEMBER).await;
    let csrf = member.get("/basket").await.csrf();
    let import = "01900000-0000-4000-8000-000000000000";
    for path in [
        "/admin/members".to_string(),
        "/admin/members?q=bernard".to_string(),
        "/admin/members/new".to_string(),
        "/admin/members/import".to_string(),
        format!("/admin/members/import/{import}"),
        format!("/admin/members/{other}/edit"),
    ] {
        let page = member.get(&path).await;
        assert_eq!(page.status, 403, "GET {path}");
        assert!(!page.body.contains("Bernard"), "{path} leaked a name");
    }
    for path in [
        "/admin/members".to_string(),
        "/admin/members/import".to_string(),
        format!("/admin/members/import/{import}"),
        format!("/admin/members/{other}/edit"),
        format!("/admin/members/{other}/deactivate"),
        format!("/admin/members/{other}/reactivate"),
        format!("/admin/members/{other}/invitation"),
    ] {
        let page = member
            .post_form(
                &path,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("last_name", "X"),
                    ("first_name", "Y"),
                    ("email", "x@exemple.org"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "POST {path}");
    }
    let upload = upload_csv(
        &member,
        &csrf,
        "m.csv",
        b"nom;prenom;email\nA;B;a@exemple.org\n",
    )
    .await;
    assert_eq!(upload.status, 403);
    assert_eq!(db_count(&app, "SELECT COUNT(*) FROM users").await, 4);
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) FROM users WHERE active = 1").await,
        4
    );
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) FROM member_imports").await,
        0
    );
    assert_eq!(db_count(&app, "SELECT COUNT(*) FROM mail_outbox").await, 0);
    // Anonymous visitors are sent to the login page.
    let anonymous = app.browser().get("/admin/members").await;
    assert_eq!(anonymous.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_creates_a_member_who_is_invited_and_a_taken_email_is_refused() {
    let app = spawn_app().await;
    let secretary = app.logged_in(SECRETARY).await;
    let page = create_member(
        &secretary,
        &[
            ("phone", "06 12 34 56 78"),
            ("address", "3 rue des Lilas, 74000 Annecy"),
            ("invite", "on"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let id = app.member_id("zoe.lefevre@exemple.org").await;
    assert_eq!(page.location, Some(format!("/admin/members/{id}")));
    let shown = secretary.get(&format!("/admin/members/{id}")).await;
    assert!(shown.body.contains("Zoé Lefèvre est inscrit"));
    let row = sqlx::query_as::<_, (String, String, Option<String>, Option<String>, i64)>(
        "SELECT role, name_key, phone, address, active FROM users WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "member".to_string(),
            "lefevre zoe".to_string(),
            Some("06 12 34 56 78".to_string()),
            Some("3 rue des Lilas, 74000 Annecy".to_string()),
            1
        )
    );
    wait_for_mails(&app, "zoe.lefevre@exemple.org", 1).await;

    // The same address, typed differently, is refused with a clear message.
    let again = create_member(
        &secretary,
        &[
            ("email", " Zoe.Lefevre@EXEMPLE.org "),
            ("first_name", "Autre"),
        ],
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(
        again
            .text_of("form-errors")
            .unwrap()
            .contains("déjà celle d'un autre compte")
    );
    assert_eq!(again.value_of("first_name").as_deref(), Some("Autre"));
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE email = 'zoe.lefevre@exemple.org'"
        )
        .await,
        1
    );
    // Without the box ticked, no invitation.
    let quiet = create_member(
        &secretary,
        &[("email", "discret@exemple.org"), ("last_name", "Discret")],
    )
    .await;
    assert_eq!(quiet.status, 303);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(mails_to(&app, "discret@exemple.org").is_empty());
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'member.create'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_member_details_get_clear_messages_and_create_nothing() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    for (field, value, message) in [
        ("email", "pas-une-adresse", "adresse e-mail valide"),
        ("last_name", "   ", "Indiquez le nom"),
        ("first_name", "", "Indiquez le prénom"),
        ("phone", "appelez-moi", "téléphone"),
        ("role", "king", "Choisissez un rôle"),
    ] {
        let page = create_member(&manager, &[(field, value)]).await;
        assert_eq!(page.status, 422, "{field}");
        assert!(
            page.text_of("form-errors").unwrap().contains(message),
            "{field}: {:?}",
            page.text_of("form-errors")
        );
    }
    let no_csrf = manager
        .post_form(
            "/admin/members",
            &[
                ("last_name", "A"),
                ("first_name", "B"),
                ("email", "ab@exemple.org"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(db_count(&app, "SELECT COUNT(*) FROM users").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_edits_a_member_and_the_audit_log_keeps_before_and_after() {
    let app = spawn_app().await;
    let id = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(SECRETARY).await;
    let form = manager.get(&format!("/admin/members/{id}/edit")).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.value_of("last_name").as_deref(), Some("Martin"));
    let csrf = form.csrf();
    let edit = |email: &'static str| {
        let csrf = csrf.clone();
        let manager = manager.clone();
        let id = id.clone();
        async move {
            manager
                .post_form(
                    &format!("/admin/members/{id}/edit"),
                    &[
                        ("last_name", "Martin-Durand"),
                        ("first_name", "Camille"),
                        ("email", email),
                        ("phone", "+33 6 00 00 00 00"),
                        ("address", ""),
                        ("role", "member"),
                        ("csrf_token", &csrf),
                    ],
                )
                .await
        }
    };
    // Another account's address is refused; nothing changes.
    let taken = edit("membre2@exemple.org").await;
    assert_eq!(taken.status, 409);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE last_name = 'Martin-Durand'"
        )
        .await,
        0
    );
    let saved = edit("camille@exemple.org").await;
    assert_eq!(saved.status, 303);
    let (count, names) = listed(&manager.get("/admin/members?q=durand").await);
    assert_eq!(
        (count, names),
        (1, vec!["Martin-Durand Camille".to_string()])
    );
    // The new address logs in; the old one no longer does.
    assert_eq!(app.browser().login(MEMBER.0, MEMBER.1).await.status, 401);
    assert_eq!(
        app.browser()
            .login("camille@exemple.org", MEMBER.1)
            .await
            .status,
        303
    );
    let (before, after): (String, String) = sqlx::query_as(
        "SELECT before_state, after_state FROM audit_log WHERE action = 'member.update'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(before.contains("membre@exemple.org") && before.contains("\"Martin\""));
    assert!(after.contains("camille@exemple.org") && after.contains("Martin-Durand"));
    let audit = app.logged_in(MANAGER).await.get("/admin/audit").await;
    assert!(audit.body.contains("member.update"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_member_can_no_longer_log_in_and_keeps_their_history() {
    let app = spawn_app().await;
    let id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    assert_eq!(member.get("/basket").await.status, 200);
    let lines_before = app
        .count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE member_id = $1",
            &id,
        )
        .await;
    let manager = app.logged_in(SECRETARY).await;
    let page = post_action(&manager, &id, "deactivate").await;
    assert_eq!(page.status, 303);
    let edit = manager.get(&format!("/admin/members/{id}/edit")).await;
    assert!(
        edit.text_of("account-status")
            .unwrap()
            .contains("Désactivé")
    );
    assert!(edit.body.contains("ne peut plus se connecter"));

    // Their open session stops, and logging in again fails.
    assert_eq!(member.get("/basket").await.status, 303);
    assert_eq!(app.browser().login(MEMBER.0, MEMBER.1).await.status, 401);
    // Their history stays, and managers still see it.
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM basket_lines WHERE member_id = $1",
            &id
        )
        .await,
        lines_before
    );
    let page = manager.get(&format!("/admin/members/{id}")).await;
    assert_eq!(
        page.text_of("member-balance").as_deref(),
        Some("97,00 € dus")
    );
    let (count, names) = listed(&manager.get("/admin/members?filter=inactive").await);
    assert_eq!((count, names), (1, vec!["Martin Camille".to_string()]));
    // Deactivating twice changes nothing more.
    post_action(&manager, &id, "deactivate").await;
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'member.deactivate'"
        )
        .await,
        1
    );

    assert_eq!(post_action(&manager, &id, "reactivate").await.status, 303);
    assert_eq!(app.browser().login(MEMBER.0, MEMBER.1).await.status, 303);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'member.reactivate'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_creates_or_changes_managers_and_admins() {
    let app = spawn_app().await;
    let secretary = app.logged_in(SECRETARY).await;
    // The secretary is offered the member role only, and cannot forge another.
    let form = secretary.get("/admin/members/new").await;
    assert!(!form.body.contains("value=\"admin\""));
    for role in ["admin", "manager"] {
        let page = create_member(&secretary, &[("role", role)]).await;
        assert_eq!(page.status, 403, "{role}");
        assert!(
            page.text_of("form-errors")
                .unwrap()
                .contains("Seul un administrateur")
        );
    }
    assert_eq!(db_count(&app, "SELECT COUNT(*) FROM users").await, 4);
    // Nor promote a member, nor touch the treasurer's account.
    let member_id = app.member_id(MEMBER.0).await;
    let csrf = form.csrf();
    let promote = secretary
        .post_form(
            &format!("/admin/members/{member_id}/edit"),
            &[
                ("last_name", "Martin"),
                ("first_name", "Camille"),
                ("email", MEMBER.0),
                ("role", "manager"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(promote.status, 403);
    let treasurer_id = app.member_id(MANAGER.0).await;
    assert_eq!(
        post_action(&secretary, &treasurer_id, "deactivate")
            .await
            .status,
        403
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE role = 'member' AND active = 1"
        )
        .await,
        2
    );

    // The treasurer (admin) can; but not lock herself out.
    let admin = app.logged_in(MANAGER).await;
    let page = create_member(
        &admin,
        &[("role", "manager"), ("email", "adjoint@exemple.org")],
    )
    .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE email = 'adjoint@exemple.org' AND role = 'manager'"
        )
        .await,
        1
    );
    let own = post_action(&admin, &treasurer_id, "deactivate").await;
    assert_eq!(own.status, 403);
    assert!(
        own.text_of("form-errors")
            .unwrap()
            .contains("votre propre compte")
    );
    assert_eq!(app.browser().login(MANAGER.0, MANAGER.1).await.status, 303);
}

/// Posts the import form as a browser does (multipart), with this CSRF token.
pub(crate) async fn upload_csv(
    browser: &Browser,
    csrf: &str,
    file_name: &str,
    content: &[u8],
) -> Page {
    let boundary = "----obole-test-7d1f0c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = browser
        .client
        .post(format!("{}/admin/members/import", browser.base))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    Page {
        status: response.status().as_u16(),
        location: response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// Uploads a file from the import page and returns its preview.
async fn preview_of(browser: &Browser, content: &[u8]) -> Page {
    let csrf = browser.get("/admin/members/import").await.csrf();
    let uploaded = upload_csv(browser, &csrf, "membres.csv", content).await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let location = uploaded.location.expect("the preview");
    assert!(location.starts_with("/admin/members/import/"));
    let preview = browser.get(&location).await;
    assert_eq!(preview.status, 200);
    preview
}

fn confirm_path(preview: &Page) -> String {
    let html = scraper::Html::parse_document(&preview.body);
    let selector = scraper::Selector::parse("form[action^=\"/admin/members/import/\"]").unwrap();
    html.select(&selector)
        .next()
        .and_then(|f| f.value().attr("action"))
        .expect("a confirmation form")
        .to_string()
}

fn digest_of(preview: &Page) -> String {
    let html = scraper::Html::parse_document(&preview.body);
    let selector = scraper::Selector::parse("input[name=digest]").unwrap();
    html.select(&selector)
        .next()
        .and_then(|f| f.value().attr("value"))
        .expect("a digest")
        .to_string()
}

async fn confirm(browser: &Browser, preview: &Page, invite: bool) -> Page {
    let mut fields = vec![
        ("digest", digest_of(preview)),
        ("csrf_token", preview.csrf()),
    ];
    if invite {
        fields.push(("invite", "on".to_string()));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post_form(&confirm_path(preview), &fields).await
}

const IMPORTED: &str =
    "SELECT COUNT(*) FROM users WHERE email LIKE '%@club.example' OR email LIKE '%@import.example'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_file_with_bom_is_previewed_row_by_row_then_imported_once() {
    let app = spawn_app().await;
    let manager = app.logged_in(SECRETARY).await;
    let file = "\u{feff}Nom;Prénom;Courriel;Téléphone;N° licence\r\n\
        Lefèvre;Zoé;zoe@club.example;06 12 34 56 78;A1\r\n\
        Durand;Paul;;;A2\r\n\
        Petit;Léa;pas-une-adresse;;A3\r\n\
        Roux;Marc;marc@club.example;;A4\r\n\
        Roux;Marc bis;MARC@club.example;;A5\r\n\
        Martin;Camille;membre@exemple.org;;A6\r\n\
        ;Sans nom;sans.nom@club.example;;A7\r\n\
        ;;;;\r\n";
    let preview = preview_of(&manager, file.as_bytes()).await;
    assert_eq!(preview.text_of("to-create").as_deref(), Some("2"));
    assert_eq!(preview.text_of("skipped").as_deref(), Some("5"));
    assert_eq!(
        preview.text_of("ignored-columns").as_deref(),
        Some("N° licence")
    );
    let row = |line: u32| preview.text_of(&format!("row-{line}")).unwrap();
    assert!(row(2).contains("Sera inscrit") && row(2).contains("Zoé"));
    assert!(row(3).contains("Adresse e-mail manquante"));
    assert!(row(4).contains("Adresse e-mail invalide"));
    assert!(row(5).contains("Sera inscrit"));
    assert!(row(6).contains("déjà présente ligne 5"));
    assert!(row(7).contains("Déjà inscrit"));
    assert!(row(8).contains("Indiquez le nom"));
    // The preview imports nothing.
    assert_eq!(db_count(&app, IMPORTED).await, 0);

    let done = confirm(&manager, &preview, true).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/admin/members"));
    let list = manager.get("/admin/members").await;
    assert!(list.body.contains("2 membre(s) inscrit(s)"));
    assert_eq!(db_count(&app, IMPORTED).await, 2);
    let zoe: (String, String, Option<String>) = sqlx::query_as(
        "SELECT first_name, last_name, phone FROM users WHERE email = 'zoe@club.example'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        zoe,
        (
            "Zoé".to_string(),
            "Lefèvre".to_string(),
            Some("06 12 34 56 78".to_string())
        )
    );
    // Each new member is invited.
    wait_for_mails(&app, "zoe@club.example", 1).await;
    wait_for_mails(&app, "marc@club.example", 1).await;

    // Sending the confirmation again imports nothing more.
    let again = confirm(&manager, &preview, true).await;
    assert_eq!(again.status, 303);
    let list = manager.get("/admin/members").await;
    assert!(list.body.contains("déjà été importé"));
    assert_eq!(db_count(&app, IMPORTED).await, 2);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'invitation'"
        )
        .await,
        2
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'member.import'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comma_file_with_english_headers_is_imported_without_invitations() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let file = "first_name,last_name,email,phone,address\n\
        Ann,\"Lee, Jr\",ann@import.example,,\"1 Main Street\nSpringfield\"\n\
        Bob,Ray,bob@import.example,+44 20 7946 0000,\n";
    let preview = preview_of(&manager, file.as_bytes()).await;
    assert_eq!(preview.text_of("to-create").as_deref(), Some("2"));
    assert!(preview.body.contains("séparateur virgule"));
    let done = confirm(&manager, &preview, false).await;
    assert_eq!(done.status, 303);
    assert_eq!(db_count(&app, IMPORTED).await, 2);
    let ann: (String, Option<String>) =
        sqlx::query_as("SELECT last_name, address FROM users WHERE email = 'ann@import.example'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        ann,
        (
            "Lee, Jr".to_string(),
            Some("1 Main Street, Springfield".to_string())
        )
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(db_count(&app, "SELECT COUNT(*) FROM mail_outbox").await, 0);
    // Imported members are in the directory, searchable.
    let (count, _) = listed(&manager.get("/admin/members?q=import.example").await);
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_imported_when_a_row_conflicts_at_confirmation() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let file = "nom;prénom;email\n\
        Un;Alice;alice@club.example\n\
        Deux;Bruno;bruno@club.example\n\
        Trois;Chloé;chloe@club.example\n";
    let preview = preview_of(&manager, file.as_bytes()).await;
    assert_eq!(preview.text_of("to-create").as_deref(), Some("3"));
    // Meanwhile someone registers Bruno by hand.
    let other = app.logged_in(SECRETARY).await;
    let created = create_member(
        &other,
        &[("email", "bruno@club.example"), ("first_name", "Bruno")],
    )
    .await;
    assert_eq!(created.status, 303);

    let refused = confirm(&manager, &preview, true).await;
    assert_eq!(refused.status, 409);
    assert!(refused.text_of("import-changed").is_some());
    assert!(refused.text_of("row-3").unwrap().contains("Déjà inscrit"));
    assert_eq!(refused.text_of("to-create").as_deref(), Some("2"));
    // Neither Alice nor Chloé: all or nothing.
    assert_eq!(db_count(&app, IMPORTED).await, 1);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'invitation'"
        )
        .await,
        0
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM member_imports WHERE status = 'pending'"
        )
        .await,
        1
    );

    // Confirming the new preview imports the two others.
    let done = confirm(&manager, &refused, false).await;
    assert_eq!(done.status, 303);
    assert_eq!(db_count(&app, IMPORTED).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_or_oversized_files_are_refused_with_a_message() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let csrf = manager.get("/admin/members/import").await.csrf();
    for (content, message) in [
        (
            b"nom;email\nA;a@club.example\n".to_vec(),
            "Colonnes manquantes : prénom",
        ),
        (Vec::new(), "Choisissez un fichier"),
        (b"\xef\xbb\xbf\r\n".to_vec(), "vide"),
    ] {
        let page = upload_csv(&manager, &csrf, "x.csv", &content).await;
        assert_eq!(page.status, 422, "{message}");
        assert!(page.text_of("import-error").unwrap().contains(message));
    }
    let mut big = b"nom;prenom;email\n".to_vec();
    while big.len() <= 2 * 1024 * 1024 {
        big.extend_from_slice(b"Nom;Prenom;quelqu.un@club.example\n");
    }
    let page = upload_csv(&manager, &csrf, "gros.csv", &big).await;
    assert_eq!(page.status, 413);
    assert!(page.text_of("import-error").unwrap().contains("2 Mo"));
    // A form that is not multipart, and a forged CSRF token.
    let plain = manager
        .post_form("/admin/members/import", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(plain.status, 400);
    let forged = upload_csv(&manager, "forged", "x.csv", b"nom;prenom;email\n").await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) FROM member_imports").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_seen_only_by_the_manager_who_uploaded_it() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let preview = preview_of(&manager, b"nom;prenom;email\nA;B;ab@club.example\n").await;
    let path = confirm_path(&preview);
    let other = app.logged_in(SECRETARY).await;
    assert_eq!(other.get(&path).await.status, 404);
    let csrf = other.get("/admin/members").await.csrf();
    let page = other
        .post_form(
            &path,
            &[("digest", &digest_of(&preview)), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(
        other.get("/admin/members/import/not-a-uuid").await.status,
        404
    );
    assert_eq!(db_count(&app, IMPORTED).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_imports_racing_for_the_same_email_never_leave_half_an_import() {
    let app = spawn_app().await;
    let treasurer = app.logged_in(MANAGER).await;
    let secretary = app.logged_in(SECRETARY).await;
    let first = preview_of(
        &treasurer,
        b"nom;prenom;email\nUn;Anne;anne@club.example\nCommun;Sam;sam@club.example\n",
    )
    .await;
    let second = preview_of(
        &secretary,
        b"nom;prenom;email\nDeux;Bea;bea@club.example\nCommun;Sam;sam@club.example\n",
    )
    .await;
    let jobs = vec![(treasurer, first), (secretary, second)]
        .into_iter()
        .map(|(browser, preview)| async move { confirm(&browser, &preview, true).await.status })
        .collect();
    let mut statuses = crate::helpers::all_at_once(jobs).await;
    statuses.sort();
    assert_eq!(statuses, vec![303, 409]);
    // One file entirely, the other not at all.
    assert_eq!(db_count(&app, IMPORTED).await, 2);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE email = 'sam@club.example'"
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM users WHERE email IN ('anne@club.example', 'bea@club.example')"
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'invitation'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_never_confirmed_are_forgotten_after_a_week_and_imported_ones_emptied() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let old = preview_of(&manager, b"nom;prenom;email\nA;B;old@club.example\n").await;
    sqlx::query("UPDATE member_imports SET created_at = '2001-01-01T00:00:00Z'")
        .execute(&app.pool)
        .await
        .unwrap();
    let fresh = preview_of(&manager, b"nom;prenom;email\nC;D;fresh@club.example\n").await;
    assert_eq!(manager.get(&confirm_path(&old)).await.status, 404);
    assert_eq!(confirm(&manager, &fresh, false).await.status, 303);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) FROM member_imports WHERE status = 'imported' AND content = ''"
        )
        .await,
        1
    );
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) FROM member_imports").await,
        1
    );
}
