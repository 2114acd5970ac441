//! Stancer's driver for the contract suite. Stancer sends no notification: anything posted to
//! obole about it is a hint naming an intent, which obole reads back with its own key. A
//! genuine hint and a forged one look alike; only Stancer's answer decides.

use obole::config::Settings;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct StancerDriver;

fn json(body: serde_json::Value) -> Notification {
    (
        vec![("Content-Type".into(), "application/json".into())],
        body.to_string().into_bytes(),
    )
}

impl GatewayDriver for StancerDriver {
    fn id(&self) -> &'static str {
        "stancer"
    }

    fn configure(&self, settings: &mut Settings) {
        settings.gateways.push("stancer".into());
        settings.stancer.emulator = true;
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.stancer.api_base = Some(format!("{base_url}/sandbox/stancer"));
    }

    async fn genuine_notification(
        &self,
        _app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        json(serde_json::json!({ "id": gateway_ref }))
    }

    /// Claims the intent is captured while Stancer still waits for a card: obole must
    /// believe Stancer.
    async fn forged_notification(
        &self,
        _app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        json(serde_json::json!({
            "id": gateway_ref,
            "status": "captured",
            "order_id": payment_id,
            "amount": 3000,
        }))
    }

    fn forged_status(&self) -> u16 {
        200
    }
}
