//! The chart of accounts as data: charge categories and the income account each credits,
//! the gateways' clearing accounts and the fees account. Managers read it, admins change it;
//! every change is written with its audit record and affects new entries only (journal lines
//! keep the account they were posted to).

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use sqlx::Row;

use crate::audit;
use crate::config::ChartOfAccounts;
use crate::db::{self, Pool, Tx};
use crate::domain::{AccountNumber, ChargeCategory};
use crate::i18n::{self, Lang};

/// What a basket charge is for, and the income account it credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub code: String,
    pub label: String,
    pub income_account: String,
    pub position: i64,
    pub active: bool,
}

fn category_from_row(row: &sqlx::any::AnyRow) -> Result<Category, sqlx::Error> {
    Ok(Category {
        code: row.try_get("code")?,
        label: row.try_get("label")?,
        income_account: row.try_get("income_account")?,
        position: row.try_get("position")?,
        active: row.try_get::<i64, _>("active")? == 1,
    })
}

/// Every category, active or not, in the order members see them.
pub async fn categories<'c>(
    pool: impl sqlx::Executor<'c, Database = sqlx::Any>,
) -> anyhow::Result<Vec<Category>> {
    let rows = sqlx::query(
        "SELECT code, label, income_account, position, active FROM categories \
         ORDER BY position, code",
    )
    .fetch_all(pool)
    .await
    .context("could not read the categories")?;
    rows.iter()
        .map(|r| category_from_row(r).context("could not read a category"))
        .collect()
}

/// The categories a manager may charge today.
pub async fn active_categories(pool: &Pool) -> anyhow::Result<Vec<Category>> {
    Ok(categories(pool)
        .await?
        .into_iter()
        .filter(|c| c.active)
        .collect())
}

/// A category with the number of basket charges made in it (one in use cannot be deleted).
#[derive(Debug, Clone)]
pub struct CategoryUse {
    pub category: Category,
    pub charges: i64,
}

pub async fn categories_with_use(pool: &Pool) -> anyhow::Result<Vec<CategoryUse>> {
    let rows = sqlx::query(
        "SELECT category, COUNT(*) AS n FROM basket_lines WHERE kind = 'charge' GROUP BY category",
    )
    .fetch_all(pool)
    .await
    .context("could not count charges per category")?;
    let mut used = BTreeMap::new();
    for row in rows {
        used.insert(
            row.try_get::<String, _>("category")?,
            row.try_get::<i64, _>("n")?,
        );
    }
    Ok(categories(pool)
        .await?
        .into_iter()
        .map(|category| CategoryUse {
            charges: used.get(&category.code).copied().unwrap_or(0),
            category,
        })
        .collect())
}

/// The income account a charge of this category credits, read (and the category row locked)
/// in the charge's own transaction, so that a concurrent deletion waits for it or makes it
/// fail instead of leaving a charge in a category that no longer exists.
pub async fn income_account(tx: &mut Tx<'_>, code: &str) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "UPDATE categories SET active = active WHERE code = $1 RETURNING income_account",
    )
    .bind(code)
    .fetch_optional(&mut **tx)
    .await
    .context("could not read the category's income account")?;
    row.map(|r| r.try_get::<String, _>("income_account"))
        .transpose()
        .context("could not read the income account")
}

/// Where receipts post: the fees account, the clearing account of every gateway, and the
/// gateways that have their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptAccounts {
    pub fees: String,
    pub clearing: String,
    pub by_gateway: BTreeMap<String, String>,
}

impl ReceiptAccounts {
    pub fn clearing_for(&self, gateway: &str) -> &str {
        self.by_gateway
            .get(gateway)
            .map_or(self.clearing.as_str(), String::as_str)
    }
}

const FEES: &str = "fees";
const CLEARING: &str = "clearing";
const CLEARING_PREFIX: &str = "clearing:";

async fn overrides<'e, E>(executor: E) -> anyhow::Result<BTreeMap<String, String>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query("SELECT name, account FROM account_settings")
        .fetch_all(executor)
        .await
        .context("could not read the account settings")?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("account")?)))
        .collect()
}

