//! The payment lifecycle: attempts are created when a member clicks "pay", move through
//! guarded transitions, and [`apply_report`] is the one writer of what a gateway reported.

use anyhow::Context;
use sqlx::{AssertSqlSafe, Row};

use crate::config::ChartOfAccounts;
use crate::db::{self, Pool, Tx};
use crate::domain::{Money, PaymentStatus};
use crate::gateways::{
    Gateway, GatewayError, GatewayReport, RefundFact, RefundRequest, RefundStatus,
};
use crate::ledger::{self, Posted};
use crate::mail::{self, MailContent};
use crate::notifications::{self, Received};

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
    pub updated_at: String,
    pub paid_at: Option<String>,
    pub refunded: Money,
}

const COLUMNS: &str = "id, member_id, gateway, amount_cents, currency, status, test_mode, \
    gateway_ref, paid_amount_cents, fee_cents, failure_reason, anomaly, created_at, updated_at, \
    paid_at, refunded_cents";

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
        updated_at: row.try_get("updated_at")?,
        paid_at: row.try_get("paid_at")?,
        refunded: Money::from_cents(row.try_get("refunded_cents")?),
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
pub async fn list_for_member<'c>(
    pool: impl sqlx::Executor<'c, Database = sqlx::Any>,
    member_id: &str,
) -> anyhow::Result<Vec<Payment>> {
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

/// The latest attempts of every member, for managers.
pub async fn list_recent(pool: &Pool, limit: i64) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments ORDER BY created_at DESC, id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("could not list payments")?;
    rows.iter().map(from_row).collect()
}

/// Asks the gateway about an open attempt and applies what it says: the member's return,
/// or a manager's look, is only a trigger; the gateway's authenticated answer is the proof.
pub async fn refresh_from_gateway(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    gateway: &dyn Gateway,
    payment: &Payment,
) -> anyhow::Result<Option<Applied>> {
    let Some(gateway_ref) = payment.gateway_ref.as_deref() else {
        return Ok(None);
    };
    if !payment.status.is_open() {
        return Ok(None);
    }
    match gateway.fetch_payment(gateway_ref).await {
        Ok(report) => Ok(Some(
            apply_report(
                pool,
                accounts,
                gateway.id(),
                gateway.display_name(),
                &report,
            )
            .await?,
        )),
        Err(error) => {
            tracing::info!(payment_id = %payment.id, error = ?error, "could not ask the gateway");
            Ok(None)
        }
    }
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
    /// Money moved now: a capture or a refund was posted to the journal and the basket.
    Posted { payment_id: String },
    /// The payment moved to another status (refused, cancelled, pending...).
    Moved {
        payment_id: String,
        status: PaymentStatus,
    },
    /// Nothing new: a duplicate, a replay or a lost race. Nothing written.
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
            Applied::Flagged { anomaly, .. } => format!("flagged:{}", anomaly_code(anomaly)),
        }
    }
}

/// The one writer of payment state from a gateway's verified report (a notification, a
/// fetch by the sweep or the return page, a refund answer), in a transaction of its own.
pub async fn apply_report(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
) -> anyhow::Result<Applied> {
    apply_and_record(pool, accounts, gateway, gateway_label, report, None).await
}

/// [`apply_report`], with the notification that carried the report stored, verdict and all,
/// in the same transaction: one durable commit for both.
pub async fn apply_and_record(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
    notification: Option<&Received>,
) -> anyhow::Result<Applied> {
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let applied = apply_in(&mut tx, accounts, gateway, gateway_label, report).await?;
    if let Some(notification) = notification {
        notifications::store_applied(&mut tx, notification, &applied, report).await?;
    }
    tx.commit()
        .await
        .context("could not commit the gateway's report")?;
    Ok(applied)
}

