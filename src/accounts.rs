//! People who log in: members, managers, admins. Password hashing and login throttling.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::{Email, Role};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub first_name: String,
    pub last_name: String,
}

impl User {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
    })
}

/// An active user by id (a deactivated user's session stops working at once).
pub async fn find_active(pool: &Pool, id: &str) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(
        "SELECT id, email, role, first_name, last_name FROM users WHERE id = $1 AND active = 1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("could not load the user")?;
    row.map(|r| user_from_row(&r))
        .transpose()
        .context("could not read the user")
}

/// A user by id, active or not (for managers' pages).
pub async fn find_any(pool: &Pool, id: &str) -> anyhow::Result<Option<User>> {
    let row = sqlx::query("SELECT id, email, role, first_name, last_name FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .context("could not load the user")?;
    row.map(|r| user_from_row(&r))
        .transpose()
        .context("could not read the user")
}

/// The language the user chose for pages and mails (`users.locale`), if any (and offered).
pub async fn saved_lang(pool: &Pool, id: &str) -> anyhow::Result<Option<crate::i18n::Lang>> {
    let saved: Option<String> = sqlx::query_scalar("SELECT locale FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .context("could not read the user's language")?
        .flatten();
    Ok(saved.as_deref().and_then(crate::i18n::Lang::parse))
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub password: SecretString,
    pub role: Role,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// Creates the user unless the email is taken; returns the id of the user with that email.
pub async fn create_user(pool: &Pool, new: NewUser<'_>) -> anyhow::Result<String> {
    if let Some(id) = id_by_email(pool, new.email).await? {
        return Ok(id);
    }
    let hash = hash_password(new.password).await?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, first_name, last_name, active, created_at, name_key) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8) ON CONFLICT (email) DO NOTHING",
    )
    .bind(db::new_id())
    .bind(new.email.as_str())
    .bind(hash)
    .bind(new.role.as_str())
    .bind(new.first_name)
    .bind(new.last_name)
    .bind(db::now_text())
    .bind(crate::domain::name_key(new.first_name, new.last_name))
    .execute(pool)
    .await
    .context("could not create the user")?;
    id_by_email(pool, new.email)
        .await?
        .context("the user vanished right after being created")
}

pub async fn id_by_email(pool: &Pool, email: &Email) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT id FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
        .context("could not look the user up")?;
    row.map(|r| r.try_get::<String, _>("id"))
        .transpose()
        .context("could not read the user id")
}

/// argon2id holds about 19 MiB and a core for tens of milliseconds: at most this many run at
/// once (by default half the cores), so that a storm of logins neither starves the pages of
/// CPU nor swells memory; the others wait their turn without holding a worker.
static HASHING: OnceLock<tokio::sync::Semaphore> = OnceLock::new();

/// Sets how many password hashes may run at once; only the first call counts.
pub fn limit_hashing(at_once: usize) {
    let _ = HASHING.set(tokio::sync::Semaphore::new(at_once.max(1)));
}

fn hashing() -> &'static tokio::sync::Semaphore {
    HASHING.get_or_init(|| tokio::sync::Semaphore::new(default_hashing_limit()))
}

pub fn default_hashing_limit() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// argon2id, on the blocking pool so that the async workers keep serving.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    let _turn = hashing()
        .acquire()
        .await
        .context("password hashing closed")?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("could not hash the password: {e}"))
    })
    .await
    .context("the hashing task failed")?
}

