//! Saved cards at the emulated Stripe: Customers, PaymentMethods kept on them by a Checkout
//! Session (`setup_future_usage`), PaymentIntents confirmed off-session on such a method, and
//! detaching. What Stripe refuses is refused: an unknown customer or method, a method that is
//! not the customer's, an intent not confirmed off-session, amounts out of bounds. A card's
//! next off-session answer is set with `POST /sandbox/_control/stripe/{pm_…}` and a status of
//! `ok`, `authentication_required` or `declined`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::api::{error, expanded, failure, gate, idempotent, idempotent_answer, invalid};
use super::params::{ParamError, Params};
use super::rules::{check_metadata, metadata};
use super::{Emulator, Failure, State, charge, new_id, now, public};

const INTENT_PARAMS: &[&str] = &[
    "amount",
    "currency",
    "customer",
    "payment_method",
    "off_session",
    "confirm",
    "description",
    "receipt_email",
    "statement_descriptor_suffix",
    "metadata[*]",
    "payment_method_types[*]",
    "expand[*]",
];

/// What a kept card answers to its next off-session charge (`_off_session`).
const BEHAVIOURS: [&str; 3] = ["ok", "authentication_required", "declined"];

pub(super) fn new_customer(state: &mut State, email: Option<&str>) -> String {
    let id = new_id("cus_");
    state.objects.insert(
        id.clone(),
        json!({
            "id": id, "object": "customer", "email": email, "livemode": false,
            "created": now(), "metadata": {},
        }),
    );
    id
}

/// The test card a payer typed (Visa 4242), as a PaymentMethod attached to `customer` when the
/// session keeps it.
pub(super) fn new_card_method(state: &mut State, customer: Option<&str>) -> String {
    let id = new_id("pm_");
    state.objects.insert(
        id.clone(),
        json!({
            "id": id, "object": "payment_method", "type": "card", "customer": customer,
            "card": { "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034,
                      "country": "FR", "funding": "credit" },
            "billing_details": { "email": null, "name": null },
            "livemode": false, "created": now(), "metadata": {},
            "_off_session": "ok",
        }),
    );
    id
}

/// The checks Stripe makes before looking at any object; returns (amount, currency).
fn check_intent(params: &Params) -> Result<(i64, String), ParamError> {
    params.only(INTENT_PARAMS)?;
    check_metadata(params, "metadata")?;
    let amount = params
        .integer("amount")?
        .ok_or_else(|| ParamError::new("Missing required param: amount.", "amount"))?;
    let currency = params.required("currency")?.to_string();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ParamError::new(
            format!("Invalid currency: {currency}"),
            "currency",
        ));
    }
    if amount < 50 {
        return Err(ParamError::new(
            format!("Amount must be at least €0.50 {currency}"),
            "amount",
        ));
    }
    if amount > 99_999_999 {
        return Err(ParamError::new(
            "Amount must be no more than 99999999",
            "amount",
        ));
    }
    let confirm = params.get("confirm");
    if !matches!(confirm, None | Some("true" | "false")) {
        return Err(ParamError::new("Invalid boolean", "confirm"));
    }
    match params.get("off_session") {
        Some("true" | "one_off" | "recurring") if confirm == Some("true") => {}
        Some("true" | "one_off" | "recurring") => {
            return Err(ParamError::new(
                "The parameter `off_session` can only be used with `confirm=true`.",
                "off_session",
            ));
        }
        Some("false") | None => {
            return Err(ParamError::new(
                "This emulator only knows PaymentIntents that charge a saved card off-session \
                 (`off_session=true` with `confirm=true`).",
                "off_session",
            ));
        }
        Some(other) => {
            return Err(ParamError::new(
                format!("Invalid off_session: {other}"),
                "off_session",
            ));
        }
    }
    for (_, method) in params.under("payment_method_types") {
        if method != "card" {
            return Err(ParamError::new(
                format!("The payment method type {method:?} is invalid for a saved card."),
                "payment_method_types",
            ));
        }
    }
    params.required("customer")?;
    params.required("payment_method")?;
    Ok((amount, currency))
}

/// A missing object, in Stripe's words (`resource_missing` is a 400 on a parameter).
fn missing(what: &str, id: &str) -> Failure {
    (StatusCode::BAD_REQUEST, format!("No such {what}: '{id}'"))
}

