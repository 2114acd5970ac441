use std::fmt;

/// An account number of the chart, as the French plan comptable writes them: digits only,
/// 3 to 8 of them, the first being the account's class (1 to 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountNumber(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountError {
    Empty,
    NotDigits,
    Length,
    Class,
}

impl std::error::Error for AccountError {}

/// Said in the reader's language (translation keys `account_error.*`).
impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::i18n::current().t(match self {
            AccountError::Empty => "account_error.empty",
            AccountError::NotDigits => "account_error.not_digits",
            AccountError::Length => "account_error.length",
            AccountError::Class => "account_error.class",
        }))
    }
}

impl AccountNumber {
    pub fn parse(input: &str) -> Result<AccountNumber, AccountError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(AccountError::Empty);
        }
        if !value.chars().all(|c| c.is_ascii_digit()) {
            return Err(AccountError::NotDigits);
        }
        if !(3..=8).contains(&value.len()) {
            return Err(AccountError::Length);
        }
        if value.starts_with('0') || value.starts_with('9') {
            return Err(AccountError::Class);
        }
        Ok(AccountNumber(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The class: 4 third parties, 5 financial, 6 expenses, 7 income...
    pub fn class(&self) -> u8 {
        self.0.as_bytes()[0] - b'0'
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A prefix of account numbers, to select accounts in the journal: `7` is every income
/// account, `411` the members'.
pub fn parse_account_prefix(input: &str) -> Result<Option<String>, AccountError> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(AccountError::NotDigits);
    }
    if value.len() > 8 {
        return Err(AccountError::Length);
    }
    Ok(Some(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers_are_three_to_eight_digits_of_a_class() {
        assert_eq!(AccountNumber::parse(" 7069 ").unwrap().as_str(), "7069");
        assert_eq!(AccountNumber::parse("5112").unwrap().class(), 5);
        assert_eq!(AccountNumber::parse("abc"), Err(AccountError::NotDigits));
        assert_eq!(AccountNumber::parse("70 6"), Err(AccountError::NotDigits));
        assert_eq!(AccountNumber::parse("-706"), Err(AccountError::NotDigits));
        assert_eq!(AccountNumber::parse("70"), Err(AccountError::Length));
        assert_eq!(AccountNumber::parse("123456789"), Err(AccountError::Length));
        assert_eq!(AccountNumber::parse("0706"), Err(AccountError::Class));
        assert_eq!(AccountNumber::parse("906"), Err(AccountError::Class));
        assert_eq!(AccountNumber::parse(""), Err(AccountError::Empty));
    }

    #[test]
    fn prefixes_are_digits() {
        assert_eq!(parse_account_prefix("7").unwrap().as_deref(), Some("7"));
        assert_eq!(parse_account_prefix(" ").unwrap(), None);
        assert_eq!(parse_account_prefix("4%"), Err(AccountError::NotDigits));
        assert_eq!(parse_account_prefix("123456789"), Err(AccountError::Length));
    }
}
