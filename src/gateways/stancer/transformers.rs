//! Stancer's wire format (API v2): payment intents, the payment an intent produces, refunds,
//! error bodies, and the one mapping of Stancer's statuses into obole's.

use serde::{Deserialize, Serialize};

use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Capture, Decline, GatewayReport, RefundFact, RefundStatus, SavedMethod};

#[derive(Serialize)]
pub struct StancerCreateIntent<'a> {
    /// Integer cents.
    pub amount: i64,
    /// Lowercase ISO code.
    pub currency: String,
    pub description: String,
    pub order_id: &'a str,
    pub return_url: &'a str,
    pub capture: bool,
    pub methods_allowed: [&'static str; 1],
    pub metadata: StancerMetadata<'a>,
    /// The member's customer, when the card is to be kept for later dues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<&'a str>,
    /// `required` when keeping the card: the first payment is authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threeds: Option<&'static str>,
}

/// A customer, to whom Stancer attaches the cards kept for later charges.
#[derive(Serialize)]
pub struct StancerCreateCustomer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub email: String,
}

#[derive(Deserialize)]
pub struct StancerCustomer {
    pub id: String,
}

/// A payment on a kept card, the member away: no `auth` (Stancer refuses `auth: false`, and
/// omitting it asks for no authentication), `unique_id` makes a retry harmless.
#[derive(Serialize)]
pub struct StancerCreatePayment<'a> {
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub order_id: &'a str,
    pub unique_id: &'a str,
    pub capture: bool,
    pub customer: &'a str,
    pub card: &'a str,
}

/// A card as Stancer shows it: only what a member recognises it by is read.
#[derive(Deserialize)]
pub struct StancerCard {
    pub id: String,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
}

/// "Visa •••• 4242", from Stancer's card.
pub fn card_label(card: &StancerCard) -> Option<String> {
    let last4 = card.last4.as_deref()?;
    let brand = match card.brand.as_deref().unwrap_or("") {
        "visa" => "Visa",
        "mastercard" => "Mastercard",
        "amex" => "American Express",
        "cb" => "CB",
        "maestro" => "Maestro",
        _ => "Carte",
    };
    Some(format!("{brand} •••• {last4}"))
}

/// Bank answers asking for the cardholder's authentication (soft declines: Visa `1A`,
/// Mastercard `65`, `A1` on some networks). Which codes Stancer passes on is unconfirmed.
const AUTHENTICATION_WANTED: [&str; 3] = ["1A", "A1", "65"];

/// Why a payment on a kept card was not accepted, when it was not.
pub fn decline_of(payment: &StancerPayment) -> Option<Decline> {
    if !matches!(
        payment.status,
        StancerPaymentStatus::Refused | StancerPaymentStatus::Failed
    ) {
        return None;
    }
    let response = payment.response.as_deref().unwrap_or("");
    Some(if AUTHENTICATION_WANTED.contains(&response) {
        Decline::AuthenticationRequired
    } else {
        Decline::Refused(format!("refusée par la banque (code {response})"))
    })
}

/// Echoed back on every read of the intent: which attempt of obole's it is.
#[derive(Serialize)]
pub struct StancerMetadata<'a> {
    pub payment_id: &'a str,
}

#[derive(Serialize)]
pub struct StancerCreateRefund<'a> {
    pub payment: &'a str,
    pub amount: i64,
}

