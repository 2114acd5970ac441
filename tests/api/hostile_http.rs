//! Hostile clients at the HTTP level: connections that stall, bodies that never come, bytes
//! that are not UTF-8, and logins tried from many addresses or against many accounts.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Browser, MANAGER, MEMBER, TestApp, spawn_app, spawn_app_with};

/// Far above the server's own limit on reading a request (actix's 5 s default).
const CLOSED_WITHIN: Duration = Duration::from_secs(30);

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; returns what it said, or panics when it
/// keeps the connection open past the bound.
async fn read_until_closed(what: &'static str, mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(CLOSED_WITHIN, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept {what} open");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_neither_block_others_nor_stay_open() {
    let app = spawn_app().await;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(host_port(&app)).await.expect("connect");
        // Half a request line, or the headers without their blank line.
        let partial = if i % 2 == 0 {
            "GET /log".to_string()
        } else {
            "GET /login HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_string()
        };
        stream.write_all(partial.as_bytes()).await.expect("write");
        stalled.push(stream);
    }

    // Meanwhile, a visitor is served at once.
    let page = app.browser().get("/login").await;
    assert_eq!(page.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the login page waited for the stalled clients"
    );

    let closing: Vec<_> = stalled
        .into_iter()
        .map(|s| tokio::spawn(read_until_closed("a stalled request's head", s)))
        .collect();
    for answer in closing {
        let answer = answer.await.expect("task");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "a stalled request got {answer:?}"
        );
    }
    // The server is still there.
    assert_eq!(app.browser().get("/login").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_announced_larger_than_sent_is_given_up() {
    let app = spawn_app().await;
    let mut body_stall = TcpStream::connect(host_port(&app)).await.expect("connect");
    body_stall
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 5000\r\n\r\nemail=a%40b.org&pass",
        )
        .await
        .expect("write");
    assert_eq!(app.browser().get("/login").await.status, 200);
    let answer = read_until_closed("a stalled body", body_stall).await;
    assert!(
        !answer.contains(" 500 "),
        "a stalled body got a server error: {answer:?}"
    );
}

