//! Property tests of every gateway's notification verifier, against the real emulators:
//! arbitrary bytes and headers never panic and never yield a report, and a genuine
//! notification tampered with yields either nothing or the gateway's own truth, never a
//! report the gateway did not give. A few hundred cases each by default; `PROPTEST_CASES`
//! raises it for a long run.

use obole::gateways::{Gateway, GatewayReport, IncomingNotification, Registry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use crate::contract::helloasso::HelloAssoDriver;
use crate::contract::mollie::MollieDriver;
use crate::contract::paypal::PayPalDriver;
use crate::contract::payplug::PayPlugDriver;
use crate::contract::payzen::PayZenDriver;
use crate::contract::sandbox::SandboxDriver;
use crate::contract::stancer::StancerDriver;
use crate::contract::stripe::StripeDriver;
use crate::contract::{self, GatewayDriver, Notification};
use crate::helpers::{MEMBER, TestApp, spawn_app_with};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Header names the verifiers read, and others.
const HEADER_NAMES: &[&str] = &[
    "Content-Type",
    "X-Sandbox-Signature",
    "Stripe-Signature",
    "X-Ha-Signature",
    "PayPal-Transmission-Id",
    "PayPal-Transmission-Time",
    "PayPal-Transmission-Sig",
    "PayPal-Cert-Url",
    "PayPal-Auth-Algo",
    "X-Mollie-Signature",
    "User-Agent",
];

fn arbitrary_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![
        ".{0,80}",
        "sha256=[0-9a-f]{0,64}",
        "t=[0-9]{1,10},v1=[0-9a-f]{64}",
        Just("application/json".to_string()),
        Just("application/x-www-form-urlencoded".to_string()),
    ];
    proptest::collection::vec((proptest::sample::select(HEADER_NAMES), value), 0..6)
        .prop_map(|v| v.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Bytes that look like what gateways send, and bytes that look like nothing.
fn arbitrary_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        "\\{\"id\":\"(evt|tr|pi|pay|sbx_pay|cs)_[A-Za-z0-9]{0,24}\",\"type\":\"[a-z._]{0,30}\",\"data\":\\{\"id\":\"[a-z0-9_]{0,20}\",\"status\":\"(succeeded|paid|open)\",\"amount\":[0-9]{1,6},\"currency\":\"EUR\",\"reference\":\"[a-f0-9-]{0,36}\",\"livemode\":false\\}\\}"
            .prop_map(String::into_bytes),
        "(id=(tr|pi)_[A-Za-z0-9]{1,20}|kr-hash=[0-9a-f]{64}&kr-answer=\\{[^&]{0,80}\\}&kr-hash-algorithm=sha256_hmac&kr-hash-key=password)"
            .prop_map(String::into_bytes),
        "\\{\"id\":[0-9]{1,8},\"object\":\"(payment|refund|installment_plan)\",\"is_paid\":true\\}"
            .prop_map(String::into_bytes),
    ]
}

fn same_facts(a: &GatewayReport, b: &GatewayReport) -> bool {
    a.gateway_ref == b.gateway_ref
        && a.reference == b.reference
        && a.status == b.status
        && a.amount == b.amount
        && a.currency == b.currency
        && a.live == b.live
        && a.captures == b.captures
        && a.refunds == b.refunds
}

/// A genuine notification tampered with: some bytes changed, or its headers dropped.
#[derive(Debug, Clone)]
struct Tampering {
    changes: Vec<(proptest::sample::Index, u8)>,
    truncate: Option<proptest::sample::Index>,
    drop_headers: bool,
}

fn tampering() -> impl Strategy<Value = Tampering> {
    (
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..4),
        proptest::option::weighted(0.2, any::<proptest::sample::Index>()),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(changes, truncate, drop_headers)| Tampering {
            changes,
            truncate,
            drop_headers,
        })
}

impl Tampering {
    fn apply(&self, genuine: &Notification) -> Notification {
        let (headers, body) = genuine;
        let mut body = body.clone();
        for (at, byte) in &self.changes {
            if !body.is_empty() {
                let i = at.index(body.len());
                body[i] = *byte;
            }
        }
        if let Some(at) = &self.truncate {
            body.truncate(at.index(body.len() + 1));
        }
        let headers = if self.drop_headers {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .cloned()
                .collect()
        } else {
            headers.clone()
        };
        (headers, body)
    }
}

/// Signed by the gateway itself: any change to the bytes is a forgery.
fn signed(gateway: &str) -> bool {
    matches!(gateway, "sandbox" | "stripe")
}

