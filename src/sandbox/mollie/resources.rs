//! The emulated payment and refund as Mollie's API shows them (HAL JSON).

use serde_json::{Value, json};

use super::wire::money_json;
use super::{EmulatedPayment, EmulatedRefund, Emulator, estimated_fee};
use crate::domain::Money;

impl Emulator {
    pub(super) fn checkout_url(&self, id: &str) -> String {
        format!("{}/sandbox/mollie/checkout/{id}", self.public_base)
    }

    pub(super) fn payment_json(&self, p: &EmulatedPayment, embed_refunds: bool) -> Value {
        let self_url = format!("{}/sandbox/mollie/v2/payments/{}", self.public_base, p.id);
        let mut body = json!({
            "resource": "payment",
            "id": p.id,
            "mode": if p.live { "live" } else { "test" },
            "createdAt": p.created_at,
            "amount": money_json(p.amount, &p.currency),
            "description": p.description,
            "method": Value::Null,
            "metadata": p.metadata,
            "status": p.status,
            "isCancelable": p.status == "open",
            "profileId": "pfl_emulator0",
            "sequenceType": "oneoff",
            "redirectUrl": p.redirect_url,
            "_links": {
                "self": {"href": self_url, "type": "application/hal+json"},
                "documentation": {"href": "https://docs.mollie.com/reference/get-payment", "type": "text/html"},
            },
        });
        let Some(object) = body.as_object_mut() else {
            return body;
        };
        for (key, value) in [
            ("cancelUrl", &p.cancel_url),
            ("webhookUrl", &p.webhook_url),
            ("locale", &p.locale),
        ] {
            if let Some(value) = value {
                object.insert(key.into(), Value::String(value.clone()));
            }
        }
        match (p.status, &p.closed_at) {
            ("open", _) => {
                object.insert("expiresAt".into(), json!(p.expires_at));
                object["_links"]["checkout"] =
                    json!({"href": self.checkout_url(&p.id), "type": "text/html"});
            }
            (status, Some(at)) => {
                let key = match status {
                    "paid" => "paidAt",
                    "canceled" => "canceledAt",
                    "expired" => "expiredAt",
                    _ => "failedAt",
                };
                object.insert(key.into(), json!(at));
            }
            _ => {}
        }
        if p.status == "paid" {
            let refunded = p.refunded();
            object.insert("amountRefunded".into(), money_json(refunded, &p.currency));
            object.insert(
                "amountRemaining".into(),
                money_json(p.amount - refunded, &p.currency),
            );
            object.insert(
                "settlementAmount".into(),
                money_json(p.amount - estimated_fee(p.amount), &p.currency),
            );
            if !p.refunds.is_empty() {
                object["_links"]["refunds"] = json!({
                    "href": format!("{self_url}/refunds"),
                    "type": "application/hal+json",
                });
            }
        }
        if embed_refunds {
            let refunds: Vec<Value> = p.refunds.iter().map(|r| self.refund_json(p, r)).collect();
            object.insert("_embedded".into(), json!({ "refunds": refunds }));
        }
        body
    }

    pub(super) fn refund_json(&self, p: &EmulatedPayment, r: &EmulatedRefund) -> Value {
        let payment_url = format!("{}/sandbox/mollie/v2/payments/{}", self.public_base, p.id);
        json!({
            "resource": "refund",
            "id": r.id,
            "mode": if p.live { "live" } else { "test" },
            "amount": money_json(r.amount, &p.currency),
            "settlementAmount": money_json(Money::ZERO - r.amount, &p.currency),
            "status": r.status,
            "description": r.description,
            "metadata": Value::Null,
            "paymentId": p.id,
            "createdAt": r.created_at,
            "_links": {
                "self": {"href": format!("{payment_url}/refunds/{}", r.id), "type": "application/hal+json"},
                "payment": {"href": payment_url, "type": "application/hal+json"},
            },
        })
    }
}
