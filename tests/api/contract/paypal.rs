//! PayPal's driver for the contract suite: a genuine notification is a webhook event the
//! emulator sent (its transmission headers and exact body), which PayPal's
//! `verify-webhook-signature` recognises; a forged one is an event PayPal never sent.

use obole::config::Settings;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct PayPalDriver;

impl GatewayDriver for PayPalDriver {
    fn id(&self) -> &'static str {
        "paypal"
    }

    fn configure(&self, settings: &mut Settings) {
        crate::paypal::configure(settings);
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.paypal.api_base = Some(format!("{base_url}/sandbox/paypal"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        crate::paypal::last_event(app, gateway_ref).await
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        crate::paypal::forged_capture_event(app, gateway_ref).await
    }

    fn forged_status(&self) -> u16 {
        401
    }
}