/// [`apply_and_record`] inside the caller's transaction (the group commit of notifications).
pub async fn apply_and_record_in(
    tx: &mut Tx<'_>,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
    notification: &Received,
) -> anyhow::Result<Applied> {
    let applied = apply_in(tx, accounts, gateway, gateway_label, report).await?;
    notifications::store_applied(tx, notification, &applied, report).await?;
    Ok(applied)
}

/// What the report changes, written in `tx`: the status moves along its guarded transitions,
/// each new capture posts its receipt entry and basket line, each new refund its reverse entry
/// and basket line. Unique posting keys make a second posting of the same capture or refund
/// impossible. What does not add up posts nothing and flags the payment.
async fn apply_in(
    tx: &mut Tx<'_>,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
) -> anyhow::Result<Applied> {
    let now = db::now_text();
    let Some(payment) = lock(tx, gateway, report, &now).await? else {
        return Ok(Applied::UnknownPayment);
    };
    if let Some(anomaly) = mismatch(&payment, report) {
        return flagged(tx, &payment.id, anomaly).await;
    }
    // Refunds may prove wrong after captures of the same report were posted: then nothing
    // of it stays, which a savepoint undoes. Without refunds, nothing is written before the
    // checks that may refuse the report.
    let outcome = if report.refunds.is_empty() {
        post_report(tx, accounts, gateway, gateway_label, report, &payment, &now).await?
    } else {
        let mut savepoint = sqlx::Acquire::begin(&mut *tx)
            .await
            .context("could not start a savepoint")?;
        let outcome = post_report(
            &mut savepoint,
            accounts,
            gateway,
            gateway_label,
            report,
            &payment,
            &now,
        )
        .await?;
        if outcome.is_ok() {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        }
        .context("could not end a savepoint")?;
        outcome
    };
    match outcome {
        Ok(applied) => Ok(applied),
        Err(anomaly) => flagged(tx, &payment.id, anomaly).await,
    }
}

/// The attempt a report is about (by our reference when the gateway sends it back, else by
/// the gateway's own), locked and read as it is now. Its first statement is a write: it takes
/// SQLite's write lock (a transaction that read first could not take it once another
/// committed) or PostgreSQL's row lock, so concurrent reports about one payment queue here and
/// each sees what the previous one wrote.
async fn lock(
    tx: &mut Tx<'_>,
    gateway: &str,
    report: &GatewayReport,
    now: &str,
) -> anyhow::Result<Option<Payment>> {
    let row = match &report.reference {
        Some(reference) => sqlx::query(AssertSqlSafe(format!(
            "UPDATE payments SET updated_at = $3 WHERE id = $1 AND gateway = $2 \
             RETURNING {COLUMNS}"
        )))
        .bind(reference)
        .bind(gateway)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .context("could not lock the payment")?,
        None => sqlx::query(AssertSqlSafe(format!(
            "UPDATE payments SET updated_at = $3 WHERE gateway = $1 AND gateway_ref = $2 \
             RETURNING {COLUMNS}"
        )))
        .bind(gateway)
        .bind(&report.gateway_ref)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .context("could not lock the payment")?,
    };
    row.as_ref().map(from_row).transpose()
}

