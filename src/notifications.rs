//! Every notification a gateway sends is stored before anything else happens, then given a
//! verdict: the audit trail a treasurer can read.

use anyhow::Context;

use crate::db::{self, Pool, Tx};
use crate::gateways::GatewayReport;
use crate::payments::Applied;

/// Headers kept with a notification: those that carry signatures and identify the sender.
/// Anything resembling a credential (Authorization, cookies) is never stored.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-sandbox-signature",
    "stripe-signature",
    "x-ha-signature",
    "x-mollie-signature",
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
];

pub fn headers_to_keep(headers: &[(String, String)]) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| KEPT_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into()))
        .collect();
    serde_json::Value::Object(kept).to_string()
}

/// The body as stored: the text itself when it is clean UTF-8, otherwise `base64:` and the
/// exact bytes (PostgreSQL's text refuses NUL, and the audit trail must not alter a byte).
pub fn body_as_text(body: &[u8]) -> String {
    use base64::Engine;
    match std::str::from_utf8(body) {
        Ok(text) if !text.contains('\0') && !text.starts_with("base64:") => text.to_string(),
        _ => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(body)
        ),
    }
}

/// A notification as it arrived, not yet stored: it is written once, with its verdict, in
/// the transaction of what it changed (one durable commit), or alone when it changes nothing.
/// Either way before the gateway is answered 2xx; a notification cut short by a crash or an
/// outage is not answered, and the gateway's retry is stored instead.
#[derive(Debug, Clone)]
pub struct Received {
    id: String,
    gateway: String,
    received_at: String,
    remote_addr: Option<String>,
    headers: String,
    body: String,
}

impl Received {
    pub fn new(
        gateway: &str,
        remote_addr: Option<&str>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Received {
        Received {
            id: db::new_id(),
            gateway: gateway.to_string(),
            received_at: db::now_text(),
            remote_addr: remote_addr.map(str::to_string),
            headers: headers_to_keep(headers),
            body: body_as_text(body),
        }
    }
}

/// Stores the notification with its verdict.
pub async fn store<'e>(
    executor: impl sqlx::AnyExecutor<'e>,
    notification: &Received,
    verdict: &str,
    detail: Option<&str>,
    event_id: Option<&str>,
    payment_id: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO gateway_notifications \
         (id, gateway, received_at, remote_addr, headers, body, verdict, detail, event_id, payment_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&notification.id)
    .bind(&notification.gateway)
    .bind(&notification.received_at)
    .bind(notification.remote_addr.as_deref())
    .bind(&notification.headers)
    .bind(&notification.body)
    .bind(verdict)
    .bind(detail)
    .bind(event_id)
    .bind(payment_id)
    .execute(executor)
    .await
    .context("could not store the notification")?;
    Ok(())
}

/// Stores the notification with what applying its report did, in the caller's transaction.
pub async fn store_applied(
    tx: &mut Tx<'_>,
    notification: &Received,
    applied: &Applied,
    report: &GatewayReport,
) -> anyhow::Result<()> {
    store(
        &mut **tx,
        notification,
        &applied.verdict(),
        None,
        report.event_id.as_deref(),
        applied.payment_id(),
    )
    .await
}

#[derive(Debug, Clone)]
pub struct StoredNotification {
    pub received_at: String,
    pub verdict: String,
    pub detail: Option<String>,
    pub event_id: Option<String>,
    pub headers: String,
    pub body: String,
}

impl StoredNotification {
    /// The verdict in the reader's language (the stored code stays the audit trail's word).
    pub fn verdict_label(&self) -> String {
        let lang = crate::i18n::current();
        if let Some(status) = self.verdict.strip_prefix("status:") {
            let status =
                crate::domain::PaymentStatus::parse(status).map_or(status, |s| s.label_fr());
            return lang.tf("notification_verdict.status", &[("status", status)]);
        }
        if let Some(anomaly) = self.verdict.strip_prefix("flagged:") {
            let anomaly = crate::payments::anomaly_label(anomaly);
            return lang.tf("notification_verdict.flagged", &[("anomaly", anomaly)]);
        }
        lang.t(match self.verdict.as_str() {
            "received" => "notification_verdict.received",
            "ignored" => "notification_verdict.ignored",
            "rejected" => "notification_verdict.rejected",
            "malformed" => "notification_verdict.malformed",
            "unverifiable" => "notification_verdict.unverifiable",
            "posted" => "notification_verdict.posted",
            "duplicate" => "notification_verdict.duplicate",
            "unknown_payment" => "notification_verdict.unknown_payment",
            other => return other.to_string(),
        })
        .to_string()
    }
}

/// The notifications received about a payment, oldest first.
pub async fn list_for_payment(
    pool: &Pool,
    payment_id: &str,
) -> anyhow::Result<Vec<StoredNotification>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT received_at, verdict, detail, event_id, headers, body FROM gateway_notifications \
         WHERE payment_id = $1 ORDER BY received_at, id",
    )
    .bind(payment_id)
    .fetch_all(pool)
    .await
    .context("could not list notifications")?;
    rows.iter()
        .map(|r| {
            Ok(StoredNotification {
                received_at: r.try_get("received_at")?,
                verdict: r.try_get("verdict")?,
                detail: r.try_get("detail")?,
                event_id: r.try_get("event_id")?,
                headers: r.try_get("headers")?,
                body: r.try_get("body")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_kept_exactly() {
        assert_eq!(body_as_text(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(body_as_text(&[0xff, 0x00]), "base64:/wA=");
        assert_eq!(body_as_text(b"a\0b"), "base64:YQBi");
        assert_eq!(body_as_text(b"base64:x"), "base64:YmFzZTY0Ong=");
    }
}
