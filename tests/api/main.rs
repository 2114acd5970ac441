//! Black-box tests: the real application over HTTP, a fresh database per test.

mod admin;
mod back_office;
mod basket;
mod books;
mod browser;
mod contract;
mod helloasso;
mod helpers;
mod hostile;
mod isolation;
mod language;
mod login;
mod mail;
mod members;
mod mollie;
mod notifications;
mod password;
mod pay;
mod paypal;
mod payplug;
mod payzen;
mod saved_cards;
mod stancer;
mod stripe;
mod sweep;
mod writer;
