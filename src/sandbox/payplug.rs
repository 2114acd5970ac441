//! The emulator of PayPlug's REST API v1 (`/sandbox/payplug/v1/...`) and hosted payment page
//! (`/sandbox/payplug/pay/{id}`). Like PayPlug it wants `Authorization: Bearer sk_test_…` and a
//! `PayPlug-Version` header, JSON bodies with amounts in integer cents within PayPlug's
//! limits, the PSD2 billing and shipping blocks; it answers errors as `{object: "error",
//! message, details}`, and POSTs the unsigned resource (payment or refund) to the
//! notification URL, retried until the merchant answers 2xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::{self, ControlBody, HostedActionForm, HostedPage, PayerAction};
use crate::config::Settings;
use crate::domain::Money;
use crate::gateways::payplug::{API_VERSION, EMULATOR_SECRET_KEY};

/// PayPlug's limits on one payment, in cents (0,99 € to 20 000 €).
pub const MIN_AMOUNT: i64 = 99;
pub const MAX_AMOUNT: i64 = 2_000_000;
/// The smallest refund PayPlug accepts, in cents.
const MIN_REFUND: i64 = 10;
/// How long after payment a refund stays possible (PayPlug: about 13 months).
const REFUNDABLE_FOR_SECS: i64 = 396 * 24 * 3600;
const DELIVERY_TYPES: [&str; 7] = [
    "BILLING",
    "VERIFIED",
    "NEW",
    "SHIP_TO_STORE",
    "DIGITAL_GOODS",
    "TRAVEL_OR_EVENT",
    "OTHER",
];

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

fn api_error(status: StatusCode, message: &str, details: Option<Value>) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "object": "error",
        "message": message,
        "details": details,
    }))
}

fn bad_request(details: Map<String, Value>) -> HttpResponse {
    api_error(
        StatusCode::BAD_REQUEST,
        "Some of the parameters are invalid.",
        Some(Value::Object(details)),
    )
}

fn refused((status, message): Refusal) -> HttpResponse {
    api_error(status, &message, None)
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// What PayPlug checks on every call before reading it: the secret key, then the API version
/// (without the header PayPlug falls back to its legacy API, whose format this emulator does
/// not speak, so it refuses rather than pretend), then JSON for a body.
fn check_call(request: &HttpRequest, has_body: bool) -> Result<(), HttpResponse> {
    let key = header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if !key.is_some_and(|k| same_secret(k, EMULATOR_SECRET_KEY)) {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "The API key you provided is not valid.",
            None,
        ));
    }
    match header(request, "payplug-version") {
        None => {
            return Err(api_error(
                StatusCode::BAD_REQUEST,
                "The PayPlug-Version header is required: this API speaks only 2019-08-06.",
                None,
            ));
        }
        Some(version) if version != API_VERSION => {
            return Err(api_error(
                StatusCode::BAD_REQUEST,
                &format!("Unknown API version {version:?}: this API speaks only 2019-08-06."),
                None,
            ));
        }
        Some(_) => {}
    }
    if has_body
        && !header(request, "content-type").is_some_and(|v| v.starts_with("application/json"))
    {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "The request body must be JSON (Content-Type: application/json).",
            None,
        ));
    }
    Ok(())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn new_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &raw[..22])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Customer {
    title: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    mobile_phone_number: Option<String>,
    landline_phone_number: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    company_name: Option<String>,
    postcode: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    language: Option<String>,
    delivery_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostedRequest {
    return_url: Option<String>,
    cancel_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    amount: Value,
    currency: Option<String>,
    billing: Option<Customer>,
    shipping: Option<Customer>,
    hosted_payment: Option<HostedRequest>,
    notification_url: Option<String>,
    description: Option<String>,
    metadata: Option<Map<String, Value>>,
    save_card: Option<bool>,
    allow_save_card: Option<bool>,
}

fn is_absolute_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn check_customer(
    block: &str,
    customer: Option<&Customer>,
    shipping: bool,
    details: &mut Map<String, Value>,
) {
    let mut fail = |field: &str, message: &str| {
        details.insert(format!("{block}.{field}"), Value::from(message));
    };
    let Some(c) = customer else {
        fail("", "This field is required.");
        return;
    };
    for (field, value) in [("first_name", &c.first_name), ("last_name", &c.last_name)] {
        match value {
            Some(v) if !v.trim().is_empty() && v.chars().count() <= 100 => {}
            _ => fail(field, "Required, at most 100 characters."),
        }
    }
    match &c.email {
        Some(e)
            if e.len() <= 255
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) => {}
        _ => fail("email", "A valid email address is required."),
    }
    if let Some(title) = &c.title
        && !["mr", "mrs", "miss"].contains(&title.as_str())
    {
        fail("title", "Must be mr, mrs or miss.");
    }
    if let Some(country) = &c.country
        && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        fail("country", "Must be an ISO 3166-1 alpha-2 code.");
    }
    if let Some(language) = &c.language
        && !(language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()))
    {
        fail("language", "Must be an ISO 639-1 code.");
    }
    for (field, value) in [
        ("mobile_phone_number", &c.mobile_phone_number),
        ("landline_phone_number", &c.landline_phone_number),
    ] {
        if let Some(v) = value
            && !(v.starts_with('+') && v.len() > 4 && v[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            fail(field, "Must be in E.164 format.");
        }
    }
    let long = [
        &c.address1,
        &c.address2,
        &c.company_name,
        &c.postcode,
        &c.city,
        &c.state,
    ];
    if long
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.chars().count() > 255))
    {
        fail("address", "At most 255 characters per field.");
    }
    match (&c.delivery_type, shipping) {
        (Some(t), true) if DELIVERY_TYPES.contains(&t.as_str()) => {}
        (_, true) => fail(
            "delivery_type",
            "Required, one of the documented delivery types.",
        ),
        (Some(_), false) => fail("delivery_type", "Only allowed in shipping."),
        (None, false) => {}
    }
}

