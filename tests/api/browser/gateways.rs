//! Pay and come back through each gateway's emulator page, as a member would.

use super::{Chrome, DESKTOP};
use crate::helpers::{MEMBER, spawn_app_with};

const GATEWAYS: [&str; 8] = [
    "sandbox",
    "helloasso",
    "stripe",
    "paypal",
    "mollie",
    "payplug",
    "payzen",
    "stancer",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_pays_through_each_gateways_page_and_comes_back_confirmed() {
    let app = spawn_app_with(|s| {
        s.gateways = GATEWAYS.map(String::from).to_vec();
        s.helloasso.emulator = true;
        s.stripe.emulator = true;
        s.paypal.emulator = true;
        s.mollie.emulator = true;
        s.payplug.emulator = true;
        s.payzen.emulator = true;
        s.stancer.emulator = true;
    })
    .await;
    let Some(b) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    b.login(MEMBER).await;
    for gateway in GATEWAYS {
        b.goto("/basket").await;
        b.click(&format!("input[name='gateway'][value='{gateway}']"))
            .await;
        b.fill("amount", "5,00").await;
        b.click("#pay-button").await;
        assert_eq!(b.text("#sandbox-amount").await, "5,00 €", "{gateway}");
        b.shot(&format!("gateway-{gateway}")).await;
        b.click("#sandbox-pay").await;
        b.wait_text("#payment-headline", "Paiement confirmé").await;
    }
    b.goto("/basket").await;
    assert_eq!(b.text("#balance").await, "57,00 €");
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.gateway, COUNT(l.id) FROM payments p \
         JOIN basket_lines l ON l.payment_id = p.id AND l.kind = 'payment' \
         GROUP BY p.gateway ORDER BY p.gateway",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut want: Vec<(String, i64)> = GATEWAYS.iter().map(|g| (g.to_string(), 1)).collect();
    want.sort();
    assert_eq!(rows, want, "one payment line per gateway");
    b.close().await;
}
