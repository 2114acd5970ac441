//! Emulator of PayPal (placeholder until the emulator lands).

use actix_web::web;

use crate::config::Settings;

pub struct Emulator;

impl Emulator {
    pub fn new(_settings: &Settings, _public_base: &str, _http: reqwest::Client) -> Self {
        Emulator
    }
}

pub fn routes(_cfg: &mut web::ServiceConfig) {}
