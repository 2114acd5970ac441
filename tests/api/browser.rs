//! The member's whole journey in headless Chromium, driven through Debian's chromedriver.
//! Runs when chromedriver is installed (always in CI, where its absence is a failure).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::helpers::{MEMBER, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_logs_in_edits_the_amount_pays_in_the_sandbox_and_sees_the_payment() {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "chromedriver must be installed in CI (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping the browser test: {CHROMEDRIVER} is not installed");
        return;
    }
    let app = spawn_app().await;
    let port = free_port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = std::env::temp_dir().join(format!("obole-chromium-{}", uuid::Uuid::new_v4()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display())
            ]
        }),
    );
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("a Chromium session");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).ok();

    c.goto(&format!("{}/login", app.address)).await.unwrap();
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(MEMBER.0)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(MEMBER.1)
        .await
        .unwrap();
    c.find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let amount = c.wait().for_element(Locator::Id("amount")).await.unwrap();
    assert_eq!(
        amount.prop("value").await.unwrap().as_deref(),
        Some("97,00")
    );
    std::fs::write(shots.join("basket.png"), c.screenshot().await.unwrap()).ok();
    amount.clear().await.unwrap();
    amount.send_keys("25,50").await.unwrap();
    c.find(Locator::Id("pay-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let pay = c
        .wait()
        .for_element(Locator::Id("sandbox-pay"))
        .await
        .unwrap();
    let shown = c
        .find(Locator::Id("sandbox-amount"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, "25,50 €");
    std::fs::write(shots.join("sandbox.png"), c.screenshot().await.unwrap()).ok();
    pay.click().await.unwrap();

    // Back on obole: the page refreshes itself until the notification is processed.
    let mut confirmed = false;
    for _ in 0..100 {
        if let Ok(h) = c.find(Locator::Id("payment-headline")).await
            && h.text().await.unwrap_or_default() == "Paiement confirmé"
        {
            confirmed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        confirmed,
        "the return page should end up confirming the payment"
    );
    std::fs::write(shots.join("confirmed.png"), c.screenshot().await.unwrap()).ok();

    c.goto(&format!("{}/basket", app.address)).await.unwrap();
    let balance = c
        .find(Locator::Id("balance"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(balance, "71,50 €");
    let payments = c
        .find(Locator::Id("payments"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        payments.contains("25,50 €") && payments.contains("Payé"),
        "{payments}"
    );
    std::fs::write(
        shots.join("basket-after.png"),
        c.screenshot().await.unwrap(),
    )
    .ok();
    c.close().await.unwrap();
    std::fs::remove_dir_all(profile).ok();
}
