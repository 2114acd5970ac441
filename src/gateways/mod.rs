//! The contract between obole and a payment gateway, and the registry of enabled gateways.
//!
//! A connector is stateless: it never touches the database. It turns obole's request into the
//! gateway's wire format, and the gateway's answers and notifications into a [`GatewayReport`]
//! (verified facts), mapping statuses in one exhaustive place.

pub mod helloasso;
pub mod mollie;
pub mod paypal;
pub mod payplug;
pub mod payzen;
pub mod sandbox;
pub mod stancer;
pub mod stripe;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// What a gateway can do, for the back office, the README and the contract tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub refund: bool,
    pub partial_refund: bool,
    /// An unpaid request can be cancelled at the gateway.
    pub cancel: bool,
    /// The gateway's API reports its fees, so the journal books them.
    pub fees: bool,
    pub saved_cards: bool,
    pub installments: bool,
    /// How a notification is proved authentic.
    pub verification: &'static str,
}

/// What obole asks a gateway for when a member clicks "pay".
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// obole's attempt id, given to the gateway as its reference (metadata / reference field).
    pub payment_id: String,
    pub amount: Money,
    pub currency: String,
    /// What is paid, for the gateway's page and receipts (at most 250 characters).
    pub description: String,
    pub payer_email: String,
    pub payer_first_name: String,
    pub payer_last_name: String,
    /// Where the member comes back after paying (proves nothing).
    pub return_url: String,
    /// Where the member comes back when they give up ("back").
    pub cancel_url: String,
    /// Where the member comes back when the gateway failed.
    pub error_url: String,
    pub notification_url: String,
    /// Pay in this many monthly terms (2 to 4), where the gateway and the manager allow it.
    pub installments: Option<u8>,
    /// True only when every basket line paid is a donation (HelloAsso's `containsDonation`).
    pub contains_donation: bool,
    /// The member agreed that the gateway keeps the card for later off-session charges.
    pub save_card: Option<SaveCard>,
}

/// Keep the card used for this payment at the gateway, for the member's later dues.
#[derive(Debug, Clone, Default)]
pub struct SaveCard {
    /// The member's customer at this gateway, when obole already knows one.
    pub customer_id: Option<String>,
}

/// A card kept at the gateway: its references only, never card data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMethod {
    pub customer_id: String,
    pub payment_method_id: String,
    /// What the member recognises it by ("Visa •••• 4242"), when the gateway tells.
    pub label: Option<String>,
}

/// A charge of a saved card while the member is away (a due, or a manager's click).
#[derive(Debug, Clone)]
pub struct OffSessionRequest {
    /// obole's attempt id: the gateway's reference and its idempotency key.
    pub payment_id: String,
    pub amount: Money,
    pub currency: String,
    pub description: String,
    pub customer_id: String,
    pub payment_method_id: String,
}

/// Why the member's bank did not accept an off-session charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decline {
    /// The bank wants the cardholder to authenticate (3-D Secure): they must pay by hand.
    AuthenticationRequired,
    /// Refused (insufficient funds, expired card...), with the gateway's words.
    Refused(String),
}

/// What the gateway did with an off-session charge: its report (through the one writer, like
/// any other), and the decline when the bank said no.
#[derive(Debug, Clone)]
pub struct OffSessionOutcome {
    pub report: GatewayReport,
    pub decline: Option<Decline>,
}

/// The payment created at the gateway, and where to send the member.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub gateway_ref: String,
    pub redirect_url: String,
}

/// Money the gateway actually received for a payment: each capture is posted once, keyed by
/// its id (a payment in installments has one capture per term paid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub id: String,
    pub amount: Money,
    /// The gateway's fee on this capture, when its API reports it.
    pub fee: Option<Money>,
}

/// Money the gateway gave back; each refund is posted once, keyed by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFact {
    pub id: String,
    pub amount: Money,
}

/// Facts about a payment that obole has verified came from the gateway.
#[derive(Debug, Clone)]
pub struct GatewayReport {
    pub gateway_ref: String,
    /// obole's attempt id as the gateway echoes it back (None: find it by `gateway_ref`).
    pub reference: Option<String>,
    /// Pending, Paid, Failed, Cancelled or Expired; obole derives refunded states itself.
    pub status: PaymentStatus,
    /// The total the payment is for at the gateway (checked against the attempt).
    pub amount: Money,
    pub currency: String,
    pub live: bool,
    pub event_id: Option<String>,
    /// Settled money; empty until the gateway reports the payment paid.
    pub captures: Vec<Capture>,
    /// Succeeded refunds only.
    pub refunds: Vec<RefundFact>,
    /// The card the gateway kept for later charges, when the payment asked it to.
    pub saved_method: Option<SavedMethod>,
}

