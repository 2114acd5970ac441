//! Several obole processes sharing one database (PostgreSQL when OBOLE_TEST_DATABASE_URL is
//! set, the same SQLite file otherwise): a session opened on one works on the other, a
//! notification sent to both posts once, and their sweeps and mail workers share the work
//! instead of doing it twice.

use std::time::Duration;

use base64::Engine;
use obole::db::{self, Pool};
use obole::gateways::Registry;
use obole::startup::Application;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{MEMBER, MEMBER2, TestApp, all_at_once, spawn_app_with};

fn secret_key(byte: u8) -> SecretString {
    SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; 64]))
}

/// The first process: the sandbox's emulator lives here, and its sweep stays off so that the
/// tests decide when sweeps run.
async fn first_process() -> TestApp {
    spawn_app_with(|s| {
        s.secret_key = Some(secret_key(7));
        s.reconcile.interval_secs = 0;
    })
    .await
}

/// Another process on the same database, with its own pool, asking the first one's emulator
/// (a gateway is one place, whichever process asks).
async fn another_process(app: &TestApp, secret: SecretString) -> (String, Pool) {
    let mut settings = app.settings.clone();
    settings.port = 0;
    settings.secret_key = Some(secret);
    settings.sandbox.emulator = false;
    settings.sandbox.api_base = Some(format!("{}/sandbox/api", app.address));
    let pool = db::connect(&settings.database_url, 5)
        .await
        .expect("second pool");
    let second = Application::build_with_pool(settings, pool.clone())
        .await
        .expect("second process");
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    (address, pool)
}

fn session_cookie(page: &crate::helpers::Page) -> String {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("obole_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

async fn get_with_cookie(url: &str, cookie: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(url)
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_process_works_on_the_other() {
    let app = first_process().await;
    let (second, _) = another_process(&app, secret_key(7)).await;
    let (stranger, _) = another_process(&app, secret_key(9)).await;

    let browser = app.browser();
    let login = browser.login(MEMBER.0, MEMBER.1).await;
    assert_eq!(login.status, 303);
    let cookie = session_cookie(&login);

    let (status, body) = get_with_cookie(&format!("{second}/basket"), &cookie).await;
    assert_eq!(status, 200, "{body}");
    let page = crate::helpers::Page {
        status,
        location: None,
        headers: Default::default(),
        body,
    };
    assert_eq!(page.text_of("balance").as_deref(), Some("97,00 €"));
    // The CSRF token of the session travels too: a payment started on the second process.
    let form = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{second}/basket/pay"))
        .header("Cookie", &cookie)
        .form(&[
            ("amount", "10"),
            ("gateway", "sandbox"),
            ("csrf_token", &page.csrf()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'pending'")
            .await,
        1
    );

    // A process with another secret key cannot read the cookie: back to the login page.
    let (status, _) = get_with_cookie(&format!("{stranger}/basket"), &cookie).await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_notification_hitting_both_processes_posts_once() {
    let app = first_process().await;
    let (second, _) = another_process(&app, secret_key(7)).await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = browser.start_payment(&app, "42").await;
    let gateway_ref = app.gateway_ref(&id).await;
    let settled = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/_control/sandbox/{gateway_ref}",
            app.address
        ))
        .json(&json!({"status": "paid", "notify": false}))
        .send()
        .await
        .unwrap();
    assert!(settled.status().is_success());

    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 4200);
    let signature = app.sign(&body);
    let sends: Vec<_> = (0..12)
        .map(|i| {
            let target = if i % 2 == 0 {
                app.address.clone()
            } else {
                second.clone()
            };
            let (body, signature) = (body.clone(), signature.clone());
            async move {
                reqwest::Client::new()
                    .post(format!("{target}/webhooks/sandbox"))
                    .header("Content-Type", "application/json")
                    .header("X-Sandbox-Signature", signature)
                    .body(body)
                    .send()
                    .await
                    .expect("notification")
                    .status()
                    .as_u16()
            }
        })
        .collect();
    let answers = all_at_once(sends).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(app.payment_status(&id).await, "paid");
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert_eq!(
        app.count_for(
            "SELECT COUNT(*) FROM mail_outbox WHERE dedup_key LIKE 'receipt:' || $1 || '%'",
            &id
        )
        .await,
        1
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

async fn fetches(app: &TestApp, gateway_ref: &str) -> u64 {
    let look: serde_json::Value = reqwest::get(format!(
        "{}/sandbox/_control/sandbox/{gateway_ref}",
        app.address
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    look["fetches"].as_u64().expect("a fetch count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_and_mail_workers_of_two_processes_share_the_work() {
    let app = first_process().await;
    let (_second, second_pool) = another_process(&app, secret_key(7)).await;
    let mut attempts = Vec::new();
    for who in [MEMBER, MEMBER2] {
        let browser = app.logged_in(who).await;
        for amount in ["11", "12", "13", "14"] {
            let (id, _) = browser.start_payment(&app, amount).await;
            attempts.push((id.clone(), app.gateway_ref(&id).await));
        }
    }
    // Half are paid at the gateway but their notification is lost; half are still open.
    for (_, gateway_ref) in attempts.iter().step_by(2) {
        reqwest::Client::new()
            .post(format!(
                "{}/sandbox/_control/sandbox/{gateway_ref}",
                app.address
            ))
            .json(&json!({"status": "paid", "notify": false}))
            .send()
            .await
            .unwrap();
    }

    let registry = Registry::from_settings(&app.settings, &app.address, reqwest::Client::new())
        .expect("registry");
    let mut settings = app.settings.clone();
    settings.reconcile.pending_after_secs = -5;
    let (one, two) = tokio::join!(
        obole::reconcile::run_once(&app.pool, &registry, &settings),
        obole::reconcile::run_once(&second_pool, &registry, &settings),
    );
    let (one, two) = (one.expect("first sweep"), two.expect("second sweep"));
    assert_eq!(one.checked + two.checked, 8, "{one:?} {two:?}");
    assert_eq!(one.posted + two.posted, 4, "{one:?} {two:?}");
    for (id, gateway_ref) in &attempts {
        assert_eq!(fetches(&app, gateway_ref).await, 1, "attempt {id}");
    }
    // Within the lease, another sweep leaves them alone.
    let again = obole::reconcile::run_once(&second_pool, &registry, &settings)
        .await
        .unwrap();
    assert_eq!(again.checked, 0, "{again:?}");
    for (id, _) in attempts.iter().step_by(2) {
        assert_eq!(app.postings_for(id).await, (1, 1));
    }
    for (id, _) in attempts.iter().skip(1).step_by(2) {
        assert_eq!(app.payment_status(id).await, "pending");
    }

    // Both processes' mail workers poll the same outbox: each receipt leaves once.
    let mut sent = 0;
    for _ in 0..100 {
        sent = app
            .count("SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'")
            .await;
        if sent == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = std::fs::read_dir(&app.settings.mail.dir)
        .expect("mail folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();
    assert_eq!(files, 4);
}
