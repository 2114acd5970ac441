//! The reconciliation sweep: asks gateways about attempts still open after a while (their
//! notification was lost) and expires those abandoned on the hosted page. It posts through
//! the one writer, so a sweep racing a notification still posts once. It also charges the
//! dues whose date has come on the cards members saved (`saved_cards::dues`).

use std::time::Duration;

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

/// One pass over open attempts older than `reconcile.pending_after_secs`.
pub async fn run_once(
    pool: &Pool,
    gateways: &Registry,
    settings: &Settings,
) -> anyhow::Result<SweepCounts> {
    let mut counts = SweepCounts::default();
    let expire_before = cutoff(settings.reconcile.expire_after_secs);
    let open = payments::list_open_before(
        pool,
        &cutoff(settings.reconcile.pending_after_secs),
        settings.reconcile.batch,
    )
    .await?;
    for payment in open {
        counts.checked += 1;
        let Some(gateway) = gateways.get(&payment.gateway) else {
            continue;
        };
        let abandoned = payment.created_at < expire_before;
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
    // Refunds the gateway has not confirmed yet: its answer now posts them (once).
    let refunding = payments::list_with_refunds_pending(
        pool,
        &cutoff(settings.reconcile.pending_after_secs),
        settings.reconcile.batch,
    )
    .await?;
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
