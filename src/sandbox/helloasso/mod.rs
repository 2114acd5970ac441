//! The emulator of HelloAsso Checkout (API v5) under `/sandbox/helloasso/`: OAuth2 token
//! endpoint (client credentials and refresh, form encoded, tokens that expire), checkout
//! intents validated as HelloAsso validates them, the checkout page, orders with one payment
//! per term, refunds per payment, and unsigned-or-signed (`x-ha-signature`) notifications
//! sent to the association's notification URL, `{base}/webhooks/helloasso`.

mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use crate::config::Settings;
use crate::domain::Money;
use crate::gateways::helloasso::SIGNATURE_HEADER;
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
    fn label(self) -> &'static str {
        match self {
            Outcome::Open => "en attente",
            Outcome::Paid => "payé",
            Outcome::Refused => "refusé",
            Outcome::Error => "en erreur",
            Outcome::Cancelled => "abandonné",
            Outcome::Expired => "expiré",
        }
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
                            "Aucune échéance à prélever.".to_string(),
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
                _ => Err((
                    StatusCode::CONFLICT,
                    "Ce paiement est déjà terminé.".to_string(),
                )),
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

/// An error answer, boxed: handlers' helpers return it as their `Err`.
type Refusal = Box<HttpResponse>;

/// HelloAsso's error body.
fn api_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errors": [{ "code": code, "message": message }] }))
}

fn oauth_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error, "error_description": description}))
}

async fn token(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form_encoded = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return oauth_error("invalid_request", "the body must be form encoded");
    }
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(&body) else {
        return oauth_error("invalid_request", "unreadable form");
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    emulator.record(
        json!({"method": "POST", "path": "/oauth2/token", "grantType": field("grant_type")}),
    );
    if field("client_id") != emulator.client_id {
        return oauth_error("unauthorized_client", "unknown client_id");
    }
    let granted = emulator.with_state(|state| {
        match field("grant_type") {
            "client_credentials" => {
                if field("client_secret") != emulator.client_secret.expose_secret() {
                    return Err(Box::new(oauth_error(
                        "unauthorized_client",
                        "bad client_secret",
                    )));
                }
            }
            "refresh_token" => {
                // A refresh token is used once: its answer carries the next one.
                if !state.refresh_tokens.remove(field("refresh_token")) {
                    return Err(Box::new(oauth_error(
                        "invalid_grant",
                        "invalid refresh_token",
                    )));
                }
            }
            _ => {
                return Err(Box::new(oauth_error(
                    "unsupported_grant_type",
                    "unsupported grant_type",
                )));
            }
        }
        let access = format!("ha_at_{}", uuid::Uuid::new_v4().simple());
        let refresh = format!("ha_rt_{}", uuid::Uuid::new_v4().simple());
        state
            .access_tokens
            .insert(access.clone(), Instant::now() + emulator.token_ttl);
        state.refresh_tokens.insert(refresh.clone());
        Ok((access, refresh))
    });
    match granted {
        Some(Ok((access, refresh))) => HttpResponse::Ok().json(json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": emulator.token_ttl.as_secs(),
        })),
        Some(Err(response)) => *response,
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// The Bearer token must be one the token endpoint gave and still alive.
fn authorize(emulator: &Emulator, request: &HttpRequest) -> Result<(), Refusal> {
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let alive = emulator
        .with_state(|s| {
            s.access_tokens
                .get(&given)
                .is_some_and(|exp| Instant::now() < *exp)
        })
        .unwrap_or(false);
    if alive {
        Ok(())
    } else {
        Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized, you must add a valid JWT into Authorization Header with the format : `Bearer TOKEN`",
        )))
    }
}

fn own_organization(emulator: &Emulator, slug: &str) -> Result<(), Refusal> {
    if slug == emulator.organization_slug {
        Ok(())
    } else {
        Err(Box::new(api_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The JWT token hasn't the privileges or Roles for this action",
        )))
    }
}

async fn create_intent(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    slug: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    // Recorded before the checks, so tests see refused calls too.
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    emulator.record(json!({
        "method": "POST",
        "path": request.path().trim_start_matches(PREFIX),
        "body": raw,
        "authorized": authorize(&emulator, &request).is_ok(),
    }));
    if let Err(response) =
        authorize(&emulator, &request).and_then(|()| own_organization(&emulator, &slug))
    {
        return *response;
    }
    let parsed: InitCheckoutBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "ArgumentInvalid", &e.to_string()),
    };
    if let Err(message) = wire::validate(&parsed, time::OffsetDateTime::now_utc()) {
        return api_error(StatusCode::BAD_REQUEST, "ArgumentInvalid", &message);
    }
    let created = emulator.with_state(|state| {
        let id = state.next_id();
        state.intents.insert(
            id,
            Intent {
                id,
                body: parsed,
                outcome: Outcome::Open,
                order: None,
            },
        );
        id
    });
    match created {
        Some(id) => {
            HttpResponse::Ok().json(json!({"id": id, "redirectUrl": emulator.redirect_url(id)}))
        }
        None => HttpResponse::InternalServerError().finish(),
    }
}

