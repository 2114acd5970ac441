//! What the Stancer emulator accepts: request bodies checked as Stancer's API v2 checks them
//! (integer cents, lowercase currency, bounded texts, no unknown field), and its error body.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

/// A refusal as Stancer words it: `{"error": {"message": …, "type": …}}`.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: Value,
    pub kind: &'static str,
}

impl Refusal {
    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: Value::String(message.into()),
            kind: "invalid_request_error",
        }
    }

    /// A refusal naming the field at fault, as Stancer's validation does.
    pub fn field(field: &str, why: impl Into<String>) -> Refusal {
        let mut message = Map::new();
        message.insert(field.to_string(), Value::String(why.into()));
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: Value::Object(message),
            kind: "invalid_request_error",
        }
    }

    pub fn not_found(id: &str) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: json!({ "id": format!("No such object {id}") }),
            kind: "not_found_error",
        }
    }

    pub fn unauthorized() -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: Value::String("You are not authorized to access this resource.".into()),
            kind: "invalid_request_error",
        }
    }

    pub fn conflict(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::CONFLICT,
            message: Value::String(message.into()),
            kind: "invalid_request_error",
        }
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("application/json")
            .body(json!({"error": {"message": self.message, "type": self.kind}}).to_string())
    }
}

/// Stancer's minimum for a payment and for a refund, in cents.
pub const MINIMUM_CENTS: i64 = 50;
const MAXIMUM_CENTS: i64 = 9_999_999_999;
pub const CURRENCIES: [&str; 3] = ["eur", "gbp", "usd"];
const INTENT_FIELDS: [&str; 12] = [
    "amount",
    "currency",
    "description",
    "order_id",
    "return_url",
    "capture",
    "methods_allowed",
    "threeds",
    "customer",
    "billing_address",
    "shipping_address",
    "metadata",
];
const REFUND_FIELDS: [&str; 2] = ["payment", "amount"];

pub struct IntentRequest {
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub order_id: Option<String>,
    pub return_url: String,
    pub capture: bool,
    pub methods_allowed: Vec<String>,
    pub metadata: Value,
    /// The customer whose card is to be kept (`cust_…`).
    pub customer: Option<String>,
}

pub struct RefundRequest {
    pub payment: String,
    pub amount: Option<i64>,
}

