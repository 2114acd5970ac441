//! What the Mollie emulator accepts and answers: request validation as the Payments API v2
//! does it (problem bodies in `application/hal+json`), and the payment and refund resources.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::domain::Money;
use crate::gateways::mollie::parse_value;

const DOCUMENTATION: &str = "https://docs.mollie.com/overview/handling-errors";

/// A refusal as Mollie words it: HTTP status, detail and the offending field.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub field: Option<String>,
}

impl Problem {
    pub fn unprocessable(detail: impl Into<String>, field: &str) -> Problem {
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn response(&self) -> HttpResponse {
        let mut body = json!({
            "status": self.status.as_u16(),
            "title": title(self.status),
            "detail": self.detail,
            "_links": {"documentation": {"href": DOCUMENTATION, "type": "text/html"}},
        });
        if let (Some(field), Some(object)) = (&self.field, body.as_object_mut()) {
            object.insert("field".into(), Value::String(field.clone()));
        }
        HttpResponse::build(self.status)
            .content_type("application/hal+json")
            .body(body.to_string())
    }
}

/// Mollie's titles are the HTTP reason phrases, except for 401.
fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "Unauthorized Request",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

/// The body parameters of `POST /v2/payments` Mollie knows for a payment made with an API key.
/// `profileId` and `testmode` are refused: with an API key they follow from the key.
const PAYMENT_PARAMETERS: &[&str] = &[
    "amount",
    "description",
    "redirectUrl",
    "cancelUrl",
    "webhookUrl",
    "metadata",
    "locale",
    "method",
    "sequenceType",
    "customerId",
    "mandateId",
    "restrictPaymentMethodsToCountry",
    "billingAddress",
    "shippingAddress",
    "lines",
    "captureMode",
    "captureDelay",
    "dueDate",
    "issuer",
    "applicationFee",
    "routing",
];

const REFUND_PARAMETERS: &[&str] = &[
    "amount",
    "description",
    "metadata",
    "externalReference",
    "reverseRouting",
    "routingReversals",
];

const LOCALES: &[&str] = &[
    "en_US", "en_GB", "nl_NL", "nl_BE", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_BE", "es_ES",
    "ca_ES", "pt_PT", "it_IT", "nb_NO", "sv_SE", "fi_FI", "da_DK", "is_IS", "hu_HU", "pl_PL",
    "lv_LV", "lt_LT",
];

/// What a valid `POST /v2/payments` asks for.
pub struct PaymentRequest {
    pub amount: Money,
    pub currency: String,
    pub description: String,
    pub redirect_url: String,
    pub cancel_url: Option<String>,
    pub webhook_url: Option<String>,
    pub metadata: Value,
    pub locale: Option<String>,
}

pub struct RefundRequest {
    pub amount: Money,
    pub currency: String,
    pub description: String,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON",
        )),
    }
}

fn known_parameters(map: &Map<String, Value>, known: &[&str]) -> Result<(), Problem> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(Problem::unprocessable(
            format!("Non-existent body parameter \"{unknown}\" for this API call."),
            unknown,
        )),
        None => Ok(()),
    }
}

/// Mollie's amount object: a currency and a string with exactly the currency's decimals.
pub fn amount(map: &Map<String, Value>, what: &str) -> Result<(Money, String), Problem> {
    let Some(amount) = map.get("amount") else {
        return Err(Problem::unprocessable(
            format!("The amount is required for {what}"),
            "amount",
        ));
    };
    let Some(amount) = amount.as_object() else {
        return Err(Problem::unprocessable(
            "The amount must be an object with a currency and a value",
            "amount",
        ));
    };
    let currency = match amount.get("currency") {
        Some(Value::String(c)) => c.clone(),
        _ => {
            return Err(Problem::unprocessable(
                "The amount does not contain a currency",
                "amount.currency",
            ));
        }
    };
    if currency != "EUR" {
        return Err(Problem::unprocessable(
            format!("The currency \"{currency}\" is not supported"),
            "amount.currency",
        ));
    }
    let value = match amount.get("value") {
        Some(Value::String(v)) => v,
        Some(_) => {
            return Err(Problem::unprocessable(
                "The amount contains an invalid value: it must be a string like \"10.00\"",
                "amount.value",
            ));
        }
        None => {
            return Err(Problem::unprocessable(
                "The amount does not contain a value",
                "amount.value",
            ));
        }
    };
    let money = parse_value(value).map_err(|_| {
        Problem::unprocessable(
            format!("The amount contains an invalid value: \"{value}\" must have exactly 2 decimals for EUR"),
            "amount.value",
        )
    })?;
    if !money.is_positive() {
        return Err(Problem::unprocessable(
            "The amount is lower than the minimum",
            "amount.value",
        ));
    }
    Ok((money, currency))
}

