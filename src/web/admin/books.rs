//! The books as managers read them: the journal with its filters, and the accounts' balances.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account_plan;
use crate::books::{self, JournalFilter, JournalPage};
use crate::domain::Money;
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

/// Lines per page of the journal.
const PER_PAGE: i64 = 100;

/// The journal's filters as typed (kept to show them again).
#[derive(Deserialize, Default, Clone)]
pub struct JournalQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub member: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub page: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Every gateway's display name: the ones offered now and the ones payments went through.
pub async fn gateway_names(state: &AppState) -> Result<BTreeMap<String, String>, AppError> {
    let mut names: BTreeMap<String, String> = state
        .gateways
        .current()
        .all()
        .iter()
        .map(|g| (g.id().to_string(), g.display_name().to_string()))
        .collect();
    for used in books::gateways_used(&state.pool).await? {
        names.entry(used.clone()).or_insert(used);
    }
    Ok(names)
}

/// The filter typed in the journal's form, with the member and the gateway checked against
/// the ones that exist; or the message saying what is wrong.
pub async fn journal_filter(
    state: &AppState,
    query: &JournalQuery,
) -> Result<Result<JournalFilter, String>, AppError> {
    let filter = match JournalFilter::parse(
        &query.from,
        &query.to,
        &query.account,
        &query.member,
        &query.gateway,
    ) {
        Ok(filter) => filter,
        Err(message) => return Ok(Err(message)),
    };
    if let Some(member) = &filter.member_id
        && !books::members(&state.pool)
            .await?
            .iter()
            .any(|m| &m.id == member)
    {
        return Ok(Err(crate::i18n::current()
            .t("ledger.unknown_member")
            .into()));
    }
    if let Some(gateway) = &filter.gateway
        && !gateway_names(state).await?.contains_key(gateway)
    {
        return Ok(Err(crate::i18n::current()
            .t("ledger.unknown_gateway")
            .into()));
    }
    Ok(Ok(filter))
}

#[derive(Template)]
#[template(path = "admin/ledger.html")]
struct LedgerView {
    layout: Layout,
    query: JournalQuery,
    members: Vec<Choice>,
    gateways: Vec<Choice>,
    error: Option<String>,
    journal: Option<JournalPage>,
    filtered: bool,
    balanced: bool,
    /// Debit minus credit of the selected lines, in words ("12,00 € débiteur").
    selection_balance_text: String,
    export_link: String,
    previous_link: Option<String>,
    next_link: Option<String>,
}

fn page_link(filter: &JournalFilter, page: i64) -> String {
    let query = filter.query_string();
    if query.is_empty() {
        format!("/admin/ledger?page={page}")
    } else {
        format!("/admin/ledger?{query}&page={page}")
    }
}

