//! The portal's frame: the association's optional logo (checked at start, served at `/logo`
//! with its type, shown beside the name, on the login page and on the receipt; absent when not
//! configured), and the stylesheet and script every page loads.

use obole::config::Settings;
use obole::startup::Application;

use crate::helpers::{Browser, MEMBER, TestApp, spawn_app, spawn_app_with};

/// A real 1×1 PNG.
pub const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90\x77\x53\xde\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x90\x8f\xdf\x0f\x00\x01\xde\x01\x3e\x8a\xa5\x8a\x61\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// A small SVG, with a script that must never run.
pub const SVG: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <circle cx="32" cy="32" r="30" fill="#1f5fbf"/>
  <path d="M20 34 l8 8 l16 -18" stroke="#fff" stroke-width="6" fill="none"/>
  <script>document.title = "pwned"</script>
</svg>
"##;

/// Writes `bytes` to a new file named `name` in a folder of this test's own.
pub fn logo_file(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("obole_logo_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

pub async fn app_with_logo(name: &str, bytes: &[u8]) -> TestApp {
    let path = logo_file(name, bytes);
    spawn_app_with(|s| s.logo = Some(path)).await
}

/// The `<img>` elements of a page that show the logo, as (class, alt).
fn logo_images(body: &str) -> Vec<(String, String)> {
    let html = scraper::Html::parse_document(body);
    let selector = scraper::Selector::parse("img[src='/logo']").unwrap();
    html.select(&selector)
        .map(|img| {
            let attr = |name| img.value().attr(name).unwrap_or_default().to_string();
            (attr("class"), attr("alt"))
        })
        .collect()
}

async fn paid_payment(app: &TestApp, member: &Browser) -> String {
    let (id, _) = member.start_payment(app, "20,00").await;
    let reference = app.gateway_ref(&id).await;
    let event = app.sandbox_event(&id, &reference, "succeeded", 2000);
    let signature = app.sign(&event);
    assert_eq!(app.post_notification(event, Some(signature)).await, 200);
    app.wait_for_status(&id, "paid").await;
    id
}

#[tokio::test]
async fn a_configured_logo_is_served_with_its_type_and_shown_beside_the_name() {
    let app = app_with_logo("logo.png", PNG).await;
    let name = app.settings.association_name.clone();

    let response = reqwest::get(format!("{}/logo", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |h: &str| {
        response
            .headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(
        header("cache-control").contains("max-age="),
        "{}",
        header("cache-control")
    );
    let etag = header("etag");
    assert!(etag.starts_with('"'), "{etag}");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    // A browser that has it already is told so.
    let again = reqwest::Client::new()
        .get(format!("{}/logo", app.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The login page: small in the header (the name is written beside it), large above the form.
    let browser = app.browser();
    let login = browser.get("/login").await;
    assert_eq!(
        logo_images(&login.body),
        vec![
            ("logo".to_string(), String::new()),
            ("logo-large".to_string(), name.clone())
        ]
    );
    assert!(login.body.contains(&format!("<span>{name}</span></a>")));

    // Every page's header, and the receipt of a paid payment.
    let member = app.logged_in(MEMBER).await;
    let basket = member.get("/basket").await;
    assert_eq!(
        logo_images(&basket.body),
        vec![("logo".to_string(), String::new())]
    );
    let payment = paid_payment(&app, &member).await;
    let receipt = member.get(&format!("/payments/{payment}")).await;
    let html = scraper::Html::parse_document(&receipt.body);
    let selector = scraper::Selector::parse("#receipt img[src='/logo']").unwrap();
    let in_receipt = html
        .select(&selector)
        .next()
        .expect("the logo on the receipt");
    assert_eq!(in_receipt.value().attr("alt"), Some(name.as_str()));
}

#[tokio::test]
async fn an_svg_logo_is_served_so_that_it_can_run_nothing() {
    let app = app_with_logo("logo.svg", SVG.as_bytes()).await;
    let response = reqwest::get(format!("{}/logo", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("sandbox"), "{policy}");
    assert!(!policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(response.text().await.unwrap(), SVG);
}

#[tokio::test]
async fn without_a_logo_no_page_shows_one_and_the_address_is_not_found() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/logo", app.address)).await.unwrap();
    assert_eq!(response.status(), 404);
    let login = app.browser().get("/login").await;
    assert!(logo_images(&login.body).is_empty(), "{}", login.body);
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert!(logo_images(&basket.body).is_empty());
    assert!(!basket.body.contains("src=\"/logo\""));
}

/// What the application says when it refuses to start with this logo.
async fn start_refused_with(logo: String) -> String {
    let database =
        std::env::temp_dir().join(format!("obole_logo_{}.db", uuid::Uuid::new_v4().simple()));
    let settings = Settings {
        port: 0,
        database_url: format!("sqlite://{}?mode=rwc", database.display()),
        logo: Some(logo),
        ..Settings::default()
    };
    match Application::build(settings).await {
        Ok(_) => panic!("the application started with a bad logo"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test]
async fn a_logo_too_large_not_an_image_or_missing_stops_the_start_with_a_clear_message() {
    let mut large = PNG.to_vec();
    large.resize(512 * 1024 + 1, 0);
    let message = start_refused_with(logo_file("logo.png", &large)).await;
    assert!(message.contains("OBOLE_LOGO"), "{message}");
    assert!(message.contains("at most 512 KiB"), "{message}");

    let page = b"<!doctype html><html><body>Hello</body></html>";
    let message = start_refused_with(logo_file("logo.png", page)).await;
    assert!(
        message.contains("named as a PNG image, but its content is not one"),
        "{message}"
    );
    let message = start_refused_with(logo_file("logo.svg", PNG)).await;
    assert!(message.contains("SVG"), "{message}");

    let message = start_refused_with(logo_file("logo.gif", b"GIF89a")).await;
    assert!(
        message.contains("must be a .png, .svg, .jpg, .jpeg or .webp file"),
        "{message}"
    );

    let missing = std::env::temp_dir().join("obole-no-such-folder/logo.png");
    let message = start_refused_with(missing.display().to_string()).await;
    assert!(message.contains("cannot be read"), "{message}");
}

#[tokio::test]
async fn the_basket_loads_the_script_deferred_other_pages_none_and_both_files_are_cached() {
    let app = spawn_app().await;
    let scripts = |body: &str| {
        let html = scraper::Html::parse_document(body);
        let script = scraper::Selector::parse("script").unwrap();
        html.select(&script)
            .map(|s| {
                let inline = s.text().collect::<String>();
                assert!(inline.trim().is_empty(), "an inline script: {inline}");
                (
                    s.value().attr("src").unwrap_or_default().to_string(),
                    s.value().attr("defer").is_some(),
                )
            })
            .collect::<Vec<_>>()
    };
    let login = app.browser().get("/login").await;
    assert!(
        scripts(&login.body).is_empty(),
        "the login page needs no script"
    );
    let basket = app.logged_in(MEMBER).await.get("/basket").await;
    assert_eq!(
        scripts(&basket.body),
        vec![("/static/obole.js".to_string(), true)]
    );

    for (path, kind) in [
        ("/static/obole.js", "text/javascript"),
        ("/static/obole.css", "text/css"),
    ] {
        let response = reqwest::get(format!("{}{path}", app.address))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age="),
            "{path}"
        );
    }
}

/// The moments a manager reads (a payment's creation, the latest payments, the history) are
/// written as people write them, to the minute and marked UTC, never as stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_read_moments_as_dates_and_times_not_as_stored() {
    let app = spawn_app().await;
    let member = app.logged_in(MEMBER).await;
    let (id, _) = member.start_payment(&app, "12").await;
    let stored: String = sqlx::query_scalar("SELECT created_at FROM payments WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (date, time) = (&stored[..10], &stored[11..16]);
    let french = format!("{}/{}/{} {time} UTC", &date[8..10], &date[5..7], &date[..4]);
    let manager = app.logged_in(crate::helpers::MANAGER).await;
    for path in ["/admin", &format!("/admin/payments/{id}")] {
        let page = manager.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(&stored), "{path} shows {stored}");
        assert!(page.body.contains(&french), "{path} lacks {french}");
    }
}
