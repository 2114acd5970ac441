//! The two mails of a payment request: the request itself (to the member, with the link) and
//! the notice that it was paid (to the manager who sent it). Text and HTML, in the language
//! of the recipient.

use askama::Template;
use serde::{Deserialize, Serialize};

use super::link::LinkKey;
use crate::config::Settings;
use crate::db::Pool;
use crate::domain::{Money, local_date};
use crate::i18n::Lang;

/// A charge of the member's basket, as the request mail lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DueLine {
    pub label: String,
    pub amount_cents: i64,
}

/// What the request mail says, as it was when the request was sent. The link is not kept:
/// it is signed again when the mail is written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestMail {
    pub request_id: String,
    pub amount_cents: i64,
    /// Already paid against the charges.
    pub paid_cents: i64,
    pub lines: Vec<DueLine>,
    pub message: Option<String>,
    /// The gateway the manager chose (None: the member chooses).
    pub gateway: Option<String>,
    /// The manager who sent it.
    pub sender: String,
    pub expires_on: String,
}

/// The notice to the manager who sent a request that it was paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestPaidMail {
    pub request_id: String,
    pub member_name: String,
    pub amount_cents: i64,
    pub payment_id: String,
    pub date: String,
    /// Paid through the request's link (false: the member settled their basket).
    pub via_link: bool,
}

struct LineView {
    label: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "mail/payment_request.txt")]
struct RequestText<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    amount: String,
    paid: Option<String>,
    lines: &'a [LineView],
    message: Option<&'a str>,
    gateway: Option<&'a str>,
    sender: &'a str,
    expires_on: String,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/payment_request.html")]
struct RequestHtml<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    amount: String,
    paid: Option<String>,
    lines: &'a [LineView],
    message: Option<&'a str>,
    gateway: Option<&'a str>,
    sender: &'a str,
    expires_on: String,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/payment_request_paid.txt")]
struct PaidText<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    member: &'a str,
    amount: String,
    date: String,
    via_link: bool,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/payment_request_paid.html")]
struct PaidHtml<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    member: &'a str,
    amount: String,
    date: String,
    via_link: bool,
    link: &'a str,
}

impl RequestMail {
    /// (subject, text, html), with the link signed now.
    pub async fn render(
        &self,
        pool: &Pool,
        settings: &Settings,
        base_url: &str,
        lang: Lang,
        association: &str,
        name: &str,
    ) -> anyhow::Result<(String, String, String)> {
        let key = LinkKey::load(pool, settings).await?;
        let link = format!("{base_url}/r/{}", key.token(&self.request_id)?);
        let amount = Money::from_cents(self.amount_cents).to_string();
        let paid = (self.paid_cents > 0).then(|| Money::from_cents(self.paid_cents).to_string());
        let gateway = self
            .gateway
            .as_deref()
            .map(|g| crate::mail::gateway_name(g, lang));
        let lines: Vec<LineView> = self
            .lines
            .iter()
            .map(|l| LineView {
                label: l.label.clone(),
                amount: Money::from_cents(l.amount_cents).to_string(),
            })
            .collect();
        let text = RequestText {
            lang,
            association,
            name,
            amount: amount.clone(),
            paid: paid.clone(),
            lines: &lines,
            message: self.message.as_deref(),
            gateway: gateway.as_deref(),
            sender: &self.sender,
            expires_on: local_date(&self.expires_on),
            link: &link,
        }
        .render()?;
        let html = RequestHtml {
            lang,
            association,
            name,
            amount: amount.clone(),
            paid,
            lines: &lines,
            message: self.message.as_deref(),
            gateway: gateway.as_deref(),
            sender: &self.sender,
            expires_on: local_date(&self.expires_on),
            link: &link,
        }
        .render()?;
        let subject = lang.tf(
            "mail.payment_request.subject",
            &[("association", association), ("amount", &amount)],
        );
        Ok((subject, text, html))
    }
}

impl RequestPaidMail {
    /// (subject, text, html).
    pub fn render(
        &self,
        base_url: &str,
        lang: Lang,
        association: &str,
        name: &str,
    ) -> anyhow::Result<(String, String, String)> {
        let link = format!("{base_url}/admin/requests/{}", self.request_id);
        let amount = Money::from_cents(self.amount_cents).to_string();
        let text = PaidText {
            lang,
            association,
            name,
            member: &self.member_name,
            amount: amount.clone(),
            date: local_date(&self.date),
            via_link: self.via_link,
            link: &link,
        }
        .render()?;
        let html = PaidHtml {
            lang,
            association,
            name,
            member: &self.member_name,
            amount: amount.clone(),
            date: local_date(&self.date),
            via_link: self.via_link,
            link: &link,
        }
        .render()?;
        let subject = lang.tf(
            "mail.request_paid.subject",
            &[("association", association), ("member", &self.member_name)],
        );
        Ok((subject, text, html))
    }
}
