//! obole's connector for the sandbox gateway: a real HTTP client of the sandbox API
//! (served by `crate::sandbox`, or by another obole acting as the sandbox), verifying
//! notifications by HMAC-SHA256 over the raw body.

use anyhow::Context;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundFact, RefundOutcome, RefundRequest,
    RefundStatus,
};
use crate::config::SandboxSettings;
use crate::domain::{Money, PaymentStatus};

pub const SIGNATURE_HEADER: &str = "X-Sandbox-Signature";

pub struct SandboxGateway {
    api_base: String,
    api_key: SecretString,
    webhook_secret: SecretString,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct SandboxCreatePayment<'a> {
    amount: i64,
    currency: &'a str,
    reference: &'a str,
    description: &'a str,
    customer_email: &'a str,
    return_url: &'a str,
    error_url: &'a str,
    cancel_url: &'a str,
    notification_url: &'a str,
}

#[derive(Deserialize)]
struct SandboxPayment {
    id: String,
    status: SandboxStatus,
    amount: i64,
    currency: String,
    reference: String,
    #[serde(default)]
    fee: Option<i64>,
    livemode: bool,
    #[serde(default)]
    hosted_url: Option<String>,
    #[serde(default)]
    refunds: Vec<SandboxRefund>,
}

#[derive(Deserialize)]
struct SandboxRefund {
    id: String,
    amount: i64,
    status: String,
}

#[derive(Serialize)]
struct SandboxCreateRefund<'a> {
    payment: &'a str,
    amount: i64,
}

#[derive(Deserialize)]
struct SandboxEvent {
    id: String,
    data: SandboxPayment,
}

#[derive(Deserialize)]
struct SandboxAccount {
    livemode: bool,
}

#[derive(Deserialize)]
struct SandboxErrorBody {
    error: SandboxErrorDetail,
}

#[derive(Deserialize)]
struct SandboxErrorDetail {
    message: String,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SandboxStatus {
    Open,
    Succeeded,
    Refused,
    Error,
    Cancelled,
    Expired,
    #[serde(other)]
    Unknown,
}

/// The one place where sandbox statuses become obole's: anything unknown is still pending.
impl From<SandboxStatus> for PaymentStatus {
    fn from(status: SandboxStatus) -> PaymentStatus {
        match status {
            SandboxStatus::Open | SandboxStatus::Unknown => PaymentStatus::Pending,
            SandboxStatus::Succeeded => PaymentStatus::Paid,
            SandboxStatus::Refused | SandboxStatus::Error => PaymentStatus::Failed,
            SandboxStatus::Cancelled => PaymentStatus::Cancelled,
            SandboxStatus::Expired => PaymentStatus::Expired,
        }
    }
}

impl SandboxPayment {
    fn into_report(self, event_id: Option<String>) -> GatewayReport {
        let status = PaymentStatus::from(self.status);
        let report = GatewayReport {
            gateway_ref: self.id,
            reference: Some(self.reference),
            status,
            amount: Money::from_cents(self.amount),
            currency: self.currency,
            live: self.livemode,
            event_id,
            captures: Vec::new(),
            refunds: self
                .refunds
                .into_iter()
                .filter(|r| r.status == "succeeded")
                .map(|r| RefundFact {
                    id: r.id,
                    amount: Money::from_cents(r.amount),
                })
                .collect(),
            saved_method: None,
        };
        if status == PaymentStatus::Paid {
            report.paid_in_full(self.fee.map(Money::from_cents))
        } else {
            report
        }
    }
}

impl SandboxGateway {
    pub fn new(settings: &SandboxSettings, base_url: &str, http: reqwest::Client) -> Self {
        let api_base = settings
            .api_base
            .clone()
            .unwrap_or_else(|| format!("{}/sandbox/api", base_url.trim_end_matches('/')));
        SandboxGateway {
            api_base,
            api_key: settings.api_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            http,
        }
    }

    async fn read_payment(response: reqwest::Response) -> Result<SandboxPayment, GatewayError> {
        read_json(response).await
    }
}

/// The body of a 2xx answer, or the sandbox's error message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return response
            .json::<T>()
            .await
            .context("unreadable sandbox answer")
            .map_err(GatewayError::Unavailable);
    }
    let body = response.text().await.unwrap_or_default();
    if status.is_client_error() {
        let message = serde_json::from_str::<SandboxErrorBody>(&body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        Err(GatewayError::Rejected(message))
    } else {
        Err(GatewayError::Unavailable(anyhow::anyhow!(
            "sandbox answered HTTP {status}"
        )))
    }
}