fn receipt_accounts_from(
    config: &ChartOfAccounts,
    overrides: &BTreeMap<String, String>,
) -> ReceiptAccounts {
    ReceiptAccounts {
        fees: overrides
            .get(FEES)
            .cloned()
            .unwrap_or_else(|| config.gateway_fees.clone()),
        clearing: overrides
            .get(CLEARING)
            .cloned()
            .unwrap_or_else(|| config.gateway_clearing.clone()),
        by_gateway: overrides
            .iter()
            .filter_map(|(name, account)| {
                name.strip_prefix(CLEARING_PREFIX)
                    .map(|gateway| (gateway.to_string(), account.clone()))
            })
            .collect(),
    }
}

pub async fn receipt_accounts(
    pool: &Pool,
    config: &ChartOfAccounts,
) -> anyhow::Result<ReceiptAccounts> {
    Ok(receipt_accounts_from(config, &overrides(pool).await?))
}

/// The accounts a gateway's receipt or refund posts to, read in the posting's transaction.
pub async fn accounts_for_gateway(
    tx: &mut Tx<'_>,
    config: &ChartOfAccounts,
    gateway: &str,
) -> anyhow::Result<ChartOfAccounts> {
    let current = receipt_accounts_from(config, &overrides(&mut **tx).await?);
    let mut accounts = config.clone();
    accounts.gateway_clearing = current.clearing_for(gateway).to_string();
    accounts.gateway_fees = current.fees;
    Ok(accounts)
}

/// Once per database: income accounts set in the configuration (`accounts.income_*`) become
/// the built-in categories' accounts, so that an installation that had changed them keeps
/// them. From then on the categories table is the reference.
pub async fn adopt_configured_accounts(
    pool: &Pool,
    config: &ChartOfAccounts,
) -> anyhow::Result<()> {
    let defaults = ChartOfAccounts::default();
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let first = sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('categories_from_config', $1) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(db::now_text())
    .execute(&mut *tx)
    .await
    .context("could not mark the configured accounts adopted")?;
    if first.rows_affected() == 1 {
        for category in ChargeCategory::ALL {
            let configured = config.income_for(category);
            let default = defaults.income_for(category);
            if configured != default {
                sqlx::query(
                    "UPDATE categories SET income_account = $2 \
                     WHERE code = $1 AND income_account = $3",
                )
                .bind(category.as_str())
                .bind(configured)
                .bind(default)
                .execute(&mut *tx)
                .await
                .context("could not adopt a configured income account")?;
            }
        }
    }
    tx.commit()
        .await
        .context("could not adopt the configured accounts")
}

/// Names of the accounts in use, for the balances page and the FEC (whose `CompteLib` must
/// not be empty).
#[derive(Debug, Clone, Default)]
pub struct AccountLabels(BTreeMap<String, String>);

impl AccountLabels {
    pub fn get(&self, account: &str) -> &str {
        self.0.get(account).map_or("", String::as_str)
    }
}

/// Categories name their income accounts, gateways their clearing accounts; the plan
/// comptable's own names of the configured accounts come first, in `lang`.
pub async fn account_labels(
    pool: &Pool,
    config: &ChartOfAccounts,
    gateway_names: &BTreeMap<String, String>,
    lang: Lang,
) -> anyhow::Result<AccountLabels> {
    let plan_name = |account: &str| config.label_key(account).map_or("", |key| lang.t(key));
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for category in categories(pool).await? {
        labels
            .entry(category.income_account)
            .and_modify(|l| {
                l.push_str(", ");
                l.push_str(&category.label);
            })
            .or_insert(category.label);
    }
    let receipts = receipt_accounts(pool, config).await?;
    for (gateway, account) in &receipts.by_gateway {
        let name = gateway_names.get(gateway).unwrap_or(gateway);
        labels.insert(
            account.clone(),
            lang.tf("account_name.clearing_of", &[("name", name)]),
        );
    }
    labels.insert(
        receipts.clearing.clone(),
        plan_name(&config.gateway_clearing).to_string(),
    );
    labels.insert(
        receipts.fees.clone(),
        plan_name(&config.gateway_fees).to_string(),
    );
    for account in [
        &config.members,
        &config.gateway_clearing,
        &config.gateway_fees,
        &config.income_dues,
        &config.income_insurance,
        &config.income_outings,
        &config.income_shirts,
        &config.income_other,
    ] {
        labels.insert(account.clone(), plan_name(account).to_string());
    }
    Ok(AccountLabels(labels))
}

