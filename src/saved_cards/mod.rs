//! Saved cards: a member may agree, when paying with a gateway that can, that the gateway
//! keeps the card for their later dues. obole then holds only the gateway's references (its
//! customer and payment method) and a label; the card stays at the gateway. A manager may
//! charge the saved card (`charge`), and dues are charged on their date (`dues`); every
//! charge's outcome goes through `payments::apply_report`, the one writer.

pub mod charge;
pub mod dues;
pub(crate) mod mail;

use anyhow::Context;
use sqlx::Row;

use crate::db::{self, Pool, Tx};
use crate::gateways::{GatewayReport, SavedMethod};
use crate::payments::Payment;

/// A card a member agreed to keep at a gateway.
#[derive(Debug, Clone)]
pub struct SavedCard {
    pub id: String,
    pub member_id: String,
    pub gateway: String,
    pub customer_id: String,
    pub payment_method_id: String,
    pub label: Option<String>,
    pub consented_at: String,
    pub revoked: bool,
}

impl SavedCard {
    /// What the member recognises it by.
    pub fn display(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            crate::i18n::current()
                .t("saved_card.default_label")
                .to_string()
        })
    }

    pub fn method(&self) -> SavedMethod {
        SavedMethod {
            customer_id: self.customer_id.clone(),
            payment_method_id: self.payment_method_id.clone(),
            label: self.label.clone(),
        }
    }
}

const COLUMNS: &str =
    "id, member_id, gateway, customer_id, payment_method_id, label, consented_at, revoked";

fn from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<SavedCard> {
    Ok(SavedCard {
        id: row.try_get("id")?,
        member_id: row.try_get("member_id")?,
        gateway: row.try_get("gateway")?,
        customer_id: row.try_get("customer_id")?,
        payment_method_id: row.try_get("payment_method_id")?,
        label: row.try_get("label")?,
        consented_at: row.try_get("consented_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}

/// The member's card in use: the latest they agreed to keep and did not forget.
pub async fn active_for_member<'c>(
    pool: impl sqlx::Executor<'c, Database = sqlx::Any>,
    member_id: &str,
) -> anyhow::Result<Option<SavedCard>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_payment_methods WHERE member_id = $1 AND revoked = 0 \
         ORDER BY consented_at DESC, id DESC LIMIT 1"
    )))
    .bind(member_id)
    .fetch_optional(pool)
    .await
    .context("could not read the saved card")?;
    row.as_ref().map(from_row).transpose()
}

/// The member's customer at a gateway, from any card they kept there (even one forgotten
/// since): a new card is kept for the same customer rather than a new one each time.
pub async fn known_customer(
    pool: &Pool,
    member_id: &str,
    gateway: &str,
) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT customer_id FROM saved_payment_methods WHERE member_id = $1 AND gateway = $2 \
         ORDER BY consented_at DESC, id DESC LIMIT 1",
    )
    .bind(member_id)
    .bind(gateway)
    .fetch_optional(pool)
    .await
    .context("could not read the member's customer at the gateway")
}

/// The member ticked "save my card" for this payment: its confirmation will keep the card.
pub async fn request_save(pool: &Pool, payment_id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO card_save_requests (payment_id, created_at) VALUES ($1, $2) \
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(payment_id)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not record the request to save the card")?;
    Ok(())
}

/// Called by the one writer in the transaction that confirms a payment: when the member asked
/// to keep the card and the gateway reports the card it kept, it becomes the member's card in
/// use (a previous one is set aside). Idempotent: a repeated report changes nothing, and a
/// card the member forgot since is not brought back.
pub async fn remember(
    tx: &mut Tx<'_>,
    payment: &Payment,
    report: &GatewayReport,
) -> anyhow::Result<()> {
    let Some(saved) = &report.saved_method else {
        return Ok(());
    };
    let asked = sqlx::query("SELECT 1 FROM card_save_requests WHERE payment_id = $1")
        .bind(&payment.id)
        .fetch_optional(&mut **tx)
        .await
        .context("could not read the request to save the card")?;
    if asked.is_none() {
        return Ok(());
    }
    let id = db::new_id();
    let now = db::now_text();
    let inserted = sqlx::query(
        "INSERT INTO saved_payment_methods (id, member_id, gateway, customer_id, \
         payment_method_id, label, consent_payment_id, consented_at, revoked, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $8) \
         ON CONFLICT (gateway, payment_method_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&payment.member_id)
    .bind(&payment.gateway)
    .bind(&saved.customer_id)
    .bind(&saved.payment_method_id)
    .bind(&saved.label)
    .bind(&payment.id)
    .bind(&now)
    .execute(&mut **tx)
    .await
    .context("could not keep the saved card")?;
    if inserted.rows_affected() == 1 {
        sqlx::query(
            "UPDATE saved_payment_methods SET revoked = 1, revoked_at = $3 \
             WHERE member_id = $1 AND id <> $2 AND revoked = 0",
        )
        .bind(&payment.member_id)
        .bind(&id)
        .bind(&now)
        .execute(&mut **tx)
        .await
        .context("could not set the previous card aside")?;
    }
    Ok(())
}

/// Forgets a card at obole, if and only if it is this member's and still in use.
pub async fn revoke(pool: &Pool, id: &str, member_id: &str) -> anyhow::Result<Option<SavedCard>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_payment_methods WHERE id = $1 AND member_id = $2 AND revoked = 0"
    )))
    .bind(id)
    .bind(member_id)
    .fetch_optional(pool)
    .await
    .context("could not read the saved card")?;
    let Some(card) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    let done = sqlx::query(
        "UPDATE saved_payment_methods SET revoked = 1, revoked_at = $3 \
         WHERE id = $1 AND member_id = $2 AND revoked = 0",
    )
    .bind(id)
    .bind(member_id)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not forget the saved card")?;
    Ok((done.rows_affected() == 1).then_some(card))
}
