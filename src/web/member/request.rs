//! `/r/{token}`: the personal link of a payment request. It opens for the member it was sent
//! to, logged in or not (the token alone is enough), and grants only this: seeing what is
//! owed now and paying it. It never logs anyone in. Any other logged-in person, an unknown
//! or a forged token get a 404; a cancelled or expired request a 410.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::{self, User};
use crate::basket::{self, Basket};
use crate::db;
use crate::domain::{Money, local_date};
use crate::gateways::{CheckoutRequest, Gateway, GatewayError};
use crate::payment_requests::{self, PaymentRequest, RequestStatus};
use crate::payments;
use crate::web::{AppError, AppState, CurrentUser, Layout, SessionExt, render, see_other};

/// While a payment is being confirmed, the gateway is asked at most this often.
const RECHECK_AFTER_SECS: i64 = 4;

pub struct LineView {
    pub label: String,
    pub amount: String,
}

pub struct GatewayChoice {
    pub id: &'static str,
    pub name: &'static str,
    pub checked: bool,
}

/// What the member can pay, when the request is open and something is owed.
pub struct PayView {
    pub member_name: String,
    pub lines: Vec<LineView>,
    pub paid: Option<String>,
    pub owed: String,
    /// What was owed when the request was sent, when it differs from now.
    pub requested: Option<String>,
    pub message: Option<String>,
    pub sender: String,
    pub expires_on: String,
    /// The manager chose this gateway; otherwise the member chooses among `gateways`.
    pub fixed_gateway: Option<GatewayChoice>,
    pub gateways: Vec<GatewayChoice>,
    /// A payment started from this link still awaits its gateway's word.
    pub pending: bool,
    pub form_error: Option<String>,
}

#[derive(Template)]
#[template(path = "member/request.html")]
struct RequestPageView {
    layout: Layout,
    token: String,
    headline: &'static str,
    detail: String,
    waiting: bool,
    pay: Option<PayView>,
}

/// Where the request stands for the person holding its link.
enum Stage {
    Cancelled,
    Expired,
    Paid {
        on: String,
    },
    /// Back from the gateway: the payment made from this link is being confirmed.
    Waiting,
    NothingOwed,
    /// Something is owed; `pending`: an attempt from this link still awaits its gateway.
    Open {
        basket: Basket,
        pending: bool,
    },
}

/// Why the member's browser is here: the gateway's return URL only chooses the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Opened the link.
    Direct,
    /// Just back from the gateway, which says the payment went through.
    Back,
    /// The waiting page refreshing itself.
    StillWaiting,
    /// Back from the gateway without paying (gave up, or the gateway failed).
    GaveUp,
}

