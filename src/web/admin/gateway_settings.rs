//! Admins save a gateway's settings (`POST /admin/gateways/{id}`) and test its connection
//! (`POST /admin/gateways/{id}/test`). Secrets typed in are never shown back nor logged.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::gateways::{Refused, page, set_notice};
use crate::gateway_settings::{self, Change, SaveError};
use crate::gateways::GatewayError;
use crate::web::session::AdminUser;
use crate::web::{AppError, AppState, SessionExt, see_other};

/// The form's fields by name: checkboxes are present or absent, credentials are `cred_<name>`.
struct SaveForm(HashMap<String, String>);

impl SaveForm {
    fn text(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    fn checked(&self, name: &str) -> bool {
        !self.text(name).is_empty()
    }
}

pub async fn save(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let gateway = gateway_settings::known(&id).ok_or(AppError::NotFound)?;
    let lang = crate::i18n::current();
    let form = SaveForm(form.into_inner().into_iter().collect());
    current.session.check_csrf(form.text("csrf_token"))?;
    let revision = form
        .text("revision")
        .parse::<i64>()
        .map_err(|_| AppError::BadRequest(lang.t("gateway_settings.incomplete").into()))?;
    for name in form.0.keys() {
        if let Some(field) = name.strip_prefix("cred_")
            && gateway_settings::field_of(gateway, field).is_none()
        {
            return Err(AppError::BadRequest(
                lang.tf("gateway_settings.unknown_field", &[("field", field)]),
            ));
        }
    }

    let enabled = form.checked("enabled");
    // The sandbox's box is shown checked and cannot be unchecked.
    let test_mode = form.checked("test_mode") || gateway == "sandbox";
    let is_default = form.checked("is_default");
    let typed = gateway_settings::fields_of(gateway)
        .iter()
        .filter(|f| !f.secret)
        .map(|f| (f.name, form.text(&format!("cred_{}", f.name)).to_string()))
        .collect();
    let refuse = |message: String| Refused {
        gateway,
        message,
        enabled,
        test_mode,
        position: form.text("position").chars().take(10).collect(),
        is_default,
        typed,
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    let position = match form.text("position").parse::<i64>() {
        Ok(p) if (1..=99).contains(&p) => p,
        _ => {
            let message = lang.t("gateway_settings.bad_position").to_string();
            return page(&state, &current, unprocessable, Some(refuse(message))).await;
        }
    };
    let mut values = Vec::new();
    for field in gateway_settings::fields_of(gateway) {
        let value = form.text(&format!("cred_{}", field.name));
        if value.is_empty() {
            continue;
        }
        if let Err(message) = gateway_settings::check(gateway, field, value) {
            return page(&state, &current, unprocessable, Some(refuse(message))).await;
        }
        values.push((*field, SecretString::from(value)));
    }
    let change = Change {
        enabled,
        test_mode,
        position,
        is_default,
        forget: form.checked("forget_credentials"),
        values,
        revision,
    };
    let setup = &state.gateway_setup;
    let name = setup.connector(&state.settings, gateway)?.display_name();
    let back = format!("/admin/gateways#gateway-{gateway}");
    match setup
        .save(&state.pool, gateway, change, &current.user.id)
        .await
    {
        Ok(outcome) => {
            let mut message = lang.tf("gateway_settings.saved", &[("name", name)]);
            if !outcome.credentials_changed.is_empty() {
                let labels: Vec<&str> = outcome
                    .credentials_changed
                    .iter()
                    .map(|n| {
                        gateway_settings::field_of(gateway, n).map_or(n.as_str(), |f| f.label())
                    })
                    .collect();
                message.push_str(&lang.tf(
                    "gateway_settings.credentials_changed",
                    &[("fields", &labels.join(", "))],
                ));
            }
            match setup.reload(&state.pool, &state.gateways).await {
                Ok(()) if state.gateways.current().all().is_empty() => {
                    message.push_str(lang.t("gateway_settings.none_offered"));
                }
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(error = ?error, "saved gateway settings could not be applied at once");
                    message.push_str(lang.t("gateway_settings.applied_soon"));
                }
            }
            set_notice(&current.session, gateway, "info", &message);
            Ok(see_other(&back))
        }
        Err(SaveError::Invalid(message)) => {
            page(&state, &current, unprocessable, Some(refuse(message))).await
        }
        Err(SaveError::Conflict) => {
            set_notice(
                &current.session,
                gateway,
                "error",
                &lang.tf("gateway_settings.conflict", &[("name", name)]),
            );
            Ok(see_other(&back))
        }
        Err(SaveError::Unexpected(error)) => Err(AppError::Unexpected(error)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// Calls the gateway once with the saved settings and says plainly how it went.
pub async fn test_connection(
    state: web::Data<AppState>,
    AdminUser(current): AdminUser,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    let gateway = gateway_settings::known(&id).ok_or(AppError::NotFound)?;
    current.session.check_csrf(&form.csrf_token)?;
    let lang = crate::i18n::current();
    let setup = &state.gateway_setup;
    let snapshot = setup.snapshot(&state.pool).await?;
    let connector = setup.connector(&snapshot.settings, gateway)?;
    let name = connector.display_name();
    let back = format!("/admin/gateways#gateway-{gateway}");
    if snapshot.get(gateway).and_then(|g| g.lock()).is_some() {
        set_notice(
            &current.session,
            gateway,
            "error",
            &lang.tf("gateway_settings.test_locked", &[("name", name)]),
        );
        return Ok(see_other(&back));
    }
    let (level, message) = match connector.check_connection().await {
        Ok(check) => {
            let mode = lang.t(if check.live {
                "gateway_settings.live_mode"
            } else {
                "gateway_settings.test_mode"
            });
            (
                "info",
                lang.tf(
                    "gateway_settings.test_ok",
                    &[("mode", mode), ("name", name)],
                ),
            )
        }
        Err(GatewayError::Rejected(reason)) => (
            "error",
            lang.tf(
                "gateway_settings.test_refused",
                &[("name", name), ("reason", &reason)],
            ),
        ),
        Err(GatewayError::Unavailable(error)) => {
            tracing::warn!(gateway, error = ?error, "connection test: gateway unreachable");
            (
                "error",
                lang.tf("gateway_settings.test_unreachable", &[("name", name)]),
            )
        }
        Err(GatewayError::Unsupported(_)) => (
            "error",
            lang.tf("gateway_settings.test_unsupported", &[("name", name)]),
        ),
    };
    set_notice(&current.session, gateway, level, &message);
    Ok(see_other(&back))
}
