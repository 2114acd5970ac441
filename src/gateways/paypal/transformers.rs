//! PayPal's wire format (Orders v2, Payments v2, webhooks): request and response bodies,
//! amounts as exact decimal strings, and the one mapping of an order and its captures into
//! obole's payment status.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Capture, RefundFact, RefundStatus};

/// PayPal's money object: `{"currency_code":"EUR","value":"30.00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayPalMoney {
    pub currency_code: String,
    pub value: String,
}

impl PayPalMoney {
    pub fn new(amount: Money, currency: &str) -> PayPalMoney {
        PayPalMoney {
            currency_code: currency.to_ascii_uppercase(),
            value: amount.to_decimal_string(),
        }
    }

    pub fn money(&self) -> Result<Money, String> {
        parse_value(&self.value)
    }
}

/// Parses PayPal's `value` exactly for a two-decimal currency: digits, and at most two
/// decimals after a point ("30", "30.5" and "30.50" are all thirty euros fifty or thirty).
pub fn parse_value(value: &str) -> Result<Money, String> {
    let (units, cents) = value.split_once('.').unwrap_or((value, ""));
    let well_formed = !units.is_empty()
        && units.len() <= 15
        && cents.len() <= 2
        && units.bytes().all(|b| b.is_ascii_digit())
        && cents.bytes().all(|b| b.is_ascii_digit())
        && !(value.contains('.') && cents.is_empty());
    if !well_formed {
        return Err(format!("amount value {value:?} is not of the form 123.45"));
    }
    let units: i64 = units.parse().map_err(|_| format!("amount {value:?}"))?;
    let cents: i64 = match cents.len() {
        0 => 0,
        1 => {
            cents
                .parse::<i64>()
                .map_err(|_| format!("amount {value:?}"))?
                * 10
        }
        _ => cents.parse().map_err(|_| format!("amount {value:?}"))?,
    };
    units
        .checked_mul(100)
        .and_then(|u| u.checked_add(cents))
        .map(Money::from_cents)
        .ok_or_else(|| format!("amount {value:?} out of range"))
}

// ---- create an order --------------------------------------------------------------------

#[derive(Serialize)]
pub struct PayPalCreateOrder<'a> {
    pub intent: &'static str,
    pub purchase_units: [PayPalPurchaseUnitRequest<'a>; 1],
    pub payment_source: PayPalPaymentSource<'a>,
}

#[derive(Serialize)]
pub struct PayPalPurchaseUnitRequest<'a> {
    pub reference_id: &'a str,
    pub custom_id: &'a str,
    pub invoice_id: &'a str,
    pub description: String,
    pub amount: PayPalMoney,
}

#[derive(Serialize)]
pub struct PayPalPaymentSource<'a> {
    pub paypal: PayPalWallet<'a>,
}

#[derive(Serialize)]
pub struct PayPalWallet<'a> {
    pub experience_context: PayPalExperienceContext<'a>,
}

#[derive(Serialize)]
pub struct PayPalExperienceContext<'a> {
    pub return_url: &'a str,
    pub cancel_url: &'a str,
    pub user_action: &'static str,
    pub shipping_preference: &'static str,
    pub locale: &'static str,
}

// ---- orders, captures, refunds as PayPal answers them -----------------------------------

#[derive(Debug, Deserialize)]
pub struct PayPalLink {
    pub href: String,
    pub rel: String,
}

#[derive(Debug, Deserialize)]
pub struct PayPalOrder {
    pub id: String,
    pub status: PayPalOrderStatus,
    #[serde(default)]
    pub purchase_units: Vec<PayPalPurchaseUnit>,
    #[serde(default)]
    pub links: Vec<PayPalLink>,
}

