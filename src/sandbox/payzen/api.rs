//! PayZen's V4 web services as the emulator serves them: Basic authentication, the envelope,
//! and the input rules PayZen applies (integer amounts in the smallest unit, known currencies,
//! a bounded `orderId`, no unknown fields).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{EmulatedOrder, EmulatedTransaction, Emulator, new_hex_id, now};
use crate::gateways::payzen::{EMULATOR_PASSWORD, EMULATOR_SHOP_ID, ORDER_ID_MAX_LEN};

const CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "CAD", "XPF", "JPY", "SEK", "DKK",
];

/// The fields `Charge/CreatePaymentOrder` takes; anything else is refused.
const PAYMENT_ORDER_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "orderId",
    "channelOptions",
    "customer",
    "description",
    "locale",
    "ipnTargetUrl",
    "successUrl",
    "refusedUrl",
    "cancelUrl",
    "errorUrl",
    "expirationDate",
    "merchantComment",
    "paymentReceiptEmail",
    "taxAmount",
    "taxRate",
    "dataCollectionForm",
    "metadata",
    "strongAuthentication",
];
const CHANNEL_TYPES: &[&str] = &["URL", "MAIL", "SMS", "WHATSAPP", "INVOICE", "QR_CODE"];

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/payzen/api-payment/V4/{service:.+}",
        web::post().to(web_service),
    );
}

/// A refusal in PayZen's words: the envelope with `status: ERROR`.
struct Refusal {
    http: StatusCode,
    code: &'static str,
    message: &'static str,
    detail: String,
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal {
        http: StatusCode::OK,
        code: "INT_902",
        message: "web-service input data validation error",
        detail: detail.into(),
    }
}

fn unknown(detail: impl Into<String>) -> Refusal {
    Refusal {
        http: StatusCode::OK,
        code: "PSP_010",
        message: "transaction or order not found",
        detail: detail.into(),
    }
}

fn envelope(service: &str, status: &str, answer: Value) -> Value {
    json!({
        "webService": service,
        "version": "V4",
        "applicationVersion": "6.0.0",
        "status": status,
        "answer": answer,
        "ticket": new_hex_id(),
        "serverDate": now(),
        "applicationProvider": "PAYZEN",
        "metadata": null,
        "mode": "TEST",
        "serverUrl": "https://api.payzen.eu",
        "_type": "V4/WebService/Response",
    })
}

fn refuse(service: &str, refusal: Refusal) -> HttpResponse {
    HttpResponse::build(refusal.http).json(envelope(
        service,
        "ERROR",
        json!({
            "errorCode": refusal.code,
            "errorMessage": refusal.message,
            "detailedErrorCode": null,
            "detailedErrorMessage": refusal.detail,
            "shopId": EMULATOR_SHOP_ID,
            "_type": "V4/WebService/WebServiceError",
        }),
    ))
}

fn authenticated(request: &HttpRequest) -> bool {
    let Some(encoded) = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{EMULATOR_SHOP_ID}:{EMULATOR_PASSWORD}").as_bytes()
}

async fn web_service(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    service: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let service = service.into_inner();
    if !authenticated(&request) {
        return refuse(
            &service,
            Refusal {
                http: StatusCode::UNAUTHORIZED,
                code: "INT_905",
                message: "invalid authentication",
                detail: "shop id or password not recognised".into(),
            },
        );
    }
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(input)) => input,
        _ => return refuse(&service, invalid("the body is not a JSON object")),
    };
    let answer = match service.as_str() {
        "Charge/CreatePaymentOrder" => create_payment_order(&emulator, &input),
        "Charge/PaymentOrder/Get" => get_payment_order(&emulator, &input),
        "Order/Get" => get_order(&emulator, &input),
        "Transaction/Get" => get_transaction(&emulator, &input),
        "Transaction/CancelOrRefund" => cancel_or_refund(&emulator, &input),
        "Charge/SDKTest" => sdk_test(&input),
        _ => return HttpResponse::NotFound().finish(),
    };
    match answer {
        Ok(answer) => HttpResponse::Ok().json(envelope(&service, "SUCCESS", answer)),
        Err(refusal) => refuse(&service, refusal),
    }
}

