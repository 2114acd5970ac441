//! A payment as a manager sees it, with its notifications and refunds; refund and cancel.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts;
use crate::audit;
use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Capabilities, GatewayError, RefundStatus};
use crate::notifications::{self, StoredNotification};
use crate::payments::{self, ActionError, Payment};
use crate::web::{AppError, AppState, Layout, ManagerUser, SessionExt, render, see_other};

/// A flagged payment's anomaly: what it means, and the detail recorded.
pub struct AnomalyView {
    pub label: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/payment.html")]
struct PaymentDetailView {
    layout: Layout,
    payment: Payment,
    anomaly: Option<AnomalyView>,
    member: String,
    gateway_name: String,
    capabilities: Option<Capabilities>,
    refundable: Money,
    refunds: Vec<payments::Refund>,
    notifications: Vec<StoredNotification>,
    form_error: Option<String>,
    refund_amount: String,
}

async fn payment_detail_view(
    state: &AppState,
    current: &crate::web::CurrentUser,
    id: &str,
    form_error: Option<String>,
    refund_amount: Option<String>,
) -> Result<PaymentDetailView, AppError> {
    let payment = payments::find(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let member = accounts::find_any(&state.pool, &payment.member_id)
        .await?
        .map_or_else(String::new, |u| format!("{} ({})", u.full_name(), u.email));
    let gateways = state.gateways.current();
    let gateway = gateways.get(&payment.gateway);
    let refunds = payments::list_refunds(&state.pool, &payment.id).await?;
    let in_flight: Money = refunds
        .iter()
        .filter(|r| r.status == "requested" || r.status == "pending")
        .map(|r| r.amount)
        .sum();
    let refundable = if matches!(
        payment.status,
        PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
    ) {
        payment.paid_amount.unwrap_or(Money::ZERO) - payment.refunded - in_flight
    } else {
        Money::ZERO
    };
    Ok(PaymentDetailView {
        layout: current.layout(state),
        member,
        gateway_name: gateway.map_or_else(|| payment.gateway.clone(), |g| g.display_name().into()),
        capabilities: gateway.map(|g| g.capabilities()),
        refund_amount: refund_amount.unwrap_or_else(|| refundable.to_input_string()),
        refundable,
        refunds,
        notifications: notifications::list_for_payment(&state.pool, &payment.id).await?,
        anomaly: payment.anomaly.as_ref().map(|a| AnomalyView {
            label: payments::anomaly_label(a),
            detail: a.clone(),
        }),
        payment,
        form_error,
    })
}

pub async fn payment_detail(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let view = payment_detail_view(&state, &current, &id, None, None).await?;
    Ok(render(StatusCode::OK, &view))
}

#[derive(Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn refund(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let payment = payments::find(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let gateway = state
        .gateways
        .current()
        .get(&payment.gateway)
        .cloned()
        .ok_or_else(|| AppError::BadRequest(t("payment_action.gateway_gone").into()))?;
    let refused = |status: StatusCode, message: String| {
        let state = state.clone();
        let current = &current;
        let typed = form.amount.chars().take(40).collect::<String>();
        async move {
            let view =
                payment_detail_view(&state, current, &id, Some(message), Some(typed)).await?;
            Ok::<_, AppError>(render(status, &view))
        }
    };
    let amount = match Money::parse_input(&form.amount) {
        Ok(amount) => amount,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    match payments::request_refund(
        &state.pool,
        &state.settings.accounts,
        gateway.as_ref(),
        &payment.id,
        amount,
        &current.user.id,
    )
    .await
    {
        Ok(status) => {
            tracing::info!(payment_id = %payment.id, by = %current.user.id, amount = amount.cents(), "refund requested");
            audit::record(
                &state.pool,
                &current.user.id,
                "payment.refund",
                &format!("payment:{}", payment.id),
                Some(serde_json::json!({ "status": payment.status.as_str() })),
                Some(serde_json::json!({
                    "amount_cents": amount.cents(),
                    "gateway_answer": format!("{status:?}"),
                })),
            )
            .await?;
            let key = match status {
                RefundStatus::Succeeded => "payment_action.refund_done",
                RefundStatus::Pending => "payment_action.refund_pending",
                RefundStatus::Failed => "payment_action.refund_refused",
            };
            let amount = amount.to_string();
            current.session.set_flash(
                "info",
                &crate::i18n::current().tf(key, &[("amount", &amount)]),
            );
            Ok(see_other(&format!("/admin/payments/{}", payment.id)))
        }
        Err(ActionError::NotAllowed(message)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, message).await
        }
        Err(ActionError::Gateway(error)) => {
            refused(StatusCode::BAD_GATEWAY, gateway_message(&error)).await
        }
        Err(ActionError::Unexpected(error)) => Err(AppError::Unexpected(error)),
    }
}

fn t(key: &'static str) -> &'static str {
    crate::i18n::current().t(key)
}

fn gateway_message(error: &GatewayError) -> String {
    match error {
        GatewayError::Rejected(message) => {
            crate::i18n::current().tf("payment_action.gateway_rejected", &[("message", message)])
        }
        GatewayError::Unavailable(_) => t("payment_action.gateway_unavailable").into(),
        GatewayError::Unsupported(_) => t("payment_action.gateway_unsupported").into(),
    }
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
    let payment = payments::find(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let gateway = state
        .gateways
        .current()
        .get(&payment.gateway)
        .cloned()
        .ok_or_else(|| AppError::BadRequest(t("payment_action.gateway_gone").into()))?;
    let outcome = payments::request_cancel(&state.pool, gateway.as_ref(), &payment.id).await;
    let (status, message) = match outcome {
        Ok(()) => {
            audit::record(
                &state.pool,
                &current.user.id,
                "payment.cancel",
                &format!("payment:{}", payment.id),
                Some(serde_json::json!({ "status": payment.status.as_str() })),
                Some(serde_json::json!({ "status": "cancelled" })),
            )
            .await?;
            current
                .session
                .set_flash("info", t("payment_action.cancelled"));
            return Ok(see_other(&format!("/admin/payments/{}", payment.id)));
        }
        Err(ActionError::NotAllowed(message)) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Err(ActionError::Gateway(error)) => (StatusCode::BAD_GATEWAY, gateway_message(&error)),
        Err(ActionError::Unexpected(error)) => return Err(AppError::Unexpected(error)),
    };
    let view = payment_detail_view(&state, &current, &id, Some(message), None).await?;
    Ok(render(status, &view))
}
