//! obole's connector for Stancer (API v2): a payment intent shown on Stancer's hosted page,
//! HTTP Basic with the secret key. Stancer sends no notification: payments are confirmed by
//! reading the intent and its payment back with obole's key (return page and reconciliation
//! sweep). Anything posted to obole's webhook for Stancer is only a hint to re-read.
//!
//! Saved cards: the intent is made for the member's Stancer customer (created once), and the
//! card it used (`card_…`) is then charged later with `POST /v2/payments/` on that customer,
//! the attempt's id as `unique_id`. Such a payment is its own reference (`paym_…`).

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, OffSessionOutcome, OffSessionRequest, RefundOutcome,
    RefundRequest,
};
use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};
use transformers::{
    StancerCard, StancerCreateCustomer, StancerCreateIntent, StancerCreatePayment,
    StancerCreateRefund, StancerCustomer, StancerError, StancerHint, StancerIntent,
    StancerMetadata, StancerPayment, StancerRefund,
};

/// Stancer's one host: test or live is chosen by the key.
pub const LIVE_API_BASE: &str = "https://api.stancer.com";

/// The emulator's test secret key, the default of the settings.
pub const EMULATOR_SECRET_KEY: &str = "stest_oboleEmulatorSecret0000000";

/// Stancer refuses refunds under 50 cents.
pub const MINIMUM_REFUND_CENTS: i64 = 50;

/// Settings of the Stancer connector (`[stancer]` in the file, `OBOLE_STANCER__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StancerSettings {
    /// Point the connector at obole's own emulator (`/sandbox/stancer/`) with its test keys.
    pub emulator: bool,
    /// Where the API lives (`https://api.stancer.com` unless the emulator or a test says).
    pub api_base: Option<String>,
    /// The secret key: `stest_…` or `sprod_…` (the prefix decides the mode).
    pub secret_key: SecretString,
}

impl Default for StancerSettings {
    fn default() -> Self {
        StancerSettings {
            emulator: false,
            api_base: None,
            secret_key: SecretString::from(EMULATOR_SECRET_KEY),
        }
    }
}

pub struct StancerGateway {
    api_base: String,
    secret_key: SecretString,
    http: reqwest::Client,
}

impl StancerGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let stancer = &settings.stancer;
        let api_base = match (&stancer.api_base, stancer.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!("{}/sandbox/stancer", base_url.trim_end_matches('/')),
            (None, false) => LIVE_API_BASE.to_string(),
        };
        StancerGateway {
            api_base,
            secret_key: stancer.secret_key.clone(),
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
            .basic_auth(self.secret_key.expose_secret(), Some(""))
            .send()
            .await
            .context("Stancer API unreachable")
            .map_err(GatewayError::Unavailable)
    }

    /// `GET /v1/checkout/?limit=1`: the payments list of Stancer's own libraries (v1, same
    /// host and key), the cheapest call that needs the secret key.
    async fn list_one_payment(&self) -> Result<serde_json::Value, GatewayError> {
        read_json(
            self.send(
                self.http
                    .get(format!("{}/v1/checkout/", self.api_base))
                    .query(&[("limit", "1")]),
            )
            .await?,
        )
        .await
    }

    async fn get_intent(&self, id: &str) -> Result<reqwest::Response, GatewayError> {
        self.send(self.http.get(self.url(&format!("payment_intents/{id}"))))
            .await
    }

    async fn get_payment(&self, id: &str) -> Result<StancerPayment, GatewayError> {
        if !valid_id(id, "paym_") {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer named a malformed payment {id:?}"
            )));
        }
        read_json(
            self.send(self.http.get(self.url(&format!("payments/{id}"))))
                .await?,
        )
        .await
    }

    /// The intent and the payment it produced, read with obole's key; and the card kept for
    /// the intent's customer, when it was made for one and is paid.
    async fn report(&self, intent: StancerIntent) -> Result<GatewayReport, GatewayError> {
        let payment = match intent.payment.as_deref() {
            Some(id) => Some(self.get_payment(id).await?),
            None => None,
        };
        let paid = payment.as_ref().is_some_and(|p| {
            PaymentStatus::from(transformers::StancerState::Payment(p.status))
                == PaymentStatus::Paid
        });
        let card = match (&intent.customer, intent.card.as_deref()) {
            (Some(_), Some(card)) if paid => Some(self.get_card(card).await?),
            _ => None,
        };
        transformers::into_report(intent, payment, card).map_err(unreadable)
    }

    async fn get_card(&self, id: &str) -> Result<StancerCard, GatewayError> {
        if !valid_id(id, "card_") {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer named a malformed card {id:?}"
            )));
        }
        read_json(
            self.send(self.http.get(self.url(&format!("cards/{id}"))))
                .await?,
        )
        .await
    }

    /// The customer to keep the card for: the member's known one, or a new one.
    async fn customer_for(&self, request: &CheckoutRequest) -> Result<String, GatewayError> {
        if let Some(known) = request
            .save_card
            .as_ref()
            .and_then(|s| s.customer_id.clone())
        {
            if !valid_id(&known, "cust_") {
                return Err(GatewayError::Rejected("client Stancer invalide".into()));
            }
            return Ok(known);
        }
        let email = request.payer_email.trim();
        if !(5..=64).contains(&email.chars().count()) {
            return Err(GatewayError::Rejected(
                "Stancer demande une adresse électronique de 5 à 64 caractères pour garder une carte"
                    .into(),
            ));
        }
        let name = format!("{} {}", request.payer_first_name, request.payer_last_name)
            .trim()
            .chars()
            .take(64)
            .collect::<String>();
        let body = StancerCreateCustomer {
            name: (name.chars().count() >= 4).then_some(name),
            email: email.to_string(),
        };
        let customer: StancerCustomer = read_json(
            self.send(self.http.post(self.url("customers/")).json(&body))
                .await?,
        )
        .await?;
        if !valid_id(&customer.id, "cust_") {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer named a malformed customer"
            )));
        }
        Ok(customer.id)
    }
}

