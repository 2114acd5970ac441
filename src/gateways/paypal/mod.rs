//! obole's connector for PayPal (Orders v2): an OAuth2 client-credentials token (cached until
//! it expires), an order created with obole's attempt id as `custom_id` and `invoice_id`, the
//! payer sent to PayPal's approval page, and the capture made by obole once the order is
//! approved (on the member's return, a notification or the sweep: whoever reads the order
//! first). Webhooks are believed only after PayPal's `verify-webhook-signature` answers
//! `SUCCESS`; legacy IPNs only after the `_notify-validate` postback answers `VERIFIED`; both
//! are then reported from the order as PayPal's API gives it.

mod transformers;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundOutcome, RefundRequest,
};
use crate::config::Settings;
use transformers::{
    PayPalCapture, PayPalCreateOrder, PayPalError, PayPalEvent, PayPalExperienceContext, PayPalIpn,
    PayPalMoney, PayPalOrder, PayPalPaymentSource, PayPalPurchaseUnitRequest, PayPalRefund,
    PayPalRefundRequest, PayPalToken, PayPalVerifyRequest, PayPalVerifyResponse, PayPalWallet,
};

pub use transformers::parse_value;

pub const LIVE_API_BASE: &str = "https://api-m.paypal.com";
pub const SANDBOX_API_BASE: &str = "https://api-m.sandbox.paypal.com";
pub const LIVE_IPN_URL: &str = "https://ipnpb.paypal.com/cgi-bin/webscr";
pub const SANDBOX_IPN_URL: &str = "https://ipnpb.sandbox.paypal.com/cgi-bin/webscr";

/// The emulator's REST app and webhook, the defaults of the settings.
pub const EMULATOR_CLIENT_ID: &str = "AeObole-Emulator-Client-0000000000000000";
pub const EMULATOR_CLIENT_SECRET: &str = "EObole-Emulator-Secret-00000000000000000";
pub const EMULATOR_WEBHOOK_ID: &str = "8PT597110X687430LKGECATA";

/// A token is renewed this long before PayPal says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Settings of the PayPal connector (`[paypal]` in the file, `OBOLE_PAYPAL__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PayPalSettings {
    /// Point the connector at obole's own emulator (`/sandbox/paypal/`) with its test keys.
    pub emulator: bool,
    /// Where the REST API lives (PayPal's sandbox or live host unless the emulator or a test says).
    pub api_base: Option<String>,
    /// Where IPN messages are validated (PayPal's `ipnpb` host for the mode unless set).
    pub ipn_url: Option<String>,
    /// The live REST app; false means PayPal's sandbox (test mode).
    pub live: bool,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The webhook subscribed in the REST app: PayPal checks signatures against it.
    pub webhook_id: String,
}

impl Default for PayPalSettings {
    fn default() -> Self {
        PayPalSettings {
            emulator: false,
            api_base: None,
            ipn_url: None,
            live: false,
            client_id: EMULATOR_CLIENT_ID.into(),
            client_secret: SecretString::from(EMULATOR_CLIENT_SECRET),
            webhook_id: EMULATOR_WEBHOOK_ID.into(),
        }
    }
}

pub struct PayPalGateway {
    api_base: String,
    ipn_url: String,
    live: bool,
    client_id: String,
    client_secret: SecretString,
    webhook_id: String,
    http: reqwest::Client,
    token: Mutex<Option<(SecretString, Instant)>>,
}

