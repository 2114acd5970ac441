//! What the payer sees (HelloAsso's checkout page and where it sends them back) and the
//! test controls.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{Emulator, Outcome, PREFIX};
use crate::domain::Money;
use crate::sandbox::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};

pub(super) async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let intent = id.parse::<i64>().ok().and_then(|id| {
        emulator
            .with_state(|s| s.intents.get(&id).cloned())
            .flatten()
    });
    let Some(intent) = intent else {
        return common::unknown_payment("HelloAsso");
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

pub(super) async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::unknown_action();
    };
    let Ok(id) = id.parse::<i64>() else {
        return common::unknown_payment("HelloAsso");
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
            Some(_) => return common::plain(StatusCode::CONFLICT, &common::already_finished()),
            None => return common::unknown_payment("HelloAsso"),
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

pub(super) async fn control(
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
pub(super) async fn control_journal(emulator: web::Data<Emulator>) -> HttpResponse {
    HttpResponse::Ok().json(
        emulator
            .with_state(|s| s.journal.clone())
            .unwrap_or_default(),
    )
}

/// Ends every access token now (refresh tokens stay valid), as when a token expires
/// between obole's check and HelloAsso's.
pub(super) async fn control_expire_tokens(emulator: web::Data<Emulator>) -> HttpResponse {
    emulator.with_state(|s| s.access_tokens.clear());
    HttpResponse::NoContent().finish()
}
