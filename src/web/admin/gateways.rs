//! The gateways offered to members, what each can do, and their notification addresses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::gateways::Capabilities;
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

pub struct GatewayRow {
    pub id: &'static str,
    pub name: &'static str,
    pub test_mode: bool,
    pub capabilities: Capabilities,
    pub webhook_url: String,
}

#[derive(Template)]
#[template(path = "admin/gateways.html")]
struct GatewaysView {
    layout: Layout,
    gateways: Vec<GatewayRow>,
}

/// The gateways members are offered, what each can do, and the address to give each for its
/// notifications.
pub async fn gateways(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let gateways = state
        .gateways
        .all()
        .iter()
        .map(|g| GatewayRow {
            id: g.id(),
            name: g.display_name(),
            test_mode: g.test_mode(),
            capabilities: g.capabilities(),
            webhook_url: format!("{}/webhooks/{}", state.base_url, g.id()),
        })
        .collect();
    let view = GatewaysView {
        layout: current.layout(&state),
        gateways,
    };
    Ok(render(StatusCode::OK, &view))
}
