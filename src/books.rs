//! Reading the books: the journal filtered and paged, the balance of each account over a
//! period, and the money collected per month and gateway.

use anyhow::Context;
use sqlx::{AssertSqlSafe, Row};

use crate::config::Settings;
use crate::db::Pool;
use crate::domain::{Money, parse_account_prefix};
use crate::exports::{self, Period};
use crate::ledger::JournalRow;

/// Which journal lines to show: all the conditions hold. Built by [`JournalFilter::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalFilter {
    /// First and last day, `YYYY-MM-DD`, both included.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Lines whose account starts with these digits.
    pub account: Option<String>,
    /// Entries about this member.
    pub member_id: Option<String>,
    /// Entries of payments through this gateway.
    pub gateway: Option<String>,
}

/// `YYYY-MM-DD`, or the message (in the reader's language) for a date that is not one.
pub fn parse_date(input: &str, what: &str) -> Result<Option<String>, String> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format)
        .map(|_| Some(value.to_string()))
        .map_err(|_| crate::i18n::current().tf("period.bad_date", &[("what", what)]))
}

/// A period typed in a form: both ends optional, the start not after the end.
pub fn parse_period(from: &str, to: &str) -> Result<(Option<String>, Option<String>), String> {
    let lang = crate::i18n::current();
    let from = parse_date(from, lang.t("period.from"))?;
    let to = parse_date(to, lang.t("period.to"))?;
    if let (Some(f), Some(t)) = (&from, &to)
        && f > t
    {
        return Err(lang.t("period.start_after_end").into());
    }
    Ok((from, to))
}

impl JournalFilter {
    /// The filter typed in the journal's form. The member and the gateway are checked by the
    /// caller against the ones that exist.
    pub fn parse(
        from: &str,
        to: &str,
        account: &str,
        member_id: &str,
        gateway: &str,
    ) -> Result<JournalFilter, String> {
        let (from, to) = parse_period(from, to)?;
        let account = parse_account_prefix(account).map_err(|e| {
            crate::i18n::current().tf("period.account", &[("error", &e.to_string())])
        })?;
        let text = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        Ok(JournalFilter {
            from,
            to,
            account,
            member_id: text(member_id),
            gateway: text(gateway),
        })
    }

