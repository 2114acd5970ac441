//! A member's basket: charges owed, payments made, and the balance.

use anyhow::Context;
use sqlx::Row;

use crate::account_plan;
use crate::config::ChartOfAccounts;
use crate::db::{self, Pool};
use crate::domain::Money;
use crate::ledger;

#[derive(Debug, Clone)]
pub struct BasketLine {
    pub kind: String,
    /// The code of the charge's category.
    pub category: String,
    pub label: String,
    pub amount: Money,
    pub season: Option<String>,
    pub occurred_on: String,
    /// The category's label and place, when a category of that code exists.
    pub category_label: Option<String>,
    pub category_position: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Basket {
    pub charges: Vec<BasketLine>,
    pub payments: Vec<BasketLine>,
    pub refunds: Vec<BasketLine>,
}

impl Basket {
    pub fn total_charges(&self) -> Money {
        self.charges.iter().map(|l| l.amount).sum()
    }

    pub fn total_paid(&self) -> Money {
        self.payments.iter().map(|l| l.amount).sum::<Money>()
            - self.refunds.iter().map(|l| l.amount).sum::<Money>()
    }

    /// Positive: the member owes this much. Negative: the member is in credit.
    pub fn balance(&self) -> Money {
        self.total_charges() - self.total_paid()
    }

    /// Charges of one category, in basket order.
    pub fn charges_in(&self, category: &str) -> Vec<&BasketLine> {
        self.charges
            .iter()
            .filter(|l| l.category == category)
            .collect()
    }

