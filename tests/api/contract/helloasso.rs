//! HelloAsso's driver for the contract suite. HelloAsso's notifications are hints (no
//! signature key configured here): a forged one is answered 200 and changes nothing, because
//! obole re-reads the checkout intent.

use obole::config::Settings;
use serde_json::json;

use super::{GatewayDriver, Notification};
use crate::helloasso::order_notification;
use crate::helpers::TestApp;

pub struct HelloAssoDriver;

impl GatewayDriver for HelloAssoDriver {
    fn id(&self) -> &'static str {
        "helloasso"
    }

    fn configure(&self, settings: &mut Settings) {
        if !settings.gateways.iter().any(|g| g == "helloasso") {
            settings.gateways.push("helloasso".into());
        }
        settings.helloasso.emulator = true;
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.helloasso.api_base = Some(format!("{base_url}/sandbox/helloasso"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let body = order_notification(app, gateway_ref).await;
        (
            vec![("Content-Type".into(), "application/json".into())],
            body,
        )
    }

    async fn forged_notification(
        &self,
        _app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let id: i64 = gateway_ref.parse().expect("an int32 intent id");
        let body = serde_json::to_vec(&json!({
            "eventType": "Order",
            "data": {
                "id": 1, "checkoutIntentId": id, "formType": "Checkout",
                "amount": {"total": 3000, "vat": 0, "discount": 0},
                "payments": [{"id": 2, "amount": 3000, "installmentNumber": 1, "state": "Authorized"}]
            },
            "metadata": {"obolePaymentId": payment_id},
        }))
        .unwrap();
        (
            vec![("Content-Type".into(), "application/json".into())],
            body,
        )
    }

    fn forged_status(&self) -> u16 {
        200
    }
}
