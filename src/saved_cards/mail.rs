//! The mails about a saved card: it is being charged, or it could not be (pay by hand).

use askama::Template;

use crate::domain::Money;
use crate::i18n::Lang;
use crate::mail::MailContent;

#[derive(Template)]
#[template(path = "mail/saved_card_charge.txt")]
struct ChargeText<'a> {
    lang: Lang,
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
    lang: Lang,
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
    lang: Lang,
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
    lang: Lang,
    association: &'a str,
    name: &'a str,
    amount: &'a str,
    card: &'a str,
    authentication_required: bool,
    basket: &'a str,
}

/// (subject, text, html) of a saved card's mail, in `lang`.
pub(crate) fn render(
    content: &MailContent,
    lang: Lang,
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
            // No reason given: the manager charged what the member owes.
            let reason = reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| lang.t("mail.saved_card_charge.reason_owed"));
            let text = ChargeText {
                lang,
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
                lang,
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
            let subject = lang.tf(
                "mail.saved_card_charge.subject",
                &[("association", association), ("amount", &amount)],
            );
            Ok((subject, text, html))
        }
        MailContent::SavedCardFailed {
            amount_cents,
            card,
            authentication_required,
            ..
        } => {
            let amount = Money::from_cents(*amount_cents).to_string();
            let text = FailedText {
                lang,
                association,
                name,
                amount: &amount,
                card,
                authentication_required: *authentication_required,
                basket: &basket,
            }
            .render()?;
            let html = FailedHtml {
                lang,
                association,
                name,
                amount: &amount,
                card,
                authentication_required: *authentication_required,
                basket: &basket,
            }
            .render()?;
            let subject = lang.tf(
                "mail.saved_card_failed.subject",
                &[("association", association)],
            );
            Ok((subject, text, html))
        }
        _ => anyhow::bail!("not a mail about a saved card"),
    }
}
