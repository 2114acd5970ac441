//! The emulated hosted page (Stancer's test mode: the payer picks the outcome) and the test
//! control that settles an intent without a payer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::wire::Refusal;
use super::{EmulatedPayment, Emulator, new_id, now, ok, payment_json, saved};
use crate::domain::Money;
use crate::sandbox::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};

pub(super) async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Ok(intent) = emulator.with_state(|s| {
        s.intents
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| Refusal::not_found(&id))
    }) else {
        return common::unknown_payment("Stancer");
    };
    let page = HostedPage {
        gateway: "Stancer",
        action_url: &format!("/sandbox/stancer/page/{}", intent.id),
        amount: Money::from_cents(intent.amount),
        description: intent.description.as_deref().unwrap_or(""),
        reference: intent.order_id.as_deref().unwrap_or(&intent.id),
        open: intent.status == "require_payment_method",
        status: intent.status,
    };
    match intent.customer {
        Some(_) => common::hosted_page_keeping_card(
            page,
            crate::i18n::current().t("sandbox.consent_stancer"),
        ),
        None => common::hosted_page(page),
    }
}

/// What an attempt on the page leaves: the payment's status and bank response, the intent's.
fn outcome(status: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match status {
        "paid" => Some(("to_capture", "00", "captured")),
        "refused" => Some(("refused", "05", "unpaid")),
        "error" => Some(("failed", "91", "unpaid")),
        "expired" => Some(("expired", "00", "unpaid")),
        _ => None,
    }
}

/// Closes an open intent: with a payment (paid, refused, failed, expired) or without one
/// (cancelled). `paid_amount` overrides what the payment says was paid.
fn settle(
    emulator: &Emulator,
    id: &str,
    status: &str,
    paid_amount: Option<i64>,
) -> Result<(String, Option<EmulatedPayment>), Refusal> {
    emulator.with_state(|s| {
        let intent = s
            .intents
            .get_mut(id)
            .ok_or_else(|| Refusal::not_found(id))?;
        if intent.status != "require_payment_method" {
            return Err(Refusal::conflict(common::already_finished()));
        }
        let Some((payment_status, response, intent_status)) = outcome(status) else {
            intent.status = "canceled";
            return Ok((intent.return_url.clone(), None));
        };
        // The card typed on the page; kept (tokenized) for the intent's customer, if any.
        let customer = intent.customer.clone();
        let card = saved::new_card(s, customer.as_deref());
        let intent = s
            .intents
            .get_mut(id)
            .ok_or_else(|| Refusal::not_found(id))?;
        intent.card = Some(card.clone());
        let payment = EmulatedPayment {
            id: new_id("paym_"),
            status: payment_status,
            response,
            amount: paid_amount.unwrap_or(intent.amount),
            currency: intent.currency.clone(),
            description: intent.description.clone(),
            order_id: intent.order_id.clone(),
            created: now(),
            refunds: Vec::new(),
            card: Some(card),
            customer: intent.customer.clone(),
            unique_id: None,
        };
        intent.status = intent_status;
        intent.payment = Some(payment.id.clone());
        let return_url = intent.return_url.clone();
        s.payments.insert(payment.id.clone(), payment.clone());
        Ok((return_url, Some(payment)))
    })
}

pub(super) async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let status = match action {
        PayerAction::Pay => "paid",
        PayerAction::Refuse => "refused",
        PayerAction::Error => "error",
        PayerAction::Back => "",
    };
    let return_url = if action == PayerAction::Back {
        // Leaving the page changes nothing at Stancer: the intent stays open, unused.
        match emulator.with_state(|s| {
            s.intents
                .get(id.as_str())
                .map(|i| i.return_url.clone())
                .ok_or_else(|| Refusal::not_found(&id))
        }) {
            Ok(url) => url,
            Err(_) => return common::unknown_payment("Stancer"),
        }
    } else {
        match settle(&emulator, &id, status, None) {
            Ok((url, _)) => url,
            Err(refusal) => {
                return common::plain(refusal.status, &common::already_finished());
            }
        }
    };
    if action != PayerAction::Back {
        emulator.notify(&id);
    }
    // Stancer appends nothing: the merchant reads the outcome from the API.
    HttpResponse::SeeOther()
        .insert_header(("Location", return_url))
        .finish()
}

pub(super) async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    if id.starts_with("card_") {
        return saved::control_card(&emulator, &id, &body.status);
    }
    let status = match body.status.as_str() {
        s @ ("paid" | "refused" | "error" | "expired" | "cancelled") => s,
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match settle(&emulator, &id, status, body.amount) {
        Ok((_, payment)) => {
            if body.notify {
                emulator.notify(&id);
            }
            ok(
                StatusCode::OK,
                payment.as_ref().map(payment_json).unwrap_or_default(),
            )
        }
        Err(refusal) => refusal.response(),
    }
}
