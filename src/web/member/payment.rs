//! `/payments/{id}`: where the gateway sends the member back. Its query parameters prove
//! nothing: the page shows what obole has verified, and waits for the notification.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::basket::status_class;
use crate::db;
use crate::domain::PaymentStatus;
use crate::payments;

const RECHECK_AFTER_SECS: i64 = 4;
use crate::web::{AppError, AppState, CurrentUser, Layout, render};

#[derive(Template)]
#[template(path = "member/payment.html")]
struct PaymentView {
    layout: Layout,
    id: String,
    waiting: bool,
    headline: &'static str,
    detail: String,
    amount: String,
    gateway: String,
    status: &'static str,
    status_class: &'static str,
    /// Shown once money was received: a receipt the member can print.
    receipt: Option<ReceiptView>,
}

struct ReceiptView {
    association: String,
    payer: String,
    email: String,
    paid_on: String,
    reference: String,
    refunded: Option<String>,
}

/// What the gateway's return URL hints at: only the words shown while nothing is verified.
#[derive(Deserialize)]
pub struct ReturnHint {
    #[serde(default)]
    retour: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    hint: web::Query<ReturnHint>,
) -> Result<HttpResponse, AppError> {
    let mut payment = payments::find_for_member(&state.pool, &id, &current.user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let gateways = state.gateways.current();
    // While waiting, ask the gateway now and then (the page refreshes every 2 seconds): a lost
    // or late notification does not leave the member waiting for the sweep.
    let quiet_since = db::format_timestamp(
        time::OffsetDateTime::now_utc() - time::Duration::seconds(RECHECK_AFTER_SECS),
    );
    // Coming back from the gateway (`retour=ok`) asks at once: gateways without notifications
    // (Stancer) or that capture on return (PayPal) then confirm on the first page. The page's
    // own refresh drops the hint, so it asks at most every few seconds.
    let just_back = hint.retour.as_deref() == Some("ok");
    if payment.status.is_open()
        && (just_back || payment.updated_at <= quiet_since)
        && let Some(gateway) = gateways.get(&payment.gateway)
        && payments::refresh_from_gateway(
            &state.pool,
            &state.settings.accounts,
            gateway.as_ref(),
            &payment,
        )
        .await?
        .is_some()
    {
        payment = payments::find_for_member(&state.pool, &id, &current.user.id)
            .await?
            .ok_or(AppError::NotFound)?;
    }
    let amount = payment.paid_amount.unwrap_or(payment.amount);
    let lang = crate::i18n::current();
    let gave_up = match hint.retour.as_deref() {
        Some("abandon") => Some(("payment.not_made", "payment.abandoned")),
        Some("erreur") => Some(("payment.not_made", "payment.gateway_error")),
        _ => None,
    };
    let (headline, detail) = match payment.status {
        PaymentStatus::Created | PaymentStatus::Pending if gave_up.is_some() => {
            let (headline, detail) = gave_up.unwrap_or_default();
            (lang.t(headline), lang.t(detail).to_string())
        }
        PaymentStatus::Created | PaymentStatus::Pending => (
            lang.t("payment.confirming"),
            lang.t("payment.confirming_detail").to_string(),
        ),
        PaymentStatus::Paid => (
            lang.t("payment.confirmed"),
            lang.tf(
                "payment.confirmed_detail",
                &[("amount", &amount.to_string())],
            ),
        ),
        PaymentStatus::Failed => (
            lang.t("payment.refused"),
            lang.t("payment.refused_detail").to_string(),
        ),
        PaymentStatus::Cancelled => (
            lang.t("payment.cancelled"),
            lang.t("payment.cancelled_detail").to_string(),
        ),
        PaymentStatus::Expired => (
            lang.t("payment.expired"),
            lang.t("payment.expired_detail").to_string(),
        ),
        PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded => (
            lang.t("payment.refunded"),
            lang.t("payment.refunded_detail").to_string(),
        ),
    };
    let view = PaymentView {
        layout: current.layout(&state),
        id: payment.id.clone(),
        waiting: payment.status.is_open() && gave_up.is_none(),
        headline,
        detail,
        amount: amount.to_string(),
        gateway: gateways
            .get(&payment.gateway)
            .map_or_else(|| payment.gateway.clone(), |g| g.display_name().to_string()),
        status: payment.status.label_fr(),
        status_class: status_class(payment.status),
        receipt: payment.paid_at.as_ref().map(|paid_at| ReceiptView {
            association: state.settings.association_name.clone(),
            payer: current.user.full_name(),
            email: current.user.email.clone(),
            paid_on: crate::domain::local_date(paid_at),
            reference: payment.id.clone(),
            refunded: payment
                .refunded
                .is_positive()
                .then(|| payment.refunded.to_string()),
        }),
    };
    Ok(render(StatusCode::OK, &view))
}

/// `/payments/{id}/return`: where gateways send the member back, by GET or by a cross-site
/// POST (PayZen posts its answer). The session cookie (SameSite=Lax) does not come with a
/// cross-site POST, so nothing is read or changed here: the browser is sent on to the payment
/// page, keeping only the hint of why it came back.
pub async fn gateway_return(id: web::Path<String>, hint: web::Query<ReturnHint>) -> HttpResponse {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let location = match hint.retour.as_deref() {
        Some(retour @ ("abandon" | "erreur")) => format!("/payments/{id}?retour={retour}"),
        _ => format!("/payments/{id}?retour=ok"),
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}
