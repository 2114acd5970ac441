//! Payment requests: a manager asks a member (or every member who owes) to pay what they owe,
//! by a mail whose personal link leads straight to paying. A request is `sent`, then `paid`
//! (its payment confirmed, or the member's whole balance paid), `cancelled` by a manager, or
//! `expired`. The manager who sent it is told once when it is paid.

mod link;
mod mail;

use anyhow::Context;
use sqlx::{AssertSqlSafe, Row};

pub use link::{LinkKey, looks_like_token, token_hash};
pub use mail::{DueLine, RequestMail, RequestPaidMail};

use crate::db::{self, Pool, Tx};
use crate::domain::Money;
use crate::mail::{self as outbox, MailContent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Sent,
    Paid,
    Cancelled,
    Expired,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Sent,
        RequestStatus::Paid,
        RequestStatus::Cancelled,
        RequestStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Sent => "sent",
            RequestStatus::Paid => "paid",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The status as the reader's language names it.
    pub fn label(self) -> &'static str {
        crate::i18n::current().t(match self {
            RequestStatus::Sent => "request_status.sent",
            RequestStatus::Paid => "request_status.paid",
            RequestStatus::Cancelled => "request_status.cancelled",
            RequestStatus::Expired => "request_status.expired",
        })
    }
}

#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub id: String,
    pub member_id: String,
    pub requested_by: String,
    /// What the member owed when the request was sent.
    pub amount: Money,
    /// The gateway the manager chose (None: the member chooses).
    pub gateway: Option<String>,
    pub message: Option<String>,
    pub status: RequestStatus,
    pub payment_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub paid_at: Option<String>,
    pub expires_at: String,
}

impl PaymentRequest {
    /// Still to be paid, and its link still valid at `now`.
    pub fn is_open_at(&self, now: &str) -> bool {
        self.status == RequestStatus::Sent && self.expires_at.as_str() > now
    }
}

const COLUMNS: &str = "r.id, r.member_id, r.requested_by, r.amount_cents, r.gateway, r.message, \
    r.status, r.payment_id, r.created_at, r.updated_at, r.paid_at, r.expires_at";