/// The postings and transitions of a report about a payment already locked; Err(anomaly)
/// when it does not add up (what was written must then be undone).
async fn post_report(
    tx: &mut Tx<'_>,
    accounts: &ChartOfAccounts,
    gateway: &str,
    gateway_label: &str,
    report: &GatewayReport,
    payment: &Payment,
    now: &str,
) -> anyhow::Result<Result<Applied, String>> {
    // The accounts as they are now: a change of clearing or fees account affects new entries.
    let accounts = &crate::account_plan::accounts_for_gateway(tx, accounts, gateway).await?;
    let mut status = payment.status;
    let mut posted = false;

    let confirms = report.status == PaymentStatus::Paid || !report.captures.is_empty();
    if confirms {
        if matches!(
            status,
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired
        ) {
            return Ok(Err(format!(
                "paid_after_close: the gateway confirmed {} for an attempt already {}",
                report.amount,
                status.as_str()
            )));
        }
        if let Some(anomaly) = capture_problem(report) {
            return Ok(Err(anomaly));
        }
        let label = format!("Paiement {gateway_label}");
        let today = &now[..10];
        for capture in &report.captures {
            let fee = capture.fee.unwrap_or(Money::ZERO);
            let mut entry = ledger::receipt_entry(
                accounts,
                &payment.member_id,
                &payment.id,
                &label,
                capture.amount,
                fee,
                today,
            );
            entry.posting_key = format!("capture:{}:{}", payment.id, capture.id);
            if ledger::post(tx, &entry).await? == Posted::AlreadyPosted {
                continue;
            }
            insert_basket_line(
                tx,
                payment,
                "payment",
                &label,
                capture.amount,
                &entry.posting_key,
                now,
            )
            .await?;
            // The receipt leaves with the posting, or not at all.
            mail::enqueue(
                tx,
                &format!("receipt:{}:{}", payment.id, capture.id),
                &payment.member_id,
                &MailContent::Receipt {
                    payment_id: payment.id.clone(),
                    amount_cents: capture.amount.cents(),
                    gateway: gateway_label.to_string(),
                    date: today.to_string(),
                },
            )
            .await?;
            // The totals, and the move to paid of an open attempt, in one statement.
            let paid = guard(PaymentStatus::Paid);
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE payments SET paid_amount_cents = COALESCE(paid_amount_cents, 0) + $2, \
                 fee_cents = CASE WHEN $3 < 0 THEN fee_cents ELSE COALESCE(fee_cents, 0) + $3 END, \
                 paid_at = CASE WHEN {paid} THEN $4 ELSE paid_at END, \
                 status = CASE WHEN {paid} THEN 'paid' ELSE status END \
                 WHERE id = $1"
            )))
            .bind(&payment.id)
            .bind(capture.amount.cents())
            .bind(capture.fee.map(Money::cents))
            .bind(now)
            .execute(&mut **tx)
            .await
            .context("could not total the captures")?;
            if status.is_open() {
                status = PaymentStatus::Paid;
            }
            posted = true;
        }
        if status.is_open() {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE payments SET status = 'paid', paid_at = $2, updated_at = $2 \
                 WHERE id = $1 AND {}",
                guard(PaymentStatus::Paid)
            )))
            .bind(&payment.id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .context("could not mark the payment paid")?;
            status = PaymentStatus::Paid;
        }
        // A card the member asked to keep is kept with the payment that proved it.
        crate::saved_cards::remember(tx, payment, report).await?;
        if posted {
            // Payment requests this money settles, and their managers' notices.
            crate::payment_requests::settle_after_payment(tx, &payment.id, &payment.member_id, now)
                .await?;
        }
    } else if report.status != status
        && report.status.allowed_sources().contains(&status)
        && matches!(
            report.status,
            PaymentStatus::Pending
                | PaymentStatus::Failed
                | PaymentStatus::Cancelled
                | PaymentStatus::Expired
        )
    {
        set_status(tx, &payment.id, report.status, now).await?;
        return Ok(Ok(Applied::Moved {
            payment_id: payment.id.clone(),
            status: report.status,
        }));
    }

    if !report.refunds.is_empty() {
        match post_refunds(
            tx,
            accounts,
            payment,
            status,
            gateway_label,
            &report.refunds,
            now,
        )
        .await?
        {
            Ok(any) => posted |= any,
            Err(anomaly) => return Ok(Err(anomaly)),
        }
    }
    let payment_id = payment.id.clone();
    Ok(Ok(if posted {
        Applied::Posted { payment_id }
    } else {
        Applied::Unchanged { payment_id }
    }))
}

