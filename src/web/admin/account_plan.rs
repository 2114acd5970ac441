//! `/admin/settings/accounts`: charge categories and their income accounts, the gateways'
//! clearing accounts and the fees account. Managers see them; only admins change them.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account_plan::{self, CategoryUse, PlanError, ReceiptAccounts, ReceiptAccountsInput};
use crate::domain::Role;
use crate::web::session::AdminUser;
use crate::web::{
    AppError, AppState, CurrentUser, Layout, ManagerUser, SessionExt, render, see_other,
};

const PAGE: &str = "/admin/settings/accounts";

fn t(key: &'static str) -> &'static str {
    crate::i18n::current().t(key)
}

fn tf(key: &'static str, args: &[(&str, &str)]) -> String {
    crate::i18n::current().tf(key, args)
}

pub struct GatewayAccount {
    pub id: String,
    pub name: String,
    /// Its own clearing account; empty when it uses the common one.
    pub account: String,
}

/// What was typed in the form to add a category, kept to show it again.
#[derive(Deserialize, Default)]
pub struct NewCategoryForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    income_account: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "admin/account_plan.html")]
struct AccountPlanView {
    layout: Layout,
    can_edit: bool,
    categories: Vec<CategoryUse>,
    members_account: String,
    fees: String,
    clearing: String,
    gateways: Vec<GatewayAccount>,
    new_category: NewCategoryForm,
    error: Option<String>,
}

/// The gateways offered, and any other that has its own clearing account (no longer offered,
/// it is shown so that its account can be cleared).
fn gateway_accounts(state: &AppState, receipts: &ReceiptAccounts) -> Vec<GatewayAccount> {
    let mut gateways: Vec<GatewayAccount> = state
        .gateways
        .current()
        .all()
        .iter()
        .map(|g| GatewayAccount {
            id: g.id().to_string(),
            name: g.display_name().to_string(),
            account: receipts.by_gateway.get(g.id()).cloned().unwrap_or_default(),
        })
        .collect();
    for (id, account) in &receipts.by_gateway {
        if !gateways.iter().any(|g| &g.id == id) {
            gateways.push(GatewayAccount {
                id: id.clone(),
                name: id.clone(),
                account: account.clone(),
            });
        }
    }
    gateways
}

async fn view(
    state: &AppState,
    current: &CurrentUser,
    new_category: Option<NewCategoryForm>,
    error: Option<String>,
) -> Result<AccountPlanView, AppError> {
    let receipts = account_plan::receipt_accounts(&state.pool, &state.settings.accounts).await?;
    Ok(AccountPlanView {
        layout: current.layout(state),
        can_edit: current.user.role == Role::Admin,
        categories: account_plan::categories_with_use(&state.pool).await?,
        members_account: state.settings.accounts.members.clone(),
        gateways: gateway_accounts(state, &receipts),
        fees: receipts.fees,
        clearing: receipts.clearing,
        new_category: new_category.unwrap_or_default(),
        error,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let page = view(&state, &current, None, None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// After a change: back to the page with a message, or the page again with the error.
async fn outcome(
    state: &AppState,
    current: &CurrentUser,
    result: Result<String, PlanError>,
    new_category: Option<NewCategoryForm>,
) -> Result<HttpResponse, AppError> {
    match result {
        Ok(message) => {
            current.session.set_flash("info", &message);
            Ok(see_other(PAGE))
        }
        Err(PlanError::Invalid(message)) => {
            let page = view(state, current, new_category, Some(message)).await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(PlanError::NotFound) => Err(AppError::NotFound),
        Err(PlanError::Unexpected(error)) => Err(AppError::Unexpected(error)),
    }
}

pub async fn add_category(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    form: web::Form<NewCategoryForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let result = account_plan::add_category(
        &state.pool,
        &current.user.id,
        &state.settings.accounts,
        &form.code,
        &form.label,
        &form.income_account,
    )
    .await
    .map(|c| {
        tf(
            "account_plan.added",
            &[("label", &c.label), ("account", &c.income_account)],
        )
    });
    outcome(&state, &current, result, Some(form)).await
}

#[derive(Deserialize)]
pub struct CategoryForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    income_account: String,
    /// A checkbox: present when checked.
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

pub async fn update_category(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    code: web::Path<String>,
    form: web::Form<CategoryForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let result = account_plan::update_category(
        &state.pool,
        &current.user.id,
        &state.settings.accounts,
        &code,
        &form.label,
        &form.income_account,
        form.active.is_some(),
    )
    .await
    .map(|changed| {
        if changed {
            tf(
                "account_plan.saved",
                &[
                    ("label", form.label.trim()),
                    ("account", form.income_account.trim()),
                ],
            )
        } else {
            t("account_plan.unchanged").to_string()
        }
    });
    outcome(&state, &current, result, None).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

pub async fn delete_category(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    code: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let result = account_plan::delete_category(&state.pool, &current.user.id, &code)
        .await
        .map(|c| tf("account_plan.deleted", &[("label", &c.label)]));
    outcome(&state, &current, result, None).await
}

/// The receipts' form: `fees`, `clearing` and one `clearing.<gateway>` per gateway.
pub async fn set_receipt_accounts(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current
        .session
        .check_csrf(form.get("csrf_token").map_or("", String::as_str))?;
    let receipts = account_plan::receipt_accounts(&state.pool, &state.settings.accounts).await?;
    let gateways = gateway_accounts(&state, &receipts);
    let mut by_gateway = Vec::new();
    for (key, typed) in &form {
        let Some(id) = key.strip_prefix("clearing.") else {
            continue;
        };
        let gateway = gateways
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| AppError::BadRequest(t("account_plan.unknown_gateway").into()))?;
        by_gateway.push((gateway.id.clone(), gateway.name.clone(), typed.as_str()));
    }
    by_gateway.sort();
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let result = account_plan::set_receipt_accounts(
        &state.pool,
        &current.user.id,
        &state.settings.accounts,
        ReceiptAccountsInput {
            fees: field("fees"),
            clearing: field("clearing"),
            by_gateway,
        },
    )
    .await
    .map(|changed| {
        if changed {
            t("account_plan.receipts_saved").to_string()
        } else {
            t("account_plan.unchanged").to_string()
        }
    });
    outcome(&state, &current, result, None).await
}
