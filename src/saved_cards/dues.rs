//! Dues charged on their date: a charge with a due date (`basket_lines.due_on`) that has come,
//! for a member with a saved card they kept before that date, is charged off-session, once.
//! Each due line is claimed by one runner (its primary key in `due_charge_claims`) before
//! anything is asked of the gateway, so two sweeps at once, or a restart, never charge it
//! twice. The amount is what the member still owes, at most the due lines' total.

use anyhow::Context;
use sqlx::Row;

use super::charge::{self, ChargeError, ChargeResult};
use super::{SavedCard, active_for_member};
use crate::basket;
use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::Money;
use crate::gateways::Registry;

/// A claim left without an attempt this long (its runner died between two writes) is let go:
/// nothing was asked of the gateway for it.
const STALE_CLAIM_SECS: i64 = 15 * 60;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DueCounts {
    /// Charges made (paid or waiting for the gateway).
    pub charged: u64,
    /// Charges refused or not answered: the member was told, or a manager must look.
    pub failed: u64,
    /// Dues already covered by what the member paid: nothing to charge.
    pub nothing_owed: u64,
    /// Members left for another time (the gateway is not enabled, another runner has it).
    pub skipped: u64,
}

struct DueLine {
    id: String,
    label: String,
    amount: Money,
}

/// One pass: every member with due lines not yet claimed and a card in use.
pub async fn run_once(
    pool: &Pool,
    gateways: &Registry,
    settings: &Settings,
) -> anyhow::Result<DueCounts> {
    let mut counts = DueCounts::default();
    let stale = db::format_timestamp(
        time::OffsetDateTime::now_utc() - time::Duration::seconds(STALE_CLAIM_SECS),
    );
    sqlx::query(
        "DELETE FROM due_charge_claims WHERE outcome = 'claimed' AND payment_id IS NULL \
         AND created_at < $1",
    )
    .bind(&stale)
    .execute(pool)
    .await
    .context("could not let stale claims go")?;
    let today = db::today_text();
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT b.member_id FROM basket_lines b \
         JOIN users u ON u.id = b.member_id AND u.active = 1 \
         JOIN saved_payment_methods s ON s.member_id = b.member_id AND s.revoked = 0 \
         WHERE b.kind = 'charge' AND b.due_on IS NOT NULL AND b.due_on <= $1 \
         AND NOT EXISTS (SELECT 1 FROM due_charge_claims c WHERE c.charge_line_id = b.id)",
    )
    .bind(&today)
    .fetch_all(pool)
    .await
    .context("could not list members with dues")?;
    for member_id in members {
        let Some(card) = active_for_member(pool, &member_id).await? else {
            continue;
        };
        let Some(gateway) = gateways
            .get(&card.gateway)
            .filter(|g| g.capabilities().saved_cards)
        else {
            counts.skipped += 1;
            continue;
        };
        let lines = due_lines(pool, &card, &today).await?;
        if lines.is_empty() {
            continue;
        }
        let claim_id = db::new_id();
        if !claim(pool, &member_id, &claim_id, &lines).await? {
            counts.skipped += 1;
            continue;
        }
        let owed = basket::load(pool, &member_id).await?.balance();
        let amount = owed.min(lines.iter().map(|l| l.amount).sum());
        if !amount.is_positive() {
            settle_claim(pool, &claim_id, lines.len(), None, "nothing_owed").await?;
            counts.nothing_owed += 1;
            continue;
        }
        let payment = match charge::prepare(pool, gateway.as_ref(), &card, amount, None).await {
            Ok(payment) => payment,
            Err(ChargeError::NotAllowed(why)) => {
                tracing::warn!(member_id, why, "a due could not be charged");
                settle_claim(pool, &claim_id, lines.len(), None, "not_charged").await?;
                counts.failed += 1;
                continue;
            }
            Err(ChargeError::Unexpected(error)) => return Err(error),
        };
        // The attempt is tied to the claim before the gateway hears of it.
        if !settle_claim(pool, &claim_id, lines.len(), Some(&payment.id), "charged").await? {
            payments_gave_up(pool, &payment.id).await?;
            counts.skipped += 1;
            continue;
        }
        let reason = lines
            .iter()
            .map(|l| l.label.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match charge::execute(
            pool,
            settings,
            gateway.as_ref(),
            &card,
            &payment,
            Some(&reason),
        )
        .await?
        {
            ChargeResult::Paid | ChargeResult::Pending => counts.charged += 1,
            ChargeResult::Declined(_) | ChargeResult::Rejected(_) | ChargeResult::Unknown => {
                counts.failed += 1
            }
        }
    }
    Ok(counts)
}

