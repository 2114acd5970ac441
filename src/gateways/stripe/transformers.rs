//! Stripe's wire format: the form parameters obole sends, the JSON objects it reads back,
//! the `Stripe-Signature` header, and the one mapping of Stripe's statuses into obole's.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::domain::PaymentStatus;
use crate::gateways::{Decline, RefundStatus};

/// The API version obole is written against (the one of the stored OpenAPI spec): pinned on
/// every request so that answers and events keep the shapes read here.
pub const API_VERSION: &str = "2023-08-16";
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Stripe's own libraries refuse events signed more than five minutes away from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// The metadata key carrying obole's attempt id, on the session and on its PaymentIntent.
pub const METADATA_PAYMENT_ID: &str = "obole_payment_id";
/// The metadata key marking a PaymentIntent obole created itself to charge a saved card (its
/// events are about obole's attempt; those of a Checkout Session's PaymentIntent are not).
pub const METADATA_OFF_SESSION: &str = "obole_off_session";

/// A field Stripe returns either as an id or, when asked with `expand[]`, as the object.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum StripeExpandable<T> {
    Object(Box<T>),
    Id(String),
}

impl<T> StripeExpandable<T> {
    pub(super) fn object(&self) -> Option<&T> {
        match self {
            StripeExpandable::Object(object) => Some(object),
            StripeExpandable::Id(_) => None,
        }
    }
}

