//! Mollie's driver for the contract suite: its classic webhook is an unsigned form POST of
//! the payment's id, so a genuine and a forged notification look alike; only the payment
//! that obole fetches back from Mollie decides.

use obole::config::Settings;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct MollieDriver;

fn form(body: String) -> Notification {
    (
        vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body.into_bytes(),
    )
}

impl GatewayDriver for MollieDriver {
    fn id(&self) -> &'static str {
        "mollie"
    }

    fn configure(&self, settings: &mut Settings) {
        settings.gateways.push("mollie".into());
        settings.mollie.emulator = true;
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.mollie.api_base = Some(format!("{base_url}/sandbox/mollie"));
    }

    async fn genuine_notification(
        &self,
        _app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        form(format!("id={gateway_ref}"))
    }

    /// Claims the payment is paid while Mollie still has it open: obole must believe Mollie.
    async fn forged_notification(
        &self,
        _app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        form(format!("id={gateway_ref}&status=paid&amount=30.00"))
    }

    fn forged_status(&self) -> u16 {
        200
    }
}
