//! Fast bulk seeding: members with their basket lines and the charges' journal entries,
//! journal entries enough for the export figure, and payment attempts awaiting confirmation.
//! Multi-row INSERTs inside large transactions, on SQLite and PostgreSQL alike.

use anyhow::Context;
use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Argon2, PasswordHasher};
use obole::config::ChartOfAccounts;
use obole::db::{self, Pool, Tx};
use obole::domain::ChargeCategory;
use sqlx::AssertSqlSafe;

pub const PASSWORD: &str = "bench-password";

enum Cell {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Cell {
    fn from(value: &str) -> Cell {
        Cell::Text(value.to_string())
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Cell {
        Cell::Text(value)
    }
}

impl From<i64> for Cell {
    fn from(value: i64) -> Cell {
        Cell::Int(value)
    }
}

/// Rows of one table, written many to a statement.
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Batch {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Batch {
        Batch {
            table,
            columns,
            rows: Vec::new(),
        }
    }

    async fn push(&mut self, _tx: &mut Tx<'_>, row: Vec<Cell>) -> anyhow::Result<()> {
        self.rows.push(row);
        Ok(())
    }

    fn big(&self) -> bool {
        self.rows.len() >= 5_000
    }

    /// Writes the rows held, a few thousand parameters to a statement.
    async fn flush(&mut self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        let per_statement = (3_000 / self.columns.len()).max(1);
        while !self.rows.is_empty() {
            let take = self.rows.len().min(per_statement);
            let rows: Vec<Vec<Cell>> = self.rows.drain(..take).collect();
            self.write(tx, rows).await?;
        }
        Ok(())
    }

    async fn write(&mut self, tx: &mut Tx<'_>, rows: Vec<Vec<Cell>>) -> anyhow::Result<()> {
        let width = self.columns.len();
        let values: Vec<String> = (0..rows.len())
            .map(|r| {
                let marks: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.table,
            self.columns.join(", "),
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for cell in rows.into_iter().flatten() {
            query = match cell {
                Cell::Text(text) => query.bind(text),
                Cell::Int(number) => query.bind(number),
                Cell::Null => query.bind(Option::<String>::None),
            };
        }
        query
            .execute(&mut **tx)
            .await
            .with_context(|| format!("could not insert into {}", self.table))?;
        Ok(())
    }
}

const USERS: &[&str] = &[
    "id",
    "email",
    "password_hash",
    "role",
    "first_name",
    "last_name",
    "active",
    "created_at",
];
const LINES: &[&str] = &[
    "id",
    "member_id",
    "kind",
    "category",
    "label",
    "amount_cents",
    "season",
    "posting_key",
    "occurred_on",
    "created_at",
];
const ENTRIES: &[&str] = &[
    "id",
    "journal",
    "entry_date",
    "label",
    "member_id",
    "posting_key",
    "created_at",
];
const JOURNAL_LINES: &[&str] = &[
    "entry_id",
    "line_no",
    "account",
    "member_id",
    "label",
    "debit_cents",
    "credit_cents",
];

/// `members` members with `lines` charges each (basket line and journal entry); returns
/// their ids and the number of journal lines written.
pub async fn members(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    members: usize,
    lines: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let hash = Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let now = db::now_text();
    let year = &now[..4];
    let mut ids = Vec::with_capacity(members);
    let mut journal_lines = 0;
    let mut tx = pool.begin().await?;
    let mut users = Batch::new("users", USERS);
    let mut basket = Batch::new("basket_lines", LINES);
    let mut entries = Batch::new("journal_entries", ENTRIES);
    let mut postings = Batch::new("journal_lines", JOURNAL_LINES);
    for m in 0..members {
        let id = db::new_id();
        users
            .push(
                &mut tx,
                vec![
                    id.as_str().into(),
                    format!("bench{m}@exemple.org").into(),
                    hash.as_str().into(),
                    "member".into(),
                    format!("Prénom{m}").into(),
                    format!("Nom{m}").into(),
                    1i64.into(),
                    now.as_str().into(),
                ],
            )
            .await?;
        for l in 0..lines {
            let category = ChargeCategory::ALL[l % ChargeCategory::ALL.len()];
            let label = format!("{} {year} n°{l}", category.label_fr());
            let cents = 500 + ((m * 31 + l * 17) % 9_000) as i64;
            let date = format!("{year}-{:02}-{:02}", 1 + l % 12, 1 + (m + l) % 28);
            let key = format!("bench:{id}:{l}");
            basket
                .push(
                    &mut tx,
                    vec![
                        db::new_id().into(),
                        id.as_str().into(),
                        "charge".into(),
                        category.as_str().into(),
                        label.as_str().into(),
                        cents.into(),
                        year.to_string().into(),
                        key.as_str().into(),
                        date.as_str().into(),
                        now.as_str().into(),
                    ],
                )
                .await?;
            let entry = db::new_id();
            entries
                .push(
                    &mut tx,
                    vec![
                        entry.as_str().into(),
                        obole::ledger::JOURNAL_CHARGES.into(),
                        date.into(),
                        label.as_str().into(),
                        id.as_str().into(),
                        key.into(),
                        now.as_str().into(),
                    ],
                )
                .await?;
            for (no, account, member, debit, credit) in [
                (1i64, accounts.members.as_str(), Some(&id), cents, 0i64),
                (2, accounts.income_for(category), None, 0, cents),
            ] {
                postings
                    .push(
                        &mut tx,
                        vec![
                            entry.as_str().into(),
                            no.into(),
                            account.into(),
                            member.map_or(Cell::Null, |m| m.as_str().into()),
                            label.as_str().into(),
                            debit.into(),
                            credit.into(),
                        ],
                    )
                    .await?;
                journal_lines += 1;
            }
        }
        ids.push(id);
        // Parents before children: users, basket lines, entries, their lines.
        if basket.big() || postings.big() {
            for batch in [&mut users, &mut basket, &mut entries, &mut postings] {
                batch.flush(&mut tx).await?;
            }
        }
        if m % 1_000 == 999 {
            for batch in [&mut users, &mut basket, &mut entries, &mut postings] {
                batch.flush(&mut tx).await?;
            }
            tx.commit().await?;
            tx = pool.begin().await?;
        }
    }
    for batch in [&mut users, &mut basket, &mut entries, &mut postings] {
        batch.flush(&mut tx).await?;
    }
    tx.commit().await?;
    Ok((ids, journal_lines))
}

/// Receipt-like entries (two lines each) until the journal holds `target` lines this year.
pub async fn journal(
    pool: &Pool,
    members: &[String],
    already: usize,
    target: usize,
) -> anyhow::Result<()> {
    let now = db::now_text();
    let year = &now[..4];
    let mut tx = pool.begin().await?;
    let mut entries = Batch::new("journal_entries", ENTRIES);
    let mut postings = Batch::new("journal_lines", JOURNAL_LINES);
    let wanted = target.saturating_sub(already) / 2;
    for k in 0..wanted {
        let member = &members[k % members.len()];
        let entry = db::new_id();
        let date = format!("{year}-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
        let cents = 1_000 + (k % 5_000) as i64;
        let label = format!("Paiement n°{k}");
        entries
            .push(
                &mut tx,
                vec![
                    entry.as_str().into(),
                    obole::ledger::JOURNAL_RECEIPTS.into(),
                    date.into(),
                    label.as_str().into(),
                    member.as_str().into(),
                    format!("bench-receipt:{k}").into(),
                    now.as_str().into(),
                ],
            )
            .await?;
        for (no, account, member, debit, credit) in [
            (1i64, "5112", None, cents, 0i64),
            (2, "411", Some(member), 0, cents),
        ] {
            postings
                .push(
                    &mut tx,
                    vec![
                        entry.as_str().into(),
                        no.into(),
                        account.into(),
                        member.map_or(Cell::Null, |m| m.as_str().into()),
                        label.as_str().into(),
                        debit.into(),
                        credit.into(),
                    ],
                )
                .await?;
        }
        if postings.big() {
            entries.flush(&mut tx).await?;
            postings.flush(&mut tx).await?;
        }
        if k % 20_000 == 19_999 {
            entries.flush(&mut tx).await?;
            postings.flush(&mut tx).await?;
            tx.commit().await?;
            tx = pool.begin().await?;
        }
    }
    entries.flush(&mut tx).await?;
    postings.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Attempts waiting at the sandbox for their confirmation: (payment id, gateway ref, cents).
pub async fn pending_attempts(
    pool: &Pool,
    members: &[String],
    count: usize,
) -> anyhow::Result<Vec<(String, String, i64)>> {
    const PAYMENTS: &[&str] = &[
        "id",
        "member_id",
        "gateway",
        "amount_cents",
        "currency",
        "status",
        "test_mode",
        "gateway_ref",
        "created_at",
        "updated_at",
    ];
    let now = db::now_text();
    let mut tx = pool.begin().await?;
    let mut payments = Batch::new("payments", PAYMENTS);
    let mut attempts = Vec::with_capacity(count);
    for k in 0..count {
        let id = db::new_id();
        let gateway_ref = format!("sbx_pay_bench{k}");
        let cents = 1_000 + (k % 9_000) as i64;
        payments
            .push(
                &mut tx,
                vec![
                    id.as_str().into(),
                    members[k % members.len()].as_str().into(),
                    "sandbox".into(),
                    cents.into(),
                    "EUR".into(),
                    "pending".into(),
                    1i64.into(),
                    gateway_ref.as_str().into(),
                    now.as_str().into(),
                    now.as_str().into(),
                ],
            )
            .await?;
        attempts.push((id, gateway_ref, cents));
    }
    payments.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(attempts)
}
