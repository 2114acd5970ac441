//! The emulator of Stancer's API v2 (`/sandbox/stancer/v2/...`): HTTP Basic with the secret
//! key as user (`stest_` only), JSON bodies checked as Stancer checks them, its error body,
//! payment intents with a hosted page (`/sandbox/stancer/page/{id}`) that sends the payer back
//! to `return_url` with nothing appended, payments and refunds. Stancer documents no
//! notification; the emulator plays a merchant who set a webhook address in Stancer's
//! dashboard (a feature seen only outside the documentation): after the payer acts, a bare
//! `{"id": "pi_…"}` goes to obole's `/webhooks/stancer`, carrying no claim obole could believe.
//! Customers, the cards kept for them and payments on those cards are in `saved`.

mod page;
mod saved;
mod wire;

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::common;
use crate::config::Settings;
use wire::{MINIMUM_CENTS, Refusal};

#[derive(Clone)]
struct EmulatedIntent {
    id: String,
    status: &'static str,
    amount: i64,
    currency: String,
    description: Option<String>,
    order_id: Option<String>,
    return_url: String,
    capture: bool,
    methods_allowed: Vec<String>,
    metadata: Value,
    payment: Option<String>,
    created: i64,
    customer: Option<String>,
    card: Option<String>,
}

#[derive(Clone)]
struct EmulatedRefund {
    id: String,
    amount: i64,
    status: &'static str,
    created: i64,
}

#[derive(Clone)]
struct EmulatedPayment {
    id: String,
    status: &'static str,
    /// The bank's answer (`00` approved).
    response: &'static str,
    amount: i64,
    currency: String,
    description: Option<String>,
    order_id: Option<String>,
    created: i64,
    refunds: Vec<EmulatedRefund>,
    /// A payment on a kept card: its card, customer and unicity key.
    card: Option<String>,
    customer: Option<String>,
    unique_id: Option<String>,
}

impl EmulatedPayment {
    fn refundable(&self) -> i64 {
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|r| !matches!(r.status, "not_honored" | "failed"))
            .map(|r| r.amount)
            .sum();
        self.amount - refunded
    }
}

#[derive(Default)]
struct State {
    intents: HashMap<String, EmulatedIntent>,
    payments: HashMap<String, EmulatedPayment>,
    customers: HashMap<String, Value>,
    cards: HashMap<String, saved::EmulatedCard>,
}

pub struct Emulator {
    secret_key: SecretString,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    state: Mutex<State>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Stancer's ids: a prefix and 24 letters or digits.
fn new_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &raw[..24])
}

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            secret_key: settings.stancer.secret_key.clone(),
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            state: Mutex::new(State::default()),
        }
    }

    /// A hint that the intent changed: its id only, retried until the merchant answers 2xx.
    fn notify(&self, intent_id: &str) {
        tokio::spawn(common::deliver(
            self.http.clone(),
            format!("{}/webhooks/stancer", self.public_base),
            vec![("Content-Type".into(), "application/json".into())],
            json!({ "id": intent_id }).to_string().into_bytes(),
            self.retry_ms.clone(),
        ));
    }

    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        let mut state = self.state.lock().map_err(|_| Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: Value::String("Internal error".into()),
            kind: "api_error",
        })?;
        f(&mut state)
    }

    /// HTTP Basic, the secret key as user. An emulator moves no money: it plays Stancer's test
    /// mode only, so a live key pointed at it by mistake is refused like a wrong key.
    fn authenticate(&self, request: &HttpRequest) -> Result<(), Refusal> {
        let user = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(user, _)| user.to_string()))
            .ok_or_else(Refusal::unauthorized)?;
        let expected = self.secret_key.expose_secret();
        let same = user.len() == expected.len()
            && user
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same && user.starts_with("stest_") {
            Ok(())
        } else {
            Err(Refusal::unauthorized())
        }
    }

    fn page_url(&self, id: &str) -> String {
        format!("{}/sandbox/stancer/page/{id}", self.public_base)
    }

    fn intent_json(&self, i: &EmulatedIntent) -> Value {
        json!({
            "id": i.id,
            "amount": i.amount,
            "currency": i.currency,
            "description": i.description,
            "order_id": i.order_id,
            "return_url": i.return_url,
            "capture": i.capture,
            "methods_allowed": i.methods_allowed,
            "metadata": i.metadata,
            "status": i.status,
            "url": self.page_url(&i.id),
            "payment": i.payment,
            "card": i.card,
            "customer": i.customer,
            "created": i.created,
            "live_mode": false,
        })
    }
}

fn payment_json(p: &EmulatedPayment) -> Value {
    json!({
        "id": p.id,
        "amount": p.amount,
        "currency": p.currency,
        "description": p.description,
        "order_id": p.order_id,
        "unique_id": p.unique_id,
        "card": p.card,
        "customer": p.customer,
        "method": "card",
        "status": p.status,
        "response": p.response,
        "capture": true,
        "created": p.created,
        "live_mode": false,
        "refunds": p.refunds.iter().map(|r| refund_json(p, r)).collect::<Vec<_>>(),
    })
}

fn refund_json(p: &EmulatedPayment, r: &EmulatedRefund) -> Value {
    json!({
        "id": r.id,
        "payment": p.id,
        "amount": r.amount,
        "currency": p.currency,
        "status": r.status,
        "created": r.created,
        "live_mode": false,
    })
}

