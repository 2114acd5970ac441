//! The emulator of Mollie's Payments API v2 (`/sandbox/mollie/v2/...`): Bearer `test_`/`live_`
//! keys, JSON requests checked as Mollie checks them, HAL JSON answers and problem bodies,
//! `Idempotency-Key` replays, a hosted checkout (`/sandbox/mollie/checkout/{id}`) that returns
//! the payer to `redirectUrl` (or `cancelUrl`) with nothing appended, and the classic webhook:
//! an unsigned form POST `id=tr_…`, retried until the merchant answers 200.

mod checkout;
mod resources;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common;
use crate::config::Settings;
use crate::domain::Money;
use wire::Problem;

/// How long an emulated refund stays `pending` before it is `refunded` (real Mollie: hours).
const REFUND_SETTLES_AFTER: Duration = Duration::from_millis(200);

#[derive(Clone)]
struct EmulatedRefund {
    id: String,
    amount: Money,
    status: &'static str,
    description: String,
    created_at: String,
}

#[derive(Clone)]
struct EmulatedPayment {
    id: String,
    live: bool,
    status: &'static str,
    amount: Money,
    currency: String,
    description: String,
    metadata: Value,
    locale: Option<String>,
    redirect_url: String,
    cancel_url: Option<String>,
    webhook_url: Option<String>,
    created_at: String,
    expires_at: String,
    /// When the status left `open` (paidAt, failedAt, canceledAt or expiredAt).
    closed_at: Option<String>,
    refunds: Vec<EmulatedRefund>,
}

impl EmulatedPayment {
    fn refunded(&self) -> Money {
        self.refunds
            .iter()
            .filter(|r| !matches!(r.status, "failed" | "canceled"))
            .map(|r| r.amount)
            .sum()
    }
}

/// A remembered answer to an idempotent POST, and what it was for.
struct Remembered {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

pub struct Emulator {
    api_key: SecretString,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    payments: Mutex<HashMap<String, EmulatedPayment>>,
    idempotency: Mutex<HashMap<String, Remembered>>,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn in_minutes(minutes: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Mollie's ids: a prefix and ten letters or digits.
fn new_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &raw[..10])
}

/// What Mollie's card pricing would keep (0,25 € + 1,8 %): only for `settlementAmount`,
/// which Mollie itself calls an estimate.
fn estimated_fee(amount: Money) -> Money {
    Money::from_cents(25 + (amount.cents() * 18 + 500) / 1000)
}

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            api_key: settings.mollie.api_key.clone(),
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            payments: Mutex::new(HashMap::new()),
            idempotency: Mutex::new(HashMap::new()),
        }
    }

    fn payment(&self, id: &str) -> Option<EmulatedPayment> {
        self.payments.lock().ok()?.get(id).cloned()
    }

    fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut EmulatedPayment) -> Result<(), Problem>,
    ) -> Result<EmulatedPayment, Problem> {
        let mut payments = self
            .payments
            .lock()
            .map_err(|_| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        let payment = payments.get_mut(id).ok_or_else(|| not_found(id))?;
        change(payment)?;
        Ok(payment.clone())
    }

    /// Whether the key's payments are live (never here); None when Mollie would answer 401.
    fn authenticate(&self, request: &HttpRequest) -> Option<bool> {
        let given = request
            .headers()
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let expected = self.api_key.expose_secret();
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return None;
        }
        // An emulator moves no money: it plays Mollie's test mode only, so that a live key
        // pointed at it by mistake never books fake money as real.
        given.starts_with("test_").then_some(false)
    }

    /// The classic webhook: the payment's id only, form-encoded, unsigned.
    fn notify(self: &Arc<Self>, payment: &EmulatedPayment) {
        let Some(url) = payment.webhook_url.clone() else {
            return;
        };
        let Ok(body) = serde_urlencoded::to_string([("id", payment.id.as_str())]) else {
            return;
        };
        tokio::spawn(common::deliver(
            self.http.clone(),
            url,
            vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body.into_bytes(),
            self.retry_ms.clone(),
        ));
    }

    /// The answer given before to this key, if the request is the same; a different request
    /// under a used key is refused.
    fn replay(&self, key: &Option<String>, fingerprint: &str) -> Option<HttpResponse> {
        let key = key.as_ref()?;
        let keys = self.idempotency.lock().ok()?;
        let known = keys.get(key)?;
        if known.fingerprint != fingerprint {
            return Some(
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "The Idempotency-Key was already used for a different request",
                )
                .response(),
            );
        }
        Some(
            HttpResponse::build(known.status)
                .content_type("application/hal+json")
                .insert_header(("Idempotent-Replayed", "true"))
                .body(known.body.to_string()),
        )
    }

    fn remember(&self, key: Option<String>, fingerprint: String, status: StatusCode, body: &Value) {
        if let (Some(key), Ok(mut keys)) = (key, self.idempotency.lock()) {
            keys.insert(
                key,
                Remembered {
                    fingerprint,
                    status,
                    body: body.clone(),
                },
            );
        }
    }
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("No payment exists with token {id}."),
    )
}

