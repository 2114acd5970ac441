//! Logging in and out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::{AppError, AppState, CurrentUser, Layout, SessionExt, render, see_other};
use crate::accounts::{self, LoginError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginView {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub(super) fn anonymous_layout(state: &AppState, session: &Session) -> Layout {
    Layout {
        association: state.settings.association_name.clone(),
        user_name: None,
        is_manager: false,
        flash: session.take_flash(),
        csrf_token: session.csrf_token(),
        lang: crate::i18n::current(),
        path: crate::i18n::current_path(),
        logo: state.logo.is_some(),
    }
}

/// `/`: wherever the visitor belongs.
pub async fn home(user: Result<CurrentUser, AppError>) -> HttpResponse {
    match user {
        Ok(current) if current.user.role.is_manager() => see_other("/admin"),
        Ok(_) => see_other("/basket"),
        Err(_) => see_other("/login"),
    }
}

pub async fn login_form(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let view = LoginView {
        layout: anonymous_layout(&state, &session),
        email: String::new(),
        error: None,
    };
    render(StatusCode::OK, &view)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf_token)?;
    let remote = request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let result = accounts::authenticate(
        &state.pool,
        &state.settings,
        &form.email,
        SecretString::from(form.password),
        &remote,
    )
    .await;
    match result {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "login");
            let visitor_lang = super::lang::visitor_choice(&session);
            session.log_in(&user.id)?;
            super::lang::at_login(&state, &session, &user.id, visitor_lang).await?;
            Ok(see_other(if user.role.is_manager() {
                "/admin"
            } else {
                "/basket"
            }))
        }
        Err(LoginError::Unexpected(e)) => Err(AppError::Unexpected(e)),
        Err(error) => {
            let (status, message) = match error {
                LoginError::Throttled => (StatusCode::TOO_MANY_REQUESTS, "auth.throttled"),
                _ => (StatusCode::UNAUTHORIZED, "auth.invalid_credentials"),
            };
            let view = LoginView {
                layout: anonymous_layout(&state, &session),
                email: form
                    .email
                    .trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(254)
                    .collect(),
                error: Some(crate::i18n::current().t(message).to_string()),
            };
            Ok(render(status, &view))
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn logout(
    session: Session,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    session.check_csrf(&form.csrf_token)?;
    // Logging out forgets the user, not the language the pages were read in.
    let lang = super::lang::visitor_choice(&session);
    session.clear();
    session.renew();
    if let Some(lang) = lang {
        session
            .insert(super::lang::LANG_KEY, lang.code())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    }
    session.set_flash("info", crate::i18n::current().t("auth.logged_out"));
    Ok(see_other("/login"))
}
