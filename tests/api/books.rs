//! The books: the journal's filters, the accounts' balances, the member's statement, the
//! dashboard's chart, and the chart of accounts managed as data (categories, clearing and
//! fees accounts).

use sqlx::Row;

use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app, spawn_app_with};

const SECRETARY: (&str, &str) = ("secretaire@exemple.org", "secretaire-demo");

/// Pays through the sandbox as this member and waits for the posting.
async fn pay_sandbox(app: &TestApp, member: &Browser, amount: &str) -> String {
    let (id, hosted) = member.start_payment(app, amount).await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    id
}

/// Pays through Stripe's emulator as this member and waits for the posting.
async fn pay_stripe(app: &TestApp, member: &Browser, amount: &str) -> String {
    let page = member.pay(amount, "stripe").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let hosted = page.location.expect("the hosted page");
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'stripe' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let back = crate::contract::act(member, &hosted, "pay").await;
    member.get_following(&back).await;
    app.wait_for_status(&id, "paid").await;
    id
}

/// The journal table's lines as (account, debit, credit) text.
fn journal_lines(page: &Page) -> Vec<(String, String, String)> {
    let html = scraper::Html::parse_document(&page.body);
    let rows = scraper::Selector::parse("#journal tbody tr").unwrap();
    let cells = scraper::Selector::parse("td").unwrap();
    html.select(&rows)
        .map(|row| {
            let text: Vec<String> = row
                .select(&cells)
                .map(|c| c.text().collect::<String>().trim().to_string())
                .collect();
            (text[4].clone(), text[5].clone(), text[6].clone())
        })
        .collect()
}

/// The `form_key` of the first charge form of the page.
/// Adds a charge to a member through the manager's form; returns the response.
async fn add_charge(
    manager: &Browser,
    member_id: &str,
    category: &str,
    label: &str,
    amount: &str,
    date: &str,
) -> Page {
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let key = page.form_key();
    let token = page.csrf();
    manager
        .post_form(
            &format!("/admin/members/{member_id}/charges"),
            &[
                ("category", category),
                ("label", label),
                ("amount", amount),
                ("season", ""),
                ("date", date),
                ("form_key", &key),
                ("csrf_token", &token),
            ],
        )
        .await
}

fn today() -> String {
    obole::db::today_text()
}

