//! PayZen's driver for the contract suite: the IPN is a form whose `kr-answer` is signed with
//! the REST password, so a genuine notification is the one the emulator would post now, and a
//! forged one claims the order paid under another key.

use obole::config::Settings;

use super::{GatewayDriver, Notification};
use crate::helpers::TestApp;
use crate::payzen::{current_ipn, form, ipn_fields, signed_ipn};

pub struct PayZenDriver;

impl GatewayDriver for PayZenDriver {
    fn id(&self) -> &'static str {
        "payzen"
    }

    fn configure(&self, settings: &mut Settings) {
        crate::payzen::configure(settings);
    }

    fn point_api_at(&self, settings: &mut Settings, base_url: &str) {
        settings.payzen.api_base = Some(format!("{base_url}/sandbox/payzen/api-payment/V4"));
    }

    async fn genuine_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        form(current_ipn(app, gateway_ref).await)
    }

    async fn forged_notification(
        &self,
        app: &TestApp,
        _payment_id: &str,
        gateway_ref: &str,
    ) -> Notification {
        let (mut answer, _) = ipn_fields(&current_ipn(app, gateway_ref).await);
        answer["orderStatus"] = "PAID".into();
        answer["transactions"] = serde_json::json!([{
            "uuid": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0", "amount": 3000, "currency": "EUR",
            "status": "PAID", "detailedStatus": "CAPTURED", "operationType": "DEBIT",
        }]);
        form(signed_ipn(
            &answer.to_string(),
            "testpassword_NOTtheShopPassword",
            "password",
        ))
    }

    fn forged_status(&self) -> u16 {
        401
    }
}
