//! The manager's menu: folded behind a "Menu" button on a phone (opened with the keyboard as
//! well as by touch), laid out open on a desktop; the current page is marked. The logo shows
//! beside the association's name.

use fantoccini::Locator;
use fantoccini::key::Key;

use super::{Chrome, DESKTOP, PHONE};
use crate::helpers::MANAGER;
use crate::look::{SVG, app_with_logo};

/// How many of the menu's links can be seen.
async fn visible_links(b: &Chrome) -> i64 {
    b.js("return [...document.querySelectorAll('#menu li a')].filter(a => a.checkVisibility()).length;")
        .await
        .as_i64()
        .unwrap()
}

async fn current_links(b: &Chrome) -> Vec<String> {
    let marked = b
        .js(
            "return [...document.querySelectorAll('nav a[aria-current]')]
                 .map(a => a.getAttribute('href') + ' ' + a.getAttribute('aria-current'));",
        )
        .await;
    marked
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_managers_menu_is_folded_and_opens_from_the_keyboard() {
    let app = app_with_logo("logo.svg", SVG.as_bytes()).await;
    let Some(b) = Chrome::start(&app.address, PHONE).await else {
        return;
    };
    b.login(MANAGER).await;
    b.goto("/admin/members").await;

    // Folded: the header keeps to a quarter of the screen, and no link of the menu shows.
    let menu = b.c.find(Locator::Id("menu-toggle")).await.unwrap();
    assert_eq!(menu.attr("open").await.unwrap(), None);
    assert_eq!(visible_links(&b).await, 0);
    let header = b
        .js("return document.querySelector('header.site').getBoundingClientRect().height;")
        .await
        .as_f64()
        .unwrap();
    assert!(
        header <= f64::from(PHONE.1) / 4.0,
        "the header is {header}px high"
    );
    // The logo loaded (the page's security policy lets it in), and its script did not run.
    let logo = b
        .js("const img = document.querySelector('header .brand img');
             return [img.complete && img.naturalWidth > 0, img.getAttribute('alt'), document.title];")
        .await;
    assert_eq!(logo[0], true, "{logo}");
    assert_eq!(logo[1], "", "{logo}");
    assert!(!logo[2].as_str().unwrap().contains("pwned"), "{logo}");
    b.audit("folded menu").await;
    b.assert_fits_width("folded menu").await;
    b.shot("menu-phone-folded").await;

    // Opened from the keyboard: Enter on the summary, then Tab reaches the first link.
    let summary =
        b.c.find(Locator::Css("#menu-toggle > summary"))
            .await
            .unwrap();
    summary.send_keys(&Key::Enter.to_string()).await.unwrap();
    assert!(menu.attr("open").await.unwrap().is_some());
    assert_eq!(visible_links(&b).await, 10);
    summary.send_keys(&Key::Tab.to_string()).await.unwrap();
    let focused = b
        .js("return document.activeElement.getAttribute('href');")
        .await;
    assert_eq!(focused, "/admin");
    // The page shown is marked, and only it.
    assert_eq!(current_links(&b).await, vec!["/admin/members page"]);
    b.audit("open menu").await;
    b.assert_fits_width("open menu").await;
    b.shot("menu-phone-open").await;

    // A link of the menu leads to its page, where the menu is folded again and marks it.
    b.click("#menu a[href='/admin/payments']").await;
    b.wait_path("/admin/payments").await;
    assert_eq!(visible_links(&b).await, 0);
    assert_eq!(current_links(&b).await, vec!["/admin/payments page"]);
    // Inside a section (a member's page), its link says so without claiming to be the page.
    let member = app.member_id(crate::helpers::MEMBER.0).await;
    b.goto(&format!("/admin/members/{member}")).await;
    assert_eq!(current_links(&b).await, vec!["/admin/members true"]);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_desktop_the_managers_menu_is_laid_out_open_in_one_row() {
    let app = app_with_logo("logo.svg", SVG.as_bytes()).await;
    let Some(b) = Chrome::start(&app.address, DESKTOP).await else {
        return;
    };
    b.login(MANAGER).await;
    b.goto("/admin").await;
    assert_eq!(visible_links(&b).await, 10);
    let summary_shown = b
        .js("return document.querySelector('#menu-toggle > summary').checkVisibility();")
        .await;
    assert_eq!(summary_shown, false);
    // One row: every link at the same height.
    let rows = b
        .js("return new Set([...document.querySelectorAll('#menu li a')]
                 .map(a => Math.round(a.getBoundingClientRect().top))).size;")
        .await;
    assert_eq!(rows, 1, "the menu's links stand on {rows} rows");
    assert_eq!(current_links(&b).await, vec!["/admin page"]);
    b.audit("desktop menu").await;
    b.shot("menu-desktop").await;
    b.click("#menu a[href='/admin/ledger']").await;
    b.wait_path("/admin/ledger").await;
    assert_eq!(current_links(&b).await, vec!["/admin/ledger page"]);
    b.close().await;
}
