/// The life of a payment attempt:
/// `created -> pending -> paid | failed | cancelled | expired`, then
/// `paid -> refunded | partially_refunded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Created,
    Pending,
    Paid,
    Failed,
    Cancelled,
    Expired,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    pub fn parse(value: &str) -> Option<PaymentStatus> {
        Some(match value {
            "created" => PaymentStatus::Created,
            "pending" => PaymentStatus::Pending,
            "paid" => PaymentStatus::Paid,
            "failed" => PaymentStatus::Failed,
            "cancelled" => PaymentStatus::Cancelled,
            "expired" => PaymentStatus::Expired,
            "refunded" => PaymentStatus::Refunded,
            "partially_refunded" => PaymentStatus::PartiallyRefunded,
            _ => return None,
        })
    }

    /// The states a payment may leave to reach `self`: the guard of every transition.
    pub fn allowed_sources(self) -> &'static [PaymentStatus] {
        use PaymentStatus::*;
        match self {
            Created => &[],
            Pending => &[Created],
            Paid | Failed | Cancelled | Expired => &[Created, Pending],
            Refunded => &[Paid, PartiallyRefunded],
            PartiallyRefunded => &[Paid, PartiallyRefunded],
        }
    }

    /// Still waiting for the gateway's word.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Created | PaymentStatus::Pending)
    }

    /// The status as the reader's language names it (French by default).
    pub fn label_fr(self) -> &'static str {
        crate::i18n::current().t(match self {
            PaymentStatus::Created => "status.created",
            PaymentStatus::Pending => "status.pending",
            PaymentStatus::Paid => "status.paid",
            PaymentStatus::Failed => "status.failed",
            PaymentStatus::Cancelled => "status.cancelled",
            PaymentStatus::Expired => "status.expired",
            PaymentStatus::Refunded => "status.refunded",
            PaymentStatus::PartiallyRefunded => "status.partially_refunded",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for s in [
            Created,
            Pending,
            Paid,
            Failed,
            Cancelled,
            Expired,
            Refunded,
            PartiallyRefunded,
        ] {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("bogus"), None);
    }

    #[test]
    fn closed_payments_cannot_become_paid() {
        for closed in [Failed, Cancelled, Expired, Refunded] {
            assert!(!Paid.allowed_sources().contains(&closed));
        }
        assert!(Paid.allowed_sources().contains(&Pending));
        assert!(!Refunded.allowed_sources().contains(&Pending));
    }
}
