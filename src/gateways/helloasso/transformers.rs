//! HelloAsso's wire format (Checkout API v5): request and answer bodies, the one mapping of
//! payment states, and the payer-name rules HelloAsso applies to the prefill.

use serde::{Deserialize, Serialize};

use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Capture, GatewayReport, RefundFact, RefundStatus};

/// The metadata key carrying obole's attempt id, echoed back by every read of the intent.
pub const REFERENCE_KEY: &str = "obolePaymentId";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoInitCheckout<'a> {
    pub total_amount: i64,
    pub initial_amount: i64,
    pub item_name: &'a str,
    pub back_url: &'a str,
    pub error_url: &'a str,
    pub return_url: &'a str,
    pub contains_donation: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<HelloAssoTerm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<HelloAssoPayer<'a>>,
    pub metadata: serde_json::Value,
}

#[derive(Serialize)]
pub(super) struct HelloAssoTerm {
    pub amount: i64,
    pub date: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoPayer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoInitCheckoutResponse {
    pub id: i64,
    pub redirect_url: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoToken {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoTokenError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// `{"errors": [{"code": "...", "message": "..."}]}`, HelloAsso's error body.
#[derive(Deserialize)]
pub(super) struct HelloAssoErrors {
    pub errors: Vec<HelloAssoErrorItem>,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoErrorItem {
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoCheckoutIntent {
    pub id: i64,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub order: Option<HelloAssoOrder>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoOrder {
    #[serde(default)]
    pub amount: Option<HelloAssoOrderAmount>,
    #[serde(default)]
    pub payments: Option<Vec<HelloAssoPayment>>,
    #[serde(default)]
    pub checkout_intent_id: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoOrderAmount {
    pub total: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoPayment {
    pub id: i64,
    pub amount: i64,
    #[serde(default)]
    pub installment_number: Option<i64>,
    pub state: HelloAssoPaymentState,
    #[serde(default)]
    pub refund_operations: Option<Vec<HelloAssoRefundOperation>>,
}

#[derive(Deserialize)]
pub(super) struct HelloAssoRefundOperation {
    pub id: i64,
    pub amount: i64,
    pub status: HelloAssoOperationState,
}

/// `RefundOperationModel`, the answer to a refund.
#[derive(Deserialize)]
pub(super) struct HelloAssoRefundResponse {
    pub id: i64,
    pub amount: i64,
    pub state: HelloAssoOperationState,
}

/// A notification: only a hint of what to re-fetch.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelloAssoNotification {
    pub event_type: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// HelloAsso's `PaymentState`, every value of the v5 spec.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HelloAssoPaymentState {
    Pending,
    Authorized,
    Refused,
    Unknown,
    Registered,
    Error,
    Refunded,
    Refunding,
    Waiting,
    Canceled,
    Contested,
    WaitingBankValidation,
    WaitingBankWithdraw,
    Abandoned,
    WaitingAuthentication,
    AuthorizedPreprod,
    Corrected,
    Deleted,
    Inconsistent,
    NoDonation,
    Init,
    #[serde(other)]
    Unrecognized,
}

/// The one place where HelloAsso's payment states become obole's: anything unknown is still
/// pending. A refunded or contested payment was paid first; obole derives refunds itself.
impl From<HelloAssoPaymentState> for PaymentStatus {
    fn from(state: HelloAssoPaymentState) -> PaymentStatus {
        use HelloAssoPaymentState as S;
        match state {
            S::Authorized
            | S::AuthorizedPreprod
            | S::Registered
            | S::Refunding
            | S::Refunded
            | S::Contested => PaymentStatus::Paid,
            S::Refused | S::Error | S::Abandoned => PaymentStatus::Failed,
            S::Canceled => PaymentStatus::Cancelled,
            S::Pending
            | S::Waiting
            | S::WaitingBankValidation
            | S::WaitingBankWithdraw
            | S::WaitingAuthentication
            | S::Init
            | S::Unknown
            | S::Corrected
            | S::Deleted
            | S::Inconsistent
            | S::NoDonation
            | S::Unrecognized => PaymentStatus::Pending,
        }
    }
}

/// HelloAsso's `OperationState`, the state of a refund.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HelloAssoOperationState {
    Unknown,
    Init,
    Processing,
    Processed,
    Error,
    InternalError,
    Refused,
    Aborted,
    Canceled,
    #[serde(other)]
    Unrecognized,
}

impl From<HelloAssoOperationState> for RefundStatus {
    fn from(state: HelloAssoOperationState) -> RefundStatus {
        use HelloAssoOperationState as S;
        match state {
            S::Processed => RefundStatus::Succeeded,
            S::Error | S::InternalError | S::Refused | S::Aborted | S::Canceled => {
                RefundStatus::Failed
            }
            S::Unknown | S::Init | S::Processing | S::Unrecognized => RefundStatus::Pending,
        }
    }
}

impl HelloAssoPayment {
    /// Money HelloAsso received for this payment (refunds are reported on their own).
    pub fn was_captured(&self) -> bool {
        PaymentStatus::from(self.state) == PaymentStatus::Paid
    }

    pub fn refunded(&self) -> i64 {
        self.processed_refunds().map(|r| r.amount).sum()
    }

    pub fn processed_refunds(&self) -> impl Iterator<Item = &HelloAssoRefundOperation> {
        self.refund_operations
            .iter()
            .flatten()
            .filter(|r| RefundStatus::from(r.status) == RefundStatus::Succeeded)
    }
}

impl HelloAssoOrder {
    /// The order's payments, first term first.
    pub fn payments_in_order(&self) -> Vec<&HelloAssoPayment> {
        let mut payments: Vec<&HelloAssoPayment> = self.payments.iter().flatten().collect();
        payments.sort_by_key(|p| (p.installment_number.unwrap_or(1), p.id));
        payments
    }
}

impl HelloAssoCheckoutIntent {
    pub fn reference(&self) -> Option<String> {
        self.metadata
            .as_ref()?
            .get(REFERENCE_KEY)?
            .as_str()
            .map(str::to_string)
    }

    /// What the intent says, read with obole's own token. No order yet: nothing authorized.
    /// The first term decides the status; each term received is its own capture.
    pub fn into_report(self, live: bool, event_id: Option<String>) -> GatewayReport {
        let reference = self.reference();
        let mut report = GatewayReport {
            gateway_ref: self.id.to_string(),
            reference,
            status: PaymentStatus::Pending,
            amount: Money::ZERO,
            currency: "EUR".into(),
            live,
            event_id,
            captures: Vec::new(),
            refunds: Vec::new(),
            saved_method: None,
        };
        let Some(order) = self.order else {
            return report;
        };
        let payments = order.payments_in_order();
        report.amount = Money::from_cents(
            order
                .amount
                .as_ref()
                .map(|a| a.total)
                .unwrap_or_else(|| payments.iter().map(|p| p.amount).sum()),
        );
        if let Some(first) = payments.first() {
            report.status = PaymentStatus::from(first.state);
        }
        report.captures = payments
            .iter()
            .filter(|p| p.was_captured())
            .map(|p| Capture {
                id: p.id.to_string(),
                amount: Money::from_cents(p.amount),
                // Free for associations: `amountTip` is the payer's gift to HelloAsso.
                fee: None,
            })
            .collect();
        report.refunds = payments
            .iter()
            .flat_map(|p| p.processed_refunds())
            .map(|r| RefundFact {
                id: r.id.to_string(),
                amount: Money::from_cents(r.amount),
            })
            .collect();
        report
    }
}

/// Values HelloAsso refuses as a first or last name.
const FORBIDDEN_NAMES: [&str; 12] = [
    "firstname",
    "lastname",
    "unknown",
    "first_name",
    "last_name",
    "anonyme",
    "user",
    "admin",
    "name",
    "nom",
    "prénom",
    "test",
];

const ACCENTED_LETTERS: &str = "àáâäãåæçèéêëìíîïñòóôöõøœùúûüýÿ";
const VOWELS: &str = "aeiouyàáâäãåæèéêëìíîïòóôöõøœùúûüýÿ";

/// Why HelloAsso would refuse this as a payer's first or last name, if it would.
pub fn name_problem(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_lowercase();
    if lower.chars().any(|c| c.is_ascii_digit()) {
        return Some("contient un chiffre");
    }
    let allowed = |c: char| {
        c.is_ascii_alphabetic() || ACCENTED_LETTERS.contains(c) || matches!(c, '\'' | '-' | ' ')
    };
    if !lower.chars().all(allowed) {
        return Some("contient un caractère non autorisé");
    }
    if lower.chars().filter(|c| c.is_alphabetic()).count() < 2 {
        return Some("n'a qu'une lettre");
    }
    let chars: Vec<char> = lower.chars().collect();
    if chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return Some("répète trois fois le même caractère");
    }
    if !lower.chars().any(|c| VOWELS.contains(c)) {
        return Some("n'a pas de voyelle");
    }
    if FORBIDDEN_NAMES.contains(&lower.as_str()) {
        return Some("est un nom réservé");
    }
    None
}

/// The payer's names HelloAsso would accept as a prefill; a refused one is left out, so the
/// payer types it on HelloAsso's page instead of the payment failing.
pub fn acceptable_names<'a>(first: &'a str, last: &'a str) -> (Option<&'a str>, Option<&'a str>) {
    let keep = |name: &'a str| (name_problem(name).is_none()).then_some(name.trim());
    let (first, last) = (keep(first), keep(last));
    match (first, last) {
        (Some(f), Some(l)) if f.to_lowercase() == l.to_lowercase() => (None, None),
        names => names,
    }
}

/// An address HelloAsso would take as the payer's e-mail; any other is left out of the prefill.
pub fn acceptable_email(email: &str) -> bool {
    email.chars().count() <= 255
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && !domain.contains('@') && domain.contains('.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_states_map_exhaustively_and_unknown_is_pending() {
        let cases = [
            ("Pending", PaymentStatus::Pending),
            ("Authorized", PaymentStatus::Paid),
            ("Refused", PaymentStatus::Failed),
            ("Unknown", PaymentStatus::Pending),
            ("Registered", PaymentStatus::Paid),
            ("Error", PaymentStatus::Failed),
            ("Refunded", PaymentStatus::Paid),
            ("Refunding", PaymentStatus::Paid),
            ("Waiting", PaymentStatus::Pending),
            ("Canceled", PaymentStatus::Cancelled),
            ("Contested", PaymentStatus::Paid),
            ("WaitingBankValidation", PaymentStatus::Pending),
            ("WaitingBankWithdraw", PaymentStatus::Pending),
            ("Abandoned", PaymentStatus::Failed),
            ("WaitingAuthentication", PaymentStatus::Pending),
            ("AuthorizedPreprod", PaymentStatus::Paid),
            ("Corrected", PaymentStatus::Pending),
            ("Deleted", PaymentStatus::Pending),
            ("Inconsistent", PaymentStatus::Pending),
            ("NoDonation", PaymentStatus::Pending),
            ("Init", PaymentStatus::Pending),
            ("SomethingNew", PaymentStatus::Pending),
        ];
        for (wire, expected) in cases {
            let state: HelloAssoPaymentState =
                serde_json::from_value(serde_json::json!(wire)).unwrap();
            assert_eq!(PaymentStatus::from(state), expected, "{wire}");
        }
    }

    #[test]
    fn the_spec_lists_no_payment_state_the_mapping_does_not_know() {
        let spec: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/specs/helloasso/helloasso.json"
        )))
        .unwrap();
        let states = spec["components"]["schemas"]
            ["HelloAsso.Api.V5.Common.Models.Enums.PaymentState"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(states.len(), 21);
        for state in states {
            let parsed: HelloAssoPaymentState = serde_json::from_value(state.clone()).unwrap();
            assert_ne!(parsed, HelloAssoPaymentState::Unrecognized, "{state}");
        }
    }

    #[test]
    fn refund_states_map_and_only_processed_succeeds() {
        for (wire, expected) in [
            ("Processed", RefundStatus::Succeeded),
            ("Processing", RefundStatus::Pending),
            ("Init", RefundStatus::Pending),
            ("Refused", RefundStatus::Failed),
            ("Aborted", RefundStatus::Failed),
            ("Whatever", RefundStatus::Pending),
        ] {
            let state: HelloAssoOperationState =
                serde_json::from_value(serde_json::json!(wire)).unwrap();
            assert_eq!(RefundStatus::from(state), expected, "{wire}");
        }
    }

    fn intent(json: serde_json::Value) -> HelloAssoCheckoutIntent {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_intent_without_order_is_pending_and_captures_nothing() {
        let report = intent(serde_json::json!({
            "id": 42, "redirectUrl": "https://x", "metadata": {REFERENCE_KEY: "pay_1"}
        }))
        .into_report(false, None);
        assert_eq!(report.status, PaymentStatus::Pending);
        assert_eq!(report.reference.as_deref(), Some("pay_1"));
        assert_eq!(report.gateway_ref, "42");
        assert!(report.captures.is_empty());
    }

    #[test]
    fn each_term_received_is_a_capture_and_the_total_is_the_amount() {
        let report = intent(serde_json::json!({
            "id": 7,
            "metadata": {REFERENCE_KEY: "pay_2"},
            "order": {
                "id": 9, "checkoutIntentId": 7, "amount": {"total": 9000, "vat": 0, "discount": 0},
                "payments": [
                    {"id": 103, "amount": 3000, "amountTip": 150, "installmentNumber": 3, "state": "Pending"},
                    {"id": 101, "amount": 3000, "amountTip": 0, "installmentNumber": 1, "state": "Authorized",
                     "refundOperations": [
                        {"id": 55, "amount": 500, "amountTip": 0, "status": "Processed"},
                        {"id": 56, "amount": 700, "amountTip": 0, "status": "Refused"}
                     ]},
                    {"id": 102, "amount": 3000, "installmentNumber": 2, "state": "Authorized"}
                ]
            }
        }))
        .into_report(true, None);
        assert_eq!(report.status, PaymentStatus::Paid);
        assert_eq!(report.amount, Money::from_cents(9000));
        assert!(report.live);
        let ids: Vec<&str> = report.captures.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["101", "102"]);
        assert!(report.captures.iter().all(|c| c.fee.is_none()));
        assert_eq!(
            report.refunds,
            vec![RefundFact {
                id: "55".into(),
                amount: Money::from_cents(500)
            }]
        );
    }

    #[test]
    fn a_refused_first_term_fails_the_payment() {
        let report = intent(serde_json::json!({
            "id": 8,
            "order": {"amount": {"total": 1000},
                      "payments": [{"id": 1, "amount": 1000, "installmentNumber": 1, "state": "Refused"}]}
        }))
        .into_report(false, None);
        assert_eq!(report.status, PaymentStatus::Failed);
        assert!(report.captures.is_empty());
        assert_eq!(report.reference, None);
    }

    #[test]
    fn names_with_three_repeated_characters_are_refused() {
        assert!(name_problem("Annna").is_some());
        assert!(name_problem("Anna").is_none());
    }

    #[test]
    fn names_with_a_digit_are_refused() {
        assert!(name_problem("Camille2").is_some());
    }

    #[test]
    fn single_letters_are_refused() {
        assert!(name_problem("J").is_some());
        assert!(name_problem("J.").is_some());
        assert!(name_problem("Jo").is_none());
    }

    #[test]
    fn names_without_a_vowel_are_refused() {
        assert!(name_problem("Brrt").is_some());
        assert!(name_problem("Lydie").is_none());
        assert!(name_problem("Hélène").is_none());
    }

    #[test]
    fn forbidden_words_are_refused_whatever_the_case() {
        for word in ["Test", "ADMIN", "Prénom", "anonyme", "Unknown", "nom"] {
            assert!(name_problem(word).is_some(), "{word}");
        }
    }

    #[test]
    fn only_latin_letters_accents_apostrophes_hyphens_and_spaces_pass() {
        assert!(name_problem("Jean-Loïc").is_none());
        assert!(name_problem("D'Alembert").is_none());
        assert!(name_problem("Marie Ève").is_none());
        assert!(name_problem("Çéline").is_none());
        assert!(name_problem("Иван").is_some());
        assert!(name_problem("Jean_Luc").is_some());
        assert!(name_problem("Zoë!").is_some());
    }

    #[test]
    fn refused_names_are_left_out_and_the_others_kept() {
        assert_eq!(
            acceptable_names("Camille", "Martin"),
            (Some("Camille"), Some("Martin"))
        );
        assert_eq!(acceptable_names("Test", "Martin"), (None, Some("Martin")));
        assert_eq!(acceptable_names("Camille", "X"), (Some("Camille"), None));
    }

    #[test]
    fn a_first_name_equal_to_the_last_name_leaves_both_out() {
        assert_eq!(acceptable_names("Martin", "martin"), (None, None));
    }

    #[test]
    fn only_plausible_emails_are_prefilled() {
        assert!(acceptable_email("membre@exemple.org"));
        for bad in [
            "membre",
            "@exemple.org",
            "membre@localhost",
            "a b@exemple.org",
            "a@b@c.org",
        ] {
            assert!(!acceptable_email(bad), "{bad}");
        }
    }
}
