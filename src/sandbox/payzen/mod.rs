//! The emulator of PayZen (Lyra) REST V4 (`/sandbox/payzen/api-payment/V4/...`): JSON web
//! services behind HTTP Basic `shopId:password`, answers in PayZen's envelope (business errors
//! with HTTP 200 and `"status": "ERROR"`), payment orders with a hosted page
//! (`/sandbox/payzen/t/{paymentOrderId}`), transactions and refunds, and IPNs posted as forms
//! (`kr-answer`, `kr-hash` = HMAC-SHA256 of `kr-answer` under the password,
//! `kr-hash-key=password`) to the order's `ipnTargetUrl`, retried until the merchant answers.

mod api;

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use crate::config::Settings;
use crate::domain::Money;
use crate::gateways::payzen::{
    EMULATOR_PASSWORD, EMULATOR_SHOP_ID, HASH_ALGORITHM, IPN_HASH_KEY, ipn_hash,
};

#[derive(Clone)]
struct EmulatedTransaction {
    uuid: String,
    amount: i64,
    currency: String,
    /// `PAID`, `UNPAID`, `RUNNING`.
    status: &'static str,
    detailed_status: &'static str,
    /// `DEBIT` or `CREDIT`.
    operation_type: &'static str,
    created_at: String,
}

impl EmulatedTransaction {
    fn to_json(&self, order_id: &str) -> Value {
        json!({
            "uuid": self.uuid,
            "shopId": EMULATOR_SHOP_ID,
            "amount": self.amount,
            "currency": self.currency,
            "paymentMethodType": "CARD",
            "paymentMethodToken": null,
            "status": self.status,
            "detailedStatus": self.detailed_status,
            "operationType": self.operation_type,
            "effectiveStrongAuthentication": "ENABLED",
            "creationDate": self.created_at,
            "errorCode": null,
            "errorMessage": null,
            "orderDetails": { "orderId": order_id, "mode": "TEST", "_type": "V4/OrderDetails" },
            "_type": "V4/PaymentTransaction",
        })
    }
}

#[derive(Clone)]
struct EmulatedOrder {
    payment_order_id: String,
    /// `RUNNING`, `PAID`, `REFUSED`, `EXPIRED`, `CANCELLED`.
    status: &'static str,
    /// What the last payment attempt says: `RUNNING`, `PAID`, `UNPAID`, `ABANDONED`.
    order_status: &'static str,
    amount: i64,
    currency: String,
    order_id: String,
    description: String,
    email: Option<String>,
    ipn_target_url: Option<String>,
    success_url: Option<String>,
    refused_url: Option<String>,
    cancel_url: Option<String>,
    error_url: Option<String>,
    created_at: String,
    expires_at: String,
    transactions: Vec<EmulatedTransaction>,
}

impl EmulatedOrder {
    fn to_json(&self, public_base: &str) -> Value {
        json!({
            "paymentOrderId": self.payment_order_id,
            "paymentURL": format!("{public_base}/sandbox/payzen/t/{}", self.payment_order_id),
            "paymentOrderStatus": self.status,
            "creationDate": self.created_at,
            "updateDate": null,
            "amount": self.amount,
            "currency": self.currency,
            "locale": "fr_FR",
            "strongAuthentication": "AUTO",
            "orderId": self.order_id,
            "channelDetails": { "channelType": "URL", "_type": "V4/ChannelDetails" },
            "paymentReceiptEmail": null,
            "taxAmount": null,
            "expirationDate": self.expires_at,
            "dataCollectionForm": false,
            "merchantComment": null,
            "message": null,
            "_type": "V4/PaymentOrder",
        })
    }

    /// The IPN's `kr-answer` (`V4/Payment`), as the order stands.
    fn payment_json(&self) -> Value {
        let paid: i64 = self
            .transactions
            .iter()
            .filter(|t| t.operation_type == "DEBIT" && t.status == "PAID")
            .map(|t| t.amount)
            .sum();
        json!({
            "shopId": EMULATOR_SHOP_ID,
            "orderCycle": if self.order_status == "RUNNING" { "OPEN" } else { "CLOSED" },
            "orderStatus": self.order_status,
            "serverDate": now(),
            "orderDetails": {
                "orderTotalAmount": self.amount,
                "orderEffectiveAmount": paid,
                "orderCurrency": self.currency,
                "mode": "TEST",
                "orderId": self.order_id,
                "_type": "V4/OrderDetails",
            },
            "customer": { "email": self.email, "_type": "V4/Customer/Customer" },
            "transactions": self.transactions.iter().map(|t| t.to_json(&self.order_id)).collect::<Vec<_>>(),
            "paymentOrderId": self.payment_order_id,
            "subMerchantDetails": null,
            "_type": "V4/Payment",
        })
    }

    /// The IPN as PayZen posts it: a form whose `kr-answer` is signed with the password.
    fn ipn_form(&self) -> String {
        let answer = self.payment_json().to_string();
        let hash = ipn_hash(EMULATOR_PASSWORD, &answer);
        serde_urlencoded::to_string([
            ("kr-hash", hash.as_str()),
            ("kr-hash-algorithm", HASH_ALGORITHM),
            ("kr-hash-key", IPN_HASH_KEY),
            ("kr-answer-type", "V4/Payment"),
            ("kr-answer", answer.as_str()),
        ])
        .unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    orders: HashMap<String, EmulatedOrder>,
}

pub struct Emulator {
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    state: Mutex<State>,
}

type Failure = (StatusCode, String);

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            state: Mutex::new(State::default()),
        }
    }

    fn with_state<T>(&self, change: impl FnOnce(&mut State) -> T) -> Result<T, Failure> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "lock".to_string()))?;
        Ok(change(&mut state))
    }

    /// Posts the IPN about `order` to its `ipnTargetUrl` (or the shop's URL), in the background.
    fn notify(&self, order: &EmulatedOrder) {
        let url = order
            .ipn_target_url
            .clone()
            .unwrap_or_else(|| format!("{}/webhooks/payzen", self.public_base));
        tokio::spawn(common::deliver(
            self.http.clone(),
            url,
            vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            order.ipn_form().into_bytes(),
            self.retry_ms.clone(),
        ));
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    api::routes(cfg);
    cfg.route("/sandbox/payzen/t/{id}", web::get().to(hosted))
        .route("/sandbox/payzen/t/{id}", web::post().to(hosted_action))
        .route("/sandbox/_control/payzen/{id}", web::post().to(control))
        .route(
            "/sandbox/_control/payzen/{id}/ipn",
            web::get().to(current_ipn),
        );
}

