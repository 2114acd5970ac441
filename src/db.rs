//! The connection pool for `sqlite://` or `postgres://` URLs, and the migration runner.

use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection, Executor};

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// How long a SQLite writer waits for another one before giving up (`db_busy_timeout_ms`).
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 10_000;

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Pool> {
    connect_with(url, max_connections, DEFAULT_BUSY_TIMEOUT_MS).await
}

pub async fn connect_with(
    url: &str,
    max_connections: u32,
    busy_timeout_ms: u64,
) -> anyhow::Result<Pool> {
    install_default_drivers();
    let sqlite = is_sqlite(url);
    let options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        // A connection is checked (pinged) before use only when it sat idle for a second or
        // more: under load, pages and notifications do not pay a round trip each for it. A
        // SQLite connection is a file handle in this process and is never checked.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if sqlite || meta.idle_for < Duration::from_secs(1) {
                    return Ok(true);
                }
                // A failed ping drops the connection; the pool opens another.
                Ok(conn.ping().await.is_ok())
            })
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if sqlite {
                    // WAL lets readers go on while one writer commits; FULL makes every
                    // commit durable; writers wait for each other instead of failing.
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA foreign_keys = ON;"
                    )))
                    .await?;
                }
                Ok(())
            })
        });
    options
        .connect(url)
        .await
        .with_context(|| format!("could not connect to the database ({})", redact_url(url)))
}

/// True on PostgreSQL, where queues take their work with `FOR UPDATE SKIP LOCKED`.
pub fn is_postgres(pool: &Pool) -> bool {
    matches!(
        pool.connect_options().database_url.scheme(),
        "postgres" | "postgresql"
    )
}

/// What this process writes in the leases it takes: the host's pid and a random tag, so a
/// lease names its holder even across restarts.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("could not apply database migrations")
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***{}", &url[..scheme_end], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Now, as stored: UTC, second precision, sortable text.
pub fn now_text() -> String {
    format_timestamp(time::OffsetDateTime::now_utc())
}

pub fn format_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn today_text() -> String {
    now_text()[..10].to_string()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when the error is a unique-key violation (a concurrent or repeated posting).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://obole:s3cret@db.example/obole"),
            "postgres://obole:***@db.example/obole"
        );
        assert_eq!(redact_url("sqlite://obole.db"), "sqlite://obole.db");
    }
}
