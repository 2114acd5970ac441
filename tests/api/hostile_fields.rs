//! Markup and line breaks typed in free-text fields: shown escaped on every page and in every
//! mail that repeats them, never turned into a mail header, refused or cleaned before anything
//! is stored.

use crate::helpers::{Browser, MANAGER, MEMBER, Page, TestApp, spawn_app, spawn_app_with};
use crate::language_mail::reading::{all_text, mails_to, wait_for_mail};

/// What an attacker types: a script, and an attribute break-out into an image with a handler.
const ATTACK: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

/// The same, told apart per field so that a test knows which field a page repeats.
fn attack(field: &str) -> String {
    format!("{field}{ATTACK}")
}

/// The raw HTML holds no live markup of the attack, and its text shows `wanted` literally.
fn assert_escaped(what: &str, html: &str, wanted: &[&str]) {
    for live in [
        "<script>alert",
        "<img src=x",
        "<img src=\"x\"",
        "onerror=alert(1)>",
    ] {
        assert!(
            !html.contains(live),
            "{what}: {live:?} unescaped in\n{html}"
        );
    }
    let text = all_text(html);
    for wanted in wanted {
        assert!(
            text.contains(wanted),
            "{what}: {wanted:?} not shown as text in\n{text}"
        );
    }
}

fn hidden_value(page: &Page, name: &str) -> String {
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse(&format!("input[name={name}]")).unwrap();
    html.select(&selector)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("a {name} field in {}", page.body))
        .to_string()
}

/// Submits the member's edit form as shown, with `changes`.
async fn edit_member(manager: &Browser, member_id: &str, changes: &[(&str, &str)]) -> Page {
    let path = format!("/admin/members/{member_id}/edit");
    let form = manager.get(&path).await;
    assert_eq!(form.status, 200);
    let mut fields: Vec<(String, String)> =
        ["first_name", "last_name", "email", "phone", "address"]
            .iter()
            .map(|name| (name.to_string(), form.value_of(name).unwrap_or_default()))
            .collect();
    fields.push(("role".into(), "member".into()));
    fields.push(("csrf_token".into(), form.csrf()));
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        fields.push((name.to_string(), value.to_string()));
    }
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    manager.post_form(&path, &fields).await
}

async fn add_charge(manager: &Browser, member_id: &str, category: &str, label: &str) -> Page {
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let key = hidden_value(&page, "form_key");
    let token = page.csrf();
    manager
        .post_form(
            &format!("/admin/members/{member_id}/charges"),
            &[
                ("category", category),
                ("label", label),
                ("amount", "10"),
                ("season", ""),
                ("date", "2026-10-01"),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await
}

async fn user_column(app: &TestApp, member_id: &str, column: &str) -> String {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM users WHERE id = $1"
    )))
    .bind(member_id)
    .fetch_one(&app.pool)
    .await
    .expect("user")
    .get::<Option<String>, _>(0)
    .unwrap_or_default()
}

