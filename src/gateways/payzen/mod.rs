//! obole's connector for PayZen (Lyra) REST API V4: JSON web services behind HTTP Basic
//! `shopId:password`, a payment order (`Charge/CreatePaymentOrder`, URL channel) whose
//! `paymentURL` is the hosted page, IPNs proved by `kr-hash` (HMAC-SHA256 of the exact
//! `kr-answer` under the REST password), refunds of a transaction by its uuid.
//!
//! PayZen answers business errors with HTTP 200 and `"status": "ERROR"`: the envelope, not the
//! HTTP code, decides. Its API reports no fees, documents no idempotency key, and payment
//! orders expire on their own (no cancellation offered).

mod transformers;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use self::transformers::{HASH_ALGORITHM, IPN_HASH_KEY, ORDER_ID_MAX_LEN, ipn_hash};
use self::transformers::{
    IpnProblem, PayZenBillingDetails, PayZenCallStatus, PayZenCancelOrRefund, PayZenChannelOptions,
    PayZenCreatePaymentOrder, PayZenCustomer, PayZenEnvelope, PayZenError, PayZenIpnForm,
    PayZenOrderRef, PayZenOrderTransactions, PayZenPayment, PayZenPaymentOrder,
    PayZenPaymentOrderRef, PayZenSdkTest, PayZenStatus, PayZenTransaction, is_capture, is_refund,
};
use super::{
    Capabilities, Capture, Checkout, CheckoutRequest, ConnectionCheck, Gateway, GatewayError,
    GatewayReport, IncomingNotification, NotificationError, RefundFact, RefundOutcome,
    RefundRequest, RefundStatus,
};
use crate::config::Settings;
use crate::domain::{Money, PaymentStatus};

/// The test shop of obole's PayZen emulator (`/sandbox/payzen/`).
pub const EMULATOR_SHOP_ID: &str = "69876357";
pub const EMULATOR_PASSWORD: &str = "testpassword_OBOLEemulatorQ1w2E3r4T5y6U7i8O9p0";

/// One host for test and production: the password decides the mode.
const LIVE_API_BASE: &str = "https://api.payzen.eu/api-payment/V4";

/// Settings of the PayZen connector (`[payzen]` in the file, `OBOLE_PAYZEN__*` in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PayZenSettings {
    /// Point the connector at obole's own emulator (`/sandbox/payzen/`) with its test keys.
    pub emulator: bool,
    /// Where the V4 web services are; defaults to `https://api.payzen.eu/api-payment/V4`, or
    /// to the emulator.
    pub api_base: Option<String>,
    /// The shop id (8 digits), user of HTTP Basic.
    pub shop_id: String,
    /// The REST API password: `testpassword_…` (test mode) or `prodpassword_…`. It also signs
    /// the IPNs.
    pub password: SecretString,
}

impl Default for PayZenSettings {
    fn default() -> Self {
        PayZenSettings {
            emulator: false,
            api_base: None,
            shop_id: EMULATOR_SHOP_ID.into(),
            password: SecretString::from(EMULATOR_PASSWORD),
        }
    }
}

pub struct PayZenGateway {
    api_base: String,
    shop_id: String,
    password: SecretString,
    http: reqwest::Client,
}

impl PayZenGateway {
    pub fn new(settings: &Settings, base_url: &str, http: reqwest::Client) -> Self {
        let payzen = &settings.payzen;
        let api_base = match (&payzen.api_base, payzen.emulator) {
            (Some(base), _) => base.trim_end_matches('/').to_string(),
            (None, true) => format!(
                "{}/sandbox/payzen/api-payment/V4",
                base_url.trim_end_matches('/')
            ),
            (None, false) => LIVE_API_BASE.to_string(),
        };
        PayZenGateway {
            api_base,
            shop_id: payzen.shop_id.clone(),
            password: payzen.password.clone(),
            http,
        }
    }

