//! Charging a saved card while the member is away: an attempt is recorded, the member told by
//! mail, the gateway asked (never inside a transaction), and its report applied by the one
//! writer. A refusal, or a bank asking for the cardholder's authentication, posts nothing and
//! tells the member to pay by hand.

use anyhow::Context;

use super::SavedCard;
use crate::config::Settings;
use crate::db::{self, Pool};
use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Decline, Gateway, GatewayError, OffSessionRequest};
use crate::mail::{self, MailContent};
use crate::payments::{self, Payment};

/// What became of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeResult {
    /// The gateway took the money: posted, receipt queued.
    Paid,
    /// The gateway has not settled it yet; its next word (or the sweep) decides.
    Pending,
    /// The bank said no; nothing posted, the member told to pay by hand.
    Declined(Decline),
    /// The gateway refused the request itself (the card is gone, say): the same for the member.
    Rejected(String),
    /// The gateway did not answer: the charge may or may not have happened. Not retried.
    Unknown,
}

impl ChargeResult {
    fn outcome(&self) -> &'static str {
        match self {
            ChargeResult::Paid => "paid",
            ChargeResult::Pending => "pending",
            ChargeResult::Declined(Decline::AuthenticationRequired) => "authentication_required",
            ChargeResult::Declined(Decline::Refused(_)) => "declined",
            ChargeResult::Rejected(_) => "rejected",
            ChargeResult::Unknown => "unknown",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// Not possible as asked; the message is for the manager, in the request's language.
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Records the attempt to charge `card` for `amount` (nothing is sent yet).
pub async fn prepare(
    pool: &Pool,
    gateway: &dyn Gateway,
    card: &SavedCard,
    amount: Money,
    requested_by: Option<&str>,
) -> Result<Payment, ChargeError> {
    if card.revoked {
        return Err(ChargeError::NotAllowed(
            crate::i18n::current().t("card_charge.error_revoked").into(),
        ));
    }
    if gateway.id() != card.gateway || !gateway.capabilities().saved_cards {
        return Err(ChargeError::NotAllowed(
            crate::i18n::current()
                .t("card_charge.error_not_supported")
                .into(),
        ));
    }
    if !amount.is_positive() {
        return Err(ChargeError::NotAllowed(
            crate::i18n::current()
                .t("card_charge.error_not_positive")
                .into(),
        ));
    }
    let payment = payments::create_attempt(
        pool,
        &card.member_id,
        gateway.id(),
        amount,
        "EUR",
        gateway.test_mode(),
    )
    .await?;
    let now = db::now_text();
    sqlx::query(
        "INSERT INTO off_session_charges (payment_id, saved_method_id, requested_by, outcome, \
         created_at, updated_at) VALUES ($1, $2, $3, 'started', $4, $4)",
    )
    .bind(&payment.id)
    .bind(&card.id)
    .bind(requested_by)
    .bind(&now)
    .execute(pool)
    .await
    .context("could not record the charge of the saved card")?;
    Ok(payment)
}

/// Tells the member, asks the gateway, and applies its answer through the one writer.
/// `reason` says what is paid, in the member's words (the dues' labels, say); `None`: what the
/// member owes, charged at a manager's request (the mail says so in the member's language).
pub async fn execute(
    pool: &Pool,
    settings: &Settings,
    gateway: &dyn Gateway,
    card: &SavedCard,
    payment: &Payment,
    reason: Option<&str>,
) -> anyhow::Result<ChargeResult> {
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    // Written first, so that SQLite's write lock is taken before anything is read.
    sqlx::query("UPDATE off_session_charges SET updated_at = $2 WHERE payment_id = $1")
        .bind(&payment.id)
        .bind(db::now_text())
        .execute(&mut *tx)
        .await
        .context("could not lock the charge")?;
    mail::enqueue(
        &mut tx,
        &format!("saved_card_charge:{}", payment.id),
        &card.member_id,
        &MailContent::SavedCardCharge {
            payment_id: payment.id.clone(),
            amount_cents: payment.amount.cents(),
            card: card.display(),
            gateway: gateway.display_name().to_string(),
            reason: reason.map(str::to_string),
        },
    )
    .await?;
    tx.commit().await.context("could not queue the mail")?;

    let member = crate::accounts::find_any(pool, &card.member_id)
        .await?
        .map(|u| u.full_name())
        .unwrap_or_default();
    let request = OffSessionRequest {
        payment_id: payment.id.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        description: format!("{} — {member}", settings.association_name)
            .chars()
            .take(250)
            .collect(),
        customer_id: card.customer_id.clone(),
        payment_method_id: card.payment_method_id.clone(),
    };
    let result = match gateway.charge_saved_card(&request).await {
        Ok(outcome) => {
            // Its event may have been applied already: the reference is kept whatever the
            // status, then the attempt moves on as any other.
            sqlx::query(
                "UPDATE payments SET gateway_ref = $2 WHERE id = $1 AND gateway_ref IS NULL",
            )
            .bind(&payment.id)
            .bind(&outcome.report.gateway_ref)
            .execute(pool)
            .await
            .context("could not keep the gateway's reference")?;
            payments::mark_pending(pool, &payment.id, &outcome.report.gateway_ref, "").await?;
            payments::apply_report(
                pool,
                &settings.accounts,
                gateway.id(),
                gateway.display_name(),
                &outcome.report,
            )
            .await?;
            let status = payments::find(pool, &payment.id)
                .await?
                .map_or(PaymentStatus::Pending, |p| p.status);
            match (status, outcome.decline) {
                (PaymentStatus::Paid, _) => ChargeResult::Paid,
                (PaymentStatus::Failed | PaymentStatus::Cancelled, decline) => {
                    ChargeResult::Declined(
                        decline.unwrap_or_else(|| Decline::Refused("refusé".into())),
                    )
                }
                _ => ChargeResult::Pending,
            }
        }
        Err(GatewayError::Unavailable(error)) => {
            tracing::warn!(payment_id = %payment.id, error = ?error, "saved card charge: no answer");
            ChargeResult::Unknown
        }
        Err(error @ (GatewayError::Rejected(_) | GatewayError::Unsupported(_))) => {
            let message = error.to_string();
            payments::mark_failed(pool, &payment.id, &message).await?;
            ChargeResult::Rejected(message)
        }
    };
    record(pool, card, payment, &result).await?;
    Ok(result)
}

/// The outcome on the charge's row and, when the member must act, the failure's reason on the
/// payment and a mail with the way to pay by hand, in one transaction.
async fn record(
    pool: &Pool,
    card: &SavedCard,
    payment: &Payment,
    result: &ChargeResult,
) -> anyhow::Result<()> {
    let detail = match result {
        ChargeResult::Declined(Decline::AuthenticationRequired) => {
            Some("la banque demande l'authentification du titulaire".to_string())
        }
        ChargeResult::Declined(Decline::Refused(why)) => Some(why.clone()),
        ChargeResult::Rejected(why) => Some(why.clone()),
        ChargeResult::Unknown => Some(
            "le prestataire n'a pas répondu : le prélèvement a peut-être eu lieu, vérifiez \
             dans son espace avant de recommencer"
                .to_string(),
        ),
        ChargeResult::Paid | ChargeResult::Pending => None,
    };
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    sqlx::query(
        "UPDATE off_session_charges SET outcome = $2, detail = $3, updated_at = $4 \
         WHERE payment_id = $1",
    )
    .bind(&payment.id)
    .bind(result.outcome())
    .bind(&detail)
    .bind(db::now_text())
    .execute(&mut *tx)
    .await
    .context("could not record the charge's outcome")?;
    if let Some(detail) = &detail {
        sqlx::query(
            "UPDATE payments SET failure_reason = $2 WHERE id = $1 AND failure_reason IS NULL",
        )
        .bind(&payment.id)
        .bind(format!("Carte enregistrée : {detail}"))
        .execute(&mut *tx)
        .await
        .context("could not record why the charge failed")?;
    }
    if let ChargeResult::Declined(_) | ChargeResult::Rejected(_) = result {
        mail::enqueue(
            &mut tx,
            &format!("saved_card_failed:{}", payment.id),
            &card.member_id,
            &MailContent::SavedCardFailed {
                payment_id: payment.id.clone(),
                amount_cents: payment.amount.cents(),
                card: card.display(),
                authentication_required: matches!(
                    result,
                    ChargeResult::Declined(Decline::AuthenticationRequired)
                ),
            },
        )
        .await?;
    }
    tx.commit()
        .await
        .context("could not commit the charge's outcome")?;
    Ok(())
}
