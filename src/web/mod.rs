//! HTTP handlers by audience, and what they share: state, session, CSRF, errors, layout.

pub mod admin;
pub mod auth;
mod errors;
pub mod input_guard;
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
    /// The association's logo, when one is configured.
    pub logo: Option<Arc<crate::logo::Logo>>,
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
    /// An association's logo is configured (served at `/logo`).
    pub logo: bool,
}

/// A link of the manager's menu: where it goes, and the key of its text.
pub struct MenuLink {
    pub href: &'static str,
    pub key: &'static str,
}

const MANAGER_MENU: [MenuLink; 9] = [
    MenuLink {
        href: "/admin",
        key: "nav.dashboard",
    },
    MenuLink {
        href: "/admin/members",
        key: "nav.members",
    },
    MenuLink {
        href: "/admin/payments",
        key: "nav.payments",
    },
    MenuLink {
        href: "/admin/requests",
        key: "nav.requests",
    },
    MenuLink {
        href: "/admin/ledger",
        key: "nav.ledger",
    },
    MenuLink {
        href: "/admin/balances",
        key: "nav.balances",
    },
    MenuLink {
        href: "/admin/settings/accounts",
        key: "nav.accounts",
    },
    MenuLink {
        href: "/admin/gateways",
        key: "nav.gateways",
    },
    MenuLink {
        href: "/admin/audit",
        key: "nav.audit",
    },
];

impl Layout {
    /// The text of `key` in the page's language.
    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.t(key)
    }

    pub fn tf(&self, key: &'static str, args: &[(&str, &str)]) -> String {
        self.lang.tf(key, args)
    }

    /// A stored moment, in the page's language (see [`crate::i18n::Lang::date_time`]).
    pub fn when(&self, iso: &str) -> String {
        self.lang.date_time(iso)
    }

    pub fn langs(&self) -> &'static [crate::i18n::Lang] {
        &crate::i18n::LANGS
    }

    pub fn manager_menu(&self) -> &'static [MenuLink] {
        &MANAGER_MENU
    }

    /// The `aria-current` of a menu link: `page` on that page, `true` on a page inside its
    /// section (a member's page, under Members); none elsewhere.
    pub fn current(&self, href: &str) -> Option<&'static str> {
        let path = self.path.split(['?', '#']).next().unwrap_or_default();
        if path == href {
            Some("page")
        } else if href != "/admin"
            && path
                .strip_prefix(href)
                .is_some_and(|rest| rest.starts_with('/'))
        {
            Some("true")
        } else {
            None
        }
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
        .route("/static/obole.js", web::get().to(script))
        .route("/logo", web::get().to(logo))
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

/// Progressive enhancements only: every page works without it.
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/obole.js"))
}

/// The association's logo, as configured: its own type, cached, never sniffed; an SVG opened
/// on its own may run nothing (no script, no form, no outside resource).
async fn logo(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, AppError> {
    let logo = state.logo.as_ref().ok_or(AppError::NotFound)?;
    let fresh = request
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == logo.etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("ETag", logo.etag.as_str()))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if logo.kind == crate::logo::LogoKind::Svg {
        response.insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
        ));
    }
    if fresh {
        return Ok(response.finish());
    }
    Ok(response
        .content_type(logo.kind.content_type())
        .body(logo.bytes.clone()))
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => HttpResponse::Ok().body("ok"),
        Err(_) => HttpResponse::ServiceUnavailable().body("database unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_at(path: &str) -> Layout {
        Layout {
            association: String::new(),
            user_name: None,
            is_manager: true,
            flash: None,
            csrf_token: String::new(),
            lang: crate::i18n::Lang::Fr,
            path: path.to_string(),
            logo: false,
        }
    }

    #[test]
    fn every_link_of_the_managers_menu_has_its_text() {
        for link in &MANAGER_MENU {
            for lang in crate::i18n::LANGS {
                assert_ne!(
                    lang.t(link.key),
                    link.key,
                    "{} in {}",
                    link.key,
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn the_current_page_and_its_section_are_marked() {
        let members = layout_at("/admin/members?q=martin");
        assert_eq!(members.current("/admin/members"), Some("page"));
        assert_eq!(members.current("/admin"), None);
        let member = layout_at("/admin/members/0192-abc/edit");
        assert_eq!(member.current("/admin/members"), Some("true"));
        assert_eq!(member.current("/admin"), None);
        assert_eq!(layout_at("/admin").current("/admin"), Some("page"));
        assert_eq!(
            layout_at("/admin/membership").current("/admin/members"),
            None
        );
    }
}
