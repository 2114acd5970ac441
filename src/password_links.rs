//! Links that let a person choose a password: the invitation of a new member and the reset of
//! a forgotten password. A link holds a random token; only its SHA-256 is stored. The token is
//! made when the mail is sent (the outbox holds no token), is used once, and expires.

use anyhow::Context;
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::accounts;
use crate::db::{self, Pool, Tx};
use crate::domain::Email;
use crate::i18n::Lang;
use crate::mail::{self, MailContent};

pub const INVITATION_VALIDITY_DAYS: i64 = 7;
pub const RESET_VALIDITY_MINUTES: i64 = 60;
pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 200;
/// Reset requests allowed per typed address and per client address in the window.
pub const RESETS_PER_ACCOUNT: i64 = 3;
pub const RESETS_PER_ADDRESS: i64 = 10;
const RESET_WINDOW_SECS: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Invitation,
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Invitation => "invitation",
            Purpose::Reset => "reset",
        }
    }

    fn validity(self) -> time::Duration {
        match self {
            Purpose::Invitation => time::Duration::days(INVITATION_VALIDITY_DAYS),
            Purpose::Reset => time::Duration::minutes(RESET_VALIDITY_MINUTES),
        }
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A password hash nobody can match, for people who have not chosen a password yet: it has
/// argon2id's shape and parameters (so a login attempt costs as much as any other) but a
/// random digest of no known password.
pub fn unusable_hash() -> String {
    let params = argon2::Params::default();
    let mut salt = [0u8; 16];
    let mut digest = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut digest);
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(digest)
    )
}

/// Makes a token for an active person and stores its hash; the mail worker calls this as it
/// writes the mail, so the token exists only in memory and in the mail.
pub async fn issue(pool: &Pool, user_id: &str, purpose: Purpose) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = time::OffsetDateTime::now_utc();
    let inserted = sqlx::query(
        "INSERT INTO password_tokens (token_hash, user_id, purpose, created_at, expires_at) \
         SELECT $1, id, $2, $3, $4 FROM users WHERE id = $5 AND active = 1",
    )
    .bind(hash_token(&token))
    .bind(purpose.as_str())
    .bind(db::format_timestamp(now))
    .bind(db::format_timestamp(now + purpose.validity()))
    .bind(user_id)
    .execute(pool)
    .await
    .context("could not store the password link")?;
    anyhow::ensure!(
        inserted.rows_affected() == 1,
        "no password link for an unknown or deactivated account"
    );
    Ok(token)
}

/// Queues an invitation mail in the caller's transaction.
pub async fn queue_invitation(tx: &mut Tx<'_>, user_id: &str) -> anyhow::Result<()> {
    let key = format!("invitation:{user_id}:{}", db::new_id());
    mail::enqueue(tx, &key, user_id, &MailContent::Invitation).await
}

/// Voids every link of the person not used yet (new password, new email, deactivation).
pub async fn void_outstanding(tx: &mut Tx<'_>, user_id: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE password_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(db::now_text())
        .execute(&mut **tx)
        .await
        .context("could not void the password links")?;
    Ok(())
}

#[derive(Template)]
#[template(path = "mail/invitation.txt")]
struct InvitationText<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    link: &'a str,
    days: String,
}

#[derive(Template)]
#[template(path = "mail/invitation.html")]
struct InvitationHtml<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    link: &'a str,
    days: String,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct ResetText<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    link: &'a str,
    minutes: String,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct ResetHtml<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    link: &'a str,
    minutes: String,
    forgot: &'a str,
}

