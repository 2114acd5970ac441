//! The emulator of the sandbox gateway: a small payment API (`/sandbox/api/v1/...`, Bearer
//! key, JSON, Stripe-like errors), a hosted payment page (`/sandbox/pay/{id}`), refunds,
//! cancellation, and server-to-server notifications signed with HMAC-SHA256 over the raw
//! body (`X-Sandbox-Signature: sha256=<hex>`), retried until the merchant answers 2xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use crate::config::SandboxSettings;
use crate::domain::Money;

#[derive(Clone, Serialize)]
struct EmulatedRefund {
    id: String,
    object: &'static str,
    payment: String,
    amount: i64,
    status: &'static str,
}

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
    refunds: Vec<EmulatedRefund>,
    #[serde(skip)]
    return_url: String,
    #[serde(skip)]
    cancel_url: Option<String>,
    #[serde(skip)]
    error_url: Option<String>,
    #[serde(skip)]
    notification_url: String,
    /// How many times the merchant asked about the payment through the API (for tests of
    /// the sweep: several processes must not all ask).
    #[serde(skip)]
    fetches: u64,
}

pub struct Emulator {
    api_key: SecretString,
    webhook_secret: SecretString,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    payments: Mutex<HashMap<String, EmulatedPayment>>,
    idempotency: Mutex<HashMap<String, serde_json::Value>>,
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

    /// Applies `change` to the payment and returns it as it now is.
    fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut EmulatedPayment) -> Result<(), (StatusCode, String)>,
    ) -> Result<EmulatedPayment, (StatusCode, String)> {
        let mut payments = self
            .payments
            .lock()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "lock".to_string()))?;
        let payment = payments
            .get_mut(id)
            .ok_or((StatusCode::NOT_FOUND, "No such payment".to_string()))?;
        change(payment)?;
        Ok(payment.clone())
    }

    /// Sends the signed notification of the payment's current state, in the background.
    fn notify(self: &Arc<Self>, payment: &EmulatedPayment, kind: &str) {
        let event = serde_json::json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "type": format!("payment.{kind}"),
            "created": time::OffsetDateTime::now_utc().unix_timestamp(),
            "data": payment,
        });
        let Ok(body) = serde_json::to_vec(&event) else {
            return;
        };
        let signature = sign(self.webhook_secret.expose_secret(), &body);
        tokio::spawn(common::deliver(
            self.http.clone(),
            payment.notification_url.clone(),
            vec![
                ("Content-Type".into(), "application/json".into()),
                (crate::gateways::sandbox::SIGNATURE_HEADER.into(), signature),
            ],
            body,
            self.retry_ms.clone(),
        ));
    }
}

/// The signature the sandbox puts on a notification body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        common::hmac_sha256_hex(secret.as_bytes(), body)
    )
}

/// The sandbox's fees on a successful payment: 1.4 % + 0.25 €, rounded to the cent.
fn fee_for(amount: i64) -> i64 {
    (amount * 14 + 500) / 1000 + 25
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/api/v1/payments",
        web::post().to(api_create_payment),
    )
    .route(
        "/sandbox/api/v1/payments/{id}",
        web::get().to(api_get_payment),
    )
    .route(
        "/sandbox/api/v1/payments/{id}/cancel",
        web::post().to(api_cancel_payment),
    )
    .route("/sandbox/api/v1/refunds", web::post().to(api_create_refund))
    .route("/sandbox/api/v1/account", web::get().to(api_account))
    .route("/sandbox/pay/{id}", web::get().to(hosted))
    .route("/sandbox/pay/{id}", web::post().to(hosted_action))
    .route("/sandbox/_control/sandbox/{id}", web::post().to(control))
    .route(
        "/sandbox/_control/sandbox/{id}",
        web::get().to(control_look),
    );
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .json(serde_json::json!({ "error": { "type": kind, "message": message } }))
}

fn invalid(message: &str) -> HttpResponse {
    api_error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
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

/// The account the key belongs to: what a connection test asks for.
async fn api_account(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return unauthorized();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "object": "account",
        "id": "acct_sandbox",
        "livemode": false,
    }))
}

fn unauthorized() -> HttpResponse {
    api_error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "Invalid API key provided",
    )
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
    #[serde(default)]
    error_url: Option<String>,
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
        ("error_url", body.error_url.as_ref()),
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

fn idempotency_key(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The answer already given to this idempotency key, if any.
fn replay(emulator: &Emulator, key: &Option<String>) -> Option<HttpResponse> {
    let key = key.as_ref()?;
    let known = emulator.idempotency.lock().ok()?.get(key).cloned()?;
    Some(HttpResponse::Ok().json(known))
}

fn remember(emulator: &Emulator, key: Option<String>, answer: &impl Serialize) {
    if let (Some(key), Ok(mut keys), Ok(value)) = (
        key,
        emulator.idempotency.lock(),
        serde_json::to_value(answer),
    ) {
        keys.insert(key, value);
    }
}

async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return unauthorized();
    }
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return invalid(&format!("invalid body: {e}")),
    };
    if let Err(message) = validate(&body) {
        return invalid(&message);
    }
    let key = idempotency_key(&request);
    if let Some(answer) = replay(&emulator, &key) {
        return answer;
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
        refunds: Vec::new(),
        return_url: body.return_url,
        cancel_url: body.cancel_url,
        error_url: body.error_url,
        notification_url: body.notification_url,
        fetches: 0,
    };
    if let Ok(mut payments) = emulator.payments.lock() {
        payments.insert(id, payment.clone());
    }
    remember(&emulator, key, &payment);
    HttpResponse::Created().json(payment)
}

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return unauthorized();
    }
    match emulator.update(&id, |p| {
        p.fetches += 1;
        Ok(())
    }) {
        Ok(payment) => HttpResponse::Ok().json(payment),
        Err(_) => api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "No such payment",
        ),
    }
}

