//! The emulator of PayPlug's REST API v1 (`/sandbox/payplug/v1/...`) and hosted payment page
//! (`/sandbox/payplug/pay/{id}`). Like PayPlug it wants `Authorization: Bearer sk_test_…` and a
//! `PayPlug-Version` header, JSON bodies with amounts in integer cents within PayPlug's
//! limits, the PSD2 billing and shipping blocks; it answers errors as `{object: "error",
//! message, details}`, and POSTs the unsigned resource (payment or refund) to the
//! notification URL, retried until the merchant answers 2xx.

mod hosted;
mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use self::hosted::{control, hosted, hosted_action};
use self::rules::{
    CreateBody, Customer, MIN_REFUND, PatchBody, RefundBody, api_error, bad_request, check_call,
    check_create,
};
use super::common;
use crate::config::Settings;

/// How long after payment a refund stays possible (PayPlug: about 13 months).
const REFUNDABLE_FOR_SECS: i64 = 396 * 24 * 3600;

#[derive(Clone)]
struct EmulatedRefund {
    id: String,
    amount: i64,
    created_at: i64,
    metadata: Value,
}

#[derive(Clone)]
struct EmulatedPayment {
    id: String,
    amount: i64,
    currency: String,
    created_at: i64,
    paid_at: Option<i64>,
    failure: Option<(&'static str, &'static str)>,
    description: Option<String>,
    billing: Value,
    shipping: Value,
    metadata: Value,
    return_url: String,
    cancel_url: Option<String>,
    notification_url: Option<String>,
    refunds: Vec<EmulatedRefund>,
}

impl EmulatedPayment {
    fn is_open(&self) -> bool {
        self.paid_at.is_none() && self.failure.is_none()
    }

    fn amount_refunded(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount).sum()
    }

    fn refund_json(&self, refund: &EmulatedRefund) -> Value {
        json!({
            "id": refund.id,
            "object": "refund",
            "payment_id": self.id,
            "is_live": false,
            "amount": refund.amount,
            "currency": self.currency,
            "created_at": refund.created_at,
            "metadata": refund.metadata,
        })
    }

    fn to_json(&self, public_base: &str) -> Value {
        let refunded = self.amount_refunded();
        json!({
            "id": self.id,
            "object": "payment",
            "is_live": false,
            "amount": self.amount,
            "amount_refunded": refunded,
            "currency": self.currency,
            "created_at": self.created_at,
            "is_paid": self.paid_at.is_some(),
            "paid_at": self.paid_at,
            "is_refunded": self.paid_at.is_some() && refunded >= self.amount,
            "is_3ds": false,
            "save_card": false,
            "installment_plan_id": null,
            "authorization": null,
            "refundable_after": self.paid_at,
            "refundable_until": self.paid_at.map(|t| t + REFUNDABLE_FOR_SECS),
            "card": {
                "last_4": null, "country": null, "exp_year": null,
                "exp_month": null, "brand": null, "id": null
            },
            "hosted_payment": {
                "payment_url": format!("{public_base}/sandbox/payplug/pay/{}", self.id),
                "return_url": self.return_url,
                "cancel_url": self.cancel_url,
                "paid_at": self.paid_at,
                "sent_by": null,
            },
            "notification": { "url": self.notification_url, "response_code": null },
            "failure": self.failure.map(|(code, message)| json!({"code": code, "message": message})),
            "description": self.description,
            "billing": self.billing,
            "shipping": self.shipping,
            "metadata": self.metadata,
        })
    }
}

pub struct Emulator {
    public_base: String,
    retry_ms: Vec<u64>,
    http: reqwest::Client,
    payments: Mutex<HashMap<String, EmulatedPayment>>,
}

type Refusal = (StatusCode, String);

fn refused((status, message): Refusal) -> HttpResponse {
    api_error(status, &message, None)
}

impl Emulator {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Self {
        Emulator {
            public_base: public_base.trim_end_matches('/').to_string(),
            retry_ms: settings.sandbox.notify_retry_ms.clone(),
            http,
            payments: Mutex::new(HashMap::new()),
        }
    }

    fn payment(&self, id: &str) -> Option<EmulatedPayment> {
        self.payments.lock().ok()?.get(id).cloned()
    }

