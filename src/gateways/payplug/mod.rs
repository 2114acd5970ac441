//! obole's connector for PayPlug (REST API v1, hosted payment page). PayPlug's notifications
//! are unsigned copies of a resource: they only name the payment, which the connector then
//! reads with its own secret key; only that read is trusted.

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::transformers::{
    PayPlugAbort, PayPlugCreatePayment, PayPlugCreateRefund, PayPlugCustomer, PayPlugErrorBody,
    PayPlugHostedRequest, PayPlugList, PayPlugMetadata, PayPlugNotification, PayPlugPayment,
    PayPlugRefund, PayPlugRefundMetadata, PayPlugShipping, is_plausible_id, status_of,
};
use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundFact, RefundOutcome, RefundRequest,
    RefundStatus,
};
use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// The API version obole speaks; every call pins it so that PayPlug never changes the format
/// under obole's feet.
pub const API_VERSION: &str = "2019-08-06";
/// The secret key obole's emulator accepts (a test key: PayPlug's mode is the key's prefix).
pub const EMULATOR_SECRET_KEY: &str = "sk_test_obole_payplug_emulator_key";

const LIVE_API_BASE: &str = "https://api.payplug.com";

/// Settings of the PayPlug connector (`[payplug]` in the file, `OBOLE_PAYPLUG__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PayPlugSettings {
    /// Point the connector at obole's own emulator (`/sandbox/payplug/`) with its test keys.
    pub emulator: bool,
    /// Where the API is (`https://api.payplug.com` when not emulated).
    pub api_base: Option<String>,
    /// `sk_test_…` or `sk_live_…`: the key's prefix decides the mode.
    pub secret_key: SecretString,
}

impl Default for PayPlugSettings {
    fn default() -> Self {
        PayPlugSettings {
            emulator: false,
            api_base: None,
            secret_key: SecretString::from(EMULATOR_SECRET_KEY),
        }
    }
}

pub struct PayPlugGateway {
    api_base: String,
    secret_key: SecretString,
    http: reqwest::Client,
}

impl PayPlugGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let own = &settings.payplug;
        let api_base = match (&own.api_base, own.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!("{}/sandbox/payplug", base_url.trim_end_matches('/')),
            (None, false) => LIVE_API_BASE.to_string(),
        };
        PayPlugGateway {
            api_base,
            secret_key: own.secret_key.clone(),
            http,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v1/{path}", self.api_base))
            .bearer_auth(self.secret_key.expose_secret())
            .header("PayPlug-Version", API_VERSION)
            .header("Accept", "application/json")
    }

    async fn send<T: serde::de::DeserializeOwned>(
        request: reqwest::RequestBuilder,
    ) -> Result<T, GatewayError> {
        let response = request
            .send()
            .await
            .context("PayPlug API unreachable")
            .map_err(GatewayError::Unavailable)?;
        read_json(response).await
    }

    async fn read_payment(&self, id: &str) -> Result<PayPlugPayment, GatewayError> {
        if !is_plausible_id(id) {
            return Err(GatewayError::Rejected(format!(
                "identifiant de paiement PayPlug invalide : {id:?}"
            )));
        }
        Self::send(self.request(reqwest::Method::GET, &format!("payments/{id}"))).await
    }

    async fn read_refunds(&self, id: &str) -> Result<Vec<PayPlugRefund>, GatewayError> {
        let list: PayPlugList<PayPlugRefund> =
            Self::send(self.request(reqwest::Method::GET, &format!("payments/{id}/refunds")))
                .await?;
        Ok(list.data)
    }

    /// The payment as PayPlug has it now, with its refunds, as verified facts.
    async fn report(&self, id: &str) -> Result<GatewayReport, GatewayError> {
        let payment = self.read_payment(id).await?;
        // The payment only carries the refunded total; each refund is posted by its own id.
        let refunds = if payment.amount_refunded > 0 {
            self.read_refunds(&payment.id).await?
        } else {
            Vec::new()
        };
        Ok(into_report(payment, refunds))
    }
}

fn into_report(payment: PayPlugPayment, refunds: Vec<PayPlugRefund>) -> GatewayReport {
    let status = status_of(&payment);
    let report = GatewayReport {
        reference: payment.reference(),
        gateway_ref: payment.id,
        status,
        amount: Money::from_cents(payment.amount),
        currency: payment.currency,
        live: payment.is_live,
        event_id: None,
        captures: Vec::new(),
        refunds: refunds
            .into_iter()
            .map(|r| RefundFact {
                id: r.id,
                amount: Money::from_cents(r.amount),
            })
            .collect(),
        saved_method: None,
    };
    if status == PaymentStatus::Paid {
        // PayPlug's payment object carries no fee: fees are only in its accounting reports.
        report.paid_in_full(None)
    } else {
        report
    }
}

/// The body of a 2xx answer, or PayPlug's message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    // A refused key is obole's misconfiguration, not a verdict on the request: callers treat
    // it like an outage (a notification is then answered 503 and PayPlug retries).
    if matches!(status.as_u16(), 401 | 403) {
        return Err(GatewayError::Unavailable(anyhow::anyhow!(
            "PayPlug refused the secret key (HTTP {status})"
        )));
    }
    super::read_answer(response, "PayPlug", |b: PayPlugErrorBody| {
        Some(b.describe())
    })
    .await
}

