//! Mollie's wire format (Payments API v2): request and response bodies, amounts as exact
//! decimal strings, and the one mapping of Mollie's payment statuses into obole's.

use serde::{Deserialize, Serialize};

use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Capture, GatewayReport, RefundFact, RefundStatus};

/// Mollie's amount object: `{"currency":"EUR","value":"30.00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MollieAmount {
    pub currency: String,
    pub value: String,
}

impl MollieAmount {
    pub fn new(amount: Money, currency: &str) -> MollieAmount {
        MollieAmount {
            currency: currency.to_ascii_uppercase(),
            value: amount.to_decimal_string(),
        }
    }

    pub fn money(&self) -> Result<Money, String> {
        parse_value(&self.value)
    }
}

/// Parses Mollie's `value` exactly: digits, a point and exactly two decimals (the euro's), an
/// optional leading minus (settlement amounts of refunds are negative).
pub fn parse_value(value: &str) -> Result<Money, String> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let Some((units, cents)) = digits.split_once('.') else {
        return Err(format!("amount value {value:?} has no decimal part"));
    };
    let well_formed = !units.is_empty()
        && units.len() <= 12
        && cents.len() == 2
        && units.bytes().all(|b| b.is_ascii_digit())
        && cents.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(format!("amount value {value:?} is not of the form 123.45"));
    }
    let units: i64 = units.parse().map_err(|_| format!("amount {value:?}"))?;
    let cents: i64 = cents.parse().map_err(|_| format!("amount {value:?}"))?;
    let total = units * 100 + cents;
    Ok(Money::from_cents(if negative { -total } else { total }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MollieCreatePayment<'a> {
    pub amount: MollieAmount,
    pub description: &'a str,
    pub redirect_url: &'a str,
    pub cancel_url: &'a str,
    pub webhook_url: &'a str,
    pub metadata: MollieMetadata<'a>,
    pub locale: &'static str,
}

/// What obole leaves on the payment so that a fetch tells which attempt it belongs to.
#[derive(Serialize)]
pub struct MollieMetadata<'a> {
    pub payment_id: &'a str,
}

#[derive(Deserialize)]
pub struct MollieMetadataBack {
    #[serde(default)]
    pub payment_id: Option<String>,
}

#[derive(Serialize)]
pub struct MollieCreateRefund<'a> {
    pub amount: MollieAmount,
    pub description: &'a str,
    pub metadata: MollieRefundMetadata<'a>,
}

/// Which attempt and which of obole's refunds a Mollie refund is, for the dashboard.
#[derive(Serialize)]
pub struct MollieRefundMetadata<'a> {
    pub payment_id: &'a str,
    pub refund_id: &'a str,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MollieStatus {
    Open,
    Pending,
    Authorized,
    Paid,
    Canceled,
    Expired,
    Failed,
    #[serde(other)]
    Unknown,
}

