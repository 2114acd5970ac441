//! obole's connector for Mollie (Payments API v2): a hosted checkout created with a Bearer
//! API key, an unsigned webhook that only carries the payment's id (so every notification is
//! a hint, confirmed by fetching the payment with obole's own key), refunds and cancellation.

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundOutcome, RefundRequest,
};
use crate::config::Settings;
use transformers::{
    MollieAmount, MollieCreatePayment, MollieCreateRefund, MollieError, MollieMetadata,
    MolliePayment, MollieRefund, MollieRefundMetadata, MollieWebhook,
};

pub use transformers::parse_value;

/// Mollie's one host: test or live is chosen by the key.
pub const LIVE_API_BASE: &str = "https://api.mollie.com";

/// The emulator's test key, the default of the settings.
pub const EMULATOR_TEST_KEY: &str = "test_oboleEmulatorKey0000000000000";

/// Settings of the Mollie connector (`[mollie]` in the file, `OBOLE_MOLLIE__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MollieSettings {
    /// Point the connector at obole's own emulator (`/sandbox/mollie/`) with its test keys.
    pub emulator: bool,
    /// Where the API lives (`https://api.mollie.com` unless the emulator or a test says).
    pub api_base: Option<String>,
    /// The website profile's API key: `test_…` or `live_…` (the prefix decides the mode).
    pub api_key: SecretString,
}

impl Default for MollieSettings {
    fn default() -> Self {
        MollieSettings {
            emulator: false,
            api_base: None,
            api_key: SecretString::from(EMULATOR_TEST_KEY),
        }
    }
}

pub struct MollieGateway {
    api_base: String,
    api_key: SecretString,
    http: reqwest::Client,
}

impl MollieGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let mollie = &settings.mollie;
        let api_base = match (&mollie.api_base, mollie.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!("{}/sandbox/mollie", base_url.trim_end_matches('/')),
            (None, false) => LIVE_API_BASE.to_string(),
        };
        MollieGateway {
            api_base,
            api_key: mollie.api_key.clone(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.api_base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        request
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .context("Mollie API unreachable")
            .map_err(GatewayError::Unavailable)
    }

    /// `GET /v2/payments/{id}?embed=refunds`: the payment with its refunds in one answer.
    async fn get_payment(&self, id: &str) -> Result<reqwest::Response, GatewayError> {
        self.send(
            self.http
                .get(self.url(&format!("payments/{id}")))
                .query(&[("embed", "refunds")]),
        )
        .await
    }
}

/// Mollie's ids are a prefix and letters or digits; anything else never reaches a URL.
fn valid_id(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The body of a 2xx answer, or Mollie's problem detail for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    super::read_answer(response, "Mollie", |e: MollieError| Some(e.message())).await
}

fn report_of(payment: MolliePayment) -> Result<GatewayReport, GatewayError> {
    payment
        .into_report()
        .map_err(|e| GatewayError::Unavailable(anyhow::anyhow!("unreadable Mollie payment: {e}")))
}

