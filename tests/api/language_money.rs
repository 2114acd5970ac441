//! The managers' money pages (payments, a payment, the ledger, balances, history, chart of
//! accounts, payment methods) read in English when English is chosen, French otherwise: no
//! French word is left on them but the association's own data, and their errors follow.

use std::collections::BTreeSet;

use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app};

/// Words and signs that only French text has on these pages.
const FRENCH_WORDS: &str = "Paiement Paiements paiement paiements Montant Rembourser \
    Remboursement Remboursements Aucun Aucune Compte Comptes compte comptes Statut Moyen moyen \
    Membre Membres membres Filtrer Solde Soldes Totaux Enregistrer Identifiants identifiants \
    Tous Exporter Ajouter Supprimer prestataire Encaissements Frais Annuler Confirmer Tester \
    connexion Historique Quand Qui Avant Sur oui non les des du au et ou est sur pas une avec \
    dans pour voir";

fn is_french_word(word: &str) -> bool {
    FRENCH_WORDS.split_whitespace().any(|w| w == word)
}

const FRENCH_SIGNS: [char; 11] = ['é', 'è', 'à', 'ê', 'ç', 'ù', 'â', 'î', 'ô', '«', '»'];

/// What the association entered or obole named for it (people, categories, journal and basket
/// labels, the association's and the sandbox's names): shown as it was written.
async fn data_of(app: &TestApp) -> Vec<String> {
    let mut data: BTreeSet<String> = BTreeSet::new();
    for sql in [
        "SELECT first_name || ' ' || last_name FROM users",
        "SELECT first_name FROM users",
        "SELECT last_name FROM users",
        "SELECT email FROM users",
        "SELECT label FROM categories",
        "SELECT label FROM journal_entries",
        "SELECT label FROM basket_lines",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&app.pool)
            .await
            .expect("the data shown on the pages");
        data.extend(found);
    }
    data.insert(app.settings.association_name.clone());
    data.insert("Sandbox (paiement de test)".to_string());
    // The language switch names each language in itself.
    data.insert("Français".to_string());
    let mut data: Vec<String> = data.into_iter().filter(|d| !d.is_empty()).collect();
    // Longest first: a journal label holds the sandbox's name.
    data.sort_by_key(|d| std::cmp::Reverse(d.chars().count()));
    data
}

/// The text a reader sees (text, titles, labels, placeholders), without what is code
/// (references, raw notifications, JSON of the history) and without the data.
fn visible_text(page: &Page, data: &[String]) -> String {
    let html = scraper::Html::parse_document(&page.body);
    let mut text = String::new();
    for node in html.tree.root().descendants() {
        let hidden = node.ancestors().any(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "code" | "pre" | "script" | "style"))
        });
        if hidden {
            continue;
        }
        if let Some(t) = node.value().as_text() {
            text.push_str(t);
            text.push(' ');
        }
        if let Some(element) = node.value().as_element() {
            for attribute in ["aria-label", "placeholder", "title", "alt"] {
                if let Some(value) = element.attr(attribute) {
                    text.push_str(value);
                    text.push(' ');
                }
            }
        }
    }
    for d in data {
        text = text.replace(d.as_str(), " ");
    }
    text
}

/// The French words and signs left on the page once its data is removed.
fn french_left(page: &Page, data: &[String]) -> Vec<String> {
    let text = visible_text(page, data);
    let mut left: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| is_french_word(w))
        .map(str::to_string)
        .collect();
    left.extend(
        text.chars()
            .filter(|c| FRENCH_SIGNS.contains(c))
            .map(String::from),
    );
    if !left.is_empty() {
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| {
                w.contains(|c: char| FRENCH_SIGNS.contains(&c))
                    || is_french_word(w.trim_matches(|c: char| !c.is_alphanumeric()))
            })
            .unwrap_or(0);
        let near = words[at.saturating_sub(8)..words.len().min(at + 8)].join(" ");
        left.push(format!("[near: {near}]"));
    }
    left
}

