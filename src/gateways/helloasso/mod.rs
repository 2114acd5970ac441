//! obole's connector for HelloAsso Checkout (API v5): OAuth2 client credentials with a cached,
//! refreshed token; checkout intents carrying obole's attempt id in their metadata; optional
//! monthly terms; refunds per HelloAsso payment. Notifications are only hints: their
//! `x-ha-signature` is checked when a signature key is configured, and the checkout intent is
//! always read again with obole's own token before anything is reported.

mod transformers;

use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::{
    Capabilities, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError, GatewayReport,
    IncomingNotification, NotificationError, RefundOutcome, RefundRequest,
};
use crate::config::Settings;
use crate::domain::Money;
use transformers::{
    HelloAssoCheckoutIntent, HelloAssoErrors, HelloAssoInitCheckout, HelloAssoInitCheckoutResponse,
    HelloAssoNotification, HelloAssoOrder, HelloAssoPayer, HelloAssoRefundResponse, HelloAssoTerm,
    HelloAssoToken, HelloAssoTokenError, acceptable_names,
};
pub use transformers::{REFERENCE_KEY, acceptable_email, name_problem};

pub const SIGNATURE_HEADER: &str = "x-ha-signature";

const PRODUCTION_BASE: &str = "https://api.helloasso.com";
const SANDBOX_BASE: &str = "https://api.helloasso-sandbox.com";

/// Settings of the HelloAsso connector (`[helloasso]` in the file, `OBOLE_HELLOASSO__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HelloAssoSettings {
    /// Point the connector at obole's own emulator (`/sandbox/helloasso/`) with its test keys.
    pub emulator: bool,
    /// Where `/oauth2/token` and `/v5/...` live; by default HelloAsso's sandbox or production.
    pub api_base: Option<String>,
    /// HelloAsso's sandbox (`helloasso-sandbox.com`): test mode.
    pub sandbox: bool,
    pub client_id: String,
    pub client_secret: SecretString,
    pub organization_slug: String,
    /// The notification URL's signature key (given to partners): when set, unsigned or
    /// wrongly signed notifications are refused.
    pub signature_key: Option<SecretString>,
    /// Lifetime of the emulator's access tokens (HelloAsso's: 30 minutes).
    pub token_ttl_secs: u64,
}

impl Default for HelloAssoSettings {
    fn default() -> Self {
        HelloAssoSettings {
            emulator: false,
            api_base: None,
            sandbox: true,
            client_id: "ha_emulator_client".into(),
            client_secret: SecretString::from("ha_emulator_secret"),
            organization_slug: "association-demo".into(),
            signature_key: None,
            token_ttl_secs: 1800,
        }
    }
}

/// A cached access token and the refresh token that renews it.
struct Token {
    access: SecretString,
    refresh: Option<SecretString>,
    renew_at: Instant,
}

pub struct HelloAssoGateway {
    api_base: String,
    client_id: String,
    client_secret: SecretString,
    organization_slug: String,
    signature_key: Option<SecretString>,
    live: bool,
    http: reqwest::Client,
    /// Held while a token is fetched, so that concurrent calls share one renewal.
    token: tokio::sync::Mutex<Option<Token>>,
}

