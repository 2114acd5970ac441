//! HelloAsso's driver for the contract suite. HelloAsso's notifications are hints (no
//! signature key configured here): a forged one is answered 200 and changes nothing, because
//! obole re-reads the checkout intent.

use obole::config::Settings;
use serde_json::{Value, json};

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct HelloAssoDriver;

/// A token from the emulated HelloAsso, with the test client's credentials.
pub async fn emulator_token(app: &TestApp) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/helloasso/oauth2/token", app.address))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "ha_emulator_client"),
            ("client_secret", "ha_emulator_secret"),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token");
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// The checkout intent as HelloAsso shows it.
pub async fn fetched_intent(app: &TestApp, gateway_ref: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/sandbox/helloasso/v5/organizations/association-demo/checkout-intents/{gateway_ref}",
            app.address
        ))
        .bearer_auth(emulator_token(app).await)
        .send()
        .await
        .expect("HelloAsso API")
        .json()
        .await
        .expect("checkout intent")
}

/// An Order notification as HelloAsso sends it for this intent.
pub async fn order_notification(app: &TestApp, gateway_ref: &str) -> Vec<u8> {
    let intent = fetched_intent(app, gateway_ref).await;
    let data = intent
        .get("order")
        .cloned()
        .unwrap_or_else(|| json!({"checkoutIntentId": intent["id"]}));
    serde_json::to_vec(&json!({
        "eventType": "Order",
        "data": data,
        "metadata": intent["metadata"],
    }))
    .unwrap()
}

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