/// The account's balance: only its mode matters, to a connection test.
#[derive(Deserialize, Debug)]
pub(super) struct StripeBalance {
    pub livemode: bool,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeSession {
    pub id: String,
    /// Nullable in the spec.
    #[serde(default)]
    pub status: Option<StripeSessionStatus>,
    pub payment_status: StripeSessionPaymentStatus,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    pub livemode: bool,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<StripeExpandable<StripePaymentIntent>>,
    /// The Customer the session created or was given (`cus_…`).
    #[serde(default)]
    pub customer: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripePaymentIntent {
    pub id: String,
    pub status: StripePaymentIntentStatus,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    pub latest_charge: Option<StripeExpandable<StripeCharge>>,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub payment_method: Option<StripeExpandable<StripePaymentMethod>>,
    /// `off_session` when the card is to be kept on the Customer for later charges.
    #[serde(default)]
    pub setup_future_usage: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<StripeErrorDetail>,
}

impl StripePaymentIntent {
    /// A PaymentIntent obole created to charge a saved card.
    pub fn is_off_session_charge(&self) -> bool {
        self.metadata
            .as_ref()
            .is_some_and(|m| m.contains_key(METADATA_OFF_SESSION))
    }

    pub fn payment_method_id(&self) -> Option<&str> {
        match self.payment_method.as_ref()? {
            StripeExpandable::Object(method) => Some(&method.id),
            StripeExpandable::Id(id) => Some(id),
        }
    }
}

/// A PaymentMethod: its id, and the brand and last digits a member recognises; nothing more
/// of the card is read.
#[derive(Deserialize, Debug)]
pub(super) struct StripePaymentMethod {
    pub id: String,
    #[serde(default)]
    pub card: Option<StripeCardDetails>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeCardDetails {
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeCharge {
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub balance_transaction: Option<StripeExpandable<StripeBalanceTransaction>>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeBalanceTransaction {
    pub fee: i64,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeRefund {
    pub id: String,
    pub amount: i64,
    /// Nullable in the spec.
    #[serde(default)]
    pub status: Option<StripeRefundStatus>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeList<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: StripeEventData,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeEventData {
    pub object: StripeEventObject,
}

/// The fields of an event's object that point at the session it is about.
#[derive(Deserialize, Debug)]
pub(super) struct StripeEventObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeErrorBody {
    pub error: StripeErrorDetail,
}

#[derive(Deserialize, Debug)]
pub(super) struct StripeErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    /// A card error names the PaymentIntent it left behind.
    #[serde(default)]
    pub payment_intent: Option<Box<StripePaymentIntent>>,
}

impl StripeErrorDetail {
    /// Why the bank refused: authentication wanted (the member must pay by hand), or a refusal.
    pub fn decline(&self) -> Decline {
        let wants_authentication = [&self.code, &self.decline_code]
            .into_iter()
            .flatten()
            .any(|c| c == "authentication_required");
        if wants_authentication {
            Decline::AuthenticationRequired
        } else {
            Decline::Refused(
                self.message
                    .clone()
                    .or_else(|| self.decline_code.clone())
                    .or_else(|| self.code.clone())
                    .unwrap_or_else(|| "refusée".into()),
            )
        }
    }
}

/// "Visa •••• 4242", from what Stripe says of a card.
pub(super) fn card_label(card: &StripeCardDetails) -> Option<String> {
    let last4 = card.last4.as_deref()?;
    let brand = match card.brand.as_deref().unwrap_or("") {
        "visa" => "Visa".to_string(),
        "mastercard" => "Mastercard".to_string(),
        "amex" => "American Express".to_string(),
        "cartes_bancaires" => "CB".to_string(),
        "" | "unknown" => "Carte".to_string(),
        other => {
            let mut letters = other.chars();
            letters
                .next()
                .map(|first| first.to_uppercase().chain(letters).collect())
                .unwrap_or_default()
        }
    };
    Some(format!("{brand} •••• {last4}"))
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum StripeSessionStatus {
    Open,
    Complete,
    Expired,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum StripeSessionPaymentStatus {
    Paid,
    Unpaid,
    NoPaymentRequired,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum StripePaymentIntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum StripeRefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    #[serde(other)]
    Unknown,
}

/// The one place where Stripe's statuses become obole's; anything unknown is still pending.
///
/// A session is the request; its PaymentIntent (created once the payer confirms) tells a
/// delayed method that failed (`complete` + `unpaid` + back to `requires_payment_method`)
/// from one still processing.
pub(super) fn payment_status(
    session: StripeSessionStatus,
    paid: StripeSessionPaymentStatus,
    intent: Option<StripePaymentIntentStatus>,
) -> PaymentStatus {
    use StripePaymentIntentStatus as Intent;
    use StripeSessionPaymentStatus as Paid;
    use StripeSessionStatus as Session;
    match (session, paid) {
        (Session::Expired, _) => PaymentStatus::Expired,
        (Session::Complete, Paid::Paid) => PaymentStatus::Paid,
        (Session::Complete, Paid::Unpaid) => match intent {
            Some(Intent::RequiresPaymentMethod | Intent::Canceled) => PaymentStatus::Failed,
            Some(
                Intent::RequiresConfirmation
                | Intent::RequiresAction
                | Intent::Processing
                | Intent::RequiresCapture
                | Intent::Succeeded
                | Intent::Unknown,
            )
            | None => PaymentStatus::Pending,
        },
        // No money moves on a free session; obole never asks for one.
        (Session::Complete, Paid::NoPaymentRequired | Paid::Unknown) => PaymentStatus::Pending,
        // A declined card leaves the session open: the payer may try another card.
        (Session::Open | Session::Unknown, _) => PaymentStatus::Pending,
    }
}

/// The status of a PaymentIntent obole created itself to charge a saved card: there is no
/// session around it, and a confirmation that did not succeed is final for that attempt.
pub(super) fn intent_status(status: StripePaymentIntentStatus) -> PaymentStatus {
    use StripePaymentIntentStatus as Intent;
    match status {
        Intent::Succeeded => PaymentStatus::Paid,
        Intent::RequiresPaymentMethod | Intent::Canceled => PaymentStatus::Failed,
        Intent::RequiresConfirmation
        | Intent::RequiresAction
        | Intent::Processing
        | Intent::RequiresCapture
        | Intent::Unknown => PaymentStatus::Pending,
    }
}

impl From<StripeRefundStatus> for RefundStatus {
    fn from(status: StripeRefundStatus) -> RefundStatus {
        match status {
            StripeRefundStatus::Succeeded => RefundStatus::Succeeded,
            StripeRefundStatus::Failed | StripeRefundStatus::Canceled => RefundStatus::Failed,
            StripeRefundStatus::Pending
            | StripeRefundStatus::RequiresAction
            | StripeRefundStatus::Unknown => RefundStatus::Pending,
        }
    }
}

/// Why a `Stripe-Signature` header does not prove the body came from Stripe.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SignatureProblem {
    Unreadable,
    TooOld,
    InTheFuture,
    NoMatch,
}

impl std::fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureProblem::Unreadable => "unreadable Stripe-Signature header",
            SignatureProblem::TooOld => "signature timestamp outside the tolerance (too old)",
            SignatureProblem::InTheFuture => "signature timestamp outside the tolerance (future)",
            SignatureProblem::NoMatch => "no v1 signature matches",
        })
    }
}

/// Checks `t=<unix>,v1=<hex>[,v1=<hex>...]` against HMAC-SHA256(secret, "t.body"), in
/// constant time; any one v1 may match (secrets being rolled), other schemes are ignored.
pub(super) fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureProblem> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for element in header.split(',') {
        let Some((key, value)) = element.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureProblem::Unreadable)?;
    if candidates.is_empty() {
        return Err(SignatureProblem::Unreadable);
    }
    if now - timestamp > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureProblem::TooOld);
    }
    if timestamp - now > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureProblem::InTheFuture);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureProblem::NoMatch)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Every candidate is checked, so timing does not tell which one matched.
    let matched = candidates.iter().fold(false, |acc, candidate| {
        mac.clone().verify_slice(candidate).is_ok() | acc
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureProblem::NoMatch)
    }
}

