//! What the emulated PayPal accepts and answers: its error bodies (`name`, `message`,
//! `details[]`, `debug_id`), the checks it makes on an order or refund request, and the JSON
//! of orders, captures, refunds and webhook events.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::domain::Money;

/// An error as PayPal answers it.
pub struct PayPalProblem {
    status: StatusCode,
    name: &'static str,
    message: &'static str,
    details: Vec<Value>,
}

impl PayPalProblem {
    /// 400: the request breaks the schema (a field missing, of the wrong type or length).
    pub fn invalid(field: &str, issue: &'static str, description: impl Into<String>) -> Self {
        PayPalProblem {
            status: StatusCode::BAD_REQUEST,
            name: "INVALID_REQUEST",
            message: "Request is not well-formed, syntactically incorrect, or violates schema.",
            details: vec![json!({
                "field": field,
                "location": "body",
                "issue": issue,
                "description": description.into(),
            })],
        }
    }

    /// 422: well-formed, but against a business rule.
    pub fn unprocessable(issue: &'static str, description: impl Into<String>) -> Self {
        PayPalProblem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            name: "UNPROCESSABLE_ENTITY",
            message: "The requested action could not be performed, semantically incorrect, or failed business validation.",
            details: vec![json!({"issue": issue, "description": description.into()})],
        }
    }

    pub fn not_found() -> Self {
        PayPalProblem {
            status: StatusCode::NOT_FOUND,
            name: "RESOURCE_NOT_FOUND",
            message: "The specified resource does not exist.",
            details: vec![json!({
                "issue": "INVALID_RESOURCE_ID",
                "description": "Specified resource ID does not exist. Please check the resource ID and try again.",
            })],
        }
    }

    pub fn malformed_json() -> Self {
        PayPalProblem {
            status: StatusCode::BAD_REQUEST,
            name: "INVALID_REQUEST",
            message: "Request is not well-formed, syntactically incorrect, or violates schema.",
            details: vec![json!({
                "issue": "MALFORMED_REQUEST_JSON",
                "description": "The request JSON is not well formed.",
            })],
        }
    }

    pub fn unauthorized() -> Self {
        PayPalProblem {
            status: StatusCode::UNAUTHORIZED,
            name: "AUTHENTICATION_FAILURE",
            message: "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
            details: Vec::new(),
        }
    }

    pub fn unsupported_media_type() -> Self {
        PayPalProblem {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            name: "UNSUPPORTED_MEDIA_TYPE",
            message: "The server does not support the request payload's media type.",
            details: Vec::new(),
        }
    }

    pub fn response(&self) -> HttpResponse {
        let mut body = json!({
            "name": self.name,
            "message": self.message,
            "debug_id": &uuid::Uuid::new_v4().simple().to_string()[..13],
            "links": [{
                "href": "https://developer.paypal.com/api/rest/reference/orders/v2/errors/",
                "rel": "information_link",
            }],
        });
        if !self.details.is_empty() {
            body["details"] = Value::Array(self.details.clone());
        }
        HttpResponse::build(self.status)
            .content_type("application/json")
            .json(body)
    }
}

/// What an order request asks for, once checked.
pub struct OrderRequest {
    pub amount: Money,
    pub currency: String,
    pub reference_id: Option<String>,
    pub custom_id: Option<String>,
    pub invoice_id: Option<String>,
    pub description: Option<String>,
    pub return_url: String,
    pub cancel_url: String,
    /// `payment_source.paypal` was given: the payer-action flow.
    pub with_payment_source: bool,
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    path: &str,
    max: usize,
) -> Result<Option<&'a str>, PayPalProblem> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(PayPalProblem::invalid(
            &format!("{path}/{field}"),
            "INVALID_STRING_LENGTH",
            format!("The value of a field is either too short or too long (1 to {max})."),
        )),
        Some(_) => Err(PayPalProblem::invalid(
            &format!("{path}/{field}"),
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format.",
        )),
    }
}

