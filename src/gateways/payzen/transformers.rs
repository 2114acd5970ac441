//! PayZen's wire format (REST API V4): the JSON bodies obole sends, the response envelope
//! and the objects read back, the IPN's `kr-*` form fields and their HMAC, and the one mapping
//! of PayZen's statuses into obole's.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::PaymentStatus;
use crate::gateways::RefundStatus;

/// The only hash algorithm PayZen signs with.
pub const HASH_ALGORITHM: &str = "sha256_hmac";
/// `kr-hash-key` of a server-to-server IPN: signed with the REST password. The browser return
/// says `sha256_hmac` (signed with the HMAC key, readable by the payer) and proves nothing here.
pub const IPN_HASH_KEY: &str = "password";
/// Longest `orderId` PayZen keeps (integrations cap it at 64).
pub const ORDER_ID_MAX_LEN: usize = 64;

// ---- requests ------------------------------------------------------------------------------

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenCreatePaymentOrder<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub order_id: &'a str,
    pub channel_options: PayZenChannelOptions,
    pub customer: PayZenCustomer<'a>,
    pub description: &'a str,
    pub locale: &'a str,
    pub ipn_target_url: &'a str,
    pub success_url: &'a str,
    pub refused_url: &'a str,
    pub cancel_url: &'a str,
    pub error_url: &'a str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenChannelOptions {
    pub channel_type: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenCustomer<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub email: &'a str,
    pub billing_details: PayZenBillingDetails<'a>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenBillingDetails<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub first_name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub last_name: &'a str,
    pub language: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenPaymentOrderRef<'a> {
    pub payment_order_id: &'a str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenOrderRef<'a> {
    pub order_id: &'a str,
}

/// `Charge/SDKTest`: PayZen answers the value it was sent, once the credentials are good.
#[derive(Serialize, Deserialize, Debug)]
pub(super) struct PayZenSdkTest {
    pub value: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenCancelOrRefund<'a> {
    pub uuid: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    /// Only refund: cancelling an authorised debit would take back money obole already booked
    /// as received, without a refund for the writer to post.
    pub resolution_mode: &'static str,
}

// ---- responses -----------------------------------------------------------------------------

