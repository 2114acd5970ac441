//! The association's double-entry journal: postings (always balanced, each posted once) and
//! the journal as managers read it.

use anyhow::{Context, ensure};
use sqlx::{AssertSqlSafe, Row};

use crate::config::ChartOfAccounts;
use crate::db::{self, Pool, Tx};
use crate::domain::Money;

/// Journal codes: charges owed by members, and receipts through gateways.
pub const JOURNAL_CHARGES: &str = "VT";
pub const JOURNAL_RECEIPTS: &str = "BQ";

#[derive(Debug, Clone)]
pub struct Line {
    pub account: String,
    pub member_id: Option<String>,
    pub label: String,
    pub debit: Money,
    pub credit: Money,
}

impl Line {
    pub fn debit(account: &str, member_id: Option<&str>, label: &str, amount: Money) -> Line {
        Line {
            account: account.to_string(),
            member_id: member_id.map(str::to_string),
            label: label.to_string(),
            debit: amount,
            credit: Money::ZERO,
        }
    }

    pub fn credit(account: &str, member_id: Option<&str>, label: &str, amount: Money) -> Line {
        Line {
            account: account.to_string(),
            member_id: member_id.map(str::to_string),
            label: label.to_string(),
            debit: Money::ZERO,
            credit: amount,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub journal: &'static str,
    pub date: String,
    pub label: String,
    pub member_id: Option<String>,
    pub payment_id: Option<String>,
    /// Names the fact being posted; a second posting of the same fact is refused by a unique key.
    pub posting_key: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    New,
    AlreadyPosted,
}

/// Writes a balanced entry inside the caller's transaction, once per posting key.
pub async fn post(tx: &mut Tx<'_>, entry: &Entry) -> anyhow::Result<Posted> {
    let debit: Money = entry.lines.iter().map(|l| l.debit).sum();
    let credit: Money = entry.lines.iter().map(|l| l.credit).sum();
    ensure!(
        debit == credit && debit.is_positive(),
        "refusing an unbalanced entry {}: debit {debit}, credit {credit}",
        entry.posting_key
    );
    let entry_id = db::new_id();
    let inserted = sqlx::query(
        "INSERT INTO journal_entries \
         (id, journal, entry_date, label, member_id, payment_id, posting_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (posting_key) DO NOTHING",
    )
    .bind(&entry_id)
    .bind(entry.journal)
    .bind(&entry.date)
    .bind(&entry.label)
    .bind(entry.member_id.as_deref())
    .bind(entry.payment_id.as_deref())
    .bind(&entry.posting_key)
    .bind(db::now_text())
    .execute(&mut **tx)
    .await
    .context("could not write the journal entry")?;
    if inserted.rows_affected() == 0 {
        return Ok(Posted::AlreadyPosted);
    }
    // Every line in one statement: a confirmation is bound by its round trips to the database.
    let lines: Vec<(usize, &Line)> = entry
        .lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.debit != Money::ZERO || line.credit != Money::ZERO)
        .collect();
    let values: Vec<String> = (0..lines.len())
        .map(|i| {
            let p = 7 * i;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO journal_lines \
         (entry_id, line_no, account, member_id, label, debit_cents, credit_cents) VALUES {}",
        values.join(", ")
    );
    let mut insert = sqlx::query(AssertSqlSafe(sql));
    for (line_no, line) in lines {
        insert = insert
            .bind(&entry_id)
            .bind(i64::try_from(line_no).unwrap_or(i64::MAX))
            .bind(&line.account)
            .bind(line.member_id.as_deref())
            .bind(&line.label)
            .bind(line.debit.cents())
            .bind(line.credit.cents());
    }
    insert
        .execute(&mut **tx)
        .await
        .context("could not write the journal lines")?;
    Ok(Posted::New)
}

/// A charge owed by a member: debit the member, credit the income account of its category.
pub fn charge_entry(
    accounts: &ChartOfAccounts,
    member_id: &str,
    income_account: &str,
    label: &str,
    amount: Money,
    date: &str,
    posting_key: &str,
) -> Entry {
    Entry {
        journal: JOURNAL_CHARGES,
        date: date.to_string(),
        label: label.to_string(),
        member_id: Some(member_id.to_string()),
        payment_id: None,
        posting_key: posting_key.to_string(),
        lines: vec![
            Line::debit(&accounts.members, Some(member_id), label, amount),
            Line::credit(income_account, None, label, amount),
        ],
    }
}

/// A payment confirmed by a gateway: the gateway owes us the amount less its fees, the fees
/// are an expense, the member's account is credited with the whole amount paid.
pub fn receipt_entry(
    accounts: &ChartOfAccounts,
    member_id: &str,
    payment_id: &str,
    label: &str,
    paid: Money,
    fee: Money,
    date: &str,
) -> Entry {
    Entry {
        journal: JOURNAL_RECEIPTS,
        date: date.to_string(),
        label: label.to_string(),
        member_id: Some(member_id.to_string()),
        payment_id: Some(payment_id.to_string()),
        posting_key: format!("payment:{payment_id}"),
        lines: vec![
            Line::debit(&accounts.gateway_clearing, None, label, paid - fee),
            Line::debit(&accounts.gateway_fees, None, label, fee),
            Line::credit(&accounts.members, Some(member_id), label, paid),
        ],
    }
}

/// Money given back to a member: the member's account is debited again, the gateway's
/// clearing account credited. The gateway's fee on the original payment stays an expense.
pub fn refund_entry(
    accounts: &ChartOfAccounts,
    member_id: &str,
    payment_id: &str,
    label: &str,
    amount: Money,
    date: &str,
    posting_key: &str,
) -> Entry {
    Entry {
        journal: JOURNAL_RECEIPTS,
        date: date.to_string(),
        label: label.to_string(),
        member_id: Some(member_id.to_string()),
        payment_id: Some(payment_id.to_string()),
        posting_key: posting_key.to_string(),
        lines: vec![
            Line::debit(&accounts.members, Some(member_id), label, amount),
            Line::credit(&accounts.gateway_clearing, None, label, amount),
        ],
    }
}

/// One line of the journal as a manager reads it.
#[derive(Debug, Clone)]
pub struct JournalRow {
    pub date: String,
    pub journal: String,
    pub label: String,
    pub member: Option<String>,
    pub account: String,
    pub debit: Money,
    pub credit: Money,
    pub first_of_entry: bool,
}

/// One line of a member's account statement, with the running balance (positive: owed).
#[derive(Debug, Clone)]
pub struct StatementLine {
    pub date: String,
    pub label: String,
    pub debit: Money,
    pub credit: Money,
    pub balance: Money,
}

/// A member's account over a period: the balance brought forward from before it, the lines
/// of the period with the running balance, and the balance at its end.
#[derive(Debug, Clone)]
pub struct Statement {
    pub opening: Money,
    pub lines: Vec<StatementLine>,
    pub closing: Money,
}

/// The member's account (auxiliary of the members account), oldest first, between two
/// dates (`YYYY-MM-DD`, both included; either may be open).
pub async fn member_statement(
    pool: &Pool,
    members_account: &str,
    member_id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> anyhow::Result<Statement> {
    let opening: i64 = match from {
        Some(from) => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(l.debit_cents - l.credit_cents), 0) AS BIGINT) \
             FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id \
             WHERE l.account = $1 AND l.member_id = $2 AND e.entry_date < $3",
        )
        .bind(members_account)
        .bind(member_id)
        .bind(from)
        .fetch_one(pool)
        .await
        .context("could not read the member's balance brought forward")?,
        None => 0,
    };
    let rows = sqlx::query(
        "SELECT e.entry_date, e.label, l.debit_cents, l.credit_cents \
         FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id \
         WHERE l.account = $1 AND l.member_id = $2 AND e.entry_date >= $3 AND e.entry_date <= $4 \
         ORDER BY e.entry_date, e.id, l.line_no",
    )
    .bind(members_account)
    .bind(member_id)
    .bind(from.unwrap_or("0000-00-00"))
    .bind(to.unwrap_or("9999-99-99"))
    .fetch_all(pool)
    .await
    .context("could not read the member's account")?;
    let opening = Money::from_cents(opening);
    let mut balance = opening;
    let lines = rows
        .iter()
        .map(|row| {
            let debit = Money::from_cents(row.try_get("debit_cents")?);
            let credit = Money::from_cents(row.try_get("credit_cents")?);
            balance = balance + debit - credit;
            Ok(StatementLine {
                date: row.try_get("entry_date")?,
                label: row.try_get("label")?,
                debit,
                credit,
                balance,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Statement {
        opening,
        lines,
        closing: balance,
    })
}
