//! Spawns the real application on a random port with a fresh database (SQLite by default,
//! PostgreSQL when OBOLE_TEST_DATABASE_URL is set), and drives it over HTTP.

use std::sync::Arc;
use std::time::Duration;

use obole::config::Settings;
use obole::db::{self, Pool};
use obole::startup::Application;
use reqwest::redirect::Policy;
use serde_json::json;
use sqlx::Row;

pub const MEMBER: (&str, &str) = ("membre@exemple.org", "membre-demo");
pub const MEMBER2: (&str, &str) = ("membre2@exemple.org", "membre2-demo");
pub const MANAGER: (&str, &str) = ("tresorier@exemple.org", "tresorier-demo");
/// The demo member's basket: 45,00 + 21,50 + 18,00 + 12,50.
pub const MEMBER_OWES_CENTS: i64 = 9700;

pub struct TestApp {
    pub address: String,
    pub pool: Pool,
    pub settings: Settings,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let database_url = fresh_database().await;
    let mut settings = Settings {
        port: 0,
        database_url,
        workers: Some(2),
        db_max_connections: 10,
        ..Settings::default()
    };
    // Notifications are retried quickly so that tests need not wait.
    settings.sandbox.notify_retry_ms = vec![0, 100, 300, 1000];
    // Mail goes to files of this test's own (unless a test points it at an SMTP listener).
    settings.mail.dir = std::env::temp_dir()
        .join(format!("obole_test_mail_{}", uuid::Uuid::new_v4().simple()))
        .display()
        .to_string();
    settings.mail.poll_ms = 100;
    adjust(&mut settings);
    let pool = db::connect(&settings.database_url, settings.db_max_connections)
        .await
        .expect("test database");
    db::migrate(&pool).await.expect("migrations");
    obole::demo::seed(&pool, &settings.accounts)
        .await
        .expect("demo seed");
    let app = Application::build_with_pool(settings.clone(), pool.clone())
        .await
        .expect("application");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        pool,
        settings,
    }
}

/// A new, empty database: a file in the temp dir, or a new PostgreSQL database.
async fn fresh_database() -> String {
    let name = format!("obole_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("OBOLE_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("OBOLE_TEST_DATABASE_URL must point at a reachable PostgreSQL");
            sqlx::Executor::execute(
                &mut conn,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
            )
            .await
            .expect("create the test database");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    }
}

