//! The emulated Stripe API: authentication, parameters checked as Stripe checks them, error
//! bodies `{"error":{"type","message","param"}}`, idempotency keys and `expand[]`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::{Value, json};

use super::params::{ParamError, Params};
use super::rules::{check_session, metadata};
use super::{Emulator, Failure, State, expire, new_id, now, public};
use crate::gateways::stripe::EMULATOR_SECRET_KEY;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/stripe/v1/checkout/sessions",
        web::post().to(create_session),
    )
    .route(
        "/sandbox/stripe/v1/checkout/sessions",
        web::get().to(list_sessions),
    )
    .route(
        "/sandbox/stripe/v1/checkout/sessions/{id}",
        web::get().to(retrieve::<1>),
    )
    .route(
        "/sandbox/stripe/v1/checkout/sessions/{id}/expire",
        web::post().to(expire_session),
    )
    .route(
        "/sandbox/stripe/v1/payment_intents/{id}",
        web::get().to(retrieve::<2>),
    )
    .route(
        "/sandbox/stripe/v1/charges/{id}",
        web::get().to(retrieve::<3>),
    )
    .route(
        "/sandbox/stripe/v1/balance_transactions/{id}",
        web::get().to(retrieve::<4>),
    )
    .route(
        "/sandbox/stripe/v1/refunds",
        web::post().to(super::refunds::create_refund),
    )
    .route("/sandbox/stripe/v1/refunds", web::get().to(list_refunds))
    .route(
        "/sandbox/stripe/v1/payment_intents",
        web::post().to(super::off_session::create_payment_intent),
    )
    .route(
        "/sandbox/stripe/v1/payment_methods/{id}",
        web::get().to(retrieve::<5>),
    )
    .route(
        "/sandbox/stripe/v1/payment_methods/{id}/detach",
        web::post().to(super::off_session::detach_payment_method),
    )
    .route(
        "/sandbox/stripe/v1/customers/{id}",
        web::get().to(retrieve::<6>),
    )
    .route("/sandbox/stripe/v1/balance", web::get().to(balance));
}

pub(super) fn error(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
) -> HttpResponse {
    let mut detail = json!({ "type": kind, "message": message });
    if let Some(param) = param {
        detail["param"] = json!(param);
    }
    HttpResponse::build(status).json(json!({ "error": detail }))
}

pub(super) fn invalid(e: ParamError) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &e.message,
        e.param.as_deref(),
    )
}

pub(super) fn failure((status, message): Failure) -> HttpResponse {
    error(status, "invalid_request_error", &message, None)
}

/// Stripe takes the secret key as a Bearer token or as the user of HTTP Basic; anything else
/// is a 401 with Stripe's wording (and the key masked).
fn authenticate(request: &HttpRequest) -> Result<(), Failure> {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = if let Some(token) = header.strip_prefix("Bearer ") {
        Some(token.trim().to_string())
    } else if let Some(basic) = header.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .and_then(|d| d.split_once(':').map(|(user, _)| user.to_string()))
    } else {
        None
    };
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY')."
                .to_string(),
        ));
    };
    let expected = EMULATOR_SECRET_KEY.as_bytes();
    let same = key.len() == expected.len()
        && key
            .bytes()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        return Ok(());
    }
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = key.chars().take_while(|c| *c != '_').collect();
    Err((
        StatusCode::UNAUTHORIZED,
        format!("Invalid API Key provided: {head}_****{tail}"),
    ))
}

/// `Stripe-Version`, when given, must name a version (`2023-08-16`, `2024-09-30.acacia`).
fn check_version(request: &HttpRequest) -> Result<(), Failure> {
    let Some(version) = request.headers().get("stripe-version") else {
        return Ok(());
    };
    let version = version.to_str().unwrap_or("");
    let date = version.split('.').next().unwrap_or("");
    if time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .is_ok()
    {
        Ok(())
    } else {
        Err((
            StatusCode::BAD_REQUEST,
            format!("Invalid Stripe API version: {version}"),
        ))
    }
}

pub(super) fn gate(request: &HttpRequest) -> Result<(), Failure> {
    authenticate(request)?;
    check_version(request)
}

fn query(request: &HttpRequest, allowed: &[&str]) -> Result<Params, ParamError> {
    let params = Params::parse(request.query_string().as_bytes())?;
    params.only(allowed)?;
    Ok(params)
}

