//! The emulated approval page (`/sandbox/paypal/checkoutnow?token=…`), which returns the
//! payer to `return_url` with `token` and `PayerID` or to `cancel_url` with `token`, and the
//! test control.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use super::{Emulator, event_headers, new_id};
use crate::domain::Money;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: String,
}

fn awaiting_payer(status: &str) -> bool {
    matches!(status, "PAYER_ACTION_REQUIRED" | "CREATED")
}

pub async fn page(emulator: web::Data<Emulator>, query: web::Query<TokenQuery>) -> HttpResponse {
    let Some(order) = emulator.order(&query.token) else {
        return common::unknown_payment("PayPal");
    };
    let action_url = common::with_query("/sandbox/paypal/checkoutnow", &[("token", &order.id)]);
    common::hosted_page(HostedPage {
        gateway: "PayPal",
        action_url: &action_url,
        amount: order.amount,
        description: order.description.as_deref().unwrap_or(""),
        reference: &order.id,
        open: awaiting_payer(order.status),
        status: order.status,
    })
}

/// The payer's choice. Paying approves the order (the merchant captures it); a refusal is
/// a funding source that will be declined at capture; an error or going back returns the
/// payer through `cancel_url`, since PayPal has no error URL.
pub async fn action(
    emulator: web::Data<Emulator>,
    query: web::Query<TokenQuery>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let payer_id = new_id()[..13].to_string();
    let changed = emulator.update(&query.token, |order| {
        if !awaiting_payer(order.status) {
            return Ok(None);
        }
        if matches!(action, PayerAction::Pay | PayerAction::Refuse) {
            order.status = "APPROVED";
            order.declines = action == PayerAction::Refuse;
            order.payer_id = Some(payer_id.clone());
        }
        Ok(Some(order.clone()))
    });
    let order = match changed {
        Ok(Some(order)) => order,
        Ok(None) => {
            return common::plain(
                StatusCode::CONFLICT,
                crate::i18n::current().t("sandbox.order_closed"),
            );
        }
        Err(problem) => return problem.response(),
    };
    let target = match action {
        PayerAction::Pay | PayerAction::Refuse => {
            emulator.emit(
                &order,
                "CHECKOUT.ORDER.APPROVED",
                "checkout-order",
                emulator.order_json(&order),
            );
            common::with_query(
                &order.return_url,
                &[("token", &order.id), ("PayerID", &payer_id)],
            )
        }
        PayerAction::Error | PayerAction::Back => {
            common::with_query(&order.cancel_url, &[("token", &order.id)])
        }
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", target))
        .finish()
}

/// `POST /sandbox/_control/paypal/{order_id}`: the payer approves (`paid`; `refused` and
/// `error` approve with a funding source declined at capture), or the order is voided
/// (`cancelled`, `expired`). `amount` changes what PayPal says the order is for.
pub async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let body = body.into_inner();
    let changed = emulator.update(&id, |order| {
        order.notify = body.notify;
        if let Some(cents) = body.amount {
            order.amount = Money::from_cents(cents);
        }
        match body.status.as_str() {
            "paid" | "refused" | "error" => {
                order.status = "APPROVED";
                order.declines = body.status != "paid";
                order.payer_id = Some(new_id()[..13].to_string());
            }
            "cancelled" | "expired" => order.status = "VOIDED",
            _ => return Ok(None),
        }
        Ok(Some(order.clone()))
    });
    match changed {
        Ok(Some(order)) => {
            if order.status == "APPROVED" {
                emulator.emit(
                    &order,
                    "CHECKOUT.ORDER.APPROVED",
                    "checkout-order",
                    emulator.order_json(&order),
                );
            }
            HttpResponse::Ok().json(emulator.order_json(&order))
        }
        Ok(None) => common::plain(StatusCode::BAD_REQUEST, "statut inconnu"),
        Err(problem) => problem.response(),
    }
}

/// `GET /sandbox/_control/paypal/{order_id}`: the order, the request that created it, the
/// webhook events sent about it (headers and body, as delivered) and its IPN history.
pub async fn inspect(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(order) = emulator.order(&id) else {
        return common::unknown_payment("PayPal");
    };
    let events: Vec<Value> = emulator
        .events
        .lock()
        .map(|events| {
            events
                .iter()
                .filter(|e| e.order_id == order.id)
                .map(|e| json!({"headers": event_headers(e), "body": e.body}))
                .collect()
        })
        .unwrap_or_default();
    let ipns: Vec<String> = emulator
        .ipns
        .lock()
        .map(|ipns| {
            ipns.iter()
                .filter(|(o, _)| *o == order.id)
                .map(|(_, body)| body.clone())
                .collect()
        })
        .unwrap_or_default();
    HttpResponse::Ok().json(json!({
        "order": emulator.order_json(&order),
        "create_request": order.create_request,
        "refund_requests": order.refunds.iter().map(|r| r.request.clone()).collect::<Vec<_>>(),
        "events": events,
        "ipns": ipns,
    }))
}