impl PayPalOrder {
    /// Where the payer approves: `payer-action` with a payment source, `approve` without.
    pub fn approval_link(&self) -> Option<String> {
        ["payer-action", "approve"].iter().find_map(|rel| {
            self.links
                .iter()
                .find(|l| l.rel == *rel)
                .map(|l| l.href.clone())
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct PayPalPurchaseUnit {
    #[serde(default)]
    pub custom_id: Option<String>,
    pub amount: PayPalMoney,
    #[serde(default)]
    pub payments: Option<PayPalPayments>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PayPalPayments {
    #[serde(default)]
    pub captures: Vec<PayPalCapture>,
    #[serde(default)]
    pub refunds: Vec<PayPalRefund>,
}

#[derive(Debug, Deserialize)]
pub struct PayPalCapture {
    pub id: String,
    pub status: PayPalCaptureStatus,
    pub amount: PayPalMoney,
    #[serde(default)]
    pub seller_receivable_breakdown: Option<PayPalBreakdown>,
    #[serde(default)]
    pub supplementary_data: Option<PayPalSupplementaryData>,
}

#[derive(Debug, Deserialize)]
pub struct PayPalBreakdown {
    #[serde(default)]
    pub paypal_fee: Option<PayPalMoney>,
}

#[derive(Debug, Deserialize)]
pub struct PayPalSupplementaryData {
    pub related_ids: PayPalRelatedIds,
}

#[derive(Debug, Deserialize)]
pub struct PayPalRelatedIds {
    #[serde(default)]
    pub order_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PayPalRefund {
    pub id: String,
    pub status: PayPalRefundStatus,
    pub amount: PayPalMoney,
    #[serde(default)]
    pub links: Vec<PayPalLink>,
}

impl PayPalRefund {
    /// The refunded capture's id, from the `up` link (`…/v2/payments/captures/{id}`).
    pub fn capture_id(&self) -> Option<String> {
        let up = self.links.iter().find(|l| l.rel == "up")?;
        let (_, id) = up.href.trim_end_matches('/').rsplit_once("/captures/")?;
        Some(id.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayPalOrderStatus {
    Created,
    Saved,
    Approved,
    Voided,
    Completed,
    PayerActionRequired,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayPalCaptureStatus {
    Completed,
    Declined,
    PartiallyRefunded,
    Pending,
    Refunded,
    Failed,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayPalRefundStatus {
    Cancelled,
    Failed,
    Pending,
    Completed,
    #[serde(other)]
    Unknown,
}

impl PayPalCaptureStatus {
    /// Money that reached the merchant (a refund later does not undo the capture).
    pub fn settled(self) -> bool {
        matches!(
            self,
            PayPalCaptureStatus::Completed
                | PayPalCaptureStatus::PartiallyRefunded
                | PayPalCaptureStatus::Refunded
        )
    }
}

/// The one mapping of PayPal's states into obole's: an order `COMPLETED` is not money, its
/// captures are; anything unknown stays pending.
pub fn status_of(order: PayPalOrderStatus, captures: &[PayPalCaptureStatus]) -> PaymentStatus {
    match order {
        PayPalOrderStatus::Created
        | PayPalOrderStatus::Saved
        | PayPalOrderStatus::Approved
        | PayPalOrderStatus::PayerActionRequired
        | PayPalOrderStatus::Unknown => PaymentStatus::Pending,
        PayPalOrderStatus::Voided => PaymentStatus::Cancelled,
        PayPalOrderStatus::Completed => {
            if captures.iter().any(|c| c.settled()) {
                PaymentStatus::Paid
            } else if !captures.is_empty()
                && captures.iter().all(|c| {
                    matches!(
                        c,
                        PayPalCaptureStatus::Declined | PayPalCaptureStatus::Failed
                    )
                })
            {
                PaymentStatus::Failed
            } else {
                PaymentStatus::Pending
            }
        }
    }
}

impl From<PayPalRefundStatus> for RefundStatus {
    fn from(status: PayPalRefundStatus) -> RefundStatus {
        match status {
            PayPalRefundStatus::Completed => RefundStatus::Succeeded,
            PayPalRefundStatus::Cancelled | PayPalRefundStatus::Failed => RefundStatus::Failed,
            PayPalRefundStatus::Pending | PayPalRefundStatus::Unknown => RefundStatus::Pending,
        }
    }
}

impl PayPalCapture {
    pub fn to_capture(&self) -> Result<Capture, String> {
        let fee = match self
            .seller_receivable_breakdown
            .as_ref()
            .and_then(|b| b.paypal_fee.as_ref())
        {
            Some(fee) => Some(fee.money()?),
            None => None,
        };
        Ok(Capture {
            id: self.id.clone(),
            amount: self.amount.money()?,
            fee,
        })
    }
}

/// What an order says, once read: the parts of a report the connector cannot know itself.
pub struct OrderFacts {
    pub reference: Option<String>,
    pub status: PaymentStatus,
    pub amount: Money,
    pub currency: String,
    pub captures: Vec<Capture>,
    pub refunds: Vec<RefundFact>,
}

impl PayPalOrder {
    pub fn facts(&self) -> Result<OrderFacts, String> {
        let unit = self
            .purchase_units
            .first()
            .ok_or("order without a purchase unit")?;
        let payments = unit.payments.as_ref();
        let captures: &[PayPalCapture] = payments.map_or(&[], |p| &p.captures);
        let refunds: &[PayPalRefund] = payments.map_or(&[], |p| &p.refunds);
        let statuses: Vec<PayPalCaptureStatus> = captures.iter().map(|c| c.status).collect();
        let status = status_of(self.status, &statuses);
        let settled = captures
            .iter()
            .filter(|c| c.status.settled())
            .map(PayPalCapture::to_capture)
            .collect::<Result<Vec<_>, _>>()?;
        let refunds = refunds
            .iter()
            .filter(|r| r.status == PayPalRefundStatus::Completed)
            .map(|r| {
                Ok(RefundFact {
                    id: r.id.clone(),
                    amount: r.amount.money()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(OrderFacts {
            reference: unit.custom_id.clone(),
            status,
            amount: unit.amount.money()?,
            currency: unit.amount.currency_code.clone(),
            captures: if status == PaymentStatus::Paid {
                settled
            } else {
                Vec::new()
            },
            refunds,
        })
    }
}

#[derive(Serialize)]
pub struct PayPalRefundRequest<'a> {
    pub amount: PayPalMoney,
    pub invoice_id: &'a str,
    pub note_to_payer: &'static str,
}

// ---- tokens, errors, webhooks ------------------------------------------------------------

#[derive(Deserialize)]
pub struct PayPalToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// PayPal's error body: `name`, `message`, `details[]{issue, description}`, `debug_id`; the
/// token endpoint answers OAuth's `error`, `error_description` instead.
#[derive(Debug, Default, Deserialize)]
pub struct PayPalError {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Vec<PayPalErrorDetail>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PayPalErrorDetail {
    pub issue: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl PayPalError {
    pub fn has_issue(&self, issue: &str) -> bool {
        self.details.iter().any(|d| d.issue == issue)
    }

    pub fn describe(&self) -> String {
        let mut text = match (&self.name, &self.message, &self.error_description) {
            (Some(name), Some(message), _) => format!("{name}: {message}"),
            (_, _, Some(description)) => description.clone(),
            (Some(name), None, None) => name.clone(),
            _ => self.error.clone().unwrap_or_else(|| "PayPal error".into()),
        };
        for detail in &self.details {
            text.push_str(&format!(
                " [{}{}]",
                detail.issue,
                detail
                    .description
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
        }
        text
    }
}

/// The body of `POST /v1/notifications/verify-webhook-signature`: the event is the raw bytes
/// received, so that PayPal checks exactly what it signed.
#[derive(Serialize)]
pub struct PayPalVerifyRequest<'a> {
    pub auth_algo: &'a str,
    pub cert_url: &'a str,
    pub transmission_id: &'a str,
    pub transmission_sig: &'a str,
    pub transmission_time: &'a str,
    pub webhook_id: &'a str,
    pub webhook_event: &'a RawValue,
}

#[derive(Deserialize)]
pub struct PayPalVerifyResponse {
    pub verification_status: String,
}

#[derive(Deserialize)]
pub struct PayPalEvent {
    pub id: String,
    pub event_type: String,
    pub resource: PayPalEventResource,
}

#[derive(Deserialize)]
pub struct PayPalEventResource {
    pub id: String,
}

/// The IPN variables obole reads; the rest is only verified, never believed.
#[derive(Deserialize)]
pub struct PayPalIpn {
    #[serde(default)]
    pub txn_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use PayPalCaptureStatus as C;
    use PayPalOrderStatus as O;

    #[test]
    fn values_are_read_exactly() {
        assert_eq!(parse_value("30.00"), Ok(Money::from_cents(3000)));
        assert_eq!(parse_value("0.07"), Ok(Money::from_cents(7)));
        assert_eq!(parse_value("12.5"), Ok(Money::from_cents(1250)));
        assert_eq!(parse_value("42"), Ok(Money::from_cents(4200)));
        for bad in [
            "", "30.", ".5", "30,00", "30.001", "-1.00", "1e3", " 3.00", "3.0a",
        ] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            PayPalMoney::new(Money::from_cents(4210), "eur").value,
            "42.10"
        );
    }

    #[test]
    fn an_order_is_paid_only_by_a_settled_capture() {
        assert_eq!(status_of(O::Created, &[]), PaymentStatus::Pending);
        assert_eq!(
            status_of(O::PayerActionRequired, &[]),
            PaymentStatus::Pending
        );
        assert_eq!(status_of(O::Approved, &[]), PaymentStatus::Pending);
        assert_eq!(status_of(O::Saved, &[]), PaymentStatus::Pending);
        assert_eq!(status_of(O::Unknown, &[]), PaymentStatus::Pending);
        assert_eq!(status_of(O::Voided, &[]), PaymentStatus::Cancelled);
        assert_eq!(status_of(O::Completed, &[]), PaymentStatus::Pending);
        assert_eq!(
            status_of(O::Completed, &[C::Pending]),
            PaymentStatus::Pending
        );
        assert_eq!(
            status_of(O::Completed, &[C::Unknown]),
            PaymentStatus::Pending
        );
        assert_eq!(
            status_of(O::Completed, &[C::Declined]),
            PaymentStatus::Failed
        );
        assert_eq!(status_of(O::Completed, &[C::Failed]), PaymentStatus::Failed);
        for settled in [C::Completed, C::PartiallyRefunded, C::Refunded] {
            assert_eq!(status_of(O::Completed, &[settled]), PaymentStatus::Paid);
        }
    }

    #[test]
    fn unknown_statuses_parse_as_unknown() {
        let order: PayPalOrder =
            serde_json::from_str(r#"{"id":"5O1","status":"SOMETHING_NEW","purchase_units":[]}"#)
                .unwrap();
        assert_eq!(order.status, O::Unknown);
    }

    #[test]
    fn a_completed_order_reports_its_capture_fee_and_refunds() {
        let order: PayPalOrder = serde_json::from_value(serde_json::json!({
            "id": "5O190127TN364715T",
            "status": "COMPLETED",
            "purchase_units": [{
                "custom_id": "pay_1",
                "amount": {"currency_code": "EUR", "value": "30.00"},
                "payments": {
                    "captures": [{
                        "id": "3C679366HH908993F",
                        "status": "PARTIALLY_REFUNDED",
                        "amount": {"currency_code": "EUR", "value": "30.00"},
                        "seller_receivable_breakdown": {
                            "gross_amount": {"currency_code": "EUR", "value": "30.00"},
                            "paypal_fee": {"currency_code": "EUR", "value": "1.22"},
                            "net_amount": {"currency_code": "EUR", "value": "28.78"}
                        }
                    }],
                    "refunds": [
                        {"id": "R1", "status": "COMPLETED", "amount": {"currency_code": "EUR", "value": "10.00"}},
                        {"id": "R2", "status": "PENDING", "amount": {"currency_code": "EUR", "value": "5.00"}}
                    ]
                }
            }]
        }))
        .unwrap();
        let facts = order.facts().unwrap();
        assert_eq!(facts.status, PaymentStatus::Paid);
        assert_eq!(facts.reference.as_deref(), Some("pay_1"));
        assert_eq!(facts.amount, Money::from_cents(3000));
        assert_eq!(
            facts.captures,
            vec![Capture {
                id: "3C679366HH908993F".into(),
                amount: Money::from_cents(3000),
                fee: Some(Money::from_cents(122)),
            }]
        );
        assert_eq!(
            facts.refunds,
            vec![RefundFact {
                id: "R1".into(),
                amount: Money::from_cents(1000)
            }]
        );
    }

    #[test]
    fn a_refund_names_its_capture_by_its_up_link() {
        let refund: PayPalRefund = serde_json::from_value(serde_json::json!({
            "id": "R1", "status": "COMPLETED",
            "amount": {"currency_code": "EUR", "value": "10.00"},
            "links": [
                {"href": "https://api-m.paypal.com/v2/payments/refunds/R1", "rel": "self"},
                {"href": "https://api-m.paypal.com/v2/payments/captures/3C6", "rel": "up"}
            ]
        }))
        .unwrap();
        assert_eq!(refund.capture_id().as_deref(), Some("3C6"));
    }

    mod properties {
        //! PayPal's amount strings over arbitrary input (`PROPTEST_CASES` for a longer run).
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn never_panics_and_never_goes_negative(value in ".{0,24}") {
                if let Ok(money) = parse_value(&value) {
                    prop_assert!(money.cents() >= 0);
                }
            }

            #[test]
            fn number_like_strings_are_exact_or_refused(value in "[-+0-9., eE]{0,24}") {
                if let Ok(money) = parse_value(&value) {
                    // Only digits and one point were accepted: the cents are the digits.
                    let (units, decimals) = value.split_once('.').unwrap_or((&value, ""));
                    let cents = format!("{decimals:0<2}");
                    prop_assert_eq!(money.cents(), format!("{units}{cents}").parse::<i64>().unwrap());
                }
            }

            #[test]
            fn what_obole_sends_reads_back(cents in 0i64..=999_999_999_999_999) {
                let money = Money::from_cents(cents);
                prop_assert_eq!(PayPalMoney::new(money, "eur").money(), Ok(money));
            }
        }
    }
}