async fn api_cancel_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return unauthorized();
    }
    let result = emulator.update(&id, |p| {
        if p.status != "open" {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("a {} payment cannot be cancelled", p.status),
            ));
        }
        p.status = "cancelled";
        Ok(())
    });
    match result {
        Ok(payment) => HttpResponse::Ok().json(payment),
        Err((status, message)) => api_error(status, "invalid_request_error", &message),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    payment: String,
    amount: i64,
}

async fn api_create_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !authorized(&emulator, &request) {
        return unauthorized();
    }
    let body: RefundBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return invalid(&format!("invalid body: {e}")),
    };
    let key = idempotency_key(&request);
    if let Some(answer) = replay(&emulator, &key) {
        return answer;
    }
    let refund_id = format!("sbx_re_{}", uuid::Uuid::new_v4().simple());
    let result = emulator.update(&body.payment, |p| {
        let refunded: i64 = p.refunds.iter().map(|r| r.amount).sum();
        if p.status != "succeeded" {
            return Err((
                StatusCode::BAD_REQUEST,
                "only a succeeded payment can be refunded".into(),
            ));
        }
        if body.amount < 1 || refunded + body.amount > p.amount {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("amount must be between 1 and {}", p.amount - refunded),
            ));
        }
        p.refunds.push(EmulatedRefund {
            id: refund_id.clone(),
            object: "refund",
            payment: p.id.clone(),
            amount: body.amount,
            status: "succeeded",
        });
        Ok(())
    });
    match result {
        Ok(payment) => {
            let refund = payment.refunds.iter().find(|r| r.id == refund_id).cloned();
            remember(&emulator, key, &refund);
            emulator.into_inner().notify(&payment, "refunded");
            HttpResponse::Ok().json(refund)
        }
        Err((status, message)) => api_error(status, "invalid_request_error", &message),
    }
}

async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(payment) = emulator.payment(&id) else {
        return common::unknown_payment("sandbox");
    };
    common::hosted_page(HostedPage {
        gateway: "Sandbox",
        action_url: &format!("/sandbox/pay/{}", payment.id),
        amount: Money::from_cents(payment.amount),
        description: &payment.description,
        reference: &payment.reference,
        open: payment.status == "open",
        status: payment.status,
    })
}

/// Settles an open payment as the payer or the test control says.
fn settle(
    emulator: &Emulator,
    id: &str,
    status: &'static str,
    paid_amount: Option<i64>,
) -> Result<EmulatedPayment, (StatusCode, String)> {
    emulator.update(id, |p| {
        if p.status != "open" {
            return Err((StatusCode::CONFLICT, common::already_finished()));
        }
        p.status = status;
        if let Some(amount) = paid_amount {
            p.amount = amount;
        }
        if status == "succeeded" {
            p.fee = Some(fee_for(p.amount));
        }
        Ok(())
    })
}

async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let status = match action {
        PayerAction::Pay => "succeeded",
        PayerAction::Refuse => "refused",
        PayerAction::Error => "error",
        PayerAction::Back => "cancelled",
    };
    let payment = match settle(&emulator, &id, status, None) {
        Ok(payment) => payment,
        Err((code, message)) => return common::plain(code, &message),
    };
    let back = match action {
        PayerAction::Back => payment.cancel_url.clone(),
        PayerAction::Error => payment.error_url.clone(),
        _ => None,
    }
    .unwrap_or_else(|| payment.return_url.clone());
    let location = common::with_query(
        &back,
        &[("sandbox_payment", &payment.id), ("status", payment.status)],
    );
    emulator.into_inner().notify(&payment, status);
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let status = match body.status.as_str() {
        "paid" => "succeeded",
        "refused" => "refused",
        "error" => "error",
        "cancelled" => "cancelled",
        "expired" => "expired",
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match settle(&emulator, &id, status, body.amount) {
        Ok(payment) => {
            if body.notify {
                emulator.into_inner().notify(&payment, status);
            }
            HttpResponse::Ok().json(payment)
        }
        Err((code, message)) => common::plain(code, &message),
    }
}

/// Test control: what the emulator knows of a payment, with how often it was fetched.
async fn control_look(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    match emulator.payment(&id) {
        Some(payment) => HttpResponse::Ok().json(serde_json::json!({
            "id": payment.id,
            "status": payment.status,
            "fetches": payment.fetches,
        })),
        None => common::plain(StatusCode::NOT_FOUND, "unknown payment"),
    }
}