/// Why a change to the chart was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PlanError {
    fn from(error: sqlx::Error) -> Self {
        PlanError::Unexpected(error.into())
    }
}

/// A refusal, said in the reader's language.
fn invalid(key: &'static str, args: &[(&str, &str)]) -> PlanError {
    PlanError::Invalid(i18n::current().tf(key, args))
}

fn check_code(input: &str) -> Result<String, PlanError> {
    let code = input.trim();
    let shape = (2..=30).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if shape {
        Ok(code.to_string())
    } else {
        Err(invalid("account_plan_error.code", &[]))
    }
}

fn check_label(input: &str) -> Result<String, PlanError> {
    let label = input.trim();
    if label.is_empty() || label.chars().count() > 60 {
        return Err(invalid("account_plan_error.label_length", &[]));
    }
    if label.chars().any(char::is_control) {
        return Err(invalid("account_plan_error.label_control", &[]));
    }
    Ok(label.to_string())
}

fn parse_account(input: &str, what: &str) -> Result<AccountNumber, PlanError> {
    AccountNumber::parse(input).map_err(|e| {
        invalid(
            "account_plan_error.account",
            &[("what", what), ("error", &e.to_string())],
        )
    })
}

/// Income of a category: a class 7 account, or a class 4 third-party account for money
/// collected on someone else's behalf (a federation's insurance), never the members'.
fn check_income_account(input: &str, config: &ChartOfAccounts) -> Result<AccountNumber, PlanError> {
    let account = parse_account(input, i18n::current().t("account_plan.income_account"))?;
    if account.as_str() == config.members {
        return Err(invalid(
            "account_plan_error.income_is_members",
            &[("account", account.as_str())],
        ));
    }
    if !matches!(account.class(), 4 | 7) {
        return Err(invalid(
            "account_plan_error.income_class",
            &[("account", account.as_str())],
        ));
    }
    Ok(account)
}

/// Clearing: a financial account (class 5) or a third-party one (class 4), not the members'.
fn check_clearing_account(
    input: &str,
    what: &str,
    config: &ChartOfAccounts,
) -> Result<AccountNumber, PlanError> {
    let account = parse_account(input, what)?;
    if account.as_str() == config.members {
        return Err(invalid(
            "account_plan_error.clearing_is_members",
            &[("what", what), ("account", account.as_str())],
        ));
    }
    if !matches!(account.class(), 4 | 5) {
        return Err(invalid(
            "account_plan_error.clearing_class",
            &[("what", what), ("account", account.as_str())],
        ));
    }
    Ok(account)
}

fn check_fees_account(input: &str) -> Result<AccountNumber, PlanError> {
    let what = i18n::current().t("account_plan.fees");
    let account = parse_account(input, what)?;
    if account.class() != 6 {
        return Err(invalid(
            "account_plan_error.fees_class",
            &[("what", what), ("account", account.as_str())],
        ));
    }
    Ok(account)
}

/// Starts a change of the chart: writing first takes SQLite's write lock (a transaction that
/// read first could not write after another connection's commit) and, on PostgreSQL, a row
/// lock that makes concurrent changes of the chart wait for each other.
async fn begin_change(pool: &Pool) -> Result<Tx<'static>, PlanError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('chart_changed_at', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(db::now_text())
    .execute(&mut *tx)
    .await
    .context("could not lock the chart of accounts")?;
    Ok(tx)
}

async fn label_taken(tx: &mut Tx<'_>, label: &str, other_than: &str) -> anyhow::Result<bool> {
    let rows = sqlx::query("SELECT code, label FROM categories")
        .fetch_all(&mut **tx)
        .await
        .context("could not read the categories")?;
    let wanted = label.to_lowercase();
    Ok(rows.iter().any(|r| {
        r.try_get::<String, _>("code")
            .is_ok_and(|c| c != other_than)
            && r.try_get::<String, _>("label")
                .is_ok_and(|l| l.to_lowercase() == wanted)
    }))
}

