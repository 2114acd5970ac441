//! The mails about a saved card: it is being charged, or it could not be (pay by hand).

use askama::Template;

use crate::domain::Money;
use crate::mail::MailContent;

#[derive(Template)]
#[template(path = "mail/saved_card_charge.txt")]
struct ChargeText<'a> {
    association: &'a str,
    name: &'a str,
    amount: &'a str,
    card: &'a str,
    gateway: &'a str,
    reason: &'a str,
    link: &'a str,
    basket: &'a str,
}

#[derive(Template)]
#[template(path = "mail/saved_card_charge.html")]
struct ChargeHtml<'a> {
    association: &'a str,
    name: &'a str,
    amount: &'a str,
    card: &'a str,
    gateway: &'a str,
    reason: &'a str,
    link: &'a str,
    basket: &'a str,
}

#[derive(Template)]
#[template(path = "mail/saved_card_failed.txt")]
struct FailedText<'a> {
    association: &'a str,
    name: &'a str,
    amount: &'a str,
    card: &'a str,
    authentication_required: bool,
    basket: &'a str,
}

#[derive(Template)]
#[template(path = "mail/saved_card_failed.html")]
struct FailedHtml<'a> {
    association: &'a str,
    name: &'a str,
    amount: &'a str,
    card: &'a str,
    authentication_required: bool,
    basket: &'a str,
}

/// (subject, text, html) of a saved card's mail.
pub(crate) fn render(
    content: &MailContent,
    association: &str,
    name: &str,
    base_url: &str,
) -> anyhow::Result<(String, String, String)> {
    let basket = format!("{base_url}/basket");
    match content {
        MailContent::SavedCardCharge {
            payment_id,
            amount_cents,
            card,
            gateway,
            reason,
        } => {
            let amount = Money::from_cents(*amount_cents).to_string();
            let link = format!("{base_url}/payments/{payment_id}");
            let text = ChargeText {
                association,
                name,
                amount: &amount,
                card,
                gateway,
                reason,
                link: &link,
                basket: &basket,
            }
            .render()?;
            let html = ChargeHtml {
                association,
                name,
                amount: &amount,
                card,
                gateway,
                reason,
                link: &link,
                basket: &basket,
            }
            .render()?;
            Ok((
                format!("{association} : prélèvement de {amount} sur votre carte"),
                text,
                html,
            ))
        }
        MailContent::SavedCardFailed {
            amount_cents,
            card,
            authentication_required,
            ..
        } => {
            let amount = Money::from_cents(*amount_cents).to_string();
            let text = FailedText {
                association,
                name,
                amount: &amount,
                card,
                authentication_required: *authentication_required,
                basket: &basket,
            }
            .render()?;
            let html = FailedHtml {
                association,
                name,
                amount: &amount,
                card,
                authentication_required: *authentication_required,
                basket: &basket,
            }
            .render()?;
            Ok((
                format!("{association} : votre carte n'a pas pu être prélevée"),
                text,
                html,
            ))
        }
        _ => anyhow::bail!("not a mail about a saved card"),
    }
}
