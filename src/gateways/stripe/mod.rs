//! obole's connector for Stripe Checkout Sessions: form-encoded requests with the secret key
//! as Bearer, a pinned `Stripe-Version`, an `Idempotency-Key` on every POST; events proved by
//! their `Stripe-Signature`, then the session re-read (with its PaymentIntent, latest charge
//! and balance transaction) so that the report carries the fee and the refunds.
//!
//! Saved cards: a session asked to keep the card (`setup_future_usage=off_session`, with the
//! member's Customer or `customer_creation=always`) leaves a PaymentMethod on a Customer; a
//! later due is a PaymentIntent obole creates and confirms off-session, read back the same way.

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use self::transformers::{API_VERSION, SIGNATURE_HEADER, signature_header};
use self::transformers::{
    METADATA_OFF_SESSION, METADATA_PAYMENT_ID, StripeBalance, StripeErrorBody, StripeEvent,
    StripeList, StripePaymentIntent, StripePaymentMethod, StripeRefund, StripeSession,
};
use super::{
    Capabilities, Capture, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError,
    GatewayReport, IncomingNotification, NotificationError, OffSessionOutcome, OffSessionRequest,
    RefundFact, RefundOutcome, RefundRequest, RefundStatus, SavedMethod,
};
use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// The test keys of obole's Stripe emulator (`/sandbox/stripe/`).
pub const EMULATOR_SECRET_KEY: &str = "sk_test_obole_emulator_4eC39HqLyjWDarjtT1zdp7dc";
pub const EMULATOR_WEBHOOK_SECRET: &str = "whsec_obole_emulator_secret";

const LIVE_API_BASE: &str = "https://api.stripe.com";

