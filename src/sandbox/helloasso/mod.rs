//! The emulator of HelloAsso Checkout (API v5) under `/sandbox/helloasso/`: OAuth2 token
//! endpoint (client credentials and refresh, form encoded, tokens that expire), checkout
//! intents validated as HelloAsso validates them, the checkout page, orders with one payment
//! per term, refunds per payment, and unsigned-or-signed (`x-ha-signature`) notifications
//! sent to the association's notification URL, `{base}/webhooks/helloasso`.

mod api;
mod page;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::common;
use crate::config::Settings;
use crate::gateways::helloasso::SIGNATURE_HEADER;
use api::{create_intent, get_intent, get_order, refund, token};
use page::{control, control_expire_tokens, control_journal, hosted, hosted_action};
use wire::InitCheckoutBody;

const PREFIX: &str = "/sandbox/helloasso";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Paid,
    Refused,
    Error,
    Cancelled,
    Expired,
}

impl Outcome {
    /// The outcome as the payer's page says it.
    fn label(self) -> &'static str {
        crate::i18n::current().t(match self {
            Outcome::Open => "sandbox.status_open",
            Outcome::Paid => "sandbox.status_paid",
            Outcome::Refused => "sandbox.status_refused",
            Outcome::Error => "sandbox.status_error",
            Outcome::Cancelled => "sandbox.status_abandoned",
            Outcome::Expired => "sandbox.status_expired",
        })
    }
}

#[derive(Clone)]
struct EmulatedRefund {
    id: i64,
    amount: i64,
    date: String,
}

#[derive(Clone)]
struct EmulatedPayment {
    id: i64,
    amount: i64,
    installment_number: i64,
    state: &'static str,
    date: String,
    refunds: Vec<EmulatedRefund>,
}

impl EmulatedPayment {
    fn refunded(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount).sum()
    }
}

#[derive(Clone)]
struct EmulatedOrder {
    id: i64,
    date: String,
    total: i64,
    payments: Vec<EmulatedPayment>,
}

#[derive(Clone)]
struct Intent {
    id: i64,
    body: InitCheckoutBody,
    outcome: Outcome,
    order: Option<EmulatedOrder>,
}

#[derive(Default)]
struct State {
    next_id: i64,
    intents: HashMap<i64, Intent>,
    access_tokens: HashMap<String, Instant>,
    refresh_tokens: HashSet<String>,
    /// What obole sent, for the tests to check against the spec.
    journal: Vec<Value>,
}

impl State {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn intent_of_payment(&mut self, payment_id: i64) -> Option<&mut Intent> {
        self.intents.values_mut().find(|i| {
            i.order
                .as_ref()
                .is_some_and(|o| o.payments.iter().any(|p| p.id == payment_id))
        })
    }
}