/// Every answer, success or not, comes in this envelope (with HTTP 200, or 401 for bad keys).
#[derive(Deserialize, Debug)]
pub(super) struct PayZenEnvelope {
    pub status: PayZenCallStatus,
    pub answer: serde_json::Value,
    /// `TEST` or `PRODUCTION`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum PayZenCallStatus {
    Success,
    Error,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenError {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub detailed_error_message: Option<String>,
}

impl PayZenError {
    /// What a manager or member may read: PayZen's code and message.
    pub fn message(&self) -> String {
        let code = self.error_code.as_deref().unwrap_or("?");
        let message = self
            .error_message
            .as_deref()
            .unwrap_or("demande refusée par PayZen");
        match self.detailed_error_message.as_deref() {
            Some(detail) if !detail.is_empty() => format!("{code} : {message} ({detail})"),
            _ => format!("{code} : {message}"),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenPaymentOrder {
    pub payment_order_id: String,
    #[serde(rename = "paymentURL", default)]
    pub payment_url: Option<String>,
    pub payment_order_status: PayZenPaymentOrderStatus,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub order_id: Option<String>,
}

/// `Order/Get`: every transaction of an order (debits, and the credits of refunds).
#[derive(Deserialize, Debug)]
pub(super) struct PayZenOrderTransactions {
    #[serde(default)]
    pub transactions: Vec<PayZenTransaction>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenTransaction {
    pub uuid: String,
    pub amount: i64,
    pub status: PayZenTransactionStatus,
    #[serde(default)]
    pub operation_type: Option<PayZenOperationType>,
}

/// The IPN's `kr-answer` (`V4/Payment`).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenPayment {
    pub order_status: PayZenOrderStatus,
    pub order_details: PayZenOrderDetails,
    #[serde(default)]
    pub transactions: Vec<PayZenTransaction>,
    /// The payment order this payment answered.
    #[serde(default)]
    pub payment_order_id: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayZenOrderDetails {
    #[serde(default)]
    pub order_id: Option<String>,
    pub order_total_amount: i64,
    pub order_currency: String,
    /// `TEST` or `PRODUCTION`.
    pub mode: String,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum PayZenOperationType {
    Debit,
    Credit,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum PayZenPaymentOrderStatus {
    Running,
    Paid,
    Refused,
    Expired,
    Cancelled,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum PayZenOrderStatus {
    Paid,
    Unpaid,
    Running,
    PartiallyPaid,
    Abandoned,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum PayZenTransactionStatus {
    Paid,
    Running,
    Unpaid,
    Abandoned,
    #[serde(other)]
    Unknown,
}

// ---- the one status mapping ----------------------------------------------------------------

/// What a PayZen status means for obole; anything unknown is still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PayZenStatus {
    PaymentOrder(PayZenPaymentOrderStatus),
    Order(PayZenOrderStatus),
}

impl From<PayZenStatus> for PaymentStatus {
    fn from(status: PayZenStatus) -> PaymentStatus {
        use PayZenOrderStatus as Order;
        use PayZenPaymentOrderStatus as PaymentOrder;
        match status {
            PayZenStatus::PaymentOrder(PaymentOrder::Paid) => PaymentStatus::Paid,
            PayZenStatus::PaymentOrder(PaymentOrder::Refused) => PaymentStatus::Failed,
            PayZenStatus::PaymentOrder(PaymentOrder::Expired) => PaymentStatus::Expired,
            PayZenStatus::PaymentOrder(PaymentOrder::Cancelled) => PaymentStatus::Cancelled,
            PayZenStatus::PaymentOrder(PaymentOrder::Running | PaymentOrder::Unknown) => {
                PaymentStatus::Pending
            }
            PayZenStatus::Order(Order::Paid) => PaymentStatus::Paid,
            PayZenStatus::Order(Order::Unpaid) => PaymentStatus::Failed,
            // A payer who left the page may come back to the payment order's link until it
            // expires; a partly paid order still waits for the rest.
            PayZenStatus::Order(
                Order::Abandoned | Order::Running | Order::PartiallyPaid | Order::Unknown,
            ) => PaymentStatus::Pending,
        }
    }
}

impl From<PayZenTransactionStatus> for RefundStatus {
    fn from(status: PayZenTransactionStatus) -> RefundStatus {
        match status {
            PayZenTransactionStatus::Paid => RefundStatus::Succeeded,
            PayZenTransactionStatus::Unpaid | PayZenTransactionStatus::Abandoned => {
                RefundStatus::Failed
            }
            PayZenTransactionStatus::Running | PayZenTransactionStatus::Unknown => {
                RefundStatus::Pending
            }
        }
    }
}

/// Settled money: debits PayZen reports paid.
pub(super) fn is_capture(t: &PayZenTransaction) -> bool {
    t.status == PayZenTransactionStatus::Paid
        && t.operation_type.unwrap_or(PayZenOperationType::Debit) == PayZenOperationType::Debit
}

/// Money given back: credits PayZen reports paid.
pub(super) fn is_refund(t: &PayZenTransaction) -> bool {
    t.status == PayZenTransactionStatus::Paid
        && t.operation_type == Some(PayZenOperationType::Credit)
}

// ---- the IPN -------------------------------------------------------------------------------

/// The `kr-*` fields of a notification, as received (form-decoded, nothing re-serialized).
#[derive(Deserialize, Debug)]
pub(super) struct PayZenIpnForm {
    #[serde(rename = "kr-answer")]
    pub answer: Option<String>,
    #[serde(rename = "kr-hash")]
    pub hash: Option<String>,
    #[serde(rename = "kr-hash-key")]
    pub hash_key: Option<String>,
    #[serde(rename = "kr-hash-algorithm")]
    pub hash_algorithm: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum IpnProblem {
    Unreadable(&'static str),
    NotSigned(&'static str),
    WrongSignature,
}

/// Checks `kr-hash` over the exact `kr-answer` with the REST password; returns the answer.
pub(super) fn verify_ipn<'a>(
    password: &[u8],
    form: &'a PayZenIpnForm,
) -> Result<&'a str, IpnProblem> {
    let answer = form
        .answer
        .as_deref()
        .ok_or(IpnProblem::Unreadable("no kr-answer"))?;
    let hash = form
        .hash
        .as_deref()
        .ok_or(IpnProblem::NotSigned("no kr-hash"))?;
    if form.hash_algorithm.as_deref() != Some(HASH_ALGORITHM) {
        return Err(IpnProblem::NotSigned(
            "kr-hash-algorithm is not sha256_hmac",
        ));
    }
    if form.hash_key.as_deref() != Some(IPN_HASH_KEY) {
        return Err(IpnProblem::NotSigned(
            "kr-hash-key is not password: a browser return is not an IPN",
        ));
    }
    let expected = hex::decode(hash).map_err(|_| IpnProblem::WrongSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(password).map_err(|_| IpnProblem::WrongSignature)?;
    mac.update(answer.as_bytes());
    mac.verify_slice(&expected)
        .map_err(|_| IpnProblem::WrongSignature)?;
    Ok(answer)
}

/// `kr-hash` as PayZen computes it: hex HMAC-SHA256 of `kr-answer` under the key.
pub fn ipn_hash(key: &str, answer: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(answer.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(answer: &str, hash: String, key: &str) -> PayZenIpnForm {
        PayZenIpnForm {
            answer: Some(answer.into()),
            hash: Some(hash),
            hash_key: Some(key.into()),
            hash_algorithm: Some(HASH_ALGORITHM.into()),
        }
    }

    #[test]
    fn only_an_ipn_signed_with_the_password_over_the_exact_answer_passes() {
        let answer = r#"{"orderStatus":"PAID", "shopId":"1"}"#;
        let good = form(answer, ipn_hash("testpassword_x", answer), "password");
        assert_eq!(verify_ipn(b"testpassword_x", &good), Ok(answer));
        let wrong_key = form(answer, ipn_hash("testpassword_y", answer), "password");
        assert_eq!(
            verify_ipn(b"testpassword_x", &wrong_key),
            Err(IpnProblem::WrongSignature)
        );
        let reserialized = r#"{"orderStatus":"PAID","shopId":"1"}"#;
        let moved = form(reserialized, ipn_hash("testpassword_x", answer), "password");
        assert_eq!(
            verify_ipn(b"testpassword_x", &moved),
            Err(IpnProblem::WrongSignature)
        );
        let browser = form(answer, ipn_hash("testpassword_x", answer), "sha256_hmac");
        assert!(matches!(
            verify_ipn(b"testpassword_x", &browser),
            Err(IpnProblem::NotSigned(_))
        ));
        let not_hex = form(answer, "zz".into(), "password");
        assert_eq!(
            verify_ipn(b"testpassword_x", &not_hex),
            Err(IpnProblem::WrongSignature)
        );
        let mut other_algorithm = form(answer, ipn_hash("testpassword_x", answer), "password");
        other_algorithm.hash_algorithm = Some("sha1".into());
        assert!(matches!(
            verify_ipn(b"testpassword_x", &other_algorithm),
            Err(IpnProblem::NotSigned(_))
        ));
    }

    #[test]
    fn statuses_map_once_and_unknown_ones_stay_pending() {
        let order: PayZenOrderStatus = serde_json::from_str("\"PARTIALLY_PAID\"").unwrap();
        assert_eq!(order, PayZenOrderStatus::PartiallyPaid);
        let novel: PayZenPaymentOrderStatus = serde_json::from_str("\"ON_HOLD\"").unwrap();
        assert_eq!(
            PaymentStatus::from(PayZenStatus::PaymentOrder(novel)),
            PaymentStatus::Pending
        );
        let cases = [
            (
                PayZenStatus::Order(PayZenOrderStatus::Paid),
                PaymentStatus::Paid,
            ),
            (
                PayZenStatus::Order(PayZenOrderStatus::Unpaid),
                PaymentStatus::Failed,
            ),
            (
                PayZenStatus::Order(PayZenOrderStatus::Abandoned),
                PaymentStatus::Pending,
            ),
            (
                PayZenStatus::Order(PayZenOrderStatus::Unknown),
                PaymentStatus::Pending,
            ),
            (
                PayZenStatus::PaymentOrder(PayZenPaymentOrderStatus::Expired),
                PaymentStatus::Expired,
            ),
            (
                PayZenStatus::PaymentOrder(PayZenPaymentOrderStatus::Cancelled),
                PaymentStatus::Cancelled,
            ),
            (
                PayZenStatus::PaymentOrder(PayZenPaymentOrderStatus::Refused),
                PaymentStatus::Failed,
            ),
        ];
        for (payzen, obole) in cases {
            assert_eq!(PaymentStatus::from(payzen), obole, "{payzen:?}");
        }
        assert_eq!(
            RefundStatus::from(PayZenTransactionStatus::Running),
            RefundStatus::Pending
        );
    }

    #[test]
    fn credits_are_refunds_and_paid_debits_are_captures() {
        let t: Vec<PayZenTransaction> = serde_json::from_str(
            r#"[{"uuid":"a","amount":4000,"status":"PAID","operationType":"DEBIT"},
                {"uuid":"b","amount":1500,"status":"PAID","operationType":"CREDIT"},
                {"uuid":"c","amount":4000,"status":"UNPAID","operationType":"DEBIT"}]"#,
        )
        .unwrap();
        assert_eq!(
            t.iter()
                .filter(|t| is_capture(t))
                .map(|t| t.uuid.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            t.iter()
                .filter(|t| is_refund(t))
                .map(|t| t.uuid.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
    }
}
