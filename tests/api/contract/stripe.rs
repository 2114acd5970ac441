//! The Stripe gateway's driver for the contract suite, backed by obole's Stripe emulator.

use obole::config::Settings;
use obole::gateways::stripe::EMULATOR_WEBHOOK_SECRET;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;
use crate::stripe::{event, now, session};

pub struct StripeDriver;

impl GatewayDriver for StripeDriver {
    fn id(&self) -> &'static str {
        "stripe"
    }

    fn configure(&self, settings: &mut Settings) {
        crate::stripe::configure(settings);
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
        let session = session(app, gateway_ref).await;
        let kind = match session["status"].as_str() {
            Some("expired") => "checkout.session.expired",
            _ => "checkout.session.completed",
        };
        event(kind, session, EMULATOR_WEBHOOK_SECRET, now())
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let mut session = session(app, gateway_ref).await;
        session["status"] = "complete".into();
        session["payment_status"] = "paid".into();
        event(
            "checkout.session.completed",
            session,
            "whsec_not_the_secret",
            now(),
        )
    }

    fn forged_status(&self) -> u16 {
        401
    }
}
