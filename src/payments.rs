//! The payment lifecycle: attempts are created when a member clicks "pay", move through
//! guarded transitions, and [`apply_report`] is the one writer of what a gateway reported.

use anyhow::Context;
use sqlx::{AssertSqlSafe, Row};

use crate::config::ChartOfAccounts;
use crate::db::{self, Pool};
use crate::domain::{Money, PaymentStatus};
use crate::gateways::GatewayReport;
use crate::ledger::{self, Posted};

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: String,
    pub member_id: String,
    pub gateway: String,
    pub amount: Money,
    pub currency: String,
    pub status: PaymentStatus,
    pub test_mode: bool,
    pub gateway_ref: Option<String>,
    pub paid_amount: Option<Money>,
    pub fee: Option<Money>,
    pub failure_reason: Option<String>,
    pub anomaly: Option<String>,
    pub created_at: String,
    pub paid_at: Option<String>,
}

const COLUMNS: &str = "id, member_id, gateway, amount_cents, currency, status, test_mode, \
    gateway_ref, paid_amount_cents, fee_cents, failure_reason, anomaly, created_at, paid_at";

fn from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<Payment> {
    let status: String = row.try_get("status")?;
    Ok(Payment {
        id: row.try_get("id")?,
        member_id: row.try_get("member_id")?,
        gateway: row.try_get("gateway")?,
        amount: Money::from_cents(row.try_get("amount_cents")?),
        currency: row.try_get("currency")?,
        status: PaymentStatus::parse(&status)
            .with_context(|| format!("unknown payment status {status:?}"))?,
        test_mode: row.try_get::<i64, _>("test_mode")? != 0,
        gateway_ref: row.try_get("gateway_ref")?,
        paid_amount: row
            .try_get::<Option<i64>, _>("paid_amount_cents")?
            .map(Money::from_cents),
        fee: row
            .try_get::<Option<i64>, _>("fee_cents")?
            .map(Money::from_cents),
        failure_reason: row.try_get("failure_reason")?,
        anomaly: row.try_get("anomaly")?,
        created_at: row.try_get("created_at")?,
        paid_at: row.try_get("paid_at")?,
    })
}

pub async fn create_attempt(
    pool: &Pool,
    member_id: &str,
    gateway: &str,
    amount: Money,
    currency: &str,
    test_mode: bool,
) -> anyhow::Result<Payment> {
    let id = db::new_id();
    let now = db::now_text();
    sqlx::query(
        "INSERT INTO payments (id, member_id, gateway, amount_cents, currency, status, test_mode, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $7)",
    )
    .bind(&id)
    .bind(member_id)
    .bind(gateway)
    .bind(amount.cents())
    .bind(currency)
    .bind(i64::from(test_mode))
    .bind(&now)
    .execute(pool)
    .await
    .context("could not create the payment attempt")?;
    find(pool, &id)
        .await?
        .context("the payment attempt vanished after being created")
}

pub async fn find(pool: &Pool, id: &str) -> anyhow::Result<Option<Payment>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("could not read the payment")?;
    row.as_ref().map(from_row).transpose()
}

/// The payment if, and only if, it belongs to this member.
pub async fn find_for_member(
    pool: &Pool,
    id: &str,
    member_id: &str,
) -> anyhow::Result<Option<Payment>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 AND member_id = $2"
    )))
    .bind(id)
    .bind(member_id)
    .fetch_optional(pool)
    .await
    .context("could not read the payment")?;
    row.as_ref().map(from_row).transpose()
}

/// The member's attempts that reached a gateway, newest first.
pub async fn list_for_member(pool: &Pool, member_id: &str) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE member_id = $1 AND status <> 'created' \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(member_id)
    .fetch_all(pool)
    .await
    .context("could not list the payments")?;
    rows.iter().map(from_row).collect()
}

/// Payments a manager should look at.
pub async fn list_flagged(pool: &Pool) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE anomaly IS NOT NULL ORDER BY updated_at DESC LIMIT 200"
    )))
    .fetch_all(pool)
    .await
    .context("could not list flagged payments")?;
    rows.iter().map(from_row).collect()
}

/// The SQL guard of a transition: the states the payment may be in to reach `target`.
fn guard(target: PaymentStatus) -> String {
    let sources: Vec<String> = target
        .allowed_sources()
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("status IN ({})", sources.join(", "))
}

