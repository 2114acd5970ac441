//! The Stripe gateway's driver for the contract suite, backed by obole's Stripe emulator.

use obole::config::Settings;
use obole::gateways::stripe::{EMULATOR_SECRET_KEY, EMULATOR_WEBHOOK_SECRET, signature_header};

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct StripeDriver;

impl StripeDriver {
    /// The session as Stripe's API returns it now.
    pub async fn session(app: &TestApp, gateway_ref: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!(
                "{}/sandbox/stripe/v1/checkout/sessions/{gateway_ref}",
                app.address
            ))
            .bearer_auth(EMULATOR_SECRET_KEY)
            .send()
            .await
            .expect("Stripe emulator")
            .json()
            .await
            .expect("a checkout session")
    }

    /// An event as Stripe delivers it, signed with `secret` at `timestamp`.
    pub fn event(
        kind: &str,
        object: serde_json::Value,
        secret: &str,
        timestamp: i64,
    ) -> Notification {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "object": "event",
            "api_version": obole::gateways::stripe::API_VERSION,
            "created": timestamp,
            "data": { "object": object },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": kind,
        }))
        .unwrap();
        let signature = signature_header(secret, timestamp, &body);
        (vec![("Stripe-Signature".into(), signature)], body)
    }

    pub fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

impl GatewayDriver for StripeDriver {
    fn id(&self) -> &'static str {
        "stripe"
    }

    fn configure(&self, settings: &mut Settings) {
        settings.gateways.push("stripe".into());
        settings.stripe.emulator = true;
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.stripe.api_base = Some(format!("{base_url}/sandbox/stripe"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let session = Self::session(app, gateway_ref).await;
        let kind = match session["status"].as_str() {
            Some("expired") => "checkout.session.expired",
            _ => "checkout.session.completed",
        };
        Self::event(kind, session, EMULATOR_WEBHOOK_SECRET, Self::now())
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let mut session = Self::session(app, gateway_ref).await;
        session["status"] = "complete".into();
        session["payment_status"] = "paid".into();
        Self::event(
            "checkout.session.completed",
            session,
            "whsec_not_the_secret",
            Self::now(),
        )
    }

    fn forged_status(&self) -> u16 {
        401
    }
}