/// The request behind a token, for whoever holds it, unless someone else is logged in.
async fn open(
    state: &AppState,
    current: &Option<CurrentUser>,
    token: &str,
) -> Result<(PaymentRequest, User), AppError> {
    let request = payment_requests::find_by_token(&state.pool, token)
        .await?
        .ok_or(AppError::NotFound)?;
    if let Some(current) = current
        && current.user.id != request.member_id
    {
        return Err(AppError::NotFound);
    }
    let member = accounts::find_active(&state.pool, &request.member_id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((request, member))
}

fn layout(state: &AppState, current: &Option<CurrentUser>, session: &Session) -> Layout {
    match current {
        Some(current) => current.layout(state),
        None => Layout {
            association: state.settings.association_name.clone(),
            user_name: None,
            is_manager: false,
            flash: session.take_flash(),
            csrf_token: session.csrf_token(),
            lang: crate::i18n::current(),
            path: crate::i18n::current_path(),
            logo: state.logo.is_some(),
        },
    }
}

/// Where the request stands now. An attempt from the link still open is first checked at
/// its gateway when the member just came back, or every few seconds while they wait.
async fn stage(
    state: &AppState,
    request: &mut PaymentRequest,
    arrival: Arrival,
) -> Result<Stage, AppError> {
    let now = db::now_text();
    if request.status == RequestStatus::Sent && !request.is_open_at(&now) {
        payment_requests::expire_due(&state.pool).await?;
        request.status = RequestStatus::Expired;
    }
    let mut pending = false;
    if request.status == RequestStatus::Sent
        && let Some(payment_id) = payment_requests::latest_attempt(&state.pool, &request.id).await?
        && let Some(payment) = payments::find(&state.pool, &payment_id).await?
        && payment.status.is_open()
    {
        let quiet_since = db::format_timestamp(
            time::OffsetDateTime::now_utc() - time::Duration::seconds(RECHECK_AFTER_SECS),
        );
        pending = true;
        if (arrival == Arrival::Back || payment.updated_at <= quiet_since)
            && let Some(gateway) = state.gateways.current().get(&payment.gateway)
            && payments::refresh_from_gateway(
                &state.pool,
                &state.settings.accounts,
                gateway.as_ref(),
                &payment,
            )
            .await?
            .is_some()
        {
            if let Some(fresh) = payment_requests::find(&state.pool, &request.id).await? {
                *request = fresh;
            }
            pending = payments::find(&state.pool, &payment.id)
                .await?
                .is_some_and(|p| p.status.is_open());
        }
        if request.status == RequestStatus::Sent
            && pending
            && matches!(arrival, Arrival::Back | Arrival::StillWaiting)
        {
            return Ok(Stage::Waiting);
        }
        // An attempt abandoned long ago (the tab closed at the gateway) is not worth a word.
        let recent = db::format_timestamp(
            time::OffsetDateTime::now_utc()
                - time::Duration::seconds(state.settings.reconcile.pending_after_secs),
        );
        pending = pending && arrival != Arrival::GaveUp && payment.created_at > recent;
    }
    if request.status == RequestStatus::Sent {
        let basket = basket::load(&state.pool, &request.member_id).await?;
        if basket.balance().is_positive() {
            return Ok(Stage::Open { basket, pending });
        }
        // Nothing owed: a payment recorded since the request was read settled it, in the
        // transaction that emptied the basket. Read it again before saying anything.
        if let Some(fresh) = payment_requests::find(&state.pool, &request.id).await? {
            *request = fresh;
        }
    }
    Ok(match request.status {
        RequestStatus::Cancelled => Stage::Cancelled,
        RequestStatus::Expired => Stage::Expired,
        RequestStatus::Paid => Stage::Paid {
            on: request
                .paid_at
                .as_deref()
                .map(local_date)
                .unwrap_or_default(),
        },
        RequestStatus::Sent => Stage::NothingOwed,
    })
}

fn gateway_choices(state: &AppState, selected: &str) -> Vec<GatewayChoice> {
    state
        .gateways
        .current()
        .all()
        .iter()
        .enumerate()
        .map(|(i, g)| GatewayChoice {
            id: g.id(),
            name: g.display_name(),
            checked: if selected.is_empty() {
                i == 0
            } else {
                g.id() == selected
            },
        })
        .collect()
}

/// The gateway the manager chose, if it is still offered.
fn fixed_gateway(
    state: &AppState,
    request: &PaymentRequest,
) -> Option<std::sync::Arc<dyn Gateway>> {
    request
        .gateway
        .as_deref()
        .and_then(|id| state.gateways.current().get_offered(id).cloned())
}

struct Notice {
    detail: Option<String>,
    form_error: Option<String>,
    gateway: String,
}

/// Who holds the link, and what it opens.
#[derive(Clone, Copy)]
struct Link<'a> {
    state: &'a AppState,
    current: &'a Option<CurrentUser>,
    session: &'a Session,
    token: &'a str,
    request: &'a PaymentRequest,
    member: &'a User,
}

