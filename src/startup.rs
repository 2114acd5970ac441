//! Builds the application: pool, migrations, gateways, session key, middleware and routes.
//! The one place that knows the route table and the middleware order.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{Compress, DefaultHeaders, Logger};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::ExposeSecret;
use sqlx::Row;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::gateway_settings::GatewaySetup;
use crate::gateways::RegistryHandle;
use crate::sandbox::Emulators;
use crate::web::{self as routes, AppState};

pub struct Application {
    port: u16,
    base_url: String,
    pool: Pool,
    server: Server,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = db::connect_with(
            &settings.database_url,
            settings.db_max_connections,
            settings.db_busy_timeout_ms,
        )
        .await?;
        db::migrate(&pool).await?;
        Application::build_with_pool(settings, pool).await
    }

    pub async fn build_with_pool(settings: Settings, pool: Pool) -> anyhow::Result<Application> {
        let logo = settings
            .logo
            .as_deref()
            .map(crate::logo::Logo::load)
            .transpose()
            .context("the logo setting (OBOLE_LOGO) names no usable image")?
            .map(Arc::new);
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .with_context(|| format!("could not listen on {}:{}", settings.host, settings.port))?;
        let port = listener.local_addr()?.port();
        let base_url = settings
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", settings.host))
            .trim_end_matches('/')
            .to_string();
        let session_key = session_key(&pool, &settings).await?;
        crate::account_plan::adopt_configured_accounts(&pool, &settings.accounts).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.gateway_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("obole/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("could not build the HTTP client")?;
        let emulator = settings
            .sandbox
            .emulator
            .then(|| Emulators::new(&settings, &base_url, http.clone()));
        let secure_cookies = base_url.starts_with("https://");
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        crate::accounts::limit_hashing(
            settings
                .password_hashes_at_once
                .unwrap_or_else(crate::accounts::default_hashing_limit),
        );
        let mailer = crate::mail::Mailer::from_settings(&settings.mail)?;
        let settings = Arc::new(settings);
        let gateway_setup = Arc::new(GatewaySetup::new(settings.clone(), &base_url, http)?);
        let gateways = RegistryHandle::new(gateway_setup.build(&pool).await?);
        gateway_setup
            .clone()
            .spawn_refresh(pool.clone(), gateways.clone());
        crate::reconcile::spawn(pool.clone(), gateways.clone(), settings.clone());
        crate::mail::spawn_worker(pool.clone(), mailer, settings.clone(), base_url.clone());
        let notification_writer =
            crate::notification_writer::NotificationWriter::start(pool.clone(), settings.clone());
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            notification_writer,
            settings,
            base_url: base_url.clone(),
            gateways,
            gateway_setup,
            logo,
        });

        let server = HttpServer::new(move || {
            let mut app = App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::web::input_guard::middleware,
                ))
                .wrap(security_headers(secure_cookies))
                .wrap(actix_web::middleware::from_fn(crate::web::lang::middleware))
                .wrap(
                    SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                        .cookie_name("obole_session".into())
                        .cookie_secure(secure_cookies)
                        .cookie_http_only(true)
                        .cookie_same_site(SameSite::Lax)
                        .cookie_content_security(CookieContentSecurity::Private)
                        .build(),
                )
                .wrap(Compress::default())
                .wrap(
                    Logger::new("%s %{request}xi %Dms")
                        .custom_request_replace("request", request_line)
                        .exclude("/healthz"),
                )
                .app_data(state.clone())
                .app_data(form_config())
                .app_data(web::PayloadConfig::new(256 * 1024))
                .configure(routes::routes);
            if let Some(emulators) = &emulator {
                app = app.configure(|cfg| emulators.configure(cfg));
            }
            app.default_service(web::to(not_found))
        })
        .workers(workers)
        .listen(listener)?
        .run();

        Ok(Application {
            port,
            base_url,
            pool,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// The request line as `%r` logs it, but with secrets hidden: the value of any `token`
/// parameter (password links) and the token of a payment request's link (`/r/{token}`), which
/// lets whoever holds it pay that request.
fn request_line(req: &actix_web::dev::ServiceRequest) -> String {
    let path = req.path();
    let path = match path.strip_prefix("/r/") {
        Some(rest) => format!("/r/…{}", rest.find('/').map_or("", |i| &rest[i..])),
        None => path.to_string(),
    };
    let query = req
        .query_string()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("token") => format!("{key}=[hidden]"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    let separator = if query.is_empty() { "" } else { "?" };
    format!(
        "{} {}{separator}{query} {:?}",
        req.method(),
        path,
        req.version()
    )
}

/// Malformed forms get a clear 400, never a 500.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|err, _req| {
            let message = crate::i18n::current()
                .tf("input.unreadable_detail", &[("detail", &err.to_string())]);
            crate::web::AppError::BadRequest(message).into()
        })
}

async fn not_found() -> HttpResponse {
    crate::web::AppError::NotFound.into_response()
}

/// The cookie key: from settings, or generated once and kept in the database so that
/// sessions survive a restart.
async fn session_key(pool: &Pool, settings: &Settings) -> anyhow::Result<Key> {
    if let Some(configured) = &settings.secret_key {
        let bytes = STANDARD
            .decode(configured.expose_secret().trim())
            .context("OBOLE_SECRET_KEY must be base64")?;
        anyhow::ensure!(
            bytes.len() >= 64,
            "OBOLE_SECRET_KEY must hold at least 64 bytes"
        );
        return Ok(Key::from(&bytes));
    }
    let mut fresh = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('session_key', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(STANDARD.encode(fresh))
    .execute(pool)
    .await
    .context("could not store the session key")?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = 'session_key'")
        .fetch_one(pool)
        .await
        .context("could not read the session key")?;
    let stored: String = row.try_get("value")?;
    let bytes = STANDARD
        .decode(stored)
        .context("stored session key is not base64")?;
    Ok(Key::from(&bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn password_tokens_stay_out_of_the_access_log() {
        let request = actix_web::test::TestRequest::get()
            .uri("/password/set?token=s3cr3t-t0ken&lang=fr")
            .to_srv_request();
        let line = super::request_line(&request);
        assert_eq!(line, "GET /password/set?token=[hidden]&lang=fr HTTP/1.1");
        assert!(!line.contains("s3cr3t"));
        let plain = actix_web::test::TestRequest::get()
            .uri("/admin/members")
            .to_srv_request();
        assert_eq!(super::request_line(&plain), "GET /admin/members HTTP/1.1");
    }
}
