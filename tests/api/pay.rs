use crate::helpers::{MEMBER, MEMBER_OWES_CENTS, spawn_app, spawn_app_with};

async fn attempts(app: &crate::helpers::TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM payments").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_in_the_sandbox_records_the_payment_once_and_the_balance_drops() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let member_id = app.member_id(MEMBER.0).await;

    // The member edits the amount and is sent to the gateway's hosted page.
    let (payment_id, hosted) = browser.start_payment(&app, "30,00").await;
    assert!(hosted.contains("/sandbox/pay/sbx_pay_"), "{hosted}");
    assert_eq!(app.payment_status(&payment_id).await, "pending");
    let gateway_page = browser.get(&hosted).await;
    assert_eq!(gateway_page.status, 200);
    assert_eq!(
        gateway_page.text_of("sandbox-amount").as_deref(),
        Some("30,00 €")
    );

    // Before the gateway's notification, the return page only waits, whatever its URL says.
    let early = browser
        .get(&format!(
            "/payments/{payment_id}?status=succeeded&sandbox_payment=x"
        ))
        .await;
    assert_eq!(early.status, 200);
    assert_eq!(
        early.text_of("payment-headline").as_deref(),
        Some("Confirmation en cours")
    );
    assert!(early.body.contains("http-equiv=\"refresh\""));
    assert_eq!(app.postings_for(&payment_id).await, (0, 0));

    // The member pays; the sandbox notifies obole and sends the browser back.
    let back = browser.post_form(&hosted, &[("action", "pay")]).await;
    assert_eq!(back.status, 303);
    let return_url = back.location.expect("return URL");
    assert!(return_url.contains(&format!("/payments/{payment_id}")));
    app.wait_for_status(&payment_id, "paid").await;

    let done = browser.get_following(&return_url).await;
    assert_eq!(
        done.text_of("payment-headline").as_deref(),
        Some("Paiement confirmé")
    );
    assert_eq!(done.text_of("payment-status").as_deref(), Some("Payé"));
    let receipt = done.text_of("receipt").expect("a printable receipt");
    assert!(
        receipt.contains("Camille Martin") && receipt.contains("30,00 €"),
        "{receipt}"
    );
    assert!(receipt.contains(&payment_id));
    assert!(!done.body.contains("http-equiv=\"refresh\""));

    // One journal entry, one basket line; the entry balances and books the sandbox fee.
    assert_eq!(app.postings_for(&payment_id).await, (1, 1));
    let lines: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT l.account, l.debit_cents, l.credit_cents FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id WHERE e.payment_id = $1 ORDER BY l.line_no",
    )
    .bind(&payment_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    // 1.4 % of 30,00 = 0,42, plus 0,25.
    assert_eq!(
        lines,
        vec![
            ("5112".to_string(), 3000 - 67, 0),
            ("627".to_string(), 67, 0),
            ("411".to_string(), 0, 3000),
        ]
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);

    let basket = browser.get("/basket").await;
    assert_eq!(basket.text_of("balance").as_deref(), Some("67,00 €"));
    assert!(basket.body.contains("Payé"));
    assert!(basket.body.contains("30,00 €"));
    let owed_cents: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(CASE WHEN kind = 'charge' THEN amount_cents ELSE -amount_cents END) AS BIGINT) \
         FROM basket_lines WHERE member_id = $1",
    )
    .bind(&member_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(owed_cents, MEMBER_OWES_CENTS - 3000);
    // The next pay form proposes what is left.
    assert_eq!(basket.value_of("amount").as_deref(), Some("67,00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comma_and_dot_amounts_both_mean_cents() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    for typed in ["12,50", "12.50"] {
        let (id, _) = browser.start_payment(&app, typed).await;
        let cents: i64 = sqlx::query_scalar("SELECT amount_cents FROM payments WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(cents, 1250, "{typed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_are_refused_in_the_form_and_create_nothing() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let cases = [
        ("0", "supérieur à zéro"),
        ("0,00", "supérieur à zéro"),
        ("-5", "négatif"),
        ("12,345", "deux décimales"),
        ("douze", "nombre"),
        ("", "Indiquez un montant"),
        ("1000,01", "ne peut pas dépasser 1 000,00 €"),
        ("99999999999999999999", "trop élevé"),
    ];
    for (typed, message) in cases {
        let page = browser.pay(typed, "sandbox").await;
        assert_eq!(page.status, 422, "{typed:?} should be refused");
        let error = page.text_of("amount-error").unwrap_or_default();
        assert!(error.contains(message), "{typed:?}: got {error:?}");
        assert!(page.body.contains("aria-invalid=\"true\""));
    }
    assert_eq!(attempts(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_is_the_larger_of_the_balance_and_1000_euros_or_as_configured() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    // Paying more than owed (in advance) is allowed up to 1 000 €.
    assert_eq!(browser.pay("1000", "sandbox").await.status, 303);

    let strict = spawn_app_with(|s| s.pay_ceiling_cents = Some(5000)).await;
    let browser = strict.logged_in(MEMBER).await;
    let page = browser.pay("50,01", "sandbox").await;
    assert_eq!(page.status, 422);
    assert!(page.text_of("amount-error").unwrap().contains("50,00 €"));
    assert_eq!(browser.pay("50", "sandbox").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_gateway_is_refused() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", "bitcoin").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("moyens de paiement proposés"));
    assert_eq!(attempts(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_without_the_csrf_token_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser
        .post_form("/basket/pay", &[("amount", "10"), ("gateway", "sandbox")])
        .await;
    assert_eq!(page.status, 403);
    let forged = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "10"),
                ("gateway", "sandbox"),
                ("csrf_token", "nope"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(attempts(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_errored_and_abandoned_payments_are_shown_and_post_nothing() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let cases = [
        ("refuse", "failed", "Paiement refusé"),
        ("error", "failed", "Paiement refusé"),
        ("back", "cancelled", "Paiement annulé"),
    ];
    for (action, status, headline) in cases {
        let (id, hosted) = browser.start_payment(&app, "20").await;
        let back = browser.post_form(&hosted, &[("action", action)]).await;
        assert_eq!(back.status, 303);
        app.wait_for_status(&id, status).await;
        let page = browser.get(&format!("/payments/{id}")).await;
        assert_eq!(
            page.text_of("payment-headline").as_deref(),
            Some(headline),
            "{action}"
        );
        assert_eq!(app.postings_for(&id).await, (0, 0), "{action}");
    }
    let basket = browser.get("/basket").await;
    assert_eq!(basket.text_of("balance").as_deref(), Some("97,00 €"));
    assert!(basket.body.contains("Refusé") && basket.body.contains("Annulé"));
    // Only the seeded charges are in the journal.
    assert_eq!(app.journal_totals().await.2, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_cannot_be_reached_leaves_a_clear_message_and_a_failed_attempt() {
    let app =
        spawn_app_with(|s| s.sandbox.api_base = Some("http://127.0.0.1:9/sandbox/api".into()))
            .await;
    let browser = app.logged_in(MEMBER).await;
    let page = browser.pay("10", "sandbox").await;
    assert_eq!(page.status, 502);
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("ne répond pas")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE status = 'failed'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_api_rejects_what_a_gateway_would_reject() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let url = format!("{}/sandbox/api/v1/payments", app.address);
    let good = serde_json::json!({
        "amount": 1000, "currency": "EUR", "reference": "r1",
        "return_url": "https://exemple.org/r", "notification_url": "https://exemple.org/n"
    });
    let no_key = client.post(&url).json(&good).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    let wrong_key = client
        .post(&url)
        .bearer_auth("sk_wrong")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    let bad_bodies = [
        serde_json::json!({"amount": "10.00", "currency": "EUR", "reference": "r", "return_url": "https://a.org", "notification_url": "https://a.org"}),
        serde_json::json!({"amount": 0, "currency": "EUR", "reference": "r", "return_url": "https://a.org", "notification_url": "https://a.org"}),
        serde_json::json!({"amount": 100, "currency": "USD", "reference": "r", "return_url": "https://a.org", "notification_url": "https://a.org"}),
        serde_json::json!({"amount": 100, "currency": "EUR", "reference": "", "return_url": "https://a.org", "notification_url": "https://a.org"}),
        serde_json::json!({"amount": 100, "currency": "EUR", "reference": "r", "return_url": "/relative", "notification_url": "https://a.org"}),
        serde_json::json!({"amount": 100, "currency": "EUR", "reference": "r", "return_url": "https://a.org", "notification_url": "https://a.org", "card_number": "4242"}),
    ];
    for body in bad_bodies {
        let response = client
            .post(&url)
            .bearer_auth("sk_sandbox_demo_key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    let created = client
        .post(&url)
        .bearer_auth("sk_sandbox_demo_key")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_return_urls_hints_choose_words_but_never_confirm_anything() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = browser.start_payment(&app, "20").await;
    for hint in ["abandon", "erreur"] {
        let page = browser.get(&format!("/payments/{id}?retour={hint}")).await;
        assert_eq!(
            page.text_of("payment-headline").as_deref(),
            Some("Paiement non effectué")
        );
        assert!(!page.body.contains("http-equiv=\"refresh\""));
    }
    assert_eq!(app.payment_status(&id).await, "pending");
    // Once the gateway confirms, the hint is ignored.
    browser.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    let page = browser.get(&format!("/payments/{id}?retour=abandon")).await;
    assert_eq!(
        page.text_of("payment-headline").as_deref(),
        Some("Paiement confirmé")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installments_are_refused_with_a_gateway_that_cannot_split_payments() {
    let app = spawn_app_with(|s| s.installments_max_terms = 4).await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    // The sandbox cannot split payments: no choice of terms is offered.
    assert!(!basket.body.contains("name=\"terms\""));
    let page = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "30"),
                ("gateway", "sandbox"),
                ("terms", "3"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.text_of("amount-error")
            .unwrap()
            .contains("plusieurs fois")
    );
    assert_eq!(attempts(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_pays_in_three_terms_with_helloasso_and_each_term_is_its_own_line() {
    let app = spawn_app_with(|s| {
        s.gateways.push("helloasso".into());
        s.helloasso.emulator = true;
        s.installments_max_terms = 4;
    })
    .await;
    let browser = app.logged_in(MEMBER).await;
    let basket = browser.get("/basket").await;
    assert!(basket.body.contains("En 3 mensualités"));
    let page = browser
        .post_form(
            "/basket/pay",
            &[
                ("amount", "90"),
                ("gateway", "helloasso"),
                ("terms", "3"),
                ("csrf_token", &basket.csrf()),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let hosted = page.location.unwrap();
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'helloasso'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    crate::contract::act(&browser, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    // The first term is paid now: one line of 30,00 €.
    for _ in 0..50 {
        if app.postings_for(&id).await == (1, 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.postings_for(&id).await, (1, 1));
    assert_eq!(
        browser.get("/basket").await.text_of("balance").as_deref(),
        Some("67,00 €")
    );
    // HelloAsso takes the second term a month later and says so.
    let gateway_ref = app.gateway_ref(&id).await;
    crate::contract::control(
        &app,
        &crate::contract::helloasso::HelloAssoDriver,
        &gateway_ref,
        serde_json::json!({"status": "paid", "notify": true}),
    )
    .await;
    for _ in 0..100 {
        if app.postings_for(&id).await == (2, 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.postings_for(&id).await, (2, 2));
    assert_eq!(
        browser.get("/basket").await.text_of("balance").as_deref(),
        Some("37,00 €")
    );
    let (debit, credit, _) = app.journal_totals().await;
    assert_eq!(debit, credit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_return_accepts_a_cross_site_post_and_leads_to_the_payment_page() {
    let app = spawn_app().await;
    let browser = app.logged_in(MEMBER).await;
    let (id, _) = browser.start_payment(&app, "20").await;
    // A gateway posting its answer back: no session cookie comes with it.
    let stranger = app.browser();
    let posted = stranger
        .post_form(
            &format!("/payments/{id}/return?retour=erreur"),
            &[("kr-answer", "{}"), ("kr-hash", "x")],
        )
        .await;
    assert_eq!(posted.status, 303);
    assert_eq!(
        posted.location.as_deref(),
        Some(format!("/payments/{id}?retour=erreur").as_str())
    );
    let page = browser.get(posted.location.as_deref().unwrap()).await;
    assert_eq!(
        page.text_of("payment-headline").as_deref(),
        Some("Paiement non effectué")
    );
    assert_eq!(app.payment_status(&id).await, "pending");
    let odd = stranger
        .get("/payments/x%3Cy/return?retour=%3Cscript%3E")
        .await;
    assert_eq!(odd.location.as_deref(), Some("/payments/xy?retour=ok"));
}
