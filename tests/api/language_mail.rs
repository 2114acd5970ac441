//! Every mail in its recipient's language (the one saved on their account; French when none),
//! and the member's other pages (paying, the saved card, the payment request's link, passwords,
//! the gateways' emulated pages) in the reader's.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::helpers::{Browser, MANAGER, MEMBER, MEMBER2, Page, TestApp, spawn_app, spawn_app_with};

/// The secretary: a manager who never chose a language.
const SECRETARY: (&str, &str) = ("secretaire@exemple.org", "secretaire-demo");

/// Texts of the demo's data, in French whatever the language: names, labels, categories.
const SEEDED: &[&str] = &[
    "Association de démonstration",
    "Claire Trésor",
    "Cotisation 2026-2027",
    "Licence-assurance fédérale",
    "Sortie au lac d'Annecy",
    "Tee-shirt du club (taille M)",
    "Week-end en refuge",
    "Cotisation",
    "Assurance",
    "Sorties",
    "Tee-shirts",
    // The language switch names each language in itself.
    "Français",
];

/// Words that only a French text has.
const FRENCH_WORDS: &[&str] = &[
    "Bonjour", "Merci", "merci", "votre", "Votre", "vous", "Vous", "paiement", "Paiement", "reçu",
    "panier", "lien", "demande", "Demande", "carte", "Carte", "mot", "passe", "Payer", "Montant",
    "le", "la", "les", "des", "du", "de", "une", "est", "pour", "Pour", "avec", "jusqu", "dû",
];

/// What still reads French in `text` once the demo's data is taken out: accented letters,
/// French punctuation, French words.
fn french_markers(text: &str) -> Vec<String> {
    let mut text = text.to_string();
    for seeded in SEEDED {
        text = text.replace(seeded, "");
    }
    let mut found: Vec<String> = text
        .chars()
        .filter(|c| "éèêëàâîïôûùüçœÉÈÊÀÂÎÔÇ«»".contains(*c))
        .map(String::from)
        .collect();
    found.extend(
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| FRENCH_WORDS.contains(w))
            .map(str::to_string),
    );
    found.sort();
    found.dedup();
    found
}

/// The visible text of a page (or an HTML mail): its title and text nodes, no attributes.
fn visible_text(html: &str) -> String {
    let document = scraper::Html::parse_document(html);
    document.root_element().text().collect::<Vec<_>>().join(" ")
}

