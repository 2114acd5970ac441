//! What the emulated PayPlug API checks before it acts: the call (secret key, API version,
//! JSON) and the bodies (amounts, PSD2 blocks, URLs, metadata), with PayPlug's error shape.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::gateways::payplug::{API_VERSION, EMULATOR_SECRET_KEY};

/// PayPlug's limits on one payment, in cents (0,99 € to 20 000 €).
pub const MIN_AMOUNT: i64 = 99;
pub const MAX_AMOUNT: i64 = 2_000_000;
/// The smallest refund PayPlug accepts, in cents.
pub(super) const MIN_REFUND: i64 = 10;

const DELIVERY_TYPES: [&str; 7] = [
    "BILLING",
    "VERIFIED",
    "NEW",
    "SHIP_TO_STORE",
    "DIGITAL_GOODS",
    "TRAVEL_OR_EVENT",
    "OTHER",
];

pub(super) fn api_error(status: StatusCode, message: &str, details: Option<Value>) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "object": "error",
        "message": message,
        "details": details,
    }))
}

pub(super) fn bad_request(details: Map<String, Value>) -> HttpResponse {
    api_error(
        StatusCode::BAD_REQUEST,
        "Some of the parameters are invalid.",
        Some(Value::Object(details)),
    )
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The refusal PayPlug gives a call before reading it, if any: the secret key, then the API
/// version (without the header PayPlug falls back to its legacy API, whose format this
/// emulator does not speak, so it refuses rather than pretend), then JSON for a body.
pub(super) fn check_call(request: &HttpRequest, has_body: bool) -> Option<HttpResponse> {
    let key = header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if !key.is_some_and(|k| same_secret(k, EMULATOR_SECRET_KEY)) {
        return Some(api_error(
            StatusCode::UNAUTHORIZED,
            "The API key you provided is not valid.",
            None,
        ));
    }
    match header(request, "payplug-version") {
        None => {
            return Some(api_error(
                StatusCode::BAD_REQUEST,
                "The PayPlug-Version header is required: this API speaks only 2019-08-06.",
                None,
            ));
        }
        Some(version) if version != API_VERSION => {
            return Some(api_error(
                StatusCode::BAD_REQUEST,
                &format!("Unknown API version {version:?}: this API speaks only 2019-08-06."),
                None,
            ));
        }
        Some(_) => {}
    }
    if has_body
        && !header(request, "content-type").is_some_and(|v| v.starts_with("application/json"))
    {
        return Some(api_error(
            StatusCode::BAD_REQUEST,
            "The request body must be JSON (Content-Type: application/json).",
            None,
        ));
    }
    None
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Customer {
    title: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    mobile_phone_number: Option<String>,
    landline_phone_number: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    company_name: Option<String>,
    postcode: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    language: Option<String>,
    delivery_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HostedRequest {
    pub(super) return_url: Option<String>,
    pub(super) cancel_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    pub(super) amount: Value,
    pub(super) currency: Option<String>,
    pub(super) billing: Option<Customer>,
    pub(super) shipping: Option<Customer>,
    pub(super) hosted_payment: Option<HostedRequest>,
    pub(super) notification_url: Option<String>,
    pub(super) description: Option<String>,
    pub(super) metadata: Option<Map<String, Value>>,
    pub(super) save_card: Option<bool>,
    pub(super) allow_save_card: Option<bool>,
}

fn is_absolute_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn check_customer(
    block: &str,
    customer: Option<&Customer>,
    shipping: bool,
    details: &mut Map<String, Value>,
) {
    let mut fail = |field: &str, message: &str| {
        details.insert(format!("{block}.{field}"), Value::from(message));
    };
    let Some(c) = customer else {
        fail("", "This field is required.");
        return;
    };
    for (field, value) in [("first_name", &c.first_name), ("last_name", &c.last_name)] {
        match value {
            Some(v) if !v.trim().is_empty() && v.chars().count() <= 100 => {}
            _ => fail(field, "Required, at most 100 characters."),
        }
    }
    match &c.email {
        Some(e)
            if e.len() <= 255
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) => {}
        _ => fail("email", "A valid email address is required."),
    }
    if let Some(title) = &c.title
        && !["mr", "mrs", "miss"].contains(&title.as_str())
    {
        fail("title", "Must be mr, mrs or miss.");
    }
    if let Some(country) = &c.country
        && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        fail("country", "Must be an ISO 3166-1 alpha-2 code.");
    }
    if let Some(language) = &c.language
        && !(language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()))
    {
        fail("language", "Must be an ISO 639-1 code.");
    }
    for (field, value) in [
        ("mobile_phone_number", &c.mobile_phone_number),
        ("landline_phone_number", &c.landline_phone_number),
    ] {
        if let Some(v) = value
            && !(v.starts_with('+') && v.len() > 4 && v[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            fail(field, "Must be in E.164 format.");
        }
    }
    let long = [
        &c.address1,
        &c.address2,
        &c.company_name,
        &c.postcode,
        &c.city,
        &c.state,
    ];
    if long
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.chars().count() > 255))
    {
        fail("address", "At most 255 characters per field.");
    }
    match (&c.delivery_type, shipping) {
        (Some(t), true) if DELIVERY_TYPES.contains(&t.as_str()) => {}
        (_, true) => fail(
            "delivery_type",
            "Required, one of the documented delivery types.",
        ),
        (Some(_), false) => fail("delivery_type", "Only allowed in shipping."),
        (None, false) => {}
    }
}

