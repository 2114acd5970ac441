//! The contract between obole and a payment gateway, and the registry of enabled gateways.
//!
//! A connector is stateless: it never touches the database. It turns obole's request into the
//! gateway's wire format, and the gateway's answers and notifications into a [`GatewayReport`]
//! (verified facts), mapping statuses in one exhaustive place.

pub mod sandbox;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// What obole asks a gateway for when a member clicks "pay".
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// obole's attempt id, given to the gateway as its reference.
    pub payment_id: String,
    pub amount: Money,
    pub currency: String,
    pub description: String,
    pub payer_email: String,
    pub payer_first_name: String,
    pub payer_last_name: String,
    pub return_url: String,
    pub cancel_url: String,
    pub notification_url: String,
}

/// The payment created at the gateway, and where to send the member.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub gateway_ref: String,
    pub redirect_url: String,
}

/// Facts about a payment that obole has verified came from the gateway.
#[derive(Debug, Clone)]
pub struct GatewayReport {
    pub gateway_ref: String,
    /// obole's attempt id as the gateway echoes it back.
    pub reference: Option<String>,
    pub status: PaymentStatus,
    /// What the gateway says was paid (or asked for, while unpaid).
    pub amount: Money,
    pub currency: String,
    pub fee: Option<Money>,
    pub live: bool,
    pub event_id: Option<String>,
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
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError>;
    /// Proves a notification authentic (signature, or a fresh fetch from the gateway's API)
    /// and reports what it says.
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<GatewayReport, NotificationError>;
    /// Asks the gateway for the current state of a payment.
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError>;
}

/// The gateways enabled on this portal, in the order members see them.
#[derive(Clone, Default)]
pub struct Registry {
    gateways: Vec<Arc<dyn Gateway>>,
}

impl Registry {
    pub fn from_settings(
        settings: &Settings,
        base_url: &str,
        http: reqwest::Client,
    ) -> anyhow::Result<Registry> {
        let mut gateways: Vec<Arc<dyn Gateway>> = Vec::new();
        for id in &settings.gateways {
            match id.as_str() {
                "sandbox" => gateways.push(Arc::new(sandbox::SandboxGateway::new(
                    &settings.sandbox,
                    base_url,
                    http.clone(),
                ))),
                other => anyhow::bail!("unknown gateway {other:?} in settings.gateways"),
            }
        }
        Ok(Registry { gateways })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Gateway>> {
        self.gateways.iter().find(|g| g.id() == id)
    }

    pub fn all(&self) -> &[Arc<dyn Gateway>] {
        &self.gateways
    }
}
