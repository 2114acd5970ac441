//! Bad input gets a clear 4xx, never a 500, and is never echoed unescaped.

use crate::helpers::{MEMBER, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_typed_in_fields_comes_back_escaped() {
    let app = spawn_app().await;
    let attack = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let page = app.browser().login(attack, "x").await;
    assert_eq!(page.status, 401);
    // NUL and other control characters are refused like any wrong login, never a 500.
    let page = app
        .browser()
        .login("a\u{0}b@exemple.org\u{7}", "x\u{0}")
        .await;
    assert_eq!(page.status, 401);
    assert!(!page.body.contains("<script>alert(1)"));
    assert!(!page.body.contains("<img src=x"));
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay(attack, "sandbox").await;
    assert_eq!(page.status, 422);
    assert!(!page.body.contains("<script>alert(1)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_forms_are_refused_cleanly() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let client = &browser.client;
    let url = format!("{}/basket/pay", app.address);
    // Invalid UTF-8 in a form.
    let response = client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(b"amount=%FF%FE&gateway=sandbox&csrf_token=x".to_vec())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // A body far beyond what a form needs.
    let huge = format!("amount={}", "9".repeat(100_000));
    let response = client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // Not a form at all.
    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_garbage_notifications_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let url = format!("{}/webhooks/sandbox", app.address);
    let huge = vec![b'a'; 1024 * 1024];
    let response = client.post(&url).body(huge).send().await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let response = client
        .post(&url)
        .header("X-Sandbox-Signature", "sha256=00")
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let unknown = client
        .post(format!("{}/webhooks/nope", app.address))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.journal_totals().await.2, 7);
}
