//! Payment requests for managers: send one to a member, or to every member who owes (after a
//! confirmation), list them by status, and cancel those still open.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::members::{FieldError, FieldErrors, t, tf};
use crate::accounts::{self, User};
use crate::audit;
use crate::basket;
use crate::db;
use crate::domain::{Money, local_date};
use crate::payment_requests::{
    self, LinkKey, Listed, NewRequest, PaymentRequest, RequestStatus, Sent,
};
use crate::web::{
    AppError, AppState, CurrentUser, Layout, ManagerUser, SessionExt, render, see_other,
};

/// Longest message a manager may add to a request.
const MESSAGE_MAX_CHARS: usize = 1000;

pub struct GatewayOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// "The member's choice", then every enabled gateway.
fn gateway_options(state: &AppState, selected: &str) -> Vec<GatewayOption> {
    std::iter::once(GatewayOption {
        value: "",
        label: t("requests.members_choice"),
        selected: selected.is_empty(),
    })
    .chain(
        state
            .gateways
            .current()
            .all()
            .iter()
            .map(|g| GatewayOption {
                value: g.id(),
                label: g.display_name(),
                selected: g.id() == selected,
            }),
    )
    .collect()
}

fn gateway_label(state: &AppState, gateway: Option<&str>) -> String {
    match gateway {
        None => t("requests.members_choice").into(),
        Some(id) => state
            .gateways
            .current()
            .get(id)
            .map_or_else(|| id.to_string(), |g| g.display_name().to_string()),
    }
}

/// What a manager typed in a request form, kept to show it again.
#[derive(Deserialize, Default, Clone)]
pub struct RequestForm {
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub message: String,
    /// Names this form: sending it twice asks each member once.
    #[serde(default)]
    pub form_key: String,
    /// `yes` once the manager confirmed sending to every member who owes.
    #[serde(default)]
    pub confirm: String,
    #[serde(default)]
    pub csrf_token: String,
}

impl RequestForm {
    fn fresh() -> RequestForm {
        RequestForm {
            form_key: db::new_id(),
            ..RequestForm::default()
        }
    }
}

struct ValidRequest {
    gateway: Option<&'static str>,
    gateway_label: Option<&'static str>,
    message: Option<String>,
    batch_key: String,
}

fn validate(state: &AppState, form: &RequestForm) -> Result<ValidRequest, FieldError> {
    let (gateway, gateway_label) = match form.gateway.trim() {
        "" => (None, None),
        id => {
            let registry = state.gateways.current();
            let g = registry
                .get_offered(id)
                .ok_or_else(|| FieldError::new("gateway", t("requests.error_gateway")))?;
            (Some(g.id()), Some(g.display_name()))
        }
    };
    let message = form.message.replace("\r\n", "\n");
    let message = message.trim();
    if message.chars().count() > MESSAGE_MAX_CHARS {
        return Err(FieldError::new(
            "message",
            tf(
                "requests.error_message_length",
                &[("max", &MESSAGE_MAX_CHARS.to_string())],
            ),
        ));
    }
    if message
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            "message",
            t("requests.error_message_control"),
        ));
    }
    let batch_key = form.form_key.trim();
    if uuid::Uuid::parse_str(batch_key).is_err() {
        return Err(FieldError::new("", t("requests.error_expired")));
    }
    Ok(ValidRequest {
        gateway,
        gateway_label,
        message: (!message.is_empty()).then(|| message.to_string()),
        batch_key: batch_key.to_string(),
    })
}

pub struct RowView {
    pub id: String,
    pub member_id: String,
    pub member: String,
    pub email: String,
    pub amount: String,
    pub gateway: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub created: String,
    pub expires: String,
    pub paid: String,
    pub payment_id: Option<String>,
    pub requested_by: String,
    pub open: bool,
}

fn status_class(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Sent => "wait",
        RequestStatus::Paid => "ok",
        RequestStatus::Cancelled | RequestStatus::Expired => "bad",
    }
}

fn row_view(state: &AppState, listed: Listed) -> RowView {
    let r = listed.request;
    RowView {
        gateway: gateway_label(state, r.gateway.as_deref()),
        amount: r.amount.to_string(),
        status: r.status.label(),
        status_class: status_class(r.status),
        created: local_date(&r.created_at),
        expires: local_date(&r.expires_at),
        paid: r.paid_at.as_deref().map(local_date).unwrap_or_default(),
        open: r.status == RequestStatus::Sent,
        payment_id: r.payment_id,
        member_id: r.member_id,
        id: r.id,
        member: listed.member_name,
        email: listed.member_email,
        requested_by: listed.requested_by_name,
    }
}

pub struct FilterChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsView {
    layout: Layout,
    filters: Vec<FilterChoice>,
    rows: Vec<RowView>,
    owing: usize,
    owing_total: String,
    form: RequestForm,
    gateways: Vec<GatewayOption>,
    form_error: Option<FieldError>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
}

