//! Manager pages: members and their balances, flagged payments, the journal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::basket::{self, MemberBalance};
use crate::ledger::{self, Journal};
use crate::payments::{self, Payment};
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

pub mod charges;
pub mod exports;
pub mod gateway_settings;
mod gateways;
pub mod members;
mod payment;

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
}

pub async fn dashboard(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let members = basket::member_balances(&state.pool).await?;
    let flagged = payments::list_flagged(&state.pool).await?;
    let recent = payments::list_recent(&state.pool, 50).await?;
    let stuck_mail = crate::mail::stuck(&state.pool).await?;
    let total_owed = members
        .iter()
        .map(|m| m.balance)
        .filter(|b| b.is_positive())
        .sum::<crate::domain::Money>()
        .to_string();
    let view = DashboardView {
        layout: current.layout(&state),
        members,
        flagged,
        recent,
        stuck_mail,
        total_owed,
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Template)]
#[template(path = "admin/ledger.html")]
struct LedgerView {
    layout: Layout,
    journal: Journal,
    balanced: bool,
}

/// The journal: the latest entries with their lines, and the totals of the whole journal.
pub async fn ledger(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let journal = ledger::journal(&state.pool, 500).await?;
    let view = LedgerView {
        layout: current.layout(&state),
        balanced: journal.total_debit == journal.total_credit,
        journal,
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
