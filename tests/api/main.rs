//! Black-box tests: the real application over HTTP, a fresh database per test.

mod admin;
mod back_office;
mod basket;
mod browser;
mod contract;
mod helloasso;
mod helpers;
mod hostile;
mod isolation;
mod login;
mod mail;
mod mollie;
mod notifications;
mod pay;
mod paypal;
mod payplug;
mod payzen;
mod properties;
mod scale_out;
mod stancer;
mod stripe;
mod sweep;
mod writer;