/// The gateway accepted the attempt: remember its reference and wait for its word.
pub async fn mark_pending(
    pool: &Pool,
    id: &str,
    gateway_ref: &str,
    redirect_url: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments SET status = 'pending', gateway_ref = $2, redirect_url = $3, \
         updated_at = $4 WHERE id = $1 AND {}",
        guard(PaymentStatus::Pending)
    )))
    .bind(id)
    .bind(gateway_ref)
    .bind(redirect_url)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not mark the payment pending")?;
    Ok(done.rows_affected() == 1)
}

/// The gateway refused to even create the payment.
pub async fn mark_failed(pool: &Pool, id: &str, reason: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments SET status = 'failed', failure_reason = $2, updated_at = $3 \
         WHERE id = $1 AND {}",
        guard(PaymentStatus::Failed)
    )))
    .bind(id)
    .bind(reason)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not mark the payment failed")?;
    Ok(done.rows_affected() == 1)
}

/// What applying a gateway's report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The payment was confirmed now: journal entry and basket line written.
    Posted { payment_id: String },
    /// The payment moved to another status (refused, cancelled, pending...).
    Moved {
        payment_id: String,
        status: PaymentStatus,
    },
    /// Already in that state: a duplicate, a replay or a lost race. Nothing written.
    Unchanged { payment_id: String },
    /// No attempt of ours matches.
    UnknownPayment,
    /// Something does not add up; recorded on the payment for a manager, nothing posted.
    Flagged { payment_id: String, anomaly: String },
}

impl Applied {
    pub fn payment_id(&self) -> Option<&str> {
        match self {
            Applied::Posted { payment_id }
            | Applied::Moved { payment_id, .. }
            | Applied::Unchanged { payment_id }
            | Applied::Flagged { payment_id, .. } => Some(payment_id),
            Applied::UnknownPayment => None,
        }
    }

    pub fn verdict(&self) -> String {
        match self {
            Applied::Posted { .. } => "posted".into(),
            Applied::Moved { status, .. } => format!("status:{}", status.as_str()),
            Applied::Unchanged { .. } => "duplicate".into(),
            Applied::UnknownPayment => "unknown_payment".into(),
            Applied::Flagged { anomaly, .. } => format!("flagged:{anomaly}"),
        }
    }
}

/// The one writer of payment state from a gateway's verified report. A confirmation moves the
/// attempt to `paid`, posts the receipt in the journal and the payment line in the basket in
/// one transaction; guarded updates and unique posting keys make a second posting impossible.
pub async fn apply_report(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
) -> anyhow::Result<Applied> {
    let payment = match &report.reference {
        Some(reference) => find(pool, reference).await?,
        None => find_by_gateway_ref(pool, gateway, &report.gateway_ref).await?,
    };
    let Some(payment) = payment.filter(|p| p.gateway == gateway) else {
        return Ok(Applied::UnknownPayment);
    };

    if let Some(anomaly) = mismatch(&payment, report) {
        flag(pool, &payment.id, &anomaly).await?;
        return Ok(Applied::Flagged {
            payment_id: payment.id,
            anomaly,
        });
    }

    match report.status {
        PaymentStatus::Paid => confirm(pool, accounts, &payment, gateway_label, report).await,
        PaymentStatus::Created => Ok(Applied::Unchanged {
            payment_id: payment.id,
        }),
        target => {
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE payments SET status = $2, gateway_ref = COALESCE(gateway_ref, $3), \
                 updated_at = $4 WHERE id = $1 AND {}",
                guard(target)
            )))
            .bind(&payment.id)
            .bind(target.as_str())
            .bind(&report.gateway_ref)
            .bind(db::now_text())
            .execute(pool)
            .await
            .context("could not update the payment status")?;
            Ok(if done.rows_affected() == 1 {
                Applied::Moved {
                    payment_id: payment.id,
                    status: target,
                }
            } else {
                Applied::Unchanged {
                    payment_id: payment.id,
                }
            })
        }
    }
}

/// Reference, currency, mode and (for a confirmation) amount must match the attempt.
fn mismatch(payment: &Payment, report: &GatewayReport) -> Option<String> {
    if let Some(known) = &payment.gateway_ref
        && known != &report.gateway_ref
    {
        return Some(format!(
            "reference_mismatch: the gateway reported {} for an attempt made as {known}",
            report.gateway_ref
        ));
    }
    if !report.currency.eq_ignore_ascii_case(&payment.currency) {
        return Some(format!(
            "currency_mismatch: reported {} for an attempt in {}",
            report.currency, payment.currency
        ));
    }
    if report.live == payment.test_mode {
        return Some(format!(
            "mode_mismatch: a {} notification for a {} attempt",
            if report.live { "live" } else { "test" },
            if payment.test_mode { "test" } else { "live" }
        ));
    }
    if report.status == PaymentStatus::Paid && report.amount != payment.amount {
        return Some(format!(
            "amount_mismatch: the gateway reported {} paid for an attempt of {}",
            report.amount, payment.amount
        ));
    }
    None
}

