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

pub async fn load<'c>(
    pool: impl sqlx::Executor<'c, Database = sqlx::Any>,
    member_id: &str,
) -> anyhow::Result<Basket> {
    let rows = sqlx::query(
        "SELECT l.kind, l.category, l.label, l.amount_cents, l.season, l.occurred_on, \
         c.label AS category_label, c.position AS category_position \
         FROM basket_lines l LEFT JOIN categories c ON c.code = l.category \
         WHERE l.member_id = $1 ORDER BY l.occurred_on, l.created_at, l.id",
    )
    .bind(member_id)
    .fetch_all(pool)
    .await
    .context("could not read the basket")?;
    let mut basket = Basket {
        charges: Vec::new(),
        payments: Vec::new(),
        refunds: Vec::new(),
    };
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let line = BasketLine {
            category: row.try_get("category")?,
            label: row.try_get("label")?,
            amount: Money::from_cents(row.try_get("amount_cents")?),
            season: row.try_get("season")?,
            occurred_on: row.try_get("occurred_on")?,
            category_label: row.try_get("category_label")?,
            category_position: row.try_get("category_position")?,
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