/// Creates and confirms the intent on the kept card: 200 with the intent when the bank
/// accepts, a 402 card error naming the intent when it wants authentication or declines.
/// Returns the answer and the intent its event is about.
fn confirm_off_session(
    state: &mut State,
    params: &Params,
    amount: i64,
    currency: &str,
) -> Result<(StatusCode, Value, Value), Failure> {
    let customer = params.get("customer").unwrap_or_default();
    let method_id = params.get("payment_method").unwrap_or_default();
    if !state
        .objects
        .get(customer)
        .is_some_and(|c| c["object"] == "customer")
    {
        return Err(missing("customer", customer));
    }
    let method = state
        .objects
        .get(method_id)
        .filter(|m| m["object"] == "payment_method")
        .cloned()
        .ok_or_else(|| missing("PaymentMethod", method_id))?;
    if method["customer"] != customer {
        return Err((
            StatusCode::BAD_REQUEST,
            if method["customer"].is_null() {
                "The provided PaymentMethod was previously used with a PaymentIntent without \
                 Customer attachment, or was detached from a Customer. It may not be used again."
                    .to_string()
            } else {
                format!("The provided PaymentMethod does not belong to the Customer '{customer}'.")
            },
        ));
    }
    let id = new_id("pi_");
    state.objects.insert(
        id.clone(),
        json!({
            "id": id, "object": "payment_intent", "amount": amount, "amount_received": 0,
            "currency": currency, "status": "requires_payment_method", "latest_charge": null,
            "last_payment_error": null, "livemode": false, "created": now(),
            "capture_method": "automatic", "confirmation_method": "automatic",
            "payment_method_types": ["card"], "customer": customer, "payment_method": method_id,
            "setup_future_usage": null, "description": params.get("description"),
            "metadata": metadata(params, "metadata"),
        }),
    );
    let (code, decline_code, message) = match method["_off_session"].as_str().unwrap_or("ok") {
        "authentication_required" => (
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
        ),
        "declined" => (
            "card_declined",
            "generic_decline",
            "Your card was declined.",
        ),
        _ => {
            charge(state, &id, amount, &json!(currency));
            let intent = state.objects.get(&id).cloned().unwrap_or_default();
            return Ok((StatusCode::OK, intent.clone(), intent));
        }
    };
    let charge_id = new_id("ch_");
    state.objects.insert(
        charge_id.clone(),
        json!({
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": 0,
            "amount_refunded": 0, "captured": false, "paid": false, "refunded": false,
            "status": "failed", "currency": currency, "payment_intent": id,
            "balance_transaction": null, "livemode": false, "created": now(),
            "failure_code": code, "failure_message": message, "metadata": {},
        }),
    );
    let detail = json!({
        "type": "card_error", "code": code, "decline_code": decline_code, "message": message,
        "charge": charge_id,
    });
    let intent = state
        .objects
        .get_mut(&id)
        .ok_or_else(|| missing("payment_intent", &id))?;
    intent["latest_charge"] = json!(charge_id);
    intent["last_payment_error"] = detail.clone();
    let intent = intent.clone();
    let mut body = detail;
    body["payment_intent"] = intent.clone();
    Ok((
        StatusCode::PAYMENT_REQUIRED,
        json!({ "error": body }),
        intent,
    ))
}

pub(super) async fn create_payment_intent(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return invalid(e),
    };
    let (amount, currency) = match check_intent(&params) {
        Ok(checked) => checked,
        Err(e) => return invalid(e),
    };
    let expand = params.list("expand");
    let mut confirmed = None;
    let answer = idempotent_answer(&emulator, &request, &body, |state| {
        let (status, answer, intent) = confirm_off_session(state, &params, amount, &currency)?;
        confirmed = Some(intent);
        if status.is_success() {
            return expanded(&state.objects, answer, &expand).map(|intent| (status, intent));
        }
        Ok((status, answer))
    });
    // The event trails the answer, as at Stripe; a replayed answer announces nothing new.
    if let Some(intent) = confirmed {
        let kind = if intent["status"] == "succeeded" {
            "payment_intent.succeeded"
        } else {
            "payment_intent.payment_failed"
        };
        emulator.notify_after(kind, public(intent), 200);
    }
    answer
}

pub(super) async fn detach_payment_method(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return invalid(e),
    };
    if let Err(e) = params.only(&["expand[*]"]) {
        return invalid(e);
    }
    idempotent(&emulator, &request, &body, |state| {
        let method = state
            .objects
            .get_mut(id.as_str())
            .filter(|m| m["object"] == "payment_method")
            .ok_or((
                StatusCode::NOT_FOUND,
                format!("No such PaymentMethod: '{id}'"),
            ))?;
        if method["customer"].is_null() {
            return Err((
                StatusCode::BAD_REQUEST,
                "The payment method you provided is not attached to a customer so detachment \
                 is impossible."
                    .to_string(),
            ));
        }
        method["customer"] = Value::Null;
        Ok(method.clone())
    })
}

/// Test control of a kept card: what its next off-session charges answer.
pub(super) fn control_card(emulator: &Emulator, id: &str, behaviour: &str) -> HttpResponse {
    if !BEHAVIOURS.contains(&behaviour) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "status must be ok, authentication_required or declined",
            Some("status"),
        );
    }
    let changed = emulator.with_state(|state| {
        let method = state
            .objects
            .get_mut(id)
            .filter(|m| m["object"] == "payment_method")
            .ok_or((
                StatusCode::NOT_FOUND,
                format!("No such PaymentMethod: '{id}'"),
            ))?;
        method["_off_session"] = json!(behaviour);
        Ok(public(method.clone()))
    });
    match changed {
        Ok(method) => HttpResponse::Ok().json(method),
        Err(f) => failure(f),
    }
}
