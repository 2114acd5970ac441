//! `/admin/gateways`: each gateway with what it can do, its notification address, and its
//! settings (the configuration's, or those an admin saved). Admins edit them; managers read.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::gateway_settings::{self, GatewayState, Lock, OpenError, Saved, Snapshot};
use crate::gateways::Capabilities;
use crate::web::{AppError, AppState, CurrentUser, Layout, ManagerUser, render};

const NOTICE_KEY: &str = "gateway_notice";

/// What became of an admin's save or connection test, shown in that gateway's own section
/// (the page comes back scrolled to it, where a flash at the top would go unseen).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub gateway: String,
    /// `info` or `error`, as flash messages.
    pub level: String,
    pub message: String,
}

pub fn set_notice(session: &Session, gateway: &str, level: &str, message: &str) {
    let _ = session.insert(
        NOTICE_KEY,
        Notice {
            gateway: gateway.into(),
            level: level.into(),
            message: message.into(),
        },
    );
}

pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub secret: bool,
    pub hint: &'static str,
    /// A plain field's value (what is in use, or what was typed); always empty for a secret.
    pub value: String,
    /// Where the value in use comes from, with a secret's last four characters at most.
    pub status: String,
}

pub struct GatewaySection {
    pub id: &'static str,
    pub name: &'static str,
    /// Members may pay with it now.
    pub offered: bool,
    /// Not offered, but still answers for payments already made.
    pub kept: bool,
    /// Pre-selected in the members' pay form.
    pub is_default: bool,
    pub enabled: bool,
    pub test_mode: bool,
    /// The sandbox is always in test mode.
    pub test_mode_fixed: bool,
    pub position: i64,
    pub declared_default: bool,
    pub capabilities: Capabilities,
    /// How its notifications are proved authentic, in the reader's language.
    pub verification: &'static str,
    pub webhook_url: String,
    pub fields: Vec<FieldView>,
    pub has_saved_credentials: bool,
    /// Saved credentials that cannot be opened, and what to do.
    pub lock: Option<String>,
    pub error: Option<String>,
    pub notice: Option<Notice>,
    pub revision: i64,
    pub updated: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/gateways.html")]
struct GatewaysView {
    layout: Layout,
    can_edit: bool,
    /// The fingerprint of the settings key, when one is set.
    key_fingerprint: Option<String>,
    sections: Vec<GatewaySection>,
}

/// A save that was refused: shown again in its gateway's section, with what was typed (but
/// never a secret).
pub struct Refused {
    pub gateway: &'static str,
    pub message: String,
    pub enabled: bool,
    pub test_mode: bool,
    pub position: String,
    pub is_default: bool,
    pub typed: HashMap<&'static str, String>,
}

/// The gateways members are offered, what each can do, the address to give each for its
/// notifications, and their settings.
pub async fn gateways(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    page(&state, &current, StatusCode::OK, None).await
}

pub async fn page(
    state: &AppState,
    current: &CurrentUser,
    status: StatusCode,
    refused: Option<Refused>,
) -> Result<HttpResponse, AppError> {
    let setup = &state.gateway_setup;
    let snapshot = setup.snapshot(&state.pool).await?;
    let registry = state.gateways.current();
    let notice = current
        .session
        .remove_as::<Notice>(NOTICE_KEY)
        .and_then(Result::ok);
    let lang = crate::i18n::current();
    let mut sections = Vec::new();
    for (index, gateway) in snapshot.gateways.iter().enumerate() {
        let connector = setup.connector(&snapshot.settings, gateway.id)?;
        let refused = refused.as_ref().filter(|r| r.gateway == gateway.id);
        let mut section = GatewaySection {
            id: gateway.id,
            name: connector.display_name(),
            offered: registry.get_offered(gateway.id).is_some(),
            kept: registry.get(gateway.id).is_some() && registry.get_offered(gateway.id).is_none(),
            is_default: registry.default_id() == Some(gateway.id),
            enabled: gateway.enabled,
            test_mode: connector.test_mode(),
            test_mode_fixed: gateway.id == "sandbox",
            position: gateway.position,
            declared_default: gateway.is_default,
            capabilities: connector.capabilities(),
            verification: verification(gateway.id, connector.capabilities().verification),
            webhook_url: format!("{}/webhooks/{}", setup.base_url(), gateway.id),
            fields: fields(&snapshot, gateway, refused),
            has_saved_credentials: gateway
                .stored
                .as_ref()
                .is_some_and(|s| s.key_fingerprint().is_some()),
            lock: gateway.lock().map(|lock| lock_message(gateway, lock)),
            error: None,
            notice: notice.clone().filter(|n| n.gateway == gateway.id),
            revision: gateway.revision(),
            updated: gateway.stored.as_ref().map(|s| {
                let when = lang.tf(
                    "gateways_page.updated",
                    &[
                        ("date", &crate::domain::local_date(&s.updated_at)),
                        ("time", s.updated_at.get(11..16).unwrap_or("")),
                    ],
                );
                let by = s
                    .updated_by
                    .as_deref()
                    .map(|who| lang.tf("gateways_page.updated_by", &[("who", who)]))
                    .unwrap_or_default();
                format!("{when}{by}")
            }),
        };
        if let Some(refused) = refused {
            section.error = Some(refused.message.clone());
            section.enabled = refused.enabled;
            section.test_mode = refused.test_mode || section.test_mode_fixed;
            section.declared_default = refused.is_default;
            section.position = refused.position.trim().parse().unwrap_or(section.position);
        }
        sections.push((index, section));
    }
    sections.sort_by_key(|(index, s)| (s.position, *index));
    let view = GatewaysView {
        layout: current.layout(state),
        can_edit: current.user.role == Role::Admin,
        key_fingerprint: setup.key().map(|k| k.fingerprint().to_string()),
        sections: sections.into_iter().map(|(_, s)| s).collect(),
    };
    Ok(render(status, &view))
}

fn fields(
    snapshot: &Snapshot,
    gateway: &GatewayState,
    refused: Option<&Refused>,
) -> Vec<FieldView> {
    gateway_settings::fields_of(gateway.id)
        .iter()
        .map(|field| {
            let saved_here =
                matches!(&gateway.saved, Saved::Open(c) if c.get(field.name).is_some());
            let in_use =
                gateway_settings::current_value(&snapshot.settings, gateway.id, field.name);
            let lang = crate::i18n::current();
            let origin = lang.t(if saved_here {
                "gateways_page.saved_here"
            } else {
                "gateways_page.from_configuration"
            });
            let status = match (&in_use, field.secret) {
                (None, _) => lang.t("gateways_page.not_set").to_string(),
                (Some(value), true) => match last_four(value.expose_secret()) {
                    Some(tail) => format!("{origin} (…{tail})"),
                    None => origin.to_string(),
                },
                (Some(_), false) => origin.to_string(),
            };
            let typed = refused.and_then(|r| r.typed.get(field.name)).cloned();
            let value = if field.secret {
                String::new()
            } else {
                typed.unwrap_or_else(|| {
                    in_use
                        .map(|v| v.expose_secret().to_string())
                        .unwrap_or_default()
                })
            };
            FieldView {
                name: field.name,
                label: field.label(),
                secret: field.secret,
                hint: field.hint(),
                value,
                status,
            }
        })
        .collect()
}

/// How a gateway's notifications are proved authentic, in the reader's language (the
/// connector's own words for a gateway this page has no text for).
fn verification(gateway: &str, connector_says: &'static str) -> &'static str {
    let key = match gateway {
        "sandbox" => "gateway_verification.sandbox",
        "helloasso" => "gateway_verification.helloasso",
        "stripe" => "gateway_verification.stripe",
        "paypal" => "gateway_verification.paypal",
        "mollie" => "gateway_verification.mollie",
        "payplug" => "gateway_verification.payplug",
        "payzen" => "gateway_verification.payzen",
        "stancer" => "gateway_verification.stancer",
        _ => return connector_says,
    };
    crate::i18n::current().t(key)
}

/// The last four characters of a secret long enough for them to give nothing away.
fn last_four(secret: &str) -> Option<String> {
    let count = secret.chars().count();
    (count >= 12).then(|| secret.chars().skip(count - 4).collect())
}

fn lock_message(gateway: &GatewayState, lock: &Lock) -> String {
    let lang = crate::i18n::current();
    let sealed_with = gateway
        .stored
        .as_ref()
        .and_then(|s| s.key_fingerprint())
        .unwrap_or("?");
    let problem = match lock {
        Lock::NoKey => lang.tf(
            "gateway_settings.lock_no_key",
            &[("sealed_with", sealed_with)],
        ),
        Lock::Sealed(OpenError::OtherKey {
            sealed_with,
            current,
        }) => lang.tf(
            "gateway_settings.lock_other_key",
            &[("sealed_with", sealed_with), ("current", current)],
        ),
        Lock::Sealed(OpenError::Damaged) => lang.t("gateway_settings.lock_damaged").to_string(),
    };
    lang.tf(
        "gateway_settings.lock_consequence",
        &[("problem", &problem)],
    )
}

#[cfg(test)]
mod tests {
    use super::last_four;

    #[test]
    fn only_long_secrets_show_their_last_four_characters() {
        assert_eq!(last_four("sk_test_abcdefgh1234").as_deref(), Some("1234"));
        assert_eq!(last_four("short_secret").as_deref(), Some("cret"));
        assert_eq!(last_four("tiny"), None);
    }
}
