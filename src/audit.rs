//! The audit log of managers' actions: who, what, when, before and after.

use anyhow::Context;
use sqlx::Row;

use crate::db::{self, Pool};

/// Writes one record, on the pool or inside the transaction of the change it describes.
pub async fn record<'e, E>(
    executor: E,
    actor_id: &str,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor_id, action, target, before_state, after_state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(db::new_id())
    .bind(db::now_text())
    .bind(actor_id)
    .bind(action)
    .bind(target)
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(executor)
    .await
    .context("could not write the audit log")?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl AuditEntry {
    /// What the action was, in the reader's language; empty for an action without a name
    /// (its code, shown next to it, still says it).
    pub fn action_label(&self) -> &'static str {
        let key = match self.action.as_str() {
            "accounts.receipts" => "audit_action.accounts_receipts",
            "category.add" => "audit_action.category_add",
            "category.update" => "audit_action.category_update",
            "category.delete" => "audit_action.category_delete",
            "charge.add" => "audit_action.charge_add",
            "charge.bulk" => "audit_action.charge_bulk",
            "gateway.settings" => "audit_action.gateway_settings",
            "member.create" => "audit_action.member_create",
            "member.update" => "audit_action.member_update",
            "member.deactivate" => "audit_action.member_deactivate",
            "member.reactivate" => "audit_action.member_reactivate",
            "member.invite" => "audit_action.member_invite",
            "member.import" => "audit_action.member_import",
            "payment.refund" => "audit_action.payment_refund",
            "payment.cancel" => "audit_action.payment_cancel",
            "payment_request.send" => "audit_action.payment_request_send",
            "payment_request.send_all" => "audit_action.payment_request_send_all",
            "payment_request.cancel" => "audit_action.payment_request_cancel",
            "saved_card.charge" => "audit_action.saved_card_charge",
            _ => return "",
        };
        crate::i18n::current().t(key)
    }
}

pub async fn recent(pool: &Pool, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT a.at, a.action, a.target, a.before_state, a.after_state, u.email \
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id \
         ORDER BY a.at DESC, a.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("could not read the audit log")?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                actor: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                before: r.try_get("before_state")?,
                after: r.try_get("after_state")?,
            })
        })
        .collect()
}
