//! The emulator of Stripe Checkout (`/sandbox/stripe/...`): the API obole's connector calls
//! (form-encoded, secret key as Bearer or Basic, Stripe's error bodies, idempotency keys,
//! `expand[]`), a hosted page, PaymentIntents, charges with balance transactions carrying a
//! fee of 1.5 % + 0.25 €, refunds, and events signed with the webhook secret and delivered to
//! `/webhooks/stripe` as the endpoint registered in a Stripe dashboard would receive them.
//! Cards kept for later (`setup_future_usage`) become PaymentMethods on a Customer, which
//! off-session PaymentIntents then charge (see `off_session`).

mod api;
mod off_session;
mod params;
mod refunds;
mod rules;

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use crate::config::Settings;
use crate::domain::Money;
use crate::gateways::stripe::{API_VERSION, EMULATOR_WEBHOOK_SECRET, signature_header};

/// What the emulator holds: every object by id (sessions, intents, charges, balance
/// transactions, refunds), as Stripe returns it.
#[derive(Default)]
struct State {
    objects: HashMap<String, Value>,
    /// Answers already given, by idempotency key: (what was asked, status, body).
    idempotency: HashMap<String, (String, u16, Value)>,
}

pub struct Emulator {
    public_base: String,
    webhook_url: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    state: Mutex<State>,
}

