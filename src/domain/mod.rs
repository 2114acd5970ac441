//! Pure types of the domain: parsed at the boundary, no I/O.

mod category;
mod email;
mod money;
mod payment_status;
mod role;

pub use category::ChargeCategory;
pub use email::{Email, EmailError};
pub use money::{AmountError, Money};
pub use payment_status::PaymentStatus;
pub use role::Role;
