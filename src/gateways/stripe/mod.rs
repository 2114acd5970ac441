//! obole's connector for Stripe Checkout Sessions: form-encoded requests with the secret key
//! as Bearer, a pinned `Stripe-Version`, an `Idempotency-Key` on every POST; events proved by
//! their `Stripe-Signature`, then the session re-read (with its PaymentIntent, latest charge
//! and balance transaction) so that the report carries the fee and the refunds.

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use self::transformers::{API_VERSION, SIGNATURE_HEADER, signature_header};
use self::transformers::{
    METADATA_PAYMENT_ID, StripeBalance, StripeErrorBody, StripeEvent, StripeList, StripeRefund,
    StripeSession,
};
use super::{
    Capabilities, Capture, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError,
    GatewayReport, IncomingNotification, NotificationError, RefundFact, RefundOutcome,
    RefundRequest, RefundStatus,
};
use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// The test keys of obole's Stripe emulator (`/sandbox/stripe/`).
pub const EMULATOR_SECRET_KEY: &str = "sk_test_obole_emulator_4eC39HqLyjWDarjtT1zdp7dc";
pub const EMULATOR_WEBHOOK_SECRET: &str = "whsec_obole_emulator_secret";

const LIVE_API_BASE: &str = "https://api.stripe.com";

/// The session with everything a report needs, in one call (three levels; Stripe allows four).
const SESSION_EXPAND: &str = "payment_intent.latest_charge.balance_transaction";

/// Settings of the Stripe connector (`[stripe]` in the file, `OBOLE_STRIPE__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StripeSettings {
    /// Point the connector at obole's own emulator (`/sandbox/stripe/`) with its test keys.
    pub emulator: bool,
    /// Where the Stripe API is; defaults to `https://api.stripe.com`, or to the emulator.
    pub api_base: Option<String>,
    /// `sk_test_…` (test mode) or `sk_live_…`.
    pub secret_key: SecretString,
    /// The `whsec_…` secret of the webhook endpoint `/webhooks/stripe`.
    pub webhook_secret: SecretString,
}

impl Default for StripeSettings {
    fn default() -> Self {
        StripeSettings {
            emulator: false,
            api_base: None,
            secret_key: SecretString::from(EMULATOR_SECRET_KEY),
            webhook_secret: SecretString::from(EMULATOR_WEBHOOK_SECRET),
        }
    }
}

pub struct StripeGateway {
    api_base: String,
    secret_key: SecretString,
    webhook_secret: SecretString,
    http: reqwest::Client,
}