fn verify_password(stored: &str, candidate: &SecretString) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(candidate.expose_secret().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing in particular, verified when the email is unknown so that an unknown
/// address takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"obole decoy password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("Adresse e-mail ou mot de passe incorrect.")]
    InvalidCredentials,
    #[error("Trop de tentatives de connexion. Réessayez dans quelques minutes.")]
    Throttled,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub async fn authenticate(
    pool: &Pool,
    settings: &Settings,
    email_input: &str,
    password: SecretString,
    remote_addr: &str,
) -> Result<User, LoginError> {
    let email = Email::parse(email_input).ok();
    // Whatever was typed names the throttle, but no control character reaches storage.
    let typed: String = email_input
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(254)
        .collect();
    let account_key = format!(
        "account:{}",
        email.as_ref().map_or(typed.as_str(), Email::as_str)
    );
    let address_key = format!("address:{remote_addr}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let since = now - settings.login_throttle_window_secs;
    let attempt = begin_attempt(
        pool,
        &[
            (&account_key, settings.login_max_failures_per_account),
            (&address_key, settings.login_max_failures_per_address),
        ],
        now,
        since,
    )
    .await?
    .ok_or(LoginError::Throttled)?;

    let row = match &email {
        Some(email) => sqlx::query(
            "SELECT id, email, role, first_name, last_name, password_hash FROM users \
             WHERE email = $1 AND active = 1",
        )
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
        .context("could not look the user up")?,
        None => None,
    };
    let (user, stored_hash) = match row {
        Some(row) => (
            Some(user_from_row(&row).context("could not read the user")?),
            row.try_get::<String, _>("password_hash")
                .context("could not read the password hash")?,
        ),
        None => (None, String::new()),
    };
    let turn = hashing()
        .acquire()
        .await
        .context("password hashing closed")?;
    let verified = tokio::task::spawn_blocking(move || {
        let hash = if stored_hash.is_empty() {
            decoy_hash()
        } else {
            &stored_hash
        };
        verify_password(hash, &password)
    })
    .await
    .context("the password check failed")?;
    drop(turn);

    match user {
        Some(user) if verified => {
            // The account's failures are forgiven; the address keeps its other attempts.
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1 OR attempt = $2")
                .bind(&account_key)
                .bind(&attempt)
                .execute(pool)
                .await
                .context("could not reset the login throttle")?;
            Ok(user)
        }
        // The attempt's rows stay: they are the failure's record.
        _ => Err(LoginError::InvalidCredentials),
    }
}

/// Writes the attempt against each throttle key, commits, then counts: an attempt that finds
/// more than the limit in the window (itself included) is removed and refused. The write comes
/// first and is committed before the count, so of guesses sent at the same moment at most the
/// limit get their password checked: the one committed k-th counts at least k.
async fn begin_attempt(
    pool: &Pool,
    limits: &[(&str, i64)],
    now: i64,
    since: i64,
) -> anyhow::Result<Option<String>> {
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    for (key, _) in limits {
        sqlx::query(
            "INSERT INTO login_failures (throttle_key, at_unix, attempt) VALUES ($1, $2, $3)",
        )
        .bind(*key)
        .bind(now)
        .bind(&attempt)
        .execute(&mut *tx)
        .await
        .context("could not record a login attempt")?;
    }
    tx.commit()
        .await
        .context("could not record a login attempt")?;
    // Rows out of the window are pruned on the way, outside the attempt's transaction: two
    // attempts pruning at once must not be able to fail a login (a deadlock, say).
    if let Err(error) = sqlx::query("DELETE FROM login_failures WHERE at_unix <= $1")
        .bind(since)
        .execute(pool)
        .await
    {
        tracing::warn!(%error, "could not prune the login throttle");
    }

    for (key, limit) in limits {
        if recent_failures(pool, key, since).await? > *limit {
            sqlx::query("DELETE FROM login_failures WHERE attempt = $1")
                .bind(&attempt)
                .execute(pool)
                .await
                .context("could not withdraw a throttled attempt")?;
            return Ok(None);
        }
    }
    Ok(Some(attempt))
}

async fn recent_failures(pool: &Pool, key: &str, since: i64) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM login_failures WHERE throttle_key = $1 AND at_unix > $2",
    )
    .bind(key)
    .bind(since)
    .fetch_one(pool)
    .await
    .context("could not read the login throttle")?;
    row.try_get::<i64, _>("n")
        .context("could not read the failure count")
}
