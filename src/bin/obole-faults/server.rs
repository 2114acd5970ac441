//! The obole under test: a child process of the real binary, killed with SIGKILL and started
//! again on the same port; its database, made to refuse work for a moment; and the sandbox
//! gateway's emulator, served by this tool so that it outlives every kill.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpServer};
use anyhow::{Context, bail};
use obole::config::Settings;
use obole::sandbox::Emulators;
use sqlx::{AnyConnection, Connection, Executor};

/// A port free now, for a server that will be started (and restarted) on it.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Serves the emulators of every gateway on a port of their own; returns their address.
pub async fn start_emulator() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let mut settings = Settings::default();
    // The campaign plays the gateway's notifier itself, to count and retry every send.
    settings.sandbox.notify_retry_ms = Vec::new();
    let emulators = Emulators::new(&settings, &address, reqwest::Client::new());
    let server = HttpServer::new(move || {
        let emulators = emulators.clone();
        App::new().configure(move |cfg| emulators.configure(cfg))
    })
    .workers(1)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(address)
}

/// Where the campaign's data lives.
pub enum Database {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl Database {
    pub async fn create(kind: &str, admin_url: &str) -> anyhow::Result<Database> {
        let name = format!("obole_faults_{}", uuid::Uuid::new_v4().simple());
        match kind {
            "sqlite" => Ok(Database::Sqlite {
                path: std::env::temp_dir().join(format!("{name}.db")),
            }),
            "postgres" => {
                sqlx::any::install_default_drivers();
                let mut admin = AnyConnection::connect(admin_url)
                    .await
                    .with_context(|| format!("PostgreSQL unreachable at {admin_url}"))?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await?;
                admin.close().await.ok();
                Ok(Database::Postgres {
                    admin_url: admin_url.to_string(),
                    name,
                })
            }
            other => bail!("--database must be sqlite or postgres, not {other}"),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Database::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            Database::Postgres { admin_url, name } => {
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        }
    }

    /// The database refuses work for `hold`: on PostgreSQL no connection is allowed and the
    /// open ones are cut; on SQLite another process holds the write lock longer than obole
    /// waits for it.
    pub async fn outage(&self, hold: Duration) -> anyhow::Result<()> {
        match self {
            Database::Sqlite { .. } => {
                let mut conn = AnyConnection::connect(&self.url()).await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("BEGIN EXCLUSIVE").await?;
                tokio::time::sleep(hold).await;
                conn.execute("COMMIT").await?;
                conn.close().await.ok();
            }
            Database::Postgres { admin_url, name } => {
                let mut admin = AnyConnection::connect(admin_url).await?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
                    )))
                    .await?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    )))
                    .await?;
                tokio::time::sleep(hold).await;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
                    )))
                    .await?;
                admin.close().await.ok();
            }
        }
        Ok(())
    }

    pub async fn drop_all(&self) {
        match self {
            Database::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Database::Postgres { admin_url, name } => {
                if let Ok(mut admin) = AnyConnection::connect(admin_url).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    admin.close().await.ok();
                }
            }
        }
    }
}

/// The obole process under test.
pub struct Server {
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub address: String,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Server {
    pub fn new(binary: &Path, env: Vec<(String, String)>, port: u16, log: PathBuf) -> Server {
        Server {
            binary: binary.to_path_buf(),
            env,
            address: format!("http://127.0.0.1:{port}"),
            log,
            child: None,
            starts: 0,
        }
    }

    fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        Ok(command)
    }

    /// Starts `obole serve` and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let child = self
            .command(&["serve"])?
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        self.child = Some(child);
        self.starts += 1;
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(response) = client.get(format!("{}/healthz", self.address)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "obole exited at start ({status}); see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "obole did not answer within a minute; see {}",
            self.log.display()
        )
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown, no flush, whatever it was doing.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("could not kill obole")?;
            child.wait()?;
        }
        Ok(())
    }

    /// Runs `obole reconcile` once with extra settings; returns what it printed.
    pub fn reconcile(&self, extra: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut command = self.command(&["reconcile"])?;
        command.stdout(Stdio::piped());
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = command.spawn()?.wait_with_output()?;
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() {
            bail!(
                "obole reconcile failed ({}); see {}",
                output.status,
                self.log.display()
            );
        }
        Ok(printed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