fn unauthorized() -> HttpResponse {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "Missing authentication, or failed to authenticate",
    )
    .response()
}

fn hal(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/hal+json")
        .body(body.to_string())
}

fn idempotency_key(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn fingerprint(request: &HttpRequest, body: &[u8]) -> String {
    format!(
        "{} {} {}",
        request.method(),
        request.path(),
        String::from_utf8_lossy(body)
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/mollie/v2/payments",
        web::post().to(api_create_payment),
    )
    .route(
        "/sandbox/mollie/v2/payments/{id}",
        web::get().to(api_get_payment),
    )
    .route(
        "/sandbox/mollie/v2/payments/{id}",
        web::delete().to(api_cancel_payment),
    )
    .route(
        "/sandbox/mollie/v2/payments/{id}/refunds",
        web::post().to(api_create_refund),
    )
    .route(
        "/sandbox/mollie/v2/payments/{id}/refunds",
        web::get().to(api_list_refunds),
    )
    .route(
        "/sandbox/mollie/v2/methods",
        web::get().to(api_list_methods),
    )
    .route(
        "/sandbox/mollie/checkout/{id}",
        web::get().to(checkout::hosted),
    )
    .route(
        "/sandbox/mollie/checkout/{id}",
        web::post().to(checkout::hosted_action),
    )
    .route(
        "/sandbox/_control/mollie/{id}",
        web::post().to(checkout::control),
    );
}

async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(live) = emulator.authenticate(&request) else {
        return unauthorized();
    };
    let key = idempotency_key(&request);
    let print = fingerprint(&request, &body);
    if let Some(answer) = emulator.replay(&key, &print) {
        return answer;
    }
    let wanted = match wire::payment_request(&body) {
        Ok(wanted) => wanted,
        Err(problem) => return problem.response(),
    };
    let payment = EmulatedPayment {
        id: new_id("tr_"),
        live,
        status: "open",
        amount: wanted.amount,
        currency: wanted.currency,
        description: wanted.description,
        metadata: wanted.metadata,
        locale: wanted.locale,
        redirect_url: wanted.redirect_url,
        cancel_url: wanted.cancel_url,
        webhook_url: wanted.webhook_url,
        created_at: now(),
        expires_at: in_minutes(30),
        closed_at: None,
        refunds: Vec::new(),
    };
    if let Ok(mut payments) = emulator.payments.lock() {
        payments.insert(payment.id.clone(), payment.clone());
    }
    let answer = emulator.payment_json(&payment, false);
    emulator.remember(key, print, StatusCode::CREATED, &answer);
    hal(StatusCode::CREATED, &answer)
}

#[derive(Deserialize)]
struct PaymentQuery {
    #[serde(default)]
    embed: Option<String>,
}

/// A payment made with the other mode's key does not exist for this one.
fn visible(emulator: &Emulator, id: &str, live: bool) -> Result<EmulatedPayment, Problem> {
    emulator
        .payment(id)
        .filter(|p| p.live == live)
        .ok_or_else(|| not_found(id))
}

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    query: web::Query<PaymentQuery>,
) -> HttpResponse {
    let Some(live) = emulator.authenticate(&request) else {
        return unauthorized();
    };
    let mut embed_refunds = false;
    for embed in query.embed.iter().flat_map(|e| e.split(',')) {
        match embed {
            "refunds" => embed_refunds = true,
            "chargebacks" | "captures" => {}
            other => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid embed value \"{other}\""),
                )
                .response();
            }
        }
    }
    match visible(&emulator, &id, live) {
        Ok(payment) => hal(
            StatusCode::OK,
            &emulator.payment_json(&payment, embed_refunds),
        ),
        Err(problem) => problem.response(),
    }
}