pub fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Refusal> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Refusal::invalid("The body is not valid JSON"))?;
    let Value::Object(fields) = value else {
        return Err(Refusal::invalid("The body must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Refusal::field(unknown, "Unknown field"));
    }
    Ok(fields)
}

/// An amount in cents: a JSON integer (a float, even `30.0`, or a string is refused).
pub fn cents(fields: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refusal> {
    let Some(value) = fields.get(name) else {
        return Ok(None);
    };
    let cents = match value {
        Value::Number(n) if n.is_i64() => n.as_i64(),
        Value::Number(n) if n.is_u64() => None,
        _ => return Err(Refusal::field(name, "Must be an integer, in cents")),
    }
    .ok_or_else(|| Refusal::field(name, "Too large"))?;
    if !(MINIMUM_CENTS..=MAXIMUM_CENTS).contains(&cents) {
        return Err(Refusal::field(
            name,
            format!("Must be between {MINIMUM_CENTS} and {MAXIMUM_CENTS}"),
        ));
    }
    Ok(Some(cents))
}

pub fn text(
    fields: &Map<String, Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, Refusal> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let length = s.chars().count();
            if length < min || length > max {
                Err(Refusal::field(
                    name,
                    format!("Must be between {min} and {max} characters"),
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(Refusal::field(name, "Must be a string")),
    }
}

/// Stancer wants an HTTPS address; plain HTTP is let through for a portal on this machine,
/// the only place an emulated payment can come from.
fn return_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

pub fn intent_request(body: &[u8]) -> Result<IntentRequest, Refusal> {
    let fields = object(body, &INTENT_FIELDS)?;
    let amount = cents(&fields, "amount")?.ok_or_else(|| Refusal::field("amount", "Required"))?;
    let currency = match fields.get("currency") {
        Some(Value::String(c)) if CURRENCIES.contains(&c.as_str()) => c.clone(),
        Some(_) => {
            return Err(Refusal::field(
                "currency",
                "Must be one of eur, gbp, usd (lowercase)",
            ));
        }
        None => return Err(Refusal::field("currency", "Required")),
    };
    let description = text(&fields, "description", 3, 64)?;
    let order_id = text(&fields, "order_id", 1, 36)?;
    let return_url = text(&fields, "return_url", 1, 2048)?
        .ok_or_else(|| Refusal::field("return_url", "Required to use the payment page"))?;
    if !self::return_url(&return_url) {
        return Err(Refusal::field("return_url", "Must be an HTTPS URL"));
    }
    let capture = match fields.get("capture") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Refusal::field("capture", "Must be a boolean")),
    };
    let methods_allowed = match fields.get("methods_allowed") {
        None => vec!["card".to_string()],
        Some(Value::Array(methods)) => {
            let mut out = Vec::new();
            for method in methods {
                match method.as_str() {
                    Some(m @ ("card" | "sepa")) => out.push(m.to_string()),
                    _ => return Err(Refusal::field("methods_allowed", "Unknown method")),
                }
            }
            out
        }
        Some(_) => return Err(Refusal::field("methods_allowed", "Must be an array")),
    };
    if let Some(threeds) = fields.get("threeds")
        && !matches!(threeds.as_str(), Some("none" | "required"))
    {
        return Err(Refusal::field("threeds", "Must be none or required"));
    }
    let metadata = match fields.get("metadata") {
        None => Value::Null,
        Some(m @ Value::Object(_)) => m.clone(),
        Some(_) => return Err(Refusal::field("metadata", "Must be an object")),
    };
    let customer = text(&fields, "customer", 1, 64)?;
    if customer.as_ref().is_some_and(|c| !c.starts_with("cust_")) {
        return Err(Refusal::field("customer", "Must be a customer id"));
    }
    Ok(IntentRequest {
        amount,
        currency,
        description,
        order_id,
        return_url,
        capture,
        methods_allowed,
        metadata,
        customer,
    })
}

pub fn refund_request(body: &[u8]) -> Result<RefundRequest, Refusal> {
    let fields = object(body, &REFUND_FIELDS)?;
    let payment =
        text(&fields, "payment", 1, 64)?.ok_or_else(|| Refusal::field("payment", "Required"))?;
    let amount = cents(&fields, "amount")?;
    Ok(RefundRequest { payment, amount })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    fn valid() -> Value {
        json!({
            "amount": 3000, "currency": "eur", "description": "Cotisation",
            "order_id": "0193a0f2-7c1e-7cc1-9a53-7b2a4b6c8d9e",
            "return_url": "https://asso.example/payments/1/return",
            "metadata": {"payment_id": "1"}
        })
    }

    fn refused_field(value: Value) -> String {
        match intent_request(&body(value)) {
            Ok(_) => panic!("accepted"),
            Err(refusal) => refusal
                .message
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_well_formed_intent_is_accepted() {
        let intent = intent_request(&body(valid())).expect("valid");
        assert_eq!(intent.amount, 3000);
        assert!(intent.capture);
    }

    #[test]
    fn what_stancer_refuses_is_refused() {
        let mut cases = Vec::new();
        for (field, value) in [
            ("amount", json!(30.0)),
            ("amount", json!("3000")),
            ("amount", json!(49)),
            ("currency", json!("EUR")),
            ("description", json!("ab")),
            ("order_id", json!("x".repeat(37))),
            ("return_url", json!("ftp://asso.example/")),
            ("return_url", json!("http://asso.example/")),
            ("surprise", json!(1)),
        ] {
            let mut request = valid();
            request[field] = value;
            cases.push((field, request));
        }
        for (field, request) in cases {
            assert_eq!(refused_field(request), field);
        }
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("amount");
        assert_eq!(refused_field(missing), "amount");
    }

    #[test]
    fn refunds_take_a_payment_and_integer_cents() {
        let refund = refund_request(br#"{"payment":"paym_x","amount":50}"#).expect("valid");
        assert_eq!(refund.amount, Some(50));
        assert!(refund_request(br#"{"payment":"paym_x","amount":49}"#).is_err());
        assert!(refund_request(br#"{"payment":"paym_x","amount":5.5}"#).is_err());
        assert!(refund_request(br#"{"amount":500}"#).is_err());
        assert!(refund_request(br#"{"payment":"paym_x","reason":"x"}"#).is_err());
    }
}
