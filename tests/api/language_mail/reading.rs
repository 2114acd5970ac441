//! Reading what a member reads: the mails obole wrote (subject and both bodies, decoded) and
//! what still reads French in a text that should be English.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::helpers::{Page, TestApp};

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

/// What still reads French in `text` once the demo's data is taken out.
pub(super) fn french_markers(text: &str) -> Vec<String> {
    crate::english::french_left(text, SEEDED)
}

pub(super) use crate::english::visible_text;

/// Every text node of a page or an HTML mail, code samples included (what a reader can see).
pub(crate) fn all_text(html: &str) -> String {
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

pub(super) fn assert_english_page(page: &Page) {
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

pub(super) fn assert_english_mail(mail: &Mail) {
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
pub(crate) struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn contains(&self, wanted: &str) -> bool {
        self.subject.contains(wanted) || self.text.contains(wanted) || self.html.contains(wanted)
    }
}

/// Quoted-printable text decoded (soft line breaks joined, `=XX` bytes restored).
pub(crate) fn decode_quoted_printable(body: &str) -> String {
    let unwrapped = body.replace("=\r\n", "").replace("=\n", "");
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
pub(crate) fn mails_to(app: &TestApp, to: &str) -> Vec<Mail> {
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
pub(crate) async fn wait_for_mail(app: &TestApp, to: &str, marker: &str) -> Mail {
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