/// Reference, currency, mode and amount must match the attempt.
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
            "mode_mismatch: a {} report for a {} attempt",
            if report.live { "live" } else { "test" },
            if payment.test_mode { "test" } else { "live" }
        ));
    }
    if report.amount != payment.amount
        && (report.status == PaymentStatus::Paid || !report.captures.is_empty())
    {
        return Some(format!(
            "amount_mismatch: the gateway reported {} paid for an attempt of {}",
            report.amount, payment.amount
        ));
    }
    None
}

/// Captures must add up to at most the amount, with fees between zero and what was captured.
fn capture_problem(report: &GatewayReport) -> Option<String> {
    let total: Money = report.captures.iter().map(|c| c.amount).sum();
    if total > report.amount {
        return Some(format!(
            "capture_exceeds_amount: {total} captured for a payment of {}",
            report.amount
        ));
    }
    report.captures.iter().find_map(|c| {
        let fee = c.fee.unwrap_or(Money::ZERO);
        (!c.amount.is_positive() || fee.cents() < 0 || fee > c.amount).then(|| {
            format!(
                "capture_out_of_range: capture {} of {} with a fee of {fee}",
                c.id, c.amount
            )
        })
    })
}

/// Posts the refunds not yet posted; Err(anomaly) when they do not add up.
async fn post_refunds(
    tx: &mut Tx<'_>,
    accounts: &ChartOfAccounts,
    payment: &Payment,
    status: PaymentStatus,
    gateway_label: &str,
    refunds: &[RefundFact],
    now: &str,
) -> anyhow::Result<Result<bool, String>> {
    if !matches!(
        status,
        PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
    ) {
        return Ok(Err(format!(
            "refund_before_payment: the gateway reported a refund of an attempt still {}",
            status.as_str()
        )));
    }
    let row = sqlx::query(
        "SELECT COALESCE(paid_amount_cents, 0) AS paid, refunded_cents FROM payments WHERE id = $1",
    )
    .bind(&payment.id)
    .fetch_one(&mut **tx)
    .await
    .context("could not read the payment totals")?;
    let paid = Money::from_cents(row.try_get("paid")?);
    let mut refunded = Money::from_cents(row.try_get("refunded_cents")?);
    let label = format!("Remboursement {gateway_label}");
    let mut posted = false;
    for refund in refunds {
        let posting_key = format!("refund:{}:{}", payment.id, refund.id);
        if !refund.amount.is_positive() || refunded + refund.amount > paid {
            // Already posted refunds are skipped below; only new money is checked.
            let known = sqlx::query("SELECT 1 FROM journal_entries WHERE posting_key = $1")
                .bind(&posting_key)
                .fetch_optional(&mut **tx)
                .await
                .context("could not look a refund up")?;
            if known.is_none() {
                return Ok(Err(format!(
                    "refund_exceeds_payment: refund {} of {} with {refunded} already refunded of {paid}",
                    refund.id, refund.amount
                )));
            }
            continue;
        }
        let entry = ledger::refund_entry(
            accounts,
            &payment.member_id,
            &payment.id,
            &label,
            refund.amount,
            &now[..10],
            &posting_key,
        );
        if ledger::post(tx, &entry).await? == Posted::AlreadyPosted {
            continue;
        }
        insert_basket_line(
            tx,
            payment,
            "refund",
            &label,
            refund.amount,
            &posting_key,
            now,
        )
        .await?;
        refunded = refunded + refund.amount;
        sqlx::query(
            "UPDATE refunds SET status = 'succeeded', updated_at = $3              WHERE payment_id = $1 AND gateway_refund_id = $2",
        )
        .bind(&payment.id)
        .bind(&refund.id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .context("could not mark the refund succeeded")?;
        posted = true;
    }
    if posted {
        let target = if refunded >= paid {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE payments SET status = $2, refunded_cents = $3, updated_at = $4              WHERE id = $1 AND {}",
            guard(target)
        )))
        .bind(&payment.id)
        .bind(target.as_str())
        .bind(refunded.cents())
        .bind(now)
        .execute(&mut **tx)
        .await
        .context("could not mark the payment refunded")?;
    }
    Ok(Ok(posted))
}