fn ok(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn answer(result: Result<(StatusCode, Value), Refusal>) -> HttpResponse {
    match result {
        Ok((status, body)) => ok(status, body),
        Err(refusal) => refusal.response(),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/stancer/v2/payment_intents/",
        web::post().to(api_create_intent),
    )
    .route(
        "/sandbox/stancer/v2/payment_intents/{id}",
        web::get().to(api_get_intent),
    )
    .route(
        "/sandbox/stancer/v2/payments/{id}",
        web::get().to(api_get_payment),
    )
    .route(
        "/sandbox/stancer/v1/checkout/",
        web::get().to(api_list_payments),
    )
    .route(
        "/sandbox/stancer/v2/refunds/",
        web::post().to(api_create_refund),
    )
    .route(
        "/sandbox/stancer/v2/refunds/{id}",
        web::get().to(api_get_refund),
    )
    .route(
        "/sandbox/stancer/v2/customers/",
        web::post().to(saved::api_create_customer),
    )
    .route(
        "/sandbox/stancer/v2/customers/{id}",
        web::get().to(saved::api_get_customer),
    )
    .route(
        "/sandbox/stancer/v2/cards/{id}",
        web::get().to(saved::api_get_card),
    )
    .route(
        "/sandbox/stancer/v2/payments/",
        web::post().to(saved::api_create_payment),
    )
    .route("/sandbox/stancer/page/{id}", web::get().to(page::hosted))
    .route(
        "/sandbox/stancer/page/{id}",
        web::post().to(page::hosted_action),
    )
    .route(
        "/sandbox/_control/stancer/{id}",
        web::post().to(page::control),
    );
}

async fn api_create_intent(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        let wanted = wire::intent_request(&body)?;
        if let Some(customer) = &wanted.customer {
            emulator.with_state(|s| {
                s.customers
                    .contains_key(customer)
                    .then_some(())
                    .ok_or_else(|| Refusal::not_found(customer))
            })?;
        }
        let intent = EmulatedIntent {
            id: new_id("pi_"),
            status: "require_payment_method",
            amount: wanted.amount,
            currency: wanted.currency,
            description: wanted.description,
            order_id: wanted.order_id,
            return_url: wanted.return_url,
            capture: wanted.capture,
            methods_allowed: wanted.methods_allowed,
            metadata: wanted.metadata,
            payment: None,
            created: now(),
            customer: wanted.customer,
            card: None,
        };
        let body = emulator.intent_json(&intent);
        emulator.with_state(|s| {
            s.intents.insert(intent.id.clone(), intent);
            Ok(())
        })?;
        Ok((StatusCode::OK, body))
    }))
}

async fn api_get_intent(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        let intent = emulator.with_state(|s| {
            s.intents
                .get(id.as_str())
                .cloned()
                .ok_or_else(|| Refusal::not_found(&id))
        })?;
        Ok((StatusCode::OK, emulator.intent_json(&intent)))
    }))
}

/// `GET /v1/checkout/?limit=&start=`: the payments list of Stancer's own libraries, newest
/// first.
async fn api_list_payments(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    let query: HashMap<String, String> = match serde_urlencoded::from_str(request.query_string()) {
        Ok(query) => query,
        Err(_) => return Refusal::invalid("Unreadable query string").response(),
    };
    let number = |name: &str, default: usize| match query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Refusal::field(name, "must be a number")),
    };
    answer(emulator.authenticate(&request).and_then(|()| {
        if let Some(other) = query
            .keys()
            .find(|k| !matches!(k.as_str(), "limit" | "start"))
        {
            return Err(Refusal::field(other, "unknown parameter"));
        }
        let limit = number("limit", 10)?;
        let start = number("start", 0)?;
        if !(1..=100).contains(&limit) {
            return Err(Refusal::field("limit", "must be between 1 and 100"));
        }
        emulator.with_state(|s| {
            let mut payments: Vec<&EmulatedPayment> = s.payments.values().collect();
            payments.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
            let page: Vec<Value> = payments
                .iter()
                .skip(start)
                .take(limit)
                .map(|p| payment_json(p))
                .collect();
            Ok((
                StatusCode::OK,
                json!({
                    "payments": page,
                    "range": {
                        "start": start,
                        "end": start + page.len(),
                        "limit": limit,
                        "has_more": payments.len() > start + page.len(),
                    },
                }),
            ))
        })
    }))
}

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        emulator.with_state(|s| {
            s.payments
                .get(id.as_str())
                .map(|p| (StatusCode::OK, payment_json(p)))
                .ok_or_else(|| Refusal::not_found(&id))
        })
    }))
}

async fn api_create_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        let wanted = wire::refund_request(&body)?;
        emulator.with_state(|s| {
            let payment = s
                .payments
                .get_mut(&wanted.payment)
                .ok_or_else(|| Refusal::not_found(&wanted.payment))?;
            if !matches!(payment.status, "to_capture" | "capture_sent" | "captured") {
                return Err(Refusal::conflict(format!(
                    "A payment with status \"{}\" cannot be refunded",
                    payment.status
                )));
            }
            let refundable = payment.refundable();
            let amount = wanted.amount.unwrap_or(refundable);
            if amount > refundable {
                return Err(Refusal::field(
                    "amount",
                    format!(
                        "You are trying to refund ({amount}) more than paid ({refundable} remaining)"
                    ),
                ));
            }
            if amount < MINIMUM_CENTS {
                return Err(Refusal::field(
                    "amount",
                    format!("A refund must be at least {MINIMUM_CENTS}"),
                ));
            }
            let refund = EmulatedRefund {
                id: new_id("refd_"),
                amount,
                status: "to_refund",
                created: now(),
            };
            payment.refunds.push(refund.clone());
            Ok((StatusCode::OK, refund_json(payment, &refund)))
        })
    }))
}

async fn api_get_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        emulator.with_state(|s| {
            s.payments
                .values()
                .find_map(|p| {
                    p.refunds
                        .iter()
                        .find(|r| r.id == *id)
                        .map(|r| (StatusCode::OK, refund_json(p, r)))
                })
                .ok_or_else(|| Refusal::not_found(&id))
        })
    }))
}
