//! The emulated REST endpoints: token, orders, captures, refunds, webhook verification and
//! the IPN postback.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::wire::{self, PayPalProblem};
use super::{
    EmulatedCapture, EmulatedOrder, EmulatedRefund, Emulator, TOKEN_LIFETIME, fee_for, new_id, now,
};

fn request_id(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get("paypal-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 108)
        .map(str::to_string)
}

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": error, "error_description": description}))
}

/// `POST /v1/oauth2/token`: HTTP Basic client id and secret, `grant_type=client_credentials`.
pub async fn token(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let credentials = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let authentic = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(id, secret)| emulator.client_matches(id, secret));
    if !authentic {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client Authentication failed",
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Grant Type is NULL",
        );
    }
    let access_token = format!(
        "A21AA{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase()
    );
    if let Ok(mut tokens) = emulator.tokens.lock() {
        tokens.insert(
            access_token.clone(),
            std::time::Instant::now() + TOKEN_LIFETIME,
        );
    }
    HttpResponse::Ok().json(json!({
        "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "nonce": format!("{}{}", now(), new_id()),
    }))
}

/// `POST /v2/checkout/orders`.
pub async fn create_order(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    if !is_json(&request) {
        return PayPalProblem::unsupported_media_type().response();
    }
    let key = request_id(&request).map(|k| format!("orders:{k}"));
    if let Some(answer) = key.as_deref().and_then(|k| emulator.replay(k)) {
        return answer;
    }
    let wanted = match wire::order_request(&body) {
        Ok(wanted) => wanted,
        Err(problem) => return problem.response(),
    };
    if let Some(invoice_id) = &wanted.invoice_id {
        let Ok(mut invoices) = emulator.invoices.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        if !invoices.insert(invoice_id.clone()) {
            return PayPalProblem::unprocessable(
                "DUPLICATE_INVOICE_ID",
                "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account setting requires that Invoice Id be unique for each transaction.",
            )
            .response();
        }
    }
    let order = EmulatedOrder {
        id: new_id(),
        status: if wanted.with_payment_source {
            "PAYER_ACTION_REQUIRED"
        } else {
            "CREATED"
        },
        amount: wanted.amount,
        currency: wanted.currency,
        reference_id: wanted.reference_id,
        custom_id: wanted.custom_id,
        invoice_id: wanted.invoice_id,
        description: wanted.description,
        return_url: wanted.return_url,
        cancel_url: wanted.cancel_url,
        with_payment_source: wanted.with_payment_source,
        create_time: now(),
        declines: false,
        notify: true,
        payer_id: None,
        captures: Vec::new(),
        refunds: Vec::new(),
        create_request: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let answer = emulator.order_json(&order);
    if let Ok(mut orders) = emulator.orders.lock() {
        orders.insert(order.id.clone(), order);
    }
    emulator.remember(key, StatusCode::OK, &answer);
    HttpResponse::Created().json(answer)
}

/// `GET /v2/checkout/orders/{id}`.
pub async fn get_order(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    match emulator.order(&id) {
        Some(order) => HttpResponse::Ok().json(emulator.order_json(&order)),
        None => PayPalProblem::not_found().response(),
    }
}

/// `POST /v2/checkout/orders/{id}/capture`: only an approved order; a second capture is
/// refused unless it repeats the first one's `PayPal-Request-Id`.
pub async fn capture_order(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    if !is_json(&request) {
        return PayPalProblem::unsupported_media_type().response();
    }
    if !body.iter().all(u8::is_ascii_whitespace)
        && !serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object())
    {
        return PayPalProblem::malformed_json().response();
    }
    let key = request_id(&request).map(|k| format!("capture:{k}"));
    // The order's lock is held from the check to the capture: two captures racing cannot
    // both see it approved.
    let captured = emulator.update(&id, |order| {
        if let Some(answer) = key.as_deref().and_then(|k| emulator.replay(k)) {
            return Ok(Err(answer));
        }
        match order.status {
            "APPROVED" => {}
            "COMPLETED" => {
                return Err(PayPalProblem::unprocessable(
                    "ORDER_ALREADY_CAPTURED",
                    "Order already captured. If 'intent=CAPTURE' only one capture per order is allowed.",
                ));
            }
            _ => {
                return Err(PayPalProblem::unprocessable(
                    "ORDER_NOT_APPROVED",
                    "Payer has not yet approved the Order for payment.",
                ));
            }
        }
        let capture = EmulatedCapture {
            id: new_id(),
            status: if order.declines {
                "DECLINED"
            } else {
                "COMPLETED"
            },
            amount: order.amount,
            fee: fee_for(order.amount),
            time: now(),
        };
        order.status = "COMPLETED";
        order.captures.push(capture.clone());
        let answer = emulator.order_json(order);
        emulator.remember(key.clone(), StatusCode::CREATED, &answer);
        Ok(Ok((order.clone(), capture, answer)))
    });
    match captured {
        Ok(Ok((order, capture, answer))) => {
            let event = if capture.status == "COMPLETED" {
                "PAYMENT.CAPTURE.COMPLETED"
            } else {
                "PAYMENT.CAPTURE.DENIED"
            };
            emulator.emit(
                &order,
                event,
                "capture",
                emulator.capture_json(&order, &capture),
            );
            emulator.record_ipn(&order, &capture);
            HttpResponse::Created().json(answer)
        }
        Ok(Err(replayed)) => replayed,
        Err(problem) => problem.response(),
    }
}