/// `text` without its links (tokens in them are random letters).
fn without_links(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !w.contains("http://") && !w.contains("https://"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_english_page(page: &Page) {
    assert!(
        page.body.contains("<html lang=\"en\">"),
        "an English page: {}",
        page.body
    );
    let markers = french_markers(&visible_text(&page.body));
    assert!(
        markers.is_empty(),
        "French left {markers:?} in {}",
        page.body
    );
}

fn assert_english_mail(mail: &Mail) {
    assert!(mail.html.contains("<html lang=\"en\">"), "{}", mail.html);
    for part in [
        mail.subject.clone(),
        without_links(&mail.text),
        visible_text(&mail.html),
    ] {
        let markers = french_markers(&part);
        assert!(markers.is_empty(), "French left {markers:?} in {part}");
    }
}

/// A mail as its reader sees it: the subject and both bodies, decoded.
#[derive(Debug)]
struct Mail {
    subject: String,
    text: String,
    html: String,
}

impl Mail {
    fn contains(&self, wanted: &str) -> bool {
        self.subject.contains(wanted) || self.text.contains(wanted) || self.html.contains(wanted)
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let unwrapped = body.replace("=\n", "");
    let bytes = unwrapped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&unwrapped[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RFC 2047 header (`=?utf-8?b?…?=` words, or plain text): the space between two encoded
/// words is not part of the text, any other is.
fn decode_header(value: &str) -> String {
    let mut out = String::new();
    let mut after_encoded = false;
    for word in value.split_whitespace() {
        let decoded = word
            .strip_prefix("=?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|w| {
                let mut parts = w.splitn(3, '?');
                let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
                match encoding {
                    "b" | "B" => STANDARD
                        .decode(text)
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    _ => Some(decode_quoted_printable(&text.replace('_', " "))),
                }
            });
        let joined_to_previous = after_encoded && decoded.is_some();
        if !out.is_empty() && !joined_to_previous {
            out.push(' ');
        }
        after_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

/// Headers (unfolded, names lowercased) and body of a message or of one of its parts.
fn split_part(raw: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn parse_mail(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = split_part(&raw);
    let content_type = header(&headers, "content-type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a multipart mail")
        .trim_matches('"')
        .to_string();
    let mut mail = Mail {
        subject: decode_header(header(&headers, "subject")),
        text: String::new(),
        html: String::new(),
    };
    for part in body.split(&format!("--{boundary}")) {
        let (headers, body) = split_part(part.trim_start_matches('\n'));
        let decoded = match header(&headers, "content-transfer-encoding") {
            "quoted-printable" => decode_quoted_printable(&body),
            "base64" => String::from_utf8_lossy(
                &STANDARD
                    .decode(body.split_whitespace().collect::<String>())
                    .expect("base64 body"),
            )
            .into_owned(),
            _ => body,
        };
        let kind = header(&headers, "content-type");
        if kind.starts_with("text/plain") {
            mail.text = decoded;
        } else if kind.starts_with("text/html") {
            mail.html = decoded;
        }
    }
    mail
}

/// The mails written so far to `to`, oldest first, decoded.
fn mails_to(app: &TestApp, to: &str) -> Vec<Mail> {
    let Ok(dir) = std::fs::read_dir(&app.settings.mail.dir) else {
        return Vec::new();
    };
    let mut raw: Vec<(std::time::SystemTime, String)> = dir
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            text.contains(&format!("To: {to}"))
                .then_some((modified, text))
        })
        .collect();
    raw.sort();
    raw.iter().map(|(_, text)| parse_mail(text)).collect()
}

/// Waits (bounded) for a mail to `to` that contains `marker`.
async fn wait_for_mail(app: &TestApp, to: &str, marker: &str) -> Mail {
    for _ in 0..200 {
        if let Some(mail) = mails_to(app, to).into_iter().find(|m| m.contains(marker)) {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no mail to {to} with {marker:?}; arrived: {:#?}",
        mails_to(app, to)
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_card_pages_and_mails_read_in_english() {
    let app = spawn_app_with(crate::saved_cards::configure).await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    choose(&member, "en", "/basket").await;

    let basket = member.get("/basket").await;
    assert!(
        basket
            .body
            .contains("Save my card to pay my next dues automatically"),
        "{}",
        basket.body
    );
    assert!(
        basket
            .text_of("save-card-help")
            .is_some_and(|h| h.starts_with("Possible with Stripe, Stancer.")),
        "{}",
        basket.body
    );
    assert_english_page(&basket);

    // Stripe's emulated page says the card is kept, in English.
    let started = member
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30.00"),
                ("gateway", "stripe"),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let hosted = started.location.unwrap();
    let page = member.get(&hosted).await;
    assert!(
        page.text_of("sandbox-consent")
            .is_some_and(|c| c.starts_with("Card saved for future payments. By providing")),
        "{}",
        page.body
    );
    assert_eq!(page.text_of("sandbox-pay").as_deref(), Some("Pay €30.00"));
    assert_english_page(&page);
    let back = crate::contract::act(&member, &hosted, "pay").await;
    member.get_following(&back).await;
    let paid: String =
        sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'stripe' AND member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.wait_for_status(&paid, "paid").await;

    let basket = member.get("/basket").await;
    assert_eq!(
        basket.text_of("saved-card-title").as_deref(),
        Some("My saved card")
    );
    assert_eq!(
        basket.text_of("forget-card").as_deref(),
        Some("Withdraw this card")
    );
    assert!(
        basket.body.contains("with Stripe, saved on"),
        "{}",
        basket.body
    );
    assert_english_page(&basket);

    // A manager charges the card, the bank declines: both mails in English.
    let method: String = sqlx::query_scalar(
        "SELECT payment_method_id FROM saved_payment_methods WHERE member_id = $1",
    )
    .bind(&member_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let control = reqwest::Client::new()
        .post(format!("{}/sandbox/_control/stripe/{method}", app.address))
        .json(&serde_json::json!({ "status": "declined" }))
        .send()
        .await
        .unwrap();
    assert!(control.status().is_success());
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let amount = page
        .value_of("card-charge-amount")
        .expect("the charge form");
    let charged = manager
        .post_form(
            &format!("/admin/members/{member_id}/saved-card/charge"),
            &[
                ("amount", amount.as_str()),
                ("confirm", "yes"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(charged.status, 303, "{}", charged.body);

    let charge = wait_for_mail(&app, MEMBER.0, "charged to your card").await;
    assert_eq!(
        charge.subject,
        "Association de démonstration: €67.00 charged to your card"
    );
    for wanted in [
        "As you agreed, Association de démonstration is charging €67.00 today to your saved \
         card (Visa •••• 4242, with Stripe).",
        "For: what you owe, as asked by the association",
    ] {
        assert!(charge.text.contains(wanted), "{wanted}: {}", charge.text);
    }
    assert_english_mail(&charge);
    let failed = wait_for_mail(&app, MEMBER.0, "could not be charged").await;
    assert!(
        failed.text.contains(
            "Association de démonstration could not charge €67.00 to your saved card \
             (Visa •••• 4242): the payment was declined."
        ),
        "{}",
        failed.text
    );
    assert!(failed.html.contains("Pay this amount from your basket"));
    assert_english_mail(&failed);

    // Withdrawn: the flash says so in English.
    let basket = member.get("/basket").await;
    let card_id: String =
        sqlx::query_scalar("SELECT id FROM saved_payment_methods WHERE member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let forgotten = member
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &basket.csrf())],
        )
        .await;
    assert_eq!(forgotten.status, 303);
    let basket = member.get("/basket").await;
    assert!(
        basket.body.contains(
            "Your card Visa •••• 4242 is withdrawn: the association will no longer charge it. \
             Stripe has forgotten it too."
        ),
        "{}",
        basket.body
    );
    assert_english_page(&basket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_pages_read_in_english_and_in_french_by_default() {
    let app = spawn_app().await;

    // French by default.
    let visitor = app.browser();
    let forgot = visitor.get("/password/forgot").await;
    assert!(forgot.body.contains("Mot de passe oublié"));
    assert!(forgot.body.contains("<html lang=\"fr\">"));

    // A visitor who chose English: passwords and logging in.
    choose(&visitor, "en", "/password/forgot").await;
    let forgot = visitor.get("/password/forgot").await;
    assert!(
        forgot.body.contains("Forgotten password"),
        "{}",
        forgot.body
    );
    assert_english_page(&forgot);
    let refused = visitor
        .post_form(
            "/password/forgot",
            &[("email", "not an address"), ("csrf_token", &forgot.csrf())],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("forgot-error").as_deref(),
        Some("Type a valid email address.")
    );
    assert_english_page(&refused);
    let sent = visitor
        .post_form(
            "/password/forgot",
            &[
                ("email", "nobody@exemple.org"),
                ("csrf_token", &forgot.csrf()),
            ],
        )
        .await;
    assert_eq!(sent.location.as_deref(), Some("/login"));
    let login = visitor.get("/login").await;
    assert!(
        login.body.contains("If an account matches this address"),
        "{}",
        login.body
    );
    assert_english_page(&login);
    let dead = visitor.get("/password/set?token=made-up").await;
    assert_eq!(dead.status, 400);
    assert!(
        dead.text_of("link-error")
            .is_some_and(|e| e.starts_with("This link is not valid.")),
        "{}",
        dead.body
    );
    assert_english_page(&dead);
    let wrong = visitor.login(MEMBER.0, "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong email address or password."));
    assert_english_page(&wrong);

    // Logged in: the basket's refusals, the gateway's page, and logging out.
    assert_eq!(visitor.login(MEMBER.0, MEMBER.1).await.status, 303);
    let unknown = visitor.pay("12.50", "nowhere").await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .body
            .contains("Choose one of the payment methods offered."),
        "{}",
        unknown.body
    );
    assert_english_page(&unknown);
    let too_much = visitor.pay("5000", "sandbox").await;
    assert_eq!(too_much.status, 422);
    assert!(
        too_much
            .body
            .contains("The amount cannot be more than €1,000.00 in a single payment."),
        "{}",
        too_much.body
    );
    let (_, hosted) = visitor.start_payment(&app, "12.50").await;
    let page = visitor.get(&hosted).await;
    assert!(
        page.body.contains("Sandbox — test payment"),
        "{}",
        page.body
    );
    assert_eq!(page.text_of("sandbox-pay").as_deref(), Some("Pay €12.50"));
    assert_eq!(
        page.text_of("sandbox-refuse").as_deref(),
        Some("Refuse the payment")
    );
    assert_english_page(&page);
    let basket = visitor.get("/basket").await;
    assert_english_page(&basket);
    let out = visitor
        .post_form("/logout", &[("csrf_token", &basket.csrf())])
        .await;
    assert_eq!(out.status, 303);
    let login = visitor.get("/login").await;
    assert!(login.body.contains("You are logged out."), "{}", login.body);
    assert_english_page(&login);

    // Another member, another browser: the gateway's page in French.
    let louis = app.logged_in(MEMBER2).await;
    let (_, hosted) = louis.start_payment(&app, "10").await;
    let page = louis.get(&hosted).await;
    assert_eq!(
        page.text_of("sandbox-pay").as_deref(),
        Some("Payer 10,00 €")
    );
    assert!(page.body.contains("<html lang=\"fr\">"));
    // The markers the English pages are checked for are found on a French page.
    let markers = french_markers(&visible_text(&page.body));
    assert!(markers.contains(&"Payer".to_string()), "{markers:?}");
    assert!(markers.contains(&"é".to_string()), "{markers:?}");
}
