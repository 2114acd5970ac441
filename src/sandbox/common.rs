//! What every emulator shares: the hosted page a payer sees (in the language of the request,
//! as gateways' pages follow the payer's), the payer's actions, the test-control body, and
//! notification delivery with retries.

use std::time::Duration;

use actix_web::HttpResponse;
use askama::Template;
use serde::Deserialize;

use crate::domain::Money;

/// What the payer does on a hosted page: every emulator offers the same four buttons
/// (`name="action"`, values `pay`, `refuse`, `error`, `back`) so that tests drive them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayerAction {
    Pay,
    Refuse,
    Error,
    Back,
}

impl PayerAction {
    pub fn parse(value: &str) -> Option<PayerAction> {
        match value {
            "pay" => Some(PayerAction::Pay),
            "refuse" => Some(PayerAction::Refuse),
            "error" => Some(PayerAction::Error),
            "back" => Some(PayerAction::Back),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
pub struct HostedActionForm {
    pub action: String,
}

/// Test control of an emulated payment, as if the payer had acted at the gateway:
/// `POST /sandbox/_control/{gateway}/{gateway_ref}` with this JSON. `amount` overrides what
/// the gateway says was paid (to provoke a mismatch); `notify: false` loses the notification
/// (for the reconciliation sweep to find).
#[derive(Debug, Deserialize)]
pub struct ControlBody {
    /// `paid`, `refused`, `error`, `cancelled`, `expired`.
    pub status: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default = "yes")]
    pub notify: bool,
}

fn yes() -> bool {
    true
}

#[derive(Template)]
#[template(path = "sandbox/hosted.html")]
struct HostedPageView<'a> {
    lang: crate::i18n::Lang,
    gateway: &'a str,
    action_url: &'a str,
    amount: String,
    description: &'a str,
    reference: &'a str,
    open: bool,
    status: &'a str,
    /// Shown when the merchant keeps the card for later charges: what the payer agrees to.
    consent: Option<&'a str>,
}

pub struct HostedPage<'a> {
    /// The gateway being emulated, shown in the page's title.
    pub gateway: &'a str,
    /// Where the page's form posts the payer's action.
    pub action_url: &'a str,
    pub amount: Money,
    pub description: &'a str,
    pub reference: &'a str,
    /// Still waiting for the payer (the buttons are shown).
    pub open: bool,
    pub status: &'a str,
}

pub fn hosted_page(page: HostedPage<'_>) -> HttpResponse {
    render_hosted_page(page, None)
}

/// The hosted page of a payment that keeps the card, with the consent the gateway shows.
pub fn hosted_page_keeping_card(page: HostedPage<'_>, consent: &str) -> HttpResponse {
    render_hosted_page(page, Some(consent))
}

fn render_hosted_page(page: HostedPage<'_>, consent: Option<&str>) -> HttpResponse {
    let view = HostedPageView {
        lang: crate::i18n::current(),
        gateway: page.gateway,
        action_url: page.action_url,
        amount: page.amount.to_string(),
        description: page.description,
        reference: page.reference,
        open: page.open,
        status: page.status,
        consent,
    };
    match view.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "emulator page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub fn plain(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(message.to_string())
}

/// The payer's answer for a payment the emulator does not know.
pub fn unknown_payment(gateway: &str) -> HttpResponse {
    let message = crate::i18n::current().tf("sandbox.unknown_payment", &[("gateway", gateway)]);
    plain(actix_web::http::StatusCode::NOT_FOUND, &message)
}

/// The payer's answer for a button the page does not have.
pub fn unknown_action() -> HttpResponse {
    let message = crate::i18n::current().t("sandbox.unknown_action");
    plain(actix_web::http::StatusCode::BAD_REQUEST, message)
}

/// Why a payment already settled cannot be acted on.
pub fn already_finished() -> String {
    crate::i18n::current()
        .t("sandbox.already_finished")
        .to_string()
}

/// Appends query parameters to a URL that may already have some.
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (i, (k, v)) in params.iter().enumerate() {
        let sep = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&form_urlencoded_value(v));
    }
    out
}

fn form_urlencoded_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_string())
        .unwrap_or_default()
}

/// Hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Delivers a notification as a gateway does: POST, retried after each delay until a 2xx.
pub async fn deliver(
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    retry_ms: Vec<u64>,
) {
    for (attempt, delay) in retry_ms.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        let mut request = http.post(&url).body(body.clone());
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => tracing::warn!(
                attempt,
                status = %response.status(),
                %url,
                "emulated notification refused; will retry"
            ),
            Err(e) => {
                tracing::warn!(attempt, error = %e, %url, "emulated notification failed; will retry")
            }
        }
    }
    tracing::error!(%url, "emulator gave up notifying");
}
