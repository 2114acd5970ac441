/// What a basket charge is for; each category has its own income account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeCategory {
    Dues,
    Insurance,
    Outings,
    Shirts,
    Other,
}

impl ChargeCategory {
    pub const ALL: [ChargeCategory; 5] = [
        ChargeCategory::Dues,
        ChargeCategory::Insurance,
        ChargeCategory::Outings,
        ChargeCategory::Shirts,
        ChargeCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChargeCategory::Dues => "dues",
            ChargeCategory::Insurance => "insurance",
            ChargeCategory::Outings => "outings",
            ChargeCategory::Shirts => "shirts",
            ChargeCategory::Other => "other",
        }
    }

    /// Unknown values read back from storage are shown as "other" rather than lost.
    pub fn parse(value: &str) -> ChargeCategory {
        match value {
            "dues" => ChargeCategory::Dues,
            "insurance" => ChargeCategory::Insurance,
            "outings" => ChargeCategory::Outings,
            "shirts" => ChargeCategory::Shirts,
            _ => ChargeCategory::Other,
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            ChargeCategory::Dues => "Cotisation",
            ChargeCategory::Insurance => "Assurance",
            ChargeCategory::Outings => "Sorties",
            ChargeCategory::Shirts => "Tee-shirts",
            ChargeCategory::Other => "Autres",
        }
    }
}