impl HelloAssoGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let ha = &settings.helloasso;
        let api_base = match &ha.api_base {
            Some(base) => base.clone(),
            None if ha.emulator => format!("{}/sandbox/helloasso", base_url.trim_end_matches('/')),
            None if ha.sandbox => SANDBOX_BASE.into(),
            None => PRODUCTION_BASE.into(),
        };
        HelloAssoGateway {
            api_base: api_base.trim_end_matches('/').to_string(),
            client_id: ha.client_id.clone(),
            client_secret: ha.client_secret.clone(),
            organization_slug: ha.organization_slug.clone(),
            signature_key: ha.signature_key.clone(),
            live: !(ha.sandbox || ha.emulator),
            http,
            token: tokio::sync::Mutex::new(None),
        }
    }

    fn intent_url(&self, id: &str) -> String {
        format!(
            "{}/v5/organizations/{}/checkout-intents/{id}",
            self.api_base, self.organization_slug
        )
    }

    /// A valid access token: the cached one, else a refreshed one, else a new grant.
    /// `stale` is a token the API just refused: it is renewed even if not yet due.
    async fn bearer(&self, stale: Option<&SecretString>) -> Result<SecretString, GatewayError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            let refused = stale.is_some_and(|s| s.expose_secret() == token.access.expose_secret());
            if !refused && Instant::now() < token.renew_at {
                return Ok(token.access.clone());
            }
        }
        let refresh = slot.as_ref().and_then(|t| t.refresh.clone());
        let fresh = match refresh {
            Some(refresh) => match self.refresh_grant(&refresh).await {
                Ok(token) => token,
                Err(error) => {
                    tracing::info!(error = %error, "HelloAsso refresh failed; new client grant");
                    self.client_grant().await?
                }
            },
            None => self.client_grant().await?,
        };
        let access = fresh.access.clone();
        *slot = Some(fresh);
        Ok(access)
    }

    async fn client_grant(&self) -> Result<Token, GatewayError> {
        self.grant(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose_secret()),
        ])
        .await
    }

    async fn refresh_grant(&self, refresh: &SecretString) -> Result<Token, GatewayError> {
        self.grant(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("refresh_token", refresh.expose_secret()),
        ])
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn grant(&self, form: &[(&str, &str)]) -> Result<Token, GatewayError> {
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.api_base))
            .form(form)
            .send()
            .await
            .context("HelloAsso token endpoint unreachable")
            .map_err(GatewayError::Unavailable)?;
        let status = response.status();
        if status.is_success() {
            let token: HelloAssoToken = response
                .json()
                .await
                .context("unreadable HelloAsso token")
                .map_err(GatewayError::Unavailable)?;
            // Renewed a minute early (or halfway, for short lifetimes) so no call carries a
            // token that expires in flight.
            let margin = token.expires_in.min(120) / 2;
            return Ok(Token {
                access: SecretString::from(token.access_token),
                refresh: token.refresh_token.map(SecretString::from),
                renew_at: Instant::now() + Duration::from_secs(token.expires_in - margin),
            });
        }
        let body = response.text().await.unwrap_or_default();
        if status.is_client_error() {
            let message = serde_json::from_str::<HelloAssoTokenError>(&body)
                .map(|e| e.error_description.unwrap_or(e.error))
                .unwrap_or_else(|_| format!("HTTP {status}"));
            Err(GatewayError::Rejected(format!(
                "authentification HelloAsso refusée : {message}"
            )))
        } else {
            Err(GatewayError::Unavailable(anyhow::anyhow!(
                "HelloAsso token endpoint answered HTTP {status}"
            )))
        }
    }

    /// Sends a call with the current token; a 401 (token expired or revoked early) is retried
    /// once with a renewed token.
    async fn call(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        let token = self.bearer(None).await?;
        let response = send(build(token.expose_secret())).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let token = self.bearer(Some(&token)).await?;
        send(build(token.expose_secret())).await
    }

    async fn read_intent(&self, id: &str) -> Result<HelloAssoCheckoutIntent, GatewayError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GatewayError::Rejected(format!(
                "identifiant d'intention HelloAsso invalide : {id}"
            )));
        }
        read_json(self.intent_response(id).await?).await
    }

    async fn intent_response(&self, id: &str) -> Result<reqwest::Response, GatewayError> {
        let url = self.intent_url(id);
        self.call(|token| self.http.get(&url).bearer_auth(token))
            .await
    }

    /// The checkout intent a notification is about: named by an Order event, or reached from
    /// a Payment event through its order.
    async fn intent_of(
        &self,
        notification: &HelloAssoNotification,
    ) -> Result<Option<String>, GatewayError> {
        let data = &notification.data;
        match notification.event_type.as_str() {
            "Order" => Ok(data.get("checkoutIntentId").and_then(number_text)),
            "Payment" => {
                if let Some(id) = data
                    .pointer("/order/checkoutIntentId")
                    .and_then(number_text)
                {
                    return Ok(Some(id));
                }
                // The spec gives `checkoutIntentId` only "if available": the order has it.
                let Some(order_id) = data.pointer("/order/id").and_then(number_text) else {
                    return Ok(None);
                };
                let url = format!("{}/v5/orders/{order_id}", self.api_base);
                let response = self
                    .call(|token| self.http.get(&url).bearer_auth(token))
                    .await?;
                let order: HelloAssoOrder = read_json(response).await?;
                Ok(order.checkout_intent_id.map(|id| id.to_string()))
            }
            _ => Ok(None),
        }
    }

    fn check_signature(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<(), NotificationError> {
        let Some(key) = &self.signature_key else {
            return Ok(());
        };
        let given = notification
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| NotificationError::Forged("no x-ha-signature".into()))?;
        let expected = hex::decode(given.trim())
            .map_err(|_| NotificationError::Forged("signature is not hex".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes())
            .map_err(|_| NotificationError::Unverifiable(anyhow::anyhow!("unusable key")))?;
        mac.update(notification.body);
        mac.verify_slice(&expected)
            .map_err(|_| NotificationError::Forged("signature does not match".into()))
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, GatewayError> {
    request
        .send()
        .await
        .context("HelloAsso API unreachable")
        .map_err(GatewayError::Unavailable)
}

fn number_text(value: &serde_json::Value) -> Option<String> {
    value.as_i64().map(|n| n.to_string())
}

/// The body of a 2xx answer, HelloAsso's message for a 4xx.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    super::read_answer(response, "HelloAsso", |e: HelloAssoErrors| {
        Some(
            e.errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" ; "),
        )
    })
    .await
}

