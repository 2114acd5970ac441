//! A member as a manager sees them: basket, account statement, and adding a charge.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account_plan::{self, Category};
use crate::accounts::{self, User};
use crate::audit;
use crate::basket::{self, NewCharge};
use crate::db;
use crate::domain::Money;
use crate::ledger::{self, Statement};
use crate::payments::{self, Payment};
use crate::saved_cards::{self, SavedCard};
use crate::web::{AppError, AppState, Layout, ManagerUser, SessionExt, render, see_other};

pub struct CategoryChoice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The active categories, to choose from in a charge form.
pub fn category_choices(selected: &str, categories: &[Category]) -> Vec<CategoryChoice> {
    categories
        .iter()
        .filter(|c| c.active)
        .map(|c| CategoryChoice {
            value: c.code.clone(),
            label: c.label.clone(),
            selected: c.code == selected,
        })
        .collect()
}

/// What a manager typed in a charge form, kept to show it again with the errors.
#[derive(Deserialize, Default, Clone)]
pub struct ChargeForm {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub season: String,
    #[serde(default)]
    pub date: String,
    /// Optional due date: members with a saved card are charged for it then.
    #[serde(default)]
    pub due_on: String,
    /// Names this form: submitting it twice adds the charge once.
    #[serde(default)]
    pub form_key: String,
    #[serde(default)]
    pub csrf_token: String,
}

/// A charge form read into domain types, or the first thing wrong with it.
pub struct ValidCharge {
    /// The code of an active category.
    pub category: String,
    pub label: String,
    pub amount: Money,
    pub season: Option<String>,
    pub date: String,
    pub due_on: Option<String>,
    pub form_key: String,
}

pub fn validate_charge(form: &ChargeForm, categories: &[Category]) -> Result<ValidCharge, String> {
    let category = categories
        .iter()
        .find(|c| c.active && c.code == form.category)
        .map(|c| c.code.clone())
        .ok_or("Choisissez une catégorie.")?;
    let label = form.label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        return Err("Le libellé doit compter entre 1 et 200 caractères.".into());
    }
    if label.chars().any(char::is_control) {
        return Err("Le libellé ne peut pas contenir de caractères de contrôle.".into());
    }
    let amount = Money::parse_input(&form.amount).map_err(|e| e.to_string())?;
    let season = form.season.trim();
    if season.chars().count() > 20 || season.chars().any(char::is_control) {
        return Err("La saison compte au plus 20 caractères (par exemple 2026-2027).".into());
    }
    let date = form.date.trim();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(date, &format).is_err() {
        return Err("Indiquez une date au format AAAA-MM-JJ.".into());
    }
    let due_on = form.due_on.trim();
    if !due_on.is_empty() {
        if time::Date::parse(due_on, &format).is_err() {
            return Err("Indiquez l'échéance au format AAAA-MM-JJ, ou laissez-la vide.".into());
        }
        if due_on < date {
            return Err("L'échéance ne peut pas précéder la date de la somme due.".into());
        }
    }
    let form_key = form.form_key.trim();
    if uuid::Uuid::parse_str(form_key).is_err() {
        return Err("Ce formulaire a expiré : rechargez la page.".into());
    }
    Ok(ValidCharge {
        category,
        label: label.to_string(),
        amount,
        season: (!season.is_empty()).then(|| season.to_string()),
        date: date.to_string(),
        due_on: (!due_on.is_empty()).then(|| due_on.to_string()),
        form_key: form_key.to_string(),
    })
}

#[derive(Template)]
#[template(path = "admin/member.html")]
pub(super) struct MemberView {
    layout: Layout,
    member: User,
    balance: Money,
    statement: Option<Statement>,
    statement_from: String,
    statement_to: String,
    statement_error: Option<String>,
    payments: Vec<Payment>,
    categories: Vec<CategoryChoice>,
    form: ChargeForm,
    form_error: Option<String>,
    /// The member's saved card, and the form to charge it.
    pub(super) saved_card: Option<SavedCard>,
    pub(super) card_charge: super::saved_card::ChargeFormView,
}

/// The period of the member's account statement, as typed.
#[derive(Deserialize, Default)]
pub struct StatementQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub(super) async fn member_view(
    state: &AppState,
    current: &crate::web::CurrentUser,
    member_id: &str,
    period: &StatementQuery,
    form: Option<ChargeForm>,
    form_error: Option<String>,
) -> Result<MemberView, AppError> {
    let member = accounts::find_any(&state.pool, member_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let basket = basket::load(&state.pool, &member.id).await?;
    let (statement, statement_error) = match crate::books::parse_period(&period.from, &period.to) {
        Ok((from, to)) => (
            Some(
                ledger::member_statement(
                    &state.pool,
                    &state.settings.accounts.members,
                    &member.id,
                    from.as_deref(),
                    to.as_deref(),
                )
                .await?,
            ),
            None,
        ),
        Err(message) => (None, Some(message)),
    };
    let categories = account_plan::active_categories(&state.pool).await?;
    let payments = payments::list_for_member(&state.pool, &member.id).await?;
    let form = form.unwrap_or_else(|| ChargeForm {
        category: "dues".into(),
        date: db::today_text(),
        form_key: db::new_id(),
        ..ChargeForm::default()
    });
    let saved_card = saved_cards::active_for_member(&state.pool, &member.id).await?;
    Ok(MemberView {
        layout: current.layout(state),
        card_charge: super::saved_card::ChargeFormView::new(
            state,
            saved_card.as_ref(),
            basket.balance(),
        ),
        saved_card,
        balance: basket.balance(),
        categories: category_choices(&form.category, &categories),
        member,
        statement,
        statement_from: period.from.clone(),
        statement_to: period.to.clone(),
        statement_error,
        payments,
        form,
        form_error,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    period: web::Query<StatementQuery>,
) -> Result<HttpResponse, AppError> {
    let view = member_view(&state, &current, &id, &period, None, None).await?;
    let status = if view.statement_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(status, &view))
}

pub async fn add_charge(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ChargeForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let member = accounts::find_any(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let categories = account_plan::active_categories(&state.pool).await?;
    let charge = match validate_charge(&form, &categories) {
        Ok(charge) => charge,
        Err(message) => {
            let period = StatementQuery::default();
            let view =
                member_view(&state, &current, &id, &period, Some(form), Some(message)).await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &view));
        }
    };
    let posting_key = format!("charge:{}:{}", charge.form_key, member.id);
    let added = basket::add_charge(
        &state.pool,
        &state.settings.accounts,
        NewCharge {
            member_id: &member.id,
            category: &charge.category,
            label: &charge.label,
            amount: charge.amount,
            season: charge.season.as_deref(),
            date: &charge.date,
            posting_key: &posting_key,
            due_on: charge.due_on.as_deref(),
        },
    )
    .await?;
    if added {
        audit::record(
            &state.pool,
            &current.user.id,
            "charge.add",
            &format!("member:{}", member.id),
            None,
            Some(serde_json::json!({
                "category": charge.category,
                "label": charge.label,
                "amount_cents": charge.amount.cents(),
                "season": charge.season,
                "date": charge.date,
                "due_on": charge.due_on,
            })),
        )
        .await?;
        current.session.set_flash(
            "info",
            &format!(
                "{} ({}) ajouté au panier de {}.",
                charge.label,
                charge.amount,
                member.full_name()
            ),
        );
    } else {
        current.session.set_flash(
            "info",
            "Ce formulaire avait déjà été envoyé : rien n'a été ajouté.",
        );
    }
    Ok(see_other(&format!("/admin/members/{}", member.id)))
}