    /// Applies `change` to the payment and returns it as it now is.
    fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut EmulatedPayment) -> Result<(), Refusal>,
    ) -> Result<EmulatedPayment, Refusal> {
        let mut payments = self
            .payments
            .lock()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "lock".to_string()))?;
        let payment = payments
            .get_mut(id)
            .ok_or((StatusCode::NOT_FOUND, "The resource was not found.".into()))?;
        change(payment)?;
        Ok(payment.clone())
    }

    /// POSTs the resource as it now is, unsigned, as PayPlug does, in the background.
    fn notify(self: &Arc<Self>, url: Option<&str>, resource: &Value) {
        let (Some(url), Ok(body)) = (url, serde_json::to_vec(resource)) else {
            return;
        };
        tokio::spawn(common::deliver(
            self.http.clone(),
            url.to_string(),
            vec![("Content-Type".into(), "application/json".into())],
            body,
            self.retry_ms.clone(),
        ));
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/sandbox/payplug/v1/payments",
        web::post().to(api_create_payment),
    )
    .route(
        "/sandbox/payplug/v1/payments",
        web::get().to(api_list_payments),
    )
    .route(
        "/sandbox/payplug/v1/payments/{id}",
        web::get().to(api_get_payment),
    )
    .route(
        "/sandbox/payplug/v1/payments/{id}",
        web::patch().to(api_patch_payment),
    )
    .route(
        "/sandbox/payplug/v1/payments/{id}/refunds",
        web::post().to(api_create_refund),
    )
    .route(
        "/sandbox/payplug/v1/payments/{id}/refunds",
        web::get().to(api_list_refunds),
    )
    .route(
        "/sandbox/payplug/v1/payments/{id}/refunds/{refund_id}",
        web::get().to(api_get_refund),
    )
    .route("/sandbox/payplug/pay/{id}", web::get().to(hosted))
    .route("/sandbox/payplug/pay/{id}", web::post().to(hosted_action))
    .route("/sandbox/_control/payplug/{id}", web::post().to(control));
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn new_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &raw[..22])
}

async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, true) {
        return refusal;
    }
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            let mut details = Map::new();
            details.insert("body".into(), e.to_string().into());
            return bad_request(details);
        }
    };
    let amount = match check_create(&body) {
        Ok(amount) => amount,
        Err(details) => return bad_request(details),
    };
    // PayPlug echoes the blocks it was given.
    let to_value = |c: &Option<Customer>| serde_json::to_value(c).unwrap_or(Value::Null);
    let hosted = body.hosted_payment.as_ref();
    let payment = EmulatedPayment {
        id: new_id("pay"),
        amount,
        currency: "EUR".into(),
        created_at: now(),
        paid_at: None,
        failure: None,
        description: body.description.clone(),
        billing: to_value(&body.billing),
        shipping: to_value(&body.shipping),
        metadata: body.metadata.clone().map_or(json!({}), Value::Object),
        return_url: hosted
            .and_then(|h| h.return_url.clone())
            .unwrap_or_default(),
        cancel_url: hosted.and_then(|h| h.cancel_url.clone()),
        notification_url: body.notification_url.clone(),
        refunds: Vec::new(),
    };
    let answer = payment.to_json(&emulator.public_base);
    if let Ok(mut payments) = emulator.payments.lock() {
        payments.insert(payment.id.clone(), payment);
    }
    HttpResponse::Created().json(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    page: usize,
    #[serde(default = "default_per_page")]
    per_page: usize,
}

fn default_per_page() -> usize {
    10
}

/// `GET /v1/payments?page=&per_page=`: the newest payments first, a page at a time.
async fn api_list_payments(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    query: Result<web::Query<ListQuery>, actix_web::Error>,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, false) {
        return refusal;
    }
    let Ok(query) = query else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Only page and per_page (numbers) may be given.",
            None,
        );
    };
    if !(1..=100).contains(&query.per_page) {
        return api_error(StatusCode::BAD_REQUEST, "per_page must be 1 to 100.", None);
    }
    let mut payments: Vec<EmulatedPayment> = match emulator.payments.lock() {
        Ok(payments) => payments.values().cloned().collect(),
        Err(_) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, "lock", None),
    };
    payments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let start = query.page.saturating_mul(query.per_page);
    let data: Vec<Value> = payments
        .iter()
        .skip(start)
        .take(query.per_page)
        .map(|p| p.to_json(&emulator.public_base))
        .collect();
    HttpResponse::Ok().json(json!({
        "object": "list",
        "page": query.page,
        "per_page": query.per_page,
        "has_more": payments.len() > start + data.len(),
        "data": data,
    }))
}

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, false) {
        return refusal;
    }
    match emulator.payment(&id) {
        Some(payment) => HttpResponse::Ok().json(payment.to_json(&emulator.public_base)),
        None => api_error(StatusCode::NOT_FOUND, "The resource was not found.", None),
    }
}

