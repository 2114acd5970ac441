//! PayPlug's wire format (REST API v1, `PayPlug-Version: 2019-08-06`) and the one place where
//! a PayPlug payment becomes an obole status.

use serde::{Deserialize, Serialize};

use crate::domain::PaymentStatus;

/// The metadata key carrying obole's attempt id: PayPlug echoes metadata on every read.
pub const REFERENCE_KEY: &str = "obole_payment_id";

#[derive(Serialize)]
pub struct PayPlugCreatePayment<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub billing: PayPlugCustomer<'a>,
    pub shipping: PayPlugShipping<'a>,
    pub hosted_payment: PayPlugHostedRequest<'a>,
    pub notification_url: &'a str,
    pub description: &'a str,
    pub metadata: PayPlugMetadata<'a>,
}

#[derive(Serialize)]
pub struct PayPlugCustomer<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub language: &'a str,
}

/// Required since the PSD2 versions even for what is not shipped: dues are digital goods.
#[derive(Serialize)]
pub struct PayPlugShipping<'a> {
    #[serde(flatten)]
    pub customer: PayPlugCustomer<'a>,
    pub delivery_type: &'a str,
}

#[derive(Serialize)]
pub struct PayPlugHostedRequest<'a> {
    pub return_url: &'a str,
    pub cancel_url: &'a str,
}

#[derive(Serialize)]
pub struct PayPlugMetadata<'a> {
    pub obole_payment_id: &'a str,
}

#[derive(Serialize)]
pub struct PayPlugCreateRefund<'a> {
    pub amount: i64,
    pub metadata: PayPlugRefundMetadata<'a>,
}

#[derive(Serialize)]
pub struct PayPlugRefundMetadata<'a> {
    pub obole_refund_id: &'a str,
}

#[derive(Serialize)]
pub struct PayPlugAbort {
    pub aborted: bool,
}

