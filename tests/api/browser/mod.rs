//! The pages in headless Chromium, driven through Debian's chromedriver: journeys, the phone
//! layout, and an accessibility audit of every page with axe-core (from the npm registry,
//! installed in `tests/browser/node_modules` by `npm ci --prefix tests/browser`).
//! Runs when chromedriver is installed (always in CI, where its absence is a failure, as is a
//! missing axe-core). Each test saves screenshots in `target/screenshots/`.

mod accessibility;
mod amount_hint;
mod gateways;
mod journey;
mod manager;
mod menu;
mod password_reset;
mod payment_request;
mod people_english;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/node_modules/axe-core/axe.min.js"
);

/// A phone's viewport width (the 360 px) and a desktop's.
pub const PHONE: (u32, u32) = (360, 780);
pub const DESKTOP: (u32, u32) = (1200, 900);

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver, in a process group of its own with the Chromium it starts: a test that fails
/// before closing its session leaves no browser behind.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) only sends a signal, to the group this driver leads.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One Chromium session; closes itself (and its driver and profile) when dropped.
pub struct Chrome {
    pub c: Client,
    pub base: String,
    shots: PathBuf,
    axe: Option<String>,
    profile: PathBuf,
    driver: Option<Driver>,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // The browser goes first, so that it writes nothing more in its profile.
        drop(self.driver.take());
        std::fs::remove_dir_all(&self.profile).ok();
    }
}

impl Chrome {
    /// Starts Chromium at this window size against the app at `base`; `None` (the test is
    /// skipped) when chromedriver is not installed, except in CI.
    pub async fn start(base: &str, size: (u32, u32)) -> Option<Chrome> {
        Chrome::start_with(base, size, true).await
    }

    /// The same, with JavaScript turned off in the pages (scripts run by the test still work).
    pub async fn start_without_javascript(base: &str, size: (u32, u32)) -> Option<Chrome> {
        Chrome::start_with(base, size, false).await
    }

    async fn start_with(
        base: &str,
        (width, height): (u32, u32),
        javascript: bool,
    ) -> Option<Chrome> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            assert!(
                !in_ci(),
                "chromedriver must be installed in CI (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipping a browser test: {CHROMEDRIVER} is not installed");
            return None;
        }
        let axe = std::fs::read_to_string(AXE).ok();
        assert!(
            axe.is_some() || !in_ci(),
            "axe-core must be installed in CI (npm ci --prefix tests/browser)"
        );
        let port = free_port();
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let profile = std::env::temp_dir().join(format!("obole-chromium-{}", uuid::Uuid::new_v4()));
        let mut caps = serde_json::Map::new();
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars",
                format!("--window-size={},{height}", width.max(500)),
                format!("--user-data-dir={}", profile.display())
            ]
        });
        if width < 500 {
            // A window cannot be narrower than 500 px: a phone is emulated instead.
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true }
            });
        }
        if !javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        caps.insert("goog:chromeOptions".into(), options);
        let mut client = None;
        for _ in 0..100 {
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
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).ok();
        Some(Chrome {
            c: client.expect("a Chromium session"),
            base: base.to_string(),
            shots,
            axe,
            profile,
            driver: Some(driver),
        })
    }

    /// Ends the browser session (Chromium exits with it).
    pub async fn close(self) {
        self.c.clone().close().await.ok();
    }

    pub async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("could not open {path}: {e}"));
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.c.find(Locator::Id(id)).await.expect(id);
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        let el = self
            .c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        el.text().await.unwrap()
    }

    pub async fn login(&self, (email, password): (&str, &str)) {
        self.goto("/login").await;
        self.fill("email", email).await;
        self.fill("password", password).await;
        self.click("button.primary").await;
        self.c
            .wait()
            .for_element(Locator::Css("header form[action='/logout']"))
            .await
            .expect("logged in");
    }

    pub async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).ok();
    }

    /// Waits until the element's text is `want` (pages that refresh themselves).
    pub async fn wait_text(&self, css: &str, want: &str) {
        let mut seen = String::new();
        for _ in 0..150 {
            if let Ok(el) = self.c.find(Locator::Css(css)).await {
                seen = el.text().await.unwrap_or_default();
                if seen == want {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} should read {want:?}, it reads {seen:?}");
    }

    /// Waits until the browser shows this path (after a click that leads elsewhere).
    pub async fn wait_path(&self, want: &str) {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(url) = self.c.current_url().await {
                seen = url.path().to_string();
                if seen == want {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser should be on {want}, it is on {seen}");
    }

    pub async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.expect("a script runs")
    }

    /// The page fits the window's width: nothing sticks out on the right, unless it is inside a
    /// box that scrolls sideways on purpose (phones).
    pub async fn assert_fits_width(&self, page: &str) {
        let outside = self
            .js("const w = document.documentElement.clientWidth;
                 const out = [];
                 for (const el of document.body.querySelectorAll('*')) {
                   const r = el.getBoundingClientRect();
                   if (r.width === 0 || r.right <= w + 1) continue;
                   let p = el.parentElement, scrolls = false;
                   while (p && p !== document.body) {
                     const o = getComputedStyle(p).overflowX;
                     if (o === 'auto' || o === 'scroll') { scrolls = true; break; }
                     p = p.parentElement;
                   }
                   if (!scrolls) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                     + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '')
                     + ' ends at ' + Math.round(r.right) + 'px');
                 }
                 if (document.documentElement.scrollWidth > w) out.push('the page scrolls sideways');
                 return [w, out.slice(0, 8)];")
            .await;
        assert!(
            outside[1].as_array().is_some_and(|a| a.is_empty()),
            "{page}: sticks out of a {}px window: {}",
            outside[0],
            outside[1]
        );
    }

    /// Runs axe-core on the page and fails on any serious or critical violation. Also checks
    /// what axe leaves to people: one h1 per page.
    pub async fn audit(&self, page: &str) {
        let h1 = self
            .js("return document.querySelectorAll('h1').length;")
            .await;
        assert_eq!(h1.as_i64(), Some(1), "{page}: one h1 per page");
        let Some(axe) = &self.axe else {
            eprintln!(
                "axe-core not installed (npm ci --prefix tests/browser): audit of {page} skipped"
            );
            return;
        };
        self.c
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .expect("axe-core loads");
        let result = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({
                       id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' ' + (n.failureSummary || ''))
                   }))))
                   .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        let serious: Vec<&Value> = result
            .as_array()
            .expect("a list of violations")
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{page}: accessibility violations:\n{}",
            serde_json::to_string_pretty(&serious).unwrap()
        );
    }
}