    pub fn period(period: &Period) -> JournalFilter {
        JournalFilter {
            from: Some(period.from.clone()),
            to: Some(period.to.clone()),
            ..JournalFilter::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == JournalFilter::default()
    }

    /// The filter as a query string (without `?`), for links that keep it.
    pub fn query_string(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("from", &self.from),
            ("to", &self.to),
            ("account", &self.account),
            ("member", &self.member_id),
            ("gateway", &self.gateway),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// `WHERE …` over `journal_entries e`, `journal_lines l` and `payments p`, with its
    /// parameters in order (numbered from `$1`).
    pub fn where_clause(&self) -> (String, Vec<String>) {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        let mut push = |condition: &str, value: String| {
            binds.push(value);
            conditions.push(condition.replace('?', &format!("${}", binds.len())));
        };
        if let Some(from) = &self.from {
            push("e.entry_date >= ?", from.clone());
        }
        if let Some(to) = &self.to {
            push("e.entry_date <= ?", to.clone());
        }
        if let Some(account) = &self.account {
            // Digits only (checked when parsed): nothing to escape in the pattern.
            push("l.account LIKE ?", format!("{account}%"));
        }
        if let Some(member) = &self.member_id {
            push("e.member_id = ?", member.clone());
        }
        if let Some(gateway) = &self.gateway {
            push("p.gateway = ?", gateway.clone());
        }
        if conditions.is_empty() {
            (String::new(), binds)
        } else {
            (format!(" WHERE {}", conditions.join(" AND ")), binds)
        }
    }
}

/// The tables a filtered journal query reads.
pub const JOURNAL_FROM: &str = " FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id \
     LEFT JOIN payments p ON p.id = e.payment_id LEFT JOIN users u ON u.id = l.member_id";

/// One page of the filtered journal, and the totals of every line the filter selects.
#[derive(Debug, Clone)]
pub struct JournalPage {
    pub rows: Vec<JournalRow>,
    pub total_debit: Money,
    pub total_credit: Money,
    pub lines: i64,
    pub entries: i64,
    /// 1-based; `pages` is at least 1.
    pub page: i64,
    pub pages: i64,
}

/// The journal's lines in date order, `per_page` at a time; without a page, the last one
/// (the most recent lines).
pub async fn journal_page(
    pool: &Pool,
    filter: &JournalFilter,
    page: Option<i64>,
    per_page: i64,
) -> anyhow::Result<JournalPage> {
    let (where_clause, binds) = filter.where_clause();
    let totals_sql = format!(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT e.id) AS entries, \
         CAST(COALESCE(SUM(l.debit_cents), 0) AS BIGINT) AS d, \
         CAST(COALESCE(SUM(l.credit_cents), 0) AS BIGINT) AS c{JOURNAL_FROM}{where_clause}"
    );
    let mut totals = sqlx::query(AssertSqlSafe(totals_sql));
    for value in &binds {
        totals = totals.bind(value.clone());
    }
    let totals = totals
        .fetch_one(pool)
        .await
        .context("could not total the journal")?;
    let lines: i64 = totals.try_get("n")?;
    let pages = if lines <= 0 {
        1
    } else {
        (lines - 1) / per_page + 1
    };
    let page = page.unwrap_or(pages).clamp(1, pages);
    let rows_sql = format!(
        "SELECT e.id, e.entry_date, e.journal, e.label AS entry_label, l.account, \
                l.debit_cents, l.credit_cents, u.first_name, u.last_name{JOURNAL_FROM}{where_clause} \
         ORDER BY e.entry_date, e.id, l.line_no LIMIT ${} OFFSET ${}",
        binds.len() + 1,
        binds.len() + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(rows_sql));
    for value in &binds {
        query = query.bind(value.clone());
    }
    let rows = query
        .bind(per_page)
        .bind((page - 1) * per_page)
        .fetch_all(pool)
        .await
        .context("could not read the journal")?;
    let mut out = Vec::with_capacity(rows.len());
    let mut previous_entry = String::new();
    for row in rows {
        let entry_id: String = row.try_get("id")?;
        let first: Option<String> = row.try_get("first_name")?;
        let last: Option<String> = row.try_get("last_name")?;
        out.push(JournalRow {
            date: row.try_get("entry_date")?,
            journal: row.try_get("journal")?,
            label: row.try_get("entry_label")?,
            member: first.zip(last).map(|(f, l)| format!("{f} {l}")),
            account: row.try_get("account")?,
            debit: Money::from_cents(row.try_get("debit_cents")?),
            credit: Money::from_cents(row.try_get("credit_cents")?),
            first_of_entry: entry_id != previous_entry,
        });
        previous_entry = entry_id;
    }
    Ok(JournalPage {
        rows: out,
        total_debit: Money::from_cents(totals.try_get("d")?),
        total_credit: Money::from_cents(totals.try_get("c")?),
        lines,
        entries: totals.try_get("entries")?,
        page,
        pages,
    })
}

/// Debit and credit of one account over a period.
#[derive(Debug, Clone)]
pub struct AccountTotals {
    pub account: String,
    pub debit: Money,
    pub credit: Money,
}

impl AccountTotals {
    /// Debit minus credit: positive is a debit balance.
    pub fn balance(&self) -> Money {
        self.debit - self.credit
    }
}

/// Each account's totals over the period, in account order.
pub async fn balances(pool: &Pool, from: &str, to: &str) -> anyhow::Result<Vec<AccountTotals>> {
    let rows = sqlx::query(
        "SELECT l.account, CAST(SUM(l.debit_cents) AS BIGINT) AS d, \
                CAST(SUM(l.credit_cents) AS BIGINT) AS c \
         FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id \
         WHERE e.entry_date >= $1 AND e.entry_date <= $2 \
         GROUP BY l.account ORDER BY l.account",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .context("could not total the accounts")?;
    rows.iter()
        .map(|r| {
            Ok(AccountTotals {
                account: r.try_get("account")?,
                debit: Money::from_cents(r.try_get("d")?),
                credit: Money::from_cents(r.try_get("c")?),
            })
        })
        .collect()
}

/// The fiscal year that holds `today` (`YYYY-MM-DD`).
pub fn fiscal_year_of(settings: &Settings, today: &str) -> anyhow::Result<Period> {
    let year: i32 = today
        .get(0..4)
        .and_then(|y| y.parse().ok())
        .context("a date starts with its year")?;
    let this = exports::fiscal_year(settings, year)?;
    if today <= this.to.as_str() {
        Ok(this)
    } else {
        exports::fiscal_year(settings, year + 1)
    }
}

/// Money received from members through one gateway in one month (`YYYY-MM`), gross of fees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub month: String,
    pub gateway: String,
    pub amount: Money,
}

/// What members paid since a day (`YYYY-MM-DD`), per month and gateway: the credits of the
/// members' account in receipts of payments, as the journal holds them. Refunds are not
/// subtracted: this is what was collected.
pub async fn collected_by_month(
    pool: &Pool,
    members_account: &str,
    since: &str,
) -> anyhow::Result<Vec<Collected>> {
    let rows = sqlx::query(
        "SELECT SUBSTR(e.entry_date, 1, 7) AS month, p.gateway, \
                CAST(SUM(l.credit_cents) AS BIGINT) AS cents \
         FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id \
         JOIN payments p ON p.id = e.payment_id \
         WHERE e.journal = $1 AND l.account = $2 AND e.entry_date >= $3 \
         GROUP BY SUBSTR(e.entry_date, 1, 7), p.gateway \
         HAVING SUM(l.credit_cents) > 0 \
         ORDER BY month, p.gateway",
    )
    .bind(crate::ledger::JOURNAL_RECEIPTS)
    .bind(members_account)
    .bind(since)
    .fetch_all(pool)
    .await
    .context("could not total what was collected")?;
    rows.iter()
        .map(|r| {
            Ok(Collected {
                month: r.try_get("month")?,
                gateway: r.try_get("gateway")?,
                amount: Money::from_cents(r.try_get("cents")?),
            })
        })
        .collect()
}

/// A person the journal may be filtered on.
#[derive(Debug, Clone)]
pub struct MemberChoice {
    pub id: String,
    pub name: String,
}

/// Every member, active or not (their entries stay in the books).
pub async fn members(pool: &Pool) -> anyhow::Result<Vec<MemberChoice>> {
    let rows = sqlx::query(
        "SELECT id, first_name, last_name FROM users WHERE role = 'member' \
         ORDER BY last_name, first_name, id",
    )
    .fetch_all(pool)
    .await
    .context("could not list the members")?;
    rows.iter()
        .map(|r| {
            let first: String = r.try_get("first_name")?;
            let last: String = r.try_get("last_name")?;
            Ok(MemberChoice {
                id: r.try_get("id")?,
                name: format!("{first} {last}"),
            })
        })
        .collect()
}

/// Gateways that payments went through, offered or not any more.
pub async fn gateways_used(pool: &Pool) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT gateway FROM payments ORDER BY gateway")
        .fetch_all(pool)
        .await
        .context("could not list the gateways used")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_numbered_conditions() {
        let filter = JournalFilter::parse("2026-01-01", "", "41", "", "paypal").unwrap();
        let (sql, binds) = filter.where_clause();
        assert_eq!(
            sql,
            " WHERE e.entry_date >= $1 AND l.account LIKE $2 AND p.gateway = $3"
        );
        assert_eq!(binds, ["2026-01-01", "41%", "paypal"]);
        assert_eq!(
            filter.query_string(),
            "from=2026-01-01&account=41&gateway=paypal"
        );
        assert!(JournalFilter::parse("", "", "", "", "").unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_explained() {
        let err = JournalFilter::parse("2026-02-01", "2026-01-01", "", "", "").unwrap_err();
        assert!(err.contains("précéder"), "{err}");
        let err = JournalFilter::parse("", "", "abc", "", "").unwrap_err();
        assert!(err.contains("chiffres"), "{err}");
        let err = JournalFilter::parse("01/02/2026", "", "", "", "").unwrap_err();
        assert!(err.contains("AAAA-MM-JJ"), "{err}");
    }

    #[test]
    fn the_fiscal_year_holds_today() {
        let settings = Settings {
            fiscal_year_end: "08-31".into(),
            ..Settings::default()
        };
        let fy = fiscal_year_of(&settings, "2026-09-15").unwrap();
        assert_eq!(
            (fy.from.as_str(), fy.to.as_str()),
            ("2026-09-01", "2027-08-31")
        );
        let fy = fiscal_year_of(&settings, "2026-08-31").unwrap();
        assert_eq!(
            (fy.from.as_str(), fy.to.as_str()),
            ("2025-09-01", "2026-08-31")
        );
    }
}