fn optional_url(
    map: &Map<String, Value>,
    field: &str,
    label: &str,
) -> Result<Option<String>, Problem> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if is_absolute_http_url(url) => Ok(Some(url.clone())),
        Some(_) => Err(Problem::unprocessable(
            format!("The {label} is invalid"),
            field,
        )),
    }
}

fn is_absolute_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

pub fn payment_request(body: &[u8]) -> Result<PaymentRequest, Problem> {
    let map = object(body)?;
    known_parameters(&map, PAYMENT_PARAMETERS)?;
    let (amount, currency) = amount(&map, "payments")?;
    let description = match map.get("description") {
        Some(Value::String(d)) if !d.trim().is_empty() => d.clone(),
        _ => {
            return Err(Problem::unprocessable(
                "The description is required",
                "description",
            ));
        }
    };
    if let Some(sequence) = map.get("sequenceType")
        && sequence != "oneoff"
    {
        return Err(Problem::unprocessable(
            "This emulator only takes one-off payments",
            "sequenceType",
        ));
    }
    let redirect_url = optional_url(&map, "redirectUrl", "redirect URL")?
        .ok_or_else(|| Problem::unprocessable("The redirect URL is required", "redirectUrl"))?;
    let cancel_url = optional_url(&map, "cancelUrl", "cancel URL")?;
    let webhook_url = optional_url(&map, "webhookUrl", "webhook URL")?;
    let metadata = map.get("metadata").cloned().unwrap_or(Value::Null);
    if metadata.to_string().len() > 1024 {
        return Err(Problem::unprocessable(
            "The metadata is too large: at most 1024 bytes",
            "metadata",
        ));
    }
    let locale = match map.get("locale") {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) if LOCALES.contains(&l.as_str()) => Some(l.clone()),
        Some(_) => return Err(Problem::unprocessable("The locale is invalid", "locale")),
    };
    Ok(PaymentRequest {
        amount,
        currency,
        // Mollie truncates a long description rather than refusing it.
        description: description.chars().take(255).collect(),
        redirect_url,
        cancel_url,
        webhook_url,
        metadata,
        locale,
    })
}

pub fn refund_request(body: &[u8]) -> Result<RefundRequest, Problem> {
    let map = object(body)?;
    known_parameters(&map, REFUND_PARAMETERS)?;
    let (amount, currency) = amount(&map, "refunds")?;
    let description = match map.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) if d.chars().count() <= 140 => d.clone(),
        Some(_) => {
            return Err(Problem::unprocessable(
                "The description must be a string of at most 140 characters",
                "description",
            ));
        }
    };
    Ok(RefundRequest {
        amount,
        currency,
        description,
    })
}

pub fn money_json(amount: Money, currency: &str) -> Value {
    json!({"currency": currency, "value": amount.to_decimal_string()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: Value) -> Result<PaymentRequest, Problem> {
        payment_request(body.to_string().as_bytes())
    }

    fn valid() -> Value {
        json!({
            "amount": {"currency": "EUR", "value": "30.00"},
            "description": "Cotisation",
            "redirectUrl": "https://exemple.org/retour",
            "webhookUrl": "https://exemple.org/webhooks/mollie",
            "metadata": {"payment_id": "p1"}
        })
    }

    #[test]
    fn a_well_formed_payment_is_taken() {
        let request = create(valid()).unwrap();
        assert_eq!(request.amount, Money::from_cents(3000));
        assert_eq!(request.cancel_url, None);
    }

    #[test]
    fn amounts_in_the_wrong_type_or_unit_are_refused_on_the_value_field() {
        for value in [
            json!(30),
            json!(30.0),
            json!("30"),
            json!("30.0"),
            json!("3000"),
            json!("30.001"),
        ] {
            let mut body = valid();
            body["amount"]["value"] = value.clone();
            let problem = create(body).err().expect("refused");
            assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY, "{value}");
            assert_eq!(problem.field.as_deref(), Some("amount.value"), "{value}");
        }
    }

    #[test]
    fn missing_and_unknown_parameters_are_refused() {
        for (field, expected) in [
            ("amount", "amount"),
            ("description", "description"),
            ("redirectUrl", "redirectUrl"),
        ] {
            let mut body = valid();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(create(body).err().unwrap().field.as_deref(), Some(expected));
        }
        for extra in ["testmode", "profileId", "amount_cents"] {
            let mut body = valid();
            body[extra] = json!(true);
            let problem = create(body).err().unwrap();
            assert_eq!(problem.field.as_deref(), Some(extra));
            assert!(problem.detail.starts_with("Non-existent body parameter"));
        }
    }
}