#[async_trait]
impl Gateway for SandboxGateway {
    fn id(&self) -> &'static str {
        "sandbox"
    }

    fn display_name(&self) -> &'static str {
        crate::i18n::current().t("sandbox.gateway_name")
    }

    fn test_mode(&self) -> bool {
        true
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: true,
            fees: true,
            saved_cards: false,
            installments: false,
            verification: "HMAC-SHA256 of the raw body (X-Sandbox-Signature)",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let body = SandboxCreatePayment {
            amount: request.amount.cents(),
            currency: &request.currency,
            reference: &request.payment_id,
            description: &request.description,
            customer_email: &request.payer_email,
            return_url: &request.return_url,
            error_url: &request.error_url,
            cancel_url: &request.cancel_url,
            notification_url: &request.notification_url,
        };
        let response = self
            .http
            .post(format!("{}/v1/payments", self.api_base))
            .bearer_auth(self.api_key.expose_secret())
            .header("Idempotency-Key", &request.payment_id)
            .json(&body)
            .send()
            .await
            .context("sandbox API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let payment = Self::read_payment(response).await?;
        let redirect_url = payment.hosted_url.clone().ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("sandbox gave no hosted page"))
        })?;
        Ok(Checkout {
            gateway_ref: payment.id,
            redirect_url,
        })
    }

    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let signature = notification
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| NotificationError::Forged("no signature".into()))?;
        let hex_signature = signature
            .strip_prefix("sha256=")
            .ok_or_else(|| NotificationError::Forged("unexpected signature format".into()))?;
        let expected = hex::decode(hex_signature)
            .map_err(|_| NotificationError::Forged("signature is not hex".into()))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.webhook_secret.expose_secret().as_bytes())
                .map_err(|_| NotificationError::Unverifiable(anyhow::anyhow!("unusable secret")))?;
        mac.update(notification.body);
        mac.verify_slice(&expected)
            .map_err(|_| NotificationError::Forged("signature does not match".into()))?;
        let event: SandboxEvent = serde_json::from_slice(notification.body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        Ok(Some(event.data.into_report(Some(event.id))))
    }

    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        let response = self
            .http
            .get(format!("{}/v1/payments/{gateway_ref}", self.api_base))
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .context("sandbox API unreachable")
            .map_err(GatewayError::Unavailable)?;
        Ok(Self::read_payment(response).await?.into_report(None))
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let response = self
            .http
            .post(format!("{}/v1/refunds", self.api_base))
            .bearer_auth(self.api_key.expose_secret())
            .header("Idempotency-Key", &request.idempotency_key)
            .json(&SandboxCreateRefund {
                payment: &request.gateway_ref,
                amount: request.amount.cents(),
            })
            .send()
            .await
            .context("sandbox API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let refund: SandboxRefund = read_json(response).await?;
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount: Money::from_cents(refund.amount),
            status: match refund.status.as_str() {
                "succeeded" => RefundStatus::Succeeded,
                "failed" => RefundStatus::Failed,
                _ => RefundStatus::Pending,
            },
        })
    }

    async fn cancel(&self, gateway_ref: &str) -> Result<(), GatewayError> {
        let response = self
            .http
            .post(format!(
                "{}/v1/payments/{gateway_ref}/cancel",
                self.api_base
            ))
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .context("sandbox API unreachable")
            .map_err(GatewayError::Unavailable)?;
        Self::read_payment(response).await.map(|_| ())
    }

    /// `GET /v1/account`: the account the key belongs to.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        let response = self
            .http
            .get(format!("{}/v1/account", self.api_base))
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .context("sandbox API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let account: SandboxAccount = read_json(response).await?;
        Ok(ConnectionCheck {
            live: account.livemode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_exhaustively_and_unknown_is_pending() {
        let cases = [
            ("\"open\"", PaymentStatus::Pending),
            ("\"succeeded\"", PaymentStatus::Paid),
            ("\"refused\"", PaymentStatus::Failed),
            ("\"error\"", PaymentStatus::Failed),
            ("\"cancelled\"", PaymentStatus::Cancelled),
            ("\"expired\"", PaymentStatus::Expired),
            ("\"something_new\"", PaymentStatus::Pending),
        ];
        for (wire, expected) in cases {
            let status: SandboxStatus = serde_json::from_str(wire).unwrap();
            assert_eq!(PaymentStatus::from(status), expected, "{wire}");
        }
    }
}