/// The member's due lines not yet claimed, due since they kept the card (their consent is
/// for the dues to come, not for older ones).
async fn due_lines(pool: &Pool, card: &SavedCard, today: &str) -> anyhow::Result<Vec<DueLine>> {
    let rows = sqlx::query(
        "SELECT b.id, b.label, b.amount_cents FROM basket_lines b \
         WHERE b.member_id = $1 AND b.kind = 'charge' AND b.due_on IS NOT NULL \
         AND b.due_on <= $2 AND b.due_on >= $3 \
         AND NOT EXISTS (SELECT 1 FROM due_charge_claims c WHERE c.charge_line_id = b.id) \
         ORDER BY b.due_on, b.created_at, b.id",
    )
    .bind(&card.member_id)
    .bind(today)
    .bind(&card.consented_at[..10])
    .fetch_all(pool)
    .await
    .context("could not list the member's dues")?;
    rows.iter()
        .map(|r| {
            Ok(DueLine {
                id: r.try_get("id")?,
                label: r.try_get("label")?,
                amount: Money::from_cents(r.try_get("amount_cents")?),
            })
        })
        .collect()
}

/// Claims every line, or none: false when another runner has one of them.
async fn claim(
    pool: &Pool,
    member_id: &str,
    claim_id: &str,
    lines: &[DueLine],
) -> anyhow::Result<bool> {
    let now = db::now_text();
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    for line in lines {
        let claimed = sqlx::query(
            "INSERT INTO due_charge_claims (charge_line_id, member_id, claim_id, outcome, \
             created_at) VALUES ($1, $2, $3, 'claimed', $4) \
             ON CONFLICT (charge_line_id) DO NOTHING",
        )
        .bind(&line.id)
        .bind(member_id)
        .bind(claim_id)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .context("could not claim a due")?;
        if claimed.rows_affected() != 1 {
            tx.rollback().await.ok();
            return Ok(false);
        }
    }
    tx.commit().await.context("could not commit the claim")?;
    Ok(true)
}

/// Closes this runner's claim, all its `lines` or none: false if it was let go meanwhile.
async fn settle_claim(
    pool: &Pool,
    claim_id: &str,
    lines: usize,
    payment_id: Option<&str>,
    outcome: &str,
) -> anyhow::Result<bool> {
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let done = sqlx::query(
        "UPDATE due_charge_claims SET payment_id = $2, outcome = $3 \
         WHERE claim_id = $1 AND outcome = 'claimed'",
    )
    .bind(claim_id)
    .bind(payment_id)
    .bind(outcome)
    .execute(&mut *tx)
    .await
    .context("could not settle the claim")?;
    if done.rows_affected() != lines as u64 {
        tx.rollback().await.ok();
        return Ok(false);
    }
    tx.commit().await.context("could not settle the claim")?;
    Ok(true)
}

/// An attempt recorded for a claim that was let go meanwhile: it never reaches the gateway.
async fn payments_gave_up(pool: &Pool, payment_id: &str) -> anyhow::Result<()> {
    crate::payments::mark_failed(
        pool,
        payment_id,
        "échéance reprise par un autre passage : rien n'a été demandé au prestataire",
    )
    .await?;
    Ok(())
}