/// The session with everything a report needs, in one call (three levels; Stripe allows four).
const SESSION_EXPAND: &str = "payment_intent.latest_charge.balance_transaction";
/// The card a session kept, for its label.
const SESSION_METHOD_EXPAND: &str = "payment_intent.payment_method";
/// A PaymentIntent with its fee.
const INTENT_EXPAND: &str = "latest_charge.balance_transaction";

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
            .query(&[
                ("expand[]", SESSION_EXPAND),
                ("expand[]", SESSION_METHOD_EXPAND),
            ])
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
            vec![capture_of(intent)]
        } else {
            Vec::new()
        };
        let saved_method = intent
            .filter(|i| {
                status == PaymentStatus::Paid
                    && i.setup_future_usage.as_deref() == Some("off_session")
            })
            .and_then(|i| {
                let customer_id = i.customer.clone().or_else(|| session.customer.clone())?;
                Some(SavedMethod {
                    customer_id,
                    payment_method_id: i.payment_method_id()?.to_string(),
                    label: i
                        .payment_method
                        .as_ref()
                        .and_then(|m| m.object())
                        .and_then(|m: &StripePaymentMethod| m.card.as_ref())
                        .and_then(transformers::card_label),
                })
            });
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
            refunds: succeeded(refunds),
            saved_method,
        })
    }

    async fn intent(&self, intent_id: &str) -> Result<StripePaymentIntent, GatewayError> {
        let intent_id = path_id(intent_id)?;
        let response = self
            .get(&format!("/v1/payment_intents/{intent_id}"))
            .query(&[("expand[]", INTENT_EXPAND)])
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        read_json(response).await
    }

    /// What Stripe says of a PaymentIntent obole created to charge a saved card: there is no
    /// session around it, the intent is the payment.
    async fn intent_report(
        &self,
        intent: StripePaymentIntent,
        event_id: Option<String>,
    ) -> Result<GatewayReport, GatewayError> {
        let refunded = intent
            .latest_charge
            .as_ref()
            .and_then(|c| c.object())
            .is_some_and(|c| c.amount_refunded > 0);
        let refunds = if refunded {
            self.refunds_of(&intent.id).await?
        } else {
            Vec::new()
        };
        let status = transformers::intent_status(intent.status);
        let captures = if status == PaymentStatus::Paid {
            vec![capture_of(&intent)]
        } else {
            Vec::new()
        };
        Ok(GatewayReport {
            reference: intent
                .metadata
                .as_ref()
                .and_then(|m| m.get(METADATA_PAYMENT_ID).cloned()),
            status,
            amount: Money::from_cents(intent.amount),
            currency: intent.currency.clone().unwrap_or_default(),
            live: intent.livemode,
            event_id,
            captures,
            refunds: succeeded(refunds),
            saved_method: None,
            gateway_ref: intent.id,
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

/// The money a succeeded PaymentIntent received, with the fee of its charge when known.
fn capture_of(intent: &StripePaymentIntent) -> Capture {
    let fee = intent
        .latest_charge
        .as_ref()
        .and_then(|c| c.object())
        .and_then(|c| c.balance_transaction.as_ref())
        .and_then(|b| b.object())
        .map(|b| Money::from_cents(b.fee));
    Capture {
        id: intent.id.clone(),
        amount: Money::from_cents(intent.amount_received),
        fee,
    }
}

fn succeeded(refunds: Vec<StripeRefund>) -> Vec<RefundFact> {
    refunds
        .into_iter()
        .filter(|r| r.status.map(RefundStatus::from) == Some(RefundStatus::Succeeded))
        .map(|r| RefundFact {
            id: r.id,
            amount: Money::from_cents(r.amount),
        })
        .collect()
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
    let known_customer = request
        .save_card
        .as_ref()
        .and_then(|save| save.customer_id.clone());
    if let Some(save) = &request.save_card {
        form.push((
            "payment_intent_data[setup_future_usage]".into(),
            "off_session".into(),
        ));
        if save.customer_id.is_none() {
            form.push(("customer_creation".into(), "always".into()));
        }
    }
    match known_customer {
        // Stripe takes the Customer's own email then.
        Some(customer) => form.push(("customer".into(), customer)),
        None if !request.payer_email.is_empty() => {
            form.push(("customer_email".into(), request.payer_email.clone()))
        }
        None => {}
    }
    form
}

/// The form of a PaymentIntent confirmed at once on a saved card, the member away.
fn off_session_form(request: &OffSessionRequest) -> Vec<(String, String)> {
    vec![
        ("amount".into(), request.amount.cents().to_string()),
        ("currency".into(), request.currency.to_ascii_lowercase()),
        ("customer".into(), request.customer_id.clone()),
        ("payment_method".into(), request.payment_method_id.clone()),
        ("off_session".into(), "true".into()),
        ("confirm".into(), "true".into()),
        ("payment_method_types[0]".into(), "card".into()),
        (
            "description".into(),
            request.description.chars().take(1000).collect(),
        ),
        (
            format!("metadata[{METADATA_PAYMENT_ID}]"),
            request.payment_id.clone(),
        ),
        (format!("metadata[{METADATA_OFF_SESSION}]"), "true".into()),
        ("expand[0]".into(), INTENT_EXPAND.into()),
    ]
}

/// The body of a 2xx answer, or Stripe's error message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    super::read_answer(response, "Stripe", |b: StripeErrorBody| b.error.message).await
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
            saved_cards: true,
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
                    // No session: a refund of a saved card's charge, or nothing of obole's.
                    Ok(None) => return self.off_session_event(&intent, event.id).await,
                    Err(e) => return Err(NotificationError::Unverifiable(e.into())),
                }
            }
            // Only the PaymentIntents obole created to charge a saved card: those of a Checkout
            // Session are told by the session's own events.
            "payment_intent.succeeded"
            | "payment_intent.payment_failed"
            | "payment_intent.processing"
            | "payment_intent.canceled" => {
                let marked = event
                    .data
                    .object
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.contains_key(METADATA_OFF_SESSION));
                return match event.data.object.id {
                    Some(intent) if marked => self.off_session_event(&intent, event.id).await,
                    _ => Ok(None),
                };
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
        if gateway_ref.starts_with("pi_") {
            let intent = self.intent(gateway_ref).await?;
            return self.intent_report(intent, None).await;
        }
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
        if gateway_ref.starts_with("pi_") {
            return Err(GatewayError::Rejected(
                "le prélèvement d'une carte enregistrée ne s'annule pas : remboursez-le".into(),
            ));
        }
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

    /// `POST /v1/payment_intents` confirmed off-session, keyed by obole's attempt: a retry gets
    /// Stripe's first answer again. A card error (402) names the PaymentIntent it left, which
    /// is reported failed with the bank's reason.
    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn charge_saved_card(
        &self,
        request: &OffSessionRequest,
    ) -> Result<OffSessionOutcome, GatewayError> {
        let response = self
            .post(
                "/v1/payment_intents",
                &request.payment_id,
                &off_session_form(request),
            )
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        if response.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
            let body: StripeErrorBody = response
                .json()
                .await
                .context("unreadable Stripe card error")
                .map_err(GatewayError::Unavailable)?;
            let decline = body.error.decline();
            let Some(intent) = body.error.payment_intent else {
                return Err(GatewayError::Rejected(
                    body.error.message.unwrap_or_else(|| "carte refusée".into()),
                ));
            };
            let report = self.intent_report(*intent, None).await?;
            return Ok(OffSessionOutcome {
                report,
                decline: Some(decline),
            });
        }
        let intent: StripePaymentIntent = read_json(response).await?;
        let decline = intent
            .last_payment_error
            .as_ref()
            .filter(|_| transformers::intent_status(intent.status) == PaymentStatus::Failed)
            .map(|e| e.decline());
        let report = self.intent_report(intent, None).await?;
        Ok(OffSessionOutcome { report, decline })
    }

    /// Detaches the PaymentMethod from its Customer: Stripe will not charge it again.
    #[tracing::instrument(skip_all)]
    async fn forget_saved_card(&self, saved: &SavedMethod) -> Result<(), GatewayError> {
        let method = path_id(&saved.payment_method_id)?;
        let response = self
            .post(
                &format!("/v1/payment_methods/{method}/detach"),
                &format!("detach-{method}"),
                &[],
            )
            .send()
            .await
            .context("Stripe API unreachable")
            .map_err(GatewayError::Unavailable)?;
        read_json::<serde_json::Value>(response).await.map(|_| ())
    }
}

impl StripeGateway {
    /// An event about a PaymentIntent without a session: reported only if obole created it
    /// to charge a saved card (its metadata says so, read back from Stripe).
    async fn off_session_event(
        &self,
        intent_id: &str,
        event_id: String,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        path_id(intent_id).map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let intent = self
            .intent(intent_id)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        if !intent.is_off_session_charge() {
            return Ok(None);
        }
        self.intent_report(intent, Some(event_id))
            .await
            .map(Some)
            .map_err(|e| NotificationError::Unverifiable(e.into()))
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
            save_card: None,
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