/// The header Stripe would put on `body` at `timestamp` with this secret.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        crate::sandbox::common::hmac_sha256_hex(secret.as_bytes(), &signed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(wire: &str) -> T {
        serde_json::from_str(&format!("\"{wire}\"")).unwrap()
    }

    #[test]
    fn session_statuses_map_exhaustively_and_unknown_is_pending() {
        let cases = [
            ("open", "unpaid", None, PaymentStatus::Pending),
            (
                "open",
                "unpaid",
                Some("requires_payment_method"),
                PaymentStatus::Pending,
            ),
            ("complete", "paid", Some("succeeded"), PaymentStatus::Paid),
            (
                "complete",
                "unpaid",
                Some("processing"),
                PaymentStatus::Pending,
            ),
            (
                "complete",
                "unpaid",
                Some("requires_payment_method"),
                PaymentStatus::Failed,
            ),
            (
                "complete",
                "unpaid",
                Some("canceled"),
                PaymentStatus::Failed,
            ),
            (
                "complete",
                "unpaid",
                Some("something_new"),
                PaymentStatus::Pending,
            ),
            (
                "complete",
                "no_payment_required",
                None,
                PaymentStatus::Pending,
            ),
            ("complete", "something_new", None, PaymentStatus::Pending),
            ("expired", "unpaid", None, PaymentStatus::Expired),
            ("something_new", "paid", None, PaymentStatus::Pending),
        ];
        for (session, paid, intent, expected) in cases {
            let got = payment_status(parse(session), parse(paid), intent.map(parse));
            assert_eq!(got, expected, "{session}/{paid}/{intent:?}");
        }
    }

    #[test]
    fn off_session_intent_statuses_map_and_unknown_is_pending() {
        let cases = [
            ("succeeded", PaymentStatus::Paid),
            ("requires_payment_method", PaymentStatus::Failed),
            ("canceled", PaymentStatus::Failed),
            ("processing", PaymentStatus::Pending),
            ("requires_action", PaymentStatus::Pending),
            ("requires_confirmation", PaymentStatus::Pending),
            ("requires_capture", PaymentStatus::Pending),
            ("something_new", PaymentStatus::Pending),
        ];
        for (wire, expected) in cases {
            assert_eq!(intent_status(parse(wire)), expected, "{wire}");
        }
    }

    #[test]
    fn a_card_error_tells_authentication_from_refusal() {
        let error: StripeErrorBody = serde_json::from_str(
            r#"{"error":{"type":"card_error","code":"authentication_required",
                "decline_code":"authentication_required","message":"This transaction requires authentication.",
                "payment_intent":{"id":"pi_1","status":"requires_payment_method","amount":3000}}}"#,
        )
        .unwrap();
        assert_eq!(error.error.decline(), Decline::AuthenticationRequired);
        assert_eq!(error.error.payment_intent.unwrap().id, "pi_1");
        let refused: StripeErrorBody = serde_json::from_str(
            r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
                "message":"Your card has insufficient funds."}}"#,
        )
        .unwrap();
        assert_eq!(
            refused.error.decline(),
            Decline::Refused("Your card has insufficient funds.".into())
        );
    }

    #[test]
    fn card_labels_show_the_brand_and_the_last_four_digits_only() {
        let card = |brand: &str, last4: Option<&str>| StripeCardDetails {
            brand: Some(brand.into()),
            last4: last4.map(str::to_string),
        };
        assert_eq!(
            card_label(&card("visa", Some("4242"))).as_deref(),
            Some("Visa •••• 4242")
        );
        assert_eq!(
            card_label(&card("discover", Some("1117"))).as_deref(),
            Some("Discover •••• 1117")
        );
        assert_eq!(card_label(&card("visa", None)), None);
    }

    #[test]
    fn refund_statuses_map_and_unknown_is_pending() {
        let cases = [
            ("succeeded", RefundStatus::Succeeded),
            ("pending", RefundStatus::Pending),
            ("requires_action", RefundStatus::Pending),
            ("failed", RefundStatus::Failed),
            ("canceled", RefundStatus::Failed),
            ("something_new", RefundStatus::Pending),
        ];
        for (wire, expected) in cases {
            assert_eq!(
                RefundStatus::from(parse::<StripeRefundStatus>(wire)),
                expected
            );
        }
    }

    #[test]
    fn a_signature_is_checked_over_the_timestamp_and_the_raw_body() {
        let body = br#"{"id":"evt_1"}"#;
        let header = signature_header("whsec_x", 1_000, body);
        assert_eq!(verify_signature(b"whsec_x", &header, body, 1_000), Ok(()));
        assert_eq!(
            verify_signature(b"whsec_y", &header, body, 1_000),
            Err(SignatureProblem::NoMatch)
        );
        assert_eq!(
            verify_signature(b"whsec_x", &header, br#"{"id":"evt_2"}"#, 1_000),
            Err(SignatureProblem::NoMatch)
        );
        let shifted = header.replace("t=1000", "t=1001");
        assert_eq!(
            verify_signature(b"whsec_x", &shifted, body, 1_000),
            Err(SignatureProblem::NoMatch)
        );
    }

    #[test]
    fn the_tolerance_is_five_minutes_either_way() {
        let body = b"{}";
        let header = signature_header("whsec_x", 1_000, body);
        assert_eq!(verify_signature(b"whsec_x", &header, body, 1_300), Ok(()));
        assert_eq!(
            verify_signature(b"whsec_x", &header, body, 1_301),
            Err(SignatureProblem::TooOld)
        );
        assert_eq!(
            verify_signature(b"whsec_x", &header, body, 699),
            Err(SignatureProblem::InTheFuture)
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let body = b"{}";
        let good = signature_header("whsec_x", 1_000, body);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=1000,v1={},v0={good_v1},v1={good_v1}", "ab".repeat(32));
        assert_eq!(verify_signature(b"whsec_x", &header, body, 1_000), Ok(()));
        let only_v0 = format!("t=1000,v0={good_v1}");
        assert_eq!(
            verify_signature(b"whsec_x", &only_v0, body, 1_000),
            Err(SignatureProblem::Unreadable)
        );
        assert_eq!(
            verify_signature(b"whsec_x", "garbage", body, 1_000),
            Err(SignatureProblem::Unreadable)
        );
    }
}
