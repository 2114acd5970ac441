//! HelloAsso's API as the emulator serves it: the OAuth2 token endpoint, checkout intents,
//! orders and refunds, each behind a live Bearer token.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::wire::{self, InitCheckoutBody};
use super::{EmulatedRefund, Emulator, Intent, Outcome, PREFIX, now_text};

/// An error answer, boxed: handlers' helpers return it as their `Err`.
type Refusal = Box<HttpResponse>;

/// HelloAsso's error body.
pub(super) fn api_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errors": [{ "code": code, "message": message }] }))
}

fn oauth_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error, "error_description": description}))
}

pub(super) async fn token(
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

pub(super) async fn create_intent(
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

pub(super) async fn get_intent(
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

pub(super) async fn get_order(
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
pub(super) async fn refund(
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
