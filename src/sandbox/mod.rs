//! Emulators of payment gateways, served by the same binary for the demo and the tests.
//! Each speaks its gateway's wire format and rejects what the gateway rejects; all share
//! the hosted page's four buttons and a test-control endpoint (see `common`).

pub mod common;
mod helloasso;
mod mollie;
mod obole_sandbox;
mod paypal;
mod payplug;
mod payzen;
mod stancer;
mod stripe;

use actix_web::web;

pub use obole_sandbox::sign;

use crate::config::Settings;

/// The emulators' states, shared by every worker.
#[derive(Clone)]
pub struct Emulators {
    sandbox: web::Data<obole_sandbox::Emulator>,
    helloasso: web::Data<helloasso::Emulator>,
    stripe: web::Data<stripe::Emulator>,
    mollie: web::Data<mollie::Emulator>,
    payplug: web::Data<payplug::Emulator>,
    paypal: web::Data<paypal::Emulator>,
    payzen: web::Data<payzen::Emulator>,
    stancer: web::Data<stancer::Emulator>,
}

impl Emulators {
    pub fn new(settings: &Settings, public_base: &str, http: reqwest::Client) -> Emulators {
        Emulators {
            sandbox: web::Data::new(obole_sandbox::Emulator::new(
                &settings.sandbox,
                public_base,
                http.clone(),
            )),
            helloasso: web::Data::new(helloasso::Emulator::new(
                settings,
                public_base,
                http.clone(),
            )),
            stripe: web::Data::new(stripe::Emulator::new(settings, public_base, http.clone())),
            mollie: web::Data::new(mollie::Emulator::new(settings, public_base, http.clone())),
            payplug: web::Data::new(payplug::Emulator::new(settings, public_base, http.clone())),
            paypal: web::Data::new(paypal::Emulator::new(settings, public_base, http.clone())),
            payzen: web::Data::new(payzen::Emulator::new(settings, public_base, http.clone())),
            stancer: web::Data::new(stancer::Emulator::new(settings, public_base, http)),
        }
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.sandbox.clone())
            .configure(obole_sandbox::routes)
            .app_data(self.helloasso.clone())
            .configure(helloasso::routes)
            .app_data(self.stripe.clone())
            .configure(stripe::routes)
            .app_data(self.mollie.clone())
            .configure(mollie::routes)
            .app_data(self.payplug.clone())
            .configure(payplug::routes)
            .app_data(self.paypal.clone())
            .configure(paypal::routes)
            .app_data(self.payzen.clone())
            .configure(payzen::routes)
            .app_data(self.stancer.clone())
            .configure(stancer::routes);
    }
}
