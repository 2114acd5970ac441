//! The members directory: the routes of members management, and the paginated list with
//! search and filters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{member_form, member_import};
use crate::members::{self, Filter, MemberPage};
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

/// Registered before `/admin/members/{id}` so that `new` and `import` are not taken for ids.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/members", web::get().to(list))
        .route("/admin/members", web::post().to(member_form::create))
        .route("/admin/members/new", web::get().to(member_form::new_form))
        .route(
            "/admin/members/import",
            web::get().to(member_import::upload_form),
        )
        .route(
            "/admin/members/import",
            web::post().to(member_import::upload),
        )
        .route(
            "/admin/members/import/{id}",
            web::get().to(member_import::preview),
        )
        .route(
            "/admin/members/import/{id}",
            web::post().to(member_import::confirm),
        )
        .route(
            "/admin/members/{id}/edit",
            web::get().to(member_form::edit_form),
        )
        .route(
            "/admin/members/{id}/edit",
            web::post().to(member_form::update),
        )
        .route(
            "/admin/members/{id}/deactivate",
            web::post().to(member_form::deactivate),
        )
        .route(
            "/admin/members/{id}/reactivate",
            web::post().to(member_form::reactivate),
        )
        .route(
            "/admin/members/{id}/invitation",
            web::post().to(member_form::invite),
        );
}

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    page: String,
}

pub struct FilterChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct RowView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub balance: crate::domain::Money,
}

#[derive(Template)]
#[template(path = "admin/members.html")]
struct DirectoryView {
    layout: Layout,
    search: String,
    filters: Vec<FilterChoice>,
    rows: Vec<RowView>,
    total: i64,
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
}

fn page_link(search: &str, filter: Filter, page: i64) -> String {
    let query = serde_urlencoded::to_string([
        ("q", search),
        ("filter", filter.as_str()),
        ("page", &page.to_string()),
    ])
    .unwrap_or_default();
    format!("/admin/members?{query}")
}

pub async fn list(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let search: String = params
        .q
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let search = search.trim().to_string();
    let filter = Filter::parse(&params.filter);
    let page = params.page.trim().parse::<i64>().unwrap_or(1);
    let MemberPage {
        rows,
        total,
        page,
        pages,
    } = members::list(&state.pool, &search, filter, page).await?;
    let rows = rows
        .into_iter()
        .map(|m| RowView {
            name: format!("{} {}", m.last_name, m.first_name),
            role: members::role_label(m.role),
            balance: m.balance,
            id: m.id,
            email: m.email,
            active: m.active,
        })
        .collect();
    let view = DirectoryView {
        layout: current.layout(&state),
        filters: Filter::ALL
            .into_iter()
            .map(|f| FilterChoice {
                value: f.as_str(),
                label: f.label(),
                selected: f == filter,
            })
            .collect(),
        rows,
        total,
        page,
        pages,
        previous: (page > 1).then(|| page_link(&search, filter, page - 1)),
        next: (page < pages).then(|| page_link(&search, filter, page + 1)),
        search,
    };
    Ok(render(StatusCode::OK, &view))
}