impl GatewayReport {
    /// A report of a payment paid at once: one capture, keyed by the gateway's reference.
    pub fn paid_in_full(mut self, fee: Option<Money>) -> GatewayReport {
        self.status = PaymentStatus::Paid;
        self.captures = vec![Capture {
            id: self.gateway_ref.clone(),
            amount: self.amount,
            fee,
        }];
        self
    }
}

/// A refund a manager asked for.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub payment_id: String,
    pub gateway_ref: String,
    /// The captures of the payment (some gateways refund a capture, not the payment).
    pub capture_ids: Vec<String>,
    pub amount: Money,
    pub currency: String,
    /// Sent as the gateway's idempotency key where it has one: a retried refund is not doubled.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
pub struct RefundOutcome {
    pub refund_id: String,
    pub amount: Money,
    pub status: RefundStatus,
}

/// A notification as received: the raw bytes are what signatures cover.
pub struct IncomingNotification<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl IncomingNotification<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the request (its message is safe to show a manager).
    #[error("the gateway refused the request: {0}")]
    Rejected(String),
    #[error("the gateway could not be reached or answered unexpectedly")]
    Unavailable(#[source] anyhow::Error),
    #[error("this gateway cannot {0}")]
    Unsupported(&'static str),
}

/// Reads a gateway's answer: a 2xx body as `T`; a 4xx as `Rejected` with the gateway's own
/// message (read from its error body `E` by `describe`, else the status); anything else, and
/// 429 (slow down: not a verdict), as `Unavailable`.
pub(crate) async fn read_answer<T, E>(
    response: reqwest::Response,
    gateway: &'static str,
    describe: impl FnOnce(E) -> Option<String>,
) -> Result<T, GatewayError>
where
    T: serde::de::DeserializeOwned,
    E: serde::de::DeserializeOwned,
{
    let status = response.status();
    if status.is_success() {
        return response.json::<T>().await.map_err(|e| {
            GatewayError::Unavailable(
                anyhow::Error::new(e).context(format!("unreadable {gateway} answer")),
            )
        });
    }
    let body = response.text().await.unwrap_or_default();
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        let message = serde_json::from_str::<E>(&body)
            .ok()
            .and_then(describe)
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(GatewayError::Rejected(message))
    } else {
        Err(GatewayError::Unavailable(anyhow::anyhow!(
            "{gateway} answered HTTP {status}"
        )))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// Missing or wrong signature: not from the gateway.
    #[error("notification not authentic: {0}")]
    Forged(String),
    /// Authentic or not, it cannot be read.
    #[error("notification unreadable: {0}")]
    Malformed(String),
    /// Could not be verified now (the gateway's API is down): the gateway should retry.
    #[error("notification could not be verified now")]
    Unverifiable(#[source] anyhow::Error),
}

#[async_trait]
pub trait Gateway: Send + Sync {
    /// Stable identifier, used in URLs and stored on payments.
    fn id(&self) -> &'static str;
    fn display_name(&self) -> &'static str;
    fn test_mode(&self) -> bool;
    fn capabilities(&self) -> Capabilities;
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError>;
    /// Proves a notification authentic (signature, or a fresh fetch from the gateway's API)
    /// and reports what it says. `Ok(None)`: authentic, but about nothing obole tracks.
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError>;
    /// Asks the gateway for the current state of a payment.
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError>;
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError>;
    /// Cancels an unpaid request at the gateway, where it allows it.
    async fn cancel(&self, _gateway_ref: &str) -> Result<(), GatewayError> {
        Err(GatewayError::Unsupported("cancel a payment request"))
    }
    /// Charges a saved card, the member not present (`capabilities().saved_cards`).
    async fn charge_saved_card(
        &self,
        _request: &OffSessionRequest,
    ) -> Result<OffSessionOutcome, GatewayError> {
        Err(GatewayError::Unsupported("charge a saved card"))
    }
    /// Asks the gateway to forget a saved card, where its API allows it.
    async fn forget_saved_card(&self, _saved: &SavedMethod) -> Result<(), GatewayError> {
        Err(GatewayError::Unsupported("forget a saved card"))
    }

    /// One cheap authenticated call, so that an admin knows the credentials work. A refusal
    /// of the credentials is `Rejected`, a gateway that does not answer `Unavailable`.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        Err(GatewayError::Unsupported("test the connection"))
    }
}

/// What a successful connection test learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCheck {
    /// The credentials move real money (production mode).
    pub live: bool,
}

