//! Creating and editing a member's record, deactivating and reactivating them, and sending
//! their invitation again.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::members::{FieldError, FieldErrors, tf};
use crate::domain::Role;
use crate::members::{self, DetailError, MemberDetails, MemberError, MemberInput, Profile};
use crate::web::{
    AppError, AppState, CurrentUser, Layout, ManagerUser, SessionExt, render, see_other,
};

/// What a manager typed, kept to show it again with the errors.
#[derive(Deserialize, Default, Clone)]
pub struct MemberForm {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub role: String,
    /// A language code, or empty to leave the choice to the member.
    #[serde(default)]
    pub locale: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    pub invite: Option<String>,
    #[serde(default)]
    pub csrf_token: String,
}

impl MemberForm {
    fn input(&self) -> MemberInput<'_> {
        MemberInput {
            first_name: &self.first_name,
            last_name: &self.last_name,
            email: &self.email,
            phone: &self.phone,
            address: &self.address,
            role: &self.role,
            locale: &self.locale,
        }
    }

    fn from_profile(profile: &Profile) -> MemberForm {
        MemberForm {
            first_name: profile.first_name.clone(),
            last_name: profile.last_name.clone(),
            email: profile.email.clone(),
            phone: profile.phone.clone().unwrap_or_default(),
            address: profile.address.clone().unwrap_or_default(),
            role: profile.role.as_str().to_string(),
            locale: profile
                .locale
                .map(|l| l.code().to_string())
                .unwrap_or_default(),
            invite: None,
            csrf_token: String::new(),
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/member_form.html")]
struct MemberFormView {
    layout: Layout,
    /// The record being edited; none on the creation form.
    member: Option<Profile>,
    form: MemberForm,
    roles: Vec<RoleChoice>,
    invite: bool,
    errors: Vec<FieldError>,
}

impl MemberFormView {
    /// The person's full name, for the page's sentences.
    fn name(&self) -> String {
        self.member
            .as_ref()
            .map(|m| format!("{} {}", m.first_name, m.last_name))
            .unwrap_or_default()
    }
}

fn field_errors(errors: Vec<DetailError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|e| FieldError::new(e.field(), e.to_string()))
        .collect()
}

/// Managers may give the member role only; admins any role.
fn role_choices(actor: Role, selected: &str) -> Vec<RoleChoice> {
    let roles: &[Role] = if actor == Role::Admin {
        &[Role::Member, Role::Manager, Role::Admin]
    } else {
        &[Role::Member]
    };
    roles
        .iter()
        .map(|r| RoleChoice {
            value: r.as_str(),
            label: members::role_label(*r),
            selected: r.as_str() == selected,
        })
        .collect()
}

fn form_page(
    state: &AppState,
    current: &CurrentUser,
    member: Option<Profile>,
    form: MemberForm,
    errors: Vec<FieldError>,
) -> MemberFormView {
    MemberFormView {
        layout: current.layout(state),
        roles: role_choices(current.user.role, &form.role),
        invite: member.is_none() && form.invite.is_some(),
        member,
        form,
        errors,
    }
}

fn status_of(error: &MemberError) -> StatusCode {
    match error {
        MemberError::AdminOnly | MemberError::OwnAdminRole | MemberError::OwnAccount => {
            StatusCode::FORBIDDEN
        }
        MemberError::EmailTaken | MemberError::Inactive => StatusCode::CONFLICT,
        MemberError::NotFound | MemberError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The messages of a refusal, or the error page for the rest.
fn refusal(error: MemberError) -> Result<(StatusCode, Vec<FieldError>), AppError> {
    match error {
        MemberError::NotFound => Err(AppError::NotFound),
        MemberError::Unexpected(e) => Err(AppError::Unexpected(e)),
        refused => Ok((
            status_of(&refused),
            vec![FieldError::new(refused.field(), refused.to_string())],
        )),
    }
}

pub async fn new_form(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    let form = MemberForm {
        role: Role::Member.as_str().into(),
        invite: Some("on".into()),
        ..MemberForm::default()
    };
    let page = form_page(&state, &current, None, form, Vec::new());
    Ok(render(StatusCode::OK, &page))
}

pub async fn create(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let details = match MemberDetails::parse(&form.input()) {
        Ok(details) => details,
        Err(errors) => {
            let page = form_page(&state, &current, None, form, field_errors(errors));
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let invite = form.invite.is_some();
    match members::create(&state.pool, &current.user, &details, invite).await {
        Ok(id) => {
            let name = format!("{} {}", details.first_name, details.last_name);
            let message = if invite {
                tf("member_form.created_invited", &[("name", &name)])
            } else {
                tf("member_form.created", &[("name", &name)])
            };
            current.session.set_flash("info", &message);
            Ok(see_other(&format!("/admin/members/{id}")))
        }
        Err(error) => {
            let (status, errors) = refusal(error)?;
            let page = form_page(&state, &current, None, form, errors);
            Ok(render(status, &page))
        }
    }
}

pub async fn edit_form(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let member = members::profile(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let form = MemberForm::from_profile(&member);
    let page = form_page(&state, &current, Some(member), form, Vec::new());
    Ok(render(StatusCode::OK, &page))
}

pub async fn update(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let member = members::profile(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let details = match MemberDetails::parse(&form.input()) {
        Ok(details) => details,
        Err(errors) => {
            let page = form_page(&state, &current, Some(member), form, field_errors(errors));
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    match members::update(&state.pool, &current.user, &member.id, &details).await {
        Ok(()) => {
            let name = format!("{} {}", details.first_name, details.last_name);
            current
                .session
                .set_flash("info", &tf("member_form.saved", &[("name", &name)]));
            Ok(see_other(&format!("/admin/members/{}", member.id)))
        }
        Err(error) => {
            let (status, errors) = refusal(error)?;
            let page = form_page(&state, &current, Some(member), form, errors);
            Ok(render(status, &page))
        }
    }
}

async fn set_active(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: &str,
    form: ActionForm,
    active: bool,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let member = members::profile(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound)?;
    match members::set_active(&state.pool, &current.user, &member.id, active).await {
        Ok(changed) => {
            let name = format!("{} {}", member.first_name, member.last_name);
            let name = [("name", name.as_str())];
            let message = match (changed, active) {
                (true, false) => tf("member_form.deactivated", &name),
                (true, true) => tf("member_form.reactivated", &name),
                (false, false) => tf("member_form.already_inactive", &name),
                (false, true) => tf("member_form.already_active", &name),
            };
            current.session.set_flash("info", &message);
            Ok(see_other(&format!("/admin/members/{}/edit", member.id)))
        }
        Err(error) => {
            let (status, errors) = refusal(error)?;
            let form = MemberForm::from_profile(&member);
            let page = form_page(&state, &current, Some(member), form, errors);
            Ok(render(status, &page))
        }
    }
}

pub async fn deactivate(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    set_active(state, current, &id, form.into_inner(), false).await
}

pub async fn reactivate(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    set_active(state, current, &id, form.into_inner(), true).await
}

/// Sends the invitation again (a new link; earlier ones stay valid until used or expired).
pub async fn invite(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let member = members::profile(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    match members::resend_invitation(&state.pool, &current.user, &member.id).await {
        Ok(member) => {
            current.session.set_flash(
                "info",
                &tf("member_form.invited", &[("email", &member.email)]),
            );
            Ok(see_other(&format!("/admin/members/{}", member.id)))
        }
        Err(error) => {
            let (status, errors) = refusal(error)?;
            let form = MemberForm::from_profile(&member);
            let page = form_page(&state, &current, Some(member), form, errors);
            Ok(render(status, &page))
        }
    }
}