async fn api_cancel_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(live) = emulator.authenticate(&request) else {
        return unauthorized();
    };
    if let Err(problem) = visible(&emulator, &id, live) {
        return problem.response();
    }
    let result = emulator.update(&id, |p| {
        if p.status != "open" {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The payment cannot be canceled: its status is {}", p.status),
            ));
        }
        p.status = "canceled";
        p.closed_at = Some(now());
        Ok(())
    });
    match result {
        Ok(payment) => hal(StatusCode::OK, &emulator.payment_json(&payment, false)),
        Err(problem) => problem.response(),
    }
}

async fn api_create_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(live) = emulator.authenticate(&request) else {
        return unauthorized();
    };
    let key = idempotency_key(&request);
    let print = fingerprint(&request, &body);
    if let Some(answer) = emulator.replay(&key, &print) {
        return answer;
    }
    if let Err(problem) = visible(&emulator, &id, live) {
        return problem.response();
    }
    let wanted = match wire::refund_request(&body) {
        Ok(wanted) => wanted,
        Err(problem) => return problem.response(),
    };
    let refund_id = new_id("re_");
    let result = emulator.update(&id, |p| {
        if p.status != "paid" {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The payment cannot be refunded: it has not been paid",
            ));
        }
        if wanted.currency != p.currency {
            return Err(Problem::unprocessable(
                "The refund must be in the payment's currency",
                "amount.currency",
            ));
        }
        let remaining = p.amount - p.refunded();
        if wanted.amount > remaining {
            return Err(Problem::unprocessable(
                format!(
                    "The amount is higher than the amount that can be refunded ({})",
                    remaining.to_decimal_string()
                ),
                "amount",
            ));
        }
        p.refunds.push(EmulatedRefund {
            id: refund_id.clone(),
            amount: wanted.amount,
            status: "pending",
            description: wanted.description.clone(),
            created_at: now(),
        });
        Ok(())
    });
    let payment = match result {
        Ok(payment) => payment,
        Err(problem) => return problem.response(),
    };
    let Some(refund) = payment.refunds.iter().find(|r| r.id == refund_id) else {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "refund lost").response();
    };
    let answer = emulator.refund_json(&payment, refund);
    emulator.remember(key, print, StatusCode::CREATED, &answer);
    let emulator = emulator.into_inner();
    tokio::spawn(async move {
        tokio::time::sleep(REFUND_SETTLES_AFTER).await;
        let settled = emulator.update(&payment.id, |p| {
            if let Some(r) = p.refunds.iter_mut().find(|r| r.id == refund_id) {
                r.status = "refunded";
            }
            Ok(())
        });
        if let Ok(payment) = settled {
            emulator.notify(&payment);
        }
    });
    hal(StatusCode::CREATED, &answer)
}

/// `GET /v2/methods`: the payment methods the website profile has activated (the emulator's
/// hosted page plays a card payment).
async fn api_list_methods(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    if emulator.authenticate(&request).is_none() {
        return unauthorized();
    }
    let base = &emulator.public_base;
    hal(
        StatusCode::OK,
        &json!({
            "count": 1,
            "_embedded": { "methods": [{
                "resource": "method",
                "id": "creditcard",
                "description": "Carte bancaire",
                "minimumAmount": { "value": "0.01", "currency": "EUR" },
                "maximumAmount": null,
                "image": {
                    "size1x": format!("{base}/sandbox/mollie/creditcard.png"),
                    "size2x": format!("{base}/sandbox/mollie/creditcard%402x.png"),
                    "svg": format!("{base}/sandbox/mollie/creditcard.svg"),
                },
                "status": "activated",
                "_links": { "self": {
                    "href": format!("{base}/sandbox/mollie/v2/methods/creditcard"),
                    "type": "application/hal+json",
                } },
            }] },
            "_links": {
                "self": {
                    "href": format!("{base}/sandbox/mollie/v2/methods"),
                    "type": "application/hal+json",
                },
                "documentation": {
                    "href": "https://docs.mollie.com/reference/list-methods",
                    "type": "text/html",
                },
            },
        }),
    )
}

async fn api_list_refunds(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(live) = emulator.authenticate(&request) else {
        return unauthorized();
    };
    match visible(&emulator, &id, live) {
        Ok(payment) => {
            let refunds: Vec<Value> = payment
                .refunds
                .iter()
                .map(|r| emulator.refund_json(&payment, r))
                .collect();
            hal(
                StatusCode::OK,
                &json!({"count": refunds.len(), "_embedded": {"refunds": refunds}}),
            )
        }
        Err(problem) => problem.response(),
    }
}