fn required<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<&'a Value, PayPalProblem> {
    object.get(field).ok_or_else(|| {
        PayPalProblem::invalid(
            &format!("{path}/{field}"),
            "MISSING_REQUIRED_PARAMETER",
            "A required field / parameter is missing.",
        )
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, PayPalProblem> {
    value.as_object().ok_or_else(|| {
        PayPalProblem::invalid(
            path,
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format.",
        )
    })
}

/// A money object: `currency_code` of three letters and `value` a decimal **string** with at
/// most the currency's two decimals; a JSON number is refused as PayPal refuses it.
pub fn money(value: &Value, path: &str) -> Result<(Money, String), PayPalProblem> {
    let amount = object(value, path)?;
    let currency = required(amount, "currency_code", path)?;
    let currency = match currency.as_str() {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => c.to_string(),
        _ => {
            return Err(PayPalProblem::invalid(
                &format!("{path}/currency_code"),
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
            ));
        }
    };
    let raw = required(amount, "value", path)?;
    let Some(text) = raw.as_str() else {
        return Err(PayPalProblem::invalid(
            &format!("{path}/value"),
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format (a string).",
        ));
    };
    let (units, decimals) = text.split_once('.').unwrap_or((text, ""));
    let syntax = text.len() <= 32
        && !text.is_empty()
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.bytes().all(|b| b.is_ascii_digit())
        && !(text.contains('.') && decimals.is_empty());
    if !syntax {
        return Err(PayPalProblem::invalid(
            &format!("{path}/value"),
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format.",
        ));
    }
    if currency != "EUR" {
        return Err(PayPalProblem::unprocessable(
            "CURRENCY_NOT_SUPPORTED",
            "Currency code is not currently supported by this emulated account.",
        ));
    }
    if decimals.len() > 2 || units.len() > 15 {
        return Err(PayPalProblem::unprocessable(
            "DECIMAL_PRECISION",
            "If the currency supports decimals, only two decimal place precision is supported.",
        ));
    }
    let cents = crate::gateways::paypal::parse_value(text).map_err(|_| {
        PayPalProblem::invalid(
            &format!("{path}/value"),
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format.",
        )
    })?;
    if !cents.is_positive() {
        return Err(PayPalProblem::unprocessable(
            "CANNOT_BE_ZERO_OR_NEGATIVE",
            "Must be greater than zero.",
        ));
    }
    Ok((cents, currency))
}

fn absolute_url(value: Option<&str>, path: &str) -> Result<Option<String>, PayPalProblem> {
    match value {
        None => Ok(None),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.to_string()))
        }
        Some(_) => Err(PayPalProblem::invalid(
            path,
            "INVALID_PARAMETER_SYNTAX",
            "The value of a field does not conform to the expected format (an absolute URL).",
        )),
    }
}

fn one_of(
    object: &Map<String, Value>,
    field: &str,
    path: &str,
    allowed: &[&str],
) -> Result<(), PayPalProblem> {
    match object.get(field) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(_) => Err(PayPalProblem::invalid(
            &format!("{path}/{field}"),
            "INVALID_PARAMETER_VALUE",
            "The value of a field is invalid.",
        )),
    }
}

