//! What Stripe refuses in the parameters of a Checkout Session or a refund, in its words.

use serde_json::{Value, json};

use super::params::{ParamError, Params};

pub(super) const SESSION_PARAMS: &[&str] = &[
    "mode",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "customer",
    "customer_creation",
    "customer_email",
    "currency",
    "locale",
    "expires_at",
    "submit_type",
    "line_items[*][quantity]",
    "line_items[*][price_data][currency]",
    "line_items[*][price_data][unit_amount]",
    "line_items[*][price_data][product_data][name]",
    "line_items[*][price_data][product_data][description]",
    "metadata[*]",
    "payment_intent_data[metadata][*]",
    "payment_intent_data[description]",
    "payment_intent_data[setup_future_usage]",
    "payment_method_types[*]",
    "expand[*]",
];

pub(super) const REFUND_PARAMS: &[&str] = &[
    "payment_intent",
    "charge",
    "amount",
    "reason",
    "metadata[*]",
    "expand[*]",
];

/// Checks a session's parameters as Stripe does; returns (amount_total, currency).
pub(super) fn check_session(params: &Params) -> Result<(i64, String), ParamError> {
    params.only(SESSION_PARAMS)?;
    let mode = params.required("mode")?;
    if !["payment", "setup", "subscription"].contains(&mode) {
        return Err(ParamError::new(
            "Invalid mode: must be one of payment, setup, or subscription",
            "mode",
        ));
    }
    if mode != "payment" {
        return Err(ParamError::new(
            "This emulator only knows `mode=payment` Checkout Sessions.",
            "mode",
        ));
    }
    for key in ["success_url", "cancel_url"] {
        if key == "success_url" {
            params.required(key)?;
        }
        if let Some(url) = params.get(key)
            && !reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(ParamError::new("Not a valid URL", key));
        }
    }
    if params
        .get("client_reference_id")
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(ParamError::new(
            "client_reference_id must be at most 200 characters",
            "client_reference_id",
        ));
    }
    if let Some(email) = params.get("customer_email")
        && !(email.contains('@') && email.len() <= 512)
    {
        return Err(ParamError::new(
            format!("Invalid email address: {email}"),
            "customer_email",
        ));
    }
    for other in ["customer_email", "customer_creation"] {
        if params.get("customer").is_some() && params.get(other).is_some() {
            return Err(ParamError::new(
                format!("You may only specify one of these parameters: customer, {other}."),
                other,
            ));
        }
    }
    if let Some(creation) = params.get("customer_creation")
        && !["always", "if_required"].contains(&creation)
    {
        return Err(ParamError::new(
            format!("Invalid customer_creation: must be one of always or if_required ({creation})"),
            "customer_creation",
        ));
    }
    if let Some(usage) = params.get("payment_intent_data[setup_future_usage]")
        && !["off_session", "on_session"].contains(&usage)
    {
        return Err(ParamError::new(
            format!(
                "Invalid setup_future_usage: must be one of off_session or on_session ({usage})"
            ),
            "payment_intent_data[setup_future_usage]",
        ));
    }
    params.integer("expires_at")?;
    check_metadata(params, "metadata")?;
    check_metadata(params, "payment_intent_data[metadata]")?;
    let items = params.indices("line_items");
    if items.is_empty() {
        return Err(ParamError::new(
            "You must specify either `line_items` or `mode=setup`.",
            "line_items",
        ));
    }
    if items.len() > 100 {
        return Err(ParamError::new(
            "A Checkout Session can have at most 100 line items.",
            "line_items",
        ));
    }
    let mut total = 0i64;
    let mut session_currency: Option<String> = None;
    for (position, index) in items.iter().enumerate() {
        if index.parse::<usize>() != Ok(position) {
            return Err(ParamError::new(
                "Invalid array: indices must start at 0 and follow each other",
                "line_items",
            ));
        }
        let key = |rest: &str| format!("line_items[{index}]{rest}");
        let quantity = params.integer(&key("[quantity]"))?.ok_or_else(|| {
            ParamError::new(
                format!("Missing required param: {}.", key("[quantity]")),
                &key("[quantity]"),
            )
        })?;
        if quantity < 1 {
            return Err(ParamError::new(
                "Quantity must be at least 1",
                &key("[quantity]"),
            ));
        }
        let currency = params
            .required(&key("[price_data][currency]"))?
            .to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(ParamError::new(
                format!("Invalid currency: {currency}"),
                &key("[price_data][currency]"),
            ));
        }
        let unit_amount = params
            .integer(&key("[price_data][unit_amount]"))?
            .ok_or_else(|| {
                ParamError::new(
                    format!(
                        "Missing required param: {}.",
                        key("[price_data][unit_amount]")
                    ),
                    &key("[price_data][unit_amount]"),
                )
            })?;
        if !(0..=99_999_999).contains(&unit_amount) {
            return Err(ParamError::new(
                "Invalid integer: unit_amount must be between 0 and 99999999",
                &key("[price_data][unit_amount]"),
            ));
        }
        params.required(&key("[price_data][product_data][name]"))?;
        match &session_currency {
            Some(known) if *known != currency => {
                return Err(ParamError::new(
                    "All line items must use the same currency.",
                    &key("[price_data][currency]"),
                ));
            }
            _ => session_currency = Some(currency),
        }
        total += unit_amount * quantity;
    }
    let currency = session_currency.unwrap_or_default();
    if total < 50 {
        return Err(ParamError::new(
            format!(
                "The Checkout Session's total amount due must add up to at least €0.50 {currency}"
            ),
            "line_items",
        ));
    }
    if total > 99_999_999 {
        return Err(ParamError::new(
            "The Checkout Session's total amount due must be at most 99999999.",
            "line_items",
        ));
    }
    Ok((total, currency))
}

/// At most 50 keys of at most 40 characters, values of at most 500 characters.
pub(super) fn check_metadata(params: &Params, name: &str) -> Result<(), ParamError> {
    let entries: Vec<(&str, &str)> = params.under(name).collect();
    if entries.len() > 50 {
        return Err(ParamError::new("Metadata can have at most 50 keys.", name));
    }
    for (key, value) in entries {
        if key.is_empty() || key.chars().count() > 40 {
            return Err(ParamError::new(
                "Metadata keys must have 1 to 40 characters.",
                &format!("{name}[{key}]"),
            ));
        }
        if value.chars().count() > 500 {
            return Err(ParamError::new(
                "Metadata values can have up to 500 characters.",
                &format!("{name}[{key}]"),
            ));
        }
    }
    Ok(())
}

pub(super) fn metadata(params: &Params, name: &str) -> Value {
    Value::Object(
        params
            .under(name)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}
