//! Black-box tests: the real application over HTTP, a fresh database per test.

mod admin;
mod basket;
mod browser;
mod contract;
mod helpers;
mod isolation;
mod login;
mod notifications;
mod pay;
mod stripe;