async fn lines_of_payment(app: &TestApp, payment_id: &str) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT l.account, l.debit_cents, l.credit_cents FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id WHERE e.payment_id = $1 ORDER BY l.line_no",
    )
    .bind(payment_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_filters_return_exactly_the_expected_lines() {
    let app = spawn_app_with(crate::stripe::configure).await;
    let camille = app.member_id(MEMBER.0).await;
    let louis = app.member_id(MEMBER2.0).await;
    let member = app.logged_in(MEMBER).await;
    let sandbox_payment = pay_sandbox(&app, &member, "30,00").await;
    let member2 = app.logged_in(MEMBER2).await;
    let stripe_payment = pay_stripe(&app, &member2, "20,00").await;
    let manager = app.logged_in(MANAGER).await;
    assert_eq!(
        add_charge(
            &manager,
            &camille,
            "outings",
            "Sortie raquettes",
            "22,50",
            "2025-01-15"
        )
        .await
        .status,
        303
    );

    // Unfiltered: every line, balanced.
    let all = manager.get("/admin/ledger").await;
    assert_eq!(all.status, 200);
    let total_lines = app.count("SELECT COUNT(*) FROM journal_lines").await;
    assert_eq!(journal_lines(&all).len() as i64, total_lines);
    assert_eq!(
        all.text_of("balance-check").as_deref(),
        Some("Le journal est équilibré.")
    );

    // The members' account: 8 charges debited, 2 receipts credited.
    let page = manager.get("/admin/ledger?account=411").await;
    assert_eq!(page.status, 200);
    let lines = journal_lines(&page);
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|(account, _, _)| account == "411"));
    assert_eq!(page.text_of("total-debit").as_deref(), Some("251,00 €"));
    assert_eq!(page.text_of("total-credit").as_deref(), Some("50,00 €"));
    assert!(
        page.text_of("balance-check")
            .unwrap()
            .contains("201,00 € débiteur")
    );

    // A prefix: every income account (class 7).
    let page = manager.get("/admin/ledger?account=7").await;
    let lines = journal_lines(&page);
    assert_eq!(lines.len(), 8);
    assert!(lines.iter().all(|(account, _, _)| account.starts_with('7')));
    assert_eq!(page.text_of("total-credit").as_deref(), Some("251,00 €"));

    // One member: their 5 charges (2 lines each) and their receipt (3 lines with the fee).
    let page = manager
        .get(&format!("/admin/ledger?member={camille}"))
        .await;
    let lines = journal_lines(&page);
    assert_eq!(lines.len(), 5 * 2 + 3);
    assert_eq!(page.text_of("total-debit").as_deref(), Some("149,50 €"));
    assert_eq!(page.text_of("total-credit").as_deref(), Some("149,50 €"));
    assert!(!page.body.contains("Louis Bernard</td>"));

    // One gateway: its receipt only, no charge.
    let stripe_lines = lines_of_payment(&app, &stripe_payment).await;
    let page = manager.get("/admin/ledger?gateway=stripe").await;
    let lines = journal_lines(&page);
    assert_eq!(lines.len(), stripe_lines.len());
    assert_eq!(page.text_of("total-credit").as_deref(), Some("20,00 €"));
    assert_eq!(
        lines.last().map(|l| (l.0.as_str(), l.2.as_str())),
        Some(("411", "20,00 €"))
    );

    // Filters combine: the sandbox's fee on the fees account.
    let page = manager
        .get("/admin/ledger?gateway=sandbox&account=627")
        .await;
    let lines = journal_lines(&page);
    let fee = lines_of_payment(&app, &sandbox_payment)
        .await
        .into_iter()
        .find(|l| l.0 == "627")
        .expect("the sandbox books its fee");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].1,
        obole::domain::Money::from_cents(fee.1).to_string()
    );

    // A period: the charge dated in January 2025 only.
    let page = manager
        .get("/admin/ledger?from=2025-01-01&to=2025-01-31")
        .await;
    let lines = journal_lines(&page);
    assert_eq!(
        lines,
        vec![
            ("411".to_string(), "22,50 €".to_string(), String::new()),
            ("706".to_string(), String::new(), "22,50 €".to_string()),
        ]
    );
    let page = manager
        .get(&format!("/admin/ledger?from={}&member={louis}", today()))
        .await;
    assert_eq!(journal_lines(&page).len(), 3 * 2 + stripe_lines.len());

    // The selection exports as CSV, with the same lines.
    let page = manager
        .get(&format!("/admin/ledger?member={camille}"))
        .await;
    let html = scraper::Html::parse_document(&page.body);
    let link = html
        .select(&scraper::Selector::parse("#export-selection").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("an export link for the selection")
        .replace("&amp;", "&");
    assert!(link.contains(&format!("member={camille}")), "{link}");
    let csv = manager.get(&link).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 1 + 13);
    assert!(!csv.body.contains("Louis Bernard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_comes_in_pages_the_latest_first() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    // 25 charges to both members: 100 lines, with the 14 seeded ones 114.
    for n in 0..25 {
        let form = manager.get("/admin/charges").await;
        let key = form.form_key();
        let token = form.csrf();
        let label = format!("Sortie numéro {n:02}");
        let page = manager
            .post_form(
                "/admin/charges",
                &[
                    ("target", "all"),
                    ("category", "outings"),
                    ("label", &label),
                    ("amount", "1"),
                    ("season", ""),
                    ("date", &today()),
                    ("form_key", &key),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(page.status, 303);
    }
    let last = manager.get("/admin/ledger").await;
    assert_eq!(last.text_of("page-number").as_deref(), Some("Page 2 sur 2"));
    assert_eq!(journal_lines(&last).len(), 14);
    assert!(last.body.contains("Sortie numéro 24"));
    assert_eq!(last.text_of("total-debit").as_deref(), Some("278,50 €"));
    let first = manager.get("/admin/ledger?page=1").await;
    assert_eq!(journal_lines(&first).len(), 100);
    assert!(first.text_of("next-page").is_some());
    assert!(first.body.contains("Cotisation 2026-2027"));
    // The totals are those of every selected line, whatever the page.
    assert_eq!(first.text_of("total-debit").as_deref(), Some("278,50 €"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_sum_to_zero_and_match_the_journal() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    pay_sandbox(&app, &member, "50").await;
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get("/admin/balances").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.text_of("balances-sum").as_deref(), Some("0,00 €"));
    assert!(
        page.text_of("balances-check")
            .unwrap()
            .contains("La somme des soldes est nulle")
    );
    let journal: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT account, CAST(SUM(debit_cents) AS BIGINT), CAST(SUM(credit_cents) AS BIGINT) \
         FROM journal_lines GROUP BY account ORDER BY account",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(journal.len(), 7);
    let html = scraper::Html::parse_document(&page.body);
    let rows = scraper::Selector::parse("#balances tbody tr").unwrap();
    let cells = scraper::Selector::parse("td").unwrap();
    let shown: Vec<Vec<String>> = html
        .select(&rows)
        .map(|r| {
            r.select(&cells)
                .map(|c| c.text().collect::<String>().trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(shown.len(), journal.len());
    for ((account, debit, credit), row) in journal.iter().zip(&shown) {
        assert_eq!(&row[0], account);
        assert_eq!(row[2], obole::domain::Money::from_cents(*debit).to_string());
        assert_eq!(
            row[3],
            obole::domain::Money::from_cents(*credit).to_string()
        );
        assert!(!row[1].is_empty(), "account {account} has a name");
    }
    let members = shown.iter().find(|r| r[0] == "411").unwrap();
    assert_eq!(members[1], "Adhérents et usagers");
    assert_eq!(members[4], "178,50 € D");
    let total: i64 = journal.iter().map(|j| j.1).sum();
    assert_eq!(
        page.text_of("balances-debit"),
        Some(obole::domain::Money::from_cents(total).to_string())
    );
    // The period defaults to the fiscal year; another one holds nothing.
    let year = &today()[..4];
    assert_eq!(page.value_of("from"), Some(format!("{year}-01-01")));
    assert_eq!(page.value_of("to"), Some(format!("{year}-12-31")));
    let empty = manager
        .get("/admin/balances?from=2001-01-01&to=2001-12-31")
        .await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("Aucune écriture sur cette période."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_statement_has_a_running_balance_and_a_period() {
    let app = spawn_app().await;
    let camille = app.member_id(MEMBER.0).await;
    let manager = app.logged_in(MANAGER).await;
    add_charge(
        &manager,
        &camille,
        "outings",
        "Sortie raquettes",
        "22,50",
        "2025-01-15",
    )
    .await;
    let member = app.logged_in(MEMBER).await;
    pay_sandbox(&app, &member, "19,50").await;

    let all = manager.get(&format!("/admin/members/{camille}")).await;
    assert_eq!(
        all.text_of("statement-closing").as_deref(),
        Some("100,00 €")
    );
    assert!(all.text_of("statement-opening").is_none());

    let january = manager
        .get(&format!(
            "/admin/members/{camille}?from=2025-01-01&to=2025-01-31"
        ))
        .await;
    assert_eq!(january.status, 200);
    let statement = january.text_of("statement").unwrap();
    assert!(statement.contains("Sortie raquettes"), "{statement}");
    assert!(!statement.contains("Cotisation"), "{statement}");
    assert_eq!(
        january.text_of("statement-closing").as_deref(),
        Some("22,50 €")
    );

    // From February 2025: the January charge is brought forward, then the running balance.
    let since = manager
        .get(&format!("/admin/members/{camille}?from=2025-02-01"))
        .await;
    let opening = since.text_of("statement-opening").unwrap();
    assert!(
        opening.contains("Solde reporté") && opening.contains("22,50 €"),
        "{opening}"
    );
    assert!(
        !since
            .text_of("statement")
            .unwrap()
            .contains("Sortie raquettes")
    );
    assert_eq!(
        since.text_of("statement-closing").as_deref(),
        Some("100,00 €")
    );

    let bad = manager
        .get(&format!(
            "/admin/members/{camille}?from=2025-03-01&to=2025-02-01"
        ))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text_of("statement-error")
            .unwrap()
            .contains("La date de début doit précéder la date de fin")
    );
}

async fn settings_form(browser: &Browser) -> Page {
    let page = browser.get("/admin/settings/accounts").await;
    assert_eq!(page.status, 200);
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_category_with_account_7069_posts_charges_to_7069() {
    let app = spawn_app().await;
    let camille = app.member_id(MEMBER.0).await;
    let admin = app.logged_in(MANAGER).await;
    let token = settings_form(&admin).await.csrf();
    let added = admin
        .post_form(
            "/admin/settings/accounts/categories",
            &[
                ("code", "stages"),
                ("label", "Stages"),
                ("income_account", "7069"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let page = settings_form(&admin).await;
    assert!(
        page.body
            .contains("Catégorie « Stages » ajoutée (compte 7069).")
    );
    assert!(page.text_of("category-stages").is_some());

    // The charge forms offer it; a charge in it credits 7069.
    let member_page = admin.get(&format!("/admin/members/{camille}")).await;
    assert!(
        member_page
            .body
            .contains("<option value=\"stages\">Stages</option>")
    );
    let bulk = admin.get("/admin/charges").await;
    assert!(
        bulk.body
            .contains("<option value=\"stages\">Stages</option>")
    );
    let charged = add_charge(
        &admin,
        &camille,
        "stages",
        "Stage d'escalade",
        "40",
        &today(),
    )
    .await;
    assert_eq!(charged.status, 303);
    let credited: Vec<(String, i64)> = sqlx::query_as(
        "SELECT account, credit_cents FROM journal_lines WHERE label = 'Stage d''escalade' \
         AND credit_cents > 0",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(credited, vec![("7069".to_string(), 4000)]);
    // The member's basket groups it under the category's name.
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert!(basket.body.contains("<caption>Stages</caption>"));
    assert_eq!(basket.text_of("balance").as_deref(), Some("137,00 €"));

    // Renamed and moved to 7068: new charges only go there; the posted line stays on 7069.
    let token = settings_form(&admin).await.csrf();
    let moved = admin
        .post_form(
            "/admin/settings/accounts/categories/stages",
            &[
                ("label", "Stages et formations"),
                ("income_account", "7068"),
                ("active", "1"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(moved.status, 303);
    add_charge(
        &admin,
        &camille,
        "stages",
        "Stage de secourisme",
        "15",
        &today(),
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_lines WHERE account = '7069'")
            .await,
        1
    );
    let account: String = sqlx::query_scalar(
        "SELECT account FROM journal_lines WHERE label = 'Stage de secourisme' AND credit_cents > 0",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(account, "7068");
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert!(
        basket
            .body
            .contains("<caption>Stages et formations</caption>")
    );

    // In use: it cannot be deleted, only deactivated; then it is no longer offered.
    let token = settings_form(&admin).await.csrf();
    let refused = admin
        .post_form(
            "/admin/settings/accounts/categories/stages/delete",
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text_of("settings-error")
            .unwrap()
            .contains("ne peut pas être supprimée, seulement désactivée")
    );
    let deactivated = admin
        .post_form(
            "/admin/settings/accounts/categories/stages",
            &[
                ("label", "Stages et formations"),
                ("income_account", "7068"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(deactivated.status, 303);
    let member_page = admin.get(&format!("/admin/members/{camille}")).await;
    assert!(!member_page.body.contains("value=\"stages\""));
    let before = app.journal_totals().await;
    let refused = add_charge(&admin, &camille, "stages", "Stage refusé", "10", &today()).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Choisissez une catégorie."));
    assert_eq!(app.journal_totals().await, before);
    // Its charges still show under its name.
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert!(
        basket
            .body
            .contains("<caption>Stages et formations</caption>")
    );

    // A category never used can be deleted.
    let token = settings_form(&admin).await.csrf();
    admin
        .post_form(
            "/admin/settings/accounts/categories",
            &[
                ("code", "dons"),
                ("label", "Dons"),
                ("income_account", "754"),
                ("csrf_token", &token),
            ],
        )
        .await;
    let deleted = admin
        .post_form(
            "/admin/settings/accounts/categories/dons/delete",
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(
        app.count_for("SELECT COUNT(*) FROM categories WHERE code = $1", "dons")
            .await,
        0
    );

    // Each change is in the audit log, with the state before and after.
    let update: (String, String) = sqlx::query_as(
        "SELECT before_state, after_state FROM audit_log WHERE action = 'category.update' \
         ORDER BY at, id LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        update.0.contains("\"income_account\":\"7069\""),
        "{}",
        update.0
    );
    assert!(
        update.1.contains("\"income_account\":\"7068\""),
        "{}",
        update.1
    );
    for action in ["category.add", "category.delete"] {
        assert!(
            app.count_for("SELECT COUNT(*) FROM audit_log WHERE action = $1", action)
                .await
                >= 1,
            "{action}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_gateway_clearing_account_routes_new_receipts_and_leaves_old_entries() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let first = pay_sandbox(&app, &member, "10").await;
    let first_lines = lines_of_payment(&app, &first).await;
    assert_eq!(first_lines[0].0, "5112");

    let admin = app.logged_in(MANAGER).await;
    let page = settings_form(&admin).await;
    assert_eq!(page.value_of("clearing").as_deref(), Some("5112"));
    assert_eq!(page.value_of("fees").as_deref(), Some("627"));
    let saved = admin
        .post_form(
            "/admin/settings/accounts/receipts",
            &[
                ("fees", "6278"),
                ("clearing", "5112"),
                ("clearing.sandbox", "5113"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(
        saved.status,
        303,
        "{:?} {:?}",
        saved.text_of("settings-error"),
        saved.body.get(saved.body.find("<main").unwrap_or(0)..)
    );
    assert_eq!(
        settings_form(&admin)
            .await
            .value_of("clearing-sandbox")
            .as_deref(),
        Some("5113")
    );

    let second = pay_sandbox(&app, &member, "12").await;
    let accounts: Vec<String> = lines_of_payment(&app, &second)
        .await
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(accounts, ["5113", "6278", "411"]);
    // The first receipt is untouched.
    assert_eq!(lines_of_payment(&app, &first).await, first_lines);
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);

    // The balances name the new accounts.
    let balances = admin.get("/admin/balances").await;
    let row = balances.text_of("account-5113").unwrap();
    assert!(row.contains("Encaissements en cours (Sandbox"), "{row}");
    assert_eq!(balances.text_of("balances-sum").as_deref(), Some("0,00 €"));

    let audit = sqlx::query(
        "SELECT before_state, after_state FROM audit_log WHERE action = 'accounts.receipts'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let before: String = audit.get("before_state");
    let after: String = audit.get("after_state");
    assert!(before.contains("\"fees\":\"627\""), "{before}");
    assert!(after.contains("\"sandbox\":\"5113\""), "{after}");

    // Back to the common account: an empty field.
    let page = settings_form(&admin).await;
    admin
        .post_form(
            "/admin/settings/accounts/receipts",
            &[
                ("fees", "6278"),
                ("clearing", "5112"),
                ("clearing.sandbox", ""),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    let third = pay_sandbox(&app, &member, "5").await;
    assert_eq!(lines_of_payment(&app, &third).await[0].0, "5112");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_what_was_collected_per_month_and_gateway() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    pay_sandbox(&app, &member, "30").await;
    pay_sandbox(&app, &member, "12,50").await;
    let page = app.logged_in(MANAGER).await.get("/admin").await;
    assert_eq!(page.status, 200);
    let month = &today()[..7];

    let html = scraper::Html::parse_document(&page.body);
    let svg = scraper::Selector::parse("svg#collections-chart").unwrap();
    let svg = html.select(&svg).next().expect("the chart");
    assert_eq!(svg.value().attr("role"), Some("img"));
    for part in ["title", "desc"] {
        let selector = scraper::Selector::parse(part).unwrap();
        assert!(svg.select(&selector).next().is_some(), "{part}");
    }
    let bars = scraper::Selector::parse("rect.bar").unwrap();
    let bars: Vec<_> = svg.select(&bars).collect();
    assert_eq!(bars.len(), 1);
    let bar = bars[0].value();
    assert_eq!(bar.attr("data-month"), Some(month));
    assert_eq!(bar.attr("data-gateway"), Some("sandbox"));
    assert_eq!(bar.attr("data-cents"), Some("4250"));
    let height: f64 = bar.attr("height").unwrap().parse().unwrap();
    assert!(height > 100.0, "{height}");
    assert!(!page.body.contains("<script"));

    // The same numbers in the table.
    assert_eq!(
        page.text_of(&format!("collected-{month}")).as_deref(),
        Some("42,50 €")
    );
    assert_eq!(page.text_of("collected-total").as_deref(), Some("42,50 €"));
    let rows = scraper::Selector::parse("#collections tbody tr").unwrap();
    assert_eq!(html.select(&rows).count(), 12);

    // What is still owed, and by how many.
    assert_eq!(page.text_of("total-owed").as_deref(), Some("186,00 €"));
    assert_eq!(page.text_of("members-owing").as_deref(), Some("2"));
    let recent = scraper::Selector::parse("#recent-payments tbody tr").unwrap();
    assert_eq!(html.select(&recent).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_cannot_see_the_books_and_only_admins_change_the_accounts() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let token = member.get("/basket").await.csrf();
    for path in [
        "/admin/ledger",
        "/admin/ledger?account=411",
        "/admin/balances",
        "/admin/settings/accounts",
    ] {
        assert_eq!(member.get(path).await.status, 403, "{path}");
    }
    let add = [
        ("code", "stages"),
        ("label", "Stages"),
        ("income_account", "7069"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        member
            .post_form("/admin/settings/accounts/categories", &add)
            .await
            .status,
        403
    );

    // The secretary (a manager, not an admin) sees the settings but cannot change them.
    let secretary = app.logged_in(SECRETARY).await;
    let page = secretary.get("/admin/settings/accounts").await;
    assert_eq!(page.status, 200);
    assert!(page.text_of("receipt-accounts").unwrap().contains("5112"));
    assert!(page.text_of("new-category").is_none());
    let token = page.csrf();
    let add = [
        ("code", "stages"),
        ("label", "Stages"),
        ("income_account", "7069"),
        ("csrf_token", token.as_str()),
    ];
    assert_eq!(
        secretary
            .post_form("/admin/settings/accounts/categories", &add)
            .await
            .status,
        403
    );
    assert_eq!(
        secretary
            .post_form(
                "/admin/settings/accounts/receipts",
                &[
                    ("fees", "6278"),
                    ("clearing", "5112"),
                    ("csrf_token", &token)
                ],
            )
            .await
            .status,
        403
    );
    assert_eq!(secretary.get("/admin/balances").await.status, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM categories").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM account_settings").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_explained_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.logged_in(MANAGER).await;

    // Journal and balances filters.
    for (query, message) in [
        ("account=abc", "que des chiffres"),
        ("from=2026-02-01&to=2026-01-01", "précéder"),
        ("from=01/02/2026", "AAAA-MM-JJ"),
        ("member=nobody", "Membre inconnu"),
        ("gateway=nope", "Moyen de paiement inconnu"),
        ("page=0", "page"),
    ] {
        let page = admin.get(&format!("/admin/ledger?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        let error = page.text_of("filter-error").unwrap_or_default();
        assert!(error.contains(message), "{query}: {error}");
        assert!(page.text_of("journal").is_none(), "{query}");
    }
    let page = admin
        .get("/admin/balances?from=2026-12-31&to=2026-01-01")
        .await;
    assert_eq!(page.status, 400);
    assert!(page.text_of("period-error").unwrap().contains("précéder"));
    assert_eq!(
        admin
            .get("/admin/ledger/export?format=csv&account=abc")
            .await
            .status,
        400
    );
    let fec = admin
        .get("/admin/ledger/export?format=fec&account=411")
        .await;
    assert_eq!(fec.status, 400);
    assert!(fec.body.contains("Le FEC couvre tout l"));

    // Categories.
    let token = settings_form(&admin).await.csrf();
    for (code, label, account, message) in [
        ("stages", "Stages", "abc", "ne contient que des chiffres"),
        ("stages", "Stages", "70", "de 3 à 8 chiffres"),
        ("stages", "Stages", "627", "n'est pas un compte de produits"),
        ("stages", "Stages", "411", "compte des membres"),
        ("Stages !", "Stages", "7069", "Le code"),
        ("dues", "Cotisation bis", "7069", "déjà pris"),
        ("stages", "cotisation", "7069", "s'appelle déjà"),
        ("stages", "", "7069", "Le nom"),
    ] {
        let page = admin
            .post_form(
                "/admin/settings/accounts/categories",
                &[
                    ("code", code),
                    ("label", label),
                    ("income_account", account),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{code} {label} {account}");
        let error = page.text_of("settings-error").unwrap_or_default();
        assert!(error.contains(message), "{account}: {error}");
        // What was typed is kept.
        assert_eq!(page.value_of("new-account").as_deref(), Some(account));
    }
    let page = admin
        .post_form(
            "/admin/settings/accounts/categories/dues",
            &[
                ("label", "Cotisation"),
                ("income_account", "75a"),
                ("active", "1"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(
        admin
            .post_form(
                "/admin/settings/accounts/categories/nope",
                &[
                    ("label", "Nope"),
                    ("income_account", "706"),
                    ("csrf_token", &token),
                ],
            )
            .await
            .status,
        404
    );

    // Receipts' accounts.
    for (fees, clearing, sandbox, message) in [
        (
            "abc",
            "5112",
            "",
            "Compte des frais : Un numéro de compte ne contient que des chiffres",
        ),
        ("5112", "5112", "", "n'est pas un compte de charges"),
        ("627", "756", "", "Compte d'attente commun"),
        (
            "627",
            "5112",
            "12",
            "Compte d'attente de Sandbox (paiement de test) : Un numéro de compte compte de 3 à 8 chiffres.",
        ),
    ] {
        let page = admin
            .post_form(
                "/admin/settings/accounts/receipts",
                &[
                    ("fees", fees),
                    ("clearing", clearing),
                    ("clearing.sandbox", sandbox),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{fees} {clearing} {sandbox}");
        let error = page.text_of("settings-error").unwrap_or_default();
        assert!(error.contains(message), "{error}");
    }
    assert_eq!(
        admin
            .post_form(
                "/admin/settings/accounts/receipts",
                &[
                    ("fees", "627"),
                    ("clearing", "5112"),
                    ("clearing.nope", "5113"),
                    ("csrf_token", &token),
                ],
            )
            .await
            .status,
        400
    );
    // Without the CSRF token: refused.
    assert_eq!(
        admin
            .post_form(
                "/admin/settings/accounts/receipts",
                &[("fees", "6278"), ("clearing", "5112")],
            )
            .await
            .status,
        403
    );

    // Nothing was written.
    let categories: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, label, income_account FROM categories ORDER BY position")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        categories,
        [
            ("dues", "Cotisation", "756"),
            ("insurance", "Assurance", "7068"),
            ("outings", "Sorties", "706"),
            ("shirts", "Tee-shirts", "707"),
            ("other", "Autres", "758"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM account_settings").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn income_accounts_set_in_the_configuration_become_the_categories_accounts() {
    let app = spawn_app_with(|s| s.accounts.income_dues = "7561".into()).await;
    let account: String =
        sqlx::query_scalar("SELECT income_account FROM categories WHERE code = 'dues'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(account, "7561");
    // The demo's dues were posted there too.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM journal_lines WHERE account = '7561'")
            .await,
        2
    );
}
