//! The emulator of PayPal's REST API (`/sandbox/paypal/...`): the OAuth2 token endpoint
//! (HTTP Basic client id and secret), Orders v2 (`PAYER_ACTION_REQUIRED` → `APPROVED` on the
//! approval page → `COMPLETED` once captured), captures with their
//! `seller_receivable_breakdown` (2,9 % + 0,35 €), refunds, `PayPal-Request-Id` replays,
//! webhook events sent with `PAYPAL-TRANSMISSION-*` headers to the app's subscribed webhook
//! (`/webhooks/paypal`), `verify-webhook-signature` (SUCCESS only for events it sent), and the
//! IPN `_notify-validate` postback (VERIFIED only for messages it sent).

mod api;
mod hosted;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::common;
use crate::config::Settings;
use crate::domain::Money;
use wire::money_json;

/// How long a token lives (PayPal's are valid for hours).
const TOKEN_LIFETIME: Duration = Duration::from_secs(32_400);

#[derive(Clone)]
struct EmulatedCapture {
    id: String,
    status: &'static str,
    amount: Money,
    fee: Money,
    time: String,
}

#[derive(Clone)]
struct EmulatedRefund {
    id: String,
    capture_id: String,
    amount: Money,
    invoice_id: Option<String>,
    time: String,
    /// The request obole sent, kept for tests to check against the spec.
    request: Value,
}

#[derive(Clone)]
struct EmulatedOrder {
    id: String,
    status: &'static str,
    amount: Money,
    currency: String,
    reference_id: Option<String>,
    custom_id: Option<String>,
    invoice_id: Option<String>,
    description: Option<String>,
    return_url: String,
    cancel_url: String,
    with_payment_source: bool,
    create_time: String,
    /// The payer's funding will be declined at capture (the payer's bank refused).
    declines: bool,
    /// False when a test wants the notifications lost (they are still recorded as sent).
    notify: bool,
    payer_id: Option<String>,
    captures: Vec<EmulatedCapture>,
    refunds: Vec<EmulatedRefund>,
    /// The request obole sent to create it, kept for tests to check against the spec.
    create_request: Value,
}

/// A webhook event as sent: what `verify-webhook-signature` recognises.
#[derive(Clone)]
struct SentEvent {
    order_id: String,
    transmission_id: String,
    transmission_sig: String,
    transmission_time: String,
    cert_url: String,
    body: String,
}

struct Remembered {
    status: StatusCode,
    body: Value,
}

pub struct Emulator {
    client_id: String,
    client_secret: SecretString,
    webhook_id: String,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    tokens: Mutex<HashMap<String, Instant>>,
    orders: Mutex<HashMap<String, EmulatedOrder>>,
    invoices: Mutex<HashSet<String>>,
    idempotency: Mutex<HashMap<String, Remembered>>,
    events: Mutex<Vec<SentEvent>>,
    /// IPN messages as PayPal would post them (order id, body): the IPN history.
    ipns: Mutex<Vec<(String, String)>>,
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

/// PayPal's ids: 17 upper-case letters and digits.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..17].to_ascii_uppercase()
}