/// `PATCH {"aborted": true}`: the only update of a payment this emulator knows (deferred
/// capture is not emulated).
async fn api_patch_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, true) {
        return refusal;
    }
    let body: PatchBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            let mut details = Map::new();
            details.insert("body".into(), e.to_string().into());
            return bad_request(details);
        }
    };
    if !body.aborted {
        let mut details = Map::new();
        details.insert("aborted".into(), "Only true is allowed.".into());
        return bad_request(details);
    }
    let result = emulator.update(&id, |p| {
        if p.paid_at.is_some() {
            return Err((
                StatusCode::BAD_REQUEST,
                "The payment is already paid and cannot be aborted.".into(),
            ));
        }
        if p.failure.is_some() {
            return Err((
                StatusCode::BAD_REQUEST,
                "The payment has already failed and cannot be aborted.".into(),
            ));
        }
        p.failure = Some(("aborted", "The payment was aborted."));
        Ok(())
    });
    match result {
        Ok(payment) => HttpResponse::Ok().json(payment.to_json(&emulator.public_base)),
        Err(refusal) => refused(refusal),
    }
}

async fn api_create_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, true) {
        return refusal;
    }
    let body: RefundBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            let mut details = Map::new();
            details.insert("body".into(), e.to_string().into());
            return bad_request(details);
        }
    };
    let asked = match &body.amount {
        None => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            let mut details = Map::new();
            details.insert(
                "amount".into(),
                "The amount must be an integer number of cents.".into(),
            );
            return bad_request(details);
        }
    };
    let refund_id = new_id("re");
    let result = emulator.update(&id, |p| {
        if p.paid_at.is_none() {
            return Err((
                StatusCode::BAD_REQUEST,
                "Only a paid payment can be refunded.".into(),
            ));
        }
        let left = p.amount - p.amount_refunded();
        // Without an amount PayPlug refunds what is left.
        let amount = asked.unwrap_or(left);
        if amount < MIN_REFUND || amount > left {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("The refund amount must be between {MIN_REFUND} and {left} cents."),
            ));
        }
        p.refunds.push(EmulatedRefund {
            id: refund_id.clone(),
            amount,
            created_at: now(),
            metadata: body.metadata.clone().map_or(json!({}), Value::Object),
        });
        Ok(())
    });
    match result {
        Ok(payment) => {
            let Some(refund) = payment.refunds.iter().find(|r| r.id == refund_id) else {
                return refused((StatusCode::INTERNAL_SERVER_ERROR, "refund lost".into()));
            };
            let answer = payment.refund_json(refund);
            emulator
                .into_inner()
                .notify(payment.notification_url.as_deref(), &answer);
            HttpResponse::Created().json(answer)
        }
        Err(refusal) => refused(refusal),
    }
}

async fn api_list_refunds(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, false) {
        return refusal;
    }
    match emulator.payment(&id) {
        Some(payment) => {
            let data: Vec<Value> = payment
                .refunds
                .iter()
                .map(|r| payment.refund_json(r))
                .collect();
            HttpResponse::Ok().json(json!({ "object": "list", "data": data }))
        }
        None => api_error(StatusCode::NOT_FOUND, "The resource was not found.", None),
    }
}

async fn api_get_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    if let Some(refusal) = check_call(&request, false) {
        return refusal;
    }
    let (id, refund_id) = path.into_inner();
    let found = emulator.payment(&id).and_then(|p| {
        let refund = p.refunds.iter().find(|r| r.id == refund_id)?;
        Some(p.refund_json(refund))
    });
    match found {
        Some(refund) => HttpResponse::Ok().json(refund),
        None => api_error(StatusCode::NOT_FOUND, "The resource was not found.", None),
    }
}
