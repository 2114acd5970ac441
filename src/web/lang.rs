//! The language switch: a visitor's choice is kept in their session, a user's also on their
//! account (and restored at login). Every request is served in the session's language.

use actix_session::{Session, SessionExt as _};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::session::SessionExt;
use super::{AppError, AppState, see_other};
use crate::i18n::Lang;

pub const LANG_KEY: &str = "lang";

/// Serves the request in the language its session chose (French by default).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let lang = req
        .get_session()
        .get::<String>(LANG_KEY)
        .ok()
        .flatten()
        .and_then(|code| Lang::parse(&code))
        .unwrap_or_default();
    let path = match req.query_string() {
        "" => req.path().to_string(),
        query => format!("{}?{query}", req.path()),
    };
    crate::i18n::scope_request(lang, path, next.call(req)).await
}

#[derive(Deserialize)]
pub struct LangForm {
    lang: String,
    #[serde(default)]
    back: String,
    csrf_token: String,
}

/// `POST /lang`: remembers the choice and goes back to the page it was made on.
pub async fn choose(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LangForm>,
) -> Result<HttpResponse, AppError> {
    session.check_csrf(&form.csrf_token)?;
    let Some(lang) = Lang::parse(&form.lang) else {
        return Err(AppError::BadRequest(
            crate::i18n::current().t("lang.unknown").to_string(),
        ));
    };
    session
        .insert(LANG_KEY, lang.code())
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    if let Ok(Some(user_id)) = session.get::<String>(super::session::USER_KEY) {
        remember(&state, &user_id, lang).await?;
    }
    // Only a path of this site: never an open redirect.
    let back = if form.back.starts_with('/')
        && !form.back.starts_with("//")
        && !form.back.contains('\\')
    {
        form.back.as_str()
    } else {
        "/"
    };
    Ok(see_other(back))
}

async fn remember(state: &AppState, user_id: &str, lang: Lang) -> Result<(), AppError> {
    sqlx::query("UPDATE users SET locale = $1 WHERE id = $2")
        .bind(lang.code())
        .bind(user_id)
        .execute(&state.pool)
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(())
}

/// The language a visitor chose before logging in (logging in starts a new session).
pub fn visitor_choice(session: &Session) -> Option<Lang> {
    session
        .get::<String>(LANG_KEY)
        .ok()
        .flatten()
        .and_then(|c| Lang::parse(&c))
}

/// The language of a page opened from a mailed link (a payment request's, a password link): the
/// one chosen in this browser, or else the account's, which this browser then keeps. The mail
/// was written in the account's language, and its link often opens in a fresh browser.
pub async fn for_mailed_link(
    state: &AppState,
    session: &Session,
    user_id: &str,
) -> Result<Lang, AppError> {
    if let Some(lang) = visitor_choice(session) {
        return Ok(lang);
    }
    let saved = crate::accounts::saved_lang(&state.pool, user_id)
        .await
        .map_err(AppError::Unexpected)?;
    if let Some(lang) = saved {
        session
            .insert(LANG_KEY, lang.code())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    }
    Ok(saved.unwrap_or_default())
}

/// At login: the account's saved language wins; without one, the visitor's choice is kept and
/// saved on the account.
pub async fn at_login(
    state: &AppState,
    session: &Session,
    user_id: &str,
    visitor: Option<Lang>,
) -> Result<(), AppError> {
    let saved: Option<String> = sqlx::query_scalar("SELECT locale FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?
        .flatten();
    let lang = match saved.as_deref().and_then(Lang::parse) {
        Some(lang) => Some(lang),
        None => {
            if let Some(lang) = visitor {
                remember(state, user_id, lang).await?;
            }
            visitor
        }
    };
    if let Some(lang) = lang {
        session
            .insert(LANG_KEY, lang.code())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    }
    Ok(())
}