/// Runs `execute` once per idempotency key: a retry gets the first answer again, a key reused
/// for another request is refused. Refused parameters are not remembered, as at Stripe.
pub(super) fn idempotent(
    emulator: &Emulator,
    request: &HttpRequest,
    body: &[u8],
    execute: impl FnOnce(&mut State) -> Result<Value, Failure>,
) -> HttpResponse {
    idempotent_answer(emulator, request, body, |state| {
        execute(state).map(|answer| (StatusCode::OK, answer))
    })
}

/// Like `idempotent`, for a request whose outcome may be an error Stripe remembers too (a card
/// declined while confirming: the PaymentIntent exists, the same key gets the same 402).
pub(super) fn idempotent_answer(
    emulator: &Emulator,
    request: &HttpRequest,
    body: &[u8],
    execute: impl FnOnce(&mut State) -> Result<(StatusCode, Value), Failure>,
) -> HttpResponse {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if key.as_ref().is_some_and(|k| k.len() > 255) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Idempotency-Key must be at most 255 characters long.",
            None,
        );
    }
    let asked = format!("{} {}", request.path(), String::from_utf8_lossy(body));
    let outcome = emulator.with_state(|state| {
        if let Some(key) = &key
            && let Some((first, status, answer)) = state.idempotency.get(key)
        {
            if *first != asked {
                return Ok(Err(error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    &format!(
                        "Keys for idempotent requests can only be used with the same \
                         parameters they were first used with. Try using a key other than \
                         '{key}' if you meant to execute a different request."
                    ),
                    None,
                )));
            }
            return Ok(Ok((*status, answer.clone(), true)));
        }
        let (status, answer) = execute(state)?;
        let answer = public(answer);
        if let Some(key) = key {
            state
                .idempotency
                .insert(key, (asked, status.as_u16(), answer.clone()));
        }
        Ok(Ok((status.as_u16(), answer, false)))
    });
    match outcome {
        Ok(Ok((status, answer, replayed))) => {
            let mut response =
                HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
            if replayed {
                response.insert_header(("Idempotent-Replayed", "true"));
            }
            response.json(answer)
        }
        Ok(Err(response)) => response,
        Err(f) => failure(f),
    }
}

async fn create_session(
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
    let (amount_total, currency) = match check_session(&params) {
        Ok(checked) => checked,
        Err(e) => return invalid(e),
    };
    let expand = params.list("expand");
    let public_base = emulator.public_base.clone();
    idempotent(&emulator, &request, &body, |state| {
        if let Some(customer) = params.get("customer")
            && !state
                .objects
                .get(customer)
                .is_some_and(|c| c["object"] == "customer")
        {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("No such customer: '{customer}'"),
            ));
        }
        let id = new_id("cs_test_");
        let created = now();
        let session = json!({
            "id": id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "customer_creation": params.get("customer_creation"),
            "metadata": metadata(&params, "metadata"),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "created": created,
            "expires_at": params.integer("expires_at").ok().flatten().unwrap_or(created + 86_400),
            "livemode": false,
            "locale": params.get("locale"),
            "payment_intent": null,
            "url": format!("{public_base}/sandbox/stripe/c/pay/{id}"),
            "_product_name": params.get("line_items[0][price_data][product_data][name]"),
            "_intent": {
                "metadata": metadata(&params, "payment_intent_data[metadata]"),
                "description": params.get("payment_intent_data[description]"),
                "setup_future_usage": params.get("payment_intent_data[setup_future_usage]"),
            },
        });
        state.objects.insert(id, session.clone());
        expanded(&state.objects, session, &expand)
    })
}

/// `GET /v1/{kind}/{id}` for the kinds numbered in `routes`.
async fn retrieve<const KIND: u8>(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    let params = match query(&request, &["expand[*]"]) {
        Ok(params) => params,
        Err(e) => return invalid(e),
    };
    let object = match KIND {
        1 => "checkout.session",
        2 => "payment_intent",
        3 => "charge",
        4 => "balance_transaction",
        5 => "payment_method",
        _ => "customer",
    };
    let answer = emulator.with_state(|state| {
        let found = state
            .objects
            .get(id.as_str())
            .filter(|o| o["object"] == object)
            .cloned()
            .ok_or((StatusCode::NOT_FOUND, format!("No such {object}: '{id}'")))?;
        expanded(&state.objects, found, &params.list("expand"))
    });
    match answer {
        Ok(found) => HttpResponse::Ok().json(public(found)),
        Err(f) => failure(f),
    }
}

