//! The manager's pages about people (dashboard, members, import, charges, payment requests)
//! read wholly in English once English is chosen, and stay French by default.

use crate::english;
use crate::helpers::{Browser, MANAGER, MEMBER, Page, TestApp, spawn_app};
use crate::members::upload_csv;

/// Asserts that the page holds each of `expected` and, once the data and `extra_data` are
/// set aside, no French word or letter.
async fn assert_english(app: &TestApp, page: &Page, expected: &[&str], extra_data: &[&str]) {
    let mut data = english::data_of(app).await;
    data.extend(extra_data.iter().map(|s| s.to_string()));
    english::assert_english(page, &data, expected);
}

fn assert_french(page: &Page, expected: &[&str]) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<html lang=\"fr\">"), "{}", page.body);
    for text in expected {
        assert!(page.body.contains(text), "{text:?} missing: {}", page.body);
    }
}

/// The treasurer, logged in, having chosen English.
async fn english_manager(app: &TestApp) -> Browser {
    let manager = app.logged_in(MANAGER).await;
    let home = manager.get("/admin").await;
    let switched = manager
        .post_form(
            "/lang",
            &[
                ("lang", "en"),
                ("back", "/admin"),
                ("csrf_token", &home.csrf()),
            ],
        )
        .await;
    assert_eq!(switched.status, 303);
    manager
}

/// The attribute of the element with this id.
fn attr_of(page: &Page, id: &str, attribute: &str) -> Option<String> {
    let html = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse(&format!("#{id}")).unwrap();
    html.select(&selector)
        .next()
        .and_then(|e| e.value().attr(attribute).map(str::to_string))
}

