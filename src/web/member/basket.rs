//! `/basket`: charges by category, payments, balance, and the pay form.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use anyhow::Context;
use askama::Template;
use serde::Deserialize;

use crate::basket::{self, Basket};
use crate::domain::{Money, PaymentStatus, local_date};
use crate::gateways::{CheckoutRequest, GatewayError, Registry, SaveCard};
use crate::payments::{self, Payment};
use crate::saved_cards::{self, SavedCard};
use crate::web::{AppError, AppState, CurrentUser, Layout, SessionExt, render, see_other};

pub struct LineView {
    pub date: String,
    pub label: String,
    pub season: String,
    pub amount: String,
}

pub struct GroupView {
    pub title: String,
    pub lines: Vec<LineView>,
    pub subtotal: String,
}

pub struct PaymentView {
    pub id: String,
    pub date: String,
    pub gateway: String,
    pub amount: String,
    pub status: &'static str,
    pub status_class: &'static str,
}

pub struct GatewayChoice {
    pub id: &'static str,
    pub name: &'static str,
    pub checked: bool,
    pub installments: bool,
    pub saved_cards: bool,
}

/// The member's saved card, as the basket shows it.
pub struct SavedCardView {
    pub id: String,
    pub label: String,
    pub gateway: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "member/basket.html")]
struct BasketView {
    layout: Layout,
    groups: Vec<GroupView>,
    payments: Vec<PaymentView>,
    total_charges: String,
    total_paid: String,
    balance_label: &'static str,
    balance_amount: String,
    balance_class: &'static str,
    amount_value: String,
    gateways: Vec<GatewayChoice>,
    /// The choices of monthly terms (empty: paying in several times is not offered).
    terms: Vec<u8>,
    form_error: Option<String>,
    saved_card: Option<SavedCardView>,
    /// The gateways that can keep a card (empty: the option is not offered).
    save_card_gateways: Vec<&'static str>,
    save_card_checked: bool,
}

pub fn status_class(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Paid => "ok",
        PaymentStatus::Created | PaymentStatus::Pending => "wait",
        PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded => "info",
        PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired => "bad",
    }
}

struct FormState {
    amount: Option<String>,
    gateway: Option<String>,
    error: Option<String>,
    save_card: bool,
}

/// The numbers of monthly terms offered, when any gateway offered supports installments.
fn term_choices(state: &AppState, gateways: &Registry) -> Vec<u8> {
    let max = state.settings.installments_max_terms.min(4);
    let any = gateways.all().iter().any(|g| g.capabilities().installments);
    if any && max >= 2 {
        (1..=max).collect()
    } else {
        Vec::new()
    }
}

fn build_view(
    state: &AppState,
    current: &CurrentUser,
    basket: &Basket,
    attempts: &[Payment],
    saved_card: Option<SavedCard>,
    form: FormState,
) -> BasketView {
    let registry = state.gateways.current();
    let gateways: &Registry = &registry;
    let groups = basket
        .charges_by_category()
        .into_iter()
        .map(|(title, lines)| GroupView {
            title,
            subtotal: lines.iter().map(|l| l.amount).sum::<Money>().to_string(),
            lines: lines
                .iter()
                .map(|l| LineView {
                    date: local_date(&l.occurred_on),
                    label: l.label.clone(),
                    season: l.season.clone().unwrap_or_default(),
                    amount: l.amount.to_string(),
                })
                .collect(),
        })
        .collect();
    let payments = attempts
        .iter()
        .map(|p| PaymentView {
            id: p.id.clone(),
            date: local_date(p.paid_at.as_deref().unwrap_or(&p.created_at)),
            gateway: gateways
                .get(&p.gateway)
                .map_or_else(|| p.gateway.clone(), |g| g.display_name().to_string()),
            amount: p.paid_amount.unwrap_or(p.amount).to_string(),
            status: p.status.label_fr(),
            status_class: status_class(p.status),
        })
        .collect();
    let balance = basket.balance();
    let lang = crate::i18n::current();
    let (balance_label, balance_class) = if balance.is_positive() {
        (lang.t("basket.owed"), "owed")
    } else if balance == Money::ZERO {
        (lang.t("basket.settled"), "settled")
    } else {
        (lang.t("basket.credit"), "credit")
    };
    // What the member chose, or else the default gateway the association set.
    let selected = form
        .gateway
        .filter(|g| !g.is_empty())
        .or_else(|| gateways.default_id().map(str::to_string))
        .unwrap_or_default();
    let choices = gateways
        .all()
        .iter()
        .map(|g| GatewayChoice {
            id: g.id(),
            name: g.display_name(),
            checked: g.id() == selected,
            installments: g.capabilities().installments,
            saved_cards: g.capabilities().saved_cards,
        })
        .collect();
    BasketView {
        layout: current.layout(state),
        groups,
        payments,
        total_charges: basket.total_charges().to_string(),
        total_paid: basket.total_paid().to_string(),
        balance_label,
        balance_amount: balance.abs().to_string(),
        balance_class,
        amount_value: form.amount.unwrap_or_else(|| {
            if balance.is_positive() {
                balance.to_input_string()
            } else {
                String::new()
            }
        }),
        save_card_gateways: gateways
            .all()
            .iter()
            .filter(|g| g.capabilities().saved_cards)
            .map(|g| g.display_name())
            .collect(),
        gateways: choices,
        terms: term_choices(state, gateways),
        form_error: form.error,
        saved_card: saved_card.map(|card| SavedCardView {
            gateway: gateways
                .get(&card.gateway)
                .map_or_else(|| card.gateway.clone(), |g| g.display_name().to_string()),
            label: card.display(),
            since: local_date(&card.consented_at),
            id: card.id,
        }),
        save_card_checked: form.save_card,
    }
}