async fn post_raw(browser: &Browser, path: &str, body: Vec<u8>) -> (u16, String) {
    let response = browser
        .client
        .post(format!("{}{path}", browser.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_are_refused_with_a_message_and_nothing_stored() {
    let app = spawn_app().await;
    let manager = app.logged_in(MANAGER).await;
    let csrf = manager.get("/admin/members/new").await.csrf();
    let users = app.count("SELECT COUNT(*) FROM users").await;
    // Percent-encoded bytes that are not UTF-8, and raw ones.
    let mut raw = b"last_name=Dur\xe9\xff&first_name=Pa\xc3\x28&email=raw%40exemple.org&role=member&csrf_token="
        .to_vec();
    raw.extend_from_slice(csrf.as_bytes());
    for body in [
        format!(
            "last_name=Dur%C3%28&first_name=Paul&email=pct%40exemple.org&role=member&csrf_token={csrf}"
        )
        .into_bytes(),
        format!(
            "last_name=Durand&first_name=%FF%FE&email=pct2%40exemple.org&role=member&csrf_token={csrf}"
        )
        .into_bytes(),
        raw,
    ] {
        let (status, page) = post_raw(&manager, "/admin/members", body).await;
        assert_eq!(status, 400, "{page}");
        assert!(
            page.contains("Le formulaire contient des caractères illisibles"),
            "{page}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, users);
    // The same form, well encoded, is taken.
    let (status, page) = post_raw(
        &manager,
        "/admin/members",
        format!(
            "last_name=Dur%C3%A9&first_name=Paul&email=pct%40exemple.org&role=member&csrf_token={csrf}"
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, users + 1);

    // A charge whose form holds such a byte adds nothing.
    let member_id = app.member_id(MEMBER.0).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let entries = app.journal_totals().await.2;
    let (status, body) = post_raw(
        &manager,
        &format!("/admin/members/{member_id}/charges"),
        format!(
            "category=outings&label=Sortie&amount=%FF10&date=2026-10-01&form_key={}&csrf_token={}",
            uuid::Uuid::new_v4(),
            page.csrf()
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.journal_totals().await.2, entries);

    // Query strings: refused with a message, in the reader's language.
    for path in [
        "/admin/members?q=%C3%28",
        "/admin/members?q=%FF&filter=%FE",
        "/admin/ledger?from=%FF&account=%C3%28",
        "/admin/payments?status=%FF",
        "/admin/requests?status=%C3%28",
        "/admin/balances?from=%FF",
        &format!("/admin/members/{member_id}?from=%FF"),
    ] {
        let page = manager.get(path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.body);
        assert!(
            page.body.contains("caractères illisibles"),
            "{path}: {}",
            page.body
        );
    }
    let member = app.logged_in(MEMBER).await;
    member
        .post_form(
            "/lang",
            &[
                ("lang", "en"),
                ("back", "/basket"),
                ("csrf_token", &member.get("/basket").await.csrf()),
            ],
        )
        .await;
    for path in ["/basket?x=%FF", "/login?next=%C3%28"] {
        let page = member.get(path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.body);
        assert!(
            page.body
                .contains("The address holds unreadable characters"),
            "{path}: {}",
            page.body
        );
    }
    // A path that is not UTF-8 is simply not found.
    assert_eq!(member.get("/payments/%FF%FE").await.status, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

/// A browser whose connections leave from `ip` (any 127.x.y.z reaches the portal).
fn browser_from(app: &TestApp, ip: [u8; 4]) -> Browser {
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
            .build()
            .expect("client"),
        base: app.address.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_stays_throttled_whatever_address_the_attempts_come_from() {
    let app = spawn_app().await;
    for i in 0..5 {
        let page = browser_from(&app, [127, 0, 0, 10 + i])
            .login(MEMBER.0, "wrong")
            .await;
        assert_eq!(page.status, 401);
    }
    // Another address, the right password, the email typed otherwise: still throttled.
    let page = browser_from(&app, [127, 0, 0, 30])
        .login(" Membre@EXEMPLE.org ", MEMBER.1)
        .await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        page.text_of("login-error")
            .is_some_and(|e| e.contains("Trop de tentatives")),
        "{}",
        page.body
    );
    // The other accounts are not locked by it.
    assert_eq!(
        browser_from(&app, [127, 0, 0, 31])
            .login(MANAGER.0, MANAGER.1)
            .await
            .status,
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_throttled_across_accounts_and_a_forwarded_header_does_not_free_it() {
    let app = spawn_app_with(|s| s.login_max_failures_per_address = 3).await;
    let attacker = browser_from(&app, [127, 0, 0, 40]);
    for i in 0..3 {
        let form = attacker.get("/login").await;
        let response = attacker
            .client
            .post(format!("{}/login", app.address))
            // Claiming to come from elsewhere changes nothing: the portal trusts no header.
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .header("Forwarded", format!("for=198.51.100.{i}"))
            .header("X-Real-IP", format!("192.0.2.{i}"))
            .form(&[
                ("email", format!("ghost{i}@exemple.org")),
                ("password", "x".to_string()),
                ("csrf_token", form.csrf()),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 401);
    }
    let page = attacker.login(MEMBER.0, MEMBER.1).await;
    assert_eq!(page.status, 429, "{}", page.body);
    // Someone else, from another address, logs in.
    assert_eq!(
        browser_from(&app, [127, 0, 0, 41])
            .login(MEMBER.0, MEMBER.1)
            .await
            .status,
        303
    );
    let stored: i64 = app
        .count_for(
            "SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1",
            "address:127.0.0.40",
        )
        .await;
    assert!(stored >= 3, "{stored}");
}