/// Replaces ids by their objects along each dotted `expand[]` path.
pub(super) fn expanded(
    objects: &HashMap<String, Value>,
    mut value: Value,
    paths: &[String],
) -> Result<Value, Failure> {
    for path in paths {
        let fields: Vec<&str> = path.split('.').collect();
        expand_path(objects, &mut value, &fields)?;
    }
    Ok(value)
}

fn expand_path(
    objects: &HashMap<String, Value>,
    value: &mut Value,
    fields: &[&str],
) -> Result<(), Failure> {
    let Some((field, rest)) = fields.split_first() else {
        return Ok(());
    };
    let Some(slot) = value.get_mut(*field) else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("This property cannot be expanded ({field})."),
        ));
    };
    if let Some(id) = slot.as_str() {
        *slot = objects.get(id).cloned().map(public).unwrap_or(Value::Null);
    }
    if slot.is_null() {
        return Ok(());
    }
    expand_path(objects, slot, rest)
}

async fn list_sessions(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    let params = match query(&request, &["payment_intent", "limit", "expand[*]"]) {
        Ok(params) => params,
        Err(e) => return invalid(e),
    };
    let intent = params.get("payment_intent").map(str::to_string);
    list(&emulator, &request, &params, "checkout.session", move |o| {
        intent
            .as_ref()
            .is_none_or(|i| o["payment_intent"] == *i.as_str())
    })
}

/// `GET /v1/balance`: the account's balance, the money of its charges not yet paid out (the
/// emulator never pays out). A cheap authenticated call, as a connection test makes.
async fn balance(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    if let Err(e) = query(&request, &[]) {
        return invalid(e);
    }
    let pending: i64 = emulator
        .state
        .lock()
        .map(|state| {
            state
                .objects
                .values()
                .filter(|o| o["object"] == "balance_transaction")
                .filter_map(|o| o["net"].as_i64())
                .sum()
        })
        .unwrap_or(0);
    HttpResponse::Ok().json(json!({
        "object": "balance",
        "available": [{ "amount": 0, "currency": "eur", "source_types": { "card": 0 } }],
        "pending": [{ "amount": pending, "currency": "eur", "source_types": { "card": pending } }],
        "livemode": false,
    }))
}

async fn list_refunds(emulator: web::Data<Emulator>, request: HttpRequest) -> HttpResponse {
    if let Err(refused) = gate(&request) {
        return failure(refused);
    }
    let params = match query(
        &request,
        &["payment_intent", "charge", "limit", "expand[*]"],
    ) {
        Ok(params) => params,
        Err(e) => return invalid(e),
    };
    let intent = params.get("payment_intent").map(str::to_string);
    let charge = params.get("charge").map(str::to_string);
    list(&emulator, &request, &params, "refund", move |o| {
        intent
            .as_ref()
            .is_none_or(|i| o["payment_intent"] == *i.as_str())
            && charge.as_ref().is_none_or(|c| o["charge"] == *c.as_str())
    })
}

fn list(
    emulator: &Emulator,
    request: &HttpRequest,
    params: &Params,
    object: &str,
    keep: impl Fn(&Value) -> bool,
) -> HttpResponse {
    let limit = match params.integer("limit") {
        Ok(limit) => limit.unwrap_or(10),
        Err(e) => return invalid(e),
    };
    if !(1..=100).contains(&limit) {
        return invalid(ParamError::new("limit must be between 1 and 100", "limit"));
    }
    let found = emulator.with_state(|state| {
        let mut all: Vec<Value> = state
            .objects
            .values()
            .filter(|o| o["object"] == object && keep(o))
            .cloned()
            .map(public)
            .collect();
        all.sort_by_key(|o| std::cmp::Reverse(o["created"].as_i64().unwrap_or(0)));
        Ok(all)
    });
    match found {
        Ok(mut all) => {
            let has_more = all.len() > limit as usize;
            all.truncate(limit as usize);
            HttpResponse::Ok().json(json!({
                "object": "list",
                "data": all,
                "has_more": has_more,
                "url": request.path().trim_start_matches("/sandbox/stripe"),
            }))
        }
        Err(f) => failure(f),
    }
}

async fn expire_session(
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
    let expired = idempotent(&emulator, &request, &body, |state| expire(state, &id));
    if expired.status().is_success()
        && let Some(session) = emulator.object(&id)
        && expired.headers().get("idempotent-replayed").is_none()
    {
        // The merchant learns it from the answer; the event follows, as at Stripe.
        emulator.notify_after("checkout.session.expired", public(session), 1_000);
    }
    expired
}