/// Lyra's test web service: the value sent comes back, once authenticated.
fn sdk_test(input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(input, &["value"])?;
    let value = text(input, "value")?.unwrap_or("");
    Ok(json!({ "value": value, "_type": "V4/Charge/SDKTest" }))
}

fn only_fields(input: &Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match input.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => Err(invalid(format!("unknown field {field}"))),
        None => Ok(()),
    }
}

fn text<'a>(input: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Refusal> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    }
}

fn required<'a>(input: &'a Map<String, Value>, field: &str) -> Result<&'a str, Refusal> {
    text(input, field)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("{field} is required")))
}

/// An amount in the smallest currency unit: a JSON integer above zero, never a decimal.
fn amount(input: &Map<String, Value>) -> Result<i64, Refusal> {
    match input.get("amount") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(cents) if cents > 0 => Ok(cents),
            _ => Err(invalid("amount must be a positive integer")),
        },
        None | Some(Value::Null) => Err(invalid("amount is required")),
        Some(_) => Err(invalid(
            "amount must be an integer in the smallest currency unit",
        )),
    }
}

fn currency(input: &Map<String, Value>) -> Result<String, Refusal> {
    let currency = required(input, "currency")?;
    if CURRENCIES.contains(&currency) {
        Ok(currency.to_string())
    } else {
        Err(invalid(format!("unknown currency {currency}")))
    }
}

fn url(input: &Map<String, Value>, field: &str) -> Result<Option<String>, Refusal> {
    match text(input, field)? {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.into())),
        Some(_) => Err(invalid(format!("{field} must be an http(s) URL"))),
        None => Ok(None),
    }
}

fn create_payment_order(emulator: &Emulator, input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(input, PAYMENT_ORDER_FIELDS)?;
    let amount = amount(input)?;
    let currency = currency(input)?;
    let order_id = required(input, "orderId")?;
    if order_id.chars().count() > ORDER_ID_MAX_LEN {
        return Err(invalid(format!(
            "orderId longer than {ORDER_ID_MAX_LEN} characters"
        )));
    }
    if let Some(channel) = input.get("channelOptions") {
        let channel_type = channel.get("channelType").and_then(Value::as_str);
        if !channel_type.is_some_and(|t| CHANNEL_TYPES.contains(&t)) {
            return Err(invalid("channelOptions.channelType is not a known channel"));
        }
    }
    let email = input
        .get("customer")
        .and_then(|c| c.get("email"))
        .and_then(Value::as_str);
    if email.is_some_and(|e| !e.contains('@')) {
        return Err(invalid("customer.email is not an e-mail address"));
    }
    let description = text(input, "description")?.unwrap_or_default();
    if description.chars().count() > 255 {
        return Err(invalid("description longer than 255 characters"));
    }
    let created_at = now();
    let expires_at = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let order = EmulatedOrder {
        payment_order_id: new_hex_id(),
        status: "RUNNING",
        order_status: "RUNNING",
        amount,
        currency,
        order_id: order_id.to_string(),
        description: description.to_string(),
        email: email.map(str::to_string),
        ipn_target_url: url(input, "ipnTargetUrl")?,
        success_url: url(input, "successUrl")?,
        refused_url: url(input, "refusedUrl")?,
        cancel_url: url(input, "cancelUrl")?,
        error_url: url(input, "errorUrl")?,
        created_at,
        expires_at,
        transactions: Vec::new(),
    };
    let answer = order.to_json(&emulator.public_base);
    emulator
        .with_state(|s| s.orders.insert(order.payment_order_id.clone(), order))
        .map_err(|(_, m)| invalid(m))?;
    Ok(answer)
}