async fn find_in(tx: &mut Tx<'_>, code: &str) -> anyhow::Result<Option<Category>> {
    let row = sqlx::query(
        "SELECT code, label, income_account, position, active FROM categories WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(&mut **tx)
    .await
    .context("could not read the category")?;
    row.map(|r| category_from_row(&r))
        .transpose()
        .context("could not read the category")
}

/// A new category, placed last.
pub async fn add_category(
    pool: &Pool,
    actor_id: &str,
    config: &ChartOfAccounts,
    code: &str,
    label: &str,
    income_account: &str,
) -> Result<Category, PlanError> {
    let code = check_code(code)?;
    let label = check_label(label)?;
    let account = check_income_account(income_account, config)?;
    let mut tx = begin_change(pool).await?;
    if label_taken(&mut tx, &label, &code).await? {
        return Err(invalid(
            "account_plan_error.label_taken",
            &[("label", &label)],
        ));
    }
    let position: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(position), 0) + 1 AS BIGINT) FROM categories")
            .fetch_one(&mut *tx)
            .await?;
    let inserted = sqlx::query(
        "INSERT INTO categories (code, label, income_account, position, active) \
         VALUES ($1, $2, $3, $4, 1) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&code)
    .bind(&label)
    .bind(account.as_str())
    .bind(position)
    .execute(&mut *tx)
    .await
    .context("could not add the category")?;
    if inserted.rows_affected() == 0 {
        return Err(invalid("account_plan_error.code_taken", &[("code", &code)]));
    }
    let category = Category {
        code,
        label,
        income_account: account.to_string(),
        position,
        active: true,
    };
    audit::record(
        &mut *tx,
        actor_id,
        "category.add",
        &format!("category:{}", category.code),
        None,
        Some(serde_json::to_value(&category).context("category as JSON")?),
    )
    .await?;
    tx.commit().await.context("could not add the category")?;
    Ok(category)
}

/// Renames a category, moves it to another income account (for new charges), or
/// (de)activates it. Returns false when nothing changed.
pub async fn update_category(
    pool: &Pool,
    actor_id: &str,
    config: &ChartOfAccounts,
    code: &str,
    label: &str,
    income_account: &str,
    active: bool,
) -> Result<bool, PlanError> {
    let label = check_label(label)?;
    let account = check_income_account(income_account, config)?;
    let mut tx = begin_change(pool).await?;
    let before = find_in(&mut tx, code).await?.ok_or(PlanError::NotFound)?;
    if label_taken(&mut tx, &label, code).await? {
        return Err(invalid(
            "account_plan_error.label_taken",
            &[("label", &label)],
        ));
    }
    let after = Category {
        label,
        income_account: account.to_string(),
        active,
        ..before.clone()
    };
    if after == before {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE categories SET label = $2, income_account = $3, active = $4 WHERE code = $1",
    )
    .bind(code)
    .bind(&after.label)
    .bind(&after.income_account)
    .bind(i64::from(after.active))
    .execute(&mut *tx)
    .await
    .context("could not change the category")?;
    audit::record(
        &mut *tx,
        actor_id,
        "category.update",
        &format!("category:{code}"),
        Some(serde_json::to_value(&before).context("category as JSON")?),
        Some(serde_json::to_value(&after).context("category as JSON")?),
    )
    .await?;
    tx.commit().await.context("could not change the category")?;
    Ok(true)
}

/// Deletes a category that was never charged; one in use may only be deactivated.
pub async fn delete_category(
    pool: &Pool,
    actor_id: &str,
    code: &str,
) -> Result<Category, PlanError> {
    let mut tx = begin_change(pool).await?;
    let before = find_in(&mut tx, code).await?.ok_or(PlanError::NotFound)?;
    // Deleting first locks the row: a charge being added in this category either finished
    // (and is counted below) or will find no category and fail.
    sqlx::query("DELETE FROM categories WHERE code = $1")
        .bind(code)
        .execute(&mut *tx)
        .await
        .context("could not delete the category")?;
    let charges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM basket_lines WHERE category = $1")
        .bind(code)
        .fetch_one(&mut *tx)
        .await
        .context("could not count the category's charges")?;
    if charges > 0 {
        tx.rollback().await.ok();
        return Err(invalid(
            "account_plan_error.in_use",
            &[("label", &before.label), ("count", &charges.to_string())],
        ));
    }
    audit::record(
        &mut *tx,
        actor_id,
        "category.delete",
        &format!("category:{code}"),
        Some(serde_json::to_value(&before).context("category as JSON")?),
        None,
    )
    .await?;
    tx.commit().await.context("could not delete the category")?;
    Ok(before)
}