/// Asserts the page is English: the texts expected are there, and no French is left.
fn assert_english(page: &Page, data: &[String], expected: &[&str]) {
    assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
    let text = visible_text(page, data);
    for phrase in expected {
        assert!(
            page.body.contains(phrase) || text.contains(phrase),
            "missing {phrase:?} in {text}"
        );
    }
    let left = french_left(page, data);
    assert!(left.is_empty(), "French left: {left:?}\n{text}");
}

async fn choose(browser: &Browser, lang: &str) {
    let page = browser.get("/admin").await;
    let chosen = browser
        .post_form(
            "/lang",
            &[
                ("lang", lang),
                ("back", "/admin"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
}

/// A paid payment (through the sandbox's page), one still open and one flagged (confirmed
/// for another amount than asked).
async fn payments(app: &TestApp) -> (String, String, String) {
    let member = app.logged_in(MEMBER).await;
    let (paid, hosted) = member.start_payment(app, "30,00").await;
    member.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&paid, "paid").await;
    let other = app.logged_in(MEMBER2).await;
    let (open, _) = other.start_payment(app, "15,00").await;
    let (flagged, _) = other.start_payment(app, "40,00").await;
    let reference = app.gateway_ref(&flagged).await;
    let body = app.sandbox_event(&flagged, &reference, "succeeded", 1000);
    assert_eq!(
        app.post_notification(body.clone(), Some(app.sign(&body)))
            .await,
        200
    );
    (paid, open, flagged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payments_pages_read_in_english_with_their_refund_messages() {
    let app = spawn_app().await;
    let (paid, open, flagged) = payments(&app).await;
    let admin = app.logged_in(MANAGER).await;
    choose(&admin, "en").await;

    let list = admin.get("/admin/payments").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.text_of("payments-total").as_deref(),
        Some("3 payment(s).")
    );
    assert_english(
        &list,
        &data_of(&app).await,
        &[
            "Payments",
            "Member or reference",
            "Only payments to check (anomalies)",
            "Provider reference",
            "Paid",
            "Awaiting confirmation",
            "Amount paid differs from the amount asked",
            "€30.00",
        ],
    );
    let filtered = admin
        .get("/admin/payments?status=paid&gateway=sandbox&q=martin")
        .await;
    assert_eq!(
        filtered.text_of("payments-total").as_deref(),
        Some("1 payment(s).")
    );
    assert_english(&filtered, &data_of(&app).await, &["Filter", "Fees"]);
    let to_check = admin.get("/admin/payments?flagged=1").await;
    assert_eq!(
        to_check.text_of("payments-total").as_deref(),
        Some("1 payment(s).")
    );
    assert!(to_check.body.contains("amount_mismatch"));
    assert_english(&to_check, &data_of(&app).await, &["Anomaly"]);
    let unknown = admin.get("/admin/payments?status=vol%C3%A9").await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("Unknown status: volé"),
        "{}",
        unknown.body
    );

    let page = admin.get(&format!("/admin/payments/{paid}")).await;
    assert_eq!(page.status, 200);
    assert_english(
        &page,
        &data_of(&app).await,
        &[
            "Amount asked",
            "Collected",
            "Provider's fees",
            "obole reference",
            "Confirm the refund",
            "At most €30.00. The refund is sent to the payment provider: confirm it.",
            "Notifications received",
            "Posted",
            "Refunds",
            "None.",
        ],
    );
    assert!(
        page.body.contains("<code>posted</code>"),
        "the verdict's code stays"
    );

    // Too much, then a refund within what was paid.
    let token = page.csrf();
    let refused = admin
        .post_form(
            &format!("/admin/payments/{paid}/refund"),
            &[("amount", "1000"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("action-error").as_deref(),
        Some("The refund must be between €0.01 and €30.00.")
    );
    assert_english(&refused, &data_of(&app).await, &[]);
    let not_a_number = admin
        .post_form(
            &format!("/admin/payments/{paid}/refund"),
            &[("amount", "cinq"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(not_a_number.status, 422);
    assert!(
        not_a_number
            .text_of("action-error")
            .unwrap()
            .contains("The amount must be a number")
    );
    let refunded = admin
        .post_form(
            &format!("/admin/payments/{paid}/refund"),
            &[("amount", "5.00"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(refunded.status, 303, "{}", refunded.body);
    let after = admin.get(&format!("/admin/payments/{paid}")).await;
    assert!(after.body.contains("Refund of €5.00"), "{}", after.body);
    assert_english(&after, &data_of(&app).await, &["Refunds", "Reference"]);
    let refund_status = after.text_of("refunds").unwrap();
    assert!(
        refund_status.contains("Done") || refund_status.contains("Waiting for the provider"),
        "{refund_status}"
    );

    // An open request: its cancel form, and cancelling a paid one is refused in English.
    let open_page = admin.get(&format!("/admin/payments/{open}")).await;
    assert_english(
        &open_page,
        &data_of(&app).await,
        &["Cancel the request", "Confirm the cancellation"],
    );
    let cancel_paid = admin
        .post_form(
            &format!("/admin/payments/{paid}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(cancel_paid.status, 422);
    assert!(
        cancel_paid
            .text_of("action-error")
            .unwrap()
            .starts_with("Only an unpaid request can be cancelled (this one is “Partly refunded”)"),
        "{}",
        cancel_paid.body
    );
    let cancelled = admin
        .post_form(
            &format!("/admin/payments/{open}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(cancelled.status, 303);
    let open_page = admin.get(&format!("/admin/payments/{open}")).await;
    assert!(open_page.body.contains("Payment request cancelled."));
    assert_eq!(
        open_page.text_of("payment-status").as_deref(),
        Some("Cancelled")
    );

    let flagged_page = admin.get(&format!("/admin/payments/{flagged}")).await;
    assert!(
        flagged_page
            .text_of("anomaly")
            .unwrap()
            .starts_with("Amount paid differs from the amount asked")
    );
    assert_english(
        &flagged_page,
        &data_of(&app).await,
        &["Flagged: Amount paid differs"],
    );

    // The refund is in the history, said in English.
    let audit = admin.get("/admin/audit").await;
    assert_english(
        &audit,
        &data_of(&app).await,
        &[
            "History of actions",
            "Refund requested",
            "payment.refund",
            "Before",
            "After",
        ],
    );
    assert!(
        audit
            .text_of("audit")
            .unwrap()
            .contains(&format!("payment:{paid}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_read_in_english_with_their_errors() {
    let app = spawn_app().await;
    payments(&app).await;
    let admin = app.logged_in(MANAGER).await;
    choose(&admin, "en").await;
    let member = app.member_id(MEMBER.0).await;

    let ledger = admin.get("/admin/ledger").await;
    assert_eq!(ledger.status, 200);
    assert_eq!(
        ledger.text_of("balance-check").as_deref(),
        Some("The ledger balances.")
    );
    assert_english(
        &ledger,
        &data_of(&app).await,
        &[
            "Ledger",
            "Entries are never edited nor deleted",
            "Account (start of its number)",
            "for instance 411",
            "Fiscal year ending in",
            "Export the FEC",
            "Description",
            "Debit",
            "Credit",
            "Totals",
        ],
    );
    let filtered = admin
        .get(&format!(
            "/admin/ledger?account=411&member={member}&gateway=sandbox&from=2000-01-01"
        ))
        .await;
    assert_eq!(filtered.status, 200);
    assert_eq!(
        filtered.text_of("balance-check").as_deref(),
        Some("Balance of the selection: €30.00 credit.")
    );
    assert_english(
        &filtered,
        &data_of(&app).await,
        &[
            "matching the filters",
            "Export this selection as CSV",
            "Totals of the selection",
            "The whole ledger",
        ],
    );
    for (query, message) in [
        (
            "account=abc",
            "Account: An account number has digits only (for instance 756).",
        ),
        (
            "from=2026-02-01&to=2026-01-01",
            "The start date must come before the end date.",
        ),
        ("from=01/02/2026", "From: enter a date as YYYY-MM-DD."),
        ("member=nobody", "Unknown member."),
        ("gateway=nope", "Unknown payment method."),
        ("page=0", "Invalid page number."),
    ] {
        let page = admin.get(&format!("/admin/ledger?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert_eq!(
            page.text_of("filter-error").as_deref(),
            Some(message),
            "{query}"
        );
        assert_english(&page, &data_of(&app).await, &[]);
    }

    let balances = admin.get("/admin/balances").await;
    assert_eq!(balances.status, 200);
    assert_english(
        &balances,
        &data_of(&app).await,
        &[
            "Account balances",
            "The balances add up to zero: the accounts balance.",
            "Members and users",
            "Membership dues",
            "Receipts in transit (payment providers)",
            "Bank and similar charges",
            "Dr: debit balance, Cr: credit balance.",
        ],
    );
    let row = balances.text_of("account-756").unwrap();
    assert!(row.contains("Membership dues"), "{row}");
    let bad_period = admin
        .get("/admin/balances?from=2026-12-31&to=2026-01-01")
        .await;
    assert_eq!(bad_period.status, 400);
    assert_eq!(
        bad_period.text_of("period-error").as_deref(),
        Some("The start date must come before the end date.")
    );
    // The FEC stays French, whatever the page's language.
    let fec = admin.get("/admin/ledger/export?format=fec").await;
    assert_eq!(fec.status, 200);
    assert!(
        fec.body.contains("\t411\tAdhérents et usagers"),
        "{}",
        fec.body
    );
    assert!(fec.body.contains("\t627\tServices bancaires"));
    let fec_filtered = admin
        .get("/admin/ledger/export?format=fec&account=411")
        .await;
    assert_eq!(fec_filtered.status, 400);
    assert!(
        fec_filtered
            .body
            .contains("The FEC covers the whole fiscal year")
    );

    let plan = admin.get("/admin/settings/accounts").await;
    assert_eq!(plan.status, 200);
    assert_english(
        &plan,
        &data_of(&app).await,
        &[
            "Chart of accounts",
            "Categories",
            "Income account",
            "Add a category",
            "Receipts",
            "Fees account (class 6)",
            "Common clearing account (class 5 or 4)",
            "Name of category dues",
        ],
    );
    let token = plan.csrf();
    let bad_account = admin
        .post_form(
            "/admin/settings/accounts/categories",
            &[
                ("code", "stages"),
                ("label", "Stages"),
                ("income_account", "abc"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(bad_account.status, 422);
    assert_eq!(
        bad_account.text_of("settings-error").as_deref(),
        Some("Income account: An account number has digits only (for instance 756).")
    );
    assert_english(&bad_account, &data_of(&app).await, &[]);
    let members_account = admin
        .post_form(
            "/admin/settings/accounts/categories/dues",
            &[
                ("label", "Cotisation"),
                ("income_account", "411"),
                ("active", "1"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(members_account.status, 422);
    assert_eq!(
        members_account.text_of("settings-error").as_deref(),
        Some("Income account: 411 is the members' account.")
    );
    let bad_fees = admin
        .post_form(
            "/admin/settings/accounts/receipts",
            &[
                ("fees", "5112"),
                ("clearing", "5112"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(bad_fees.status, 422);
    assert_eq!(
        bad_fees.text_of("settings-error").as_deref(),
        Some("Fees account: 5112 is not an expense account (class 6).")
    );
    let in_use = admin
        .post_form(
            "/admin/settings/accounts/categories/dues/delete",
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(in_use.status, 422);
    assert!(
        in_use
            .text_of("settings-error")
            .unwrap()
            .ends_with("it cannot be deleted, only deactivated."),
        "{}",
        in_use.body
    );
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
    let plan = admin.get("/admin/settings/accounts").await;
    assert!(
        plan.body
            .contains("Category “Stages” added (account 7069)."),
        "{}",
        plan.body
    );
    assert_english(&plan, &data_of(&app).await, &[]);

    let audit = admin.get("/admin/audit").await;
    assert_english(
        &audit,
        &data_of(&app).await,
        &["Category added", "category.add"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_methods_page_reads_in_english_with_its_messages() {
    let app = spawn_app().await;
    let admin = app.logged_in(MANAGER).await;
    choose(&admin, "en").await;

    let page = admin.get("/admin/gateways").await;
    assert_eq!(page.status, 200);
    assert_english(
        &page,
        &data_of(&app).await,
        &[
            "Payment methods",
            "Notification address",
            "Notification check",
            "HMAC-SHA256 of the raw body",
            "full or partial",
            "Offered to members",
            "Display order (1: first)",
            "Credentials",
            "Secret key",
            "sk_test_… or sk_live_…",
            "Test the connection",
            "Credentials cannot be saved here",
            "openssl rand -base64 32",
        ],
    );
    assert_eq!(
        page.text_of("sandbox-api_key-status").as_deref(),
        Some("configuration (…_key)")
    );

    let token = page.csrf();
    let tested = admin
        .post_form("/admin/gateways/sandbox/test", &[("csrf_token", &token)])
        .await;
    assert_eq!(tested.status, 303);
    let page = admin.get("/admin/gateways").await;
    assert_eq!(
        page.text_of("sandbox-notice").as_deref(),
        Some("Connection succeeded (test mode): Sandbox (test payment) accepted the credentials.")
    );
    assert_english(&page, &data_of(&app).await, &[]);

    let bad_position = admin
        .post_form(
            "/admin/gateways/stripe",
            &[
                ("revision", "0"),
                ("position", "premier"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(bad_position.status, 422);
    assert_eq!(
        bad_position.text_of("stripe-error").as_deref(),
        Some("The display order is a whole number from 1 to 99.")
    );
    assert_english(&bad_position, &data_of(&app).await, &[]);
    let bad_key = admin
        .post_form(
            "/admin/gateways/stripe",
            &[
                ("revision", "0"),
                ("position", "3"),
                ("cred_secret_key", "pk_test_a_publishable_key"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(bad_key.status, 422);
    assert_eq!(
        bad_key.text_of("stripe-error").as_deref(),
        Some("Secret key: this value does not have the expected shape (sk_test_… or sk_live_…).")
    );
    let saved = admin
        .post_form(
            "/admin/gateways/stripe",
            &[
                ("revision", "0"),
                ("position", "3"),
                ("test_mode", "1"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.get("/admin/gateways").await;
    assert_eq!(
        page.text_of("stripe-notice").as_deref(),
        Some("Settings of Stripe saved.")
    );
    assert_english(&page, &data_of(&app).await, &["Changed on"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_money_pages_stay_french_by_default() {
    let app = spawn_app().await;
    let (paid, _, _) = payments(&app).await;
    let admin = app.logged_in(MANAGER).await;
    let data = data_of(&app).await;
    for (path, french, english) in [
        (
            "/admin/payments",
            "Membre ou référence",
            "Member or reference",
        ),
        (
            &format!("/admin/payments/{paid}") as &str,
            "Montant demandé",
            "Amount asked",
        ),
        (
            "/admin/ledger",
            "Le journal est équilibré.",
            "The ledger balances.",
        ),
        (
            "/admin/balances",
            "Adhérents et usagers",
            "Members and users",
        ),
        (
            "/admin/audit",
            "Historique des actions",
            "History of actions",
        ),
        (
            "/admin/settings/accounts",
            "Ajouter une catégorie",
            "Add a category",
        ),
        (
            "/admin/gateways",
            "Tester la connexion",
            "Test the connection",
        ),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("<html lang=\"fr\">"), "{path}");
        assert!(page.body.contains(french), "{path}: {french}");
        assert!(!page.body.contains(english), "{path}: {english}");
        // The scan that finds no French on the English pages finds it here.
        assert!(!french_left(&page, &data).is_empty(), "{path}");
    }
    let payment = admin.get(&format!("/admin/payments/{paid}")).await;
    assert!(payment.body.contains("Comptabilisée"));
    let refused = admin
        .post_form(
            &format!("/admin/payments/{paid}/refund"),
            &[("amount", "1000"), ("csrf_token", &payment.csrf())],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("action-error").as_deref(),
        Some("Le remboursement doit être compris entre 0,01 € et 30,00 €.")
    );
}