impl PayPalGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let paypal = &settings.paypal;
        let api_base = match (&paypal.api_base, paypal.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!("{}/sandbox/paypal", base_url.trim_end_matches('/')),
            (None, false) if paypal.live => LIVE_API_BASE.to_string(),
            (None, false) => SANDBOX_API_BASE.to_string(),
        };
        let ipn_url = match (
            &paypal.ipn_url,
            paypal.emulator || paypal.api_base.is_some(),
        ) {
            (Some(url), _) => url.clone(),
            (None, true) => format!("{api_base}/cgi-bin/webscr"),
            (None, false) if paypal.live => LIVE_IPN_URL.to_string(),
            (None, false) => SANDBOX_IPN_URL.to_string(),
        };
        PayPalGateway {
            api_base,
            ipn_url,
            live: paypal.live,
            client_id: paypal.client_id.clone(),
            client_secret: paypal.client_secret.clone(),
            webhook_id: paypal.webhook_id.clone(),
            http,
            token: Mutex::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.api_base)
    }

    /// A Bearer token, from the cache while it is valid.
    async fn token(&self) -> Result<SecretString, GatewayError> {
        if let Ok(cached) = self.token.lock()
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(self.url("v1/oauth2/token"))
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .context("PayPal token endpoint unreachable")
            .map_err(GatewayError::Unavailable)?;
        let token: PayPalToken = read_json(response).await?;
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(TOKEN_MARGIN);
        let secret = SecretString::from(token.access_token);
        if let Ok(mut cached) = self.token.lock() {
            *cached = Some((secret.clone(), Instant::now() + lifetime));
        }
        Ok(secret)
    }

    fn forget_token(&self) {
        if let Ok(mut cached) = self.token.lock() {
            *cached = None;
        }
    }

    /// Sends an authenticated request; a 401 (token revoked or expired early) is retried
    /// once with a fresh token.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let response = build()
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .context("PayPal API unreachable")
                .map_err(GatewayError::Unavailable)?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token();
                continue;
            }
            return Ok(response);
        }
        Err(GatewayError::Unavailable(anyhow::anyhow!(
            "PayPal refused two fresh tokens"
        )))
    }

    async fn get_order(&self, id: &str) -> Result<reqwest::Response, GatewayError> {
        self.send(|| self.http.get(self.url(&format!("v2/checkout/orders/{id}"))))
            .await
    }

    /// Captures an approved order; the request id makes a second capture (the return and a
    /// notification racing) give back the first one's result.
    async fn capture(&self, id: &str) -> Result<PayPalOrder, GatewayError> {
        let response = self
            .send(|| {
                self.http
                    .post(self.url(&format!("v2/checkout/orders/{id}/capture")))
                    .header("PayPal-Request-Id", format!("capture-{id}"))
                    .header("Prefer", "return=representation")
                    .json(&serde_json::json!({}))
            })
            .await?;
        match read_json_or_error(response).await? {
            Ok(order) => Ok(order),
            // Captured already by someone else, or not approvable any more: read it as it is.
            Err(error)
                if error.has_issue("ORDER_ALREADY_CAPTURED")
                    || error.has_issue("ORDER_NOT_APPROVED") =>
            {
                read_json(self.get_order(id).await?).await
            }
            Err(error) => Err(GatewayError::Rejected(error.describe())),
        }
    }

    /// The order's report, capturing it first if the payer approved it.
    async fn settle(&self, id: &str) -> Result<GatewayReport, GatewayError> {
        let mut order: PayPalOrder = read_json(self.get_order(id).await?).await?;
        if order.status == transformers::PayPalOrderStatus::Approved {
            order = self.capture(id).await?;
        }
        self.report_of(&order)
    }

    fn report_of(&self, order: &PayPalOrder) -> Result<GatewayReport, GatewayError> {
        let facts = order.facts().map_err(|e| {
            GatewayError::Unavailable(anyhow::anyhow!("unreadable PayPal order: {e}"))
        })?;
        Ok(GatewayReport {
            gateway_ref: order.id.clone(),
            reference: facts.reference,
            status: facts.status,
            amount: facts.amount,
            currency: facts.currency,
            live: self.live,
            event_id: None,
            captures: facts.captures,
            refunds: facts.refunds,
            saved_method: None,
        })
    }

    /// The order a capture belongs to, as PayPal's API says (never as the notification says).
    async fn order_of_capture(&self, capture_id: &str) -> Result<Option<String>, GatewayError> {
        if !valid_id(capture_id) {
            return Ok(None);
        }
        let response = self
            .send(|| {
                self.http
                    .get(self.url(&format!("v2/payments/captures/{capture_id}")))
            })
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let capture: PayPalCapture = read_json(response).await?;
        Ok(capture
            .supplementary_data
            .and_then(|s| s.related_ids.order_id))
    }

    async fn order_of_refund(&self, refund_id: &str) -> Result<Option<String>, GatewayError> {
        if !valid_id(refund_id) {
            return Ok(None);
        }
        let response = self
            .send(|| {
                self.http
                    .get(self.url(&format!("v2/payments/refunds/{refund_id}")))
            })
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let refund: PayPalRefund = read_json(response).await?;
        match refund.capture_id() {
            Some(capture_id) => self.order_of_capture(&capture_id).await,
            None => Ok(None),
        }
    }

    /// A REST webhook: PayPal itself must vouch for the transmission.
    async fn verify_webhook(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let header = |name: &str| {
            notification
                .header(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| NotificationError::Forged(format!("no {name} header")))
        };
        let auth_algo = header("PAYPAL-AUTH-ALGO")?;
        let cert_url = header("PAYPAL-CERT-URL")?;
        let transmission_id = header("PAYPAL-TRANSMISSION-ID")?;
        let transmission_sig = header("PAYPAL-TRANSMISSION-SIG")?;
        let transmission_time = header("PAYPAL-TRANSMISSION-TIME")?;
        let text = std::str::from_utf8(notification.body)
            .map_err(|_| NotificationError::Malformed("body is not UTF-8".into()))?;
        let raw: &RawValue = serde_json::from_str(text)
            .map_err(|e| NotificationError::Malformed(format!("body is not JSON: {e}")))?;
        let event: PayPalEvent = serde_json::from_str(text)
            .map_err(|e| NotificationError::Malformed(format!("not a PayPal event: {e}")))?;
        let body = PayPalVerifyRequest {
            auth_algo,
            cert_url,
            transmission_id,
            transmission_sig,
            transmission_time,
            webhook_id: &self.webhook_id,
            webhook_event: raw,
        };
        let unverifiable = |e: GatewayError| NotificationError::Unverifiable(e.into());
        let response = self
            .send(|| {
                self.http
                    .post(self.url("v1/notifications/verify-webhook-signature"))
                    .json(&body)
            })
            .await
            .map_err(unverifiable)?;
        let verdict: PayPalVerifyResponse = read_json(response).await.map_err(unverifiable)?;
        if verdict.verification_status != "SUCCESS" {
            return Err(NotificationError::Forged(format!(
                "PayPal answered {:?} to the signature check",
                verdict.verification_status
            )));
        }
        let order_id = match event.event_type.as_str() {
            "CHECKOUT.ORDER.APPROVED" | "CHECKOUT.ORDER.COMPLETED" => {
                valid_id(&event.resource.id).then(|| event.resource.id.clone())
            }
            "PAYMENT.CAPTURE.COMPLETED"
            | "PAYMENT.CAPTURE.DENIED"
            | "PAYMENT.CAPTURE.DECLINED"
            | "PAYMENT.CAPTURE.PENDING"
            | "PAYMENT.CAPTURE.REVERSED" => self
                .order_of_capture(&event.resource.id)
                .await
                .map_err(unverifiable)?,
            "PAYMENT.CAPTURE.REFUNDED" => self
                .order_of_refund(&event.resource.id)
                .await
                .map_err(unverifiable)?,
            _ => None,
        };
        let Some(order_id) = order_id else {
            return Ok(None);
        };
        let mut report = self.settle(&order_id).await.map_err(unverifiable)?;
        report.event_id = Some(event.id);
        Ok(Some(report))
    }

    /// A legacy IPN: valid only if PayPal recognises the exact bytes posted back to it.
    async fn verify_ipn(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let ipn: PayPalIpn = serde_urlencoded::from_bytes(notification.body)
            .map_err(|e| NotificationError::Malformed(format!("unreadable IPN: {e}")))?;
        let mut postback = b"cmd=_notify-validate&".to_vec();
        postback.extend_from_slice(notification.body);
        let response = self
            .http
            .post(&self.ipn_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("User-Agent", "obole-ipn-check")
            .body(postback)
            .send()
            .await
            .context("PayPal IPN endpoint unreachable")
            .map_err(NotificationError::Unverifiable)?;
        if !response.status().is_success() {
            return Err(NotificationError::Unverifiable(anyhow::anyhow!(
                "PayPal IPN endpoint answered HTTP {}",
                response.status()
            )));
        }
        let answer = response
            .text()
            .await
            .context("unreadable IPN answer")
            .map_err(NotificationError::Unverifiable)?;
        match answer.trim() {
            "VERIFIED" => {}
            "INVALID" => return Err(NotificationError::Forged("PayPal answered INVALID".into())),
            other => {
                return Err(NotificationError::Unverifiable(anyhow::anyhow!(
                    "PayPal answered {other:?} to the IPN check"
                )));
            }
        }
        let Some(txn_id) = ipn.txn_id else {
            return Ok(None);
        };
        let unverifiable = |e: GatewayError| NotificationError::Unverifiable(e.into());
        let Some(order_id) = self.order_of_capture(&txn_id).await.map_err(unverifiable)? else {
            return Ok(None);
        };
        self.settle(&order_id).await.map(Some).map_err(unverifiable)
    }
}

