//! Gateway settings in the back office: credentials sealed at rest and never shown back, the
//! registry rebuilt on saving, who may do what, the members' pay form following the settings,
//! the connection test against every emulator, and a settings key that changed.

use obole::config::Settings;
use obole::gateways::stripe::EMULATOR_SECRET_KEY;
use obole::startup::Application;
use sqlx::Row;

use crate::contract::act;
use crate::helpers::{Browser, MANAGER, MEMBER, Page, TestApp, spawn_app_with};

/// The demo's manager, who is not an admin.
const SECRETARY: (&str, &str) = ("secretaire@exemple.org", "secretaire-demo");
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
/// A test key of the right shape that the Stripe emulator does not know.
const STALE_STRIPE_KEY: &str = "sk_test_stale_key_stripe_does_not_know_0000";

/// Stripe offered after the sandbox, backed by its emulator, with the settings key set.
fn with_stripe(settings: &mut Settings) {
    settings.gateways.push("stripe".into());
    settings.stripe.emulator = true;
    settings.settings_key = Some(KEY.into());
    settings.reconcile.interval_secs = 0;
}

/// The same, but the configuration's Stripe key is one Stripe refuses.
fn with_stale_stripe_key(settings: &mut Settings) {
    with_stripe(settings);
    settings.stripe.secret_key = STALE_STRIPE_KEY.into();
}

fn select<'a>(html: &'a scraper::Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
    let selector = scraper::Selector::parse(selector).expect("selector");
    html.select(&selector).collect()
}

/// What the page says about the last save or connection test, in the gateway's section.
fn notice(page: &Page, gateway: &str) -> Option<String> {
    page.text_of(&format!("{gateway}-notice"))
}

