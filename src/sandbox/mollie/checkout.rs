//! The emulated hosted checkout (Mollie's test-mode page: the payer picks the outcome) and
//! the test control that settles a payment without a payer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::wire::Problem;
use super::{EmulatedPayment, Emulator, hal, now};
use crate::domain::Money;
use crate::sandbox::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};

pub(super) async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(payment) = emulator.payment(&id) else {
        return common::unknown_payment("Mollie");
    };
    common::hosted_page(HostedPage {
        gateway: "Mollie",
        action_url: &format!("/sandbox/mollie/checkout/{}", payment.id),
        amount: payment.amount,
        description: &payment.description,
        reference: &payment.id,
        open: payment.status == "open",
        status: payment.status,
    })
}

/// Closes an open payment as the payer or the test control says.
fn settle(
    emulator: &Emulator,
    id: &str,
    status: &'static str,
    paid_amount: Option<i64>,
) -> Result<EmulatedPayment, Problem> {
    emulator.update(id, |p| {
        if p.status != "open" {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                common::already_finished(),
            ));
        }
        p.status = status;
        p.closed_at = Some(now());
        if let Some(amount) = paid_amount {
            p.amount = Money::from_cents(amount);
        }
        Ok(())
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
    // Mollie has no "error" status: a payment the method could not complete is `failed`.
    let status = match action {
        PayerAction::Pay => "paid",
        PayerAction::Refuse | PayerAction::Error => "failed",
        PayerAction::Back => "canceled",
    };
    let payment = match settle(&emulator, &id, status, None) {
        Ok(payment) => payment,
        Err(problem) => return common::plain(problem.status, &problem.detail),
    };
    // Mollie appends nothing: the merchant reads the status from the API.
    let location = match action {
        PayerAction::Back => payment.cancel_url.clone(),
        _ => None,
    }
    .unwrap_or_else(|| payment.redirect_url.clone());
    emulator.into_inner().notify(&payment);
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

pub(super) async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let status = match body.status.as_str() {
        "paid" => "paid",
        "refused" | "error" => "failed",
        "cancelled" => "canceled",
        "expired" => "expired",
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match settle(&emulator, &id, status, body.amount) {
        Ok(payment) => {
            let answer = emulator.payment_json(&payment, true);
            if body.notify {
                emulator.into_inner().notify(&payment);
            }
            hal(StatusCode::OK, &answer)
        }
        Err(problem) => problem.response(),
    }
}
