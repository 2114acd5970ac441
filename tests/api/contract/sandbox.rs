//! The sandbox gateway's driver for the contract suite.

use obole::config::Settings;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct SandboxDriver;

impl SandboxDriver {
    async fn fetched(app: &TestApp, gateway_ref: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!(
                "{}/sandbox/api/v1/payments/{gateway_ref}",
                app.address
            ))
            .bearer_auth("sk_sandbox_demo_key")
            .send()
            .await
            .expect("sandbox API")
            .json()
            .await
            .expect("sandbox payment")
    }
}

impl GatewayDriver for SandboxDriver {
    fn id(&self) -> &'static str {
        "sandbox"
    }

    fn configure(&self, _settings: &mut Settings) {}

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.sandbox.api_base = Some(format!("{base_url}/sandbox/api"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let data = Self::fetched(app, gateway_ref).await;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "type": "payment.updated",
            "created": 1_700_000_000,
            "data": data,
        }))
        .unwrap();
        let signature = app.sign(&body);
        (vec![("X-Sandbox-Signature".into(), signature)], body)
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let body = app.sandbox_event(payment_id, gateway_ref, "succeeded", 3000);
        let signature = obole::sandbox::sign("whsec_not_the_secret", &body);
        (vec![("X-Sandbox-Signature".into(), signature)], body)
    }

    fn forged_status(&self) -> u16 {
        401
    }
}