async fn insert_basket_line(
    tx: &mut Tx<'_>,
    payment: &Payment,
    kind: &str,
    label: &str,
    amount: Money,
    posting_key: &str,
    now: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO basket_lines (id, member_id, kind, category, label, amount_cents, payment_id, \
         posting_key, occurred_on, created_at) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(db::new_id())
    .bind(&payment.member_id)
    .bind(kind)
    .bind(label)
    .bind(amount.cents())
    .bind(&payment.id)
    .bind(posting_key)
    .bind(&now[..10])
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("could not write the basket line")?;
    Ok(())
}

/// A guarded transition inside the caller's transaction.
async fn set_status(
    tx: &mut Tx<'_>,
    id: &str,
    target: PaymentStatus,
    now: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments SET status = $2, updated_at = $3 WHERE id = $1 AND {}",
        guard(target)
    )))
    .bind(id)
    .bind(target.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("could not change the payment status")?;
    Ok(done.rows_affected() == 1)
}

async fn flagged(tx: &mut Tx<'_>, id: &str, anomaly: String) -> anyhow::Result<Applied> {
    tracing::warn!(payment_id = id, anomaly, "payment flagged for a manager");
    sqlx::query("UPDATE payments SET anomaly = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(&anomaly)
        .bind(db::now_text())
        .execute(&mut **tx)
        .await
        .context("could not flag the payment")?;
    Ok(Applied::Flagged {
        payment_id: id.to_string(),
        anomaly,
    })
}

/// The kind of an anomaly recorded on a payment: the word before its first `:`
/// (`amount_mismatch: the gateway reported…`).
pub fn anomaly_code(anomaly: &str) -> &str {
    anomaly.split(':').next().unwrap_or(anomaly).trim()
}

/// What an anomaly means, in the reader's language; the recorded text is its technical detail.
pub fn anomaly_label(anomaly: &str) -> &'static str {
    crate::i18n::current().t(match anomaly_code(anomaly) {
        "reference_mismatch" => "payment_anomaly.reference_mismatch",
        "currency_mismatch" => "payment_anomaly.currency_mismatch",
        "mode_mismatch" => "payment_anomaly.mode_mismatch",
        "amount_mismatch" => "payment_anomaly.amount_mismatch",
        "paid_after_close" => "payment_anomaly.paid_after_close",
        "capture_exceeds_amount" => "payment_anomaly.capture_exceeds_amount",
        "capture_out_of_range" => "payment_anomaly.capture_out_of_range",
        "refund_before_payment" => "payment_anomaly.refund_before_payment",
        "refund_exceeds_payment" => "payment_anomaly.refund_exceeds_payment",
        _ => "payment_anomaly.other",
    })
}

/// Why a manager's refund or cancellation was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Refused by obole's rules, with the message for the manager (in the request's language).
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn not_allowed(key: &'static str, args: &[(&str, &str)]) -> ActionError {
    ActionError::NotAllowed(crate::i18n::current().tf(key, args))
}