/// The subject, text and HTML of a password-link mail in `lang`, with a fresh link.
pub async fn render_mail(
    pool: &Pool,
    base_url: &str,
    lang: Lang,
    association: &str,
    recipient_id: Option<&str>,
    name: &str,
    purpose: Purpose,
) -> anyhow::Result<(String, String, String)> {
    let user_id = recipient_id.context("a password link needs its recipient")?;
    let token = issue(pool, user_id, purpose).await?;
    let link = format!("{base_url}/password/set?token={token}");
    Ok(match purpose {
        Purpose::Invitation => (
            lang.tf("mail.invitation.subject", &[("association", association)]),
            InvitationText {
                lang,
                association,
                name,
                link: &link,
                days: INVITATION_VALIDITY_DAYS.to_string(),
            }
            .render()?,
            InvitationHtml {
                lang,
                association,
                name,
                link: &link,
                days: INVITATION_VALIDITY_DAYS.to_string(),
            }
            .render()?,
        ),
        Purpose::Reset => {
            let forgot = format!("{base_url}/password/forgot");
            (
                lang.tf(
                    "mail.password_reset.subject",
                    &[("association", association)],
                ),
                ResetText {
                    lang,
                    association,
                    name,
                    link: &link,
                    minutes: RESET_VALIDITY_MINUTES.to_string(),
                    forgot: &forgot,
                }
                .render()?,
                ResetHtml {
                    lang,
                    association,
                    name,
                    link: &link,
                    minutes: RESET_VALIDITY_MINUTES.to_string(),
                    forgot: &forgot,
                }
                .render()?,
            )
        }
    })
}

/// Why a link cannot be used; the message is in the reader's language.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{}", crate::i18n::current().t("password.link_unknown"))]
    Unknown,
    #[error("{}", crate::i18n::current().t("password.link_used"))]
    Used,
    #[error("{}", crate::i18n::current().t("password.link_expired"))]
    Expired,
    #[error("{}", crate::i18n::current().t("password.account_inactive"))]
    Inactive,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Who a valid link is for.
#[derive(Debug, Clone)]
pub struct LinkHolder {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub invitation: bool,
}

/// The person a link is for, if it can still be used.
pub async fn check(pool: &Pool, token: &str) -> Result<LinkHolder, LinkError> {
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(LinkError::Unknown);
    }
    let row = sqlx::query(
        "SELECT t.user_id, t.purpose, t.expires_at, t.used_at, u.email, u.first_name, u.active \
         FROM password_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
    )
    .bind(hash_token(token))
    .fetch_optional(pool)
    .await
    .context("could not look the link up")?
    .ok_or(LinkError::Unknown)?;
    let used_at: Option<String> = row.try_get("used_at").context("used_at")?;
    let expires_at: String = row.try_get("expires_at").context("expires_at")?;
    if used_at.is_some() {
        return Err(LinkError::Used);
    }
    if expires_at <= db::now_text() {
        return Err(LinkError::Expired);
    }
    if row.try_get::<i64, _>("active").context("active")? != 1 {
        return Err(LinkError::Inactive);
    }
    let purpose: String = row.try_get("purpose").context("purpose")?;
    Ok(LinkHolder {
        user_id: row.try_get("user_id").context("user_id")?,
        email: row.try_get("email").context("email")?,
        first_name: row.try_get("first_name").context("first_name")?,
        invitation: purpose == Purpose::Invitation.as_str(),
    })
}

/// What is wrong with a new password; the message is in the reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("{}", crate::i18n::current().tf("password.too_short", &[("min", &MIN_PASSWORD_CHARS.to_string())]))]
    TooShort,
    #[error("{}", crate::i18n::current().tf("password.too_long", &[("max", &MAX_PASSWORD_CHARS.to_string())]))]
    TooLong,
    #[error("{}", crate::i18n::current().t("password.mismatch"))]
    Mismatch,
}

/// A new password as typed twice.
pub fn check_new_password(password: &str, confirmation: &str) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        Err(PasswordError::TooShort)
    } else if length > MAX_PASSWORD_CHARS {
        Err(PasswordError::TooLong)
    } else if password != confirmation {
        Err(PasswordError::Mismatch)
    } else {
        Ok(())
    }
}