/// One person's browser: a cookie jar, redirects not followed so tests see them.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a CSRF token in the page") + marker.len();
        let end = self.body[start..].find('"').expect("end of token") + start;
        self.body[start..end].to_string()
    }

    /// The form's one-use key (`input[name=form_key]`), which makes a second submission harmless.
    pub fn form_key(&self) -> String {
        let html = scraper::Html::parse_document(&self.body);
        let selector = scraper::Selector::parse("input[name=form_key]").expect("a selector");
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value"))
            .expect("a form key")
            .to_string()
    }

    /// The value attribute of the element with this id (a form field).
    pub fn value_of(&self, id: &str) -> Option<String> {
        let html = scraper::Html::parse_document(&self.body);
        let selector = scraper::Selector::parse(&format!("#{id}")).ok()?;
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_string))
    }

    /// The visible text of the element with this id.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let html = scraper::Html::parse_document(&self.body);
        let selector = scraper::Selector::parse(&format!("#{id}")).ok()?;
        html.select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_string())
    }
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: self.address.clone(),
        }
    }

    /// A browser already logged in as this person.
    pub async fn logged_in(&self, who: (&str, &str)) -> Browser {
        let browser = self.browser();
        let page = browser.login(who.0, who.1).await;
        assert_eq!(page.status, 303, "login of {} should succeed", who.0);
        browser
    }

    pub async fn member_id(&self, email: &str) -> String {
        sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .expect("user")
            .get::<String, _>("id")
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count query")
            .get::<i64, _>(0)
    }

    pub async fn count_for(&self, sql: &'static str, arg: &str) -> i64 {
        sqlx::query(sql)
            .bind(arg)
            .fetch_one(&self.pool)
            .await
            .expect("count query")
            .get::<i64, _>(0)
    }

    pub async fn payment_status(&self, id: &str) -> String {
        sqlx::query("SELECT status FROM payments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("payment")
            .get::<String, _>("status")
    }

    pub async fn gateway_ref(&self, id: &str) -> String {
        sqlx::query("SELECT gateway_ref FROM payments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("payment")
            .get::<String, _>("gateway_ref")
    }

    /// Waits (bounded) until the payment reaches a status, as the notification lands.
    pub async fn wait_for_status(&self, id: &str, status: &str) {
        for _ in 0..100 {
            if self.payment_status(id).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "payment {id} never reached {status}; it is {}",
            self.payment_status(id).await
        );
    }

    /// Journal totals: (debit, credit, entries).
    pub async fn journal_totals(&self) -> (i64, i64, i64) {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(debit_cents), 0) AS BIGINT) AS d, \
             CAST(COALESCE(SUM(credit_cents), 0) AS BIGINT) AS c, \
             (SELECT COUNT(*) FROM journal_entries) AS n FROM journal_lines",
        )
        .fetch_one(&self.pool)
        .await
        .expect("journal totals");
        (row.get("d"), row.get("c"), row.get("n"))
    }

    pub async fn postings_for(&self, payment_id: &str) -> (i64, i64) {
        let entries = self
            .count_for(
                "SELECT COUNT(*) FROM journal_entries WHERE payment_id = $1",
                payment_id,
            )
            .await;
        let lines = self
            .count_for(
                "SELECT COUNT(*) FROM basket_lines WHERE payment_id = $1",
                payment_id,
            )
            .await;
        (entries, lines)
    }

    /// A notification as the sandbox would send it, signed (or not) with the given secret.
    pub fn sandbox_event(
        &self,
        payment_id: &str,
        gateway_ref: &str,
        status: &str,
        amount: i64,
    ) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "type": format!("payment.{status}"),
            "created": 1_700_000_000,
            "data": {
                "id": gateway_ref,
                "object": "payment",
                "status": status,
                "amount": amount,
                "currency": "EUR",
                "reference": payment_id,
                "description": "test",
                "fee": if status == "succeeded" { Some(40) } else { None },
                "livemode": false,
                "hosted_url": format!("{}/sandbox/pay/{gateway_ref}", self.address),
                "created": 1_700_000_000
            }
        }))
        .expect("json")
    }

    pub fn sign(&self, body: &[u8]) -> String {
        use secrecy::ExposeSecret;
        obole::sandbox::sign(self.settings.sandbox.webhook_secret.expose_secret(), body)
    }

    pub async fn post_notification(&self, body: Vec<u8>, signature: Option<String>) -> u16 {
        let mut request = reqwest::Client::new()
            .post(format!("{}/webhooks/sandbox", self.address))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Sandbox-Signature", signature);
        }
        request
            .send()
            .await
            .expect("notification")
            .status()
            .as_u16()
    }
}

impl Browser {
    pub async fn get(&self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Self::page(self.client.get(url).send().await.expect("GET")).await
    }

    /// GET, following redirects within the portal (as a browser coming back from a gateway).
    pub async fn get_following(&self, path: &str) -> Page {
        let mut page = self.get(path).await;
        for _ in 0..3 {
            match (&page.status, &page.location) {
                (301 | 302 | 303 | 307, Some(next)) => {
                    let next = next.clone();
                    page = self.get(&next).await;
                }
                _ => break,
            }
        }
        page
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Self::page(self.client.post(url).form(form).send().await.expect("POST")).await
    }

    async fn page(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.csrf();
        self.post_form(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    /// Submits the basket's pay form; returns the response (a 303 to the gateway if accepted).
    pub async fn pay(&self, amount: &str, gateway: &str) -> Page {
        let basket = self.get("/basket").await;
        let token = basket.csrf();
        self.post_form(
            "/basket/pay",
            &[
                ("amount", amount),
                ("gateway", gateway),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    /// Pays and returns (obole payment id, sandbox hosted page URL).
    pub async fn start_payment(&self, app: &TestApp, amount: &str) -> (String, String) {
        let page = self.pay(amount, "sandbox").await;
        assert_eq!(page.status, 303, "pay should redirect: {}", page.body);
        let hosted = page.location.expect("a hosted page");
        let id: String = sqlx::query("SELECT id FROM payments WHERE redirect_url = $1")
            .bind(&hosted)
            .fetch_one(&app.pool)
            .await
            .expect("the attempt behind the hosted page")
            .get("id");
        (id, hosted)
    }
}

/// Runs many futures at once on separate tasks.
pub async fn all_at_once<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(futures.len()));
    let handles: Vec<_> = futures
        .into_iter()
        .map(|f| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                f.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