/// What the gateway's settings form would send as it is shown: hidden and text fields, and
/// the checkboxes that are checked.
fn form_of(page: &Page, gateway: &str) -> Vec<(String, String)> {
    let html = scraper::Html::parse_document(&page.body);
    select(&html, &format!("#{gateway}-form input"))
        .into_iter()
        .filter_map(|input| {
            let input = input.value();
            let name = input.attr("name")?;
            if input.attr("disabled").is_some()
                || (input.attr("type") == Some("checkbox") && input.attr("checked").is_none())
            {
                return None;
            }
            Some((
                name.to_string(),
                input.attr("value").unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// A field of a form and its new value; `None` unchecks a box.
type Change<'a> = (&'a str, Option<&'a str>);

/// Submits the gateway's settings form as shown, with `changes`.
async fn save(browser: &Browser, gateway: &str, changes: &[Change<'_>]) -> Page {
    let page = browser.get("/admin/gateways").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = form_of(&page, gateway);
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        if let Some(value) = value {
            form.push((name.to_string(), value.to_string()));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser
        .post_form(&format!("/admin/gateways/{gateway}"), &form)
        .await
}

/// Clicks "Tester la connexion" and returns the flash message it leads to.
async fn test_connection(browser: &Browser, gateway: &str) -> String {
    let token = browser.get("/admin/gateways").await.csrf();
    let answer = browser
        .post_form(
            &format!("/admin/gateways/{gateway}/test"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    notice(&browser.get("/admin/gateways").await, gateway).expect("a notice")
}

/// The gateways the member's pay form offers, in order, and the one pre-selected.
async fn pay_choices(member: &Browser) -> (Vec<String>, Option<String>) {
    let page = member.get("/basket").await;
    let html = scraper::Html::parse_document(&page.body);
    let radios = select(&html, "input[name=gateway]");
    let ids = radios
        .iter()
        .filter_map(|r| r.value().attr("value").map(str::to_string))
        .collect();
    let checked = radios
        .iter()
        .find(|r| r.value().attr("checked").is_some())
        .and_then(|r| r.value().attr("value").map(str::to_string));
    (ids, checked)
}

/// Everything stored about gateway settings and the audit log, as one text.
async fn stored_text(app: &TestApp) -> String {
    let mut text = String::new();
    for row in sqlx::query(
        "SELECT gateway, credentials, key_id, updated_by FROM gateway_settings ORDER BY gateway",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    {
        for column in ["gateway", "credentials", "key_id", "updated_by"] {
            text.push_str(&row.get::<Option<String>, _>(column).unwrap_or_default());
            text.push('\n');
        }
    }
    for row in sqlx::query("SELECT before_state, after_state FROM audit_log")
        .fetch_all(&app.pool)
        .await
        .unwrap()
    {
        for column in ["before_state", "after_state"] {
            text.push_str(&row.get::<Option<String>, _>(column).unwrap_or_default());
            text.push('\n');
        }
    }
    text
}

async fn sealed_stripe_credentials(app: &TestApp) -> Option<String> {
    sqlx::query("SELECT credentials FROM gateway_settings WHERE gateway = 'stripe'")
        .fetch_optional(&app.pool)
        .await
        .unwrap()
        .and_then(|r| r.get::<Option<String>, _>("credentials"))
}

/// Another process of the same portal, on the same database, with other settings.
async fn second_process(
    app: &TestApp,
    adjust: impl FnOnce(&mut Settings),
) -> anyhow::Result<TestApp> {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let second = Application::build_with_pool(settings.clone(), app.pool.clone()).await?;
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    Ok(TestApp {
        address,
        pool: app.pool.clone(),
        settings,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_stripe_credentials_are_sealed_shown_by_their_last_four_and_used_for_the_next_payment()
 {
    let app = spawn_app_with(with_stale_stripe_key).await;
    let member = app.logged_in(MEMBER).await;
    // The configuration's key is refused by Stripe: paying with it fails.
    assert_eq!(member.pay("20", "stripe").await.status, 422);

    let admin = app.logged_in(MANAGER).await;
    let saved = save(
        &admin,
        "stripe",
        &[("cred_secret_key", Some(EMULATOR_SECRET_KEY))],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.get("/admin/gateways").await;
    assert_eq!(
        notice(&page, "stripe").as_deref(),
        Some("Réglages de Stripe enregistrés. Identifiants modifiés : Clé secrète.")
    );
    // Shown by its last four characters only, never in full, never as a field's value.
    assert_eq!(
        page.text_of("stripe-secret_key-status").as_deref(),
        Some("enregistré ici (…p7dc) · sk_test_… ou sk_live_…")
    );
    assert!(!page.body.contains(EMULATOR_SECRET_KEY));
    assert_eq!(page.value_of("stripe-secret_key").as_deref(), Some(""));
    // The database holds ciphertext only; the audit log names the field, not its value.
    let stored = stored_text(&app).await;
    assert!(!stored.contains(EMULATOR_SECRET_KEY), "{stored}");
    assert!(!stored.contains("4eC39HqLyjWDarjtT1zdp7dc"), "{stored}");
    let sealed = sealed_stripe_credentials(&app)
        .await
        .expect("sealed credentials");
    assert!(sealed.len() > 40);
    let audit =
        sqlx::query("SELECT target, after_state FROM audit_log WHERE action = 'gateway.settings'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit.get::<String, _>("target"), "gateway:stripe");
    assert!(
        audit
            .get::<String, _>("after_state")
            .contains(r#""credentials_changed":["secret_key"]"#)
    );

    // The next payment goes through with the new key: the emulator accepts it.
    let paying = member.pay("20", "stripe").await;
    assert_eq!(paying.status, 303, "{}", paying.body);
    let hosted = paying.location.unwrap();
    assert!(hosted.contains("/sandbox/stripe/c/pay/"), "{hosted}");
    let id: String = sqlx::query_scalar(
        "SELECT id FROM payments WHERE gateway = 'stripe' AND status = 'pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    act(&member, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;

    // Saving again with the field left empty keeps the key, and changes nothing sealed.
    let again = save(&admin, "stripe", &[("position", Some("5"))]).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(sealed_stripe_credentials(&app).await, Some(sealed));
    let page = admin.get("/admin/gateways").await;
    assert_eq!(
        notice(&page, "stripe").as_deref(),
        Some("Réglages de Stripe enregistrés.")
    );
    // Said once: the next visit shows it no more.
    assert_eq!(notice(&admin.get("/admin/gateways").await, "stripe"), None);
    assert!(
        page.text_of("stripe-secret_key-status")
            .unwrap()
            .starts_with("enregistré ici (…p7dc)")
    );
    assert_eq!(member.pay("5", "stripe").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_read_the_settings_only_admins_change_them_and_members_see_nothing() {
    let app = spawn_app_with(with_stripe).await;
    let admin = app.logged_in(MANAGER).await;
    let token_of = |page: &Page| page.csrf();

    let secretary = app.logged_in(SECRETARY).await;
    let page = secretary.get("/admin/gateways").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("{}/webhooks/stripe", app.address))
    );
    assert!(
        page.text_of("stripe-form").is_none(),
        "no form for a manager"
    );
    assert!(page.text_of("stripe-test").is_none());
    assert!(
        page.text_of("stripe-secret_key-status")
            .unwrap()
            .starts_with("configuration (…")
    );
    let token = token_of(&page);
    let attempt = secretary
        .post_form(
            "/admin/gateways/stripe",
            &[
                ("csrf_token", &token),
                ("revision", "0"),
                ("position", "1"),
                ("cred_secret_key", "sk_test_from_the_secretary_000"),
            ],
        )
        .await;
    assert_eq!(attempt.status, 403);
    let test = secretary
        .post_form("/admin/gateways/stripe/test", &[("csrf_token", &token)])
        .await;
    assert_eq!(test.status, 403);

    let member = app.logged_in(MEMBER).await;
    assert_eq!(member.get("/admin/gateways").await.status, 403);
    let token = member.get("/basket").await.csrf();
    for path in ["/admin/gateways/stripe", "/admin/gateways/stripe/test"] {
        let answer = member
            .post_form(
                path,
                &[("csrf_token", &token), ("revision", "0"), ("position", "1")],
            )
            .await;
        assert_eq!(answer.status, 403, "{path}");
    }
    let anonymous = app
        .browser()
        .post_form("/admin/gateways/stripe", &[("position", "1")])
        .await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.location.as_deref(), Some("/login"));

    assert_eq!(app.count("SELECT COUNT(*) FROM gateway_settings").await, 0);
    // The admin has the form.
    assert!(
        admin
            .get("/admin/gateways")
            .await
            .text_of("stripe-form")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_gateway_leaves_the_pay_form_but_still_answers_for_its_payments() {
    let app = spawn_app_with(with_stripe).await;
    let member = app.logged_in(MEMBER).await;
    assert_eq!(
        pay_choices(&member).await.0,
        vec!["sandbox".to_string(), "stripe".to_string()]
    );
    let paying = member.pay("30", "stripe").await;
    assert_eq!(paying.status, 303, "{}", paying.body);
    let hosted = paying.location.unwrap();
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE gateway = 'stripe'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let admin = app.logged_in(MANAGER).await;
    let saved = save(&admin, "stripe", &[("enabled", None)]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(pay_choices(&member).await.0, vec!["sandbox".to_string()]);
    let refused = member.pay("30", "stripe").await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Choisissez l"));
    let page = admin.get("/admin/gateways").await;
    assert!(
        page.text_of("stripe-state")
            .unwrap()
            .contains("répond encore pour les paiements déjà faits")
    );

    // The payment started before goes on: Stripe's notification is still received and applied.
    act(&member, &hosted, "pay").await;
    app.wait_for_status(&id, "paid").await;
    assert_eq!(app.postings_for(&id).await.0, 1);

    // Enabled again, it is offered again.
    let saved = save(&admin, "stripe", &[("enabled", Some("1"))]).await;
    assert_eq!(saved.status, 303);
    assert_eq!(pay_choices(&member).await.0.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_the_gateways_in_the_order_set_with_the_default_one_preselected() {
    let app = spawn_app_with(with_stripe).await;
    let member = app.logged_in(MEMBER).await;
    assert_eq!(
        pay_choices(&member).await,
        (
            vec!["sandbox".to_string(), "stripe".to_string()],
            Some("sandbox".to_string())
        )
    );
    let admin = app.logged_in(MANAGER).await;
    let saved = save(&admin, "stripe", &[("is_default", Some("1"))]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        pay_choices(&member).await,
        (
            vec!["sandbox".to_string(), "stripe".to_string()],
            Some("stripe".to_string())
        )
    );
    let page = admin.get("/admin/gateways").await;
    assert!(
        page.text_of("stripe-state")
            .unwrap()
            .contains("présélectionné")
    );
    // Sandbox moves after Stripe.
    let saved = save(&admin, "sandbox", &[("position", Some("9"))]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        pay_choices(&member).await,
        (
            vec!["stripe".to_string(), "sandbox".to_string()],
            Some("stripe".to_string())
        )
    );
    // Another default replaces the first.
    let saved = save(&admin, "sandbox", &[("is_default", Some("1"))]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(pay_choices(&member).await.1.as_deref(), Some("sandbox"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM gateway_settings WHERE is_default = 1")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_test_reports_success_a_refused_key_and_an_unreachable_gateway() {
    let app = spawn_app_with(with_stale_stripe_key).await;
    let admin = app.logged_in(MANAGER).await;
    let refused = test_connection(&admin, "stripe").await;
    assert!(
        refused
            .starts_with("Identifiants refusés par Stripe : Invalid API Key provided: sk_****0000"),
        "{refused}"
    );
    assert!(!refused.contains(STALE_STRIPE_KEY));

    let saved = save(
        &admin,
        "stripe",
        &[("cred_secret_key", Some(EMULATOR_SECRET_KEY))],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        test_connection(&admin, "stripe").await,
        "Connexion réussie (mode test) : Stripe a accepté les identifiants."
    );

    // Nothing listens there: the gateway cannot be reached.
    let app = spawn_app_with(|s| {
        with_stripe(s);
        s.stripe.api_base = Some("http://127.0.0.1:9".into());
    })
    .await;
    let admin = app.logged_in(MANAGER).await;
    let unreachable = test_connection(&admin, "stripe").await;
    assert!(
        unreachable.starts_with("Stripe injoignable"),
        "{unreachable}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emulator_answers_the_connection_test_and_refuses_wrong_credentials() {
    let app = spawn_app_with(|s| {
        s.settings_key = Some(KEY.into());
        s.reconcile.interval_secs = 0;
        s.helloasso.emulator = true;
        s.stripe.emulator = true;
        s.paypal.emulator = true;
        s.mollie.emulator = true;
        s.payplug.emulator = true;
        s.payzen.emulator = true;
        s.stancer.emulator = true;
    })
    .await;
    let admin = app.logged_in(MANAGER).await;
    let wrong: [(&str, &str, &str, &str); 8] = [
        (
            "sandbox",
            "Sandbox (paiement de test)",
            "cred_api_key",
            "sk_sandbox_wrong_key",
        ),
        (
            "helloasso",
            "HelloAsso",
            "cred_client_secret",
            "wrong-client-secret",
        ),
        (
            "stripe",
            "Stripe",
            "cred_secret_key",
            "sk_test_wrong_key_000000000",
        ),
        (
            "paypal",
            "PayPal",
            "cred_client_secret",
            "wrong-client-secret",
        ),
        (
            "mollie",
            "Mollie",
            "cred_api_key",
            "test_wrongKey000000000000000000",
        ),
        (
            "payplug",
            "PayPlug",
            "cred_secret_key",
            "sk_test_wrong_payplug_key",
        ),
        ("payzen", "PayZen", "cred_password", "testpassword_wrong"),
        (
            "stancer",
            "Stancer",
            "cred_secret_key",
            "stest_wrongKey0000000000000",
        ),
    ];
    for (gateway, name, field, value) in wrong {
        assert_eq!(
            test_connection(&admin, gateway).await,
            format!("Connexion réussie (mode test) : {name} a accepté les identifiants."),
            "{gateway}"
        );
        let saved = save(&admin, gateway, &[(field, Some(value))]).await;
        assert_eq!(saved.status, 303, "{gateway}: {}", saved.body);
        let refused = test_connection(&admin, gateway).await;
        assert!(
            refused.starts_with(&format!("Identifiants refusés par {name}")),
            "{gateway}: {refused}"
        );
        assert!(!refused.contains(value), "{gateway}: {refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_settings_key_is_said_on_the_page_and_never_erases_the_credentials() {
    let app = spawn_app_with(with_stale_stripe_key).await;
    let admin = app.logged_in(MANAGER).await;
    let saved = save(
        &admin,
        "stripe",
        &[("cred_secret_key", Some(EMULATOR_SECRET_KEY))],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let sealed = sealed_stripe_credentials(&app).await.expect("sealed");

    // The portal restarted with another key: it runs, says so, and leaves Stripe out.
    let other = second_process(&app, |s| s.settings_key = Some(OTHER_KEY.into()))
        .await
        .expect("a portal whose key changed still starts");
    let admin = other.logged_in(MANAGER).await;
    let page = admin.get("/admin/gateways").await;
    assert_eq!(page.status, 200);
    let lock = page.text_of("stripe-lock").expect("the problem is said");
    assert!(lock.contains("chiffrés avec une autre clé"), "{lock}");
    assert!(lock.contains("Rien n'a été effacé"), "{lock}");
    let member = other.logged_in(MEMBER).await;
    assert_eq!(pay_choices(&member).await.0, vec!["sandbox".to_string()]);
    assert_eq!(
        test_connection(&admin, "stripe").await,
        "Connexion non testée : les identifiants enregistrés pour Stripe ne peuvent pas être déchiffrés (voir ci-dessous)."
    );
    // Saving other settings keeps the sealed credentials as they are.
    let saved = save(&admin, "stripe", &[("position", Some("7"))]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(sealed_stripe_credentials(&app).await, Some(sealed.clone()));

    // Without any key, the same: said, not erased.
    let keyless = second_process(&app, |s| s.settings_key = None)
        .await
        .expect("a portal without a key starts");
    let page = keyless
        .logged_in(MANAGER)
        .await
        .get("/admin/gateways")
        .await;
    assert!(
        page.text_of("stripe-lock")
            .unwrap()
            .contains("aucune clé de chiffrement n'est définie")
    );
    assert!(
        page.text_of("settings-key")
            .unwrap()
            .contains("openssl rand -base64 32")
    );
    assert_eq!(sealed_stripe_credentials(&app).await, Some(sealed.clone()));

    // Entering the credentials again under the new key puts Stripe back.
    let saved = save(
        &admin,
        "stripe",
        &[("cred_secret_key", Some(EMULATOR_SECRET_KEY))],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.get("/admin/gateways").await;
    assert!(page.text_of("stripe-lock").is_none());
    assert_eq!(pay_choices(&member).await.0.len(), 2);
    assert_ne!(sealed_stripe_credentials(&app).await, Some(sealed));

    // A key that is not 32 bytes of base64 stops the start with a clear message.
    for bad in ["not base64 at all", "AAECAwQF"] {
        let error = match second_process(&app, |s| s.settings_key = Some(bad.into())).await {
            Ok(_) => panic!("a malformed key must stop the start"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("OBOLE_SETTINGS_KEY"), "{error}");
        assert!(error.contains("openssl rand -base64 32"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_message_and_saves_nothing() {
    let app = spawn_app_with(with_stripe).await;
    let admin = app.logged_in(MANAGER).await;
    let cases: [(&[Change], &str); 6] = [
        (
            &[("position", Some("premier"))],
            "L'ordre d'affichage est un nombre entier de 1 à 99.",
        ),
        (
            &[("position", Some("0"))],
            "L'ordre d'affichage est un nombre entier de 1 à 99.",
        ),
        (
            &[("cred_secret_key", Some("pk_test_a_publishable_key"))],
            "Clé secrète : cette valeur n'a pas la forme attendue (sk_test_… ou sk_live_…).",
        ),
        (
            &[("cred_webhook_secret", Some("whsec_with a space"))],
            "Secret de signature du webhook : ni espace ni caractère invisible (vérifiez le copier-coller).",
        ),
        (
            &[("cred_secret_key", Some("sk_live_a_real_key_0000000000"))],
            "Le mode test est coché, mais c'est une clé de production (sk_live_…) qui est enregistrée",
        ),
        (
            &[("is_default", Some("1")), ("enabled", None)],
            "Un moyen de paiement désactivé ne peut pas être celui proposé par défaut.",
        ),
    ];
    for (changes, message) in cases {
        let page = save(&admin, "stripe", changes).await;
        assert_eq!(page.status, 422, "{changes:?}: {}", page.body);
        let shown = page.text_of("stripe-error").expect("the message");
        assert!(shown.starts_with(message), "{changes:?}: {shown}");
        assert!(
            !page.body.contains("sk_live_a_real_key"),
            "a secret typed is not echoed"
        );
    }
    // Test mode off with a test key: refused too.
    let page = save(&admin, "stripe", &[("test_mode", None)]).await;
    assert_eq!(page.status, 422);
    assert!(
        page.text_of("stripe-error")
            .unwrap()
            .contains("la clé enregistrée est une clé de test (sk_test_…)")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM gateway_settings").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0);

    // A form made before someone else saved is not applied over their change.
    let stale = admin.get("/admin/gateways").await;
    assert_eq!(
        save(&admin, "stripe", &[("position", Some("3"))])
            .await
            .status,
        303
    );
    let mut form = form_of(&stale, "stripe");
    form.retain(|(n, _)| n != "position");
    form.push(("position".into(), "4".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let conflict = admin.post_form("/admin/gateways/stripe", &form).await;
    assert_eq!(conflict.status, 303);
    assert!(
        notice(&admin.get("/admin/gateways").await, "stripe")
            .unwrap()
            .contains("modifiés entre-temps")
    );
    assert_eq!(
        app.count("SELECT position FROM gateway_settings WHERE gateway = 'stripe'")
            .await,
        3
    );

    // Unknown gateway, unknown field, no CSRF token.
    let token = admin.get("/admin/gateways").await.csrf();
    let fields = [
        ("csrf_token", token.as_str()),
        ("revision", "0"),
        ("position", "1"),
    ];
    assert_eq!(
        admin
            .post_form("/admin/gateways/bitcoin", &fields)
            .await
            .status,
        404
    );
    let mut with_unknown = fields.to_vec();
    with_unknown.push(("cred_password", "x"));
    assert_eq!(
        admin
            .post_form("/admin/gateways/mollie", &with_unknown)
            .await
            .status,
        400
    );
    assert_eq!(
        admin
            .post_form(
                "/admin/gateways/mollie",
                &[("revision", "0"), ("position", "1")]
            )
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_settings_key_credentials_are_refused_but_other_settings_are_saved() {
    let app = spawn_app_with(|s| {
        with_stripe(s);
        s.settings_key = None;
    })
    .await;
    let admin = app.logged_in(MANAGER).await;
    let page = admin.get("/admin/gateways").await;
    assert!(
        page.text_of("settings-key")
            .unwrap()
            .contains("Les identifiants ne peuvent pas être enregistrés ici")
    );
    // The fields are disabled; a form sent anyway is refused whole.
    let refused = save(
        &admin,
        "stripe",
        &[
            ("cred_secret_key", Some("sk_test_typed_without_a_key_00")),
            ("position", Some("1")),
        ],
    )
    .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text_of("stripe-error")
            .unwrap()
            .contains("aucune clé de chiffrement n'est définie (OBOLE_SETTINGS_KEY)")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM gateway_settings").await, 0);
    let saved = save(&admin, "stripe", &[("is_default", Some("1"))]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let member = app.logged_in(MEMBER).await;
    assert_eq!(pay_choices(&member).await.1.as_deref(), Some("stripe"));
}
