//! Pure types of the domain: parsed at the boundary, no I/O.

mod category;
mod email;
mod money;
mod payment_status;
mod person;
mod role;

pub use category::ChargeCategory;
pub use email::{Email, EmailError};
pub use money::{AmountError, Money};
pub use payment_status::PaymentStatus;
pub use person::{
    PersonError, fold, name_key, parse_address, parse_first_name, parse_last_name, parse_phone,
};
pub use role::Role;

/// `YYYY-MM-DD…` as French readers write it: `DD/MM/YYYY`.
pub fn french_date(iso: &str) -> String {
    match (iso.get(0..4), iso.get(5..7), iso.get(8..10)) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}
