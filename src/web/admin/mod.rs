//! Manager pages: members and their balances, flagged payments, what was collected, the books.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::basket::{self, MemberBalance};
use crate::payments::{self, Payment};
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

pub mod account_plan;
pub mod books;
pub mod charges;
mod collections_chart;
pub mod directory;
pub mod exports;
pub mod gateway_settings;
mod gateways;
mod member_form;
mod member_import;
pub mod members;
mod payment;
pub mod payments_list;
pub mod requests;
pub mod saved_card;

pub use books::{balances, ledger};
pub use gateways::gateways;
pub use payment::{cancel, payment_detail, refund};

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardView {
    layout: Layout,
    members: Vec<MemberBalance>,
    flagged: Vec<Payment>,
    recent: Vec<Payment>,
    stuck_mail: Vec<crate::mail::StuckMail>,
    total_owed: String,
    members_owing: usize,
    chart: collections_chart::CollectionsChart,
}

pub async fn dashboard(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let members = basket::member_balances(&state.pool).await?;
    let flagged = payments::list_flagged(&state.pool).await?;
    let recent = payments::list_recent(&state.pool, 10).await?;
    let stuck_mail = crate::mail::stuck(&state.pool).await?;
    let owing: Vec<_> = members
        .iter()
        .map(|m| m.balance)
        .filter(|b| b.is_positive())
        .collect();
    let total_owed = owing
        .iter()
        .copied()
        .sum::<crate::domain::Money>()
        .to_string();
    let months = collections_chart::last_twelve_months(&crate::db::today_text());
    let collected = crate::books::collected_by_month(
        &state.pool,
        &state.settings.accounts.members,
        &format!("{}-01", months[0]),
    )
    .await?;
    let names = books::gateway_names(&state).await?;
    let chart = collections_chart::build(&months, &collected, &names);
    let view = DashboardView {
        layout: current.layout(&state),
        members,
        flagged,
        recent,
        stuck_mail,
        total_owed,
        members_owing: owing.len(),
        chart,
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditView {
    layout: Layout,
    entries: Vec<crate::audit::AuditEntry>,
}

/// Who did what in the back office, newest first.
pub async fn audit_log(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let view = AuditView {
        layout: current.layout(&state),
        entries: crate::audit::recent(&state.pool, 500).await?,
    };
    Ok(render(StatusCode::OK, &view))
}