fn from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<PaymentRequest> {
    let status: String = row.try_get("status")?;
    Ok(PaymentRequest {
        id: row.try_get("id")?,
        member_id: row.try_get("member_id")?,
        requested_by: row.try_get("requested_by")?,
        amount: Money::from_cents(row.try_get("amount_cents")?),
        gateway: row.try_get("gateway")?,
        message: row.try_get("message")?,
        status: RequestStatus::parse(&status)
            .with_context(|| format!("unknown payment request status {status:?}"))?,
        payment_id: row.try_get("payment_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        paid_at: row.try_get("paid_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// A request to send to one member.
pub struct NewRequest<'a> {
    pub member_id: &'a str,
    pub requested_by: &'a str,
    /// Names the form: sending it twice asks each member once.
    pub batch_key: &'a str,
    pub gateway: Option<&'a str>,
    /// The gateway's name, for the mail.
    pub gateway_label: Option<&'a str>,
    pub message: Option<&'a str>,
    pub expiry_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Created {
        id: String,
        amount: Money,
    },
    /// This form had already asked this member.
    AlreadySent,
    /// The member owes nothing now.
    NothingOwed,
}

/// Records the request and queues its mail in one transaction, for what the member owes now.
pub async fn send(pool: &Pool, key: &LinkKey, new: NewRequest<'_>) -> anyhow::Result<Sent> {
    let id = db::new_id();
    let token_hash = token_hash(&key.token(&id)?);
    let now = time::OffsetDateTime::now_utc();
    let created_at = db::format_timestamp(now);
    let expires_at = db::format_timestamp(now + time::Duration::days(new.expiry_days.max(1)));
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    // Written first: it takes SQLite's write lock (a read first could not be upgraded once
    // another connection wrote) or locks the member's row in PostgreSQL, so what is owed
    // cannot change between reading it and recording the request.
    sqlx::query("UPDATE users SET active = active WHERE id = $1")
        .bind(new.member_id)
        .execute(&mut *tx)
        .await
        .context("could not lock the member")?;
    let due = owed_in(&mut tx, new.member_id).await?;
    if !due.balance().is_positive() {
        tx.rollback().await.ok();
        return Ok(Sent::NothingOwed);
    }
    let amount = due.balance();
    let inserted = sqlx::query(
        "INSERT INTO payment_requests (id, member_id, requested_by, batch_key, amount_cents, \
         gateway, message, status, token_hash, created_at, updated_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'sent', $8, $9, $9, $10) \
         ON CONFLICT (batch_key, member_id) DO NOTHING",
    )
    .bind(&id)
    .bind(new.member_id)
    .bind(new.requested_by)
    .bind(new.batch_key)
    .bind(amount.cents())
    .bind(new.gateway)
    .bind(new.message)
    .bind(&token_hash)
    .bind(&created_at)
    .bind(&expires_at)
    .execute(&mut *tx)
    .await
    .context("could not record the payment request")?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await.ok();
        return Ok(Sent::AlreadySent);
    }
    let sender = full_name_in(&mut tx, new.requested_by).await?;
    // The mail leaves with the request, or not at all.
    outbox::enqueue(
        &mut tx,
        &format!("payment-request:{id}"),
        new.member_id,
        &MailContent::PaymentRequest(RequestMail {
            request_id: id.clone(),
            amount_cents: amount.cents(),
            paid_cents: due.paid.cents(),
            lines: due.lines,
            message: new.message.map(str::to_string),
            gateway: new.gateway_label.map(str::to_string),
            sender,
            expires_on: expires_at[..10].to_string(),
        }),
    )
    .await?;
    tx.commit()
        .await
        .context("could not commit the payment request")?;
    Ok(Sent::Created { id, amount })
}

/// What a member owes: the charges of their basket and what they paid against them.
struct Owed {
    lines: Vec<DueLine>,
    paid: Money,
}

impl Owed {
    fn balance(&self) -> Money {
        self.lines
            .iter()
            .map(|l| Money::from_cents(l.amount_cents))
            .sum::<Money>()
            - self.paid
    }
}

async fn owed_in(tx: &mut Tx<'_>, member_id: &str) -> anyhow::Result<Owed> {
    let rows = sqlx::query(
        "SELECT kind, label, amount_cents FROM basket_lines WHERE member_id = $1 \
         ORDER BY occurred_on, created_at, id",
    )
    .bind(member_id)
    .fetch_all(&mut **tx)
    .await
    .context("could not read the basket")?;
    let mut owed = Owed {
        lines: Vec::new(),
        paid: Money::ZERO,
    };
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let amount = Money::from_cents(row.try_get("amount_cents")?);
        match kind.as_str() {
            "charge" => owed.lines.push(DueLine {
                label: row.try_get("label")?,
                amount_cents: amount.cents(),
            }),
            "payment" => owed.paid = owed.paid + amount,
            _ => owed.paid = owed.paid - amount,
        }
    }
    Ok(owed)
}

async fn full_name_in(tx: &mut Tx<'_>, user_id: &str) -> anyhow::Result<String> {
    let row = sqlx::query("SELECT first_name, last_name FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await
        .context("could not read a user's name")?;
    let first: String = row.try_get("first_name")?;
    let last: String = row.try_get("last_name")?;
    Ok(format!("{first} {last}"))
}

/// Requests whose link has run out become `expired`.
pub async fn expire_due(pool: &Pool) -> anyhow::Result<u64> {
    let now = db::now_text();
    let done = sqlx::query(
        "UPDATE payment_requests SET status = 'expired', updated_at = $1 \
         WHERE status = 'sent' AND expires_at <= $1",
    )
    .bind(&now)
    .execute(pool)
    .await
    .context("could not expire payment requests")?;
    Ok(done.rows_affected())
}

pub async fn find(pool: &Pool, id: &str) -> anyhow::Result<Option<PaymentRequest>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payment_requests r WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("could not read the payment request")?;
    row.as_ref().map(from_row).transpose()
}

/// The request a link's token opens, if any.
pub async fn find_by_token(pool: &Pool, token: &str) -> anyhow::Result<Option<PaymentRequest>> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payment_requests r WHERE r.token_hash = $1"
    )))
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await
    .context("could not read the payment request")?;
    row.as_ref().map(from_row).transpose()
}

/// A request as managers list it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub request: PaymentRequest,
    pub member_name: String,
    pub member_email: String,
    pub requested_by_name: String,
}

/// The latest requests, newest first, of one status and of one member when given.
pub async fn list(
    pool: &Pool,
    status: Option<RequestStatus>,
    member_id: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Listed>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS}, m.first_name AS m_first, m.last_name AS m_last, m.email AS m_email, \
         b.first_name AS b_first, b.last_name AS b_last \
         FROM payment_requests r JOIN users m ON m.id = r.member_id \
         JOIN users b ON b.id = r.requested_by \
         WHERE ($1 = '' OR r.status = $1) AND ($2 = '' OR r.member_id = $2) \
         ORDER BY r.created_at DESC, r.id DESC LIMIT $3"
    )))
    .bind(status.map_or("", RequestStatus::as_str))
    .bind(member_id.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("could not list payment requests")?;
    rows.iter()
        .map(|row| {
            let m_first: String = row.try_get("m_first")?;
            let m_last: String = row.try_get("m_last")?;
            let b_first: String = row.try_get("b_first")?;
            let b_last: String = row.try_get("b_last")?;
            Ok(Listed {
                request: from_row(row)?,
                member_name: format!("{m_first} {m_last}"),
                member_email: row.try_get("m_email")?,
                requested_by_name: format!("{b_first} {b_last}"),
            })
        })
        .collect()
}