/// Checks `POST /v2/checkout/orders` as PayPal does (the fields obole's integration uses).
pub fn order_request(body: &[u8]) -> Result<OrderRequest, PayPalProblem> {
    let value: Value = serde_json::from_slice(body).map_err(|_| PayPalProblem::malformed_json())?;
    let root = object(&value, "")?;
    match required(root, "intent", "")?.as_str() {
        Some("CAPTURE") => {}
        Some("AUTHORIZE") => {
            return Err(PayPalProblem::unprocessable(
                "INTENT_NOT_SUPPORTED",
                "This emulated account only captures (intent CAPTURE).",
            ));
        }
        _ => {
            return Err(PayPalProblem::invalid(
                "/intent",
                "INVALID_PARAMETER_VALUE",
                "The value of a field is invalid.",
            ));
        }
    }
    let units = required(root, "purchase_units", "")?
        .as_array()
        .ok_or_else(|| {
            PayPalProblem::invalid(
                "/purchase_units",
                "INVALID_PARAMETER_SYNTAX",
                "An array is expected.",
            )
        })?;
    if units.is_empty() || units.len() > 10 {
        return Err(PayPalProblem::invalid(
            "/purchase_units",
            "INVALID_ARRAY_LENGTH",
            "purchase_units holds 1 to 10 items.",
        ));
    }
    let unit = object(&units[0], "/purchase_units/0")?;
    let (amount, currency) = money(
        required(unit, "amount", "/purchase_units/0")?,
        "/purchase_units/0/amount",
    )?;
    let path = "/purchase_units/0";
    let reference_id = string_field(unit, "reference_id", path, 256)?.map(str::to_string);
    let custom_id = string_field(unit, "custom_id", path, 127)?.map(str::to_string);
    let invoice_id = string_field(unit, "invoice_id", path, 127)?.map(str::to_string);
    let description = string_field(unit, "description", path, 127)?.map(str::to_string);
    string_field(unit, "soft_descriptor", path, 22)?;

    // The redirect settings: `payment_source.paypal.experience_context`, or the deprecated
    // `application_context` that PayPal still reads.
    let (context, context_path, with_payment_source) = match root.get("payment_source") {
        Some(source) => {
            let source = object(source, "/payment_source")?;
            let paypal = object(
                required(source, "paypal", "/payment_source")?,
                "/payment_source/paypal",
            )?;
            match paypal.get("experience_context") {
                Some(c) => (
                    Some(object(c, "/payment_source/paypal/experience_context")?),
                    "/payment_source/paypal/experience_context",
                    true,
                ),
                None => (None, "/payment_source/paypal/experience_context", true),
            }
        }
        None => match root.get("application_context") {
            Some(c) => (
                Some(object(c, "/application_context")?),
                "/application_context",
                false,
            ),
            None => (None, "/application_context", false),
        },
    };
    let empty = Map::new();
    let context = context.unwrap_or(&empty);
    one_of(
        context,
        "user_action",
        context_path,
        &["CONTINUE", "PAY_NOW"],
    )?;
    one_of(
        context,
        "shipping_preference",
        context_path,
        &["GET_FROM_FILE", "NO_SHIPPING", "SET_PROVIDED_ADDRESS"],
    )?;
    one_of(
        context,
        "landing_page",
        context_path,
        &["LOGIN", "GUEST_CHECKOUT", "NO_PREFERENCE", "BILLING"],
    )?;
    string_field(context, "brand_name", context_path, 127)?;
    if let Some(locale) = string_field(context, "locale", context_path, 10)? {
        let parts: Vec<&str> = locale.split('-').collect();
        if parts.len() > 2 || parts[0].len() != 2 {
            return Err(PayPalProblem::invalid(
                &format!("{context_path}/locale"),
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
            ));
        }
    }
    let return_url = absolute_url(
        string_field(context, "return_url", context_path, 4000)?,
        &format!("{context_path}/return_url"),
    )?;
    let cancel_url = absolute_url(
        string_field(context, "cancel_url", context_path, 4000)?,
        &format!("{context_path}/cancel_url"),
    )?;
    // PayPal takes orders without them (for its JavaScript buttons); a redirect integration
    // like obole's has nowhere to send the payer back without them.
    let (Some(return_url), Some(cancel_url)) = (return_url, cancel_url) else {
        return Err(PayPalProblem::invalid(
            &format!("{context_path}/return_url"),
            "MISSING_REQUIRED_PARAMETER",
            "return_url and cancel_url are required to redirect the payer.",
        ));
    };
    Ok(OrderRequest {
        amount,
        currency,
        reference_id,
        custom_id,
        invoice_id,
        description,
        return_url,
        cancel_url,
        with_payment_source,
    })
}

/// What a refund request asks for: `None` is the whole remaining amount.
pub struct RefundRequest {
    pub amount: Option<(Money, String)>,
    pub invoice_id: Option<String>,
}

pub fn refund_request(body: &[u8]) -> Result<RefundRequest, PayPalProblem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RefundRequest {
            amount: None,
            invoice_id: None,
        });
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| PayPalProblem::malformed_json())?;
    let root = object(&value, "")?;
    let amount = root
        .get("amount")
        .map(|a| money(a, "/amount"))
        .transpose()?;
    let invoice_id = string_field(root, "invoice_id", "", 127)?.map(str::to_string);
    string_field(root, "custom_id", "", 127)?;
    string_field(root, "note_to_payer", "", 255)?;
    Ok(RefundRequest { amount, invoice_id })
}

pub fn money_json(amount: Money, currency: &str) -> Value {
    json!({"currency_code": currency, "value": amount.to_decimal_string()})
}
