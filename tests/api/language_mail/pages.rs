//! The member's pages in English: the saved card (and its mails), passwords, logging in and
//! out, the basket's refusals and the gateways' emulated pages; French by default.

use super::choose;
use super::reading::{
    assert_english_mail, assert_english_page, french_markers, visible_text, wait_for_mail,
};
use crate::helpers::{MANAGER, MEMBER, MEMBER2, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_card_pages_and_mails_read_in_english() {
    let app = spawn_app_with(crate::saved_cards::configure).await;
    let member_id = app.member_id(MEMBER.0).await;
    let member = app.logged_in(MEMBER).await;
    choose(&member, "en", "/basket").await;

    let basket = member.get("/basket").await;
    assert!(
        basket
            .body
            .contains("Save my card to pay my next dues automatically"),
        "{}",
        basket.body
    );
    assert!(
        basket
            .text_of("save-card-help")
            .is_some_and(|h| h.starts_with("Possible with Stripe, Stancer.")),
        "{}",
        basket.body
    );
    assert_english_page(&basket);

    // Stripe's emulated page says the card is kept, in English.
    let started = member
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30.00"),
                ("gateway", "stripe"),
                ("save_card", "yes"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let hosted = started.location.unwrap();
    let page = member.get(&hosted).await;
    assert!(
        page.text_of("sandbox-consent")
            .is_some_and(|c| c.starts_with("Card saved for future payments. By providing")),
        "{}",
        page.body
    );
    assert_eq!(page.text_of("sandbox-pay").as_deref(), Some("Pay €30.00"));
    assert_english_page(&page);
    let back = crate::contract::act(&member, &hosted, "pay").await;
    member.get_following(&back).await;
    let paid: String =
        sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'stripe' AND member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.wait_for_status(&paid, "paid").await;

    let basket = member.get("/basket").await;
    assert_eq!(
        basket.text_of("saved-card-title").as_deref(),
        Some("My saved card")
    );
    assert_eq!(
        basket.text_of("forget-card").as_deref(),
        Some("Withdraw this card")
    );
    assert!(
        basket.body.contains("with Stripe, saved on"),
        "{}",
        basket.body
    );
    assert_english_page(&basket);

    // A manager charges the card, the bank declines: both mails in English.
    let method: String = sqlx::query_scalar(
        "SELECT payment_method_id FROM saved_payment_methods WHERE member_id = $1",
    )
    .bind(&member_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let control = reqwest::Client::new()
        .post(format!("{}/sandbox/_control/stripe/{method}", app.address))
        .json(&serde_json::json!({ "status": "declined" }))
        .send()
        .await
        .unwrap();
    assert!(control.status().is_success());
    let manager = app.logged_in(MANAGER).await;
    let page = manager.get(&format!("/admin/members/{member_id}")).await;
    let amount = page
        .value_of("card-charge-amount")
        .expect("the charge form");
    let charged = manager
        .post_form(
            &format!("/admin/members/{member_id}/saved-card/charge"),
            &[
                ("amount", amount.as_str()),
                ("confirm", "yes"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(charged.status, 303, "{}", charged.body);

    let charge = wait_for_mail(&app, MEMBER.0, "charged to your card").await;
    assert_eq!(
        charge.subject,
        "Association de démonstration: €67.00 charged to your card"
    );
    for wanted in [
        "As you agreed, Association de démonstration is charging €67.00 today to your saved \
         card (Visa •••• 4242, with Stripe).",
        "For: what you owe, as asked by the association",
    ] {
        assert!(charge.text.contains(wanted), "{wanted}: {}", charge.text);
    }
    assert_english_mail(&charge);
    let failed = wait_for_mail(&app, MEMBER.0, "could not be charged").await;
    assert!(
        failed.text.contains(
            "Association de démonstration could not charge €67.00 to your saved card \
             (Visa •••• 4242): the payment was declined."
        ),
        "{}",
        failed.text
    );
    assert!(failed.html.contains("Pay this amount from your basket"));
    assert_english_mail(&failed);

    // Withdrawn: the flash says so in English.
    let basket = member.get("/basket").await;
    let card_id: String =
        sqlx::query_scalar("SELECT id FROM saved_payment_methods WHERE member_id = $1")
            .bind(&member_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let forgotten = member
        .post_form(
            &format!("/basket/saved-card/{card_id}/forget"),
            &[("csrf_token", &basket.csrf())],
        )
        .await;
    assert_eq!(forgotten.status, 303);
    let basket = member.get("/basket").await;
    assert!(
        basket.body.contains(
            "Your card Visa •••• 4242 is withdrawn: the association will no longer charge it. \
             Stripe has forgotten it too."
        ),
        "{}",
        basket.body
    );
    assert_english_page(&basket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_pages_read_in_english_and_in_french_by_default() {
    let app = spawn_app().await;

    // French by default.
    let visitor = app.browser();
    let forgot = visitor.get("/password/forgot").await;
    assert!(forgot.body.contains("Mot de passe oublié"));
    assert!(forgot.body.contains("<html lang=\"fr\">"));

    // A visitor who chose English: passwords and logging in.
    choose(&visitor, "en", "/password/forgot").await;
    let forgot = visitor.get("/password/forgot").await;
    assert!(
        forgot.body.contains("Forgotten password"),
        "{}",
        forgot.body
    );
    assert_english_page(&forgot);
    let refused = visitor
        .post_form(
            "/password/forgot",
            &[("email", "not an address"), ("csrf_token", &forgot.csrf())],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.text_of("forgot-error").as_deref(),
        Some("Type a valid email address.")
    );
    assert_english_page(&refused);
    let sent = visitor
        .post_form(
            "/password/forgot",
            &[
                ("email", "nobody@exemple.org"),
                ("csrf_token", &forgot.csrf()),
            ],
        )
        .await;
    assert_eq!(sent.location.as_deref(), Some("/login"));
    let login = visitor.get("/login").await;
    assert!(
        login.body.contains("If an account matches this address"),
        "{}",
        login.body
    );
    assert_english_page(&login);
    let dead = visitor.get("/password/set?token=made-up").await;
    assert_eq!(dead.status, 400);
    assert!(
        dead.text_of("link-error")
            .is_some_and(|e| e.starts_with("This link is not valid.")),
        "{}",
        dead.body
    );
    assert_english_page(&dead);
    let wrong = visitor.login(MEMBER.0, "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong email address or password."));
    assert_english_page(&wrong);

    // Logged in: the basket's refusals, the gateway's page, and logging out.
    assert_eq!(visitor.login(MEMBER.0, MEMBER.1).await.status, 303);
    let unknown = visitor.pay("12.50", "nowhere").await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .body
            .contains("Choose one of the payment methods offered."),
        "{}",
        unknown.body
    );
    assert_english_page(&unknown);
    let too_much = visitor.pay("5000", "sandbox").await;
    assert_eq!(too_much.status, 422);
    assert!(
        too_much
            .body
            .contains("The amount cannot be more than €1,000.00 in a single payment."),
        "{}",
        too_much.body
    );
    let (_, hosted) = visitor.start_payment(&app, "12.50").await;
    let page = visitor.get(&hosted).await;
    assert!(
        page.body.contains("Sandbox — test payment"),
        "{}",
        page.body
    );
    assert_eq!(page.text_of("sandbox-pay").as_deref(), Some("Pay €12.50"));
    assert_eq!(
        page.text_of("sandbox-refuse").as_deref(),
        Some("Refuse the payment")
    );
    assert_english_page(&page);
    let basket = visitor.get("/basket").await;
    assert_english_page(&basket);
    let out = visitor
        .post_form("/logout", &[("csrf_token", &basket.csrf())])
        .await;
    assert_eq!(out.status, 303);
    let login = visitor.get("/login").await;
    assert!(login.body.contains("You are logged out."), "{}", login.body);
    assert_english_page(&login);

    // Another member, another browser: the gateway's page in French.
    let louis = app.logged_in(MEMBER2).await;
    let (_, hosted) = louis.start_payment(&app, "10").await;
    let page = louis.get(&hosted).await;
    assert_eq!(
        page.text_of("sandbox-pay").as_deref(),
        Some("Payer 10,00 €")
    );
    assert!(page.body.contains("<html lang=\"fr\">"));
    // The markers the English pages are checked for are found on a French page.
    let markers = french_markers(&visible_text(&page.body));
    assert!(markers.contains(&"Payer".to_string()), "{markers:?}");
    assert!(markers.contains(&"é".to_string()), "{markers:?}");
}