/// The journal: its lines in date order, filtered by period, account, member and gateway,
/// a page at a time (the last, most recent, unless asked), with the totals of the selection.
pub async fn ledger(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<JournalQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let page = match query.page.trim() {
        "" => Ok(None),
        typed => typed
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 1)
            .map(Some)
            .ok_or_else(|| crate::i18n::current().t("ledger.bad_page").to_string()),
    };
    let checked = match page {
        Ok(page) => journal_filter(&state, &query)
            .await?
            .map(|filter| (filter, page)),
        Err(message) => Err(message),
    };
    let members = books::members(&state.pool)
        .await?
        .into_iter()
        .map(|m| Choice {
            selected: m.id == query.member,
            value: m.id,
            label: m.name,
        })
        .collect();
    let gateways = gateway_names(&state)
        .await?
        .into_iter()
        .map(|(id, name)| Choice {
            selected: id == query.gateway,
            value: id,
            label: name,
        })
        .collect();
    let (status, journal, error, filter) = match checked {
        Ok((filter, page)) => {
            let journal = books::journal_page(&state.pool, &filter, page, PER_PAGE).await?;
            (StatusCode::OK, Some(journal), None, filter)
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            None,
            Some(message),
            JournalFilter::default(),
        ),
    };
    let (balanced, selection_balance) = journal.as_ref().map_or((true, Money::ZERO), |j| {
        (
            j.total_debit == j.total_credit,
            j.total_debit - j.total_credit,
        )
    });
    let lang = crate::i18n::current();
    let selection_balance_text = if selection_balance.is_positive() {
        lang.tf(
            "ledger.debit_balance",
            &[("amount", &selection_balance.to_string())],
        )
    } else if selection_balance.cents() == 0 {
        lang.t("ledger.zero_balance").to_string()
    } else {
        lang.tf(
            "ledger.credit_balance",
            &[("amount", &selection_balance.abs().to_string())],
        )
    };
    let query_string = filter.query_string();
    let export_link = if query_string.is_empty() {
        "/admin/ledger/export?format=csv".to_string()
    } else {
        format!("/admin/ledger/export?format=csv&{query_string}")
    };
    let (previous_link, next_link) = journal.as_ref().map_or((None, None), |j| {
        (
            (j.page > 1).then(|| page_link(&filter, j.page - 1)),
            (j.page < j.pages).then(|| page_link(&filter, j.page + 1)),
        )
    });
    let view = LedgerView {
        layout: current.layout(&state),
        members,
        gateways,
        error,
        journal,
        filtered: !filter.is_empty(),
        balanced,
        selection_balance_text,
        export_link,
        previous_link,
        next_link,
        query,
    };
    Ok(render(status, &view))
}

#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub struct BalanceRow {
    pub account: String,
    pub label: String,
    pub debit: Money,
    pub credit: Money,
    pub balance: Money,
    pub journal_link: String,
}

#[derive(Template)]
#[template(path = "admin/balances.html")]
struct BalancesView {
    layout: Layout,
    from: String,
    to: String,
    error: Option<String>,
    rows: Vec<BalanceRow>,
    total_debit: Money,
    total_credit: Money,
    /// The sum of every account's balance: zero when every entry balances.
    sum: Money,
}

/// Each account's debit, credit and balance over a period (the current fiscal year unless
/// asked), with the accounts' names; the balances add up to zero.
pub async fn balances(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = crate::i18n::current();
    let fiscal_year =
        books::fiscal_year_of(&state.settings, &crate::db::today_text()).map_err(|e| {
            AppError::BadRequest(lang.tf("ledger.bad_fiscal_year", &[("error", &e.to_string())]))
        })?;
    let checked = books::parse_period(&query.from, &query.to).and_then(|(from, to)| {
        let from = from.unwrap_or_else(|| fiscal_year.from.clone());
        let to = to.unwrap_or_else(|| fiscal_year.to.clone());
        if from > to {
            Err(lang.t("period.start_after_end").to_string())
        } else {
            Ok((from, to))
        }
    });
    let (status, from, to, error, totals) = match checked {
        Ok((from, to)) => {
            let totals = books::balances(&state.pool, &from, &to).await?;
            (StatusCode::OK, from, to, None, totals)
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            query.from.clone(),
            query.to.clone(),
            Some(message),
            Vec::new(),
        ),
    };
    let names = gateway_names(&state).await?;
    let labels =
        account_plan::account_labels(&state.pool, &state.settings.accounts, &names, lang).await?;
    let rows: Vec<BalanceRow> = totals
        .into_iter()
        .map(|t| BalanceRow {
            label: labels.get(&t.account).to_string(),
            journal_link: JournalFilter {
                from: Some(from.clone()),
                to: Some(to.clone()),
                account: Some(t.account.clone()),
                ..JournalFilter::default()
            }
            .query_string(),
            balance: t.balance(),
            account: t.account,
            debit: t.debit,
            credit: t.credit,
        })
        .collect();
    let view = BalancesView {
        layout: current.layout(&state),
        total_debit: rows.iter().map(|r| r.debit).sum(),
        total_credit: rows.iter().map(|r| r.credit).sum(),
        sum: rows.iter().map(|r| r.balance).sum(),
        rows,
        from,
        to,
        error,
    };
    Ok(render(status, &view))
}
