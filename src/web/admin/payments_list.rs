//! `/admin/payments`: every payment attempt, newest first, filtered by status, gateway,
//! member (name or email) and flagged anomalies, fifty a page. Each links to its page, with
//! the notifications received (raw, with their verdict), refunds and the refund and cancel
//! buttons.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Row};

use crate::domain::{Money, PaymentStatus, local_date};
use crate::web::{AppError, AppState, Layout, ManagerUser, render};

const PAGE: i64 = 50;
const STATUSES: [&str; 8] = [
    "created",
    "pending",
    "paid",
    "failed",
    "cancelled",
    "expired",
    "refunded",
    "partially_refunded",
];

#[derive(Deserialize, Default)]
pub struct PaymentsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    flagged: String,
    #[serde(default)]
    page: Option<i64>,
}

pub struct PaymentRow {
    pub id: String,
    pub date: String,
    pub member_id: String,
    pub member: String,
    pub gateway: String,
    pub amount: String,
    pub fee: String,
    pub status: &'static str,
    pub gateway_ref: String,
    pub anomaly: Option<AnomalyTag>,
}

/// A flagged payment's anomaly: what it means and its code.
pub struct AnomalyTag {
    pub label: &'static str,
    pub code: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/payments.html")]
struct PaymentsView {
    layout: Layout,
    rows: Vec<PaymentRow>,
    statuses: Vec<Choice>,
    gateways: Vec<Choice>,
    q: String,
    flagged: bool,
    total: i64,
    page: i64,
    pages: i64,
    /// The filters as a query string, for the page links.
    filters: String,
}

pub async fn list(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<PaymentsQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let lang = crate::i18n::current();
    let status = query.status.trim();
    if !status.is_empty() && PaymentStatus::parse(status).is_none() {
        let typed = status.chars().take(40).collect::<String>();
        return Err(AppError::BadRequest(
            lang.tf("payments_list.unknown_status", &[("status", &typed)]),
        ));
    }
    let gateway = query.gateway.trim();
    if gateway.len() > 40 || !gateway.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(AppError::BadRequest(
            lang.t("payments_list.unknown_gateway").into(),
        ));
    }
    let q: String = query.q.trim().chars().take(100).collect();
    let flagged = query.flagged == "1";
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);

    // Filters are bound, never spliced: only the shape of the WHERE clause varies.
    let mut clauses = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    if !status.is_empty() {
        binds.push(status.to_string());
        clauses.push(format!("p.status = ${}", binds.len()));
    }
    if !gateway.is_empty() {
        binds.push(gateway.to_string());
        clauses.push(format!("p.gateway = ${}", binds.len()));
    }
    if !q.is_empty() {
        binds.push(format!("%{}%", q.to_lowercase()));
        let n = binds.len();
        clauses.push(format!(
            "(LOWER(u.email) LIKE ${n} OR LOWER(u.first_name || ' ' || u.last_name) LIKE ${n} \
             OR LOWER(COALESCE(p.gateway_ref, '')) LIKE ${n} OR p.id LIKE ${n})"
        ));
    }
    if flagged {
        clauses.push("p.anomaly IS NOT NULL".to_string());
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let from = format!("FROM payments p JOIN users u ON u.id = p.member_id {filter}");

    let count_sql = format!("SELECT COUNT(*) {from}");
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
    for b in &binds {
        count = count.bind(b.clone());
    }
    let total = count
        .fetch_one(&state.pool)
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?;
    let pages = ((total + PAGE - 1) / PAGE).max(1);
    let page = page.min(pages);

    let list_sql = format!(
        "SELECT p.id, p.member_id, p.gateway, p.amount_cents, p.paid_amount_cents, p.fee_cents, \
         p.status, p.gateway_ref, p.anomaly, p.created_at, u.first_name, u.last_name {from} \
         ORDER BY p.created_at DESC, p.id DESC LIMIT {PAGE} OFFSET {}",
        (page - 1) * PAGE
    );
    let mut list = sqlx::query(AssertSqlSafe(list_sql));
    for b in &binds {
        list = list.bind(b.clone());
    }
    let found = list
        .fetch_all(&state.pool)
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?;
    let registry = state.gateways.current();
    let gateway_name = |id: &str| {
        registry
            .get(id)
            .map_or_else(|| id.to_string(), |g| g.display_name().to_string())
    };
    let mut rows = Vec::with_capacity(found.len());
    for row in &found {
        let get = |e: sqlx::Error| AppError::Unexpected(e.into());
        let status: String = row.try_get("status").map_err(get)?;
        let amount: i64 = row.try_get("amount_cents").map_err(get)?;
        let paid: Option<i64> = row.try_get("paid_amount_cents").map_err(get)?;
        let fee: Option<i64> = row.try_get("fee_cents").map_err(get)?;
        let first: String = row.try_get("first_name").map_err(get)?;
        let last: String = row.try_get("last_name").map_err(get)?;
        let gateway_id: String = row.try_get("gateway").map_err(get)?;
        let created: String = row.try_get("created_at").map_err(get)?;
        rows.push(PaymentRow {
            id: row.try_get("id").map_err(get)?,
            date: local_date(&created),
            member_id: row.try_get("member_id").map_err(get)?,
            member: format!("{first} {last}"),
            gateway: gateway_name(&gateway_id),
            amount: Money::from_cents(paid.unwrap_or(amount)).to_string(),
            fee: fee
                .map(|f| Money::from_cents(f).to_string())
                .unwrap_or_default(),
            status: PaymentStatus::parse(&status).map_or("?", PaymentStatus::label_fr),
            gateway_ref: row
                .try_get::<Option<String>, _>("gateway_ref")
                .map_err(get)?
                .unwrap_or_default(),
            anomaly: row
                .try_get::<Option<String>, _>("anomaly")
                .map_err(get)?
                .map(|a| AnomalyTag {
                    label: crate::payments::anomaly_label(&a),
                    code: crate::payments::anomaly_code(&a).to_string(),
                }),
        });
    }
    let statuses = STATUSES
        .iter()
        .map(|s| Choice {
            value: s.to_string(),
            label: PaymentStatus::parse(s)
                .map_or("", PaymentStatus::label_fr)
                .to_string(),
            selected: *s == status,
        })
        .collect();
    let gateways = registry
        .all()
        .iter()
        .map(|g| Choice {
            value: g.id().to_string(),
            label: g.display_name().to_string(),
            selected: g.id() == gateway,
        })
        .collect();
    let filters = serde_urlencoded::to_string([
        ("status", status),
        ("gateway", gateway),
        ("q", q.as_str()),
        ("flagged", if flagged { "1" } else { "" }),
    ])
    .unwrap_or_default();
    let view = PaymentsView {
        layout: current.layout(&state),
        rows,
        statuses,
        gateways,
        q,
        flagged,
        total,
        page,
        pages,
        filters,
    };
    Ok(render(StatusCode::OK, &view))
}