/// Members who owe something now, and the total they owe.
async fn owing_members(state: &AppState) -> Result<Vec<basket::MemberBalance>, AppError> {
    Ok(basket::member_balances(&state.pool)
        .await?
        .into_iter()
        .filter(|m| m.balance.is_positive())
        .collect())
}

async fn requests_view(
    state: &AppState,
    current: &CurrentUser,
    status: Option<RequestStatus>,
    form: Option<RequestForm>,
    form_error: Option<FieldError>,
) -> Result<RequestsView, AppError> {
    payment_requests::expire_due(&state.pool).await?;
    let rows = payment_requests::list(&state.pool, status, None, 500)
        .await?
        .into_iter()
        .map(|l| row_view(state, l))
        .collect();
    let owing = owing_members(state).await?;
    let form = form.unwrap_or_else(RequestForm::fresh);
    let filters = std::iter::once(FilterChoice {
        value: "",
        label: t("requests.filter_all"),
        selected: status.is_none(),
    })
    .chain(RequestStatus::ALL.into_iter().map(|s| FilterChoice {
        value: s.as_str(),
        label: s.label(),
        selected: status == Some(s),
    }))
    .collect();
    Ok(RequestsView {
        layout: current.layout(state),
        filters,
        rows,
        owing: owing.len(),
        owing_total: owing.iter().map(|m| m.balance).sum::<Money>().to_string(),
        gateways: gateway_options(state, &form.gateway),
        form,
        form_error,
    })
}

/// `/admin/requests`: every request, or those of one status.
pub async fn list(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let status = match query.status.as_str() {
        "" => None,
        value => Some(
            RequestStatus::parse(value)
                .ok_or_else(|| AppError::BadRequest(t("requests.error_status").into()))?,
        ),
    };
    let view = requests_view(&state, &current, status, None, None).await?;
    Ok(render(StatusCode::OK, &view))
}

#[derive(Template)]
#[template(path = "admin/requests_confirm.html")]
struct ConfirmView {
    layout: Layout,
    count: usize,
    total: String,
    gateway: String,
    form: RequestForm,
}

/// `POST /admin/requests/all`: first shows how many members and how much, then (confirmed)
/// sends one request to each member who owes. The form's key makes a resubmission harmless.
pub async fn send_all(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let valid = match validate(&state, &form) {
        Ok(valid) => valid,
        Err(message) => {
            let view = requests_view(&state, &current, None, Some(form), Some(message)).await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &view));
        }
    };
    let owing = owing_members(&state).await?;
    if form.confirm != "yes" {
        let view = ConfirmView {
            layout: current.layout(&state),
            count: owing.len(),
            total: owing.iter().map(|m| m.balance).sum::<Money>().to_string(),
            gateway: gateway_label(&state, valid.gateway),
            form,
        };
        return Ok(render(StatusCode::OK, &view));
    }
    let key = LinkKey::load(&state.pool, &state.settings).await?;
    let (mut sent, mut already, mut total) = (0usize, 0usize, Money::ZERO);
    for member in &owing {
        let outcome = payment_requests::send(
            &state.pool,
            &key,
            NewRequest {
                member_id: &member.member_id,
                requested_by: &current.user.id,
                batch_key: &valid.batch_key,
                gateway: valid.gateway,
                gateway_label: valid.gateway_label,
                message: valid.message.as_deref(),
                expiry_days: state.settings.payment_request_expiry_days,
            },
        )
        .await?;
        match outcome {
            Sent::Created { amount, .. } => {
                sent += 1;
                total = total + amount;
            }
            Sent::AlreadySent => already += 1,
            Sent::NothingOwed => {}
        }
    }
    if sent > 0 {
        audit::record(
            &state.pool,
            &current.user.id,
            "payment_request.send_all",
            "members:owing",
            None,
            Some(serde_json::json!({
                "batch": valid.batch_key,
                "requests": sent,
                "amount_cents": total.cents(),
                "gateway": valid.gateway,
                "message": valid.message,
            })),
        )
        .await?;
    }
    let total = total.to_string();
    let message = match (sent, already) {
        (0, 0) => t("requests.nobody_owes").to_string(),
        (0, _) => t("requests.already_sent").to_string(),
        (n, 0) => tf(
            "requests.sent_all",
            &[("count", &n.to_string()), ("total", &total)],
        ),
        (n, m) => tf(
            "requests.sent_all_some",
            &[
                ("count", &n.to_string()),
                ("total", &total),
                ("already", &m.to_string()),
            ],
        ),
    };
    current.session.set_flash("info", &message);
    Ok(see_other("/admin/requests"))
}

#[derive(Template)]
#[template(path = "admin/request_new.html")]
struct NewRequestView {
    layout: Layout,
    member: User,
    balance: Money,
    form: RequestForm,
    gateways: Vec<GatewayOption>,
    form_error: Option<FieldError>,
    rows: Vec<RowView>,
}

