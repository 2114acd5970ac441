//! Money as integer cents, parsed from and printed for people the French way.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// An amount in cents of the association's currency (EUR). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn abs(self) -> Money {
        Money(self.0.saturating_abs())
    }

    /// Parses what a person typed in an amount field: "12,50", "12.50", "12", "1 250,00 €".
    pub fn parse_input(input: &str) -> Result<Money, AmountError> {
        let cleaned: String = input
            .trim()
            .trim_end_matches('€')
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
            .collect();
        if cleaned.is_empty() {
            return Err(AmountError::Empty);
        }
        let (negative, digits) = match cleaned.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
        };
        let separators = digits.chars().filter(|c| matches!(c, '.' | ',')).count();
        let well_formed = separators <= 1
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            && digits.chars().any(|c| c.is_ascii_digit())
            && !digits.starts_with(['.', ',']);
        if !well_formed {
            return Err(AmountError::NotANumber);
        }
        let normalized = digits.replace(',', ".");
        let integer_part = normalized.split('.').next().unwrap_or("");
        if integer_part.trim_start_matches('0').len() > 12 {
            return Err(AmountError::TooLarge);
        }
        let value = Decimal::from_str(&normalized).map_err(|_| AmountError::NotANumber)?;
        if value.scale() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        if negative && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        if value.is_zero() {
            return Err(AmountError::Zero);
        }
        // At most two decimals, so the product is a whole number of cents.
        let cents = (value * Decimal::ONE_HUNDRED)
            .to_i64()
            .ok_or(AmountError::TooLarge)?;
        Ok(Money(cents))
    }

    /// The value as a plain decimal string, "12.50", for forms and gateway APIs.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// The value as typed back into a form field: "12,50" in French, "12.50" in English.
    pub fn to_input_string(self) -> String {
        match crate::i18n::current() {
            crate::i18n::Lang::Fr => self.to_decimal_string().replace('.', ","),
            crate::i18n::Lang::En => self.to_decimal_string(),
        }
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

/// Display in the reader's language: "1 234,50 €" in French (the default), "€1,234.50" in
/// English (the page keeps the amount on one line).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let english = crate::i18n::current() == crate::i18n::Lang::En;
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let units = (abs / 100).to_string();
        let separator = if english { ',' } else { ' ' };
        let mut grouped = String::with_capacity(units.len() + units.len() / 3);
        for (i, digit) in units.chars().enumerate() {
            if i > 0 && (units.len() - i).is_multiple_of(3) {
                grouped.push(separator);
            }
            grouped.push(digit);
        }
        if english {
            write!(f, "{sign}€{grouped}.{:02}", abs % 100)
        } else {
            write!(f, "{sign}{grouped},{:02} €", abs % 100)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    NotANumber,
    TooManyDecimals,
    Negative,
    Zero,
    TooLarge,
}

impl std::error::Error for AmountError {}

/// Said in the reader's language (translation keys `amount.*`).
impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::i18n::current().t(match self {
            AmountError::Empty => "amount.empty",
            AmountError::NotANumber => "amount.not_a_number",
            AmountError::TooManyDecimals => "amount.too_many_decimals",
            AmountError::Negative => "amount.negative",
            AmountError::Zero => "amount.zero",
            AmountError::TooLarge => "amount.too_large",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_and_dot_mean_the_same_cents() {
        assert_eq!(Money::parse_input("12,50"), Ok(Money(1250)));
        assert_eq!(Money::parse_input("12.50"), Ok(Money(1250)));
        assert_eq!(Money::parse_input("12,5"), Ok(Money(1250)));
        assert_eq!(Money::parse_input(" 12 "), Ok(Money(1200)));
        assert_eq!(Money::parse_input("1 250,00 €"), Ok(Money(125000)));
        assert_eq!(Money::parse_input("0,01"), Ok(Money(1)));
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        assert_eq!(Money::parse_input(""), Err(AmountError::Empty));
        assert_eq!(Money::parse_input("0"), Err(AmountError::Zero));
        assert_eq!(Money::parse_input("0,00"), Err(AmountError::Zero));
        assert_eq!(Money::parse_input("-5"), Err(AmountError::Negative));
        assert_eq!(
            Money::parse_input("12,345"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(Money::parse_input("douze"), Err(AmountError::NotANumber));
        assert_eq!(Money::parse_input("1.234,56"), Err(AmountError::NotANumber));
        assert_eq!(Money::parse_input("1e3"), Err(AmountError::NotANumber));
        assert_eq!(Money::parse_input(",5"), Err(AmountError::NotANumber));
        assert_eq!(Money::parse_input("NaN"), Err(AmountError::NotANumber));
        assert_eq!(
            Money::parse_input("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn prints_the_french_way() {
        assert_eq!(Money(1250).to_string(), "12,50 €");
        assert_eq!(Money(5).to_string(), "0,05 €");
        assert_eq!(Money(123456789).to_string(), "1 234 567,89 €");
        assert_eq!(Money(-1250).to_string(), "-12,50 €");
        assert_eq!(Money(1250).to_decimal_string(), "12.50");
        assert_eq!(Money(1250).to_input_string(), "12,50");
    }

    mod properties {
        //! Properties of the amount parser over arbitrary input (a few hundred cases; set
        //! `PROPTEST_CASES` for a longer run).
        use proptest::prelude::*;

        use super::super::*;

        /// Largest amount with the 12 integer digits the parser accepts.
        const MAX_CENTS: i64 = 99_999_999_999_999;

        proptest! {
            #[test]
            fn never_panics_and_only_yields_positive_cents(input in ".{0,40}") {
                if let Ok(money) = Money::parse_input(&input) {
                    prop_assert!(money.is_positive());
                }
            }

            #[test]
            fn never_panics_on_number_like_input(input in "[-+ ]?[0-9 ,.\u{a0}\u{202f}€eE]{0,30}") {
                if let Ok(money) = Money::parse_input(&input) {
                    prop_assert!(money.is_positive() && money.cents() <= MAX_CENTS);
                }
            }

            #[test]
            fn what_is_printed_parses_back(cents in 1..=MAX_CENTS) {
                let money = Money::from_cents(cents);
                prop_assert_eq!(Money::parse_input(&money.to_string()), Ok(money));
                prop_assert_eq!(Money::parse_input(&money.to_decimal_string()), Ok(money));
                prop_assert_eq!(Money::parse_input(&money.to_input_string()), Ok(money));
            }

            #[test]
            fn comma_dot_and_one_decimal_mean_the_same(units in 0i64..=999_999_999_999, tenths in 1i64..10) {
                let expected = Ok(Money::from_cents(units * 100 + tenths * 10));
                prop_assert_eq!(Money::parse_input(&format!("{units},{tenths}")), expected);
                prop_assert_eq!(Money::parse_input(&format!("{units}.{tenths}0")), expected);
                prop_assert_eq!(Money::parse_input(&format!(" {units}.{tenths} € ")), expected);
            }

            #[test]
            fn a_third_decimal_is_refused(units in 0i64..1_000_000, decimals in 1u32..1000, extra in 1usize..4) {
                let digits = format!("{decimals:03}{}", "1".repeat(extra - 1));
                prop_assert_eq!(
                    Money::parse_input(&format!("{units},{digits}")),
                    Err(AmountError::TooManyDecimals)
                );
            }

            #[test]
            fn negatives_are_refused(cents in 1..=MAX_CENTS) {
                let typed = format!("-{}", Money::from_cents(cents).to_input_string());
                prop_assert_eq!(Money::parse_input(&typed), Err(AmountError::Negative));
            }

            #[test]
            fn zero_in_any_spelling_is_refused(zeros in 1usize..6, decimals in 0usize..3, comma in any::<bool>()) {
                let mut typed = "0".repeat(zeros);
                if decimals > 0 {
                    typed.push(if comma { ',' } else { '.' });
                    typed.push_str(&"0".repeat(decimals));
                }
                prop_assert_eq!(Money::parse_input(&typed), Err(AmountError::Zero));
            }

            #[test]
            fn letters_are_never_an_amount(prefix in "[0-9]{0,4}", letter in "[a-zA-DF-Z_!?#]", suffix in "[0-9]{0,4}") {
                let typed = format!("{prefix}{letter}{suffix}");
                prop_assert!(Money::parse_input(&typed).is_err(), "{} was taken as an amount", typed);
            }

            #[test]
            fn more_than_twelve_integer_digits_is_too_large(units in 1_000_000_000_000u64..u64::MAX) {
                prop_assert_eq!(
                    Money::parse_input(&units.to_string()),
                    Err(AmountError::TooLarge)
                );
            }
        }
    }
}