/// PayPal's standard French rate for the emulator: 2,9 % + 0,35 €, rounded to the cent.
fn fee_for(amount: Money) -> Money {
    Money::from_cents(35 + (amount.cents() * 29 + 500) / 1000)
}

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            client_id: settings.paypal.client_id.clone(),
            client_secret: settings.paypal.client_secret.clone(),
            webhook_id: settings.paypal.webhook_id.clone(),
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            tokens: Mutex::new(HashMap::new()),
            orders: Mutex::new(HashMap::new()),
            invoices: Mutex::new(HashSet::new()),
            idempotency: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            ipns: Mutex::new(Vec::new()),
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/sandbox/paypal/{path}", self.public_base)
    }

    fn order(&self, id: &str) -> Option<EmulatedOrder> {
        self.orders.lock().ok()?.get(id).cloned()
    }

    fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut EmulatedOrder) -> Result<T, wire::PayPalProblem>,
    ) -> Result<T, wire::PayPalProblem> {
        let mut orders = self
            .orders
            .lock()
            .map_err(|_| wire::PayPalProblem::not_found())?;
        let order = orders
            .get_mut(id)
            .ok_or_else(wire::PayPalProblem::not_found)?;
        change(order)
    }

    /// The order holding this capture (or, with `refund`, this refund).
    fn order_holding(&self, id: &str, refund: bool) -> Option<EmulatedOrder> {
        let orders = self.orders.lock().ok()?;
        orders
            .values()
            .find(|o| {
                if refund {
                    o.refunds.iter().any(|r| r.id == id)
                } else {
                    o.captures.iter().any(|c| c.id == id)
                }
            })
            .cloned()
    }

    /// The Bearer token must be one this emulator issued and still valid.
    fn authenticate(&self, request: &HttpRequest) -> bool {
        let Some(given) = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.tokens
            .lock()
            .ok()
            .and_then(|tokens| tokens.get(given).copied())
            .is_some_and(|until| Instant::now() < until)
    }

    fn client_matches(&self, id: &str, secret: &str) -> bool {
        let expected = format!("{}:{}", self.client_id, self.client_secret.expose_secret());
        let given = format!("{id}:{secret}");
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn replay(&self, key: &str) -> Option<HttpResponse> {
        let keys = self.idempotency.lock().ok()?;
        let known = keys.get(key)?;
        Some(
            HttpResponse::build(known.status)
                .content_type("application/json")
                .json(&known.body),
        )
    }

    fn remember(&self, key: Option<String>, status: StatusCode, body: &Value) {
        if let (Some(key), Ok(mut keys)) = (key, self.idempotency.lock()) {
            keys.insert(
                key,
                Remembered {
                    status,
                    body: body.clone(),
                },
            );
        }
    }

    fn hosted_url(&self, order_id: &str) -> String {
        common::with_query(&self.api("checkoutnow"), &[("token", order_id)])
    }

    /// The order as `GET /v2/checkout/orders/{id}` shows it.
    fn order_json(&self, order: &EmulatedOrder) -> Value {
        let mut unit = json!({
            "reference_id": order.reference_id.clone().unwrap_or_else(|| "default".into()),
            "amount": money_json(order.amount, &order.currency),
            "payee": {"merchant_id": "OBOLEEMULATOR", "email_address": "tresorier@exemple.org"},
        });
        for (field, value) in [
            ("description", &order.description),
            ("custom_id", &order.custom_id),
            ("invoice_id", &order.invoice_id),
        ] {
            if let Some(value) = value {
                unit[field] = value.clone().into();
            }
        }
        if !order.captures.is_empty() {
            let captures: Vec<Value> = order
                .captures
                .iter()
                .map(|c| self.capture_json(order, c))
                .collect();
            unit["payments"] = json!({"captures": captures});
            if !order.refunds.is_empty() {
                let refunds: Vec<Value> = order
                    .refunds
                    .iter()
                    .map(|r| self.refund_json(order, r))
                    .collect();
                unit["payments"]["refunds"] = refunds.into();
            }
        }
        let mut links = vec![json!({
            "href": self.api(&format!("v2/checkout/orders/{}", order.id)),
            "rel": "self", "method": "GET",
        })];
        match order.status {
            "PAYER_ACTION_REQUIRED" => links.push(
                json!({"href": self.hosted_url(&order.id), "rel": "payer-action", "method": "GET"}),
            ),
            "CREATED" => links.push(
                json!({"href": self.hosted_url(&order.id), "rel": "approve", "method": "GET"}),
            ),
            "APPROVED" => links.push(json!({
                "href": self.api(&format!("v2/checkout/orders/{}/capture", order.id)),
                "rel": "capture", "method": "POST",
            })),
            _ => {}
        }
        let mut body = json!({
            "id": order.id,
            "intent": "CAPTURE",
            "status": order.status,
            "purchase_units": [unit],
            "create_time": order.create_time,
            "links": links,
        });
        if order.with_payment_source {
            body["payment_source"] = json!({"paypal": {}});
        }
        if let Some(payer_id) = &order.payer_id {
            body["payer"] = json!({
                "payer_id": payer_id,
                "name": {"given_name": "Jeanne", "surname": "Martin"},
                "email_address": "payeur@exemple.org",
            });
            body["payment_source"] =
                json!({"paypal": {"account_id": payer_id, "account_status": "VERIFIED"}});
        }
        body
    }

    fn capture_json(&self, order: &EmulatedOrder, capture: &EmulatedCapture) -> Value {
        let mut body = json!({
            "id": capture.id,
            "status": capture.status,
            "amount": money_json(capture.amount, &order.currency),
            "final_capture": true,
            "supplementary_data": {"related_ids": {"order_id": order.id}},
            "create_time": capture.time,
            "update_time": capture.time,
            "links": [
                {"href": self.api(&format!("v2/payments/captures/{}", capture.id)), "rel": "self", "method": "GET"},
                {"href": self.api(&format!("v2/payments/captures/{}/refund", capture.id)), "rel": "refund", "method": "POST"},
                {"href": self.api(&format!("v2/checkout/orders/{}", order.id)), "rel": "up", "method": "GET"},
            ],
        });
        for (field, value) in [
            ("custom_id", &order.custom_id),
            ("invoice_id", &order.invoice_id),
        ] {
            if let Some(value) = value {
                body[field] = value.clone().into();
            }
        }
        if capture.status == "DECLINED" {
            body["status_details"] = json!({"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"});
        } else {
            body["seller_receivable_breakdown"] = json!({
                "gross_amount": money_json(capture.amount, &order.currency),
                "paypal_fee": money_json(capture.fee, &order.currency),
                "net_amount": money_json(capture.amount - capture.fee, &order.currency),
            });
        }
        body
    }

    fn refund_json(&self, order: &EmulatedOrder, refund: &EmulatedRefund) -> Value {
        let mut body = json!({
            "id": refund.id,
            "status": "COMPLETED",
            "amount": money_json(refund.amount, &order.currency),
            "create_time": refund.time,
            "update_time": refund.time,
            "links": [
                {"href": self.api(&format!("v2/payments/refunds/{}", refund.id)), "rel": "self", "method": "GET"},
                {"href": self.api(&format!("v2/payments/captures/{}", refund.capture_id)), "rel": "up", "method": "GET"},
            ],
        });
        if let Some(invoice_id) = &refund.invoice_id {
            body["invoice_id"] = invoice_id.clone().into();
        }
        body
    }

    /// Sends a webhook event to the app's subscribed webhook, signed for this emulator's
    /// `verify-webhook-signature` to recognise; recorded as sent even when lost.
    fn emit(&self, order: &EmulatedOrder, event_type: &str, resource_type: &str, resource: Value) {
        let event = json!({
            "id": format!("WH-{}", new_id()),
            "event_version": "1.0",
            "create_time": now(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": format!("{event_type} for order {}", order.id),
            "resource": resource,
            "links": [],
        });
        let body = event.to_string();
        let transmission_id = uuid::Uuid::new_v4().to_string();
        let transmission_time = now();
        let message = format!(
            "{transmission_id}|{transmission_time}|{}|{body}",
            self.webhook_id
        );
        let transmission_sig = {
            use base64::Engine;
            let mac = common::hmac_sha256_hex(
                self.client_secret.expose_secret().as_bytes(),
                message.as_bytes(),
            );
            base64::engine::general_purpose::STANDARD.encode(mac)
        };
        let sent = SentEvent {
            order_id: order.id.clone(),
            transmission_id,
            transmission_sig,
            transmission_time,
            cert_url: self.api("v1/notifications/certs/CERT-360caa42-fca2a594-obole"),
            body,
        };
        if let Ok(mut events) = self.events.lock() {
            events.push(sent.clone());
        }
        if !order.notify {
            return;
        }
        tokio::spawn(common::deliver(
            self.http.clone(),
            format!("{}/webhooks/paypal", self.public_base),
            event_headers(&sent),
            sent.body.into_bytes(),
            self.retry_ms.clone(),
        ));
    }

    /// The IPN PayPal would post about a capture (kept in the IPN history, not delivered:
    /// the emulated account has no IPN listener set).
    fn record_ipn(&self, order: &EmulatedOrder, capture: &EmulatedCapture) {
        let status = match capture.status {
            "COMPLETED" => "Completed",
            "DECLINED" => "Denied",
            "REFUNDED" => "Refunded",
            _ => "Pending",
        };
        let fields: Vec<(&str, String)> = vec![
            ("mc_gross", capture.amount.to_decimal_string()),
            ("protection_eligibility", "Eligible".into()),
            ("payer_id", order.payer_id.clone().unwrap_or_default()),
            ("payment_date", now()),
            ("payment_status", status.into()),
            ("charset", "UTF-8".into()),
            ("mc_fee", capture.fee.to_decimal_string()),
            ("notify_version", "3.9".into()),
            ("custom", order.custom_id.clone().unwrap_or_default()),
            ("invoice", order.invoice_id.clone().unwrap_or_default()),
            ("txn_id", capture.id.clone()),
            ("txn_type", "express_checkout".into()),
            ("mc_currency", order.currency.clone()),
            ("receiver_email", "tresorier@exemple.org".into()),
            ("verify_sign", new_id()),
        ];
        if let (Ok(body), Ok(mut ipns)) = (serde_urlencoded::to_string(&fields), self.ipns.lock()) {
            ipns.push((order.id.clone(), body));
        }
    }
}

fn event_headers(sent: &SentEvent) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        (
            "PAYPAL-TRANSMISSION-ID".into(),
            sent.transmission_id.clone(),
        ),
        (
            "PAYPAL-TRANSMISSION-TIME".into(),
            sent.transmission_time.clone(),
        ),
        (
            "PAYPAL-TRANSMISSION-SIG".into(),
            sent.transmission_sig.clone(),
        ),
        ("PAYPAL-CERT-URL".into(), sent.cert_url.clone()),
        ("PAYPAL-AUTH-ALGO".into(), "SHA256withRSA".into()),
    ]
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/paypal/v1/oauth2/token",
        web::post().to(api::token),
    )
    .route(
        "/sandbox/paypal/v2/checkout/orders",
        web::post().to(api::create_order),
    )
    .route(
        "/sandbox/paypal/v2/checkout/orders/{id}",
        web::get().to(api::get_order),
    )
    .route(
        "/sandbox/paypal/v2/checkout/orders/{id}/capture",
        web::post().to(api::capture_order),
    )
    .route(
        "/sandbox/paypal/v2/payments/captures/{id}",
        web::get().to(api::get_capture),
    )
    .route(
        "/sandbox/paypal/v2/payments/captures/{id}/refund",
        web::post().to(api::refund_capture),
    )
    .route(
        "/sandbox/paypal/v2/payments/refunds/{id}",
        web::get().to(api::get_refund),
    )
    .route(
        "/sandbox/paypal/v1/notifications/verify-webhook-signature",
        web::post().to(api::verify_webhook_signature),
    )
    .route(
        "/sandbox/paypal/cgi-bin/webscr",
        web::post().to(api::notify_validate),
    )
    .route("/sandbox/paypal/checkoutnow", web::get().to(hosted::page))
    .route(
        "/sandbox/paypal/checkoutnow",
        web::post().to(hosted::action),
    )
    .route(
        "/sandbox/_control/paypal/{id}",
        web::post().to(hosted::control),
    )
    .route(
        "/sandbox/_control/paypal/{id}",
        web::get().to(hosted::inspect),
    );
}