/// Every rule of PayPlug's create call the emulator knows, with PayPlug-style details.
fn check_create(body: &CreateBody) -> Result<i64, Map<String, Value>> {
    let mut details = Map::new();
    let amount = match &body.amount {
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match amount {
        None => {
            details.insert(
                "amount".into(),
                "The amount must be an integer number of cents.".into(),
            );
        }
        Some(a) if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&a) => {
            details.insert(
                "amount".into(),
                format!("The amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} cents.").into(),
            );
        }
        Some(_) => {}
    }
    if body.currency.as_deref() != Some("EUR") {
        details.insert("currency".into(), "Only EUR is supported.".into());
    }
    check_customer("billing", body.billing.as_ref(), false, &mut details);
    check_customer("shipping", body.shipping.as_ref(), true, &mut details);
    match &body.hosted_payment {
        Some(HostedRequest {
            return_url: Some(url),
            ..
        }) if is_absolute_http_url(url) => {}
        _ => {
            details.insert(
                "hosted_payment.return_url".into(),
                "An absolute http(s) URL is required.".into(),
            );
        }
    }
    let optional_urls = [
        (
            "hosted_payment.cancel_url",
            body.hosted_payment
                .as_ref()
                .and_then(|h| h.cancel_url.as_ref()),
        ),
        ("notification_url", body.notification_url.as_ref()),
    ];
    for (name, url) in optional_urls {
        if let Some(url) = url
            && !is_absolute_http_url(url)
        {
            details.insert(name.into(), "Must be an absolute http(s) URL.".into());
        }
    }
    // Saving cards needs PayPlug's "Pro" offer; the emulated account is a plain test account.
    if body.save_card == Some(true) || body.allow_save_card == Some(true) {
        details.insert(
            "save_card".into(),
            "Saving cards is not enabled on this account.".into(),
        );
    }
    if let Some(metadata) = &body.metadata {
        for (key, value) in metadata {
            let fits = match value {
                Value::String(s) => s.chars().count() <= 500,
                Value::Number(_) | Value::Bool(_) => true,
                _ => false,
            };
            if !fits || key.chars().count() > 100 {
                details.insert(
                    format!("metadata.{key}"),
                    "A scalar value of at most 500 characters.".into(),
                );
            }
        }
    }
    match amount {
        Some(a) if details.is_empty() => Ok(a),
        _ => Err(details),
    }
}