fn unreadable(problem: String) -> GatewayError {
    GatewayError::Unavailable(anyhow::anyhow!("unreadable Stancer payment: {problem}"))
}

/// Stancer's ids are a prefix and letters or digits; anything else never reaches a URL.
fn valid_id(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The body of a 2xx answer, or Stancer's error message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    super::read_answer(response, "Stancer", |e: StancerError| Some(e.message())).await
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
        !self.secret_key.expose_secret().starts_with("sprod_")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: false,
            fees: false,
            saved_cards: true,
            installments: false,
            verification: "no notification: the payment is read back with the secret key (return page and sweep)",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        let customer = match request.save_card {
            Some(_) => Some(self.customer_for(request).await?),
            None => None,
        };
        let body = StancerCreateIntent {
            amount: request.amount.cents(),
            currency: request.currency.to_ascii_lowercase(),
            description: transformers::description(&request.description),
            order_id: &request.payment_id,
            // Stancer has one return address: the return page reads the outcome from the API,
            // so a payer who gave up or hit an error lands on the same page.
            return_url: &request.return_url,
            capture: true,
            methods_allowed: ["card"],
            metadata: StancerMetadata {
                payment_id: &request.payment_id,
            },
            customer: customer.as_deref(),
            threeds: customer.as_ref().map(|_| "required"),
        };
        let response = self
            .send(self.http.post(self.url("payment_intents/")).json(&body))
            .await?;
        let intent: StancerIntent = read_json(response).await?;
        let redirect_url = intent.url.clone().ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("Stancer gave no payment page"))
        })?;
        if !valid_id(&intent.id, "pi_") {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer named a malformed intent"
            )));
        }
        Ok(Checkout {
            gateway_ref: intent.id,
            redirect_url,
        })
    }

    /// Stancer sends nothing itself: whatever arrives names at most an intent, which is read
    /// back with obole's key. The body's other claims are never believed.
    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let hint: StancerHint = serde_json::from_slice(notification.body)
            .or_else(|_| serde_urlencoded::from_bytes(notification.body))
            .map_err(|e| NotificationError::Malformed(format!("no intent id: {e}")))?;
        if !valid_id(&hint.id, "pi_") {
            return Err(NotificationError::Malformed(format!(
                "{:?} is not a Stancer payment intent",
                hint.id
            )));
        }
        let response = self
            .get_intent(&hint.id)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        // Stancer answers 404 for an intent this key cannot see: nothing of ours.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let intent: StancerIntent = read_json(response)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        self.report(intent)
            .await
            .map(Some)
            .map_err(|e| NotificationError::Unverifiable(e.into()))
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        // A charge of a kept card is a payment, with no intent around it.
        if valid_id(gateway_ref, "paym_") {
            let payment = self.get_payment(gateway_ref).await?;
            return transformers::payment_report(payment).map_err(unreadable);
        }
        if !valid_id(gateway_ref, "pi_") {
            return Err(GatewayError::Rejected(format!(
                "{gateway_ref:?} n'est pas un paiement Stancer"
            )));
        }
        let intent: StancerIntent = read_json(self.get_intent(gateway_ref).await?).await?;
        self.report(intent).await
    }

    /// Stancer has no idempotency key on refunds; obole's own refund row guards retries.
    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if request.amount.cents() < MINIMUM_REFUND_CENTS {
            return Err(GatewayError::Rejected(format!(
                "Stancer ne rembourse pas moins de {} par remboursement",
                Money::from_cents(MINIMUM_REFUND_CENTS)
            )));
        }
        let payment = if valid_id(&request.gateway_ref, "paym_") {
            request.gateway_ref.clone()
        } else if valid_id(&request.gateway_ref, "pi_") {
            let intent: StancerIntent =
                read_json(self.get_intent(&request.gateway_ref).await?).await?;
            let Some(payment) = intent.payment.filter(|p| valid_id(p, "paym_")) else {
                return Err(GatewayError::Rejected(
                    "ce paiement Stancer n'a pas été payé".into(),
                ));
            };
            payment
        } else {
            return Err(GatewayError::Rejected("paiement Stancer inconnu".into()));
        };
        let response = self
            .send(
                self.http
                    .post(self.url("refunds/"))
                    .json(&StancerCreateRefund {
                        payment: &payment,
                        amount: request.amount.cents(),
                    }),
            )
            .await?;
        let refund: StancerRefund = read_json(response).await?;
        if refund.amount < 0 {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer reported a negative refund"
            )));
        }
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount: Money::from_cents(refund.amount),
            status: refund.status.into(),
        })
    }

    /// The key's prefix tells the mode.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        self.list_one_payment().await?;
        Ok(ConnectionCheck {
            live: !self.test_mode(),
        })
    }

    /// `POST /v2/payments/` on the customer's kept card, the attempt's id as `unique_id`: a
    /// second payment with the same id is refused by Stancer, so a retry never charges twice.
    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn charge_saved_card(
        &self,
        request: &OffSessionRequest,
    ) -> Result<OffSessionOutcome, GatewayError> {
        if !valid_id(&request.customer_id, "cust_")
            || !valid_id(&request.payment_method_id, "card_")
        {
            return Err(GatewayError::Rejected(
                "carte Stancer enregistrée invalide".into(),
            ));
        }
        let body = StancerCreatePayment {
            amount: request.amount.cents(),
            currency: request.currency.to_ascii_lowercase(),
            description: transformers::description(&request.description),
            order_id: &request.payment_id,
            unique_id: &request.payment_id,
            capture: true,
            customer: &request.customer_id,
            card: &request.payment_method_id,
        };
        let payment: StancerPayment = read_json(
            self.send(self.http.post(self.url("payments/")).json(&body))
                .await?,
        )
        .await?;
        if !valid_id(&payment.id, "paym_") {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "Stancer named a malformed payment"
            )));
        }
        let decline = transformers::decline_of(&payment);
        let report = transformers::payment_report(payment).map_err(unreadable)?;
        Ok(OffSessionOutcome { report, decline })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_reach_a_url() {
        assert!(valid_id("pi_7UhSN1zuXS", "pi_"));
        for bad in ["pi_", "paym_abc", "pi_../refunds", "pi_a?b", "pi_a/b", ""] {
            assert!(!valid_id(bad, "pi_"), "{bad:?}");
        }
    }

    #[test]
    fn the_key_prefix_decides_the_mode() {
        let mut settings = Settings::default();
        let gateway = StancerGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(gateway.test_mode());
        assert_eq!(gateway.api_base, LIVE_API_BASE);
        settings.stancer.secret_key = SecretString::from("sprod_abc");
        let gateway = StancerGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(!gateway.test_mode());
        settings.stancer.emulator = true;
        let gateway = StancerGateway::new(&settings, "http://x/", reqwest::Client::new());
        assert_eq!(
            gateway.url("payment_intents/"),
            "http://x/sandbox/stancer/v2/payment_intents/"
        );
    }
}
