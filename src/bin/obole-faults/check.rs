//! After the campaign: what the journal and the baskets must hold, and what they hold.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use obole::db::Pool;
use sqlx::Row;

/// What the gateway knows of one attempt at the end.
#[derive(Debug, Clone)]
pub struct Truth {
    pub payment_id: String,
    pub gateway_ref: String,
    pub amount: i64,
    pub captured: bool,
    /// Refunds made at the gateway: (id, cents).
    pub refunds: Vec<(String, i64)>,
}

impl Truth {
    fn keys(&self) -> BTreeMap<String, i64> {
        let mut keys = BTreeMap::new();
        if self.captured {
            keys.insert(
                format!("capture:{}:{}", self.payment_id, self.gateway_ref),
                self.amount,
            );
        }
        for (id, cents) in &self.refunds {
            keys.insert(format!("refund:{}:{id}", self.payment_id), *cents);
        }
        keys
    }

    fn final_status(&self) -> &'static str {
        match (self.captured, self.refunds.is_empty()) {
            (true, true) => "paid",
            (true, false) => "partially_refunded",
            // Refused attempts are failed; abandoned ones expired by the final sweep.
            (false, _) => "closed",
        }
    }
}

#[derive(Debug, Default)]
pub struct Findings {
    pub captures_posted: usize,
    pub refunds_posted: usize,
    pub problems: Vec<String>,
    pub statuses: BTreeMap<String, usize>,
    pub verdicts: BTreeMap<String, i64>,
    pub debit: i64,
    pub credit: i64,
}

pub async fn verify(
    pool: &Pool,
    truths: &[Truth],
    entries_before: i64,
) -> anyhow::Result<Findings> {
    let mut findings = Findings::default();
    let mut entries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT payment_id, posting_key FROM journal_entries WHERE payment_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .context("journal entries")?
    {
        entries
            .entry(row.try_get("payment_id")?)
            .or_default()
            .insert(row.try_get("posting_key")?);
    }
    let mut lines: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT payment_id, posting_key, amount_cents FROM basket_lines WHERE payment_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .context("basket lines")?
    {
        lines
            .entry(row.try_get("payment_id")?)
            .or_default()
            .insert(row.try_get("posting_key")?, row.try_get("amount_cents")?);
    }
    let mut statuses: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    // Attempts the gateway refused to even create (the member tried again) are failed and
    // never reached it: they must simply post nothing.
    for row in sqlx::query("SELECT id, status, anomaly FROM payments WHERE gateway_ref IS NOT NULL")
        .fetch_all(pool)
        .await
        .context("payments")?
    {
        let status: String = row.try_get("status")?;
        *findings.statuses.entry(status.clone()).or_default() += 1;
        statuses.insert(row.try_get("id")?, (status, row.try_get("anomaly")?));
    }

    let mut known = BTreeSet::new();
    for truth in truths {
        known.insert(truth.payment_id.clone());
        let expected = truth.keys();
        let posted: BTreeMap<String, i64> = lines.remove(&truth.payment_id).unwrap_or_default();
        let journal = entries.remove(&truth.payment_id).unwrap_or_default();
        let expected_keys: BTreeSet<String> = expected.keys().cloned().collect();
        if journal != expected_keys {
            findings.problems.push(format!(
                "payment {}: journal entries {journal:?}, expected {expected_keys:?}",
                truth.payment_id
            ));
        }
        if posted != expected {
            findings.problems.push(format!(
                "payment {}: basket lines {posted:?}, expected {expected:?}",
                truth.payment_id
            ));
        }
        findings.captures_posted += journal.iter().filter(|k| k.starts_with("capture:")).count();
        findings.refunds_posted += journal.iter().filter(|k| k.starts_with("refund:")).count();
        match statuses.get(&truth.payment_id) {
            Some((status, anomaly)) => {
                let wanted = truth.final_status();
                let fits = if wanted == "closed" {
                    matches!(status.as_str(), "failed" | "expired" | "cancelled")
                } else {
                    status == wanted
                };
                if !fits {
                    findings.problems.push(format!(
                        "payment {} is {status}, expected {wanted}",
                        truth.payment_id
                    ));
                }
                if let Some(anomaly) = anomaly {
                    findings
                        .problems
                        .push(format!("payment {} flagged: {anomaly}", truth.payment_id));
                }
            }
            None => findings
                .problems
                .push(format!("payment {} is missing", truth.payment_id)),
        }
    }
    for (payment, keys) in entries {
        findings.problems.push(format!(
            "unexpected entries for payment {payment}: {keys:?}"
        ));
    }
    for (payment, keys) in lines {
        findings.problems.push(format!(
            "unexpected basket lines for payment {payment}: {keys:?}"
        ));
    }
    for (id, (status, _)) in &statuses {
        if !known.contains(id) {
            findings
                .problems
                .push(format!("unknown payment {id} ({status})"));
        }
        if matches!(status.as_str(), "created" | "pending") {
            findings
                .problems
                .push(format!("payment {id} left {status}"));
        }
    }
    let stray: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payments WHERE gateway_ref IS NULL \
         AND status NOT IN ('failed', 'expired')",
    )
    .fetch_one(pool)
    .await?;
    if stray > 0 {
        findings.problems.push(format!(
            "{stray} attempts never sent to the gateway are still open"
        ));
    }
    let others: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM journal_entries WHERE payment_id IS NULL")
            .fetch_one(pool)
            .await?;
    if others != entries_before {
        findings.problems.push(format!(
            "{others} entries without a payment, {entries_before} before the campaign"
        ));
    }
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(debit_cents), 0) AS BIGINT) AS d, \
         CAST(COALESCE(SUM(credit_cents), 0) AS BIGINT) AS c FROM journal_lines",
    )
    .fetch_one(pool)
    .await?;
    findings.debit = row.try_get("d")?;
    findings.credit = row.try_get("c")?;
    if findings.debit != findings.credit {
        findings.problems.push(format!(
            "the journal does not balance: debit {} credit {}",
            findings.debit, findings.credit
        ));
    }
    let unbalanced: Vec<String> = sqlx::query_scalar(
        "SELECT entry_id FROM journal_lines GROUP BY entry_id \
         HAVING SUM(debit_cents) <> SUM(credit_cents)",
    )
    .fetch_all(pool)
    .await?;
    for entry in unbalanced {
        findings
            .problems
            .push(format!("entry {entry} does not balance"));
    }
    let receipts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE kind = 'receipt'")
            .fetch_one(pool)
            .await?;
    if receipts as usize != findings.captures_posted {
        findings.problems.push(format!(
            "{receipts} receipts queued for {} captures",
            findings.captures_posted
        ));
    }
    for row in sqlx::query(
        "SELECT verdict, CAST(COUNT(*) AS BIGINT) AS n FROM gateway_notifications GROUP BY verdict",
    )
    .fetch_all(pool)
    .await?
    {
        findings
            .verdicts
            .insert(row.try_get("verdict")?, row.try_get("n")?);
    }
    Ok(findings)
}