async fn new_request_view(
    state: &AppState,
    current: &CurrentUser,
    member_id: &str,
    form: Option<RequestForm>,
    form_error: Option<FieldError>,
) -> Result<NewRequestView, AppError> {
    let member = accounts::find_active(&state.pool, member_id)
        .await?
        .ok_or(AppError::NotFound)?;
    payment_requests::expire_due(&state.pool).await?;
    let balance = basket::load(&state.pool, &member.id).await?.balance();
    let rows = payment_requests::list(&state.pool, None, Some(&member.id), 100)
        .await?
        .into_iter()
        .map(|l| row_view(state, l))
        .collect();
    let form = form.unwrap_or_else(RequestForm::fresh);
    Ok(NewRequestView {
        layout: current.layout(state),
        member,
        balance,
        gateways: gateway_options(state, &form.gateway),
        form,
        form_error,
        rows,
    })
}

/// `/admin/members/{id}/request`: the form to ask one member to pay what they owe.
pub async fn new_for_member(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let view = new_request_view(&state, &current, &id, None, None).await?;
    Ok(render(StatusCode::OK, &view))
}

pub async fn send_to_member(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let member = accounts::find_active(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let refuse = |form: RequestForm, error: FieldError| {
        let (state, current, id) = (&state, &current, &id);
        async move {
            let view = new_request_view(state, current, id, Some(form), Some(error)).await?;
            Ok::<_, AppError>(render(StatusCode::UNPROCESSABLE_ENTITY, &view))
        }
    };
    let valid = match validate(&state, &form) {
        Ok(valid) => valid,
        Err(message) => return refuse(form, message).await,
    };
    let key = LinkKey::load(&state.pool, &state.settings).await?;
    let outcome = payment_requests::send(
        &state.pool,
        &key,
        NewRequest {
            member_id: &member.id,
            requested_by: &current.user.id,
            batch_key: &valid.batch_key,
            gateway: valid.gateway,
            gateway_label: valid.gateway_label,
            message: valid.message.as_deref(),
            expiry_days: state.settings.payment_request_expiry_days,
        },
    )
    .await?;
    match outcome {
        Sent::Created { id, amount } => {
            audit::record(
                &state.pool,
                &current.user.id,
                "payment_request.send",
                &format!("member:{}", member.id),
                None,
                Some(serde_json::json!({
                    "request": id,
                    "amount_cents": amount.cents(),
                    "gateway": valid.gateway,
                    "message": valid.message,
                })),
            )
            .await?;
            current.session.set_flash(
                "info",
                &tf(
                    "requests.sent_one",
                    &[
                        ("amount", &amount.to_string()),
                        ("name", &member.full_name()),
                        ("email", &member.email),
                    ],
                ),
            );
        }
        Sent::AlreadySent => current
            .session
            .set_flash("info", t("requests.already_sent")),
        Sent::NothingOwed => {
            let message = tf("requests.owes_nothing", &[("name", &member.full_name())]);
            return refuse(form, FieldError::new("", message)).await;
        }
    }
    Ok(see_other(&format!("/admin/members/{}/request", member.id)))
}

#[derive(Template)]
#[template(path = "admin/request.html")]
struct RequestDetailView {
    layout: Layout,
    request: PaymentRequest,
    member: String,
    requested_by: String,
    gateway: String,
    status_class: &'static str,
    form_error: Option<String>,
}

async fn detail_view(
    state: &AppState,
    current: &CurrentUser,
    id: &str,
    form_error: Option<String>,
) -> Result<RequestDetailView, AppError> {
    payment_requests::expire_due(&state.pool).await?;
    let request = payment_requests::find(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let name_of = |user: Option<User>| user.map_or_else(String::new, |u| u.full_name());
    let member = accounts::find_any(&state.pool, &request.member_id)
        .await?
        .map_or_else(String::new, |u| format!("{} ({})", u.full_name(), u.email));
    let requested_by = name_of(accounts::find_any(&state.pool, &request.requested_by).await?);
    Ok(RequestDetailView {
        layout: current.layout(state),
        member,
        requested_by,
        gateway: gateway_label(state, request.gateway.as_deref()),
        status_class: status_class(request.status),
        request,
        form_error,
    })
}

/// `/admin/requests/{id}`: one request, and the form to cancel it while it is open.
pub async fn detail(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let view = detail_view(&state, &current, &id, None).await?;
    Ok(render(StatusCode::OK, &view))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn cancel(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    payment_requests::expire_due(&state.pool).await?;
    let request = payment_requests::find(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !payment_requests::cancel(&state.pool, &request.id).await? {
        let message = tf(
            "requests.only_open",
            &[("status", &request.status.label().to_lowercase())],
        );
        let view = detail_view(&state, &current, &id, Some(message)).await?;
        return Ok(render(StatusCode::CONFLICT, &view));
    }
    audit::record(
        &state.pool,
        &current.user.id,
        "payment_request.cancel",
        &format!("payment_request:{}", request.id),
        Some(serde_json::json!({ "status": request.status.as_str() })),
        Some(serde_json::json!({ "status": "cancelled" })),
    )
    .await?;
    current.session.set_flash(
        "info",
        &tf(
            "requests.cancelled",
            &[("amount", &request.amount.to_string())],
        ),
    );
    Ok(see_other(&format!("/admin/requests/{}", request.id)))
}