fn get_payment_order(emulator: &Emulator, input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(input, &["paymentOrderId"])?;
    let id = required(input, "paymentOrderId")?;
    emulator
        .with_state(|s| s.orders.get(id).map(|o| o.to_json(&emulator.public_base)))
        .map_err(|(_, m)| invalid(m))?
        .ok_or_else(|| unknown(format!("no payment order {id}")))
}

fn get_order(emulator: &Emulator, input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(input, &["orderId", "operationType"])?;
    let order_id = required(input, "orderId")?;
    let transactions: Vec<Value> = emulator
        .with_state(|s| {
            s.orders
                .values()
                .filter(|o| o.order_id == order_id)
                .flat_map(|o| o.transactions.iter().map(|t| t.to_json(&o.order_id)))
                .collect()
        })
        .map_err(|(_, m)| invalid(m))?;
    if transactions.is_empty() {
        return Err(unknown(format!("no transaction for order {order_id}")));
    }
    Ok(json!({
        "orderId": order_id,
        "transactions": transactions,
        "_type": "V4/OrderTransactions",
    }))
}

fn get_transaction(emulator: &Emulator, input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(input, &["uuid"])?;
    let uuid = required(input, "uuid")?;
    emulator
        .with_state(|s| {
            s.orders.values().find_map(|o| {
                o.transactions
                    .iter()
                    .find(|t| t.uuid == uuid)
                    .map(|t| t.to_json(&o.order_id))
            })
        })
        .map_err(|(_, m)| invalid(m))?
        .ok_or_else(|| unknown(format!("no transaction {uuid}")))
}

/// Refunds a captured debit (a new CREDIT transaction); cancelling is for debits not yet
/// captured, which the emulator never has.
fn cancel_or_refund(emulator: &Emulator, input: &Map<String, Value>) -> Result<Value, Refusal> {
    only_fields(
        input,
        &["uuid", "amount", "currency", "resolutionMode", "comment"],
    )?;
    let uuid = required(input, "uuid")?.to_string();
    let amount = amount(input)?;
    let currency = currency(input)?;
    let mode = text(input, "resolutionMode")?.unwrap_or("AUTO");
    if !["AUTO", "REFUND_ONLY", "CANCELLATION_ONLY"].contains(&mode) {
        return Err(invalid(format!("unknown resolutionMode {mode}")));
    }
    emulator
        .with_state(|s| {
            let order = s
                .orders
                .values_mut()
                .find(|o| o.transactions.iter().any(|t| t.uuid == uuid))
                .ok_or_else(|| unknown(format!("no transaction {uuid}")))?;
            let debit = order
                .transactions
                .iter()
                .find(|t| t.uuid == uuid)
                .cloned()
                .ok_or_else(|| unknown(format!("no transaction {uuid}")))?;
            if debit.operation_type != "DEBIT" || debit.status != "PAID" {
                return Err(invalid("only a paid debit can be refunded"));
            }
            if mode == "CANCELLATION_ONLY" {
                return Err(invalid(
                    "the transaction is captured: it can only be refunded",
                ));
            }
            if currency != debit.currency {
                return Err(invalid("currency differs from the transaction's"));
            }
            let refunded: i64 = order
                .transactions
                .iter()
                .filter(|t| t.operation_type == "CREDIT" && t.status == "PAID")
                .map(|t| t.amount)
                .sum();
            if amount > debit.amount - refunded {
                return Err(invalid("amount exceeds what is left to refund"));
            }
            let credit = EmulatedTransaction {
                uuid: new_hex_id(),
                amount,
                currency,
                status: "PAID",
                detailed_status: "CAPTURED",
                operation_type: "CREDIT",
                created_at: now(),
            };
            let answer = credit.to_json(&order.order_id);
            order.transactions.push(credit);
            Ok(answer)
        })
        .map_err(|(_, m)| invalid(m))?
}