/// Splits `total` into `count` monthly terms, the first charged now and taking the odd cents;
/// the later ones dated on the same day of the following months (at most the 28th, which
/// every month has).
fn monthly_terms(
    total: Money,
    count: u8,
    today: time::Date,
) -> Result<(i64, Vec<HelloAssoTerm>), GatewayError> {
    if !(2..=4).contains(&count) {
        return Err(GatewayError::Rejected(format!(
            "HelloAsso : paiement en {count} fois non proposé (2 à 4)"
        )));
    }
    let share = total.cents() / i64::from(count);
    if share < 1 {
        return Err(GatewayError::Rejected(
            "montant trop faible pour des échéances".into(),
        ));
    }
    let initial = total.cents() - share * (i64::from(count) - 1);
    let day = today.day().min(28);
    let mut terms = Vec::new();
    for k in 1..i32::from(count) {
        let months = i32::from(u8::from(today.month())) - 1 + k;
        let year = today.year() + months / 12;
        let month = time::Month::try_from((months % 12 + 1) as u8)
            .map_err(|e| GatewayError::Unavailable(anyhow::anyhow!(e)))?;
        let date = time::Date::from_calendar_date(year, month, day)
            .map_err(|e| GatewayError::Unavailable(anyhow::anyhow!(e)))?;
        terms.push(HelloAssoTerm {
            amount: share,
            date: format!("{date}T12:00:00Z"),
        });
    }
    Ok((initial, terms))
}