type Failure = (StatusCode, String);

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        let public_base = public_base.trim_end_matches('/').to_string();
        Emulator {
            webhook_url: format!("{public_base}/webhooks/stripe"),
            public_base,
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            state: Mutex::new(State::default()),
        }
    }

    fn object(&self, id: &str) -> Option<Value> {
        self.state.lock().ok()?.objects.get(id).cloned()
    }

    fn with_state<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "lock".to_string()))?;
        change(&mut state)
    }

    /// Sends a signed event about `object` to the webhook endpoint, retried in the background.
    fn notify(&self, kind: &str, object: Value) {
        self.notify_after(kind, object, 0);
    }

    /// Like `notify`, the first attempt no sooner than `head_start_ms` from now: Stripe's events
    /// trail the API answer that caused them.
    fn notify_after(&self, kind: &str, object: Value, head_start_ms: u64) {
        let now = now();
        let event = json!({
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now,
            "data": { "object": object },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": kind,
        });
        let Ok(body) = serde_json::to_vec(&event) else {
            return;
        };
        let signature = signature_header(EMULATOR_WEBHOOK_SECRET, now, &body);
        let mut retry_ms = self.retry_ms.clone();
        if let Some(first) = retry_ms.first_mut() {
            *first = (*first).max(head_start_ms);
        }
        tokio::spawn(common::deliver(
            self.http.clone(),
            self.webhook_url.clone(),
            vec![
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("Stripe-Signature".into(), signature),
                (
                    "User-Agent".into(),
                    "Stripe/1.0 (+https://stripe.com/docs/webhooks)".into(),
                ),
            ],
            body,
            retry_ms,
        ));
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The emulator's fee on a charge: 1.5 % + 0.25 €, rounded to the cent.
pub(crate) fn fee_for(amount: i64) -> i64 {
    (amount * 15 + 500) / 1000 + 25
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    api::routes(cfg);
    cfg.route("/sandbox/stripe/c/pay/{id}", web::get().to(hosted))
        .route("/sandbox/stripe/c/pay/{id}", web::post().to(hosted_action))
        .route("/sandbox/_control/stripe/{id}", web::post().to(control));
}

/// A payer's card accepted: a PaymentIntent that succeeded with the card's PaymentMethod (kept
/// on the session's Customer when the session asked to keep it), its charge and balance
/// transaction (with the fee), and the session complete and paid.
fn pay(state: &mut State, session_id: &str, amount: Option<i64>) -> Result<Value, Failure> {
    let session = open_session(state, session_id)?;
    let amount = amount.unwrap_or_else(|| session["amount_total"].as_i64().unwrap_or(0));
    let currency = session["currency"].clone();
    let intent_id = intent_of(state, &session);
    let keep = session["_intent"]["setup_future_usage"]
        .as_str()
        .map(str::to_string);
    let customer = match session["customer"].as_str() {
        Some(known) => Some(known.to_string()),
        None if session["customer_creation"] == "always" => Some(off_session::new_customer(
            state,
            session["customer_email"].as_str(),
        )),
        None => None,
    };
    let method = off_session::new_card_method(state, keep.as_ref().and(customer.as_deref()));
    if let Some(intent) = state.objects.get_mut(&intent_id) {
        intent["payment_method"] = json!(method);
        intent["customer"] = json!(customer);
        intent["setup_future_usage"] = json!(keep);
    }
    charge(state, &intent_id, amount, &currency);
    let session = state.objects.get_mut(session_id).ok_or((
        StatusCode::NOT_FOUND,
        "No such checkout.session".to_string(),
    ))?;
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["amount_subtotal"] = json!(amount);
    session["amount_total"] = json!(amount);
    session["payment_intent"] = json!(intent_id);
    session["customer"] = json!(customer);
    Ok(session.clone())
}

/// The intent's card accepted: a charge and its balance transaction (with the fee), and the
/// intent succeeded.
fn charge(state: &mut State, intent_id: &str, amount: i64, currency: &Value) {
    let charge_id = new_id("ch_");
    let txn_id = new_id("txn_");
    let fee = fee_for(amount);
    let created = now();
    state.objects.insert(
        txn_id.clone(),
        json!({
            "id": txn_id, "object": "balance_transaction", "amount": amount, "currency": currency,
            "fee": fee, "net": amount - fee, "status": "pending", "type": "charge",
            "fee_details": [{ "amount": fee, "currency": currency, "application": null,
                              "description": "Stripe processing fees", "type": "stripe_fee" }],
            "source": charge_id, "created": created, "available_on": created + 2 * 86_400,
        }),
    );
    state.objects.insert(
        charge_id.clone(),
        json!({
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": 0, "captured": true, "paid": true, "refunded": false,
            "status": "succeeded", "currency": currency, "payment_intent": intent_id,
            "balance_transaction": txn_id, "livemode": false, "created": created,
            "failure_code": null, "failure_message": null, "metadata": {},
        }),
    );
    if let Some(intent) = state.objects.get_mut(intent_id) {
        intent["amount"] = json!(amount);
        intent["amount_received"] = json!(amount);
        intent["status"] = json!("succeeded");
        intent["latest_charge"] = json!(charge_id);
        intent["last_payment_error"] = Value::Null;
    }
}

/// A card declined (or a processing error): the PaymentIntent waits for another card and
/// the session stays open, as on Stripe's page.
fn decline(state: &mut State, session_id: &str, code: &str) -> Result<Value, Failure> {
    let session = open_session(state, session_id)?;
    let intent_id = intent_of(state, &session);
    let message = if code == "card_declined" {
        "Your card was declined."
    } else {
        "An error occurred while processing your card. Try again in a little bit."
    };
    let charge_id = new_id("ch_");
    state.objects.insert(
        charge_id.clone(),
        json!({
            "id": charge_id, "object": "charge", "amount": session["amount_total"],
            "amount_captured": 0, "amount_refunded": 0, "captured": false, "paid": false,
            "refunded": false, "status": "failed", "currency": session["currency"],
            "payment_intent": intent_id, "balance_transaction": null, "livemode": false,
            "created": now(), "failure_code": code, "failure_message": message, "metadata": {},
        }),
    );
    let intent = state
        .objects
        .get_mut(&intent_id)
        .ok_or((StatusCode::NOT_FOUND, "No such payment_intent".to_string()))?;
    intent["status"] = json!("requires_payment_method");
    intent["latest_charge"] = json!(charge_id);
    intent["last_payment_error"] =
        json!({ "type": "card_error", "code": code, "message": message });
    let intent = intent.clone();
    if let Some(session) = state.objects.get_mut(session_id) {
        session["payment_intent"] = json!(intent_id);
    }
    Ok(intent)
}

/// The session expired (by its deadline or by the merchant); its PaymentIntent, if any, is
/// canceled.
fn expire(state: &mut State, session_id: &str) -> Result<Value, Failure> {
    let session = open_session(state, session_id)?;
    if let Some(intent_id) = session["payment_intent"].as_str()
        && let Some(intent) = state.objects.get_mut(intent_id)
    {
        intent["status"] = json!("canceled");
    }
    let session = state.objects.get_mut(session_id).ok_or((
        StatusCode::NOT_FOUND,
        "No such checkout.session".to_string(),
    ))?;
    session["status"] = json!("expired");
    Ok(session.clone())
}

fn open_session(state: &State, session_id: &str) -> Result<Value, Failure> {
    let session = state
        .objects
        .get(session_id)
        .filter(|s| s["object"] == "checkout.session")
        .ok_or((
            StatusCode::NOT_FOUND,
            format!("No such checkout.session: '{session_id}'"),
        ))?;
    if session["status"] != "open" {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "This Checkout Session is no longer open (its status is {}).",
                session["status"]
            ),
        ));
    }
    Ok(session.clone())
}

