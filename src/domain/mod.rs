//! Pure types of the domain: parsed at the boundary, no I/O.

mod account;
mod category;
mod email;
mod money;
mod payment_status;
mod person;
mod role;

pub use account::{AccountError, AccountNumber, parse_account_prefix};
pub use category::ChargeCategory;
pub use email::{Email, EmailError};
pub use money::{AmountError, Money};
pub use payment_status::PaymentStatus;
pub use person::{
    PersonError, fold, name_key, parse_address, parse_first_name, parse_last_name, parse_phone,
};
pub use role::Role;

/// `YYYY-MM-DD…` as the reader writes it: `DD/MM/YYYY` in French (the default), `2 Nov 2026`
/// in English.
pub fn local_date(iso: &str) -> String {
    crate::i18n::current().date(iso)
}
