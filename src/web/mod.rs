//! HTTP handlers by audience, and what they share: state, session, CSRF, errors, layout.

pub mod admin;
pub mod auth;
mod errors;
pub mod member;
mod session;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;

pub use errors::AppError;
pub use session::{CurrentUser, Flash, ManagerUser, SessionExt};

use crate::config::Settings;
use crate::db::Pool;
use crate::gateway_settings::GatewaySetup;
use crate::gateways::RegistryHandle;

/// Everything a handler may need, shared by all workers.
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub base_url: String,
    /// The gateways in use: take `gateways.current()` for the length of a request.
    pub gateways: RegistryHandle,
    /// Rebuilds the gateways when an admin saves their settings.
    pub gateway_setup: Arc<GatewaySetup>,
}

/// What every page's frame shows: the association, who is logged in, a flash message, and the
/// CSRF token its forms carry.
pub struct Layout {
    pub association: String,
    pub user_name: Option<String>,
    pub is_manager: bool,
    pub flash: Option<Flash>,
    pub csrf_token: String,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/basket", web::get().to(member::basket::show))
        .route("/basket/pay", web::post().to(member::basket::pay))
        .route("/payments/{id}", web::get().to(member::payment::show))
        .route(
            "/payments/{id}/return",
            web::route().to(member::payment::gateway_return),
        )
        .route("/admin", web::get().to(admin::dashboard))
        .route("/admin/ledger", web::get().to(admin::ledger))
        .route(
            "/admin/ledger/export",
            web::get().to(admin::exports::journal),
        )
        .route("/admin/gateways", web::get().to(admin::gateways))
        .route(
            "/admin/gateways/{id}",
            web::post().to(admin::gateway_settings::save),
        )
        .route(
            "/admin/gateways/{id}/test",
            web::post().to(admin::gateway_settings::test_connection),
        )
        .route("/admin/audit", web::get().to(admin::audit_log))
        .route("/admin/charges", web::get().to(admin::charges::form))
        .route("/admin/charges", web::post().to(admin::charges::apply))
        .route("/admin/members/{id}", web::get().to(admin::members::show))
        .route(
            "/admin/members/{id}/charges",
            web::post().to(admin::members::add_charge),
        )
        .route("/admin/payments/{id}", web::get().to(admin::payment_detail))
        .route("/admin/payments/{id}/refund", web::post().to(admin::refund))
        .route("/admin/payments/{id}/cancel", web::post().to(admin::cancel))
        .route("/webhooks/{gateway}", web::post().to(webhooks::receive))
        .route("/static/obole.css", web::get().to(stylesheet))
        .route("/healthz", web::get().to(healthz));
}

/// Renders a page; personal pages are never cached.
pub fn render<T: Template>(status: actix_web::http::StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(e) => AppError::Unexpected(anyhow::anyhow!("template failed: {e}")).into_response(),
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/obole.css"))
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => HttpResponse::Ok().body("ok"),
        Err(_) => HttpResponse::ServiceUnavailable().body("database unavailable"),
    }
}