/// Raw `.eml` files written so far.
fn raw_mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(&app.settings.mail.dir)
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The header names of a raw mail (its top-level head only), lowercased.
fn header_names(raw: &str) -> Vec<String> {
    let raw = raw.replace("\r\n", "\n");
    let head = raw.split_once("\n\n").map_or(raw.as_str(), |(h, _)| h);
    head.lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_every_free_text_field_comes_back_escaped_on_pages_and_in_mails() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let member_id = app.member_id(MEMBER.0).await;
    let (first, last, address) = (attack("F"), attack("L"), attack("A"));
    let (category, label, bulk, message) = (attack("C"), attack("X"), attack("B"), attack("M"));

    // The member's names and address, as a manager edits them.
    let saved = edit_member(
        &manager,
        &member_id,
        &[
            ("first_name", &first),
            ("last_name", &last),
            ("address", &address),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(user_column(&app, &member_id, "first_name").await, first);
    assert_eq!(user_column(&app, &member_id, "address").await, address);
    // A phone is digits and a few signs: markup is refused with a message, nothing changes.
    let refused = edit_member(&manager, &member_id, &[("phone", ATTACK)]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_escaped("the refused phone", &refused.body, &[]);
    assert_eq!(user_column(&app, &member_id, "phone").await, "");

    // A category of the chart of accounts, a charge in it, and a charge for everyone.
    let token = manager.get("/admin/settings/accounts").await.csrf();
    let added = manager
        .post_form(
            "/admin/settings/accounts/categories",
            &[
                ("code", "stages"),
                ("label", &category),
                ("income_account", "7069"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let charged = add_charge(&manager, &member_id, "stages", &label).await;
    assert_eq!(charged.status, 303, "{}", charged.body);
    let page = manager.get("/admin/charges").await;
    let (key, token) = (hidden_value(&page, "form_key"), page.csrf());
    let everyone = manager
        .post_form(
            "/admin/charges",
            &[
                ("target", "all"),
                ("category", "dues"),
                ("label", &bulk),
                ("amount", "5"),
                ("season", ""),
                ("date", "2026-10-02"),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(everyone.status, 303, "{}", everyone.body);

    // A payment request with a message, and its mail.
    let form = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    let (key, token) = (hidden_value(&form, "form_key"), form.csrf());
    let sent = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", ""),
                ("message", &message),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let request_mail = wait_for_mail(&app, MEMBER.0, "M<script>").await;
    assert_escaped(
        "the request mail",
        &request_mail.html,
        &[&message, &label, &bulk],
    );
    let link = request_mail
        .text
        .split_whitespace()
        .find_map(|w| w.find("/r/").map(|i| w[i..].to_string()))
        .expect("a link in the mail");
    let request_page = app.browser().get(&link).await;
    assert_eq!(request_page.status, 200, "{}", request_page.body);
    assert_escaped(
        "the request's page",
        &request_page.body,
        &[&first, &message, &label, &bulk],
    );

    // The member pays: the basket, the payment's page and the receipt mail.
    let member = app.logged_in(MEMBER).await;
    let basket = member.get("/basket").await;
    assert_escaped("the basket", &basket.body, &[&first, &label, &bulk]);
    let (payment_id, hosted) = member.start_payment(&app, "20").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&payment_id, "paid").await;
    let receipt = member.get(&format!("/payments/{payment_id}")).await;
    assert_eq!(receipt.status, 200);
    assert_escaped("the payment's page", &receipt.body, &[&first, &last]);
    let receipt_mail = wait_for_mail(&app, MEMBER.0, "20,00").await;
    assert_escaped("the receipt mail", &receipt_mail.html, &[&first]);

    // Every manager's page that names them.
    let name_shown = [first.as_str(), last.as_str()];
    for (path, wanted) in [
        ("/admin/members".to_string(), &name_shown[..]),
        (
            format!("/admin/members?q={}", "F%3Cscript"),
            &name_shown[..],
        ),
        (
            format!("/admin/members/{member_id}"),
            &[first.as_str(), last.as_str(), &label, &bulk][..],
        ),
        (format!("/admin/members/{member_id}/edit"), &[][..]),
        ("/admin/ledger".to_string(), &[label.as_str(), &bulk][..]),
        ("/admin/payments".to_string(), &name_shown[..]),
        (format!("/admin/payments/{payment_id}"), &name_shown[..]),
        ("/admin/requests".to_string(), &name_shown[..]),
        ("/admin".to_string(), &name_shown[..]),
        // The history shows what changed as JSON, where a quote is `\"`.
        (
            "/admin/audit".to_string(),
            &["C<script>alert(1)</script>"][..],
        ),
        ("/admin/settings/accounts".to_string(), &[][..]),
        ("/admin/balances".to_string(), &[][..]),
        ("/admin/charges".to_string(), &[category.as_str()][..]),
    ] {
        let page = manager.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_escaped(&path, &page.body, wanted);
    }
    // The chart of accounts gives the category's label back in its field, intact.
    let plan = manager.get("/admin/settings/accounts").await;
    let html = scraper::Html::parse_document(&plan.body);
    let inputs = scraper::Selector::parse("input[name=label]").unwrap();
    assert!(
        html.select(&inputs)
            .any(|i| i.value().attr("value") == Some(category.as_str())),
        "{}",
        plan.body
    );
    // The edit form gives the values back in its fields, intact.
    let form = manager
        .get(&format!("/admin/members/{member_id}/edit"))
        .await;
    assert_eq!(form.value_of("first_name").as_deref(), Some(first.as_str()));
    assert_eq!(form.value_of("last_name").as_deref(), Some(last.as_str()));
    assert_eq!(form.value_of("address").as_deref(), Some(address.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_an_imported_file_and_in_gateway_settings_comes_back_escaped() {
    // Credentials are saved only with a key to encrypt them.
    let app = spawn_app_with(|s| {
        s.settings_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
    })
    .await;
    let manager = app.logged_in(MANAGER).await;
    // Semicolons separate the columns: the attack holds none.
    let csv = format!(
        "nom;prénom;email;adresse\n{};{};eve@import.example;{}\nDurand;Paul;{};\n",
        attack("L"),
        attack("F"),
        attack("A"),
        "x<script>@import.example"
    );
    let csrf = manager.get("/admin/members/import").await.csrf();
    let uploaded = crate::members::upload_csv(&manager, &csrf, "membres.csv", csv.as_bytes()).await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let preview = manager.get(&uploaded.location.expect("a preview")).await;
    assert_eq!(preview.status, 200);
    assert_escaped(
        "the import's preview",
        &preview.body,
        &[&attack("L"), &attack("F")],
    );
    // The address with markup is not an email: set aside, and shown escaped.
    assert!(
        all_text(&preview.body).contains("x<script>@import.example"),
        "{}",
        preview.body
    );
    let confirmed = manager
        .post_form(
            &preview
                .body
                .split("action=\"")
                .find_map(|s| {
                    s.starts_with("/admin/members/import/")
                        .then(|| s[..s.find('"').unwrap()].to_string())
                })
                .expect("a confirmation form"),
            &[
                ("digest", &hidden_value(&preview, "digest")),
                ("csrf_token", &preview.csrf()),
            ],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email LIKE '%@import.example'")
            .await,
        1
    );
    let list = manager.get("/admin/members?q=eve%40import").await;
    assert_escaped("the imported member", &list.body, &[&attack("F")]);

    // A gateway's plain setting (HelloAsso's client id) with markup and no space.
    let no_space = "<script>alert(1)</script>\"'><img/src=x/onerror=alert(1)>";
    let page = manager.get("/admin/gateways").await;
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse("#helloasso-form input").unwrap();
    let mut form: Vec<(String, String)> = html
        .select(&selector)
        .filter(|i| {
            i.value().attr("disabled").is_none()
                && (i.value().attr("type") != Some("checkbox")
                    || i.value().attr("checked").is_some())
        })
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_string(),
                i.value().attr("value").unwrap_or_default().to_string(),
            ))
        })
        .collect();
    form.retain(|(n, _)| n != "cred_client_id" && n != "cred_organization_slug");
    form.push(("cred_client_id".into(), no_space.into()));
    // A slug goes into the API's paths: markup there is refused, shown back escaped.
    form.push(("cred_organization_slug".into(), ATTACK.replace(' ', "")));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = manager
        .post_form("/admin/gateways/helloasso", &fields)
        .await;
    assert!(
        (400..500).contains(&refused.status),
        "{}: {}",
        refused.status,
        refused.body
    );
    assert_escaped("the refused settings", &refused.body, &[]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_settings").await,
        0,
        "nothing saved"
    );
    form.retain(|(n, _)| n != "cred_organization_slug");
    form.push(("cred_organization_slug".into(), "mon-club".into()));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = manager
        .post_form("/admin/gateways/helloasso", &fields)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    for path in ["/admin/gateways", "/admin/audit"] {
        let page = manager.get(path).await;
        assert_eq!(page.status, 200);
        assert_escaped(path, &page.body, &[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_breaks_in_names_labels_and_messages_never_become_mail_headers() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let member_id = app.member_id(MEMBER.0).await;
    let injected = "Eve\r\nBcc: spy@evil.test";

    // Names: a line break is a space, so the name is kept on one line.
    let saved = edit_member(
        &manager,
        &member_id,
        &[
            ("first_name", injected),
            ("last_name", "Martin\nCc: spy@evil.test"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        user_column(&app, &member_id, "first_name").await,
        "Eve Bcc: spy@evil.test"
    );
    assert_eq!(
        user_column(&app, &member_id, "last_name").await,
        "Martin Cc: spy@evil.test"
    );
    // An email with a line break, or a second address, is refused and changes nothing.
    for email in [
        "membre@exemple.org\r\nBcc: spy@evil.test",
        "membre@exemple.org\nspy@evil.test",
        "x<spy@evil.test>",
        "spy@evil.test>,x@exemple.org",
        "a,spy@evil.test",
    ] {
        let refused = edit_member(&manager, &member_id, &[("email", email)]).await;
        assert_eq!(refused.status, 422, "{email:?}: {}", refused.body);
        assert_eq!(user_column(&app, &member_id, "email").await, MEMBER.0);
    }

    // A charge label with a line break is refused with a message; nothing is charged.
    let entries = app.journal_totals().await.2;
    let refused = add_charge(&manager, &member_id, "outings", injected).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .text_of("charge-error")
            .is_some_and(|e| !e.is_empty()),
        "{}",
        refused.body
    );
    assert_eq!(app.journal_totals().await.2, entries);
    // So is a category label.
    let token = manager.get("/admin/settings/accounts").await.csrf();
    let refused = manager
        .post_form(
            "/admin/settings/accounts/categories",
            &[
                ("code", "stages"),
                ("label", injected),
                ("income_account", "7069"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM categories WHERE code = 'stages'")
            .await,
        0
    );

    // A request's message may hold lines (it is the mail's body), never a header; a charge
    // to ask for first.
    assert_eq!(
        add_charge(&manager, &member_id, "outings", "Sortie")
            .await
            .status,
        303
    );
    let form = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    let (key, token) = (hidden_value(&form, "form_key"), form.csrf());
    let message = "Bonjour\r\nBcc: spy@evil.test\r\n\r\n<b>fin</b>";
    let sent = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", ""),
                ("message", message),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let mail = wait_for_mail(&app, MEMBER.0, "spy@evil.test").await;
    assert!(mail.text.contains("Bcc: spy@evil.test"), "{}", mail.text);
    // A message with another control character is refused.
    let form = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    let (key, token) = (hidden_value(&form, "form_key"), form.csrf());
    let requests = app.count("SELECT COUNT(*) FROM payment_requests").await;
    let refused = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", ""),
                ("message", "a\rBcc: spy@evil.test\u{0}"),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payment_requests").await,
        requests
    );

    // The member pays: the receipt names "Eve Bcc: …" on one line too.
    let member = app.logged_in(MEMBER).await;
    let (payment_id, hosted) = member.start_payment(&app, "20").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&payment_id, "paid").await;
    wait_for_mail(&app, MEMBER.0, "20,00").await;

    let raws = raw_mails(&app);
    assert!(raws.len() >= 2, "{raws:?}");
    for raw in &raws {
        let names = header_names(raw);
        assert!(
            !names.iter().any(|n| n == "bcc" || n == "cc"),
            "an injected header in\n{raw}"
        );
        assert_eq!(names.iter().filter(|n| *n == "to").count(), 1, "{raw}");
    }
    assert_eq!(mails_to(&app, "spy@evil.test").len(), 0);
}