#[derive(Deserialize, Debug)]
pub struct PayPlugPayment {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    pub is_live: bool,
    #[serde(default)]
    pub is_paid: bool,
    #[serde(default)]
    pub failure: Option<PayPlugFailure>,
    #[serde(default)]
    pub payment_method: Option<PayPlugPaymentMethod>,
    #[serde(default)]
    pub hosted_payment: Option<PayPlugHostedPayment>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PayPlugPayment {
    /// obole's attempt id as PayPlug echoes it in the metadata.
    pub fn reference(&self) -> Option<String> {
        match self.metadata.as_ref()?.get(REFERENCE_KEY)? {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

#[derive(Deserialize, Debug)]
pub struct PayPlugFailure {
    pub code: PayPlugFailureCode,
}

#[derive(Deserialize, Debug)]
pub struct PayPlugPaymentMethod {
    #[serde(default)]
    pub is_pending: bool,
}

#[derive(Deserialize, Debug)]
pub struct PayPlugHostedPayment {
    #[serde(default)]
    pub payment_url: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PayPlugFailureCode {
    ProcessingError,
    CardDeclined,
    InsufficientFunds,
    #[serde(rename = "3ds_declined")]
    ThreeDsDeclined,
    IncorrectNumber,
    FraudSuspected,
    MethodUnsupported,
    CardSchemeMismatch,
    CardExpirationDatePriorToLastInstallmentDate,
    Aborted,
    Timeout,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug)]
pub struct PayPlugRefund {
    pub id: String,
    pub amount: i64,
}

/// A page of a PayPlug list (`GET /v1/payments/{id}/refunds`).
#[derive(Deserialize, Debug)]
pub struct PayPlugList<T> {
    pub data: Vec<T>,
}

/// What PayPlug POSTs to the notification URL: only `object` and the ids are read, the rest
/// is re-fetched with obole's key.
#[derive(Deserialize, Debug)]
pub struct PayPlugNotification {
    pub object: String,
    pub id: String,
    #[serde(default)]
    pub payment_id: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct PayPlugErrorBody {
    pub message: String,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

impl PayPlugErrorBody {
    /// The message with the field details PayPlug gives, for a manager to read.
    pub fn describe(&self) -> String {
        match &self.details {
            Some(details) if !details.is_null() => format!("{} ({details})", self.message),
            _ => self.message.clone(),
        }
    }
}

/// The one place where a PayPlug payment becomes an obole status. The resource has flags
/// rather than one status: paid wins over everything (refunds are derived by obole from the
/// refunds it posts), then the failure code; a code obole does not know, or an Oney payment
/// still being decided, stays pending so that the sweep asks again.
pub fn status_of(payment: &PayPlugPayment) -> PaymentStatus {
    if payment.is_paid {
        return PaymentStatus::Paid;
    }
    if payment
        .payment_method
        .as_ref()
        .is_some_and(|m| m.is_pending)
    {
        return PaymentStatus::Pending;
    }
    let Some(failure) = &payment.failure else {
        return PaymentStatus::Pending;
    };
    match failure.code {
        PayPlugFailureCode::ProcessingError
        | PayPlugFailureCode::CardDeclined
        | PayPlugFailureCode::InsufficientFunds
        | PayPlugFailureCode::ThreeDsDeclined
        | PayPlugFailureCode::IncorrectNumber
        | PayPlugFailureCode::FraudSuspected
        | PayPlugFailureCode::MethodUnsupported
        | PayPlugFailureCode::CardSchemeMismatch
        | PayPlugFailureCode::CardExpirationDatePriorToLastInstallmentDate => PaymentStatus::Failed,
        PayPlugFailureCode::Aborted => PaymentStatus::Cancelled,
        PayPlugFailureCode::Timeout => PaymentStatus::Expired,
        PayPlugFailureCode::Unknown => PaymentStatus::Pending,
    }
}

/// PayPlug object ids are short ASCII tokens; anything else is not put into a URL path.
pub fn is_plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(json: serde_json::Value) -> PayPlugPayment {
        let mut base = serde_json::json!({
            "id": "pay_5iHMDxy4ABR4YBVW4UscIn",
            "object": "payment",
            "amount": 3300,
            "amount_refunded": 0,
            "currency": "EUR",
            "is_live": false,
            "is_paid": false,
            "failure": null,
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn failed(code: &str) -> PayPlugPayment {
        payment(serde_json::json!({"failure": {"code": code, "message": "m"}}))
    }

    #[test]
    fn statuses_map_exhaustively_and_unknown_is_pending() {
        let cases = [
            ("processing_error", PaymentStatus::Failed),
            ("card_declined", PaymentStatus::Failed),
            ("insufficient_funds", PaymentStatus::Failed),
            ("3ds_declined", PaymentStatus::Failed),
            ("incorrect_number", PaymentStatus::Failed),
            ("fraud_suspected", PaymentStatus::Failed),
            ("method_unsupported", PaymentStatus::Failed),
            ("card_scheme_mismatch", PaymentStatus::Failed),
            (
                "card_expiration_date_prior_to_last_installment_date",
                PaymentStatus::Failed,
            ),
            ("aborted", PaymentStatus::Cancelled),
            ("timeout", PaymentStatus::Expired),
            ("something_new", PaymentStatus::Pending),
        ];
        for (code, expected) in cases {
            assert_eq!(status_of(&failed(code)), expected, "{code}");
        }
    }

    #[test]
    fn an_unpaid_payment_without_failure_is_pending() {
        assert_eq!(
            status_of(&payment(serde_json::json!({}))),
            PaymentStatus::Pending
        );
    }

    #[test]
    fn paid_wins_over_refund_flags() {
        let refunded = payment(serde_json::json!({
            "is_paid": true, "is_refunded": true, "amount_refunded": 3300
        }));
        assert_eq!(status_of(&refunded), PaymentStatus::Paid);
    }

    #[test]
    fn an_oney_payment_being_decided_is_pending() {
        let oney = payment(serde_json::json!({
            "payment_method": {"type": "oney_x3_with_fees", "is_pending": true}
        }));
        assert_eq!(status_of(&oney), PaymentStatus::Pending);
    }

    #[test]
    fn the_reference_is_read_from_the_metadata_only_when_a_string() {
        let with = payment(serde_json::json!({"metadata": {"obole_payment_id": "abc"}}));
        assert_eq!(with.reference().as_deref(), Some("abc"));
        let number = payment(serde_json::json!({"metadata": {"obole_payment_id": 12}}));
        assert_eq!(number.reference(), None);
        assert_eq!(payment(serde_json::json!({})).reference(), None);
    }

    #[test]
    fn amounts_in_anything_but_integer_cents_are_unreadable() {
        for amount in ["33.0", "\"3300\""] {
            let body =
                format!(r#"{{"id":"pay_1","amount":{amount},"currency":"EUR","is_live":false}}"#);
            assert!(
                serde_json::from_str::<PayPlugPayment>(&body).is_err(),
                "{amount}"
            );
        }
    }

    #[test]
    fn notifications_and_ids_are_read_strictly() {
        let refund: PayPlugNotification = serde_json::from_str(
            r#"{"object":"refund","id":"re_1","payment_id":"pay_1","is_paid":true}"#,
        )
        .unwrap();
        assert_eq!(refund.payment_id.as_deref(), Some("pay_1"));
        assert!(serde_json::from_str::<PayPlugNotification>(r#"{"object":"payment"}"#).is_err());
        assert!(is_plausible_id("pay_5iHMDxy4ABR4YBVW4UscIn"));
        assert!(!is_plausible_id("pay_1/../refunds"));
        assert!(!is_plausible_id(""));
    }

    #[test]
    fn error_bodies_keep_their_details() {
        let body: PayPlugErrorBody = serde_json::from_str(
            r#"{"object":"error","message":"Bad request.","details":{"amount":"too low"}}"#,
        )
        .unwrap();
        assert!(body.describe().contains("too low"));
    }
}