/// A refund asked by a manager: checked, recorded, asked of the gateway (never inside a
/// transaction), then posted through the one writer once the gateway says it succeeded.
pub async fn request_refund(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    gateway: &dyn Gateway,
    payment_id: &str,
    amount: Money,
    requested_by: &str,
) -> Result<RefundStatus, ActionError> {
    let payment = find(pool, payment_id)
        .await?
        .ok_or_else(|| not_allowed("payment_action.not_found", &[]))?;
    if !matches!(
        payment.status,
        PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
    ) {
        return Err(not_allowed(
            "payment_action.refund_only_paid",
            &[("status", payment.status.label_fr())],
        ));
    }
    let capabilities = gateway.capabilities();
    if !capabilities.refund {
        return Err(not_allowed("payment_action.refund_unsupported", &[]));
    }
    let in_flight: i64 = sqlx::query_scalar(
        // A refund the gateway confirmed while its request was being recorded is already in
        // `refunded_cents` (posted), even if its row still says pending: count it once.
        "SELECT CAST(COALESCE(SUM(r.amount_cents), 0) AS BIGINT) FROM refunds r \
         WHERE r.payment_id = $1 AND r.status IN ('requested', 'pending') \
         AND NOT EXISTS (SELECT 1 FROM journal_entries j \
                         WHERE j.posting_key = 'refund:' || r.payment_id || ':' || r.gateway_refund_id)",
    )
    .bind(&payment.id)
    .fetch_one(pool)
    .await
    .context("could not read refunds in progress")?;
    let paid = payment.paid_amount.unwrap_or(Money::ZERO);
    let refunded: i64 = sqlx::query_scalar("SELECT refunded_cents FROM payments WHERE id = $1")
        .bind(&payment.id)
        .fetch_one(pool)
        .await
        .context("could not read the refunded total")?;
    let refundable = paid - Money::from_cents(refunded) - Money::from_cents(in_flight);
    if !amount.is_positive() || amount > refundable {
        return Err(not_allowed(
            "payment_action.refund_range",
            &[("max", &refundable.to_string())],
        ));
    }
    if amount < refundable && !capabilities.partial_refund {
        return Err(not_allowed("payment_action.refund_full_only", &[]));
    }
    let gateway_ref = payment
        .gateway_ref
        .clone()
        .ok_or_else(|| not_allowed("payment_action.no_gateway_ref", &[]))?;
    let refund_id = db::new_id();
    let now = db::now_text();
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount_cents, status, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'requested', $4, $5, $5)",
    )
    .bind(&refund_id)
    .bind(&payment.id)
    .bind(amount.cents())
    .bind(requested_by)
    .bind(&now)
    .execute(pool)
    .await
    .context("could not record the refund request")?;
    let capture_ids = capture_ids(pool, &payment.id).await?;
    let request = RefundRequest {
        payment_id: payment.id.clone(),
        gateway_ref,
        capture_ids,
        amount,
        currency: payment.currency.clone(),
        idempotency_key: refund_id.clone(),
    };
    let outcome = match gateway.refund(&request).await {
        Ok(outcome) => outcome,
        Err(error) => {
            sqlx::query(
                "UPDATE refunds SET status = 'failed', failure_reason = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(&refund_id)
            .bind(error.to_string())
            .bind(db::now_text())
            .execute(pool)
            .await
            .context("could not record the refund failure")?;
            return Err(error.into());
        }
    };
    let status_text = match outcome.status {
        RefundStatus::Succeeded => "pending",
        RefundStatus::Pending => "pending",
        RefundStatus::Failed => "failed",
    };
    sqlx::query(
        "UPDATE refunds SET gateway_refund_id = $2, status = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(&refund_id)
    .bind(&outcome.refund_id)
    .bind(status_text)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not record the gateway's refund")?;
    // The gateway may already have notified this refund, before its id was known here.
    sqlx::query(
        "UPDATE refunds SET status = 'succeeded' WHERE id = $1 AND EXISTS \
         (SELECT 1 FROM journal_entries WHERE posting_key = $2)",
    )
    .bind(&refund_id)
    .bind(format!("refund:{}:{}", payment.id, outcome.refund_id))
    .execute(pool)
    .await
    .context("could not reconcile an early refund report")?;
    if outcome.status == RefundStatus::Succeeded {
        let report = GatewayReport {
            gateway_ref: request.gateway_ref.clone(),
            reference: Some(payment.id.clone()),
            status: payment.status,
            amount: payment.amount,
            currency: payment.currency.clone(),
            live: !payment.test_mode,
            event_id: None,
            captures: Vec::new(),
            refunds: vec![RefundFact {
                id: outcome.refund_id,
                amount: outcome.amount,
            }],
            saved_method: None,
        };
        apply_report(
            pool,
            accounts,
            gateway.id(),
            gateway.display_name(),
            &report,
        )
        .await?;
    }
    Ok(outcome.status)
}

/// The ids of the captures posted for a payment, oldest first.
async fn capture_ids(pool: &Pool, payment_id: &str) -> anyhow::Result<Vec<String>> {
    let prefix = format!("capture:{payment_id}:");
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT posting_key FROM basket_lines WHERE payment_id = $1 AND kind = 'payment' \
         ORDER BY created_at, id",
    )
    .bind(payment_id)
    .fetch_all(pool)
    .await
    .context("could not list the captures")?;
    Ok(keys
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// Cancels an unpaid request at the gateway, then here.
pub async fn request_cancel(
    pool: &Pool,
    gateway: &dyn Gateway,
    payment_id: &str,
) -> Result<(), ActionError> {
    let payment = find(pool, payment_id)
        .await?
        .ok_or_else(|| not_allowed("payment_action.not_found", &[]))?;
    if !payment.status.is_open() {
        return Err(not_allowed(
            "payment_action.cancel_only_open",
            &[("status", payment.status.label_fr())],
        ));
    }
    if !gateway.capabilities().cancel {
        return Err(not_allowed("payment_action.cancel_unsupported", &[]));
    }
    if let Some(gateway_ref) = &payment.gateway_ref {
        gateway.cancel(gateway_ref).await?;
    }
    close(pool, payment_id, PaymentStatus::Cancelled).await?;
    Ok(())
}

/// Closes an open attempt (cancelled or expired) with a guarded transition.
pub async fn close(pool: &Pool, id: &str, target: PaymentStatus) -> anyhow::Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payments SET status = $2, updated_at = $3 WHERE id = $1 AND {}",
        guard(target)
    )))
    .bind(id)
    .bind(target.as_str())
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not close the payment")?;
    Ok(done.rows_affected() == 1)
}