async fn confirm(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    payment: &Payment,
    gateway_label: &str,
    report: &GatewayReport,
) -> anyhow::Result<Applied> {
    let paid = report.amount;
    let fee = report.fee.unwrap_or(Money::ZERO);
    if fee.cents() < 0 || fee > paid {
        let anomaly = format!("fee_out_of_range: fee {fee} for {paid} paid");
        flag(pool, &payment.id, &anomaly).await?;
        return Ok(Applied::Flagged {
            payment_id: payment.id.clone(),
            anomaly,
        });
    }
    let now = db::now_text();
    let today = &now[..10];
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    // Guards are built from PaymentStatus constants only, never from input: safe SQL.
    // The guarded update comes first: it takes the write lock (SQLite) or the row lock
    // (PostgreSQL), so that concurrent confirmations queue here and all but one find nothing
    // left to do.
    let moved = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments SET status = 'paid', paid_amount_cents = $2, fee_cents = $3, \
         gateway_ref = COALESCE(gateway_ref, $4), paid_at = $5, updated_at = $5 \
         WHERE id = $1 AND {}",
        guard(PaymentStatus::Paid)
    )))
    .bind(&payment.id)
    .bind(paid.cents())
    .bind(report.fee.map(Money::cents))
    .bind(&report.gateway_ref)
    .bind(&now)
    .execute(&mut *tx)
    .await
    .context("could not mark the payment paid")?;
    if moved.rows_affected() == 0 {
        tx.rollback().await.ok();
        let current = find(pool, &payment.id)
            .await?
            .context("the payment vanished")?;
        return if current.status == PaymentStatus::Paid
            || current.status == PaymentStatus::Refunded
            || current.status == PaymentStatus::PartiallyRefunded
        {
            Ok(Applied::Unchanged {
                payment_id: payment.id.clone(),
            })
        } else {
            let anomaly = format!(
                "paid_after_close: the gateway confirmed {paid} for an attempt already {}",
                current.status.as_str()
            );
            flag(pool, &payment.id, &anomaly).await?;
            Ok(Applied::Flagged {
                payment_id: payment.id.clone(),
                anomaly,
            })
        };
    }

    let label = format!("Paiement {gateway_label}");
    let entry = ledger::receipt_entry(
        accounts,
        &payment.member_id,
        &payment.id,
        &label,
        paid,
        fee,
        today,
    );
    if ledger::post(&mut tx, &entry).await? == Posted::AlreadyPosted {
        // Cannot happen while the guard holds; refuse to write half of a posting if it does.
        tx.rollback().await.ok();
        return Ok(Applied::Unchanged {
            payment_id: payment.id.clone(),
        });
    }
    sqlx::query(
        "INSERT INTO basket_lines (id, member_id, kind, category, label, amount_cents, payment_id, \
         posting_key, occurred_on, created_at) VALUES ($1, $2, 'payment', 'payment', $3, $4, $5, $6, $7, $8)",
    )
    .bind(db::new_id())
    .bind(&payment.member_id)
    .bind(&label)
    .bind(paid.cents())
    .bind(&payment.id)
    .bind(&entry.posting_key)
    .bind(today)
    .bind(&now)
    .execute(&mut *tx)
    .await
    .context("could not write the basket payment line")?;
    tx.commit()
        .await
        .context("could not commit the payment confirmation")?;
    Ok(Applied::Posted {
        payment_id: payment.id.clone(),
    })
}

async fn find_by_gateway_ref(
    pool: &Pool,
    gateway: &str,
    gateway_ref: &str,
) -> anyhow::Result<Option<Payment>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE gateway = $1 AND gateway_ref = $2"
    )))
    .bind(gateway)
    .bind(gateway_ref)
    .fetch_optional(pool)
    .await
    .context("could not read the payment")?;
    row.as_ref().map(from_row).transpose()
}

async fn flag(pool: &Pool, id: &str, anomaly: &str) -> anyhow::Result<()> {
    tracing::warn!(payment_id = id, anomaly, "payment flagged for a manager");
    sqlx::query("UPDATE payments SET anomaly = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(anomaly)
        .bind(db::now_text())
        .execute(pool)
        .await
        .context("could not flag the payment")?;
    Ok(())
}