/// `GET /v2/payments/captures/{id}`.
pub async fn get_capture(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    let Some(order) = emulator.order_holding(&id, false) else {
        return PayPalProblem::not_found().response();
    };
    match order.captures.iter().find(|c| c.id == *id) {
        Some(capture) => HttpResponse::Ok().json(emulator.capture_json(&order, capture)),
        None => PayPalProblem::not_found().response(),
    }
}

/// `GET /v2/payments/refunds/{id}`.
pub async fn get_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    let Some(order) = emulator.order_holding(&id, true) else {
        return PayPalProblem::not_found().response();
    };
    match order.refunds.iter().find(|r| r.id == *id) {
        Some(refund) => HttpResponse::Ok().json(emulator.refund_json(&order, refund)),
        None => PayPalProblem::not_found().response(),
    }
}

/// `POST /v2/payments/captures/{id}/refund`: an empty body refunds what is left, an `amount`
/// refunds part of it, never more than what is left.
pub async fn refund_capture(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    if !body.is_empty() && !is_json(&request) {
        return PayPalProblem::unsupported_media_type().response();
    }
    let key = request_id(&request).map(|k| format!("refund:{k}"));
    if let Some(answer) = key.as_deref().and_then(|k| emulator.replay(k)) {
        return answer;
    }
    let wanted = match wire::refund_request(&body) {
        Ok(wanted) => wanted,
        Err(problem) => return problem.response(),
    };
    let Some(order_id) = emulator.order_holding(&id, false).map(|o| o.id) else {
        return PayPalProblem::not_found().response();
    };
    let refunded = emulator.update(&order_id, |order| {
        let currency = order.currency.clone();
        let already: crate::domain::Money = order
            .refunds
            .iter()
            .filter(|r| r.capture_id == *id)
            .map(|r| r.amount)
            .sum();
        let capture = order
            .captures
            .iter_mut()
            .find(|c| c.id == *id)
            .ok_or_else(PayPalProblem::not_found)?;
        match capture.status {
            "COMPLETED" | "PARTIALLY_REFUNDED" => {}
            "REFUNDED" => {
                return Err(PayPalProblem::unprocessable(
                    "CAPTURE_FULLY_REFUNDED",
                    "The capture has already been fully refunded.",
                ));
            }
            _ => {
                return Err(PayPalProblem::unprocessable(
                    "REFUND_NOT_ALLOWED",
                    "Refund cannot be issued for this capture.",
                ));
            }
        }
        let left = capture.amount - already;
        let amount = match wanted.amount {
            None => left,
            Some((_, asked_currency)) if asked_currency != currency => {
                return Err(PayPalProblem::unprocessable(
                    "CURRENCY_MISMATCH",
                    "Refund must be in the same currency as the capture.",
                ));
            }
            Some((amount, _)) => amount,
        };
        if amount > left {
            return Err(PayPalProblem::unprocessable(
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has not yet been refunded.",
            ));
        }
        capture.status = if amount == left {
            "REFUNDED"
        } else {
            "PARTIALLY_REFUNDED"
        };
        let refund = EmulatedRefund {
            id: new_id(),
            capture_id: capture.id.clone(),
            amount,
            invoice_id: wanted.invoice_id.clone(),
            time: now(),
            request: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        order.refunds.push(refund.clone());
        Ok((order.clone(), refund))
    });
    match refunded {
        Ok((order, refund)) => {
            let answer = emulator.refund_json(&order, &refund);
            emulator.remember(key, StatusCode::CREATED, &answer);
            emulator.emit(&order, "PAYMENT.CAPTURE.REFUNDED", "refund", answer.clone());
            HttpResponse::Created().json(answer)
        }
        Err(problem) => problem.response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    auth_algo: String,
    cert_url: String,
    transmission_id: String,
    transmission_sig: String,
    transmission_time: String,
    webhook_id: String,
    webhook_event: Box<RawValue>,
}

/// `POST /v1/notifications/verify-webhook-signature`: SUCCESS only for an event this emulator
/// sent, byte for byte, with its transmission headers, for its webhook.
pub async fn verify_webhook_signature(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !emulator.authenticate(&request) {
        return PayPalProblem::unauthorized().response();
    }
    if !is_json(&request) {
        return PayPalProblem::unsupported_media_type().response();
    }
    let asked: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(e) => {
            return PayPalProblem::invalid(
                "",
                "MISSING_REQUIRED_PARAMETER",
                format!("Invalid request: {e}"),
            )
            .response();
        }
    };
    let known = emulator.events.lock().is_ok_and(|events| {
        events.iter().any(|e| {
            e.transmission_id == asked.transmission_id
                && e.transmission_sig == asked.transmission_sig
                && e.transmission_time == asked.transmission_time
                && e.cert_url == asked.cert_url
                && e.body == asked.webhook_event.get()
        })
    });
    let verified =
        known && asked.auth_algo == "SHA256withRSA" && asked.webhook_id == emulator.webhook_id;
    HttpResponse::Ok().json(json!({
        "verification_status": if verified { "SUCCESS" } else { "FAILURE" },
    }))
}

/// `POST /cgi-bin/webscr` with `cmd=_notify-validate` and the message exactly as received.
pub async fn notify_validate(emulator: web::Data<Emulator>, body: web::Bytes) -> HttpResponse {
    let text = String::from_utf8_lossy(&body);
    let verified = text
        .strip_prefix("cmd=_notify-validate&")
        .is_some_and(|message| {
            emulator
                .ipns
                .lock()
                .is_ok_and(|ipns| ipns.iter().any(|(_, sent)| sent == message))
        });
    HttpResponse::Ok()
        .content_type("text/html; charset=UTF-8")
        .body(if verified { "VERIFIED" } else { "INVALID" })
}