impl StripeGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let stripe = &settings.stripe;
        let api_base = match (&stripe.api_base, stripe.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!("{}/sandbox/stripe", base_url.trim_end_matches('/')),
            (None, false) => LIVE_API_BASE.to_string(),
        };
        StripeGateway {
            api_base,
            secret_key: stripe.secret_key.clone(),
            webhook_secret: stripe.webhook_secret.clone(),
            http,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
    }

    fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(String, String)],
    ) -> reqwest::RequestBuilder {
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        self.http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
            .header("Idempotency-Key", idempotency_key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    async fn session(&self, session_id: &str) -> Result<StripeSession, GatewayError> {
        let session_id = path_id(session_id)?;
        let response = self
            .get(&format!("/v1/checkout/sessions/{session_id}"))
            .query(&[("expand[]", SESSION_EXPAND)])
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        read_json(response).await
    }

    async fn refunds_of(&self, payment_intent: &str) -> Result<Vec<StripeRefund>, GatewayError> {
        let response = self
            .get("/v1/refunds")
            .query(&[("payment_intent", payment_intent), ("limit", "100")])
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let list: StripeList<StripeRefund> = read_json(response).await?;
        if list.has_more {
            tracing::warn!(
                payment_intent,
                "more than 100 refunds: only the first 100 are read"
            );
        }
        Ok(list.data)
    }

    /// The session of a PaymentIntent (a refund event names the charge's PaymentIntent).
    async fn session_of(&self, payment_intent: &str) -> Result<Option<String>, GatewayError> {
        let response = self
            .get("/v1/checkout/sessions")
            .query(&[("payment_intent", payment_intent)])
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let list: StripeList<StripeSession> = read_json(response).await?;
        Ok(list.data.into_iter().next().map(|s| s.id))
    }

    /// What Stripe says now about a session: status, the capture with its fee, the refunds.
    async fn report(
        &self,
        session_id: &str,
        event_id: Option<String>,
    ) -> Result<GatewayReport, GatewayError> {
        let session = self.session(session_id).await?;
        let intent = session.payment_intent.as_ref().and_then(|p| p.object());
        let charge = intent
            .and_then(|i| i.latest_charge.as_ref())
            .and_then(|c| c.object());
        let refunds = match (intent, charge) {
            (Some(intent), Some(charge)) if charge.amount_refunded > 0 => {
                self.refunds_of(&intent.id).await?
            }
            _ => Vec::new(),
        };
        let status = transformers::payment_status(
            session
                .status
                .unwrap_or(transformers::StripeSessionStatus::Unknown),
            session.payment_status,
            intent.map(|i| i.status),
        );
        let captures = if status == PaymentStatus::Paid {
            let intent = intent.ok_or_else(|| {
                GatewayError::Unavailable(anyhow::anyhow!("a paid session without PaymentIntent"))
            })?;
            let fee = charge
                .and_then(|c| c.balance_transaction.as_ref())
                .and_then(|b| b.object())
                .map(|b| Money::from_cents(b.fee));
            vec![Capture {
                id: intent.id.clone(),
                amount: Money::from_cents(intent.amount_received),
                fee,
            }]
        } else {
            Vec::new()
        };
        let reference = session.client_reference_id.clone().or_else(|| {
            session
                .metadata
                .as_ref()
                .and_then(|m| m.get(METADATA_PAYMENT_ID).cloned())
        });
        Ok(GatewayReport {
            gateway_ref: session.id,
            reference,
            status,
            amount: Money::from_cents(session.amount_total.unwrap_or(0)),
            currency: session.currency.unwrap_or_default(),
            live: session.livemode,
            event_id,
            captures,
            refunds: refunds
                .into_iter()
                .filter(|r| r.status.map(RefundStatus::from) == Some(RefundStatus::Succeeded))
                .map(|r| RefundFact {
                    id: r.id,
                    amount: Money::from_cents(r.amount),
                })
                .collect(),
        })
    }

    /// The PaymentIntent to refund: the capture obole posted, or the session's.
    async fn payment_intent_of(&self, request: &RefundRequest) -> Result<String, GatewayError> {
        if let Some(capture) = request.capture_ids.first() {
            return Ok(capture.clone());
        }
        let session = self.session(&request.gateway_ref).await?;
        match session.payment_intent {
            Some(transformers::StripeExpandable::Object(intent)) => Ok(intent.id),
            Some(transformers::StripeExpandable::Id(id)) => Ok(id),
            None => Err(GatewayError::Rejected(
                "cette session Stripe n'a pas de paiement à rembourser".into(),
            )),
        }
    }
}

/// An id as Stripe makes them (`cs_test_…`), safe to put in a URL path: ids come back from
/// events and from the database, and must not be able to point a request elsewhere.
fn path_id(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(GatewayError::Rejected(format!(
            "identifiant Stripe invalide : {id:?}"
        )))
    }
}

/// The form parameters of a Checkout Session for one dues payment.
fn session_form(request: &CheckoutRequest) -> Vec<(String, String)> {
    let currency = request.currency.to_ascii_lowercase();
    let mut form: Vec<(String, String)> = vec![
        ("mode".into(), "payment".into()),
        ("line_items[0][quantity]".into(), "1".into()),
        ("line_items[0][price_data][currency]".into(), currency),
        (
            "line_items[0][price_data][unit_amount]".into(),
            request.amount.cents().to_string(),
        ),
        (
            "line_items[0][price_data][product_data][name]".into(),
            request.description.clone(),
        ),
        // Stripe puts the session id in place of this template on the way back.
        (
            "success_url".into(),
            format!(
                "{}{}session_id={{CHECKOUT_SESSION_ID}}",
                request.return_url,
                if request.return_url.contains('?') {
                    '&'
                } else {
                    '?'
                }
            ),
        ),
        ("cancel_url".into(), request.cancel_url.clone()),
        ("client_reference_id".into(), request.payment_id.clone()),
        (
            format!("metadata[{METADATA_PAYMENT_ID}]"),
            request.payment_id.clone(),
        ),
        (
            format!("payment_intent_data[metadata][{METADATA_PAYMENT_ID}]"),
            request.payment_id.clone(),
        ),
        (
            "payment_intent_data[description]".into(),
            request.description.clone(),
        ),
    ];
    if !request.payer_email.is_empty() {
        form.push(("customer_email".into(), request.payer_email.clone()));
    }
    form
}

/// The body of a 2xx answer, or Stripe's error message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return response
            .json::<T>()
            .await
            .context("unreadable Stripe answer")
            .map_err(GatewayError::Unavailable);
    }
    let body = response.text().await.unwrap_or_default();
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        let message = serde_json::from_str::<StripeErrorBody>(&body)
            .ok()
            .and_then(|b| b.error.message)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(GatewayError::Rejected(message))
    } else {
        Err(GatewayError::Unavailable(anyhow::anyhow!(
            "Stripe answered HTTP {status}"
        )))
    }
}