    /// Charges grouped by category, named by the category's label, in the categories' order
    /// (a code no category knows any more is its own group, last).
    pub fn charges_by_category(&self) -> Vec<(String, Vec<&BasketLine>)> {
        let mut known: Vec<(i64, &str, String, Vec<&BasketLine>)> = Vec::new();
        let mut unknown: Vec<(String, Vec<&BasketLine>)> = Vec::new();
        for line in &self.charges {
            match (&line.category_label, line.category_position) {
                (Some(label), Some(position)) => {
                    match known.iter_mut().find(|g| g.1 == line.category) {
                        Some(group) => group.3.push(line),
                        None => known.push((position, &line.category, label.clone(), vec![line])),
                    }
                }
                _ => match unknown.iter_mut().find(|(code, _)| *code == line.category) {
                    Some((_, lines)) => lines.push(line),
                    None => unknown.push((line.category.clone(), vec![line])),
                },
            }
        }
        known.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        known
            .into_iter()
            .map(|(_, _, label, lines)| (label, lines))
            .chain(unknown)
            .collect()
    }
}

/// The member's basket lines, oldest first.
pub async fn load(pool: &Pool, member_id: &str) -> anyhow::Result<Basket> {
    let mut conn = pool
        .acquire()
        .await
        .context("could not reach the database")?;
    load_on(&mut conn, member_id).await
}

/// One line as the database hands it over, in one JSON array per line (see [`load_on`]).
#[derive(serde::Deserialize)]
struct LineRecord(
    String,         // kind
    String,         // category
    String,         // label
    i64,            // amount_cents
    Option<String>, // season
    String,         // occurred_on
    Option<String>, // the category's label
    Option<i64>,    // the category's position
    String,         // created_at
    String,         // id
);

/// The basket on a connection already taken. On SQLite the lines come back as one JSON array
/// in one row rather than a row each: every row crosses from the connection's thread to the
/// page's, and with twenty lines those crossings were most of the page's cost (basket page
/// 5,100 → 6,100 req/s). PostgreSQL sends rows in one stream, and building the JSON costs it
/// more than it saves (3,300 → 2,400 req/s), so it sends rows.
pub async fn load_on(conn: &mut sqlx::AnyConnection, member_id: &str) -> anyhow::Result<Basket> {
    const COLUMNS: &str = "l.kind, l.category, l.label, l.amount_cents, l.season, \
        l.occurred_on, c.label, c.position, l.created_at, l.id";
    const FROM: &str = "FROM basket_lines l LEFT JOIN categories c ON c.code = l.category \
        WHERE l.member_id = $1";
    let mut records: Vec<LineRecord> = if conn.backend_name() == "SQLite" {
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_array(json_array({COLUMNS})) {FROM}"
        )))
        .bind(member_id)
        .fetch_one(&mut *conn)
        .await
        .context("could not read the basket")?;
        serde_json::from_str(&json).context("could not read the basket's lines")?
    } else {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} {FROM}")))
            .bind(member_id)
            .fetch_all(&mut *conn)
            .await
            .context("could not read the basket")?;
        rows.iter()
            .map(|row| {
                Ok(LineRecord(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    row.try_get(8)?,
                    row.try_get(9)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("could not read the basket's lines")?
    };
    // The basket's order, the same on both databases: by date, then as entered.
    records.sort_by(|a, b| (&a.5, &a.8, &a.9).cmp(&(&b.5, &b.8, &b.9)));
    let mut basket = Basket {
        charges: Vec::new(),
        payments: Vec::new(),
        refunds: Vec::new(),
    };
    for LineRecord(kind, category, label, cents, season, occurred_on, cat_label, position, ..) in
        records
    {
        let line = BasketLine {
            category,
            label,
            amount: Money::from_cents(cents),
            season,
            occurred_on,
            category_label: cat_label,
            category_position: position,
            kind,
        };
        match line.kind.as_str() {
            "charge" => basket.charges.push(line),
            "payment" => basket.payments.push(line),
            _ => basket.refunds.push(line),
        }
    }
    Ok(basket)
}

/// Each member's balance, for managers.
#[derive(Debug, Clone)]
pub struct MemberBalance {
    pub member_id: String,
    pub name: String,
    pub email: String,
    pub charges: Money,
    pub paid: Money,
    pub balance: Money,
}

pub async fn member_balances(pool: &Pool) -> anyhow::Result<Vec<MemberBalance>> {
    let rows = sqlx::query(
        "SELECT u.id, u.first_name, u.last_name, u.email, \
            CAST(COALESCE(SUM(CASE WHEN b.kind = 'charge' THEN b.amount_cents ELSE 0 END), 0) AS BIGINT) AS charges, \
            CAST(COALESCE(SUM(CASE WHEN b.kind = 'payment' THEN b.amount_cents \
                                   WHEN b.kind = 'refund' THEN -b.amount_cents ELSE 0 END), 0) AS BIGINT) AS paid \
         FROM users u LEFT JOIN basket_lines b ON b.member_id = u.id \
         WHERE u.role = 'member' AND u.active = 1 \
         GROUP BY u.id, u.first_name, u.last_name, u.email \
         ORDER BY u.last_name, u.first_name, u.id",
    )
    .fetch_all(pool)
    .await
    .context("could not read member balances")?;
    rows.iter()
        .map(|row| {
            let charges = Money::from_cents(row.try_get("charges")?);
            let paid = Money::from_cents(row.try_get("paid")?);
            let first: String = row.try_get("first_name")?;
            let last: String = row.try_get("last_name")?;
            Ok(MemberBalance {
                member_id: row.try_get("id")?,
                name: format!("{first} {last}"),
                email: row.try_get("email")?,
                charges,
                paid,
                balance: charges - paid,
            })
        })
        .collect()
}

pub struct NewCharge<'a> {
    pub member_id: &'a str,
    /// The code of a category (its income account is read when posting).
    pub category: &'a str,
    pub label: &'a str,
    pub amount: Money,
    pub season: Option<&'a str>,
    pub date: &'a str,
    /// Names the charge so that submitting it twice adds it once.
    pub posting_key: &'a str,
    /// When it falls due: a member with a saved card is charged for it then.
    pub due_on: Option<&'a str>,
}

/// Adds a charge to a member's basket and posts it (debit member, credit the income account
/// of its category as it is now), once.
pub async fn add_charge(
    pool: &Pool,
    accounts: &ChartOfAccounts,
    charge: NewCharge<'_>,
) -> anyhow::Result<bool> {
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let income_account = account_plan::income_account(&mut tx, charge.category)
        .await?
        .with_context(|| format!("no category {}", charge.category))?;
    let inserted = sqlx::query(
        "INSERT INTO basket_lines (id, member_id, kind, category, label, amount_cents, season, \
         posting_key, occurred_on, created_at, due_on) \
         VALUES ($1, $2, 'charge', $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (posting_key) DO NOTHING",
    )
    .bind(db::new_id())
    .bind(charge.member_id)
    .bind(charge.category)
    .bind(charge.label)
    .bind(charge.amount.cents())
    .bind(charge.season)
    .bind(charge.posting_key)
    .bind(charge.date)
    .bind(db::now_text())
    .bind(charge.due_on)
    .execute(&mut *tx)
    .await
    .context("could not add the charge")?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await.ok();
        return Ok(false);
    }
    let entry = ledger::charge_entry(
        accounts,
        charge.member_id,
        &income_account,
        charge.label,
        charge.amount,
        charge.date,
        charge.posting_key,
    );
    ledger::post(&mut tx, &entry).await?;
    tx.commit().await.context("could not commit the charge")?;
    Ok(true)
}
