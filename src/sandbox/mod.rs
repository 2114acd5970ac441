//! Emulators of payment gateways, served by the same binary for the demo and the tests.
//!
//! The sandbox gateway: a small payment API (`/sandbox/api/v1/payments`, Bearer key, JSON,
//! Stripe-like errors), a hosted payment page (`/sandbox/pay/{id}`) with buttons to pay,
//! refuse, cause an error or go back, and server-to-server notifications signed with
//! HMAC-SHA256 over the raw body, retried until the merchant answers 2xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::SandboxSettings;
use crate::domain::Money;

#[derive(Clone, Serialize)]
struct EmulatedPayment {
    id: String,
    object: &'static str,
    status: &'static str,
    amount: i64,
    currency: String,
    reference: String,
    description: String,
    fee: Option<i64>,
    livemode: bool,
    hosted_url: String,
    created: i64,
    #[serde(skip)]
    return_url: String,
    #[serde(skip)]
    notification_url: String,
}

pub struct Emulator {
    api_key: SecretString,
    webhook_secret: SecretString,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    payments: Mutex<HashMap<String, EmulatedPayment>>,
    idempotency: Mutex<HashMap<String, String>>,
}

impl Emulator {
    pub fn new(settings: &SandboxSettings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            api_key: settings.api_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.notify_retry_ms.clone(),
            http,
            payments: Mutex::new(HashMap::new()),
            idempotency: Mutex::new(HashMap::new()),
        }
    }

    fn payment(&self, id: &str) -> Option<EmulatedPayment> {
        self.payments.lock().ok()?.get(id).cloned()
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/sandbox")
            .route("/api/v1/payments", web::post().to(api_create_payment))
            .route("/api/v1/payments/{id}", web::get().to(api_get_payment))
            .route("/pay/{id}", web::get().to(hosted_page))
            .route("/pay/{id}", web::post().to(hosted_action)),
    );
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .json(serde_json::json!({ "error": { "type": kind, "message": message } }))
}

fn authorized(emulator: &Emulator, request: &HttpRequest) -> bool {
    let expected = format!("Bearer {}", emulator.api_key.expose_secret());
    request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| {
            given.len() == expected.len()
                && given
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    amount: i64,
    currency: String,
    reference: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    customer_email: Option<String>,
    return_url: String,
    #[serde(default)]
    cancel_url: Option<String>,
    notification_url: String,
}

fn is_absolute_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn validate(body: &CreateBody) -> Result<(), String> {
    if !(1..=100_000_000).contains(&body.amount) {
        return Err("amount must be an integer number of cents between 1 and 100000000".into());
    }
    if body.currency != "EUR" {
        return Err("currency must be EUR".into());
    }
    if body.reference.is_empty() || body.reference.len() > 64 {
        return Err("reference must have 1 to 64 characters".into());
    }
    if let Some(email) = &body.customer_email
        && (email.len() > 254 || !email.contains('@'))
    {
        return Err("customer_email must be an email address".into());
    }
    if body.description.chars().count() > 255 {
        return Err("description must have at most 255 characters".into());
    }
    for (name, url) in [
        ("return_url", Some(&body.return_url)),
        ("cancel_url", body.cancel_url.as_ref()),
        ("notification_url", Some(&body.notification_url)),
    ] {
        if let Some(url) = url
            && !is_absolute_http_url(url)
        {
            return Err(format!("{name} must be an absolute http(s) URL"));
        }
    }
    Ok(())
}

async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Invalid API key provided",
        );
    }
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("invalid body: {e}"),
            );
        }
    };
    if let Err(message) = validate(&body) {
        return api_error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
    }
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(key) = &idempotency_key {
        let known = emulator
            .idempotency
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned());
        if let Some(payment) = known.and_then(|id| emulator.payment(&id)) {
            return HttpResponse::Ok().json(payment);
        }
    }
    let id = format!("sbx_pay_{}", uuid::Uuid::new_v4().simple());
    let payment = EmulatedPayment {
        hosted_url: format!("{}/sandbox/pay/{id}", emulator.public_base),
        id: id.clone(),
        object: "payment",
        status: "open",
        amount: body.amount,
        currency: body.currency,
        reference: body.reference,
        description: body.description,
        fee: None,
        livemode: false,
        created: time::OffsetDateTime::now_utc().unix_timestamp(),
        return_url: body.return_url,
        notification_url: body.notification_url,
    };
    if let Ok(mut payments) = emulator.payments.lock() {
        payments.insert(id.clone(), payment.clone());
    }
    if let (Some(key), Ok(mut keys)) = (idempotency_key, emulator.idempotency.lock()) {
        keys.insert(key, id);
    }
    HttpResponse::Created().json(payment)
}

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Invalid API key provided",
        );
    }
    match emulator.payment(&id) {
        Some(payment) => HttpResponse::Ok().json(payment),
        None => api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "No such payment",
        ),
    }
}