/// PayPal's ids are letters and digits; anything else never reaches a URL.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The body of a 2xx answer, or PayPal's error for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    read_json_or_error(response)
        .await?
        .map_err(|e| GatewayError::Rejected(e.describe()))
}

/// Like `read_json`, but hands a 4xx's error body back to the caller to look at.
async fn read_json_or_error<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<Result<T, PayPalError>, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return response
            .json::<T>()
            .await
            .map(Ok)
            .context("unreadable PayPal answer")
            .map_err(GatewayError::Unavailable);
    }
    let body = response.text().await.unwrap_or_default();
    if status.is_client_error() {
        let error = serde_json::from_str::<PayPalError>(&body).unwrap_or_else(|_| PayPalError {
            message: Some(format!("HTTP {status}")),
            ..PayPalError::default()
        });
        Ok(Err(error))
    } else {
        Err(GatewayError::Unavailable(anyhow::anyhow!(
            "PayPal answered HTTP {status}"
        )))
    }
}

#[async_trait]
impl Gateway for PayPalGateway {
    fn id(&self) -> &'static str {
        "paypal"
    }

    fn display_name(&self) -> &'static str {
        "PayPal"
    }

    fn test_mode(&self) -> bool {
        !self.live
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: false,
            fees: true,
            saved_cards: false,
            installments: false,
            verification: "webhook checked by PayPal (verify-webhook-signature), IPN by the _notify-validate postback; the order is then read from the API",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let body = PayPalCreateOrder {
            intent: "CAPTURE",
            purchase_units: [PayPalPurchaseUnitRequest {
                reference_id: &request.payment_id,
                custom_id: &request.payment_id,
                invoice_id: &request.payment_id,
                description: request.description.chars().take(127).collect(),
                amount: PayPalMoney::new(request.amount, &request.currency),
            }],
            payment_source: PayPalPaymentSource {
                paypal: PayPalWallet {
                    experience_context: PayPalExperienceContext {
                        return_url: &request.return_url,
                        cancel_url: &request.cancel_url,
                        user_action: "PAY_NOW",
                        shipping_preference: "NO_SHIPPING",
                        locale: "fr-FR",
                    },
                },
            },
        };
        let response = self
            .send(|| {
                self.http
                    .post(self.url("v2/checkout/orders"))
                    .header("PayPal-Request-Id", &request.payment_id)
                    .header("Prefer", "return=representation")
                    .json(&body)
            })
            .await?;
        let order: PayPalOrder = read_json(response).await?;
        let redirect_url = order.approval_link().ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("PayPal gave no approval link"))
        })?;
        Ok(Checkout {
            gateway_ref: order.id,
            redirect_url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let is_ipn = notification
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if is_ipn {
            self.verify_ipn(notification).await
        } else {
            self.verify_webhook(notification).await
        }
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        if !valid_id(gateway_ref) {
            return Err(GatewayError::Rejected(format!(
                "{gateway_ref:?} n'est pas une commande PayPal"
            )));
        }
        self.settle(gateway_ref).await
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let Some(capture_id) = request.capture_ids.first().filter(|id| valid_id(id)) else {
            return Err(GatewayError::Rejected(
                "aucun encaissement PayPal à rembourser".into(),
            ));
        };
        let body = PayPalRefundRequest {
            amount: PayPalMoney::new(request.amount, &request.currency),
            invoice_id: &request.idempotency_key,
            note_to_payer: "Remboursement",
        };
        let response = self
            .send(|| {
                self.http
                    .post(self.url(&format!("v2/payments/captures/{capture_id}/refund")))
                    .header("PayPal-Request-Id", &request.idempotency_key)
                    .header("Prefer", "return=representation")
                    .json(&body)
            })
            .await?;
        let refund: PayPalRefund = read_json(response).await?;
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

    /// A new OAuth2 token: PayPal checks the REST app's client id and secret.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        self.forget_token();
        self.token().await?;
        Ok(ConnectionCheck { live: self.live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_reach_a_url() {
        assert!(valid_id("5O190127TN364715T"));
        for bad in ["", "5O1/../x", "a?b", "a b", "é"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_settings_choose_the_host_and_the_mode() {
        let mut settings = Settings::default();
        let gateway = PayPalGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(gateway.test_mode());
        assert_eq!(gateway.api_base, SANDBOX_API_BASE);
        assert_eq!(gateway.ipn_url, SANDBOX_IPN_URL);
        settings.paypal.live = true;
        let gateway = PayPalGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(!gateway.test_mode());
        assert_eq!(gateway.api_base, LIVE_API_BASE);
        assert_eq!(gateway.ipn_url, LIVE_IPN_URL);
        settings.paypal.live = false;
        settings.paypal.emulator = true;
        let gateway = PayPalGateway::new(&settings, "http://x/", reqwest::Client::new());
        assert_eq!(
            gateway.url("v2/checkout/orders"),
            "http://x/sandbox/paypal/v2/checkout/orders"
        );
        assert_eq!(gateway.ipn_url, "http://x/sandbox/paypal/cgi-bin/webscr");
    }
}
