//! Refunds at the emulated Stripe: of a PaymentIntent's charge, full or partial, each one
//! announced by a signed `charge.refunded` event.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::api::{failure, gate, idempotent, invalid};
use super::params::{ParamError, Params};
use super::rules::{REFUND_PARAMS, check_metadata, metadata};
use super::{Emulator, Failure, State, new_id, now, public};

pub(super) async fn create_refund(
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
    let checked = params
        .only(REFUND_PARAMS)
        .and_then(|()| check_metadata(&params, "metadata"))
        .and_then(|()| params.integer("amount"));
    let amount = match checked {
        Ok(amount) => amount,
        Err(e) => return invalid(e),
    };
    if let Some(reason) = params.get("reason")
        && !["duplicate", "fraudulent", "requested_by_customer"].contains(&reason)
    {
        return invalid(ParamError::new(
            format!("Invalid reason: {reason}"),
            "reason",
        ));
    }
    let refunded = {
        let params = &params;
        idempotent(&emulator, &request, &body, move |state| {
            refund(state, params, amount)
        })
    };
    // A replayed answer announces nothing new.
    if refunded.status().is_success()
        && refunded.headers().get("idempotent-replayed").is_none()
        && let Some(charge) = params
            .get("payment_intent")
            .and_then(|pi| emulator.object(pi))
            .and_then(|pi| {
                pi["latest_charge"]
                    .as_str()
                    .and_then(|c| emulator.object(c))
            })
            .or_else(|| params.get("charge").and_then(|c| emulator.object(c)))
    {
        emulator.notify("charge.refunded", public(charge));
    }
    refunded
}

fn refund(state: &mut State, params: &Params, amount: Option<i64>) -> Result<Value, Failure> {
    let charge_id = match (params.get("payment_intent"), params.get("charge")) {
        (Some(intent), None) => {
            let intent = state
                .objects
                .get(intent)
                .filter(|o| o["object"] == "payment_intent")
                .ok_or((
                    StatusCode::NOT_FOUND,
                    format!("No such payment_intent: '{intent}'"),
                ))?;
            if intent["status"] != "succeeded" {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "This PaymentIntent does not have a successful charge to refund.".into(),
                ));
            }
            intent["latest_charge"].as_str().unwrap_or("").to_string()
        }
        (None, Some(charge)) => charge.to_string(),
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "You must pass exactly one of `charge` or `payment_intent`.".into(),
            ));
        }
    };
    let charge = state
        .objects
        .get_mut(&charge_id)
        .filter(|o| o["object"] == "charge" && o["status"] == "succeeded")
        .ok_or((
            StatusCode::NOT_FOUND,
            format!("No such charge: '{charge_id}'"),
        ))?;
    let captured = charge["amount_captured"].as_i64().unwrap_or(0);
    let already = charge["amount_refunded"].as_i64().unwrap_or(0);
    let amount = amount.unwrap_or(captured - already);
    if amount < 1 {
        return Err((
            StatusCode::BAD_REQUEST,
            "Refund amount must be a positive integer.".into(),
        ));
    }
    if already + amount > captured {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                captured - already
            ),
        ));
    }
    charge["amount_refunded"] = json!(already + amount);
    charge["refunded"] = json!(already + amount == captured);
    let currency = charge["currency"].clone();
    let intent = charge["payment_intent"].clone();
    let id = new_id("re_");
    let refund = json!({
        "id": id, "object": "refund", "amount": amount, "charge": charge_id,
        "currency": currency, "payment_intent": intent, "status": "succeeded",
        "reason": params.get("reason"), "metadata": metadata(params, "metadata"),
        "balance_transaction": null, "created": now(),
    });
    state.objects.insert(id, refund.clone());
    Ok(refund)
}
