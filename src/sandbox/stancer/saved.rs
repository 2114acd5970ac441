//! Saved cards at the emulated Stancer: customers (`POST /v2/customers/`), the card a payer
//! used on an intent made for a customer (kept, "tokenized", for that customer), and payments
//! on a kept card (`POST /v2/payments/`) with `unique_id` as unicity key. Refused as Stancer
//! refuses: an unknown customer or card, a card not kept for that customer, a `unique_id`
//! used before, `auth: false`. A card's next answer is set with
//! `POST /sandbox/_control/stancer/{card_…}` and a status of `ok`, `authentication_required`
//! (bank answer `1A`) or `declined` (`05`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::wire::{self, Refusal};
use super::{EmulatedPayment, Emulator, State, answer, new_id, now, ok, payment_json};
use crate::sandbox::common;

const CUSTOMER_FIELDS: [&str; 4] = ["name", "email", "mobile", "external_id"];
const PAYMENT_FIELDS: [&str; 9] = [
    "amount",
    "currency",
    "description",
    "order_id",
    "unique_id",
    "capture",
    "customer",
    "card",
    "auth",
];
const BEHAVIOURS: [&str; 3] = ["ok", "authentication_required", "declined"];

#[derive(Clone)]
pub(super) struct EmulatedCard {
    id: String,
    /// The customer it is kept for; None: usable once, on its own payment.
    customer: Option<String>,
    /// What its next payment without the payer answers.
    behaviour: &'static str,
    created: i64,
}

fn card_json(card: &EmulatedCard) -> Value {
    json!({
        "id": card.id,
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2034,
        "country": "FR",
        "funding": "credit",
        "nature": "personal",
        "network": "visa",
        "name": Value::Null,
        "tokenize": card.customer.is_some(),
        "created": card.created,
        "live_mode": false,
    })
}

/// The test card a payer used on the hosted page (Visa 4242).
pub(super) fn new_card(state: &mut State, customer: Option<&str>) -> String {
    let card = EmulatedCard {
        id: new_id("card_"),
        customer: customer.map(str::to_string),
        behaviour: "ok",
        created: now(),
    };
    let id = card.id.clone();
    state.cards.insert(id.clone(), card);
    id
}

pub(super) async fn api_create_customer(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        let fields = wire::object(&body, &CUSTOMER_FIELDS)?;
        let name = wire::text(&fields, "name", 4, 64)?;
        let email = wire::text(&fields, "email", 5, 64)?;
        let mobile = wire::text(&fields, "mobile", 8, 16)?;
        let external_id = wire::text(&fields, "external_id", 1, 36)?;
        if email.as_ref().is_some_and(|e| !e.contains('@')) {
            return Err(Refusal::field("email", "Must be an email address"));
        }
        if email.is_none() && mobile.is_none() {
            return Err(Refusal::invalid(
                "You must provide an email or a phone number to create a customer.",
            ));
        }
        emulator.with_state(|s| {
            if let Some(external) = &external_id
                && s.customers.values().any(|c| c["external_id"] == *external)
            {
                return Err(Refusal::conflict(format!(
                    "A customer with external_id {external} already exists"
                )));
            }
            let id = new_id("cust_");
            let customer = json!({
                "id": id, "name": name, "email": email, "mobile": mobile,
                "external_id": external_id, "created": now(), "live_mode": false,
            });
            s.customers.insert(id, customer.clone());
            Ok((StatusCode::OK, customer))
        })
    }))
}

pub(super) async fn api_get_customer(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        emulator.with_state(|s| {
            s.customers
                .get(id.as_str())
                .map(|c| (StatusCode::OK, c.clone()))
                .ok_or_else(|| Refusal::not_found(&id))
        })
    }))
}

pub(super) async fn api_get_card(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        emulator.with_state(|s| {
            s.cards
                .get(id.as_str())
                .map(|c| (StatusCode::OK, card_json(c)))
                .ok_or_else(|| Refusal::not_found(&id))
        })
    }))
}

