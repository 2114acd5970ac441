//! Pages of a member: their basket, paying, and the outcome of a payment.

pub mod basket;
pub mod payment;
pub mod request;
pub mod saved_card;