async fn render_basket(
    state: &AppState,
    current: &CurrentUser,
    status: StatusCode,
    form: FormState,
) -> Result<HttpResponse, AppError> {
    // One connection for the page's three reads: one trip to the pool, not three.
    let mut conn = state
        .pool
        .acquire()
        .await
        .context("could not reach the database")?;
    let basket = basket::load_on(&mut conn, &current.user.id).await?;
    let attempts = payments::list_for_member(&mut *conn, &current.user.id).await?;
    let saved_card = saved_cards::active_for_member(&mut *conn, &current.user.id).await?;
    drop(conn);
    let view = build_view(state, current, &basket, &attempts, saved_card, form);
    Ok(render(status, &view))
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    render_basket(
        &state,
        &current,
        StatusCode::OK,
        FormState {
            amount: None,
            gateway: None,
            error: None,
            save_card: false,
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    gateway: String,
    /// Monthly terms (absent or 1: at once).
    #[serde(default)]
    terms: Option<String>,
    /// Ticked: keep the card at the gateway for the next dues.
    #[serde(default)]
    save_card: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

/// The most a member may pay at once: configured, or the larger of what is owed and 1 000 €.
fn ceiling(state: &AppState, balance: Money) -> Money {
    state
        .settings
        .pay_ceiling_cents
        .map(Money::from_cents)
        .unwrap_or_else(|| balance.max(Money::from_cents(100_000)))
}

pub async fn pay(
    state: web::Data<AppState>,
    current: CurrentUser,
    form: web::Form<PayForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    current.session.check_csrf(&form.csrf_token)?;
    let lang = crate::i18n::current();
    // A refused form is shown again with what was typed and why it was refused.
    let save_card = form.save_card.is_some();
    let refuse = |message: String| FormState {
        amount: Some(form.amount.chars().take(40).collect()),
        gateway: Some(form.gateway.clone()),
        error: Some(message),
        save_card,
    };
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;

    let gateways = state.gateways.current();
    // Only a gateway offered now: one kept for past payments takes no new ones.
    let Some(gateway) = gateways.get_offered(&form.gateway).cloned() else {
        let form = refuse(lang.t("pay.choose_gateway").into());
        return render_basket(&state, &current, invalid, form).await;
    };
    let amount = match Money::parse_input(&form.amount) {
        Ok(amount) => amount,
        Err(e) => {
            return render_basket(&state, &current, invalid, refuse(e.to_string())).await;
        }
    };
    let terms = match form.terms.as_deref().map(str::trim).unwrap_or("1") {
        "" | "1" => None,
        other => match other.parse::<u8>() {
            Ok(n)
                if term_choices(&state, &gateways).contains(&n)
                    && gateway.capabilities().installments =>
            {
                Some(n)
            }
            _ => {
                let form = refuse(lang.t("pay.no_installments").into());
                return render_basket(&state, &current, invalid, form).await;
            }
        },
    };
    if save_card && !gateway.capabilities().saved_cards {
        let form = refuse(lang.tf(
            "pay.cannot_save_card",
            &[("gateway", gateway.display_name())],
        ));
        return render_basket(&state, &current, invalid, form).await;
    }
    let balance = basket::load(&state.pool, &current.user.id).await?.balance();
    let max = ceiling(&state, balance);
    if amount > max {
        let form = refuse(lang.tf("pay.over_ceiling", &[("max", &max.to_string())]));
        return render_basket(&state, &current, invalid, form).await;
    }

    let payment = payments::create_attempt(
        &state.pool,
        &current.user.id,
        gateway.id(),
        amount,
        "EUR",
        gateway.test_mode(),
    )
    .await?;
    let save = if save_card {
        saved_cards::request_save(&state.pool, &payment.id).await?;
        Some(SaveCard {
            customer_id: saved_cards::known_customer(&state.pool, &current.user.id, gateway.id())
                .await?,
        })
    } else {
        None
    };
    let page = format!("{}/payments/{}", state.base_url, payment.id);
    // The hints in these URLs only choose the words of the return page; they prove nothing.
    let request = CheckoutRequest {
        payment_id: payment.id.clone(),
        amount,
        currency: "EUR".into(),
        description: format!(
            "{} — {}",
            state.settings.association_name,
            current.user.full_name()
        )
        .chars()
        .take(250)
        .collect(),
        payer_email: current.user.email.clone(),
        payer_first_name: current.user.first_name.clone(),
        payer_last_name: current.user.last_name.clone(),
        return_url: format!("{page}/return"),
        cancel_url: format!("{page}/return?retour=abandon"),
        error_url: format!("{page}/return?retour=erreur"),
        notification_url: format!("{}/webhooks/{}", state.base_url, gateway.id()),
        installments: terms,
        contains_donation: false,
        save_card: save,
    };
    match gateway.create_payment(&request).await {
        Ok(checkout) => {
            payments::mark_pending(
                &state.pool,
                &payment.id,
                &checkout.gateway_ref,
                &checkout.redirect_url,
            )
            .await?;
            Ok(see_other(&checkout.redirect_url))
        }
        Err(error) => {
            tracing::warn!(payment_id = %payment.id, error = ?error, "gateway refused to create the payment");
            payments::mark_failed(&state.pool, &payment.id, &error.to_string()).await?;
            // A refusal is about this request (an amount below the gateway's minimum, say): 422.
            // A gateway that does not answer is not the member's doing: 502.
            let (status, message) = match error {
                GatewayError::Rejected(_) | GatewayError::Unsupported(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    lang.t("pay.gateway_refused"),
                ),
                GatewayError::Unavailable(_) => {
                    (StatusCode::BAD_GATEWAY, lang.t("pay.gateway_down"))
                }
            };
            render_basket(&state, &current, status, refuse(message.into())).await
        }
    }
}