fn int_path(value: &str) -> Result<i64, Refusal> {
    value.parse::<i32>().map(i64::from).map_err(|_| {
        Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "ArgumentInvalid",
            "the id must be an int32",
        ))
    })
}

fn not_found(what: &str) -> HttpResponse {
    api_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{what} not found"),
    )
}

async fn get_intent(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (slug, id) = path.into_inner();
    if let Err(response) =
        authorize(&emulator, &request).and_then(|()| own_organization(&emulator, &slug))
    {
        return *response;
    }
    let id = match int_path(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    match emulator
        .with_state(|s| s.intents.get(&id).cloned())
        .flatten()
    {
        Some(intent) => HttpResponse::Ok().json(emulator.intent_json(&intent)),
        None => not_found("checkout intent"),
    }
}

async fn get_order(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(response) = authorize(&emulator, &request) {
        return *response;
    }
    let id = match int_path(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let found = emulator
        .with_state(|s| {
            s.intents
                .values()
                .find(|i| i.order.as_ref().is_some_and(|o| o.id == id))
                .cloned()
        })
        .flatten();
    match found {
        Some(intent) => match &intent.order {
            Some(order) => HttpResponse::Ok().json(emulator.order_json(&intent, order)),
            None => not_found("order"),
        },
        None => not_found("order"),
    }
}

/// `POST /v5/payments/{id}/refund?amount=&comment=&cancelOrder=&sendRefundMail=`: the whole
/// payment without `amount` (or with 0), part of it otherwise.
async fn refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(response) = authorize(&emulator, &request) {
        return *response;
    }
    let payment_id = match int_path(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Ok(query) = serde_urlencoded::from_str::<HashMap<String, String>>(request.query_string())
    else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "ArgumentInvalid",
            "unreadable query",
        );
    };
    emulator.record(json!({"method": "POST", "path": format!("/v5/payments/{payment_id}/refund"), "query": query}));
    let asked = match query.get("amount").map(|a| a.parse::<i32>()) {
        None => 0,
        Some(Ok(amount)) if amount >= 0 => i64::from(amount),
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "ArgumentInvalid",
                "amount must be an integer number of cents",
            );
        }
    };
    let cancel_order = query.get("cancelOrder").is_some_and(|v| v == "true");
    let result = emulator.with_state(|state| {
        let refund_id = state.next_id();
        let intent = state
            .intent_of_payment(payment_id)
            .ok_or_else(|| error_code(101, &format!("The payment specified is not found, payment id : '{payment_id}'")))?;
        let order = intent.order.as_mut().ok_or_else(|| error_code(119, "Operation bad state."))?;
        let payment = order
            .payments
            .iter_mut()
            .find(|p| p.id == payment_id)
            .ok_or_else(|| error_code(119, "Operation bad state."))?;
        if payment.state != "Authorized" {
            return Err(error_code(119, "Operation bad state."));
        }
        let remaining = payment.amount - payment.refunded();
        let amount = if asked == 0 { remaining } else { asked };
        if amount > remaining {
            return Err(error_code(
                107,
                "The amount between the specified operation and the partner transaction doesn't match.",
            ));
        }
        payment.refunds.push(EmulatedRefund {
            id: refund_id,
            amount,
            date: now_text(),
        });
        let full = payment.refunded() == payment.amount;
        if full {
            payment.state = "Refunded";
        }
        if cancel_order && full {
            for later in order.payments.iter_mut().filter(|p| p.state == "Pending") {
                later.state = "Canceled";
            }
        }
        Ok((intent.clone(), refund_id, amount))
    });
    match result {
        Some(Ok((intent, refund_id, amount))) => {
            emulator.clone().into_inner().notify(&intent, &[payment_id]);
            HttpResponse::Ok().json(json!({
                "id": refund_id,
                "amount": amount,
                "cancelOrder": cancel_order,
                "creationDate": now_text(),
                "state": "Processed",
                "sendRefundMail": query.get("sendRefundMail").is_none_or(|v| v != "false"),
                "paymentId": payment_id,
            }))
        }
        Some(Err(response)) => *response,
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// A refund error as HelloAsso words it: `Code : [CODE] - [MESSAGE]`, HTTP 400.
fn error_code(code: u16, message: &str) -> Refusal {
    Box::new(api_error(
        StatusCode::BAD_REQUEST,
        "Error",
        &format!("Code : {code} - {message}"),
    ))
}

async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let intent = id.parse::<i64>().ok().and_then(|id| {
        emulator
            .with_state(|s| s.intents.get(&id).cloned())
            .flatten()
    });
    let Some(intent) = intent else {
        return common::plain(StatusCode::NOT_FOUND, "Paiement HelloAsso inconnu.");
    };
    common::hosted_page(HostedPage {
        gateway: "HelloAsso",
        action_url: &format!("{PREFIX}/checkout/{}", intent.id),
        amount: Money::from_cents(i64::from(intent.body.total_amount)),
        description: &intent.body.item_name,
        reference: &intent.id.to_string(),
        open: intent.outcome == Outcome::Open,
        status: intent.outcome.label(),
    })
}