/// Stancer's description must be 3 to 64 characters long.
pub fn description(text: &str) -> String {
    let text: String = text.trim().chars().take(64).collect();
    if text.chars().count() < 3 {
        "Cotisation".into()
    } else {
        text
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StancerIntentStatus {
    RequirePaymentMethod,
    RequireAuthentication,
    Authorized,
    Captured,
    Canceled,
    Unpaid,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StancerPaymentStatus {
    Authorize,
    Authorized,
    Capture,
    ToCapture,
    CaptureSent,
    Captured,
    Canceled,
    Disputed,
    Expired,
    Failed,
    Refused,
    #[serde(other)]
    Unknown,
}

/// What decides an attempt's state: the payment when the intent produced one (it carries the
/// bank's answer), otherwise the intent alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StancerState {
    Intent(StancerIntentStatus),
    Payment(StancerPaymentStatus),
}

/// The one place where Stancer's statuses become obole's; anything unknown is still pending.
/// `to_capture` and `capture_sent` count as paid: the card was accepted and Stancer captures
/// it in its daily batch, with nothing left for the payer to do. `disputed` is a payment that
/// was captured: the dispute does not undo the dues until money actually goes back.
impl From<StancerState> for PaymentStatus {
    fn from(state: StancerState) -> PaymentStatus {
        use StancerIntentStatus as I;
        use StancerPaymentStatus as P;
        match state {
            StancerState::Payment(status) => match status {
                P::ToCapture | P::CaptureSent | P::Captured | P::Disputed => PaymentStatus::Paid,
                P::Authorize | P::Authorized | P::Capture | P::Unknown => PaymentStatus::Pending,
                P::Refused | P::Failed => PaymentStatus::Failed,
                P::Canceled => PaymentStatus::Cancelled,
                P::Expired => PaymentStatus::Expired,
            },
            StancerState::Intent(status) => match status {
                I::RequirePaymentMethod | I::RequireAuthentication | I::Authorized | I::Unknown => {
                    PaymentStatus::Pending
                }
                // Captured without a payment to show it: wait for the payment, never book blind.
                I::Captured => PaymentStatus::Pending,
                I::Canceled => PaymentStatus::Cancelled,
                I::Unpaid => PaymentStatus::Failed,
            },
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StancerRefundStatus {
    ToRefund,
    RefundSent,
    Refunded,
    PaymentCanceled,
    NotHonored,
    Failed,
    AwaitingApproval,
    #[serde(other)]
    Unknown,
}

/// Stancer notifies nothing and obole does not poll refunds, so a refund counts once Stancer
/// has taken it on (`to_refund`): it is then sent to the bank in the next batch. A refund of a
/// payment not yet captured cancels the capture (`payment_canceled`): the payer is not charged,
/// which is money given back as well.
impl From<StancerRefundStatus> for RefundStatus {
    fn from(status: StancerRefundStatus) -> RefundStatus {
        use StancerRefundStatus as R;
        match status {
            R::ToRefund | R::RefundSent | R::Refunded | R::PaymentCanceled => {
                RefundStatus::Succeeded
            }
            R::NotHonored | R::Failed => RefundStatus::Failed,
            R::AwaitingApproval | R::Unknown => RefundStatus::Pending,
        }
    }
}

#[derive(Deserialize)]
pub struct StancerIntent {
    pub id: String,
    pub status: StancerIntentStatus,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub url: Option<String>,
    /// The payment's id (`paym_…`) once the payer tried a card.
    #[serde(default)]
    pub payment: Option<String>,
    #[serde(default)]
    pub live_mode: Option<bool>,
    /// The customer the intent was made for (`cust_…`), when the card is to be kept.
    #[serde(default)]
    pub customer: Option<String>,
    /// The card used (`card_…`), once there is one.
    #[serde(default)]
    pub card: Option<String>,
}

#[derive(Deserialize)]
pub struct StancerPayment {
    pub id: String,
    pub status: StancerPaymentStatus,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub order_id: Option<String>,
    pub live_mode: bool,
    #[serde(default)]
    pub refunds: Vec<StancerRefund>,
    /// The bank's answer (`00`: approved).
    #[serde(default)]
    pub response: Option<String>,
}

#[derive(Deserialize)]
pub struct StancerRefund {
    pub id: String,
    pub amount: i64,
    pub status: StancerRefundStatus,
}

/// Stancer's error body: `{"error": {"message": …, "type": …}}`, where the message is a text
/// or an object naming the offending field.
#[derive(Deserialize)]
pub struct StancerError {
    pub error: StancerErrorDetail,
}

#[derive(Deserialize)]
pub struct StancerErrorDetail {
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl StancerError {
    pub fn message(&self) -> String {
        match &self.error.message {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(serde_json::Value::Object(fields)) => fields
                .iter()
                .map(|(field, why)| match why {
                    serde_json::Value::String(why) => format!("{field} : {why}"),
                    other => format!("{field} : {other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => self
                .error
                .kind
                .clone()
                .unwrap_or_else(|| "erreur inconnue".into()),
        }
    }
}

/// Any hint a caller may send: only the intent's id is read, everything else is ignored.
#[derive(Deserialize)]
pub struct StancerHint {
    pub id: String,
}

fn cents(amount: i64, what: &str) -> Result<Money, String> {
    if amount < 0 {
        return Err(format!("negative {what} amount {amount}"));
    }
    Ok(Money::from_cents(amount))
}

/// The intent (and its payment, when there is one) as verified facts. No fee: Stancer's API
/// does not report what it keeps on a payment. `card` is the card kept for the intent's
/// customer, read when the payment asked to keep it.
pub fn into_report(
    intent: StancerIntent,
    payment: Option<StancerPayment>,
    card: Option<StancerCard>,
) -> Result<GatewayReport, String> {
    let reference = intent
        .metadata
        .as_ref()
        .and_then(|m| m.get("payment_id"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or(intent.order_id.clone());
    let Some(payment) = payment else {
        return Ok(GatewayReport {
            gateway_ref: intent.id,
            reference,
            status: PaymentStatus::from(StancerState::Intent(intent.status)),
            amount: cents(intent.amount, "intent")?,
            currency: intent.currency.to_ascii_uppercase(),
            live: intent.live_mode.unwrap_or(false),
            event_id: None,
            captures: Vec::new(),
            refunds: Vec::new(),
            saved_method: None,
        });
    };
    let mut report = payment_report(payment)?;
    report.gateway_ref = intent.id;
    report.reference = reference.or(report.reference);
    if report.status == PaymentStatus::Paid
        && let (Some(customer_id), Some(card)) = (intent.customer, card)
    {
        report.saved_method = Some(SavedMethod {
            customer_id,
            label: card_label(&card),
            payment_method_id: card.id,
        });
    }
    Ok(report)
}

/// A payment as verified facts, keyed by its own id: a charge of a kept card has no intent.
pub fn payment_report(payment: StancerPayment) -> Result<GatewayReport, String> {
    let amount = cents(payment.amount, "payment")?;
    let status = PaymentStatus::from(StancerState::Payment(payment.status));
    let captures = if status == PaymentStatus::Paid {
        vec![Capture {
            id: payment.id.clone(),
            amount,
            fee: None,
        }]
    } else {
        Vec::new()
    };
    let mut refunds = Vec::new();
    for refund in payment.refunds {
        if RefundStatus::from(refund.status) == RefundStatus::Succeeded {
            refunds.push(RefundFact {
                amount: cents(refund.amount, "refund")?,
                id: refund.id,
            });
        }
    }
    Ok(GatewayReport {
        gateway_ref: payment.id,
        reference: payment.order_id,
        status,
        amount,
        currency: payment.currency.to_ascii_uppercase(),
        live: payment.live_mode,
        event_id: None,
        captures,
        refunds,
        saved_method: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment_status(wire: &str) -> PaymentStatus {
        let status: StancerPaymentStatus = serde_json::from_value(json!(wire)).unwrap();
        StancerState::Payment(status).into()
    }

    fn intent_status(wire: &str) -> PaymentStatus {
        let status: StancerIntentStatus = serde_json::from_value(json!(wire)).unwrap();
        StancerState::Intent(status).into()
    }

    #[test]
    fn every_payment_status_maps_and_unknown_ones_stay_pending() {
        for (wire, expected) in [
            ("captured", PaymentStatus::Paid),
            ("to_capture", PaymentStatus::Paid),
            ("capture_sent", PaymentStatus::Paid),
            ("disputed", PaymentStatus::Paid),
            ("authorize", PaymentStatus::Pending),
            ("authorized", PaymentStatus::Pending),
            ("capture", PaymentStatus::Pending),
            ("refused", PaymentStatus::Failed),
            ("failed", PaymentStatus::Failed),
            ("canceled", PaymentStatus::Cancelled),
            ("expired", PaymentStatus::Expired),
            ("something_new", PaymentStatus::Pending),
        ] {
            assert_eq!(payment_status(wire), expected, "{wire}");
        }
    }

    #[test]
    fn an_intent_alone_is_never_paid() {
        for (wire, expected) in [
            ("require_payment_method", PaymentStatus::Pending),
            ("require_authentication", PaymentStatus::Pending),
            ("authorized", PaymentStatus::Pending),
            ("captured", PaymentStatus::Pending),
            ("canceled", PaymentStatus::Cancelled),
            ("unpaid", PaymentStatus::Failed),
            ("brand_new", PaymentStatus::Pending),
        ] {
            assert_eq!(intent_status(wire), expected, "{wire}");
        }
    }

    #[test]
    fn refunds_count_once_stancer_took_them_on() {
        for (wire, expected) in [
            ("to_refund", RefundStatus::Succeeded),
            ("refund_sent", RefundStatus::Succeeded),
            ("refunded", RefundStatus::Succeeded),
            ("payment_canceled", RefundStatus::Succeeded),
            ("not_honored", RefundStatus::Failed),
            ("failed", RefundStatus::Failed),
            ("awaiting_approval", RefundStatus::Pending),
            ("new_one", RefundStatus::Pending),
        ] {
            let status: StancerRefundStatus = serde_json::from_value(json!(wire)).unwrap();
            assert_eq!(RefundStatus::from(status), expected, "{wire}");
        }
    }

    #[test]
    fn a_paid_intent_reports_its_payment_and_succeeded_refunds_only() {
        let intent: StancerIntent = serde_json::from_value(json!({
            "id": "pi_abc", "status": "captured", "amount": 3000, "currency": "eur",
            "order_id": "attempt-1", "metadata": {"payment_id": "attempt-1"},
            "payment": "paym_abc", "live_mode": false
        }))
        .unwrap();
        let payment: StancerPayment = serde_json::from_value(json!({
            "id": "paym_abc", "status": "to_capture", "amount": 3000, "currency": "eur",
            "order_id": "attempt-1", "live_mode": false,
            "refunds": [
                {"id": "refd_1", "amount": 500, "status": "to_refund"},
                {"id": "refd_2", "amount": 700, "status": "not_honored"}
            ]
        }))
        .unwrap();
        let report = into_report(intent, Some(payment), None).unwrap();
        assert_eq!(report.status, PaymentStatus::Paid);
        assert_eq!(report.reference.as_deref(), Some("attempt-1"));
        assert_eq!(report.currency, "EUR");
        assert_eq!(report.captures.len(), 1);
        assert_eq!(report.captures[0].id, "paym_abc");
        assert_eq!(report.captures[0].amount, Money::from_cents(3000));
        assert_eq!(report.captures[0].fee, None);
        assert_eq!(
            report.refunds,
            vec![RefundFact {
                id: "refd_1".into(),
                amount: Money::from_cents(500)
            }]
        );
    }

    #[test]
    fn a_paid_intent_for_a_customer_reports_the_card_kept() {
        let intent: StancerIntent = serde_json::from_value(json!({
            "id": "pi_abc", "status": "captured", "amount": 3000, "currency": "eur",
            "order_id": "attempt-1", "payment": "paym_abc", "customer": "cust_abc",
            "card": "card_abc", "live_mode": false
        }))
        .unwrap();
        let payment: StancerPayment = serde_json::from_value(json!({
            "id": "paym_abc", "status": "to_capture", "amount": 3000, "currency": "eur",
            "order_id": "attempt-1", "live_mode": false, "response": "00"
        }))
        .unwrap();
        let card: StancerCard = serde_json::from_value(json!({
            "id": "card_abc", "brand": "visa", "last4": "4242", "exp_month": 12
        }))
        .unwrap();
        let report = into_report(intent, Some(payment), Some(card)).unwrap();
        assert_eq!(
            report.saved_method,
            Some(SavedMethod {
                customer_id: "cust_abc".into(),
                payment_method_id: "card_abc".into(),
                label: Some("Visa •••• 4242".into()),
            })
        );
    }

    #[test]
    fn refusals_of_a_kept_card_tell_authentication_from_refusal() {
        let payment = |status: &str, response: &str| -> StancerPayment {
            serde_json::from_value(json!({
                "id": "paym_x", "status": status, "amount": 3000, "currency": "eur",
                "live_mode": false, "response": response
            }))
            .unwrap()
        };
        assert_eq!(decline_of(&payment("to_capture", "00")), None);
        assert_eq!(
            decline_of(&payment("refused", "1A")),
            Some(Decline::AuthenticationRequired)
        );
        assert_eq!(
            decline_of(&payment("refused", "51")),
            Some(Decline::Refused("refusée par la banque (code 51)".into()))
        );
        let report = payment_report(payment("refused", "05")).unwrap();
        assert_eq!(report.gateway_ref, "paym_x");
        assert_eq!(report.status, PaymentStatus::Failed);
    }

    #[test]
    fn amounts_must_be_integer_cents() {
        let float = serde_json::from_value::<StancerPayment>(json!({
            "id": "paym_x", "status": "captured", "amount": 30.5, "currency": "eur",
            "live_mode": false
        }));
        assert!(float.is_err());
    }

    #[test]
    fn error_messages_read_as_text_or_per_field() {
        let text: StancerError = serde_json::from_value(json!({
            "error": {"message": "Amount must be at least 50", "type": "invalid_request_error"}
        }))
        .unwrap();
        assert_eq!(text.message(), "Amount must be at least 50");
        let fields: StancerError = serde_json::from_value(json!({
            "error": {"message": {"order_id": "too long"}, "type": "invalid_request_error"}
        }))
        .unwrap();
        assert_eq!(fields.message(), "order_id : too long");
    }

    #[test]
    fn descriptions_fit_stancer_bounds() {
        assert_eq!(description("ab"), "Cotisation");
        assert_eq!(description(&"é".repeat(80)).chars().count(), 64);
        assert_eq!(description("Cotisation 2026"), "Cotisation 2026");
    }
}