/// The field is marked invalid and described by the message of id `message_id`.
fn assert_tied(page: &Page, field: &str, message_id: &str) {
    assert_eq!(
        attr_of(page, field, "aria-invalid").as_deref(),
        Some("true"),
        "{field}: {}",
        page.body
    );
    let described_by = attr_of(page, field, "aria-describedby").unwrap_or_default();
    assert!(
        described_by.split(' ').any(|id| id == message_id),
        "{field} is described by {described_by:?}, not {message_id}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_list_and_a_members_page_read_in_english() {
    let app = spawn_app().await;
    let manager = english_manager(&app).await;

    let list = manager.get("/admin/members").await;
    assert_eq!(list.status, 200);
    assert_english(
        &app,
        &list,
        &[
            "<h1>Members</h1>",
            "Search (name or email address)",
            "Everyone",
            "Active, owing something",
            "Active, in credit",
            "Deactivated",
            "person(s)",
            "Balance",
            "€97.00 owed",
            "Administrator",
            "Manager",
            "New member",
            "Import a CSV file",
        ],
        &[],
    )
    .await;
    let settled = manager.get("/admin/members?filter=settled").await;
    assert_english(&app, &settled, &["settled", "Active, settled"], &[]).await;
    let nobody = manager.get("/admin/members?q=zzzz&filter=owing").await;
    assert_eq!(
        nobody.text_of("no-member").as_deref(),
        Some("No member matches.")
    );
    assert_english(&app, &nobody, &[], &["zzzz"]).await;

    let member_id = app.member_id(MEMBER.0).await;
    let member = manager.get(&format!("/admin/members/{member_id}")).await;
    assert_eq!(member.status, 200);
    assert_eq!(
        member.text_of("member-balance").as_deref(),
        Some("€97.00 owed")
    );
    assert_english(
        &app,
        &member,
        &[
            "← Members",
            "Edit the record",
            "Send a payment request",
            "Add an amount owed",
            "Amount (€)",
            "Due date (optional)",
            "Saved card",
            "Account statement",
            "(positive: owed by the member)",
            "None.",
        ],
        &[],
    )
    .await;
    let period = manager
        .get(&format!(
            "/admin/members/{member_id}?from=2000-01-01&to=2099-12-31"
        ))
        .await;
    assert_english(
        &app,
        &period,
        &["Balance brought forward", "Balance on 2099-12-31"],
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_forms_read_in_english_and_tie_each_error_to_its_field() {
    let app = spawn_app().await;
    let manager = english_manager(&app).await;

    let new = manager.get("/admin/members/new").await;
    assert_eq!(new.status, 200);
    assert_english(
        &app,
        &new,
        &[
            "<h1>New member</h1>",
            "Last name",
            "First name",
            "Postal address (optional)",
            "Send an invitation by email",
            ">Register</button>",
        ],
        &[],
    )
    .await;

    let refused = manager
        .post_form(
            "/admin/members",
            &[
                ("last_name", " "),
                ("first_name", "Ann"),
                ("email", "not-an-address"),
                ("phone", "call me"),
                ("address", ""),
                ("role", "member"),
                ("csrf_token", &new.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("last_name-error").as_deref(),
        Some("Give the last name.")
    );
    assert_eq!(
        refused.text_of("email-error").as_deref(),
        Some("Give a valid email address.")
    );
    assert!(
        refused
            .text_of("phone-error")
            .unwrap()
            .starts_with("The phone may only hold digits")
    );
    assert_tied(&refused, "last_name", "last_name-error");
    assert_tied(&refused, "email", "email-error");
    assert_tied(&refused, "phone", "phone-error");
    assert_eq!(attr_of(&refused, "first_name", "aria-invalid"), None);
    assert!(
        refused
            .text_of("form-errors")
            .unwrap()
            .contains("Give a valid email address.")
    );
    assert_english(&app, &refused, &[], &["not-an-address", "call me"]).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE first_name = 'Ann'")
            .await,
        0
    );

    // An address already taken is said at the email field.
    let taken = manager
        .post_form(
            "/admin/members",
            &[
                ("last_name", "Lee"),
                ("first_name", "Ann"),
                ("email", MEMBER.0),
                ("role", "member"),
                ("csrf_token", &new.csrf()),
            ],
        )
        .await;
    assert_eq!(taken.status, 409);
    assert_eq!(
        taken.text_of("email-error").as_deref(),
        Some("This email address already belongs to another account.")
    );
    assert_tied(&taken, "email", "email-error");

    let created = manager
        .post_form(
            "/admin/members",
            &[
                ("last_name", "Lee"),
                ("first_name", "Ann"),
                ("email", "ann.lee@example.org"),
                ("role", "member"),
                ("csrf_token", &new.csrf()),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = manager.get(created.location.as_deref().unwrap()).await;
    assert!(
        page.body.contains("Ann Lee is registered."),
        "{}",
        page.body
    );

    let id = app.member_id("ann.lee@example.org").await;
    let edit = manager.get(&format!("/admin/members/{id}/edit")).await;
    assert_eq!(edit.status, 200);
    assert_english(
        &app,
        &edit,
        &[
            "Edit Ann Lee&#39;s record",
            "Active: Ann can log in.",
            "Deactivate the account",
            "Send a new invitation",
            ">Save</button>",
        ],
        &[],
    )
    .await;
    let deactivated = manager
        .post_form(
            &format!("/admin/members/{id}/deactivate"),
            &[("csrf_token", &edit.csrf())],
        )
        .await;
    assert_eq!(deactivated.status, 303);
    let edit = manager.get(&format!("/admin/members/{id}/edit")).await;
    assert!(
        edit.body
            .contains("Ann Lee&#39;s account is deactivated: they can no longer log in"),
        "{}",
        edit.body
    );
    assert_english(
        &app,
        &edit,
        &[
            "Deactivated: Ann can no longer log in.",
            "Reactivate the account",
        ],
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_and_its_preview_read_in_english_with_each_rows_reasons() {
    let app = spawn_app().await;
    let manager = english_manager(&app).await;

    let form = manager.get("/admin/members/import").await;
    assert_eq!(form.status, 200);
    assert_english(
        &app,
        &form,
        &[
            "<h1>Import members</h1>",
            "are required;",
            "are optional; other columns are ignored.",
            "At most 5,000 rows and 2 MB.",
            "See the preview",
        ],
        &[],
    )
    .await;

    let missing = upload_csv(&manager, &form.csrf(), "x.csv", b"nom;email\nA;a@b.org\n").await;
    assert_eq!(missing.status, 422);
    assert!(
        missing
            .text_of("import-error")
            .unwrap()
            .starts_with("Missing columns: first_name.")
    );
    assert_tied(&missing, "file", "import-error");

    let csv = format!(
        "last_name,first_name,email,phone,licence\n\
         Smith,Ann,ann.smith@example.org,,1\n\
         Jones,Bob,,,2\n\
         Brown,Cy,not-an-address,,3\n\
         Smith,Again,ANN.SMITH@example.org,,4\n\
         Taken,Dee,{},,5\n\
         ,Eve,eve@example.org,,6\n",
        MEMBER.0
    );
    let uploaded = upload_csv(&manager, &form.csrf(), "people.csv", csv.as_bytes()).await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let preview = manager.get(uploaded.location.as_deref().unwrap()).await;
    assert_eq!(preview.status, 200);
    let reasons = |line: u32| preview.text_of(&format!("row-{line}")).unwrap();
    assert!(reasons(2).contains("Will be registered"));
    assert!(reasons(3).contains("Set aside: Email address missing."));
    assert!(reasons(4).contains("Invalid email address: “not-an-address”."));
    assert!(reasons(5).contains("Address already on line 2 of the file."));
    assert!(reasons(6).contains("Already registered: an account has this address."));
    assert!(reasons(7).contains("Give the last name."));
    assert_english(
        &app,
        &preview,
        &[
            "<h1>Import preview</h1>",
            "UTF-8, comma separated",
            "Ignored columns",
            "Register 1 member(s)",
            "What will happen",
        ],
        &[
            "not-an-address",
            "Smith",
            "Jones",
            "Brown",
            "Again",
            "Taken",
            "Dee",
            "Eve",
            "Cy",
            "Bob",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_requests_read_in_english_from_the_form_to_the_detail() {
    let app = spawn_app().await;
    let manager = english_manager(&app).await;

    let list = manager.get("/admin/requests").await;
    assert_eq!(list.status, 200);
    assert_english(
        &app,
        &list,
        &[
            "<h1>Payment requests</h1>",
            "Send to every member who owes",
            "member(s) owe",
            "The member&#39;s choice",
            "Message (optional)",
            "No request.",
            ">All</option>",
            ">Cancelled</option>",
        ],
        &[],
    )
    .await;

    // A bad gateway: the message is English and tied to the field.
    let refused = manager
        .post_form(
            "/admin/requests/all",
            &[
                ("gateway", "nowhere"),
                ("message", ""),
                ("form_key", &list.form_key()),
                ("csrf_token", &list.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("request-error").as_deref(),
        Some("Choose one of the payment methods offered, or the member's choice.")
    );
    assert_tied(&refused, "request-gateway", "request-error");

    let confirm = manager
        .post_form(
            "/admin/requests/all",
            &[
                ("gateway", ""),
                ("message", "Thanks"),
                ("form_key", &list.form_key()),
                ("csrf_token", &list.csrf()),
            ],
        )
        .await;
    assert_eq!(confirm.status, 200);
    assert_english(
        &app,
        &confirm,
        &[
            "Confirm sending the payment requests",
            "A payment request is about to go to",
            "Send to these",
            "Send nothing",
        ],
        &["Thanks"],
    )
    .await;

    let member_id = app.member_id(MEMBER.0).await;
    let new = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    assert_eq!(new.status, 200);
    assert_english(
        &app,
        &new,
        &[
            "Payment request to",
            "The member owes €97.00",
            "Send the request",
            "Their requests",
        ],
        &[],
    )
    .await;
    let sent = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", "sandbox"),
                ("message", "Please pay"),
                ("form_key", &new.form_key()),
                ("csrf_token", &new.csrf()),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let after = manager.get(sent.location.as_deref().unwrap()).await;
    assert!(
        after.body.contains("Payment request for €97.00 sent to"),
        "{}",
        after.body
    );
    assert_english(
        &app,
        &after,
        &["Detail or cancel", "Sent on", "Expires on"],
        &["Please pay"],
    )
    .await;

    let request_id: String =
        sqlx::query_scalar("SELECT id FROM payment_requests WHERE member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let detail = manager.get(&format!("/admin/requests/{request_id}")).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.text_of("request-status").as_deref(), Some("Sent"));
    assert_english(
        &app,
        &detail,
        &[
            "Amount asked",
            "Link valid until",
            "Cancel the request",
            "Confirm the cancellation",
        ],
        &["Please pay"],
    )
    .await;
    let cancelled = manager
        .post_form(
            &format!("/admin/requests/{request_id}/cancel"),
            &[("csrf_token", &detail.csrf())],
        )
        .await;
    assert_eq!(cancelled.status, 303);
    let twice = manager
        .post_form(
            &format!("/admin/requests/{request_id}/cancel"),
            &[("csrf_token", &detail.csrf())],
        )
        .await;
    assert_eq!(twice.status, 409);
    assert_eq!(
        twice.text_of("action-error").as_deref(),
        Some("Only a request still open can be cancelled (this one is “cancelled”).")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_charge_forms_read_in_english() {
    let app = spawn_app().await;
    let manager = english_manager(&app).await;
    // Something collected, so that the chart has a bar and the dashboard a payment.
    let member = app.logged_in(MEMBER).await;
    let (payment, _) = member.start_payment(&app, "12.50").await;
    let gateway_ref = app.gateway_ref(&payment).await;
    let body = app.sandbox_event(&payment, &gateway_ref, "succeeded", 1250);
    let signature = app.sign(&body);
    assert_eq!(app.post_notification(body, Some(signature)).await, 200);
    assert_eq!(app.payment_status(&payment).await, "paid");

    let dashboard = manager.get("/admin").await;
    assert_eq!(dashboard.status, 200);
    assert_english(
        &app,
        &dashboard,
        &[
            "<h1>Dashboard</h1>",
            "Still to collect:",
            "Collected over the last 12 months",
            "The table of amounts",
            "Members and balances",
            "Latest payments",
            "€84.50 owed",
            "Stacked bars, one per month",
            ": €12.50</title>",
        ],
        &[],
    )
    .await;

    let bulk = manager.get("/admin/charges").await;
    assert_eq!(bulk.status, 200);
    assert_english(
        &app,
        &bulk,
        &[
            "<h1>Add an amount owed by several members</h1>",
            "To whom",
            "Every active member",
            "Amount per member (€)",
            "Add to these members",
        ],
        &[],
    )
    .await;
    let refused = manager
        .post_form(
            "/admin/charges",
            &[
                ("target", "all"),
                ("category", "dues"),
                ("label", "Dues 2027"),
                ("amount", "twelve"),
                ("date", "2026-09-01"),
                ("form_key", &bulk.form_key()),
                ("csrf_token", &bulk.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text_of("charge-error")
            .unwrap()
            .starts_with("The amount must be a number")
    );
    assert_tied(&refused, "charge-amount", "charge-error");
    assert_english(&app, &refused, &[], &["twelve", "Dues 2027"]).await;

    let added = manager
        .post_form(
            "/admin/charges",
            &[
                ("target", "all"),
                ("category", "dues"),
                ("label", "Dues 2027"),
                ("amount", "10"),
                ("date", "2026-09-01"),
                ("form_key", &bulk.form_key()),
                ("csrf_token", &bulk.csrf()),
            ],
        )
        .await;
    assert_eq!(added.status, 303);
    let dashboard = manager.get("/admin").await;
    assert!(
        dashboard.body.contains("Dues 2027 (€10.00) added for"),
        "{}",
        dashboard.body
    );

    // One member's charge form: a due date before the date is refused at its field.
    let member_id = app.member_id(MEMBER.0).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let refused = manager
        .post_form(
            &format!("/admin/members/{member_id}/charges"),
            &[
                ("category", "dues"),
                ("label", "Shirt"),
                ("amount", "5"),
                ("date", "2026-09-01"),
                ("due_on", "2026-08-01"),
                ("form_key", &page.form_key()),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("charge-error").as_deref(),
        Some("The due date cannot come before the date of the amount owed.")
    );
    assert_tied(&refused, "due-on", "charge-error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_pages_are_still_french_by_default() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let member_id = app.member_id(MEMBER.0).await;
    assert_french(
        &manager.get("/admin/members?filter=owing").await,
        &[
            "<h1>Membres</h1>",
            "Rechercher (nom ou adresse e-mail)",
            "97,00 € dus",
        ],
    );
    assert_french(
        &manager.get(&format!("/admin/members/{member_id}")).await,
        &[
            "Modifier la fiche",
            "Ajouter une somme due",
            "Relevé de compte",
        ],
    );
    assert_french(
        &manager.get("/admin/members/new").await,
        &[
            "<h1>Nouveau membre</h1>",
            "Adresse postale (facultatif)",
            ">Inscrire</button>",
        ],
    );
    assert_french(
        &manager
            .get(&format!("/admin/members/{member_id}/edit"))
            .await,
        &[
            "Modifier la fiche de Camille Martin",
            "Désactiver le compte",
            ">Enregistrer</button>",
        ],
    );
    assert_french(
        &manager.get("/admin/members/import").await,
        &[
            "<h1>Importer des membres</h1>",
            "sont obligatoires ;",
            "Voir l&#39;aperçu",
        ],
    );
    let form = manager.get("/admin/members/import").await;
    let uploaded = upload_csv(
        &manager,
        &form.csrf(),
        "membres.csv",
        "nom;prénom;email\nMartin;Zoé;\n".as_bytes(),
    )
    .await;
    assert_eq!(uploaded.status, 303);
    let preview = manager.get(uploaded.location.as_deref().unwrap()).await;
    assert_french(
        &preview,
        &[
            "Aperçu de l&#39;import",
            "UTF-8, séparateur point-virgule",
            "Adresse e-mail manquante.",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charges_and_requests_are_still_french_by_default() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let member_id = app.member_id(MEMBER.0).await;
    assert_french(
        &manager.get("/admin").await,
        &[
            "Reste à encaisser :",
            "Encaissements des 12 derniers mois",
            "Membres et soldes",
        ],
    );
    assert_french(
        &manager.get("/admin/charges").await,
        &[
            "Ajouter une somme due à plusieurs membres",
            "Montant par membre (€)",
        ],
    );
    let list = manager.get("/admin/requests").await;
    assert_french(
        &list,
        &[
            "<h1>Demandes de paiement</h1>",
            "Au choix du membre",
            ">Annulée</option>",
        ],
    );
    let new = manager
        .get(&format!("/admin/members/{member_id}/request"))
        .await;
    assert_french(
        &new,
        &[
            "Demande de paiement à Camille Martin",
            "Le membre doit 97,00 €",
        ],
    );
    let confirm = manager
        .post_form(
            "/admin/requests/all",
            &[
                ("gateway", ""),
                ("message", ""),
                ("form_key", &list.form_key()),
                ("csrf_token", &list.csrf()),
            ],
        )
        .await;
    assert_french(
        &confirm,
        &[
            "Confirmer l&#39;envoi des demandes de paiement",
            "Ne rien envoyer",
        ],
    );
    let sent = manager
        .post_form(
            &format!("/admin/members/{member_id}/request"),
            &[
                ("gateway", ""),
                ("message", ""),
                ("form_key", &new.form_key()),
                ("csrf_token", &new.csrf()),
            ],
        )
        .await;
    assert_eq!(sent.status, 303);
    let request_id: String =
        sqlx::query_scalar("SELECT id FROM payment_requests WHERE member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let detail = manager.get(&format!("/admin/requests/{request_id}")).await;
    assert_french(&detail, &["Montant demandé", "Confirmer l&#39;annulation"]);
    assert_eq!(detail.text_of("request-status").as_deref(), Some("Envoyée"));
}