#[async_trait]
impl Gateway for MollieGateway {
    fn id(&self) -> &'static str {
        "mollie"
    }

    fn display_name(&self) -> &'static str {
        "Mollie"
    }

    fn test_mode(&self) -> bool {
        !self.api_key.expose_secret().starts_with("live_")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: true,
            fees: false,
            saved_cards: false,
            installments: false,
            verification: "unsigned webhook (payment id only): the payment is fetched again with the API key",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let description: String = request.description.chars().take(255).collect();
        let body = MollieCreatePayment {
            amount: MollieAmount::new(request.amount, &request.currency),
            description: &description,
            redirect_url: &request.return_url,
            cancel_url: &request.cancel_url,
            webhook_url: &request.notification_url,
            metadata: MollieMetadata {
                payment_id: &request.payment_id,
            },
            locale: "fr_FR",
        };
        let response = self
            .send(
                self.http
                    .post(self.url("payments"))
                    .header("Idempotency-Key", &request.payment_id)
                    .json(&body),
            )
            .await?;
        let payment: MolliePayment = read_json(response).await?;
        let redirect_url = payment.checkout_url().ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("Mollie gave no checkout link"))
        })?;
        Ok(Checkout {
            gateway_ref: payment.id,
            redirect_url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let hint: MollieWebhook = serde_urlencoded::from_bytes(notification.body)
            .map_err(|e| NotificationError::Malformed(format!("no payment id: {e}")))?;
        if !valid_id(&hint.id, "tr_") {
            return Err(NotificationError::Malformed(format!(
                "{:?} is not a Mollie payment id",
                hint.id
            )));
        }
        let response = self
            .get_payment(&hint.id)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        // Mollie answers 404 for a payment this key cannot see: nothing of ours.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let payment: MolliePayment = read_json(response)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        report_of(payment)
            .map(Some)
            .map_err(|e| NotificationError::Unverifiable(e.into()))
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        if !valid_id(gateway_ref, "tr_") {
            return Err(GatewayError::Rejected(format!(
                "{gateway_ref:?} n'est pas un paiement Mollie"
            )));
        }
        let payment: MolliePayment = read_json(self.get_payment(gateway_ref).await?).await?;
        report_of(payment)
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if !valid_id(&request.gateway_ref, "tr_") {
            return Err(GatewayError::Rejected("paiement Mollie inconnu".into()));
        }
        let response = self
            .send(
                self.http
                    .post(self.url(&format!("payments/{}/refunds", request.gateway_ref)))
                    .header("Idempotency-Key", &request.idempotency_key)
                    .json(&MollieCreateRefund {
                        amount: MollieAmount::new(request.amount, &request.currency),
                        description: "Remboursement",
                        metadata: MollieRefundMetadata {
                            payment_id: &request.payment_id,
                            refund_id: &request.idempotency_key,
                        },
                    }),
            )
            .await?;
        let refund: MollieRefund = read_json(response).await?;
        let amount = refund
            .amount
            .money()
            .map_err(|e| GatewayError::Unavailable(anyhow::anyhow!("unreadable refund: {e}")))?;
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount,
            status: refund.status.into(),
        })
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn cancel(&self, gateway_ref: &str) -> Result<(), GatewayError> {
        if !valid_id(gateway_ref, "tr_") {
            return Err(GatewayError::Rejected("paiement Mollie inconnu".into()));
        }
        let response = self
            .send(
                self.http
                    .delete(self.url(&format!("payments/{gateway_ref}"))),
            )
            .await?;
        read_json::<MolliePayment>(response).await.map(|_| ())
    }

    /// `GET /v2/methods`: the methods the key's website profile has activated. The key's
    /// prefix tells the mode.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        let response = self.send(self.http.get(self.url("methods"))).await?;
        read_json::<serde_json::Value>(response).await?;
        Ok(ConnectionCheck {
            live: !self.test_mode(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_reach_a_url() {
        assert!(valid_id("tr_7UhSN1zuXS", "tr_"));
        for bad in ["tr_", "re_abc", "tr_../refunds", "tr_a?b", "tr_a/b", ""] {
            assert!(!valid_id(bad, "tr_"), "{bad:?}");
        }
    }

    #[test]
    fn the_key_prefix_decides_the_mode() {
        let mut settings = Settings::default();
        let gateway = MollieGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(gateway.test_mode());
        settings.mollie.api_key = SecretString::from("live_abc");
        let gateway = MollieGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(!gateway.test_mode());
        assert_eq!(gateway.api_base, LIVE_API_BASE);
        settings.mollie.emulator = true;
        let gateway = MollieGateway::new(&settings, "http://x/", reqwest::Client::new());
        assert_eq!(
            gateway.url("payments"),
            "http://x/sandbox/mollie/v2/payments"
        );
    }
}
