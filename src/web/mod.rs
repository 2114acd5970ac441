//! HTTP handlers by audience, and what they share: state, session, CSRF, errors, layout.

pub mod admin;
pub mod auth;
mod errors;
pub mod lang;
pub mod member;
pub mod password;
mod session;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;

pub use errors::AppError;
pub use session::{AdminUser, CurrentUser, Flash, ManagerUser, SessionExt};

use crate::config::Settings;
use crate::db::Pool;
use crate::gateway_settings::GatewaySetup;
use crate::gateways::RegistryHandle;
use crate::notification_writer::NotificationWriter;

/// Everything a handler may need, shared by all workers.
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub base_url: String,
    /// The gateways in use: take `gateways.current()` for the length of a request.
    pub gateways: RegistryHandle,
    /// Rebuilds the gateways when an admin saves their settings.
    pub gateway_setup: Arc<GatewaySetup>,
    /// Writes verified notifications (group commit on SQLite).
    pub notification_writer: NotificationWriter,
}

/// What every page's frame shows: the association, who is logged in, a flash message, and the
/// CSRF token its forms carry.
pub struct Layout {
    pub association: String,
    pub user_name: Option<String>,
    pub is_manager: bool,
    pub flash: Option<Flash>,
    pub csrf_token: String,
    /// The language of the page (the request's).
    pub lang: crate::i18n::Lang,
    /// Where the language switch comes back to.
    pub path: String,
}

impl Layout {
    /// The text of `key` in the page's language.
    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.t(key)
    }

    pub fn tf(&self, key: &'static str, args: &[(&str, &str)]) -> String {
        self.lang.tf(key, args)
    }

    pub fn langs(&self) -> &'static [crate::i18n::Lang] {
        &crate::i18n::LANGS
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/lang", web::post().to(lang::choose))
        .route("/basket", web::get().to(member::basket::show))
        .route("/basket/pay", web::post().to(member::basket::pay))
        .route(
            "/basket/saved-card/{id}/forget",
            web::post().to(member::saved_card::forget),
        )
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
        .route("/admin/balances", web::get().to(admin::balances))
        .route(
            "/admin/settings/accounts",
            web::get().to(admin::account_plan::show),
        )
        .route(
            "/admin/settings/accounts/categories",
            web::post().to(admin::account_plan::add_category),
        )
        .route(
            "/admin/settings/accounts/categories/{code}",
            web::post().to(admin::account_plan::update_category),
        )
        .route(
            "/admin/settings/accounts/categories/{code}/delete",
            web::post().to(admin::account_plan::delete_category),
        )
        .route(
            "/admin/settings/accounts/receipts",
            web::post().to(admin::account_plan::set_receipt_accounts),
        )
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
        .configure(admin::directory::routes)
        .route("/admin/members/{id}", web::get().to(admin::members::show))
        .route(
            "/admin/members/{id}/charges",
            web::post().to(admin::members::add_charge),
        )
        .route(
            "/admin/members/{id}/saved-card/charge",
            web::post().to(admin::saved_card::charge),
        )
        .route("/admin/payments", web::get().to(admin::payments_list::list))
        .route("/admin/payments/{id}", web::get().to(admin::payment_detail))
        .route("/admin/payments/{id}/refund", web::post().to(admin::refund))
        .route("/admin/payments/{id}/cancel", web::post().to(admin::cancel))
        .configure(password::routes)
        .route("/admin/requests", web::get().to(admin::requests::list))
        .route(
            "/admin/requests/all",
            web::post().to(admin::requests::send_all),
        )
        .route(
            "/admin/requests/{id}",
            web::get().to(admin::requests::detail),
        )
        .route(
            "/admin/requests/{id}/cancel",
            web::post().to(admin::requests::cancel),
        )
        .route(
            "/admin/members/{id}/request",
            web::get().to(admin::requests::new_for_member),
        )
        .route(
            "/admin/members/{id}/request",
            web::post().to(admin::requests::send_to_member),
        )
        .route("/r/{token}", web::get().to(member::request::show))
        .route("/r/{token}/pay", web::post().to(member::request::pay))
        .route(
            "/r/{token}/retour",
            web::route().to(member::request::gateway_return),
        )
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