pub struct Emulator {
    client_id: String,
    client_secret: SecretString,
    organization_slug: String,
    signature_key: Option<SecretString>,
    token_ttl: Duration,
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    state: Mutex<State>,
}

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        let ha = &settings.helloasso;
        // HelloAsso's ids are int32: start from the clock so a restarted emulator does not
        // hand out an id an earlier run gave.
        let start = time::OffsetDateTime::now_utc().unix_timestamp() % 100_000_000 * 10;
        Emulator {
            client_id: ha.client_id.clone(),
            client_secret: ha.client_secret.clone(),
            organization_slug: ha.organization_slug.clone(),
            signature_key: ha.signature_key.clone(),
            token_ttl: Duration::from_secs(ha.token_ttl_secs),
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            state: Mutex::new(State {
                next_id: start,
                ..State::default()
            }),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut state| f(&mut state))
    }

    fn record(&self, entry: Value) {
        self.with_state(|s| s.journal.push(entry));
    }

    fn redirect_url(&self, id: i64) -> String {
        format!("{}{PREFIX}/checkout/{id}", self.public_base)
    }

    fn intent_json(&self, intent: &Intent) -> Value {
        let mut out = json!({
            "id": intent.id,
            "redirectUrl": (intent.outcome == Outcome::Open).then(|| self.redirect_url(intent.id)),
            "metadata": intent.body.metadata,
        });
        if let Some(order) = &intent.order {
            out["order"] = self.order_json(intent, order);
        }
        out
    }

    fn order_light(&self, intent: &Intent, order: &EmulatedOrder) -> Value {
        json!({
            "id": order.id,
            "date": order.date,
            "formSlug": "default",
            "formType": "Checkout",
            "organizationName": "Association démo",
            "organizationSlug": self.organization_slug,
            "organizationType": "Association1901",
            "organizationIsUnderColucheLaw": false,
            "checkoutIntentId": intent.id,
            "meta": {"createdAt": order.date, "updatedAt": order.date},
        })
    }

    fn order_json(&self, intent: &Intent, order: &EmulatedOrder) -> Value {
        let mut out = self.order_light(intent, order);
        let payer = intent.body.payer.clone().unwrap_or_default();
        out["amount"] = json!({"total": order.total, "vat": 0, "discount": 0});
        out["payer"] = json!({
            "email": payer.email,
            "firstName": payer.first_name,
            "lastName": payer.last_name,
            "country": payer.country.unwrap_or_else(|| "FRA".into()),
            "address": payer.address,
            "city": payer.city,
            "zipCode": payer.zip_code,
            "dateOfBirth": payer.date_of_birth,
        });
        out["items"] = json!([{
            "id": order.id,
            "amount": order.total,
            "type": if intent.body.contains_donation { "Donation" } else { "Payment" },
            "initialAmount": intent.body.initial_amount,
            "state": "Processed",
            "name": intent.body.item_name,
            "payments": order.payments.iter()
                .map(|p| json!({"id": p.id, "shareAmount": p.amount}))
                .collect::<Vec<_>>(),
        }]);
        out["payments"] = order.payments.iter().map(payment_json).collect();
        out
    }

    /// Sends HelloAsso's notifications about these payments and their order, in the
    /// background: a Payment event for each, then an Order event.
    fn notify(self: &Arc<Self>, intent: &Intent, payment_ids: &[i64]) {
        let Some(order) = &intent.order else {
            return;
        };
        let metadata = intent.body.metadata.clone().unwrap_or(Value::Null);
        let mut events: Vec<Value> = order
            .payments
            .iter()
            .filter(|p| payment_ids.contains(&p.id))
            .map(|p| {
                let mut data = payment_json(p);
                let mut light = self.order_light(intent, order);
                // HelloAsso's example of a checkout's Payment event names only the order.
                if let Some(fields) = light.as_object_mut() {
                    fields.remove("checkoutIntentId");
                }
                data["order"] = light;
                json!({"eventType": "Payment", "data": data, "metadata": metadata})
            })
            .collect();
        events.push(json!({
            "eventType": "Order",
            "data": self.order_json(intent, order),
            "metadata": metadata,
        }));
        let url = format!("{}/webhooks/helloasso", self.public_base);
        for event in events {
            let Ok(body) = serde_json::to_vec(&event) else {
                continue;
            };
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            if let Some(key) = &self.signature_key {
                headers.push((
                    SIGNATURE_HEADER.to_string(),
                    common::hmac_sha256_hex(key.expose_secret().as_bytes(), &body),
                ));
            }
            tokio::spawn(common::deliver(
                self.http.clone(),
                url.clone(),
                headers,
                body,
                self.retry_ms.clone(),
            ));
        }
    }

    /// Settles an intent as the payer or the test control says. Paying an intent already
    /// paid debits its next term, as HelloAsso does each month. Returns the payments that
    /// changed.
    fn settle(
        &self,
        id: i64,
        outcome: Outcome,
        paid_amount: Option<i64>,
    ) -> Result<(Intent, Vec<i64>), (StatusCode, String)> {
        let now = now_text();
        let result = self.with_state(|state| {
            let mut ids: Vec<i64> =
                (0..=state.intents.get(&id).map_or(0, |i| i.body.terms().len()))
                    .map(|_| state.next_id())
                    .collect();
            let order_id = state.next_id();
            let intent = state
                .intents
                .get_mut(&id)
                .ok_or((StatusCode::NOT_FOUND, "Intention inconnue.".to_string()))?;
            match (intent.outcome, outcome) {
                (Outcome::Open, Outcome::Paid) => {
                    let initial = i64::from(intent.body.initial_amount);
                    let total = paid_amount.unwrap_or(i64::from(intent.body.total_amount));
                    let first = total - (i64::from(intent.body.total_amount) - initial);
                    let mut payments = vec![EmulatedPayment {
                        id: ids.remove(0),
                        amount: first,
                        installment_number: 1,
                        state: "Authorized",
                        date: now.clone(),
                        refunds: Vec::new(),
                    }];
                    for (n, term) in intent.body.terms().iter().enumerate() {
                        payments.push(EmulatedPayment {
                            id: ids.remove(0),
                            amount: i64::from(term.amount),
                            installment_number: n as i64 + 2,
                            state: "Pending",
                            date: term.date.clone(),
                            refunds: Vec::new(),
                        });
                    }
                    let changed = vec![payments[0].id];
                    intent.order = Some(EmulatedOrder {
                        id: order_id,
                        date: now.clone(),
                        total,
                        payments,
                    });
                    intent.outcome = Outcome::Paid;
                    Ok((intent.clone(), changed))
                }
                (Outcome::Paid, Outcome::Paid) => {
                    let next = intent
                        .order
                        .as_mut()
                        .and_then(|o| o.payments.iter_mut().find(|p| p.state == "Pending"))
                        .ok_or((
                            StatusCode::CONFLICT,
                            crate::i18n::current().t("sandbox.no_term_due").to_string(),
                        ))?;
                    next.state = "Authorized";
                    next.date = now.clone();
                    let changed = vec![next.id];
                    Ok((intent.clone(), changed))
                }
                (Outcome::Open, closed) => {
                    intent.outcome = closed;
                    Ok((intent.clone(), Vec::new()))
                }
                _ => Err((StatusCode::CONFLICT, common::already_finished())),
            }
        });
        result.unwrap_or_else(|| Err((StatusCode::INTERNAL_SERVER_ERROR, "lock".into())))
    }
}