/// The session's PaymentIntent, created when the payer first confirms (API versions since
/// 2022-08-01 create none before).
fn intent_of(state: &mut State, session: &Value) -> String {
    if let Some(id) = session["payment_intent"].as_str() {
        return id.to_string();
    }
    let id = new_id("pi_");
    let extras = &session["_intent"];
    state.objects.insert(
        id.clone(),
        json!({
            "id": id, "object": "payment_intent", "amount": session["amount_total"],
            "amount_received": 0, "currency": session["currency"],
            "status": "requires_payment_method", "latest_charge": null,
            "last_payment_error": null, "livemode": false, "created": now(),
            "customer": session["customer"], "payment_method": null,
            "setup_future_usage": null,
            "capture_method": "automatic", "payment_method_types": ["card"],
            "metadata": extras.get("metadata").cloned().unwrap_or(json!({})),
            "description": extras.get("description").cloned().unwrap_or(Value::Null),
        }),
    );
    id
}

async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(session) = emulator
        .object(&id)
        .filter(|s| s["object"] == "checkout.session")
    else {
        return common::unknown_payment("Stripe");
    };
    let status = session["status"].as_str().unwrap_or("open");
    let page = HostedPage {
        gateway: "Stripe",
        action_url: &format!("/sandbox/stripe/c/pay/{id}"),
        amount: Money::from_cents(session["amount_total"].as_i64().unwrap_or(0)),
        description: session["_product_name"].as_str().unwrap_or(""),
        reference: session["client_reference_id"].as_str().unwrap_or(""),
        open: status == "open",
        status,
    };
    // Stripe's own words under the card field when the merchant keeps the card.
    match session["_intent"]["setup_future_usage"].as_str() {
        Some(_) => common::hosted_page_keeping_card(
            page,
            crate::i18n::current().t("sandbox.consent_stripe"),
        ),
        None => common::hosted_page(page),
    }
}

async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let outcome = emulator.with_state(|state| {
        let session = open_session(state, &id)?;
        let event = match action {
            PayerAction::Pay => Some(("checkout.session.completed", pay(state, &id, None)?)),
            PayerAction::Refuse => Some((
                "payment_intent.payment_failed",
                decline(state, &id, "card_declined")?,
            )),
            PayerAction::Error => Some((
                "payment_intent.payment_failed",
                decline(state, &id, "processing_error")?,
            )),
            PayerAction::Back => None,
        };
        Ok((session, event))
    });
    let (session, event) = match outcome {
        Ok(done) => done,
        Err((StatusCode::NOT_FOUND, _)) => {
            return common::unknown_payment("Stripe");
        }
        Err((code, _)) => {
            return common::plain(code, crate::i18n::current().t("sandbox.session_closed"));
        }
    };
    if let Some((kind, object)) = event {
        emulator.notify(kind, public(object));
    }
    let success_url = session["success_url"].as_str().unwrap_or("");
    let cancel_url = session["cancel_url"].as_str();
    // Stripe keeps a payer whose card failed on its page; with no card to try, the emulator
    // sends them back the only other way Stripe knows, the cancel URL.
    let location = match action {
        PayerAction::Pay => success_url.replace("{CHECKOUT_SESSION_ID}", &id),
        PayerAction::Refuse | PayerAction::Error | PayerAction::Back => cancel_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/sandbox/stripe/c/pay/{id}", emulator.public_base)),
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    if id.starts_with("pm_") {
        return off_session::control_card(&emulator, &id, &body.status);
    }
    let outcome = emulator.with_state(|state| match body.status.as_str() {
        "paid" => Ok(("checkout.session.completed", pay(state, &id, body.amount)?)),
        "refused" => Ok((
            "payment_intent.payment_failed",
            decline(state, &id, "card_declined")?,
        )),
        "error" => Ok((
            "payment_intent.payment_failed",
            decline(state, &id, "processing_error")?,
        )),
        "cancelled" | "expired" => Ok(("checkout.session.expired", expire(state, &id)?)),
        _ => Err((StatusCode::BAD_REQUEST, "unknown status".to_string())),
    });
    match outcome {
        Ok((kind, object)) => {
            let object = public(object);
            if body.notify {
                emulator.notify(kind, object.clone());
            }
            HttpResponse::Ok().json(object)
        }
        Err((code, message)) => common::plain(code, &message),
    }
}

/// An object as Stripe shows it: without the emulator's own bookkeeping (`_` fields).
fn public(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.retain(|k, _| !k.starts_with('_'));
    }
    object
}
