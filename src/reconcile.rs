//! The reconciliation sweep: asks gateways about attempts still open after a while (their
//! notification was lost) and expires those abandoned on the hosted page. It posts through
//! the one writer, so a sweep racing a notification still posts once. It also charges the
//! dues whose date has come on the cards members saved (`saved_cards::dues`).
//!
//! Several processes may share one database: each sweep claims the attempts it asks about
//! with a lease (`claimed_until`, `claimed_by`), taken with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL and by one guarded UPDATE on SQLite (one writer at a time), so that no attempt
//! is asked about by two processes at once, nor twice within a lease.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use sqlx::AssertSqlSafe;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::PaymentStatus;
use crate::gateways::{Registry, RegistryHandle};
use crate::payments::{self, Applied};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepCounts {
    pub checked: u64,
    pub posted: u64,
    pub moved: u64,
    pub expired: u64,
    pub flagged: u64,
    pub errors: u64,
    /// Dues charged on saved cards, and those refused or unanswered.
    pub dues_charged: u64,
    pub dues_failed: u64,
}

fn cutoff(seconds_ago: i64) -> String {
    db::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds_ago))
}

/// Attempts (or refunds) claimed at once: small, so that a slow gateway does not let the
/// lease of the last ones run out before they are asked about.
const CLAIM_CHUNK: i64 = 10;

/// What a claim takes: open attempts, or refunds still waiting for the gateway's word.
#[derive(Clone, Copy)]
enum Work {
    OpenAttempts,
    PendingRefunds,
}

impl Work {
    /// The table, the rows due, and what the claim returns (the payment's id).
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Work::OpenAttempts => (
                "payments",
                "status IN ('created', 'pending') AND created_at < $3",
                "id",
            ),
            Work::PendingRefunds => (
                "refunds",
                "status IN ('requested', 'pending') AND created_at < $3",
                "payment_id",
            ),
        }
    }
}

/// Claims up to `limit` rows due and not leased by anyone, for `lease_secs`; returns the
/// ids of their payments. One statement: its own short transaction.
async fn claim(
    pool: &Pool,
    work: Work,
    created_before: &str,
    limit: i64,
    lease_secs: i64,
) -> anyhow::Result<Vec<String>> {
    let (table, due, returned) = work.parts();
    let now = db::now_text();
    let until =
        db::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(lease_secs));
    let free = "(claimed_until IS NULL OR claimed_until <= $4)";
    let sql = if db::is_postgres(pool) {
        // Rows another process is claiming right now are skipped, not waited for.
        format!(
            "WITH picked AS (SELECT id FROM {table} WHERE {due} AND {free} \
             ORDER BY created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
             UPDATE {table} SET claimed_until = $1, claimed_by = $2 FROM picked \
             WHERE {table}.id = picked.id RETURNING {table}.{returned}"
        )
    } else {
        format!(
            "UPDATE {table} SET claimed_until = $1, claimed_by = $2 \
             WHERE id IN (SELECT id FROM {table} WHERE {due} AND {free} \
             ORDER BY created_at, id LIMIT $5) AND {free} RETURNING {returned}"
        )
    };
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(until)
        .bind(db::instance_id())
        .bind(created_before)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
        .context("could not claim work for the sweep")
}

/// Claims the next chunk of work not seen yet in this sweep; empty when there is none.
async fn claim_next(
    pool: &Pool,
    settings: &Settings,
    work: Work,
    created_before: &str,
    seen: &mut HashSet<String>,
) -> anyhow::Result<Vec<payments::Payment>> {
    let room = settings.reconcile.batch - seen.len() as i64;
    if room <= 0 {
        return Ok(Vec::new());
    }
    let ids = claim(
        pool,
        work,
        created_before,
        room.min(CLAIM_CHUNK),
        settings.reconcile.lease_secs,
    )
    .await?;
    let mut claimed = Vec::new();
    for id in ids {
        if seen.insert(id.clone())
            && let Some(payment) = payments::find(pool, &id).await?
        {
            claimed.push(payment);
        }
    }
    Ok(claimed)
}

