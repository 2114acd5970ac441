//! A manager charges a member's saved card from the member's page: the amount defaults to what
//! the member owes (never more), and must be confirmed. The outcome shows on the payment page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::members::member_view;
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
    pub error: Option<String>,
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
    let refuse = |message: String| {
        let state = state.clone();
        let current = &current;
        let typed: String = form.amount.chars().take(40).collect();
        let member_id = member.id.clone();
        async move {
            let mut view =
                member_view(&state, current, &member_id, &Default::default(), None, None).await?;
            view.card_charge.amount = typed;
            view.card_charge.error = Some(message);
            Ok::<_, AppError>(render(StatusCode::UNPROCESSABLE_ENTITY, &view))
        }
    };
    let Some(card) = saved_cards::active_for_member(&state.pool, &member.id).await? else {
        return refuse("Ce membre n'a pas de carte enregistrée.".into()).await;
    };
    let Some(gateway) = state.gateways.current().get(&card.gateway).cloned() else {
        return refuse("Le prestataire de cette carte n'est plus activé.".into()).await;
    };
    let amount = match Money::parse_input(&form.amount) {
        Ok(amount) => amount,
        Err(e) => return refuse(e.to_string()).await,
    };
    let owed = crate::basket::load(&state.pool, &member.id)
        .await?
        .balance();
    if amount > owed {
        return refuse(if owed.is_positive() {
            format!("Le montant ne peut pas dépasser ce que le membre doit ({owed}).")
        } else {
            "Ce membre ne doit rien : il n'y a rien à prélever.".to_string()
        })
        .await;
    }
    if form.confirm.is_none() {
        return refuse("Cochez la case pour confirmer le prélèvement.".into()).await;
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
        Err(ChargeError::NotAllowed(message)) => return refuse(message).await,
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
    let message = match &result {
        ChargeResult::Paid => format!("Carte prélevée : {amount} encaissés."),
        ChargeResult::Pending => format!(
            "Prélèvement de {amount} demandé : il sera enregistré quand le prestataire le confirmera."
        ),
        ChargeResult::Declined(Decline::AuthenticationRequired) => format!(
            "La banque du membre demande qu'il confirme lui-même ce paiement : rien n'a été prélevé. \
             Le membre a été invité par courriel à régler {amount} lui-même."
        ),
        ChargeResult::Declined(Decline::Refused(why)) => format!(
            "La banque a refusé le prélèvement ({why}) : rien n'a été prélevé. Le membre a été \
             invité par courriel à régler {amount} lui-même."
        ),
        ChargeResult::Rejected(why) => format!(
            "Le prestataire a refusé le prélèvement ({why}) : rien n'a été prélevé. Le membre a \
             été invité par courriel à régler {amount} lui-même."
        ),
        ChargeResult::Unknown => "Le prestataire ne répond pas : le prélèvement a peut-être eu \
             lieu. Vérifiez dans son espace avant de recommencer."
            .to_string(),
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