/// Open attempts created before `cutoff`, oldest first.
pub async fn list_open_before(
    pool: &Pool,
    cutoff: &str,
    limit: i64,
) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE status IN ('created', 'pending') AND created_at < $1 \
         ORDER BY created_at LIMIT $2"
    )))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("could not list open payments")?;
    rows.iter().map(from_row).collect()
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub amount: Money,
    pub status: String,
    pub gateway_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
}

impl Refund {
    /// The refund's status in the reader's language.
    pub fn status_label(&self) -> &'static str {
        crate::i18n::current().t(match self.status.as_str() {
            "requested" => "refund_status.requested",
            "pending" => "refund_status.pending",
            "succeeded" => "refund_status.succeeded",
            _ => "refund_status.failed",
        })
    }
}

pub async fn list_refunds(pool: &Pool, payment_id: &str) -> anyhow::Result<Vec<Refund>> {
    let rows = sqlx::query(
        "SELECT amount_cents, status, gateway_refund_id, failure_reason, created_at FROM refunds \
         WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(payment_id)
    .fetch_all(pool)
    .await
    .context("could not list refunds")?;
    rows.iter()
        .map(|r| {
            Ok(Refund {
                amount: Money::from_cents(r.try_get("amount_cents")?),
                status: r.try_get("status")?,
                gateway_refund_id: r.try_get("gateway_refund_id")?,
                failure_reason: r.try_get("failure_reason")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Paid attempts with a refund still waiting for the gateway's word, asked before `cutoff`.
pub async fn list_with_refunds_pending(
    pool: &Pool,
    cutoff: &str,
    limit: i64,
) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id IN \
         (SELECT payment_id FROM refunds WHERE status IN ('requested', 'pending') AND created_at < $1) \
         ORDER BY created_at LIMIT $2"
    )))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("could not list refunds in progress")?;
    rows.iter().map(from_row).collect()
}
