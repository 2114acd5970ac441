//! A manager charges a member's saved card from the member's page: the amount defaults to what
//! the member owes (never more), and must be confirmed. The outcome shows on the payment page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::members::{FieldError, member_view, t, tf};
use crate::accounts;
use crate::audit;
use crate::domain::Money;
use crate::gateways::Decline;
use crate::saved_cards::charge::{self, ChargeError, ChargeResult};
use crate::saved_cards::{self, SavedCard};
use crate::web::{AppError, AppState, ManagerUser, SessionExt, render, see_other};

/// The charge form of the member's page.
pub struct ChargeFormView {
    /// The card's gateway, by name ("" when it is no longer enabled: no charge possible).
    pub gateway: String,
    pub amount: String,
    pub error: Option<FieldError>,
    /// A card, an enabled gateway that can charge it, and something owed.
    pub offered: bool,
}

impl ChargeFormView {
    pub fn new(state: &AppState, card: Option<&SavedCard>, owed: Money) -> ChargeFormView {
        let registry = state.gateways.current();
        let gateway = card
            .and_then(|c| registry.get(&c.gateway))
            .filter(|g| g.capabilities().saved_cards);
        ChargeFormView {
            gateway: gateway.map_or_else(String::new, |g| g.display_name().to_string()),
            amount: if owed.is_positive() {
                owed.to_input_string()
            } else {
                String::new()
            },
            error: None,
            offered: gateway.is_some() && owed.is_positive(),
        }
    }
}

#[derive(Deserialize)]
pub struct ChargeForm {
    #[serde(default)]
    amount: String,
    /// The manager ticked the confirmation.
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

pub async fn charge(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ChargeForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let member = accounts::find_any(&state.pool, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let refuse = |error: FieldError| {
        let state = state.clone();
        let current = &current;
        let typed: String = form.amount.chars().take(40).collect();
        let member_id = member.id.clone();
        async move {
            let mut view =
                member_view(&state, current, &member_id, &Default::default(), None, None).await?;
            view.card_charge.amount = typed;
            view.card_charge.error = Some(error);
            Ok::<_, AppError>(render(StatusCode::UNPROCESSABLE_ENTITY, &view))
        }
    };
    let Some(card) = saved_cards::active_for_member(&state.pool, &member.id).await? else {
        return refuse(FieldError::new("", t("card_charge.error_no_card"))).await;
    };
    let Some(gateway) = state.gateways.current().get(&card.gateway).cloned() else {
        return refuse(FieldError::new("", t("card_charge.error_gateway_off"))).await;
    };
    let amount = match Money::parse_input(&form.amount) {
        Ok(amount) => amount,
        Err(e) => return refuse(FieldError::new("amount", e.to_string())).await,
    };
    let owed = crate::basket::load(&state.pool, &member.id)
        .await?
        .balance();
    if amount > owed {
        let message = if owed.is_positive() {
            tf("card_charge.error_too_much", &[("owed", &owed.to_string())])
        } else {
            t("card_charge.error_nothing_owed").to_string()
        };
        return refuse(FieldError::new("amount", message)).await;
    }
    if form.confirm.is_none() {
        return refuse(FieldError::new("confirm", t("card_charge.error_confirm"))).await;
    }
    let payment = match charge::prepare(
        &state.pool,
        gateway.as_ref(),
        &card,
        amount,
        Some(&current.user.id),
    )
    .await
    {
        Ok(payment) => payment,
        Err(ChargeError::NotAllowed(message)) => {
            return refuse(FieldError::new("amount", message)).await;
        }
        Err(ChargeError::Unexpected(error)) => return Err(AppError::Unexpected(error)),
    };
    let result = charge::execute(
        &state.pool,
        &state.settings,
        gateway.as_ref(),
        &card,
        &payment,
        None,
    )
    .await?;
    tracing::info!(payment_id = %payment.id, by = %current.user.id, amount = amount.cents(), ?result, "saved card charged");
    audit::record(
        &state.pool,
        &current.user.id,
        "saved_card.charge",
        &format!("member:{}", member.id),
        None,
        Some(serde_json::json!({
            "payment_id": payment.id,
            "card": card.display(),
            "amount_cents": amount.cents(),
            "outcome": format!("{result:?}"),
        })),
    )
    .await?;
    let amount = amount.to_string();
    let message = match &result {
        ChargeResult::Paid => tf("card_charge.paid", &[("amount", &amount)]),
        ChargeResult::Pending => tf("card_charge.pending", &[("amount", &amount)]),
        ChargeResult::Declined(Decline::AuthenticationRequired) => tf(
            "card_charge.authentication_required",
            &[("amount", &amount)],
        ),
        ChargeResult::Declined(Decline::Refused(why)) => tf(
            "card_charge.declined",
            &[("why", why.as_str()), ("amount", &amount)],
        ),
        ChargeResult::Rejected(why) => tf(
            "card_charge.rejected",
            &[("why", why.as_str()), ("amount", &amount)],
        ),
        ChargeResult::Unknown => t("card_charge.unknown").to_string(),
    };
    current.session.set_flash(
        if matches!(result, ChargeResult::Paid | ChargeResult::Pending) {
            "info"
        } else {
            "error"
        },
        &message,
    );
    Ok(see_other(&format!("/admin/payments/{}", payment.id)))
}
