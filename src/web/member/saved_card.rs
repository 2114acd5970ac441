//! `/basket/saved-card/{id}/forget`: the member withdraws the card they saved. It is no longer
//! charged from this moment; the gateway is asked to forget it too where its API allows.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::saved_cards;
use crate::web::{AppError, AppState, CurrentUser, SessionExt, see_other};

#[derive(Deserialize)]
pub struct ForgetForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn forget(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ForgetForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    // Another member's card, or one already withdrawn, is not found.
    let card = saved_cards::revoke(&state.pool, &id, &current.user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Best effort: obole no longer charges it whatever the gateway says.
    let forgotten_there = match state.gateways.current().get(&card.gateway) {
        Some(gateway) => match gateway.forget_saved_card(&card.method()).await {
            Ok(()) => Some(gateway.display_name()),
            Err(error) => {
                tracing::info!(card = %card.id, error = ?error, "the gateway did not forget the card");
                None
            }
        },
        None => None,
    };
    let lang = crate::i18n::current();
    let mut message = lang.tf("saved_card.forgotten", &[("card", &card.display())]);
    if let Some(gateway) = forgotten_there {
        message.push(' ');
        message.push_str(&lang.tf("saved_card.forgotten_there", &[("gateway", gateway)]));
    }
    current.session.set_flash("info", &message);
    Ok(see_other("/basket"))
}