fn payment_json(p: &EmulatedPayment) -> Value {
    json!({
        "id": p.id,
        "amount": p.amount,
        "amountTip": 0,
        "date": p.date,
        "paymentMeans": "Card",
        "installmentNumber": p.installment_number,
        "state": p.state,
        "type": "Credit",
        "cashOutState": "MoneyIn",
        "paymentReceiptUrl": format!("https://www.helloasso-sandbox.com/associations/association-demo/checkout/paiement-attestation/{}", p.id),
        "refundOperations": p.refunds.iter().map(|r| json!({
            "id": r.id, "amount": r.amount, "amountTip": 0, "status": "Processed",
            "meta": {"createdAt": r.date, "updatedAt": r.date},
        })).collect::<Vec<_>>(),
        "meta": {"createdAt": p.date, "updatedAt": p.date},
    })
}

fn now_text() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(&format!("{PREFIX}/oauth2/token"), web::post().to(token))
        .route(
            &format!("{PREFIX}/v5/organizations/{{slug}}/checkout-intents"),
            web::post().to(create_intent),
        )
        .route(
            &format!("{PREFIX}/v5/organizations/{{slug}}/checkout-intents/{{id}}"),
            web::get().to(get_intent),
        )
        .route(
            &format!("{PREFIX}/v5/orders/{{id}}"),
            web::get().to(get_order),
        )
        .route(
            &format!("{PREFIX}/v5/payments/{{id}}/refund"),
            web::post().to(refund),
        )
        .route(&format!("{PREFIX}/checkout/{{id}}"), web::get().to(hosted))
        .route(
            &format!("{PREFIX}/checkout/{{id}}"),
            web::post().to(hosted_action),
        )
        .route(
            "/sandbox/_control/helloasso/_journal",
            web::get().to(control_journal),
        )
        .route(
            "/sandbox/_control/helloasso/_expire-tokens",
            web::post().to(control_expire_tokens),
        )
        .route("/sandbox/_control/helloasso/{id}", web::post().to(control));
}
