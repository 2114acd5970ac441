//! One place that turns errors into pages: a clear message for the person, the whole cause
//! chain (with a request id they can quote) for the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("login required")]
    LoginRequired,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A request refused before any handler read it: its status and the key of its message.
    #[error("refused input: {1}")]
    Input(StatusCode, &'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorView<'a> {
    lang: crate::i18n::Lang,
    status: u16,
    title: &'a str,
    message: &'a str,
    request_id: Option<&'a str>,
}

impl AppError {
    pub fn into_response(self) -> HttpResponse {
        self.error_response()
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Input(status, _) => *status,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let lang = crate::i18n::current();
        let request_id;
        let (title, message, id) = match self {
            AppError::LoginRequired => {
                return HttpResponse::SeeOther()
                    .insert_header(("Location", "/login"))
                    .finish();
            }
            AppError::Forbidden => (
                lang.t("error.forbidden_title"),
                lang.t("error.forbidden"),
                None,
            ),
            AppError::NotFound => (
                lang.t("error.not_found_title"),
                lang.t("error.not_found"),
                None,
            ),
            AppError::Csrf => (lang.t("error.csrf_title"), lang.t("error.csrf"), None),
            AppError::BadRequest(message) => {
                (lang.t("error.bad_request_title"), message.as_str(), None)
            }
            AppError::Input(_, key) => (lang.t("error.bad_request_title"), lang.t(key), None),
            AppError::Unexpected(error) => {
                request_id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(request_id = %request_id, error = ?error, "request failed");
                (
                    lang.t("error.unexpected_title"),
                    lang.t("error.unexpected"),
                    Some(request_id.as_str()),
                )
            }
        };
        let status = self.status_code();
        let view = ErrorView {
            lang,
            status: status.as_u16(),
            title,
            message,
            request_id: id,
        };
        let body = view
            .render()
            .unwrap_or_else(|_| format!("{} {}", status.as_u16(), title));
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(body)
    }
}