pub(super) async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    answer(emulator.authenticate(&request).and_then(|()| {
        let fields = wire::object(&body, &PAYMENT_FIELDS)?;
        let amount =
            wire::cents(&fields, "amount")?.ok_or_else(|| Refusal::field("amount", "Required"))?;
        let currency = match fields.get("currency") {
            Some(Value::String(c)) if wire::CURRENCIES.contains(&c.as_str()) => c.clone(),
            Some(_) => {
                return Err(Refusal::field(
                    "currency",
                    "Must be one of eur, gbp, usd (lowercase)",
                ));
            }
            None => return Err(Refusal::field("currency", "Required")),
        };
        let description = wire::text(&fields, "description", 3, 64)?;
        let order_id = wire::text(&fields, "order_id", 1, 36)?;
        let unique_id = wire::text(&fields, "unique_id", 1, 36)?;
        match fields.get("auth") {
            None => {}
            Some(Value::Bool(false)) => {
                return Err(Refusal::field(
                    "auth",
                    "Must not be false: leave it out for a payment without authentication",
                ));
            }
            Some(_) => {
                return Err(Refusal::field(
                    "auth",
                    "Authentication needs the payer: not for a payment on a kept card",
                ));
            }
        }
        if !matches!(fields.get("capture"), None | Some(Value::Bool(_))) {
            return Err(Refusal::field("capture", "Must be a boolean"));
        }
        // Without the payer, a payment can only be made on a card kept for a customer.
        let customer = wire::text(&fields, "customer", 1, 64)?
            .ok_or_else(|| Refusal::field("customer", "Required for a payment on a kept card"))?;
        let card_id = wire::text(&fields, "card", 1, 64)?
            .ok_or_else(|| Refusal::field("card", "Required"))?;
        emulator.with_state(|s| {
            if !s.customers.contains_key(&customer) {
                return Err(Refusal::not_found(&customer));
            }
            let card = s
                .cards
                .get(&card_id)
                .ok_or_else(|| Refusal::not_found(&card_id))?;
            if card.customer.as_deref() != Some(customer.as_str()) {
                return Err(Refusal::field(
                    "card",
                    "This card is not kept (tokenized) for this customer",
                ));
            }
            if let Some(unique) = &unique_id
                && s.payments
                    .values()
                    .any(|p| p.unique_id.as_deref() == Some(unique))
            {
                return Err(Refusal::conflict(format!(
                    "A payment with unique_id {unique} already exists"
                )));
            }
            let (status, response) = match card.behaviour {
                "authentication_required" => ("refused", "1A"),
                "declined" => ("refused", "05"),
                _ => ("to_capture", "00"),
            };
            let payment = EmulatedPayment {
                id: new_id("paym_"),
                status,
                response,
                amount,
                currency,
                description,
                order_id,
                created: now(),
                refunds: Vec::new(),
                card: Some(card_id.clone()),
                customer: Some(customer.clone()),
                unique_id,
            };
            let body = payment_json(&payment);
            s.payments.insert(payment.id.clone(), payment);
            Ok((StatusCode::OK, body))
        })
    }))
}

/// Test control of a kept card: what its next payments without the payer answer.
pub(super) fn control_card(emulator: &Emulator, id: &str, behaviour: &str) -> HttpResponse {
    let Some(behaviour) = BEHAVIOURS.into_iter().find(|b| *b == behaviour) else {
        return common::plain(
            StatusCode::BAD_REQUEST,
            "status must be ok, authentication_required or declined",
        );
    };
    let changed = emulator.with_state(|s| {
        let card = s.cards.get_mut(id).ok_or_else(|| Refusal::not_found(id))?;
        card.behaviour = behaviour;
        Ok(card_json(card))
    });
    match changed {
        Ok(card) => ok(StatusCode::OK, card),
        Err(refusal) => refusal.response(),
    }
}