/// Every rule of PayPlug's create call the emulator knows, with PayPlug-style details.
pub(super) fn check_create(body: &CreateBody) -> Result<i64, Map<String, Value>> {
    let mut details = Map::new();
    let amount = match &body.amount {
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match amount {
        None => {
            details.insert(
                "amount".into(),
                "The amount must be an integer number of cents.".into(),
            );
        }
        Some(a) if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&a) => {
            details.insert(
                "amount".into(),
                format!("The amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} cents.").into(),
            );
        }
        Some(_) => {}
    }
    if body.currency.as_deref() != Some("EUR") {
        details.insert("currency".into(), "Only EUR is supported.".into());
    }
    check_customer("billing", body.billing.as_ref(), false, &mut details);
    check_customer("shipping", body.shipping.as_ref(), true, &mut details);
    match &body.hosted_payment {
        Some(HostedRequest {
            return_url: Some(url),
            ..
        }) if is_absolute_http_url(url) => {}
        _ => {
            details.insert(
                "hosted_payment.return_url".into(),
                "An absolute http(s) URL is required.".into(),
            );
        }
    }
    let optional_urls = [
        (
            "hosted_payment.cancel_url",
            body.hosted_payment
                .as_ref()
                .and_then(|h| h.cancel_url.as_ref()),
        ),
        ("notification_url", body.notification_url.as_ref()),
    ];
    for (name, url) in optional_urls {
        if let Some(url) = url
            && !is_absolute_http_url(url)
        {
            details.insert(name.into(), "Must be an absolute http(s) URL.".into());
        }
    }
    // Saving cards needs PayPlug's "Pro" offer; the emulated account is a plain test account.
    if body.save_card == Some(true) || body.allow_save_card == Some(true) {
        details.insert(
            "save_card".into(),
            "Saving cards is not enabled on this account.".into(),
        );
    }
    if let Some(metadata) = &body.metadata {
        for (key, value) in metadata {
            let fits = match value {
                Value::String(s) => s.chars().count() <= 500,
                Value::Number(_) | Value::Bool(_) => true,
                _ => false,
            };
            if !fits || key.chars().count() > 100 {
                details.insert(
                    format!("metadata.{key}"),
                    "A scalar value of at most 500 characters.".into(),
                );
            }
        }
    }
    match amount {
        Some(a) if details.is_empty() => Ok(a),
        _ => Err(details),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchBody {
    pub(super) aborted: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundBody {
    #[serde(default)]
    pub(super) amount: Option<Value>,
    #[serde(default)]
    pub(super) metadata: Option<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(change: impl FnOnce(&mut Value)) -> CreateBody {
        let mut value = json!({
            "amount": 3000,
            "currency": "EUR",
            "billing": {"first_name": "A", "last_name": "B", "email": "a@b.fr"},
            "shipping": {
                "first_name": "A", "last_name": "B", "email": "a@b.fr",
                "delivery_type": "DIGITAL_GOODS"
            },
            "hosted_payment": {"return_url": "https://x.fr/r"},
        });
        change(&mut value);
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn amounts_are_integer_cents_within_payplug_limits() {
        assert_eq!(check_create(&body(|_| {})), Ok(3000));
        for (amount, accepted) in [
            (json!(MIN_AMOUNT), true),
            (json!(MAX_AMOUNT), true),
            (json!(MIN_AMOUNT - 1), false),
            (json!(MAX_AMOUNT + 1), false),
            (json!(30.0), false),
            (json!("3000"), false),
        ] {
            let result = check_create(&body(|b| b["amount"] = amount.clone()));
            assert_eq!(result.is_ok(), accepted, "{amount}");
            if let Err(details) = result {
                assert!(details.contains_key("amount"), "{amount}");
            }
        }
    }

    #[test]
    fn delivery_type_belongs_to_shipping_only() {
        let in_billing = check_create(&body(|b| b["billing"]["delivery_type"] = "OTHER".into()));
        assert!(
            in_billing
                .unwrap_err()
                .contains_key("billing.delivery_type")
        );
        let missing = check_create(&body(|b| {
            b["shipping"]
                .as_object_mut()
                .unwrap()
                .remove("delivery_type");
        }));
        assert!(missing.unwrap_err().contains_key("shipping.delivery_type"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let value = json!({"amount": 3000, "amount_eur": 30});
        assert!(serde_json::from_value::<CreateBody>(value).is_err());
        assert!(serde_json::from_value::<PatchBody>(json!({"captured": true})).is_err());
    }
}
