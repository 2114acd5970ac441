//! `POST /webhooks/{gateway}`: gateways' server-to-server notifications. Verified by the
//! gateway's connector, then applied by the one writer of payment state and stored with its
//! verdict in the same transaction (one durable commit), or stored alone when it changes
//! nothing; always before it is answered 2xx. 2xx once handled (or a known duplicate), 4xx
//! for what is not authentic or unreadable, 5xx only when obole could not store or verify it,
//! so that the gateway retries.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::gateways::{IncomingNotification, NotificationError};
use crate::notifications::{self, Received};
use crate::web::AppState;

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
    let notification = Received::new(gateway.id(), remote.as_deref(), &headers, &body);

    let incoming = IncomingNotification {
        headers: &headers,
        body: &body,
    };
    let report = match gateway.verify_notification(&incoming).await {
        Ok(Some(report)) => report,
        Ok(None) => {
            return stored_alone(
                &state,
                &notification,
                "ignored",
                "authentic, about nothing obole tracks",
                HttpResponse::Ok().body("ignored"),
            )
            .await;
        }
        Err(error) => {
            let (mut response, verdict) = match &error {
                NotificationError::Forged(_) => (HttpResponse::Unauthorized(), "rejected"),
                NotificationError::Malformed(_) => (HttpResponse::BadRequest(), "malformed"),
                NotificationError::Unverifiable(_) => {
                    (HttpResponse::ServiceUnavailable(), "unverifiable")
                }
            };
            tracing::warn!(gateway = gateway.id(), error = ?error, "notification not accepted");
            return stored_alone(
                &state,
                &notification,
                verdict,
                &error.to_string(),
                response.body(verdict),
            )
            .await;
        }
    };

    match state
        .notification_writer
        .apply(
            gateway.id(),
            gateway.display_name(),
            report,
            notification.clone(),
        )
        .await
    {
        Ok(applied) => {
            tracing::info!(gateway = gateway.id(), verdict = %applied.verdict(), "notification handled");
            HttpResponse::Ok().body("ok")
        }
        Err(e) => {
            tracing::error!(error = ?e, gateway = gateway.id(), "could not apply a notification");
            // Kept for the audit trail when the database allows it, without delaying the
            // answer: the gateway's retry is what gets applied.
            let pool = state.pool.clone();
            let detail = format!("{e:#}");
            tokio::spawn(async move {
                let stored =
                    notifications::store(&pool, &notification, "error", Some(&detail), None, None)
                        .await;
                if let Err(e) = stored {
                    tracing::warn!(error = ?e, "could not store a notification that failed");
                }
            });
            HttpResponse::ServiceUnavailable().body("try again later")
        }
    }
}

/// Stores a notification that changes nothing, then gives `response`; a 503 instead if it
/// could not be stored, so that the gateway sends it again.
async fn stored_alone(
    state: &AppState,
    notification: &Received,
    verdict: &str,
    detail: &str,
    response: HttpResponse,
) -> HttpResponse {
    match notifications::store(&state.pool, notification, verdict, Some(detail), None, None).await {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = ?e, "could not store a notification");
            HttpResponse::ServiceUnavailable().body("try again later")
        }
    }
}