    /// Calls one web service and reads its envelope: `SUCCESS` gives the answer, `ERROR` the
    /// refusal with PayZen's message.
    async fn call<T: DeserializeOwned>(
        &self,
        service: &str,
        body: &impl serde::Serialize,
    ) -> Result<(T, bool), GatewayError> {
        let response = self
            .http
            .post(format!("{}/{service}", self.api_base))
            .basic_auth(&self.shop_id, Some(self.password.expose_secret()))
            .json(body)
            .send()
            .await
            .context("PayZen API unreachable")
            .map_err(GatewayError::Unavailable)?;
        let status = response.status();
        // Lyra's own SDK reads 200 and 401 as API answers; anything else is an outage.
        if status != reqwest::StatusCode::OK && status != reqwest::StatusCode::UNAUTHORIZED {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "PayZen answered HTTP {status} to {service}"
            )));
        }
        let envelope: PayZenEnvelope = response
            .json()
            .await
            .context("unreadable PayZen answer")
            .map_err(GatewayError::Unavailable)?;
        match envelope.status {
            PayZenCallStatus::Success => {
                let live = envelope.mode.as_deref() == Some("PRODUCTION");
                let answer = serde_json::from_value(envelope.answer)
                    .with_context(|| format!("unexpected answer to {service}"))
                    .map_err(GatewayError::Unavailable)?;
                Ok((answer, live))
            }
            PayZenCallStatus::Error => {
                let error: PayZenError = serde_json::from_value(envelope.answer)
                    .with_context(|| format!("unreadable error from {service}"))
                    .map_err(GatewayError::Unavailable)?;
                tracing::warn!(service, code = ?error.error_code, "PayZen refused the call");
                Err(GatewayError::Rejected(error.message()))
            }
            PayZenCallStatus::Unknown => Err(GatewayError::Unavailable(anyhow::anyhow!(
                "PayZen answered an unknown status to {service}"
            ))),
        }
    }

    async fn transactions(&self, order_id: &str) -> Result<Vec<PayZenTransaction>, GatewayError> {
        let (order, _): (PayZenOrderTransactions, _) =
            self.call("Order/Get", &PayZenOrderRef { order_id }).await?;
        Ok(order.transactions)
    }

    /// What PayZen says now: the payment order's status, and the order's transactions.
    async fn report(&self, payment_order_id: &str) -> Result<GatewayReport, GatewayError> {
        let (order, live): (PayZenPaymentOrder, bool) = self
            .call(
                "Charge/PaymentOrder/Get",
                &PayZenPaymentOrderRef { payment_order_id },
            )
            .await?;
        let transactions = match order.order_id.as_deref() {
            Some(order_id) if !order_id.is_empty() => self.transactions(order_id).await?,
            _ => Vec::new(),
        };
        let status = PayZenStatus::PaymentOrder(order.payment_order_status).into();
        Ok(report_of(
            order.payment_order_id,
            order.order_id,
            status,
            order.amount,
            order.currency,
            live,
            &transactions,
        ))
    }

    /// The debit to refund: the capture obole posted, or the order's paid debit.
    async fn debit_of(&self, request: &RefundRequest) -> Result<String, GatewayError> {
        if let Some(capture) = request.capture_ids.first() {
            return Ok(capture.clone());
        }
        self.transactions(&request.payment_id)
            .await?
            .into_iter()
            .find(is_capture)
            .map(|t| t.uuid)
            .ok_or_else(|| {
                GatewayError::Rejected(
                    "cette commande PayZen n'a pas de paiement à rembourser".into(),
                )
            })
    }
}