#[async_trait]
impl Gateway for HelloAssoGateway {
    fn id(&self) -> &'static str {
        "helloasso"
    }

    fn display_name(&self) -> &'static str {
        "HelloAsso"
    }

    fn test_mode(&self) -> bool {
        !self.live
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            // The refund's `amount` parameter (HelloAsso calls partial refunds a beta).
            partial_refund: true,
            // An unpaid checkout intent cannot be cancelled: it expires.
            cancel: false,
            // Free for associations: no fee to book.
            fees: false,
            saved_cards: false,
            installments: true,
            verification: "x-ha-signature (HMAC-SHA256) when a signature key is set; the checkout intent is always re-read with obole's token",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        if !request.currency.eq_ignore_ascii_case("EUR") {
            return Err(GatewayError::Rejected(
                "HelloAsso n'encaisse qu'en euros".into(),
            ));
        }
        let (initial, terms) = match request.installments {
            Some(count) => monthly_terms(
                request.amount,
                count,
                time::OffsetDateTime::now_utc().date(),
            )?,
            None => (request.amount.cents(), Vec::new()),
        };
        let (first_name, last_name) =
            acceptable_names(&request.payer_first_name, &request.payer_last_name);
        let email = Some(request.payer_email.trim()).filter(|e| acceptable_email(e));
        let payer = (first_name.is_some() || last_name.is_some() || email.is_some()).then_some(
            HelloAssoPayer {
                first_name,
                last_name,
                email,
            },
        );
        let item_name: String = request.description.chars().take(250).collect();
        let body = HelloAssoInitCheckout {
            total_amount: request.amount.cents(),
            initial_amount: initial,
            item_name: &item_name,
            back_url: &request.cancel_url,
            error_url: &request.error_url,
            return_url: &request.return_url,
            contains_donation: request.contains_donation,
            terms,
            payer,
            metadata: serde_json::json!({ REFERENCE_KEY: request.payment_id }),
        };
        let url = format!(
            "{}/v5/organizations/{}/checkout-intents",
            self.api_base, self.organization_slug
        );
        let response = self
            .call(|token| self.http.post(&url).bearer_auth(token).json(&body))
            .await?;
        let created: HelloAssoInitCheckoutResponse = read_json(response).await?;
        let redirect_url = created.redirect_url.ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("HelloAsso gave no redirect URL"))
        })?;
        Ok(Checkout {
            gateway_ref: created.id.to_string(),
            redirect_url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        self.check_signature(notification)?;
        let hint: HelloAssoNotification = serde_json::from_slice(notification.body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let intent_id = match self.intent_of(&hint).await {
            Ok(Some(id)) if id.bytes().all(|b| b.is_ascii_digit()) => id,
            Ok(_) => return Ok(None),
            Err(error) => return Err(NotificationError::Unverifiable(error.into())),
        };
        let response = self
            .intent_response(&intent_id)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        // HelloAsso does not show it to this organization: nothing of obole's.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let intent: HelloAssoCheckoutIntent = read_json(response)
            .await
            .map_err(|e| NotificationError::Unverifiable(e.into()))?;
        Ok(Some(intent.into_report(self.live, None)))
    }

    #[tracing::instrument(skip_all, fields(gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        Ok(self
            .read_intent(gateway_ref)
            .await?
            .into_report(self.live, None))
    }

    /// HelloAsso refunds a payment (one term), not an order: the first term that can give the
    /// whole amount back is refunded. HelloAsso takes no idempotency key; obole's refund row,
    /// written before this call, is what prevents a second request.
    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let intent = self.read_intent(&request.gateway_ref).await?;
        let order = intent.order.ok_or_else(|| {
            GatewayError::Rejected("aucun paiement HelloAsso à rembourser".into())
        })?;
        let amount = request.amount.cents();
        let target = order
            .payments_in_order()
            .into_iter()
            .filter(|p| p.was_captured())
            .find(|p| p.amount - p.refunded() >= amount)
            .ok_or_else(|| {
                GatewayError::Rejected(format!(
                    "aucune échéance HelloAsso ne peut rembourser {} à elle seule",
                    request.amount
                ))
            })?;
        let whole = amount == target.amount && target.refunded() == 0;
        let mut query: Vec<(&str, String)> = vec![(
            "comment",
            format!("Remboursement obole {}", request.payment_id),
        )];
        if !whole {
            query.push(("amount", amount.to_string()));
        }
        let url = format!("{}/v5/payments/{}/refund", self.api_base, target.id);
        let response = self
            .call(|token| self.http.post(&url).bearer_auth(token).query(&query))
            .await?;
        let refund: HelloAssoRefundResponse = read_json(response).await?;
        Ok(RefundOutcome {
            refund_id: refund.id.to_string(),
            amount: Money::from_cents(refund.amount),
            status: refund.state.into(),
        })
    }

    /// A fresh client-credentials grant: HelloAsso's token endpoint checks the client id and
    /// secret (the cached token is left alone).
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        self.client_grant().await?;
        Ok(ConnectionCheck { live: self.live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: time::Month, d: u8) -> time::Date {
        time::Date::from_calendar_date(y, m, d).unwrap()
    }

    #[test]
    fn terms_add_up_to_the_total_and_the_first_takes_the_odd_cents() {
        let (initial, terms) = monthly_terms(
            Money::from_cents(10_000),
            3,
            date(2026, time::Month::May, 4),
        )
        .unwrap();
        assert_eq!(initial, 3334);
        assert_eq!(
            terms.iter().map(|t| t.amount).collect::<Vec<_>>(),
            [3333, 3333]
        );
        assert_eq!(
            initial + terms.iter().map(|t| t.amount).sum::<i64>(),
            10_000
        );
        assert_eq!(terms[0].date, "2026-06-04T12:00:00Z");
        assert_eq!(terms[1].date, "2026-07-04T12:00:00Z");
    }

    #[test]
    fn terms_cross_the_year_and_avoid_days_some_months_lack() {
        let (_, terms) = monthly_terms(
            Money::from_cents(4000),
            4,
            date(2026, time::Month::November, 30),
        )
        .unwrap();
        let dates: Vec<&str> = terms.iter().map(|t| t.date.as_str()).collect();
        assert_eq!(
            dates,
            [
                "2026-12-28T12:00:00Z",
                "2027-01-28T12:00:00Z",
                "2027-02-28T12:00:00Z"
            ]
        );
    }

    #[test]
    fn only_two_to_four_terms_are_offered() {
        let today = date(2026, time::Month::May, 4);
        for count in [0, 1, 5, 12] {
            assert!(monthly_terms(Money::from_cents(10_000), count, today).is_err());
        }
    }
}
