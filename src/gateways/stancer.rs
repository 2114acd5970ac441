//! obole's connector for Stancer (placeholder until the connector lands: never enabled).

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    Capabilities, Checkout, CheckoutRequest, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundOutcome, RefundRequest,
};
use crate::config::Settings;

/// Settings of the Stancer connector (`[stancer]` in the file, `OBOLE_STANCER__*` in the environment).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StancerSettings {
    /// Point the connector at obole's own emulator (`/sandbox/stancer/`) with its test keys.
    pub emulator: bool,
}

pub struct StancerGateway;

impl StancerGateway {
    pub fn new(_settings: &Settings, _base_url: &str, _http: reqwest::Client) -> Self {
        StancerGateway
    }
}

#[async_trait]
impl Gateway for StancerGateway {
    fn id(&self) -> &'static str {
        "stancer"
    }

    fn display_name(&self) -> &'static str {
        "Stancer"
    }

    fn test_mode(&self) -> bool {
        true
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: false,
            partial_refund: false,
            cancel: false,
            fees: false,
            saved_cards: false,
            installments: false,
            verification: "not available yet",
        }
    }

    async fn create_payment(&self, _request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        Err(GatewayError::Unsupported("take payments yet"))
    }

    async fn verify_notification(
        &self,
        _notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        Err(NotificationError::Malformed(
            "connector not available yet".into(),
        ))
    }

    async fn fetch_payment(&self, _gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        Err(GatewayError::Unsupported("fetch payments yet"))
    }

    async fn refund(&self, _request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        Err(GatewayError::Unsupported("refund yet"))
    }
}