/// Cancels a request still open; false when it was not (any more).
pub async fn cancel(pool: &Pool, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE payment_requests SET status = 'cancelled', updated_at = $2 \
         WHERE id = $1 AND status = 'sent'",
    )
    .bind(id)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not cancel the payment request")?;
    Ok(done.rows_affected() == 1)
}

/// Remembers that this payment attempt was started from this request's link.
pub async fn link_attempt(pool: &Pool, request_id: &str, payment_id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO payment_request_attempts (payment_id, request_id, created_at) \
         VALUES ($1, $2, $3)",
    )
    .bind(payment_id)
    .bind(request_id)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not link the payment attempt to its request")?;
    Ok(())
}

/// The latest attempt started from this request's link.
pub async fn latest_attempt(pool: &Pool, request_id: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT payment_id FROM payment_request_attempts WHERE request_id = $1 \
         ORDER BY created_at DESC, payment_id DESC LIMIT 1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await
    .context("could not read the request's attempts")
}

/// The hook of `payments::apply_report`, in its transaction, once new money of `payment_id`
/// was posted: the request the attempt was made for is paid, and so are all of the member's
/// open requests once their balance is settled (through their basket, say). Each request is
/// marked paid by a guarded update and its manager's notice has a unique key, so a repeated
/// notification tells no one twice.
pub async fn settle_after_payment(
    tx: &mut Tx<'_>,
    payment_id: &str,
    member_id: &str,
    now: &str,
) -> anyhow::Result<()> {
    // Most payments settle no request: one query says so.
    let row = sqlx::query(
        "SELECT (SELECT request_id FROM payment_request_attempts WHERE payment_id = $1) AS linked, \
         (SELECT COUNT(*) FROM payment_requests WHERE member_id = $2 AND status = 'sent') AS open",
    )
    .bind(payment_id)
    .bind(member_id)
    .fetch_one(&mut **tx)
    .await
    .context("could not find the payment's request")?;
    let linked: Option<String> = row.try_get("linked")?;
    let open: i64 = row.try_get("open")?;
    if linked.is_none() && open == 0 {
        return Ok(());
    }
    if let Some(request_id) = linked {
        // Paid through its link: even if it expired while the member was at the gateway.
        mark_paid(tx, &request_id, payment_id, now, true).await?;
    }
    if owed_in(tx, member_id).await?.balance().is_positive() {
        return Ok(());
    }
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM payment_requests WHERE member_id = $1 AND status = 'sent' ORDER BY id",
    )
    .bind(member_id)
    .fetch_all(&mut **tx)
    .await
    .context("could not list the member's open requests")?;
    for request_id in open {
        mark_paid(tx, &request_id, payment_id, now, false).await?;
    }
    Ok(())
}

async fn mark_paid(
    tx: &mut Tx<'_>,
    request_id: &str,
    payment_id: &str,
    now: &str,
    via_link: bool,
) -> anyhow::Result<()> {
    let guard = if via_link {
        "status IN ('sent', 'expired')"
    } else {
        "status = 'sent'"
    };
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE payment_requests SET status = 'paid', payment_id = $2, paid_at = $3, \
         updated_at = $3 WHERE id = $1 AND {guard}"
    )))
    .bind(request_id)
    .bind(payment_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("could not mark the payment request paid")?;
    if done.rows_affected() != 1 {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT r.requested_by, r.member_id, COALESCE(p.paid_amount_cents, p.amount_cents) AS paid \
         FROM payment_requests r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1",
    )
    .bind(request_id)
    .fetch_one(&mut **tx)
    .await
    .context("could not read the paid request")?;
    let requested_by: String = row.try_get("requested_by")?;
    let member_id: String = row.try_get("member_id")?;
    let member_name = full_name_in(tx, &member_id).await?;
    outbox::enqueue(
        tx,
        &format!("payment-request-paid:{request_id}"),
        &requested_by,
        &MailContent::PaymentRequestPaid(RequestPaidMail {
            request_id: request_id.to_string(),
            member_name,
            amount_cents: row.try_get("paid")?,
            payment_id: payment_id.to_string(),
            date: now[..10].to_string(),
            via_link,
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_and_unknown_ones_are_refused() {
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RequestStatus::parse("pending"), None);
        assert_eq!(RequestStatus::parse(""), None);
    }
}
