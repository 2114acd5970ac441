//! Choosing a password from a mailed link (invitation or reset), and asking for a reset link.
//! The token travels in the link's query string and in a hidden field; it is never logged.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::auth::anonymous_layout;
use super::{AppError, AppState, Layout, SessionExt, render, see_other};
use crate::domain::Email;
use crate::password_links::{self, LinkError, MIN_PASSWORD_CHARS, ResetRequestError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/password/set", web::get().to(set_form))
        .route("/password/set", web::post().to(set))
        .route("/password/forgot", web::get().to(forgot_form))
        .route("/password/forgot", web::post().to(forgot));
}

#[derive(Template)]
#[template(path = "password_set.html")]
struct SetView {
    layout: Layout,
    token: String,
    /// Whom the link is for, when it is valid.
    first_name: Option<String>,
    invitation: bool,
    link_error: Option<String>,
    error: Option<String>,
    min_chars: usize,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The page for a link that can no longer be used, or the error page.
fn dead_link(
    state: &AppState,
    session: &Session,
    error: LinkError,
) -> Result<HttpResponse, AppError> {
    let status = match error {
        LinkError::Unknown => StatusCode::BAD_REQUEST,
        LinkError::Used | LinkError::Expired | LinkError::Inactive => StatusCode::GONE,
        LinkError::Unexpected(e) => return Err(AppError::Unexpected(e)),
    };
    let view = SetView {
        layout: anonymous_layout(state, session),
        token: String::new(),
        first_name: None,
        invitation: false,
        link_error: Some(error.to_string()),
        error: None,
        min_chars: MIN_PASSWORD_CHARS,
    };
    Ok(render(status, &view))
}

pub async fn set_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    match password_links::check(&state.pool, &query.token).await {
        Ok(holder) => {
            let lang = super::lang::for_mailed_link(&state, &session, &holder.user_id).await?;
            Ok(crate::i18n::sync_scope(lang, || {
                let view = SetView {
                    layout: anonymous_layout(&state, &session),
                    token: query.token.clone(),
                    first_name: Some(holder.first_name),
                    invitation: holder.invitation,
                    link_error: None,
                    error: None,
                    min_chars: MIN_PASSWORD_CHARS,
                };
                render(StatusCode::OK, &view)
            }))
        }
        Err(error) => dead_link(&state, &session, error),
    }
}

#[derive(Deserialize)]
pub struct SetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn set(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<SetForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf_token)?;
    if let Err(problem) = password_links::check_new_password(&form.password, &form.confirmation) {
        return match password_links::check(&state.pool, &form.token).await {
            Ok(holder) => {
                let view = SetView {
                    layout: anonymous_layout(&state, &session),
                    token: form.token,
                    first_name: Some(holder.first_name),
                    invitation: holder.invitation,
                    link_error: None,
                    error: Some(problem.to_string()),
                    min_chars: MIN_PASSWORD_CHARS,
                };
                Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &view))
            }
            Err(error) => dead_link(&state, &session, error),
        };
    }
    match password_links::set_password(&state.pool, &form.token, SecretString::from(form.password))
        .await
    {
        Ok(holder) => {
            tracing::info!(user_id = %holder.user_id, "password chosen from a mailed link");
            session.set_flash("info", crate::i18n::current().t("password.saved"));
            Ok(see_other("/login"))
        }
        Err(error) => dead_link(&state, &session, error),
    }
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotView {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub async fn forgot_form(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let view = ForgotView {
        layout: anonymous_layout(&state, &session),
        email: String::new(),
        error: None,
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
}

/// The same answer whether the address is an account's or not.
pub async fn forgot(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf_token)?;
    let typed: String = form
        .email
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(254)
        .collect();
    let refuse = |status: StatusCode, message: String| {
        let view = ForgotView {
            layout: anonymous_layout(&state, &session),
            email: typed.clone(),
            error: Some(message),
        };
        render(status, &view)
    };
    let email = match Email::parse(&typed) {
        Ok(email) => email,
        Err(_) => {
            let message = crate::i18n::current()
                .t("password.email_invalid")
                .to_string();
            return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message));
        }
    };
    let remote = request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    match password_links::request_reset(&state.pool, &email, &remote).await {
        Ok(()) => {
            session.set_flash("info", crate::i18n::current().t("password.reset_sent"));
            Ok(see_other("/login"))
        }
        Err(ResetRequestError::Throttled) => Ok(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            ResetRequestError::Throttled.to_string(),
        )),
        Err(ResetRequestError::Unexpected(e)) => Err(AppError::Unexpected(e)),
    }
}