#[async_trait]
impl Gateway for PayPlugGateway {
    fn id(&self) -> &'static str {
        "payplug"
    }

    fn display_name(&self) -> &'static str {
        "PayPlug"
    }

    fn test_mode(&self) -> bool {
        !self.secret_key.expose_secret().starts_with("sk_live_")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: true,
            fees: false,
            saved_cards: false,
            installments: false,
            verification: "unsigned notification: the payment is re-read (GET /v1/payments/{id}) with the secret key",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let customer = || PayPlugCustomer {
            first_name: &request.payer_first_name,
            last_name: &request.payer_last_name,
            email: &request.payer_email,
            language: "fr",
        };
        let body = PayPlugCreatePayment {
            amount: request.amount.cents(),
            currency: &request.currency,
            billing: customer(),
            shipping: PayPlugShipping {
                customer: customer(),
                delivery_type: "DIGITAL_GOODS",
            },
            // PayPlug has no error URL: a failed payment comes back on the return URL.
            hosted_payment: PayPlugHostedRequest {
                return_url: &request.return_url,
                cancel_url: &request.cancel_url,
            },
            notification_url: &request.notification_url,
            description: &request.description,
            metadata: PayPlugMetadata {
                obole_payment_id: &request.payment_id,
            },
        };
        // PayPlug documents no idempotency key: the attempt id travels in the metadata, and
        // obole records the returned id before redirecting.
        let payment: PayPlugPayment =
            Self::send(self.request(reqwest::Method::POST, "payments").json(&body)).await?;
        let redirect_url = payment
            .hosted_payment
            .as_ref()
            .and_then(|h| h.payment_url.clone())
            .ok_or_else(|| {
                GatewayError::Unavailable(anyhow::anyhow!("PayPlug gave no payment page"))
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
        let hint: PayPlugNotification = serde_json::from_slice(notification.body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let payment_id = match hint.object.as_str() {
            "payment" => hint.id,
            "refund" => hint.payment_id.ok_or_else(|| {
                NotificationError::Malformed("a refund without its payment_id".into())
            })?,
            // Installment plans and accounting reports are nothing obole starts.
            _ => return Ok(None),
        };
        if !is_plausible_id(&payment_id) {
            return Err(NotificationError::Malformed(format!(
                "not a PayPlug id: {payment_id:?}"
            )));
        }
        match self.report(&payment_id).await {
            Ok(report) => Ok(Some(report)),
            // PayPlug does not know this payment under obole's key: not one of its notifications.
            Err(GatewayError::Rejected(message)) => Err(NotificationError::Forged(message)),
            Err(GatewayError::Unavailable(e)) => Err(NotificationError::Unverifiable(e)),
            Err(GatewayError::Unsupported(what)) => {
                Err(NotificationError::Unverifiable(anyhow::anyhow!(what)))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        self.report(gateway_ref).await
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if !is_plausible_id(&request.gateway_ref) {
            return Err(GatewayError::Rejected(
                "identifiant PayPlug invalide".into(),
            ));
        }
        let body = PayPlugCreateRefund {
            amount: request.amount.cents(),
            metadata: PayPlugRefundMetadata {
                obole_refund_id: &request.idempotency_key,
            },
        };
        let refund: PayPlugRefund = Self::send(
            self.request(
                reqwest::Method::POST,
                &format!("payments/{}/refunds", request.gateway_ref),
            )
            .json(&body),
        )
        .await?;
        // A refund PayPlug answers with exists: it has no pending state.
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount: Money::from_cents(refund.amount),
            status: RefundStatus::Succeeded,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn cancel(&self, gateway_ref: &str) -> Result<(), GatewayError> {
        if !is_plausible_id(gateway_ref) {
            return Err(GatewayError::Rejected(
                "identifiant PayPlug invalide".into(),
            ));
        }
        let _: PayPlugPayment = Self::send(
            self.request(reqwest::Method::PATCH, &format!("payments/{gateway_ref}"))
                .json(&PayPlugAbort { aborted: true }),
        )
        .await?;
        Ok(())
    }

    /// `GET /v1/payments?per_page=1`: the list call, the cheapest one the key may make. Here
    /// a refused key is the answer sought, not an outage. The key's prefix tells the mode.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        let response = self
            .request(reqwest::Method::GET, "payments")
            .query(&[("page", "0"), ("per_page", "1")])
            .send()
            .await
            .context("PayPlug API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            let body = response.text().await.unwrap_or_default();
            return Err(GatewayError::Rejected(
                serde_json::from_str::<PayPlugErrorBody>(&body)
                    .map(|b| b.describe())
                    .unwrap_or_else(|_| format!("HTTP {status}")),
            ));
        }
        let _: PayPlugList<serde_json::Value> = read_json(response).await?;
        Ok(ConnectionCheck {
            live: !self.test_mode(),
        })
    }
}
