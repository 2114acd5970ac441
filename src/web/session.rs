//! The session (a signed and encrypted cookie): who is logged in, the CSRF token, one flash.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt as _};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{AppError, AppState, Layout};
use crate::accounts::{self, User};

pub(super) const USER_KEY: &str = "user_id";
const CSRF_KEY: &str = "csrf";
const FLASH_KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: String,
    pub message: String,
}

pub trait SessionExt {
    fn csrf_token(&self) -> String;
    fn check_csrf(&self, submitted: &str) -> Result<(), AppError>;
    fn set_flash(&self, level: &str, message: &str);
    fn take_flash(&self) -> Option<Flash>;
    fn log_in(&self, user_id: &str) -> Result<(), AppError>;
}

impl SessionExt for Session {
    /// The session's CSRF token, created on first use.
    fn csrf_token(&self) -> String {
        if let Ok(Some(token)) = self.get::<String>(CSRF_KEY) {
            return token;
        }
        let token = random_token();
        let _ = self.insert(CSRF_KEY, &token);
        token
    }

    fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        let expected = self.get::<String>(CSRF_KEY).ok().flatten();
        match expected {
            Some(expected) if constant_time_eq(expected.as_bytes(), submitted.as_bytes()) => Ok(()),
            _ => Err(AppError::Csrf),
        }
    }

    fn set_flash(&self, level: &str, message: &str) {
        let _ = self.insert(
            FLASH_KEY,
            Flash {
                level: level.into(),
                message: message.into(),
            },
        );
    }

    fn take_flash(&self) -> Option<Flash> {
        // Removing marks the session changed, and a changed session is encrypted and sent
        // again: only when there is a flash to take.
        if !self.entries().contains_key(FLASH_KEY) {
            return None;
        }
        self.remove_as::<Flash>(FLASH_KEY).and_then(Result::ok)
    }

    /// A new session for the user: nothing of the anonymous one survives, and a fresh CSRF
    /// token is issued.
    fn log_in(&self, user_id: &str) -> Result<(), AppError> {
        self.clear();
        self.renew();
        self.insert(USER_KEY, user_id)
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
        self.insert(CSRF_KEY, random_token())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
        Ok(())
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in, active user. Anonymous visitors are sent to the login page.
pub struct CurrentUser {
    pub user: User,
    pub session: Session,
}

impl CurrentUser {
    pub fn layout(&self, state: &AppState) -> Layout {
        Layout {
            association: state.settings.association_name.clone(),
            user_name: Some(self.user.full_name()),
            is_manager: self.user.role.is_manager(),
            flash: self.session.take_flash(),
            csrf_token: self.session.csrf_token(),
            lang: crate::i18n::current(),
            path: crate::i18n::current_path(),
            logo: state.logo.is_some(),
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no state")))?;
            let user_id = session
                .get::<String>(USER_KEY)
                .ok()
                .flatten()
                .ok_or(AppError::LoginRequired)?;
            match accounts::find_active(&state.pool, &user_id).await? {
                Some(user) => Ok(CurrentUser { user, session }),
                None => {
                    session.purge();
                    Err(AppError::LoginRequired)
                }
            }
        })
    }
}

/// A logged-in manager or admin; members get a 403.
pub struct ManagerUser(pub CurrentUser);

impl FromRequest for ManagerUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let current = current.await?;
            if current.user.role.is_manager() {
                Ok(ManagerUser(current))
            } else {
                Err(AppError::Forbidden)
            }
        })
    }
}

/// A logged-in admin (manages users' roles and gateway settings); others get a 403.
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let current = current.await?;
            if current.user.role == crate::domain::Role::Admin {
                Ok(AdminUser(current))
            } else {
                Err(AppError::Forbidden)
            }
        })
    }
}
