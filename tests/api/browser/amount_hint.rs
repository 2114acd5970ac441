//! The hint under the basket's amount field: what will be charged, in the page's language, or
//! why it is not an amount, as the member types. Without JavaScript there is no hint, and
//! paying works the same.

use std::time::Duration;

use fantoccini::Locator;

use super::{Chrome, DESKTOP, PHONE};
use crate::helpers::{MEMBER, spawn_app};

/// The hint's text with the narrow and non-breaking spaces of number formats made plain.
async fn hint(b: &Chrome) -> String {
    let el = b.c.find(Locator::Id("amount-hint")).await.unwrap();
    el.text()
        .await
        .unwrap()
        .replace(['\u{202f}', '\u{a0}'], " ")
}

/// Types into the amount field, then waits (bounded) for the hint to read `want`.
async fn type_and_expect(b: &Chrome, typed: &str, want: &str) {
    b.fill("amount", typed).await;
    let mut seen = String::new();
    for _ in 0..50 {
        seen = hint(b).await;
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("after typing {typed:?} the hint should read {want:?}, it reads {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_an_amount_shows_what_will_be_charged_in_french_and_in_english() {
    let app = spawn_app().await;
    let Some(b) = Chrome::start(&app.address, PHONE).await else {
        return;
    };
    b.login(MEMBER).await;
    let region = b.c.find(Locator::Id("amount-hint")).await.unwrap();
    assert_eq!(
        region.attr("aria-live").await.unwrap().as_deref(),
        Some("polite")
    );
    let described = b.c.find(Locator::Id("amount")).await.unwrap();
    assert!(
        described
            .attr("aria-describedby")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("amount-hint")
    );

    type_and_expect(&b, "45,5", "Vous paierez 45,50 €").await;
    type_and_expect(&b, "1 250", "Vous paierez 1 250,00 €").await;
    type_and_expect(&b, "45,50", "Vous paierez 45,50 €").await;
    b.shot("amount-hint-fr").await;
    type_and_expect(
        &b,
        "12,345",
        "Le montant ne peut pas avoir plus de deux décimales.",
    )
    .await;
    type_and_expect(
        &b,
        "douze",
        "Le montant doit être un nombre, par exemple 12,50.",
    )
    .await;
    type_and_expect(&b, "0,00", "Le montant doit être supérieur à zéro.").await;
    type_and_expect(&b, "-5", "Le montant ne peut pas être négatif.").await;
    let bad = region.attr("class").await.unwrap().unwrap_or_default();
    assert!(bad.contains("bad"), "{bad}");
    b.audit("basket with an amount hint").await;
    b.fill("amount", "").await;
    assert_eq!(hint(&b).await, "");

    // In English, from the language switch at the foot of the page.
    b.c.find(Locator::Id("lang-choice"))
        .await
        .unwrap()
        .select_by_value("en")
        .await
        .unwrap();
    b.click("#lang-submit").await;
    b.wait_text("#pay-title", "Pay").await;
    type_and_expect(&b, "45.5", "You will pay €45.50").await;
    type_and_expect(&b, "1,5", "You will pay €1.50").await;
    type_and_expect(&b, "abc", "The amount must be a number, for example 12.50.").await;
    b.shot("amount-hint-en").await;

    // The hint only helps: the server judges what is paid.
    b.fill("amount", "45.50").await;
    b.click("#pay-button").await;
    assert_eq!(b.text("#sandbox-amount").await, "€45.50");
    let started: i64 = sqlx::query_scalar("SELECT amount_cents FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(started, 4550);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_basket_gives_no_hint_and_still_pays() {
    let app = spawn_app().await;
    let Some(b) = Chrome::start_without_javascript(&app.address, DESKTOP).await else {
        return;
    };
    b.login(MEMBER).await;
    b.fill("amount", "30,00").await;
    // The script did not run: the hint stays empty.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hint(&b).await, "");
    b.shot("basket-without-javascript").await;
    b.click("#pay-button").await;
    assert_eq!(b.text("#sandbox-amount").await, "30,00 €");
    b.click("#sandbox-pay").await;
    // The payment page refreshes itself by a meta refresh, not by a script.
    b.wait_text("#payment-headline", "Paiement confirmé").await;
    b.goto("/basket").await;
    assert_eq!(b.text("#balance").await, "67,00 €");
    b.close().await;
}
