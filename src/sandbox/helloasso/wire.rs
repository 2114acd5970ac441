//! What the emulated HelloAsso accepts: the `InitCheckoutBody` of the v5 spec (no unknown
//! field, amounts as int32 cents) and the rules HelloAsso adds to it.

use serde::Deserialize;

use crate::gateways::helloasso::{acceptable_email, name_problem};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct InitCheckoutBody {
    pub total_amount: i32,
    pub initial_amount: i32,
    pub item_name: String,
    pub back_url: String,
    pub error_url: String,
    pub return_url: String,
    pub contains_donation: bool,
    #[serde(default)]
    pub terms: Option<Vec<TermBody>>,
    #[serde(default)]
    pub payer: Option<PayerBody>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted as HelloAsso accepts it; the emulator offers cards only"
    )]
    pub payment_options: Option<PaymentOptionsBody>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TermBody {
    pub amount: i32,
    pub date: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PayerBody {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub zip_code: Option<String>,
    pub country: Option<String>,
    pub company_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PaymentOptionsBody {
    #[serde(default)]
    #[expect(dead_code, reason = "parsed only to refuse what HelloAsso refuses")]
    pub enable_sepa: Option<bool>,
}

impl InitCheckoutBody {
    pub fn terms(&self) -> &[TermBody] {
        self.terms.as_deref().unwrap_or_default()
    }
}

fn is_absolute_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// HelloAsso's checks beyond the schema; the message is what its 400 says.
pub(super) fn validate(body: &InitCheckoutBody, now: time::OffsetDateTime) -> Result<(), String> {
    if body.total_amount <= 0 || body.initial_amount <= 0 {
        return Err("totalAmount and initialAmount must be positive amounts in cents".into());
    }
    let terms_total: i64 = body.terms().iter().map(|t| i64::from(t.amount)).sum();
    if i64::from(body.total_amount) != i64::from(body.initial_amount) + terms_total {
        return Err(
            "totalAmount must be equal to the sum of initialAmount and the terms' amounts".into(),
        );
    }
    for term in body.terms() {
        if term.amount <= 0 {
            return Err("each term's amount must be positive".into());
        }
        let date =
            time::OffsetDateTime::parse(&term.date, &time::format_description::well_known::Rfc3339)
                .map_err(|_| format!("term date '{}' is not a date-time", term.date))?;
        if date <= now {
            return Err("term dates must be in the future".into());
        }
    }
    let item = body.item_name.trim().chars().count();
    if item == 0 || body.item_name.chars().count() > 250 {
        return Err("itemName must have between 1 and 250 characters".into());
    }
    for (name, url) in [
        ("backUrl", &body.back_url),
        ("errorUrl", &body.error_url),
        ("returnUrl", &body.return_url),
    ] {
        if !is_absolute_http_url(url) {
            return Err(format!("{name} must be an absolute URL"));
        }
    }
    if let Some(payer) = &body.payer {
        validate_payer(payer)?;
    }
    if let Some(metadata) = &body.metadata {
        if !metadata.is_object() {
            return Err("metadata must be a JSON object".into());
        }
        if metadata.to_string().len() > 20_000 {
            return Err("metadata must not exceed 20000 characters".into());
        }
    }
    Ok(())
}

fn validate_payer(payer: &PayerBody) -> Result<(), String> {
    for (field, value) in [
        ("firstName", &payer.first_name),
        ("lastName", &payer.last_name),
        ("email", &payer.email),
        ("companyName", &payer.company_name),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
            return Err(format!("payer.{field} must have at most 255 characters"));
        }
    }
    for (field, value) in [
        ("firstName", &payer.first_name),
        ("lastName", &payer.last_name),
    ] {
        if let Some(problem) = value.as_deref().and_then(name_problem) {
            return Err(format!("payer.{field} {problem}"));
        }
    }
    if let (Some(first), Some(last)) = (&payer.first_name, &payer.last_name)
        && first.trim().to_lowercase() == last.trim().to_lowercase()
    {
        return Err("payer.firstName and payer.lastName must be different".into());
    }
    if let Some(email) = &payer.email
        && !acceptable_email(email)
    {
        return Err("payer.email is not a valid email".into());
    }
    if let Some(date) = &payer.date_of_birth
        && time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
            .is_err()
    {
        return Err("payer.dateOfBirth must be a date-time".into());
    }
    if let Some(country) = &payer.country
        && (country.len() != 3 || !country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err("payer.country must be a 3-letter country code".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> Result<InitCheckoutBody, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "totalAmount": 3000, "initialAmount": 3000, "itemName": "Cotisation",
            "backUrl": "https://a.org/b", "errorUrl": "https://a.org/e", "returnUrl": "https://a.org/r",
            "containsDonation": false,
            "payer": {"firstName": "Camille", "lastName": "Martin", "email": "c@a.org"},
            "metadata": {"obolePaymentId": "p1"}
        })
    }

    fn now() -> time::OffsetDateTime {
        time::macros::datetime!(2026-05-04 10:00 UTC)
    }

    #[test]
    fn a_well_formed_body_is_accepted() {
        assert_eq!(validate(&body(valid()).unwrap(), now()), Ok(()));
    }

    #[test]
    fn amounts_must_be_integer_cents_and_fields_known() {
        for (field, value) in [
            ("totalAmount", serde_json::json!("30.00")),
            ("totalAmount", serde_json::json!(30.5)),
            ("initialAmount", serde_json::json!(3_000_000_000_i64)),
            ("reference", serde_json::json!("p1")),
        ] {
            let mut json = valid();
            json[field] = value;
            assert!(body(json).is_err(), "{field}");
        }
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("containsDonation");
        assert!(body(missing).is_err());
    }

    #[test]
    fn the_total_must_be_the_initial_amount_plus_the_terms() {
        let mut json = valid();
        json["totalAmount"] = serde_json::json!(9000);
        json["terms"] = serde_json::json!([
            {"amount": 3000, "date": "2026-06-04T12:00:00Z"},
            {"amount": 3000, "date": "2026-07-04T12:00:00Z"}
        ]);
        assert_eq!(validate(&body(json.clone()).unwrap(), now()), Ok(()));
        json["terms"][1]["amount"] = serde_json::json!(2999);
        assert!(validate(&body(json.clone()).unwrap(), now()).is_err());
        json["terms"][1]["amount"] = serde_json::json!(3000);
        json["terms"][0]["date"] = serde_json::json!("2026-05-01T12:00:00Z");
        assert!(
            validate(&body(json).unwrap(), now()).is_err(),
            "a past term"
        );
    }

    #[test]
    fn item_names_over_250_characters_are_refused() {
        let mut json = valid();
        json["itemName"] = serde_json::json!("é".repeat(250));
        assert_eq!(validate(&body(json.clone()).unwrap(), now()), Ok(()));
        json["itemName"] = serde_json::json!("é".repeat(251));
        assert!(validate(&body(json).unwrap(), now()).is_err());
    }

    #[test]
    fn payer_names_breaking_helloassos_rules_are_refused() {
        for (first, last) in [
            ("Test", "Martin"),
            ("Camille", "M4rtin"),
            ("Martin", "Martin"),
        ] {
            let mut json = valid();
            json["payer"]["firstName"] = serde_json::json!(first);
            json["payer"]["lastName"] = serde_json::json!(last);
            assert!(
                validate(&body(json).unwrap(), now()).is_err(),
                "{first} {last}"
            );
        }
    }
}
