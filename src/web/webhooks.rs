//! `POST /webhooks/{gateway}`: gateways' server-to-server notifications. Stored first, then
//! verified by the gateway's connector, then applied by the one writer of payment state.
//! 2xx once handled (or a known duplicate), 4xx for what is not authentic or unreadable,
//! 5xx only when obole could not store or verify it, so that the gateway retries.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::gateways::{IncomingNotification, NotificationError};
use crate::web::AppState;
use crate::{notifications, payments};

pub async fn receive(
    state: web::Data<AppState>,
    request: HttpRequest,
    gateway: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    // A gateway no longer offered to members still answers for the payments made with it.
    let Some(gateway) = state.gateways.current().get(&gateway).cloned() else {
        return HttpResponse::NotFound().body("unknown gateway");
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let remote = request.peer_addr().map(|a| a.ip().to_string());
    let notification_id = match notifications::record(
        &state.pool,
        gateway.id(),
        remote.as_deref(),
        &headers,
        &body,
    )
    .await
    {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = ?e, gateway = gateway.id(), "could not store a notification");
            return HttpResponse::ServiceUnavailable().body("try again later");
        }
    };

    let incoming = IncomingNotification {
        headers: &headers,
        body: &body,
    };
    let report = match gateway.verify_notification(&incoming).await {
        Ok(Some(report)) => report,
        Ok(None) => {
            let _ = notifications::set_verdict(
                &state.pool,
                &notification_id,
                "ignored",
                Some("authentic, about nothing obole tracks"),
                None,
                None,
            )
            .await;
            return HttpResponse::Ok().body("ignored");
        }
        Err(error) => {
            let (response, verdict) = match &error {
                NotificationError::Forged(_) => (HttpResponse::Unauthorized(), "rejected"),
                NotificationError::Malformed(_) => (HttpResponse::BadRequest(), "malformed"),
                NotificationError::Unverifiable(_) => {
                    (HttpResponse::ServiceUnavailable(), "unverifiable")
                }
            };
            tracing::warn!(gateway = gateway.id(), error = ?error, "notification not accepted");
            let _ = notifications::set_verdict(
                &state.pool,
                &notification_id,
                verdict,
                Some(&error.to_string()),
                None,
                None,
            )
            .await;
            let mut response = response;
            return response.body(verdict);
        }
    };

    match payments::apply_report(
        &state.pool,
        &state.settings.accounts,
        gateway.id(),
        gateway.display_name(),
        &report,
    )
    .await
    {
        Ok(applied) => {
            tracing::info!(gateway = gateway.id(), verdict = %applied.verdict(), "notification handled");
            if let Err(e) = notifications::set_verdict(
                &state.pool,
                &notification_id,
                &applied.verdict(),
                None,
                report.event_id.as_deref(),
                applied.payment_id(),
            )
            .await
            {
                tracing::warn!(error = ?e, "could not record a notification verdict");
            }
            HttpResponse::Ok().body("ok")
        }
        Err(e) => {
            tracing::error!(error = ?e, gateway = gateway.id(), "could not apply a notification");
            HttpResponse::ServiceUnavailable().body("try again later")
        }
    }
}
