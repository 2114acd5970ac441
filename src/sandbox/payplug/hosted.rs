//! The emulated PayPlug payment page and the test control: how an open payment ends, where
//! the payer is sent back, and the notification that follows.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::{EmulatedPayment, Emulator, Refusal, now};
use crate::domain::Money;
use crate::sandbox::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};

fn status_label(payment: &EmulatedPayment) -> &'static str {
    crate::i18n::current().t(match (payment.paid_at, payment.failure) {
        (Some(_), _) => "sandbox.status_paid",
        (None, Some(("aborted", _))) => "sandbox.status_abandoned",
        (None, Some(("timeout", _))) => "sandbox.status_expired",
        (None, Some(_)) => "sandbox.status_refused",
        (None, None) => "sandbox.status_open",
    })
}

pub(super) async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(payment) = emulator.payment(&id) else {
        return common::unknown_payment("PayPlug");
    };
    let reference = payment
        .metadata
        .get("obole_payment_id")
        .and_then(Value::as_str)
        .unwrap_or(&payment.id);
    common::hosted_page(HostedPage {
        gateway: "PayPlug",
        action_url: &format!("/sandbox/payplug/pay/{}", payment.id),
        amount: Money::from_cents(payment.amount),
        description: payment.description.as_deref().unwrap_or(""),
        reference,
        open: payment.is_open(),
        status: status_label(&payment),
    })
}

/// What happened to an open payment, as PayPlug would report it.
#[derive(Clone, Copy)]
enum Outcome {
    Paid,
    Failed(&'static str, &'static str),
}

/// Settles an open payment as the payer or the test control says.
fn settle(
    emulator: &Emulator,
    id: &str,
    outcome: Outcome,
    paid_amount: Option<i64>,
) -> Result<EmulatedPayment, Refusal> {
    emulator.update(id, |p| {
        if !p.is_open() {
            return Err((StatusCode::CONFLICT, common::already_finished()));
        }
        match outcome {
            Outcome::Paid => {
                p.paid_at = Some(now());
                if let Some(amount) = paid_amount {
                    p.amount = amount;
                }
            }
            Outcome::Failed(code, message) => p.failure = Some((code, message)),
        }
        Ok(())
    })
}

const DECLINED: Outcome = Outcome::Failed("card_declined", "The card was declined.");
const PROCESSING: Outcome = Outcome::Failed(
    "processing_error",
    "An error occurred while processing the payment.",
);
const ABORTED: Outcome = Outcome::Failed("aborted", "The customer aborted the payment.");
const TIMEOUT: Outcome = Outcome::Failed(
    "timeout",
    "The customer has not tried to pay and left the payment page.",
);

pub(super) async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let outcome = match action {
        PayerAction::Pay => Outcome::Paid,
        PayerAction::Refuse => DECLINED,
        PayerAction::Error => PROCESSING,
        PayerAction::Back => ABORTED,
    };
    let payment = match settle(&emulator, &id, outcome, None) {
        Ok(payment) => payment,
        Err((code, message)) => return common::plain(code, &message),
    };
    // PayPlug sends the payer back to the return URL, paid or not, and to the cancel URL
    // when they give up; it appends nothing to either.
    let location = match action {
        PayerAction::Back => payment
            .cancel_url
            .clone()
            .unwrap_or_else(|| payment.return_url.clone()),
        _ => payment.return_url.clone(),
    };
    let resource = payment.to_json(&emulator.public_base);
    emulator
        .into_inner()
        .notify(payment.notification_url.as_deref(), &resource);
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

pub(super) async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let outcome = match body.status.as_str() {
        "paid" => Outcome::Paid,
        "refused" => DECLINED,
        "error" => PROCESSING,
        "cancelled" => ABORTED,
        "expired" => TIMEOUT,
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match settle(&emulator, &id, outcome, body.amount) {
        Ok(payment) => {
            let resource = payment.to_json(&emulator.public_base);
            if body.notify {
                emulator
                    .into_inner()
                    .notify(payment.notification_url.as_deref(), &resource);
            }
            HttpResponse::Ok().json(resource)
        }
        Err((code, message)) => common::plain(code, &message),
    }
}
