//! PayPlug's driver for the contract suite: notifications are the unsigned payment resource,
//! so a forged one is a copy claiming `is_paid` that the re-fetch contradicts.

use obole::config::Settings;
use obole::gateways::payplug::{API_VERSION, EMULATOR_SECRET_KEY};

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;

pub struct PayPlugDriver;

impl PayPlugDriver {
    /// The payment as the emulated PayPlug API has it.
    pub async fn fetched(app: &TestApp, gateway_ref: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!(
                "{}/sandbox/payplug/v1/payments/{gateway_ref}",
                app.address
            ))
            .bearer_auth(EMULATOR_SECRET_KEY)
            .header("PayPlug-Version", API_VERSION)
            .send()
            .await
            .expect("PayPlug emulator")
            .json()
            .await
            .expect("PayPlug payment")
    }

    pub fn as_notification(resource: &serde_json::Value) -> Notification {
        (
            vec![("Content-Type".into(), "application/json".into())],
            serde_json::to_vec(resource).unwrap(),
        )
    }
}

impl GatewayDriver for PayPlugDriver {
    fn id(&self) -> &'static str {
        "payplug"
    }

    fn configure(&self, settings: &mut Settings) {
        settings.gateways.push("payplug".into());
        settings.payplug.emulator = true;
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.payplug.api_base = Some(format!("{base_url}/sandbox/payplug"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        Self::as_notification(&Self::fetched(app, gateway_ref).await)
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let mut resource = Self::fetched(app, gateway_ref).await;
        resource["is_paid"] = true.into();
        resource["paid_at"] = 1_700_000_000.into();
        resource["failure"] = serde_json::Value::Null;
        Self::as_notification(&resource)
    }

    fn forged_status(&self) -> u16 {
        200
    }
}