async fn verify(gateway: &dyn Gateway, notification: &Notification) -> VerifyOutcome {
    let incoming = IncomingNotification {
        headers: &notification.0,
        body: &notification.1,
    };
    match gateway.verify_notification(&incoming).await {
        Ok(Some(report)) => VerifyOutcome::Report(Box::new(report)),
        Ok(None) => VerifyOutcome::Nothing,
        Err(_) => VerifyOutcome::Refused,
    }
}

enum VerifyOutcome {
    Report(Box<GatewayReport>),
    Nothing,
    Refused,
}

/// One paid payment per gateway and its genuine notification, on one application.
async fn genuine_notifications(app: &TestApp) -> Vec<(&'static str, Notification)> {
    let browser = app.logged_in(MEMBER).await;
    let mut out = Vec::new();
    macro_rules! paid {
        ($driver:expr) => {{
            let driver = $driver;
            let (id, _) = contract::start(app, &driver, &browser, "12").await;
            let gateway_ref = app.gateway_ref(&id).await;
            contract::control(
                app,
                &driver,
                &gateway_ref,
                json!({"status": "paid", "notify": false}),
            )
            .await;
            out.push((
                driver.id(),
                driver.genuine_notification(app, &id, &gateway_ref).await,
            ));
        }};
    }
    paid!(SandboxDriver);
    paid!(StripeDriver);
    paid!(PayZenDriver);
    paid!(HelloAssoDriver);
    paid!(MollieDriver);
    paid!(PayPlugDriver);
    paid!(PayPalDriver);
    paid!(StancerDriver);
    out
}

async fn all_gateways_app() -> TestApp {
    spawn_app_with(|s| {
        s.reconcile.interval_secs = 0;
        HelloAssoDriver.configure(s);
        StripeDriver.configure(s);
        MollieDriver.configure(s);
        PayPlugDriver.configure(s);
        PayPalDriver.configure(s);
        PayZenDriver.configure(s);
        StancerDriver.configure(s);
    })
    .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn arbitrary_notifications_never_yield_a_report_at_any_gateway() {
    let rt = runtime();
    let (app, registry) = rt.block_on(async {
        let app = all_gateways_app().await;
        // Real payments exist, so a verifier that trusted a body could find one.
        genuine_notifications(&app).await;
        let registry = Registry::from_settings(&app.settings, &app.address, reqwest::Client::new())
            .expect("registry");
        (app, registry)
    });
    for gateway in registry.all() {
        let mut runner = TestRunner::new(config(96));
        let result = runner.run(
            &(arbitrary_headers(), arbitrary_body()),
            |(headers, body)| {
                let outcome = rt.block_on(verify(gateway.as_ref(), &(headers, body)));
                if let VerifyOutcome::Report(report) = outcome {
                    return Err(TestCaseError::fail(format!(
                        "{} made a report of arbitrary bytes: {report:?}",
                        gateway.id()
                    )));
                }
                Ok(())
            },
        );
        if let Err(failure) = result {
            panic!("{}: {failure}", gateway.id());
        }
    }
    drop(app);
}

#[test]
fn tampered_notifications_yield_nothing_but_the_gateways_truth() {
    let rt = runtime();
    let (app, registry, genuine) = rt.block_on(async {
        let app = all_gateways_app().await;
        let genuine = genuine_notifications(&app).await;
        let registry = Registry::from_settings(&app.settings, &app.address, reqwest::Client::new())
            .expect("registry");
        (app, registry, genuine)
    });
    for (id, notification) in &genuine {
        let gateway = registry.get(id).expect("gateway enabled").clone();
        // The untouched notification is proof, and gives the truth to compare with.
        let VerifyOutcome::Report(truth) = rt.block_on(verify(gateway.as_ref(), notification))
        else {
            panic!("{id}: the genuine notification was not accepted");
        };
        let mut runner = TestRunner::new(config(64));
        let result = runner.run(&tampering(), |tampering| {
            let tampered = tampering.apply(notification);
            match rt.block_on(verify(gateway.as_ref(), &tampered)) {
                VerifyOutcome::Report(report) => {
                    prop_assert!(
                        same_facts(&report, &truth),
                        "{id}: a tampered notification gave {report:?}, the gateway says {truth:?}"
                    );
                    let forged =
                        signed(id) && (tampering.drop_headers || tampered.1 != notification.1);
                    prop_assert!(
                        !forged,
                        "{id}: a signed notification was accepted with other bytes or no signature"
                    );
                }
                VerifyOutcome::Nothing | VerifyOutcome::Refused => {}
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{id}: {failure}");
        }
    }
    drop(app);
}