/// What an admin typed for the receipts' accounts: the fees account, the clearing account of
/// every gateway, and per gateway its own (empty: the common one).
pub struct ReceiptAccountsInput<'a> {
    pub fees: &'a str,
    pub clearing: &'a str,
    pub by_gateway: Vec<(String, String, &'a str)>,
}

/// Sets the receipts' accounts; an account equal to the configuration's (or, for a gateway,
/// to the common clearing account) is stored as no override. Returns false when nothing
/// changed.
pub async fn set_receipt_accounts(
    pool: &Pool,
    actor_id: &str,
    config: &ChartOfAccounts,
    input: ReceiptAccountsInput<'_>,
) -> Result<bool, PlanError> {
    let fees = check_fees_account(input.fees)?;
    let lang = i18n::current();
    let clearing = check_clearing_account(input.clearing, lang.t("account_plan.clearing"), config)?;
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    if fees.as_str() != config.gateway_fees {
        wanted.insert(FEES.into(), fees.to_string());
    }
    if clearing.as_str() != config.gateway_clearing {
        wanted.insert(CLEARING.into(), clearing.to_string());
    }
    for (gateway, name, typed) in &input.by_gateway {
        if typed.trim().is_empty() {
            continue;
        }
        let what = lang.tf("account_plan.clearing_of", &[("name", name)]);
        let account = check_clearing_account(typed, &what, config)?;
        if account != clearing {
            wanted.insert(format!("{CLEARING_PREFIX}{gateway}"), account.to_string());
        }
    }
    let mut tx = begin_change(pool).await?;
    let current = overrides(&mut *tx).await?;
    // Gateways not offered any more keep their override unless the form named them.
    for (name, account) in &current {
        let named = name
            .strip_prefix(CLEARING_PREFIX)
            .is_some_and(|g| input.by_gateway.iter().any(|(id, _, _)| id == g));
        if name.starts_with(CLEARING_PREFIX) && !named {
            wanted
                .entry(name.clone())
                .or_insert_with(|| account.clone());
        }
    }
    if wanted == current {
        return Ok(false);
    }
    let now = db::now_text();
    for name in current.keys().filter(|n| !wanted.contains_key(*n)) {
        sqlx::query("DELETE FROM account_settings WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .context("could not remove an account setting")?;
    }
    for (name, account) in &wanted {
        sqlx::query(
            "INSERT INTO account_settings (name, account, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET account = excluded.account, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(account)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .context("could not store an account setting")?;
    }
    let before = receipt_accounts_from(config, &current);
    let after = receipt_accounts_from(config, &wanted);
    audit::record(
        &mut *tx,
        actor_id,
        "accounts.receipts",
        "accounts",
        Some(serde_json::to_value(&before).context("accounts as JSON")?),
        Some(serde_json::to_value(&after).context("accounts as JSON")?),
    )
    .await?;
    tx.commit()
        .await
        .context("could not change the receipts' accounts")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_is_checked_for_its_role() {
        let config = ChartOfAccounts::default();
        assert!(check_income_account("7069", &config).is_ok());
        assert!(check_income_account("4671", &config).is_ok());
        assert!(check_income_account("411", &config).is_err());
        assert!(check_income_account("627", &config).is_err());
        assert!(check_clearing_account("5113", "x", &config).is_ok());
        assert!(check_clearing_account("756", "x", &config).is_err());
        assert!(check_fees_account("6278").is_ok());
        assert!(check_fees_account("5112").is_err());
        let message = check_fees_account("abc").unwrap_err().to_string();
        assert!(message.contains("que des chiffres"), "{message}");
    }

    #[test]
    fn codes_are_plain_words() {
        assert_eq!(check_code(" stages ").unwrap(), "stages");
        assert!(check_code("Stages").is_err());
        assert!(check_code("é").is_err());
        assert!(check_code("a").is_err());
        assert!(check_code("stage d'été").is_err());
    }

    #[test]
    fn a_gateway_without_its_own_account_uses_the_common_one() {
        let config = ChartOfAccounts::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("clearing:paypal".to_string(), "5113".to_string());
        overrides.insert("fees".to_string(), "6278".to_string());
        let accounts = receipt_accounts_from(&config, &overrides);
        assert_eq!(accounts.clearing_for("paypal"), "5113");
        assert_eq!(accounts.clearing_for("stripe"), "5112");
        assert_eq!(accounts.fees, "6278");
    }
}
