//! Who talks to obole during the campaign: members (through the pages, as a browser would)
//! and the sandbox gateway (its emulator's API, and the signed notifications it sends).

use anyhow::{Context, bail};
use obole::domain::Money;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

pub const API_KEY: &str = "sk_sandbox_demo_key";
pub const WEBHOOK_SECRET: &str = "whsec_sandbox_demo_secret";

/// A member's browser, reduced to its session cookie.
pub struct Member {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

fn csrf_of(page: &str) -> anyhow::Result<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).context("no CSRF token in the page")? + marker.len();
    let end = page[start..].find('"').context("unterminated CSRF token")? + start;
    Ok(page[start..end].to_string())
}

impl Member {
    pub async fn log_in(base: &str, email: &str, password: &str) -> anyhow::Result<Member> {
        let mut member = Member {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()?,
            base: base.to_string(),
            cookie: String::new(),
        };
        let form = member.get("/login").await?;
        let token = csrf_of(&form)?;
        let status = member
            .post(
                "/login",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf_token", &token),
                ],
            )
            .await?
            .0;
        if status != 303 {
            bail!("login of {email} answered {status}");
        }
        Ok(member)
    }

    /// The session cookie (`obole_session=…`), for another client to act as this member.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// A login form's cookie and CSRF token, before logging in.
    pub async fn anonymous(base: &str) -> anyhow::Result<(String, String)> {
        let mut visitor = Member {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()?,
            base: base.to_string(),
            cookie: String::new(),
        };
        let form = visitor.get("/login").await?;
        Ok((visitor.cookie, csrf_of(&form)?))
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            if let Some(pair) = value
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .filter(|v| v.starts_with("obole_session="))
            {
                self.cookie = pair.to_string();
            }
        }
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await?;
        self.keep_cookie(&response);
        Ok(response.text().await?)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .form(form)
            .send()
            .await?;
        self.keep_cookie(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((status, location))
    }

    /// Pays this amount with the sandbox from the basket; returns the gateway's reference.
    pub async fn pay(&mut self, amount: Money) -> anyhow::Result<String> {
        let basket = self.get("/basket").await?;
        let token = csrf_of(&basket)?;
        let (status, location) = self
            .post(
                "/basket/pay",
                &[
                    ("amount", &amount.to_input_string()),
                    ("gateway", "sandbox"),
                    ("csrf_token", &token),
                ],
            )
            .await?;
        if status != 303 {
            bail!("paying {amount} answered {status}");
        }
        location
            .rsplit('/')
            .next()
            .filter(|r| r.starts_with("sbx_pay_"))
            .map(str::to_string)
            .with_context(|| format!("no sandbox payment in {location:?}"))
    }
}

/// The sandbox gateway: settles payments on its side and tells obole about them.
pub struct Gateway {
    client: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(base: &str) -> Gateway {
        Gateway {
            client: reqwest::Client::new(),
            base: base.to_string(),
        }
    }

    /// The payer pays or is refused on the hosted page; nobody is told.
    pub async fn settle(&self, gateway_ref: &str, status: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!(
                "{}/sandbox/_control/sandbox/{gateway_ref}",
                self.base
            ))
            .json(&json!({ "status": status, "notify": false }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "the emulator refused to settle {gateway_ref}: {}",
                response.status()
            );
        }
        Ok(())
    }

    /// The payment as the gateway has it now: what a notification sent now would carry.
    pub async fn snapshot(&self, gateway_ref: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!(
                "{}/sandbox/api/v1/payments/{gateway_ref}",
                self.base
            ))
            .bearer_auth(API_KEY)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "the emulator does not know {gateway_ref}: {}",
                response.status()
            );
        }
        Ok(response.json().await?)
    }

    /// A refund made at the gateway (from its dashboard); returns the refund's id.
    pub async fn refund(&self, gateway_ref: &str, cents: i64) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/sandbox/api/v1/refunds", self.base))
            .bearer_auth(API_KEY)
            .json(&json!({ "payment": gateway_ref, "amount": cents }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "the emulator refused a refund of {gateway_ref}: {}",
                response.status()
            );
        }
        let refund: Value = response.json().await?;
        refund["id"]
            .as_str()
            .map(str::to_string)
            .context("a refund without an id")
    }
}

/// A notification as the sandbox signs it: (body, signature header value).
pub fn notification(kind: &str, snapshot: &Value) -> (Vec<u8>, String) {
    let event = json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "type": format!("payment.{kind}"),
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": snapshot,
    });
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let signature = obole::sandbox::sign(WEBHOOK_SECRET, &body);
    (body, signature)
}