/// A report from a status and the order's transactions: paid debits are the captures (PayZen
/// reports no fee), paid credits the refunds.
fn report_of(
    gateway_ref: String,
    reference: Option<String>,
    status: PaymentStatus,
    order_amount: i64,
    currency: String,
    live: bool,
    transactions: &[PayZenTransaction],
) -> GatewayReport {
    let captures: Vec<Capture> = if status == PaymentStatus::Paid {
        transactions
            .iter()
            .filter(|t| is_capture(t))
            .map(|t| Capture {
                id: t.uuid.clone(),
                amount: Money::from_cents(t.amount),
                fee: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    // What was paid is what the payment is for, at the gateway: the writer compares it.
    let amount = if captures.is_empty() {
        order_amount
    } else {
        captures.iter().map(|c| c.amount.cents()).sum()
    };
    GatewayReport {
        gateway_ref,
        reference: reference.filter(|r| !r.is_empty()),
        status,
        amount: Money::from_cents(amount),
        currency,
        live,
        event_id: None,
        captures,
        refunds: transactions
            .iter()
            .filter(|t| is_refund(t))
            .map(|t| RefundFact {
                id: t.uuid.clone(),
                amount: Money::from_cents(t.amount),
            })
            .collect(),
        saved_method: None,
    }
}

/// The body of `Charge/CreatePaymentOrder` for one dues payment.
fn payment_order<'a>(request: &'a CheckoutRequest) -> PayZenCreatePaymentOrder<'a> {
    PayZenCreatePaymentOrder {
        amount: request.amount.cents(),
        currency: &request.currency,
        order_id: &request.payment_id,
        channel_options: PayZenChannelOptions {
            channel_type: "URL",
        },
        customer: PayZenCustomer {
            email: &request.payer_email,
            billing_details: PayZenBillingDetails {
                first_name: &request.payer_first_name,
                last_name: &request.payer_last_name,
                language: "FR",
            },
        },
        description: &request.description,
        locale: "fr_FR",
        ipn_target_url: &request.notification_url,
        success_url: &request.return_url,
        // A refusal is no error of the gateway: the payment page tells the member.
        refused_url: &request.return_url,
        cancel_url: &request.cancel_url,
        error_url: &request.error_url,
    }
}

#[async_trait]
impl Gateway for PayZenGateway {
    fn id(&self) -> &'static str {
        "payzen"
    }

    fn display_name(&self) -> &'static str {
        "PayZen"
    }

    fn test_mode(&self) -> bool {
        !self.password.expose_secret().starts_with("prodpassword_")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            refund: true,
            partial_refund: true,
            cancel: false,
            fees: false,
            saved_cards: false,
            installments: false,
            verification: "kr-hash: HMAC-SHA256 of the exact kr-answer under the REST password \
                           (kr-hash-key=password)",
        }
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn create_payment(&self, request: &CheckoutRequest) -> Result<Checkout, GatewayError> {
        if request.payment_id.len() > ORDER_ID_MAX_LEN {
            return Err(GatewayError::Rejected(format!(
                "référence trop longue pour PayZen ({} caractères au plus)",
                ORDER_ID_MAX_LEN
            )));
        }
        let (order, _): (PayZenPaymentOrder, bool) = self
            .call("Charge/CreatePaymentOrder", &payment_order(request))
            .await?;
        let redirect_url = order.payment_url.ok_or_else(|| {
            GatewayError::Unavailable(anyhow::anyhow!("PayZen gave no paymentURL"))
        })?;
        Ok(Checkout {
            gateway_ref: order.payment_order_id,
            redirect_url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn verify_notification(
        &self,
        notification: &IncomingNotification<'_>,
    ) -> Result<Option<GatewayReport>, NotificationError> {
        let form: PayZenIpnForm = serde_urlencoded::from_bytes(notification.body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let answer = transformers::verify_ipn(self.password.expose_secret().as_bytes(), &form)
            .map_err(|problem| match problem {
                IpnProblem::Unreadable(why) => NotificationError::Malformed(why.into()),
                IpnProblem::NotSigned(why) => NotificationError::Forged(why.into()),
                IpnProblem::WrongSignature => {
                    NotificationError::Forged("kr-hash does not match kr-answer".into())
                }
            })?;
        let payment: PayZenPayment = serde_json::from_str(answer)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let Some(payment_order_id) = payment.payment_order_id.filter(|id| !id.is_empty()) else {
            // Signed, but about a payment made outside a payment order: not obole's.
            return Ok(None);
        };
        let status = PayZenStatus::Order(payment.order_status).into();
        let details = payment.order_details;
        Ok(Some(report_of(
            payment_order_id,
            details.order_id,
            status,
            details.order_total_amount,
            details.order_currency,
            details.mode == "PRODUCTION",
            &payment.transactions,
        )))
    }

    #[tracing::instrument(skip_all, fields(gateway_ref = %gateway_ref))]
    async fn fetch_payment(&self, gateway_ref: &str) -> Result<GatewayReport, GatewayError> {
        self.report(gateway_ref).await
    }

    #[tracing::instrument(skip_all, fields(payment_id = %request.payment_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let uuid = self.debit_of(request).await?;
        let (credit, _): (PayZenTransaction, bool) = self
            .call(
                "Transaction/CancelOrRefund",
                &PayZenCancelOrRefund {
                    uuid: &uuid,
                    amount: request.amount.cents(),
                    currency: &request.currency,
                    resolution_mode: "REFUND_ONLY",
                },
            )
            .await?;
        Ok(RefundOutcome {
            refund_id: credit.uuid,
            amount: Money::from_cents(credit.amount),
            status: RefundStatus::from(credit.status),
        })
    }

    /// `Charge/SDKTest`, Lyra's own test web service: it echoes a value, and needs the shop
    /// id and password like any other. The envelope's `mode` tells test from production.
    async fn check_connection(&self) -> Result<ConnectionCheck, GatewayError> {
        let sent = PayZenSdkTest {
            value: "obole".into(),
        };
        let (echo, live): (PayZenSdkTest, bool) = self.call("Charge/SDKTest", &sent).await?;
        if echo.value != sent.value {
            return Err(GatewayError::Unavailable(anyhow::anyhow!(
                "PayZen's SDKTest answered another value"
            )));
        }
        Ok(ConnectionCheck { live })
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
            return_url: "https://obole.example/payments/pay_1/return".into(),
            cancel_url: "https://obole.example/payments/pay_1/return?retour=abandon".into(),
            error_url: "https://obole.example/payments/pay_1/return?retour=erreur".into(),
            notification_url: "https://obole.example/webhooks/payzen".into(),
            installments: None,
            contains_donation: false,
            save_card: None,
        }
    }

    #[test]
    fn the_payment_order_carries_integer_cents_the_reference_and_the_urls() {
        let body = serde_json::to_value(payment_order(&request())).unwrap();
        assert_eq!(body["amount"], serde_json::json!(3050));
        assert_eq!(body["currency"], "EUR");
        assert_eq!(body["orderId"], "pay_1");
        assert_eq!(body["channelOptions"]["channelType"], "URL");
        assert_eq!(body["customer"]["email"], "m@exemple.org");
        assert_eq!(
            body["ipnTargetUrl"],
            "https://obole.example/webhooks/payzen"
        );
        assert_eq!(
            body["cancelUrl"],
            "https://obole.example/payments/pay_1/return?retour=abandon"
        );
    }

    #[test]
    fn the_mode_follows_the_password() {
        let mut settings = Settings::default();
        let gateway = PayZenGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(gateway.test_mode());
        settings.payzen.password = SecretString::from("prodpassword_abc");
        let gateway = PayZenGateway::new(&settings, "http://x", reqwest::Client::new());
        assert!(!gateway.test_mode());
    }

    #[test]
    fn a_paid_report_counts_what_was_paid_and_the_credits() {
        let transactions: Vec<PayZenTransaction> = serde_json::from_str(
            r#"[{"uuid":"d","amount":2000,"status":"PAID","operationType":"DEBIT"},
                {"uuid":"c","amount":500,"status":"PAID","operationType":"CREDIT"}]"#,
        )
        .unwrap();
        let report = report_of(
            "po".into(),
            Some("pay_1".into()),
            PaymentStatus::Paid,
            3000,
            "EUR".into(),
            false,
            &transactions,
        );
        assert_eq!(report.amount, Money::from_cents(2000));
        assert_eq!(report.captures.len(), 1);
        assert_eq!(report.captures[0].fee, None);
        assert_eq!(report.refunds[0].id, "c");
    }
}