async fn page(
    link: &Link<'_>,
    stage: Stage,
    notice: Notice,
) -> Result<(StatusCode, RequestPageView), AppError> {
    let Link {
        state,
        current,
        session,
        token,
        request,
        member,
    } = *link;
    let lang = crate::i18n::current();
    let (status, headline, detail, waiting, pay) = match stage {
        Stage::Cancelled => (
            StatusCode::GONE,
            lang.t("request.cancelled_title"),
            lang.t("request.cancelled").to_string(),
            false,
            None,
        ),
        Stage::Expired => (
            StatusCode::GONE,
            lang.t("request.expired_title"),
            lang.t("request.expired").to_string(),
            false,
            None,
        ),
        Stage::Paid { on } => (
            StatusCode::OK,
            lang.t("request.paid_title"),
            lang.tf("request.paid", &[("date", &on)]),
            false,
            None,
        ),
        Stage::Waiting => (
            StatusCode::OK,
            lang.t("request.waiting_title"),
            lang.t("request.waiting").to_string(),
            true,
            None,
        ),
        Stage::NothingOwed => (
            StatusCode::OK,
            lang.t("request.nothing_owed_title"),
            lang.t("request.nothing_owed").to_string(),
            false,
            None,
        ),
        Stage::Open { basket, pending } => {
            let owed = basket.balance();
            let sender = accounts::find_any(&state.pool, &request.requested_by)
                .await?
                .map_or_else(
                    || state.settings.association_name.clone(),
                    |u| u.full_name(),
                );
            let fixed = fixed_gateway(state, request).map(|g| GatewayChoice {
                id: g.id(),
                name: g.display_name(),
                checked: true,
            });
            let pay = PayView {
                member_name: member.full_name(),
                lines: basket
                    .charges
                    .iter()
                    .map(|l| LineView {
                        label: l.label.clone(),
                        amount: l.amount.to_string(),
                    })
                    .collect(),
                paid: basket
                    .total_paid()
                    .is_positive()
                    .then(|| basket.total_paid().to_string()),
                owed: owed.to_string(),
                requested: (owed != request.amount).then(|| request.amount.to_string()),
                message: request.message.clone(),
                sender,
                expires_on: local_date(&request.expires_at),
                gateways: if fixed.is_some() {
                    Vec::new()
                } else {
                    gateway_choices(state, &notice.gateway)
                },
                fixed_gateway: fixed,
                pending,
                form_error: notice.form_error,
            };
            (
                StatusCode::OK,
                lang.t("request.title"),
                lang.tf(
                    "request.asks",
                    &[
                        ("association", &state.settings.association_name),
                        ("amount", &owed.to_string()),
                    ],
                ),
                false,
                Some(pay),
            )
        }
    };
    Ok((
        status,
        RequestPageView {
            layout: layout(state, current, session),
            token: token.to_string(),
            headline,
            detail: notice.detail.unwrap_or(detail),
            waiting,
            pay,
        },
    ))
}

/// What the gateway's return URL hints at: only the words shown, never the status.
#[derive(Deserialize)]
pub struct ReturnHint {
    #[serde(default)]
    retour: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    current: Option<CurrentUser>,
    session: Session,
    token: web::Path<String>,
    hint: web::Query<ReturnHint>,
) -> Result<HttpResponse, AppError> {
    let (request, member) = open(&state, &current, &token).await?;
    let lang = crate::web::lang::for_mailed_link(&state, &session, &member.id).await?;
    let link = Opened {
        state: &state,
        current: &current,
        session: &session,
        token: &token,
        member: &member,
    };
    crate::i18n::scope(lang, show_opened(link, request, hint.into_inner())).await
}

/// What `show` and `pay` found behind the link, before knowing where the request stands.
#[derive(Clone, Copy)]
struct Opened<'a> {
    state: &'a AppState,
    current: &'a Option<CurrentUser>,
    session: &'a Session,
    token: &'a str,
    member: &'a User,
}

async fn show_opened(
    opened: Opened<'_>,
    mut request: PaymentRequest,
    hint: ReturnHint,
) -> Result<HttpResponse, AppError> {
    let Opened {
        state,
        current,
        session,
        token,
        member,
    } = opened;
    let lang = crate::i18n::current();
    let (arrival, gave_up) = match hint.retour.as_deref() {
        Some("ok") => (Arrival::Back, None),
        Some("attente") => (Arrival::StillWaiting, None),
        Some("abandon") => (Arrival::GaveUp, Some(lang.t("request.abandoned"))),
        Some("erreur") => (Arrival::GaveUp, Some(lang.t("request.gateway_error"))),
        _ => (Arrival::Direct, None),
    };
    let stage = stage(state, &mut request, arrival).await?;
    let notice = Notice {
        detail: gave_up
            .filter(|_| matches!(stage, Stage::Open { .. }))
            .map(str::to_string),
        form_error: None,
        gateway: String::new(),
    };
    let link = Link {
        state,
        current,
        session,
        token,
        request: &request,
        member,
    };
    let (status, view) = page(&link, stage, notice).await?;
    Ok(render(status, &view))
}

#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    csrf_token: String,
}

/// `POST /r/{token}/pay`: pays what is owed now, through the manager's gateway or the one
/// chosen, by the same attempt as the basket's, linked to the request.
pub async fn pay(
    state: web::Data<AppState>,
    current: Option<CurrentUser>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<PayForm>,
) -> Result<HttpResponse, AppError> {
    session.check_csrf(&form.csrf_token)?;
    let (request, member) = open(&state, &current, &token).await?;
    let lang = crate::web::lang::for_mailed_link(&state, &session, &member.id).await?;
    let opened = Opened {
        state: &state,
        current: &current,
        session: &session,
        token: &token,
        member: &member,
    };
    crate::i18n::scope(lang, pay_opened(opened, request, form.into_inner())).await
}