/// The one place where Mollie's statuses become obole's: anything unknown is still pending.
/// `authorized` is money reserved, not captured: pending until Mollie says `paid`.
impl From<MollieStatus> for PaymentStatus {
    fn from(status: MollieStatus) -> PaymentStatus {
        match status {
            MollieStatus::Open
            | MollieStatus::Pending
            | MollieStatus::Authorized
            | MollieStatus::Unknown => PaymentStatus::Pending,
            MollieStatus::Paid => PaymentStatus::Paid,
            MollieStatus::Canceled => PaymentStatus::Cancelled,
            MollieStatus::Expired => PaymentStatus::Expired,
            MollieStatus::Failed => PaymentStatus::Failed,
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MollieRefundStatus {
    Queued,
    Pending,
    Processing,
    Refunded,
    Failed,
    Canceled,
    #[serde(other)]
    Unknown,
}

/// Only `refunded` is money gone for good: a queued or pending refund can still be
/// cancelled, and a processing one can still fail at the payer's bank.
impl From<MollieRefundStatus> for RefundStatus {
    fn from(status: MollieRefundStatus) -> RefundStatus {
        match status {
            MollieRefundStatus::Refunded => RefundStatus::Succeeded,
            MollieRefundStatus::Failed | MollieRefundStatus::Canceled => RefundStatus::Failed,
            MollieRefundStatus::Queued
            | MollieRefundStatus::Pending
            | MollieRefundStatus::Processing
            | MollieRefundStatus::Unknown => RefundStatus::Pending,
        }
    }
}

#[derive(Deserialize)]
pub struct MollieLink {
    pub href: String,
}

#[derive(Deserialize)]
pub struct MollieLinks {
    #[serde(default)]
    pub checkout: Option<MollieLink>,
}

#[derive(Deserialize, Default)]
pub struct MollieEmbedded {
    #[serde(default)]
    pub refunds: Vec<MollieRefund>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MolliePayment {
    pub id: String,
    pub mode: String,
    pub status: MollieStatus,
    pub amount: MollieAmount,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default, rename = "_links")]
    pub links: Option<MollieLinks>,
    #[serde(default, rename = "_embedded")]
    pub embedded: Option<MollieEmbedded>,
}

#[derive(Deserialize)]
pub struct MollieRefund {
    pub id: String,
    pub amount: MollieAmount,
    pub status: MollieRefundStatus,
}

/// Mollie's error body (`application/hal+json`).
#[derive(Deserialize)]
pub struct MollieError {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

impl MollieError {
    pub fn message(&self) -> String {
        let detail = self
            .detail
            .clone()
            .or_else(|| self.title.clone())
            .unwrap_or_else(|| "erreur inconnue".into());
        match &self.field {
            Some(field) => format!("{detail} ({field})"),
            None => detail,
        }
    }
}

/// The webhook's form body: only the payment's id.
#[derive(Deserialize)]
pub struct MollieWebhook {
    pub id: String,
}

impl MolliePayment {
    pub fn checkout_url(&self) -> Option<String> {
        self.links
            .as_ref()
            .and_then(|l| l.checkout.as_ref())
            .map(|l| l.href.clone())
    }

    /// Mollie's payment as verified facts. No fee: the payment only carries
    /// `settlementAmount`, which Mollie calls an estimate, and the journal books exact money.
    pub fn into_report(self) -> Result<GatewayReport, String> {
        let amount = self.amount.money()?;
        let reference = self
            .metadata
            .and_then(|m| serde_json::from_value::<MollieMetadataBack>(m).ok())
            .and_then(|m| m.payment_id);
        let mut refunds = Vec::new();
        for refund in self.embedded.unwrap_or_default().refunds {
            if RefundStatus::from(refund.status) == RefundStatus::Succeeded {
                refunds.push(RefundFact {
                    id: refund.id,
                    amount: refund.amount.money()?,
                });
            }
        }
        let status = PaymentStatus::from(self.status);
        let captures = if status == PaymentStatus::Paid {
            vec![Capture {
                id: self.id.clone(),
                amount,
                fee: None,
            }]
        } else {
            Vec::new()
        };
        Ok(GatewayReport {
            gateway_ref: self.id,
            reference,
            status,
            amount,
            currency: self.amount.currency,
            live: self.mode == "live",
            event_id: None,
            captures,
            refunds,
            saved_method: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_statuses_map_exhaustively_and_unknown_is_pending() {
        let cases = [
            ("\"open\"", PaymentStatus::Pending),
            ("\"pending\"", PaymentStatus::Pending),
            ("\"authorized\"", PaymentStatus::Pending),
            ("\"paid\"", PaymentStatus::Paid),
            ("\"canceled\"", PaymentStatus::Cancelled),
            ("\"expired\"", PaymentStatus::Expired),
            ("\"failed\"", PaymentStatus::Failed),
            ("\"something_new\"", PaymentStatus::Pending),
        ];
        for (wire, expected) in cases {
            let status: MollieStatus = serde_json::from_str(wire).unwrap();
            assert_eq!(PaymentStatus::from(status), expected, "{wire}");
        }
    }

    #[test]
    fn only_refunded_refunds_count_as_money_gone() {
        let cases = [
            ("\"queued\"", RefundStatus::Pending),
            ("\"pending\"", RefundStatus::Pending),
            ("\"processing\"", RefundStatus::Pending),
            ("\"refunded\"", RefundStatus::Succeeded),
            ("\"failed\"", RefundStatus::Failed),
            ("\"canceled\"", RefundStatus::Failed),
            ("\"new_state\"", RefundStatus::Pending),
        ];
        for (wire, expected) in cases {
            let status: MollieRefundStatus = serde_json::from_str(wire).unwrap();
            assert_eq!(RefundStatus::from(status), expected, "{wire}");
        }
    }

    #[test]
    fn amounts_convert_exactly_both_ways() {
        for cents in [1, 10, 99, 100, 3000, 123_456, 99_999_999_999] {
            let wire = MollieAmount::new(Money::from_cents(cents), "eur");
            assert_eq!(wire.currency, "EUR");
            assert_eq!(wire.money(), Ok(Money::from_cents(cents)), "{}", wire.value);
        }
        assert_eq!(MollieAmount::new(Money::from_cents(1), "EUR").value, "0.01");
        assert_eq!(
            MollieAmount::new(Money::from_cents(123_456), "EUR").value,
            "1234.56"
        );
        assert_eq!(parse_value("-5.10"), Ok(Money::from_cents(-510)));
    }

    #[test]
    fn malformed_amount_values_are_refused() {
        for bad in [
            "30", "30.0", "30.000", "30,00", ".50", "3a.00", "", "1e3.00", " 1.00",
        ] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_paid_payment_reports_one_capture_and_only_refunded_refunds() {
        let payment: MolliePayment = serde_json::from_value(serde_json::json!({
            "resource": "payment",
            "id": "tr_abc",
            "mode": "test",
            "status": "paid",
            "amount": {"currency": "EUR", "value": "40.00"},
            "settlementAmount": {"currency": "EUR", "value": "39.46"},
            "metadata": {"payment_id": "pay_1"},
            "_embedded": {"refunds": [
                {"id": "re_1", "amount": {"currency": "EUR", "value": "15.00"}, "status": "refunded"},
                {"id": "re_2", "amount": {"currency": "EUR", "value": "5.00"}, "status": "pending"},
                {"id": "re_3", "amount": {"currency": "EUR", "value": "5.00"}, "status": "failed"}
            ]}
        }))
        .unwrap();
        let report = payment.into_report().unwrap();
        assert_eq!(report.reference.as_deref(), Some("pay_1"));
        assert_eq!(report.status, PaymentStatus::Paid);
        assert!(!report.live);
        assert_eq!(report.captures.len(), 1);
        assert_eq!(report.captures[0].amount, Money::from_cents(4000));
        assert_eq!(report.captures[0].fee, None);
        assert_eq!(
            report.refunds,
            vec![RefundFact {
                id: "re_1".into(),
                amount: Money::from_cents(1500)
            }]
        );
    }

    #[test]
    fn an_open_payment_reports_no_capture_and_foreign_metadata_no_reference() {
        let payment: MolliePayment = serde_json::from_value(serde_json::json!({
            "id": "tr_x",
            "mode": "live",
            "status": "open",
            "amount": {"currency": "EUR", "value": "10.00"},
            "metadata": "order 12"
        }))
        .unwrap();
        let report = payment.into_report().unwrap();
        assert_eq!(report.status, PaymentStatus::Pending);
        assert!(report.captures.is_empty());
        assert!(report.reference.is_none());
        assert!(report.live);
    }

    #[test]
    fn error_bodies_give_the_detail_and_the_field() {
        let error: MollieError = serde_json::from_str(
            r#"{"status":422,"title":"Unprocessable Entity","detail":"The amount is required for payments","field":"amount"}"#,
        )
        .unwrap();
        assert_eq!(
            error.message(),
            "The amount is required for payments (amount)"
        );
    }

    mod properties {
        //! Mollie's amount strings over arbitrary input (`PROPTEST_CASES` for a longer run).
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn never_panics(value in ".{0,24}") {
                let _ = parse_value(&value);
            }

            #[test]
            fn only_two_decimals_are_read(value in "-?[0-9]{1,13}\\.[0-9]{0,3}") {
                let decimals = value.rsplit('.').next().unwrap_or("").len();
                let units = value.trim_start_matches('-').split('.').next().unwrap_or("").len();
                prop_assert_eq!(parse_value(&value).is_ok(), decimals == 2 && units <= 12);
            }

            #[test]
            fn what_obole_sends_reads_back(cents in -99_999_999_999_999i64..=99_999_999_999_999) {
                let money = Money::from_cents(cents);
                prop_assert_eq!(MollieAmount::new(money, "eur").money(), Ok(money));
            }
        }
    }
}
