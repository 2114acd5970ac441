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

/// The text of `key` in the language of the request being served.
pub(super) fn t(key: &'static str) -> &'static str {
    crate::i18n::current().t(key)
}

/// `t` with `{name}` placeholders replaced.
pub(super) fn tf(key: &'static str, args: &[(&str, &str)]) -> String {
    crate::i18n::current().tf(key, args)
}

/// What is wrong with a form, and the field it is about (the input's `name`; "" when it is
/// about the whole form), so that the page ties the message to its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// A form's errors, as templates ask about them: `{% if form_error.on("amount") %}`.
pub trait FieldErrors {
    /// The message about `field`, if any.
    fn message_on(&self, field: &str) -> Option<&str>;

    fn on(&self, field: &str) -> bool {
        self.message_on(field).is_some()
    }
}

impl FieldErrors for Option<FieldError> {
    fn message_on(&self, field: &str) -> Option<&str> {
        self.as_ref()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

impl FieldErrors for Vec<FieldError> {
    fn message_on(&self, field: &str) -> Option<&str> {
        self.iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

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

pub fn validate_charge(
    form: &ChargeForm,
    categories: &[Category],
) -> Result<ValidCharge, FieldError> {
    let category = categories
        .iter()
        .find(|c| c.active && c.code == form.category)
        .map(|c| c.code.clone())
        .ok_or_else(|| FieldError::new("category", t("charge_form.error_category")))?;
    let label = form.label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        return Err(FieldError::new(
            "label",
            t("charge_form.error_label_length"),
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(FieldError::new(
            "label",
            t("charge_form.error_label_control"),
        ));
    }
    let amount =
        Money::parse_input(&form.amount).map_err(|e| FieldError::new("amount", e.to_string()))?;
    let season = form.season.trim();
    if season.chars().count() > 20 || season.chars().any(char::is_control) {
        return Err(FieldError::new("season", t("charge_form.error_season")));
    }
    let date = form.date.trim();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(date, &format).is_err() {
        return Err(FieldError::new("date", t("charge_form.error_date")));
    }
    let due_on = form.due_on.trim();
    if !due_on.is_empty() {
        if time::Date::parse(due_on, &format).is_err() {
            return Err(FieldError::new("due_on", t("charge_form.error_due_on")));
        }
        if due_on < date {
            return Err(FieldError::new(
                "due_on",
                t("charge_form.error_due_before_date"),
            ));
        }
    }
    let form_key = form.form_key.trim();
    if uuid::Uuid::parse_str(form_key).is_err() {
        return Err(FieldError::new("", t("charge_form.error_expired")));
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
    form_error: Option<FieldError>,
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
    form_error: Option<FieldError>,
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
            &tf(
                "charge_form.added",
                &[
                    ("label", &charge.label),
                    ("amount", &charge.amount.to_string()),
                    ("name", &member.full_name()),
                ],
            ),
        );
    } else {
        current
            .session
            .set_flash("info", t("charge_form.already_sent"));
    }
    Ok(see_other(&format!("/admin/members/{}", member.id)))
}