#[derive(Template)]
#[template(path = "sandbox/hosted.html")]
struct HostedPageView {
    id: String,
    amount: String,
    description: String,
    reference: String,
    open: bool,
    status: &'static str,
}

async fn hosted_page(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(payment) = emulator.payment(&id) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Paiement sandbox inconnu.");
    };
    let view = HostedPageView {
        amount: Money::from_cents(payment.amount).to_string(),
        open: payment.status == "open",
        status: payment.status,
        id: payment.id,
        description: payment.description,
        reference: payment.reference,
    };
    match view.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "sandbox page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[derive(Deserialize)]
struct HostedAction {
    action: String,
}

/// What the payer did on the hosted page; the sandbox's fees on success are 1.4 % + 0.25 €.
async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedAction>,
) -> HttpResponse {
    let status = match form.action.as_str() {
        "pay" => "succeeded",
        "refuse" => "refused",
        "error" => "error",
        "back" => "cancelled",
        _ => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("Action inconnue.");
        }
    };
    let updated = {
        let Ok(mut payments) = emulator.payments.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        let Some(payment) = payments.get_mut(id.as_str()) else {
            return HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("Paiement sandbox inconnu.");
        };
        if payment.status != "open" {
            return HttpResponse::Conflict()
                .content_type("text/plain; charset=utf-8")
                .body("Ce paiement est déjà terminé.");
        }
        payment.status = status;
        if status == "succeeded" {
            payment.fee = Some((payment.amount * 14 + 500) / 1000 + 25);
        }
        payment.clone()
    };
    let emulator = emulator.into_inner();
    let back = updated.return_url.clone();
    let separator = if back.contains('?') { '&' } else { '?' };
    let location = format!(
        "{back}{separator}sandbox_payment={}&status={}",
        updated.id, updated.status
    );
    tokio::spawn(notify(emulator, updated));
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

#[derive(Serialize)]
struct Event<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: &'a EmulatedPayment,
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends the notification, retrying with the configured delays until a 2xx answer.
async fn notify(emulator: Arc<Emulator>, payment: EmulatedPayment) {
    let event = Event {
        id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
        kind: format!("payment.{}", payment.status),
        created: time::OffsetDateTime::now_utc().unix_timestamp(),
        data: &payment,
    };
    let Ok(body) = serde_json::to_vec(&event) else {
        return;
    };
    let signature = sign(emulator.webhook_secret.expose_secret(), &body);
    for (attempt, delay) in emulator.retry_ms.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        let result = emulator
            .http
            .post(&payment.notification_url)
            .header("Content-Type", "application/json")
            .header(crate::gateways::sandbox::SIGNATURE_HEADER, &signature)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => tracing::warn!(
                attempt,
                status = %response.status(),
                "sandbox notification refused; will retry"
            ),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "sandbox notification failed; will retry")
            }
        }
    }
    tracing::error!(payment = %payment.id, "sandbox gave up notifying");
}
