//! Emulators of payment gateways, served by the same binary for the demo and the tests.
//! Each speaks its gateway's wire format and rejects what the gateway rejects; all share
//! the hosted page's four buttons and a test-control endpoint (see `common`).

pub mod common;
mod obole_sandbox;

use actix_web::web;

pub use obole_sandbox::sign;

use crate::config::Settings;

/// The emulators' states, shared by every worker.
#[derive(Clone)]
pub struct Emulators {
    sandbox: web::Data<obole_sandbox::Emulator>,
}

impl Emulators {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Emulators {
        Emulators {
            sandbox: web::Data::new(obole_sandbox::Emulator::new(
                &settings.sandbox,
                public_base,
                http.clone(),
            )),
        }
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.sandbox.clone())
            .configure(obole_sandbox::routes);
    }
}
