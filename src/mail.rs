//! Outgoing mail through an outbox: rows are written in the same transaction as what they
//! tell (a receipt with its payment), and a worker renders and sends them, retrying with
//! backoff. A mail is claimed with a lease before it is sent, so two workers never send it
//! twice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::config::{MailSettings, Settings};
use crate::db::{self, Pool, Tx};
use crate::domain::{Money, local_date};
use crate::i18n::Lang;

/// What a mail says, kept as data until the worker renders it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailContent {
    /// A payment was received: the member's receipt.
    Receipt {
        payment_id: String,
        amount_cents: i64,
        gateway: String,
        date: String,
    },
    /// The member's saved card is being charged: how much, and what for.
    SavedCardCharge {
        payment_id: String,
        amount_cents: i64,
        card: String,
        gateway: String,
        /// What is paid, in the member's words (the dues' labels); none: what the member
        /// owes, charged at a manager's request.
        #[serde(default)]
        reason: Option<String>,
    },
    /// The member's saved card could not be charged: they are asked to pay by hand.
    SavedCardFailed {
        payment_id: String,
        amount_cents: i64,
        card: String,
        authentication_required: bool,
    },
    /// A new member's invitation: a link to choose their password, made as the mail is sent.
    Invitation,
    /// A link to choose a new password, asked for from the login page.
    PasswordReset,
    /// A manager asks a member to pay what they owe, with a link straight to paying.
    PaymentRequest(crate::payment_requests::RequestMail),
    /// A payment request was paid: the notice to the manager who sent it.
    PaymentRequestPaid(crate::payment_requests::RequestPaidMail),
}

impl MailContent {
    fn kind(&self) -> &'static str {
        match self {
            MailContent::Receipt { .. } => "receipt",
            MailContent::SavedCardCharge { .. } => "saved_card_charge",
            MailContent::SavedCardFailed { .. } => "saved_card_failed",
            MailContent::Invitation => "invitation",
            MailContent::PasswordReset => "password_reset",
            MailContent::PaymentRequest(_) => "payment_request",
            MailContent::PaymentRequestPaid(_) => "payment_request_paid",
        }
    }
}

/// Queues a mail in the caller's transaction, once per `dedup_key`.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    dedup_key: &str,
    recipient_id: &str,
    content: &MailContent,
) -> anyhow::Result<()> {
    // The recipient's address read by the insert itself: one round trip to the database.
    let queued = sqlx::query(
        "INSERT INTO mail_outbox (id, dedup_key, kind, recipient_id, recipient_email, payload, \
         status, attempts, next_attempt_at, created_at) \
         SELECT $1, $2, $3, id, email, $4, 'pending', 0, $5, $5 FROM users WHERE id = $6 \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(db::new_id())
    .bind(dedup_key)
    .bind(content.kind())
    .bind(serde_json::to_string(content)?)
    .bind(db::now_text())
    .bind(recipient_id)
    .execute(&mut **tx)
    .await
    .context("could not queue the mail")?;
    if queued.rows_affected() == 0 {
        // Already queued, or nobody to send it to.
        sqlx::query("SELECT 1 FROM users WHERE id = $1")
            .bind(recipient_id)
            .fetch_one(&mut **tx)
            .await
            .context("could not find the mail's recipient")?;
    }
    Ok(())
}

/// Where mail goes: SMTP, or files for the demo and development.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Mailer> {
        match settings.transport.as_str() {
            "file" => {
                std::fs::create_dir_all(&settings.dir).with_context(|| {
                    format!("could not create the mail folder {}", settings.dir)
                })?;
                Ok(Mailer::File(AsyncFileTransport::new(&settings.dir)))
            }
            "smtp" => {
                let host = settings.smtp_host.as_str();
                let mut builder = match settings.smtp_tls.as_str() {
                    "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
                    "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                    "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    other => bail!("mail.smtp_tls must be starttls, tls or none, not {other:?}"),
                }
                .port(settings.smtp_port)
                .timeout(Some(Duration::from_secs(20)));
                if let (Some(user), Some(password)) =
                    (&settings.smtp_username, &settings.smtp_password)
                {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_string(),
                    ));
                }
                Ok(Mailer::Smtp(builder.build()))
            }
            other => bail!("mail.transport must be file or smtp, not {other:?}"),
        }
    }

    async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(message).await.map(|_| ()).context("SMTP"),
            Mailer::File(file) => file.send(message).await.map(|_| ()).context("mail file"),
        }
    }
}