async fn pay_opened(
    opened: Opened<'_>,
    mut request: PaymentRequest,
    form: PayForm,
) -> Result<HttpResponse, AppError> {
    let Opened {
        state,
        current,
        session,
        token,
        member,
    } = opened;
    let stage = stage(state, &mut request, Arrival::GaveUp).await?;
    let link = Link {
        state,
        current,
        session,
        token,
        request: &request,
        member,
    };
    let refuse = |status: StatusCode, stage: Stage, message: Option<String>| {
        let link = &link;
        let gateway = form.gateway.chars().take(40).collect();
        async move {
            let notice = Notice {
                detail: None,
                form_error: message,
                gateway,
            };
            let (default, view) = page(link, stage, notice).await?;
            let status = if default.is_success() {
                status
            } else {
                default
            };
            Ok::<_, AppError>(render(status, &view))
        }
    };
    let basket = match stage {
        Stage::Open { basket, .. } => basket,
        Stage::NothingOwed => return refuse(StatusCode::CONFLICT, stage, None).await,
        // Closed: cancelled or expired (410), or already paid (nothing more to pay through it).
        other => return refuse(StatusCode::GONE, other, None).await,
    };
    let gateway = match fixed_gateway(state, &request) {
        Some(gateway) => gateway.clone(),
        None => match state.gateways.current().get_offered(&form.gateway) {
            Some(gateway) => gateway.clone(),
            None => {
                let message = crate::i18n::current().t("pay.choose_gateway").to_string();
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Stage::Open {
                        basket,
                        pending: false,
                    },
                    Some(message),
                )
                .await;
            }
        },
    };
    let amount = basket.balance();
    if let Some(ceiling) = state.settings.pay_ceiling_cents.map(Money::from_cents)
        && amount > ceiling
    {
        let message =
            crate::i18n::current().tf("request.over_ceiling", &[("ceiling", &ceiling.to_string())]);
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            Stage::Open {
                basket,
                pending: false,
            },
            Some(message),
        )
        .await;
    }

    let payment = payments::create_attempt(
        &state.pool,
        &member.id,
        gateway.id(),
        amount,
        "EUR",
        gateway.test_mode(),
    )
    .await?;
    payment_requests::link_attempt(&state.pool, &request.id, &payment.id).await?;
    // The member comes back to this link; the hints only choose the words of the page.
    let back = format!("{}/r/{}/retour", state.base_url, token);
    let checkout = CheckoutRequest {
        payment_id: payment.id.clone(),
        amount,
        currency: "EUR".into(),
        description: format!(
            "{} — {}",
            state.settings.association_name,
            member.full_name()
        )
        .chars()
        .take(250)
        .collect(),
        payer_email: member.email.clone(),
        payer_first_name: member.first_name.clone(),
        payer_last_name: member.last_name.clone(),
        return_url: back.clone(),
        cancel_url: format!("{back}?retour=abandon"),
        error_url: format!("{back}?retour=erreur"),
        notification_url: format!("{}/webhooks/{}", state.base_url, gateway.id()),
        installments: None,
        contains_donation: false,
        save_card: None,
    };
    match gateway.create_payment(&checkout).await {
        Ok(created) => {
            payments::mark_pending(
                &state.pool,
                &payment.id,
                &created.gateway_ref,
                &created.redirect_url,
            )
            .await?;
            tracing::info!(request_id = %request.id, payment_id = %payment.id, "payment started from a request link");
            Ok(see_other(&created.redirect_url))
        }
        Err(error) => {
            tracing::warn!(payment_id = %payment.id, error = ?error, "gateway refused to create the payment");
            payments::mark_failed(&state.pool, &payment.id, &error.to_string()).await?;
            let (status, message) = match error {
                GatewayError::Rejected(_) | GatewayError::Unsupported(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    crate::i18n::current().t("pay.gateway_refused_request"),
                ),
                GatewayError::Unavailable(_) => (
                    StatusCode::BAD_GATEWAY,
                    crate::i18n::current().t("pay.gateway_down"),
                ),
            };
            let stage = Stage::Open {
                basket,
                pending: false,
            };
            refuse(status, stage, Some(message.into())).await
        }
    }
}

/// `/r/{token}/retour`: where gateways send the member back, by GET or by a cross-site POST.
/// Nothing is read or changed: the browser goes on to the request's page with the hint.
pub async fn gateway_return(
    token: web::Path<String>,
    hint: web::Query<ReturnHint>,
) -> HttpResponse {
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let location = match hint.retour.as_deref() {
        Some(retour @ ("abandon" | "erreur")) => format!("/r/{token}?retour={retour}"),
        _ => format!("/r/{token}?retour=ok"),
    };
    see_other(&location)
}