#[async_trait]
impl Gateway for StripeGateway {
    fn id(&self) -> &'static str {
        "stripe"
    }

    fn display_name(&self) -> &'static str {
        "Stripe"
    }

    fn test_mode(&self) -> bool {
        let key = self.secret_key.expose_secret();
        !(key.starts_with("sk_live_") || key.starts_with("rk_live_"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: true,
            fees: true,
            saved_cards: false,
            installments: false,
            verification: "Stripe-Signature: HMAC-SHA256 of \"t.raw_body\", 5-minute tolerance",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let response = self
            .post(
                "/v1/checkout/sessions",
                &request.payment_id,
                &session_form(request),
            )
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let session: StripeSession = read_json(response).await?;
        let redirect_url = session.url.ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("Stripe gave no hosted page"))
        })?;
        Ok(Checkout {
            gateway_ref: session.id,
            redirect_url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let header = notification
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| NotificationError::Forged("no Stripe-Signature".into()))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        transformers::verify_signature(
            self.webhook_secret.expose_secret().as_bytes(),
            header,
            notification.body,
            now,
        )
        .map_err(|problem| NotificationError::Forged(problem.to_string()))?;
        let event: StripeEvent = serde_json::from_slice(notification.body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let session_id = match event.kind.as_str() {
            "checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed"
            | "checkout.session.expired" => event.data.object.id.ok_or_else(|| {
                NotificationError::Malformed("a session event without a session id".into())
            })?,
            "charge.refunded" => {
                let Some(intent) = event.data.object.payment_intent else {
                    return Ok(None);
                };
                match self.session_of(&intent).await {
                    Ok(Some(session)) => session,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(NotificationError::Unverifiable(e.into())),
                }
            }
            _ => return Ok(None),
        };
        path_id(&session_id).map_err(|e| NotificationError::Malformed(e.to_string()))?;
        // Events arrive out of order: what Stripe says now decides, not the event's copy.
        self.report(&session_id, Some(event.id))
            .await
            .map(Some)
            .map_err(|e| NotificationError::Unverifiable(e.into()))
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        self.report(gateway_ref, None).await
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let payment_intent = self.payment_intent_of(request).await?;
        let form: Vec<(String, String)> = vec![
            ("payment_intent".into(), payment_intent),
            ("amount".into(), request.amount.cents().to_string()),
            (
                format!("metadata[{METADATA_PAYMENT_ID}]"),
                request.payment_id.clone(),
            ),
        ];
        let response = self
            .post("/v1/refunds", &request.idempotency_key, &form)
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let refund: StripeRefund = read_json(response).await?;
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount: Money::from_cents(refund.amount),
            status: refund
                .status
                .map_or(RefundStatus::Pending, RefundStatus::from),
        })
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn cancel(&self, gateway_ref: &str) -> Result<(), GatewayError> {
        let gateway_ref = path_id(gateway_ref)?;
        let response = self
            .post(
                &format!("/v1/checkout/sessions/{gateway_ref}/expire"),
                &format!("expire-{gateway_ref}"),
                &[],
            )
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        read_json::<StripeSession>(response).await.map(|_| ())
    }

    /// `GET /v1/balance`: any key may read it, and it changes nothing.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        let response = self
            .get("/v1/balance")
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let balance: StripeBalance = read_json(response).await?;
        Ok(ConnectionCheck {
            live: balance.livemode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckoutRequest {
        CheckoutRequest {
            payment_id: "pay_1".into(),
            amount: Money::from_cents(3050),
            currency: "EUR".into(),
            description: "Cotisation".into(),
            payer_email: "m@exemple.org".into(),
            payer_first_name: "M".into(),
            payer_last_name: "N".into(),
            return_url: "https://obole.example/payments/pay_1".into(),
            cancel_url: "https://obole.example/payments/pay_1".into(),
            error_url: "https://obole.example/payments/pay_1".into(),
            notification_url: "https://obole.example/webhooks/stripe".into(),
            installments: None,
            contains_donation: false,
        }
    }

    #[test]
    fn the_session_form_carries_cents_the_reference_and_the_template() {
        let form = session_form(&request());
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("3050"));
        assert_eq!(get("line_items[0][price_data][currency]"), Some("eur"));
        assert_eq!(get("client_reference_id"), Some("pay_1"));
        assert_eq!(get("metadata[obole_payment_id]"), Some("pay_1"));
        assert_eq!(
            get("payment_intent_data[metadata][obole_payment_id]"),
            Some("pay_1")
        );
        assert_eq!(
            get("success_url"),
            Some("https://obole.example/payments/pay_1?session_id={CHECKOUT_SESSION_ID}")
        );
        assert!(path_id("cs_test_a1B2").is_ok());
        assert!(path_id("../v1/refunds").is_err());
        assert!(path_id("cs_1?expand[]=x").is_err());
        let encoded = serde_urlencoded::to_string(&form).unwrap();
        assert!(encoded.contains("line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=3050"));
    }
}