/// How a payment attempt on the page ends.
#[derive(Clone, Copy)]
enum Outcome {
    Paid(Option<i64>),
    Refused,
    Error,
    Abandoned,
    Cancelled,
    Expired,
}

/// Applies an outcome to a running payment order; returns the order as it now is.
fn settle(state: &mut State, id: &str, outcome: Outcome) -> Result<EmulatedOrder, Failure> {
    let order = state
        .orders
        .get_mut(id)
        .ok_or((StatusCode::NOT_FOUND, "unknown payment order".to_string()))?;
    if order.status != "RUNNING" {
        return Err((
            StatusCode::CONFLICT,
            format!("payment order already {}", order.status),
        ));
    }
    let mut transaction = |status, detailed_status, amount| {
        order.transactions.push(EmulatedTransaction {
            uuid: new_hex_id(),
            amount,
            currency: order.currency.clone(),
            status,
            detailed_status,
            operation_type: "DEBIT",
            created_at: now(),
        })
    };
    match outcome {
        Outcome::Paid(amount) => {
            // Captured at once here; PayZen captures card payments at the end of the day.
            transaction("PAID", "CAPTURED", amount.unwrap_or(order.amount));
            order.status = "PAID";
            order.order_status = "PAID";
        }
        Outcome::Refused | Outcome::Error => {
            let detailed = if matches!(outcome, Outcome::Refused) {
                "REFUSED"
            } else {
                "ERROR"
            };
            transaction("UNPAID", detailed, order.amount);
            order.status = "REFUSED";
            order.order_status = "UNPAID";
        }
        // The payer left the page: the link still works until the order expires.
        Outcome::Abandoned => order.order_status = "ABANDONED",
        Outcome::Cancelled => order.status = "CANCELLED",
        Outcome::Expired => order.status = "EXPIRED",
    }
    Ok(order.clone())
}

async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let order = match emulator.with_state(|s| s.orders.get(id.as_str()).cloned()) {
        Ok(Some(order)) => order,
        Ok(None) => return common::unknown_payment("PayZen"),
        Err((status, message)) => return common::plain(status, &message),
    };
    let action_url = format!("/sandbox/payzen/t/{}", order.payment_order_id);
    common::hosted_page(HostedPage {
        gateway: "PayZen",
        action_url: &action_url,
        amount: Money::from_cents(order.amount),
        description: &order.description,
        reference: &order.order_id,
        open: order.status == "RUNNING",
        status: order.status,
    })
}

/// The payer's action; the browser goes back to the URL PayZen uses for that outcome (PayZen
/// posts the signed answer there; obole's return route reads nothing from it anyway).
async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let outcome = match action {
        PayerAction::Pay => Outcome::Paid(None),
        PayerAction::Refuse => Outcome::Refused,
        PayerAction::Error => Outcome::Error,
        PayerAction::Back => Outcome::Abandoned,
    };
    let order = match emulator.with_state(|s| settle(s, id.as_str(), outcome)) {
        Ok(Ok(order)) => order,
        Ok(Err((status, message))) | Err((status, message)) => {
            return common::plain(status, &message);
        }
    };
    if !matches!(outcome, Outcome::Abandoned) {
        emulator.notify(&order);
    }
    let target = match outcome {
        Outcome::Paid(_) => order.success_url.clone(),
        Outcome::Refused => order.refused_url.clone(),
        Outcome::Error => order.error_url.clone(),
        _ => order.cancel_url.clone(),
    }
    .unwrap_or_else(|| format!("/sandbox/payzen/t/{}", order.payment_order_id));
    HttpResponse::SeeOther()
        .insert_header(("Location", target))
        .finish()
}

async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let outcome = match body.status.as_str() {
        "paid" => Outcome::Paid(body.amount),
        "refused" => Outcome::Refused,
        "error" => Outcome::Error,
        "cancelled" => Outcome::Cancelled,
        "expired" => Outcome::Expired,
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match emulator.with_state(|s| settle(s, id.as_str(), outcome)) {
        Ok(Ok(order)) => {
            // Only a payment attempt makes PayZen notify; an order cancelled or expired does not.
            if body.notify
                && matches!(
                    outcome,
                    Outcome::Paid(_) | Outcome::Refused | Outcome::Error
                )
            {
                emulator.notify(&order);
            }
            HttpResponse::Ok().json(order.to_json(&emulator.public_base))
        }
        Ok(Err((status, message))) | Err((status, message)) => common::plain(status, &message),
    }
}

/// The IPN PayZen would post about this order now (as the Back Office's manual replay does).
async fn current_ipn(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    match emulator.with_state(|s| s.orders.get(id.as_str()).map(EmulatedOrder::ipn_form)) {
        Ok(Some(form)) => HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded")
            .body(form),
        Ok(None) => common::plain(StatusCode::NOT_FOUND, "unknown payment order"),
        Err((status, message)) => common::plain(status, &message),
    }
}