async fn api_create_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refusal) = check_call(&request, true) {
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
    let to_value = |c: &Option<Customer>| {
        c.as_ref().map_or(Value::Null, |c| {
            json!({
                "title": c.title, "first_name": c.first_name, "last_name": c.last_name,
                "email": c.email, "address1": c.address1, "address2": c.address2,
                "postcode": c.postcode, "city": c.city, "state": c.state,
                "country": c.country, "language": c.language,
                "mobile_phone_number": c.mobile_phone_number,
                "landline_phone_number": c.landline_phone_number,
                "company_name": c.company_name, "delivery_type": c.delivery_type,
            })
        })
    };
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

async fn api_get_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(refusal) = check_call(&request, false) {
        return refusal;
    }
    match emulator.payment(&id) {
        Some(payment) => HttpResponse::Ok().json(payment.to_json(&emulator.public_base)),
        None => api_error(StatusCode::NOT_FOUND, "The resource was not found.", None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    aborted: bool,
}

/// `PATCH {"aborted": true}`: the only update of a payment this emulator knows (deferred
/// capture is not emulated).
async fn api_patch_payment(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refusal) = check_call(&request, true) {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    amount: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

async fn api_create_refund(
    emulator: web::Data<Emulator>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refusal) = check_call(&request, true) {
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
    if let Err(refusal) = check_call(&request, false) {
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
    if let Err(refusal) = check_call(&request, false) {
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

fn status_label(payment: &EmulatedPayment) -> &'static str {
    match (payment.paid_at, payment.failure) {
        (Some(_), _) => "payé",
        (None, Some(("aborted", _))) => "abandonné",
        (None, Some(("timeout", _))) => "expiré",
        (None, Some(_)) => "refusé",
        (None, None) => "en attente",
    }
}

async fn hosted(emulator: web::Data<Emulator>, id: web::Path<String>) -> HttpResponse {
    let Some(payment) = emulator.payment(&id) else {
        return common::plain(StatusCode::NOT_FOUND, "Paiement PayPlug inconnu.");
    };
    let reference = payment
        .metadata
        .get("obole_payment_id")
        .and_then(Value::as_str)
        .unwrap_or(&payment.id);
    common::hosted_page(HostedPage {
        gateway: "PayPlug",
        action_url: &format!("/sandbox/payplug/pay/{}", payment.id),
        amount: Money::from_cents(payment.amount),
        description: payment.description.as_deref().unwrap_or(""),
        reference,
        open: payment.is_open(),
        status: status_label(&payment),
    })
}

/// What happened to an open payment, as PayPlug would report it.
#[derive(Clone, Copy)]
enum Outcome {
    Paid,
    Failed(&'static str, &'static str),
}

/// Settles an open payment as the payer or the test control says.
fn settle(
    emulator: &Emulator,
    id: &str,
    outcome: Outcome,
    paid_amount: Option<i64>,
) -> Result<EmulatedPayment, Refusal> {
    emulator.update(id, |p| {
        if !p.is_open() {
            return Err((StatusCode::CONFLICT, "Ce paiement est déjà terminé.".into()));
        }
        match outcome {
            Outcome::Paid => {
                p.paid_at = Some(now());
                if let Some(amount) = paid_amount {
                    p.amount = amount;
                }
            }
            Outcome::Failed(code, message) => p.failure = Some((code, message)),
        }
        Ok(())
    })
}

const DECLINED: Outcome = Outcome::Failed("card_declined", "The card was declined.");
const PROCESSING: Outcome = Outcome::Failed(
    "processing_error",
    "An error occurred while processing the payment.",
);
const ABORTED: Outcome = Outcome::Failed("aborted", "The customer aborted the payment.");
const TIMEOUT: Outcome = Outcome::Failed(
    "timeout",
    "The customer has not tried to pay and left the payment page.",
);

async fn hosted_action(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    form: web::Form<HostedActionForm>,
) -> HttpResponse {
    let Some(action) = PayerAction::parse(&form.action) else {
        return common::plain(StatusCode::BAD_REQUEST, "Action inconnue.");
    };
    let outcome = match action {
        PayerAction::Pay => Outcome::Paid,
        PayerAction::Refuse => DECLINED,
        PayerAction::Error => PROCESSING,
        PayerAction::Back => ABORTED,
    };
    let payment = match settle(&emulator, &id, outcome, None) {
        Ok(payment) => payment,
        Err((code, message)) => return common::plain(code, &message),
    };
    // PayPlug sends the payer back to the return URL, paid or not, and to the cancel URL
    // when they give up; it appends nothing to either.
    let location = match action {
        PayerAction::Back => payment
            .cancel_url
            .clone()
            .unwrap_or_else(|| payment.return_url.clone()),
        _ => payment.return_url.clone(),
    };
    let resource = payment.to_json(&emulator.public_base);
    emulator
        .into_inner()
        .notify(payment.notification_url.as_deref(), &resource);
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn control(
    emulator: web::Data<Emulator>,
    id: web::Path<String>,
    body: web::Json<ControlBody>,
) -> HttpResponse {
    let outcome = match body.status.as_str() {
        "paid" => Outcome::Paid,
        "refused" => DECLINED,
        "error" => PROCESSING,
        "cancelled" => ABORTED,
        "expired" => TIMEOUT,
        _ => return common::plain(StatusCode::BAD_REQUEST, "unknown status"),
    };
    match settle(&emulator, &id, outcome, body.amount) {
        Ok(payment) => {
            let resource = payment.to_json(&emulator.public_base);
            if body.notify {
                emulator
                    .into_inner()
                    .notify(payment.notification_url.as_deref(), &resource);
            }
            HttpResponse::Ok().json(resource)
        }
        Err((code, message)) => common::plain(code, &message),
    }
}
