//! Writes what verified notifications report, each stored with its verdict in the same
//! transaction as what it changed.
//!
//! On PostgreSQL each notification is a transaction of its own: PostgreSQL already flushes its
//! log once for all the commits waiting at that moment. On SQLite every durable commit is an
//! fsync of its own and writers queue for one lock, so one task writes them all (group
//! commit): it takes every notification waiting (at most [`MAX_BATCH`]), applies each in a
//! savepoint of one `BEGIN IMMEDIATE` transaction, commits once, and only then answers each.
//! A notification whose savepoint failed gets its error (503: the gateway retries) and leaves
//! nothing; if the transaction cannot begin or commit, every notification of the batch gets
//! an error and nothing of the batch stays.

use std::sync::Arc;

use anyhow::Context;
use sqlx::Acquire;
use tokio::sync::{mpsc, oneshot};

use crate::config::Settings;
use crate::db::{self, Pool, Tx};
use crate::gateways::GatewayReport;
use crate::notifications::Received;
use crate::payments::{self, Applied};

/// The most notifications one SQLite transaction holds.
pub const MAX_BATCH: usize = 128;

pub struct NotificationWriter {
    pool: Pool,
    settings: Arc<Settings>,
    /// The group-commit task, on SQLite.
    batches: Option<mpsc::Sender<Job>>,
}

struct Job {
    gateway: &'static str,
    label: &'static str,
    report: GatewayReport,
    notification: Received,
    reply: oneshot::Sender<anyhow::Result<Applied>>,
}

impl NotificationWriter {
    /// On SQLite, starts the task that writes every notification (on the current runtime).
    pub fn start(pool: Pool, settings: Arc<Settings>) -> NotificationWriter {
        let batches = (!db::is_postgres(&pool)).then(|| {
            let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(write_batches(pool.clone(), settings.clone(), receiver));
            sender
        });
        NotificationWriter {
            pool,
            settings,
            batches,
        }
    }

    /// Applies the report and stores the notification with its verdict; returns once both are
    /// durably committed.
    pub async fn apply(
        &self,
        gateway: &'static str,
        label: &'static str,
        report: GatewayReport,
        notification: Received,
    ) -> anyhow::Result<Applied> {
        let Some(batches) = &self.batches else {
            return payments::apply_and_record(
                &self.pool,
                &self.settings.accounts,
                gateway,
                label,
                &report,
                Some(&notification),
            )
            .await;
        };
        let (reply, answer) = oneshot::channel();
        batches
            .send(Job {
                gateway,
                label,
                report,
                notification,
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the notification writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the notification writer has stopped"))?
    }
}

async fn write_batches(pool: Pool, settings: Arc<Settings>, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let started = std::time::Instant::now();
        let results = write_batch(&pool, &settings, &batch).await;
        tracing::debug!(
            notifications = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch of notifications written"
        );
        for (job, result) in batch.drain(..).zip(results) {
            // The gateway may have hung up meanwhile: it will send the notification again.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction for the batch; one result per job, in order. The jobs are first applied
/// one after the other as they are; if one fails, that transaction is rolled back and the
/// batch applied again with each job in a savepoint, so that the failure stays its own.
async fn write_batch(
    pool: &Pool,
    settings: &Settings,
    batch: &[Job],
) -> Vec<anyhow::Result<Applied>> {
    match write_in_one_transaction(pool, settings, batch, false).await {
        Ok(results) if results.iter().all(Result::is_ok) => results,
        Ok(_) => write_in_one_transaction(pool, settings, batch, true)
            .await
            .unwrap_or_else(|error| all_failed(batch.len(), &error)),
        Err(error) => all_failed(batch.len(), &error),
    }
}

/// Without savepoints, stops at the first job that fails and rolls everything back (the
/// results then say which failed); with them, applies every job it can and commits.
async fn write_in_one_transaction(
    pool: &Pool,
    settings: &Settings,
    batch: &[Job],
    savepoints: bool,
) -> anyhow::Result<Vec<anyhow::Result<Applied>>> {
    let mut conn = pool.acquire().await.context("no database connection")?;
    let outcome = async {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .context("could not take the database's write lock")?;
        let results = if savepoints {
            apply_each_in_savepoint(&mut tx, settings, batch).await?
        } else {
            let mut results = Vec::with_capacity(batch.len());
            for job in batch {
                let result = apply(&mut tx, settings, job).await;
                let failed = result.is_err();
                results.push(result);
                if failed {
                    tx.rollback()
                        .await
                        .context("could not roll the notifications back")?;
                    return Ok(results);
                }
            }
            results
        };
        tx.commit()
            .await
            .context("could not commit the notifications")?;
        anyhow::Ok(results)
    }
    .await;
    if let Err(error) = &outcome {
        tracing::error!(error = ?error, notifications = batch.len(), "a batch of notifications was not written");
        // Whatever state the transaction was left in goes with its connection.
        conn.close_on_drop();
    }
    outcome
}

async fn apply(tx: &mut Tx<'_>, settings: &Settings, job: &Job) -> anyhow::Result<Applied> {
    payments::apply_and_record_in(
        tx,
        &settings.accounts,
        job.gateway,
        job.label,
        &job.report,
        &job.notification,
    )
    .await
}

/// Each job in its own savepoint; Err when the transaction itself can no longer be trusted.
async fn apply_each_in_savepoint(
    tx: &mut Tx<'_>,
    settings: &Settings,
    batch: &[Job],
) -> anyhow::Result<Vec<anyhow::Result<Applied>>> {
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let mut savepoint = tx.begin().await.context("could not start a savepoint")?;
        match apply(&mut savepoint, settings, job).await {
            Ok(applied) => {
                savepoint
                    .commit()
                    .await
                    .context("could not release a savepoint")?;
                results.push(Ok(applied));
            }
            Err(error) => {
                // If SQLite rolled the whole transaction back, the savepoint is gone and
                // this fails: the batch stops rather than write the rest outside it.
                savepoint
                    .rollback()
                    .await
                    .context("could not roll a savepoint back")?;
                results.push(Err(error));
            }
        }
    }
    Ok(results)
}

fn all_failed(count: usize, error: &anyhow::Error) -> Vec<anyhow::Result<Applied>> {
    (0..count)
        .map(|_| Err(anyhow::anyhow!("{error:#}")))
        .collect()
}