/// Which gateways a registry holds: those offered to members (in their order), and those kept
/// only for what is already under way (notifications, refunds, the sweep).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineup {
    pub offered: Vec<String>,
    pub kept: Vec<String>,
    /// Pre-selected in the member's pay form; the first offered when none is named.
    pub default: Option<String>,
}

/// The gateways of this portal: those offered to members, in their order, then those no longer
/// offered that still answer for payments already made.
#[derive(Clone, Default)]
pub struct Registry {
    gateways: Vec<Arc<dyn Gateway>>,
    offered: usize,
    default: Option<&'static str>,
}

impl Registry {
    /// The gateways of `settings.gateways`, all offered, the first one by default.
    pub fn from_settings(
        settings: &Settings,
        base_url: &str,
        http: reqwest::Client,
    ) -> anyhow::Result<Registry> {
        let lineup = Lineup {
            offered: settings.gateways.clone(),
            ..Lineup::default()
        };
        Registry::from_lineup(settings, &lineup, base_url, http)
    }

    pub fn from_lineup(
        settings: &Settings,
        lineup: &Lineup,
        base_url: &str,
        http: reqwest::Client,
    ) -> anyhow::Result<Registry> {
        let mut gateways: Vec<Arc<dyn Gateway>> = Vec::new();
        for id in lineup.offered.iter().chain(&lineup.kept) {
            if gateways.iter().any(|g| g.id() == id) {
                continue;
            }
            gateways.push(connector(id, settings, base_url, http.clone())?);
        }
        let offered = gateways
            .iter()
            .take_while(|g| lineup.offered.iter().any(|id| id == g.id()))
            .count();
        let default = gateways[..offered]
            .iter()
            .find(|g| lineup.default.as_deref() == Some(g.id()))
            .or_else(|| gateways[..offered].first())
            .map(|g| g.id());
        Ok(Registry {
            gateways,
            offered,
            default,
        })
    }

    /// Any gateway of this portal, offered or kept for payments already made.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Gateway>> {
        self.gateways.iter().find(|g| g.id() == id)
    }

    /// A gateway members may pay with now.
    pub fn get_offered(&self, id: &str) -> Option<&Arc<dyn Gateway>> {
        self.all().iter().find(|g| g.id() == id)
    }

    /// The gateways offered to members, in the order they see them. Those kept only for the
    /// payments already made are not listed: `get` finds them.
    pub fn all(&self) -> &[Arc<dyn Gateway>] {
        &self.gateways[..self.offered]
    }

    /// The gateway pre-selected in the member's pay form.
    pub fn default_id(&self) -> Option<&'static str> {
        self.default
    }
}

/// The connector of gateway `id`, configured by `settings`.
pub fn connector(
    id: &str,
    settings: &Settings,
    base_url: &str,
    http: reqwest::Client,
) -> anyhow::Result<Arc<dyn Gateway>> {
    Ok(match id {
        "sandbox" => Arc::new(sandbox::SandboxGateway::new(
            &settings.sandbox,
            base_url,
            http,
        )),
        "helloasso" => Arc::new(helloasso::HelloAssoGateway::new(settings, base_url, http)),
        "stripe" => Arc::new(stripe::StripeGateway::new(settings, base_url, http)),
        "mollie" => Arc::new(mollie::MollieGateway::new(settings, base_url, http)),
        "payplug" => Arc::new(payplug::PayPlugGateway::new(settings, base_url, http)),
        "paypal" => Arc::new(paypal::PayPalGateway::new(settings, base_url, http)),
        "payzen" => Arc::new(payzen::PayZenGateway::new(settings, base_url, http)),
        "stancer" => Arc::new(stancer::StancerGateway::new(settings, base_url, http)),
        other => anyhow::bail!("unknown gateway {other:?} in settings.gateways"),
    })
}

/// The registry in use, replaced as a whole when an admin changes the gateways' settings.
/// Callers take the `current()` one and keep it for the length of their work.
#[derive(Clone)]
pub struct RegistryHandle {
    current: Arc<RwLock<Arc<Registry>>>,
}

impl RegistryHandle {
    pub fn new(registry: Registry) -> RegistryHandle {
        RegistryHandle {
            current: Arc::new(RwLock::new(Arc::new(registry))),
        }
    }

    pub fn current(&self) -> Arc<Registry> {
        // A writer cannot panic while holding the lock (it only swaps an Arc), so a poisoned
        // lock still holds a whole registry.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, registry: Registry) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(registry);
    }
}