/// One pass over open attempts older than `reconcile.pending_after_secs`.
pub async fn run_once(
    pool: &Pool,
    gateways: &Registry,
    settings: &Settings,
) -> anyhow::Result<SweepCounts> {
    let mut counts = SweepCounts::default();
    let expire_before = cutoff(settings.reconcile.expire_after_secs);
    let open_before = cutoff(settings.reconcile.pending_after_secs);
    let mut seen = HashSet::new();
    loop {
        let open = claim_next(pool, settings, Work::OpenAttempts, &open_before, &mut seen).await?;
        if open.is_empty() {
            break;
        }
        sweep_open(pool, gateways, settings, &expire_before, open, &mut counts).await?;
    }
    // Refunds the gateway has not confirmed yet: its answer now posts them (once).
    let mut seen = HashSet::new();
    loop {
        let refunding = claim_next(
            pool,
            settings,
            Work::PendingRefunds,
            &open_before,
            &mut seen,
        )
        .await?;
        if refunding.is_empty() {
            break;
        }
        sweep_refunds(pool, gateways, settings, refunding, &mut counts).await?;
    }
    // Dues whose date has come, on the cards members saved.
    match crate::saved_cards::dues::run_once(pool, gateways, settings).await {
        Ok(dues) => {
            counts.dues_charged = dues.charged;
            counts.dues_failed = dues.failed;
        }
        Err(error) => {
            counts.errors += 1;
            tracing::error!(error = ?error, "dues on saved cards could not be charged");
        }
    }
    Ok(counts)
}

async fn sweep_open(
    pool: &Pool,
    gateways: &Registry,
    settings: &Settings,
    expire_before: &str,
    open: Vec<payments::Payment>,
    counts: &mut SweepCounts,
) -> anyhow::Result<()> {
    for payment in open {
        if !payment.status.is_open() {
            continue;
        }
        counts.checked += 1;
        let Some(gateway) = gateways.get(&payment.gateway) else {
            continue;
        };
        let abandoned = payment.created_at.as_str() < expire_before;
        if let Some(gateway_ref) = &payment.gateway_ref {
            match gateway.fetch_payment(gateway_ref).await {
                Ok(report) => {
                    match payments::apply_report(
                        pool,
                        &settings.accounts,
                        gateway.id(),
                        gateway.display_name(),
                        &report,
                    )
                    .await?
                    {
                        Applied::Posted { .. } => counts.posted += 1,
                        Applied::Moved { .. } => counts.moved += 1,
                        Applied::Flagged { .. } => counts.flagged += 1,
                        Applied::Unchanged { .. } | Applied::UnknownPayment => {}
                    }
                    if report.status != PaymentStatus::Pending || !abandoned {
                        continue;
                    }
                }
                Err(error) => {
                    counts.errors += 1;
                    tracing::warn!(payment_id = %payment.id, error = ?error, "sweep could not ask the gateway");
                    continue;
                }
            }
            if gateway.capabilities().cancel
                && let Err(error) = gateway.cancel(gateway_ref).await
            {
                tracing::info!(payment_id = %payment.id, error = ?error, "gateway did not cancel an abandoned request");
            }
        } else if !abandoned {
            continue;
        }
        if payments::close(pool, &payment.id, PaymentStatus::Expired).await? {
            counts.expired += 1;
        }
    }
    Ok(())
}

async fn sweep_refunds(
    pool: &Pool,
    gateways: &Registry,
    settings: &Settings,
    refunding: Vec<payments::Payment>,
    counts: &mut SweepCounts,
) -> anyhow::Result<()> {
    for payment in refunding {
        let (Some(gateway), Some(gateway_ref)) = (
            gateways.get(&payment.gateway),
            payment.gateway_ref.as_deref(),
        ) else {
            continue;
        };
        counts.checked += 1;
        match gateway.fetch_payment(gateway_ref).await {
            Ok(report) => {
                if let Applied::Posted { .. } = payments::apply_report(
                    pool,
                    &settings.accounts,
                    gateway.id(),
                    gateway.display_name(),
                    &report,
                )
                .await?
                {
                    counts.posted += 1;
                }
            }
            Err(error) => {
                counts.errors += 1;
                tracing::warn!(payment_id = %payment.id, error = ?error, "sweep could not ask about a refund");
            }
        }
    }
    Ok(())
}

/// Runs the sweep every `reconcile.interval_secs` (0: never) until the process ends, each time
/// with the gateways in use then.
pub fn spawn(pool: Pool, gateways: RegistryHandle, settings: std::sync::Arc<Settings>) {
    let every = settings.reconcile.interval_secs;
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(every));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_once(&pool, &gateways.current(), &settings).await {
                Ok(counts) if counts != SweepCounts::default() => {
                    tracing::info!(?counts, "reconciliation sweep")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(error = ?error, "reconciliation sweep failed"),
            }
        }
    });
}