/// Uses the link: sets the password (hashed on the blocking pool), voids this link and every
/// other outstanding link of the person, and lifts the login throttle of their account.
pub async fn set_password(
    pool: &Pool,
    token: &str,
    password: SecretString,
) -> Result<LinkHolder, LinkError> {
    let holder = check(pool, token).await?;
    let hash = accounts::hash_password(password).await?;
    let now = db::now_text();
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let claimed = sqlx::query(
        "UPDATE password_tokens SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(hash_token(token))
    .bind(&now)
    .execute(&mut *tx)
    .await
    .context("could not use the link")?;
    if claimed.rows_affected() != 1 {
        tx.rollback().await.ok();
        // Used (or expired) in the meantime: say which.
        return Err(check(pool, token).await.err().unwrap_or(LinkError::Used));
    }
    let updated = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1 AND active = 1")
        .bind(&holder.user_id)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .context("could not store the password")?;
    if updated.rows_affected() != 1 {
        tx.rollback().await.ok();
        return Err(LinkError::Inactive);
    }
    void_outstanding(&mut tx, &holder.user_id).await?;
    sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
        .bind(format!("account:{}", holder.email))
        .execute(&mut *tx)
        .await
        .context("could not reset the login throttle")?;
    tx.commit().await.context("could not store the password")?;
    Ok(holder)
}

#[derive(Debug, thiserror::Error)]
pub enum ResetRequestError {
    #[error("{}", crate::i18n::current().t("password.reset_throttled"))]
    Throttled,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A forgotten password: mails a reset link when the address is an active account's. Known
/// and unknown addresses count alike against the limits, and the caller answers alike.
pub async fn request_reset(
    pool: &Pool,
    email: &Email,
    remote_addr: &str,
) -> Result<(), ResetRequestError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let since = now - RESET_WINDOW_SECS;
    let account_key = format!("account:{}", email.as_str());
    let address_key = format!("address:{remote_addr}");
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    sqlx::query("DELETE FROM password_requests WHERE at_unix <= $1")
        .bind(since)
        .execute(&mut *tx)
        .await
        .context("could not prune the reset throttle")?;
    if count_requests(&mut tx, &address_key, since).await? >= RESETS_PER_ADDRESS {
        tx.commit().await.context("could not prune the throttle")?;
        return Err(ResetRequestError::Throttled);
    }
    let account_requests = count_requests(&mut tx, &account_key, since).await?;
    for key in [&account_key, &address_key] {
        sqlx::query("INSERT INTO password_requests (throttle_key, at_unix) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("could not record the reset request")?;
    }
    if account_requests < RESETS_PER_ACCOUNT {
        let user = sqlx::query("SELECT id FROM users WHERE email = $1 AND active = 1")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("could not look the account up")?;
        if let Some(user) = user {
            let user_id: String = user.try_get("id").context("user id")?;
            let key = format!("reset:{user_id}:{}", db::new_id());
            mail::enqueue(&mut tx, &key, &user_id, &MailContent::PasswordReset).await?;
        }
    }
    tx.commit()
        .await
        .context("could not record the reset request")?;
    Ok(())
}

async fn count_requests(tx: &mut Tx<'_>, key: &str, since: i64) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM password_requests WHERE throttle_key = $1 AND at_unix > $2",
    )
    .bind(key)
    .bind(since)
    .fetch_one(&mut **tx)
    .await
    .context("could not read the reset throttle")?;
    row.try_get::<i64, _>("n").context("reset count")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unusable_hash_parses_and_matches_nothing() {
        let stored = unusable_hash();
        let parsed = argon2::PasswordHash::new(&stored).expect("a PHC string");
        use argon2::PasswordVerifier;
        for guess in ["", "password", "obole decoy password"] {
            assert!(
                argon2::Argon2::default()
                    .verify_password(guess.as_bytes(), &parsed)
                    .is_err()
            );
        }
        assert_ne!(stored, unusable_hash());
    }

    #[test]
    fn new_passwords_are_checked() {
        assert_eq!(
            check_new_password("court", "court"),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            check_new_password("assez-long-1", "assez-long-2"),
            Err(PasswordError::Mismatch)
        );
        assert!(check_new_password("assez-long-1", "assez-long-1").is_ok());
    }

    #[test]
    fn only_the_hash_of_a_token_is_kept() {
        let hash = hash_token("abc");
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("abc"));
    }
}