async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::plain(StatusCode::BAD_REQUEST, "Action inconnue.");
    };
    let Ok(id) = id.parse::<i64>() else {
        return common::plain(StatusCode::NOT_FOUND, "Paiement HelloAsso inconnu.");
    };
    // "Back" leaves the intent open: the payer may come back until it expires.
    let outcome = match action {
        PayerAction::Pay => Outcome::Paid,
        PayerAction::Refuse => Outcome::Refused,
        PayerAction::Error => Outcome::Error,
        PayerAction::Back => Outcome::Open,
    };
    let (intent, changed) = if outcome == Outcome::Open {
        match emulator
            .with_state(|s| s.intents.get(&id).cloned())
            .flatten()
        {
            Some(intent) if intent.outcome == Outcome::Open => (intent, Vec::new()),
            Some(_) => return common::plain(StatusCode::CONFLICT, "Ce paiement est déjà terminé."),
            None => return common::plain(StatusCode::NOT_FOUND, "Paiement HelloAsso inconnu."),
        }
    } else {
        match emulator.settle(id, outcome, None) {
            Ok(settled) => settled,
            Err((code, message)) => return common::plain(code, &message),
        }
    };
    let intent_id = intent.id.to_string();
    let location = match action {
        PayerAction::Pay => {
            let order_id = intent
                .order
                .as_ref()
                .map(|o| o.id.to_string())
                .unwrap_or_default();
            common::with_query(
                &intent.body.return_url,
                &[
                    ("checkoutIntentId", &intent_id),
                    ("code", "succeeded"),
                    ("orderId", &order_id),
                ],
            )
        }
        PayerAction::Refuse => common::with_query(
            &intent.body.return_url,
            &[("checkoutIntentId", &intent_id), ("code", "refused")],
        ),
        PayerAction::Error => common::with_query(
            &intent.body.error_url,
            &[
                ("checkoutIntentId", &intent_id),
                ("error", "TechnicalError"),
            ],
        ),
        PayerAction::Back => intent.body.back_url.clone(),
    };
    emulator.into_inner().notify(&intent, &changed);
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let outcome = match body.status.as_str() {
        "paid" => Outcome::Paid,
        "refused" => Outcome::Refused,
        "error" => Outcome::Error,
        "cancelled" => Outcome::Cancelled,
        "expired" => Outcome::Expired,
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    let Ok(id) = id.parse::<i64>() else {
        return common::plain(StatusCode::NOT_FOUND, "unknown checkout intent");
    };
    match emulator.settle(id, outcome, body.amount) {
        Ok((intent, changed)) => {
            let answer = emulator.intent_json(&intent);
            if body.notify {
                emulator.into_inner().notify(&intent, &changed);
            }
            HttpResponse::Ok().json(answer)
        }
        Err((code, message)) => common::plain(code, &message),
    }
}

/// What obole sent to the emulated HelloAsso (token grants, API calls with their bodies).
async fn control_journal(emulator: web::Data<Emulator>) -> HttpResponse {
    HttpResponse::Ok().json(
        emulator
            .with_state(|s| s.journal.clone())
            .unwrap_or_default(),
    )
}

/// Ends every access token now (refresh tokens stay valid), as when a token expires
/// between obole's check and HelloAsso's.
async fn control_expire_tokens(emulator: web::Data<Emulator>) -> HttpResponse {
    emulator.with_state(|s| s.access_tokens.clear());
    HttpResponse::NoContent().finish()
}