#[derive(Template)]
#[template(path = "mail/receipt.txt")]
struct ReceiptText<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    amount: String,
    gateway: &'a str,
    date: &'a str,
    link: String,
}

#[derive(Template)]
#[template(path = "mail/receipt.html")]
struct ReceiptHtml<'a> {
    lang: Lang,
    association: &'a str,
    name: &'a str,
    amount: String,
    gateway: &'a str,
    date: &'a str,
    link: String,
}

/// A gateway's name kept in a queued mail, in the language the mail is written in. Names are
/// kept as they read when the mail was queued (in whatever language that moment had); of them,
/// only the built-in sandbox's is translated.
pub(crate) fn gateway_name(kept: &str, lang: Lang) -> String {
    let sandbox = "sandbox.gateway_name";
    if crate::i18n::LANGS.iter().any(|l| l.t(sandbox) == kept) {
        lang.t(sandbox).to_string()
    } else {
        kept.to_string()
    }
}

/// The message for a queued mail, rendered now (text and HTML) in the recipient's language:
/// its words, and the amounts and dates written as readers of that language write them.
async fn render(
    pool: &Pool,
    settings: &Settings,
    base_url: &str,
    recipient_id: Option<&str>,
    to: &str,
    content: &MailContent,
) -> anyhow::Result<Message> {
    // The language the recipient chose; French when none (or one no longer offered).
    let lang = match recipient_id {
        Some(id) => crate::accounts::saved_lang(pool, id)
            .await?
            .unwrap_or_default(),
        None => Lang::default(),
    };
    let (subject, text, html) = crate::i18n::scope(
        lang,
        render_parts(pool, settings, base_url, recipient_id, lang, content),
    )
    .await?;
    let from: Mailbox = settings
        .mail
        .from
        .parse()
        .context("mail.from is not an address")?;
    let to: Mailbox = to.parse().context("the recipient is not an address")?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

/// (subject, text, html) of a mail, in `lang` (the caller runs this in `lang`'s scope).
async fn render_parts(
    pool: &Pool,
    settings: &Settings,
    base_url: &str,
    recipient_id: Option<&str>,
    lang: Lang,
    content: &MailContent,
) -> anyhow::Result<(String, String, String)> {
    let name = match recipient_id {
        Some(id) => crate::accounts::find_any(pool, id)
            .await?
            .map(|u| u.full_name())
            .unwrap_or_default(),
        None => String::new(),
    };
    let association = settings.association_name.as_str();
    Ok(match content {
        MailContent::Receipt {
            payment_id,
            amount_cents,
            gateway,
            date,
        } => {
            let amount = Money::from_cents(*amount_cents).to_string();
            let link = format!("{base_url}/payments/{payment_id}");
            let date = &local_date(date);
            let gateway = &gateway_name(gateway, lang);
            let text = ReceiptText {
                lang,
                association,
                name: &name,
                amount: amount.clone(),
                gateway,
                date,
                link: link.clone(),
            }
            .render()?;
            let html = ReceiptHtml {
                lang,
                association,
                name: &name,
                amount: amount.clone(),
                gateway,
                date,
                link,
            }
            .render()?;
            let subject = lang.tf(
                "mail.receipt.subject",
                &[("association", association), ("amount", &amount)],
            );
            (subject, text, html)
        }
        MailContent::SavedCardCharge { .. } | MailContent::SavedCardFailed { .. } => {
            crate::saved_cards::mail::render(content, lang, association, &name, base_url)?
        }
        MailContent::Invitation | MailContent::PasswordReset => {
            let purpose = if *content == MailContent::Invitation {
                crate::password_links::Purpose::Invitation
            } else {
                crate::password_links::Purpose::Reset
            };
            crate::password_links::render_mail(
                pool,
                base_url,
                lang,
                association,
                recipient_id,
                &name,
                purpose,
            )
            .await?
        }
        MailContent::PaymentRequest(request) => {
            request
                .render(pool, settings, base_url, lang, association, &name)
                .await?
        }
        MailContent::PaymentRequestPaid(paid) => paid.render(base_url, lang, association, &name)?,
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Sends what is due now; each mail is leased for five minutes before it is sent, so that
/// two workers (in one process or several sharing the database) never send it twice.
pub async fn deliver_due(
    pool: &Pool,
    mailer: &Mailer,
    settings: &Settings,
    base_url: &str,
) -> anyhow::Result<Delivery> {
    let now = db::now_text();
    let lease = db::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let due = "status = 'pending' AND next_attempt_at <= $2";
    let returned = "id, recipient_id, recipient_email, payload, attempts";
    // One statement claims the mail due: on PostgreSQL, rows another process is claiming are
    // skipped rather than waited for; SQLite has one writer, and the guard re-checks.
    let claim = if db::is_postgres(pool) {
        format!(
            "WITH picked AS (SELECT id FROM mail_outbox WHERE {due} \
             ORDER BY next_attempt_at, id LIMIT 50 FOR UPDATE SKIP LOCKED) \
             UPDATE mail_outbox SET next_attempt_at = $1 FROM picked \
             WHERE mail_outbox.id = picked.id RETURNING mail_outbox.id, recipient_id, \
             recipient_email, payload, attempts"
        )
    } else {
        format!(
            "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id IN (SELECT id FROM mail_outbox \
             WHERE {due} ORDER BY next_attempt_at, id LIMIT 50) AND {due} RETURNING {returned}"
        )
    };
    let claimed = sqlx::query(sqlx::AssertSqlSafe(claim))
        .bind(&lease)
        .bind(&now)
        .fetch_all(pool)
        .await
        .context("could not claim mail from the outbox")?;
    let mut delivery = Delivery::default();
    for row in claimed {
        let id: String = row.try_get("id")?;
        let attempts: i64 = row.try_get("attempts")?;
        let recipient_id: Option<String> = row.try_get("recipient_id")?;
        let to: String = row.try_get("recipient_email")?;
        let payload: String = row.try_get("payload")?;
        let result = match serde_json::from_str::<MailContent>(&payload) {
            Ok(content) => match render(
                pool,
                settings,
                base_url,
                recipient_id.as_deref(),
                &to,
                &content,
            )
            .await
            {
                Ok(message) => mailer.send(message).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(anyhow::anyhow!("unreadable mail payload: {e}")),
        };
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE mail_outbox SET status = 'sent', attempts = $2, sent_at = $3, last_error = NULL \
                     WHERE id = $1",
                )
                .bind(&id)
                .bind(attempts + 1)
                .bind(db::now_text())
                .execute(pool)
                .await
                .context("could not mark a mail sent")?;
                delivery.sent += 1;
            }
            Err(error) => {
                let attempts = attempts + 1;
                let give_up = attempts >= settings.mail.max_attempts;
                // 30 s, 1 min, 2 min... up to an hour between attempts.
                let wait = (30i64 << (attempts - 1).clamp(0, 7)).min(3600);
                let next = db::format_timestamp(
                    time::OffsetDateTime::now_utc() + time::Duration::seconds(wait),
                );
                tracing::warn!(mail_id = %id, attempts, error = ?error, "mail not sent");
                sqlx::query(
                    "UPDATE mail_outbox SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5 \
                     WHERE id = $1",
                )
                .bind(&id)
                .bind(if give_up { "failed" } else { "pending" })
                .bind(attempts)
                .bind(next)
                .bind(format!("{error:#}").chars().take(500).collect::<String>())
                .execute(pool)
                .await
                .context("could not record a mail failure")?;
                if give_up {
                    delivery.failed += 1;
                } else {
                    delivery.retried += 1;
                }
            }
        }
    }
    Ok(delivery)
}

/// Sends the outbox every `mail.poll_ms` until the process ends.
pub fn spawn_worker(pool: Pool, mailer: Mailer, settings: Arc<Settings>, base_url: String) {
    tokio::spawn(async move {
        let mut ticker =
            tokio::time::interval(Duration::from_millis(settings.mail.poll_ms.max(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = deliver_due(&pool, &mailer, &settings, &base_url).await {
                tracing::error!(error = ?error, "mail worker");
            }
        }
    });
}

/// Mail that could not be sent, for managers.
#[derive(Debug, Clone)]
pub struct StuckMail {
    pub to: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
}

pub async fn stuck(pool: &Pool) -> anyhow::Result<Vec<StuckMail>> {
    let rows = sqlx::query(
        "SELECT recipient_email, kind, status, attempts, last_error FROM mail_outbox \
         WHERE status = 'failed' OR (status = 'pending' AND attempts > 0) \
         ORDER BY created_at DESC LIMIT 50",
    )
    .fetch_all(pool)
    .await
    .context("could not read the outbox")?;
    rows.iter()
        .map(|r| {
            Ok(StuckMail {
                to: r.try_get("recipient_email")?,
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r
                    .try_get::<Option<String>, _>("last_error")?
                    .unwrap_or_default(),
            })
        })
        .collect()
}
