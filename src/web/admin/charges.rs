//! Charges for many members at once (e.g. a season's dues), idempotent per form.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::members::{
    CategoryChoice, ChargeForm, FieldError, FieldErrors, category_choices, t, tf, validate_charge,
};
use crate::account_plan;
use crate::audit;
use crate::basket::{self, NewCharge};
use crate::db;
use crate::web::{AppError, AppState, Layout, ManagerUser, SessionExt, render, see_other};

/// Which members a bulk charge goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    All,
    Owing,
    UpToDate,
}

impl Target {
    fn parse(value: &str) -> Option<Target> {
        match value {
            "all" => Some(Target::All),
            "owing" => Some(Target::Owing),
            "up_to_date" => Some(Target::UpToDate),
            _ => None,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/bulk_charges.html")]
struct BulkView {
    layout: Layout,
    categories: Vec<CategoryChoice>,
    form: ChargeForm,
    target: String,
    members: usize,
    form_error: Option<FieldError>,
}

#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(flatten)]
    charge: ChargeForm,
    #[serde(default)]
    target: String,
}

async fn view(
    state: &AppState,
    current: &crate::web::CurrentUser,
    form: Option<BulkForm>,
    error: Option<FieldError>,
) -> Result<BulkView, AppError> {
    let members = basket::member_balances(&state.pool).await?.len();
    let (charge, target) = match form {
        Some(f) => (f.charge, f.target),
        None => (
            ChargeForm {
                category: "dues".into(),
                date: db::today_text(),
                form_key: db::new_id(),
                ..ChargeForm::default()
            },
            "all".into(),
        ),
    };
    let categories = account_plan::active_categories(&state.pool).await?;
    Ok(BulkView {
        layout: current.layout(state),
        categories: category_choices(&charge.category, &categories),
        form: charge,
        target,
        members,
        form_error: error,
    })
}

pub async fn form(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let page = view(&state, &current, None, None).await?;
    Ok(render(StatusCode::OK, &page))
}

pub async fn apply(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    form: web::Form<BulkForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.charge.csrf_token)?;
    let categories = account_plan::active_categories(&state.pool).await?;
    let checked = validate_charge(&form.charge, &categories).and_then(|charge| {
        Target::parse(&form.target)
            .map(|target| (charge, target))
            .ok_or_else(|| FieldError::new("target", t("bulk_charges.error_target")))
    });
    let (charge, target) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            let page = view(&state, &current, Some(form), Some(message)).await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let members: Vec<_> = basket::member_balances(&state.pool)
        .await?
        .into_iter()
        .filter(|m| match target {
            Target::All => true,
            Target::Owing => m.balance.is_positive(),
            Target::UpToDate => !m.balance.is_positive(),
        })
        .collect();
    let (mut added, mut already) = (0usize, 0usize);
    for member in &members {
        let posting_key = format!("charge:{}:{}", charge.form_key, member.member_id);
        let new = basket::add_charge(
            &state.pool,
            &state.settings.accounts,
            NewCharge {
                member_id: &member.member_id,
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
        if new {
            added += 1;
        } else {
            already += 1;
        }
    }
    if added > 0 {
        audit::record(
            &state.pool,
            &current.user.id,
            "charge.bulk",
            &format!("members:{}", form.target),
            None,
            Some(serde_json::json!({
                "category": charge.category,
                "label": charge.label,
                "amount_cents": charge.amount.cents(),
                "season": charge.season,
                "date": charge.date,
                "due_on": charge.due_on,
                "members": added,
            })),
        )
        .await?;
    }
    let amount = charge.amount.to_string();
    let message = match (added, already) {
        (0, 0) => t("bulk_charges.nobody").to_string(),
        (0, _) => t("charge_form.already_sent").to_string(),
        (n, 0) => tf(
            "bulk_charges.added",
            &[
                ("label", &charge.label),
                ("amount", &amount),
                ("count", &n.to_string()),
            ],
        ),
        (n, m) => tf(
            "bulk_charges.added_some",
            &[
                ("label", &charge.label),
                ("amount", &amount),
                ("count", &n.to_string()),
                ("already", &m.to_string()),
            ],
        ),
    };
    current.session.set_flash("info", &message);
    Ok(see_other("/admin"))
}
