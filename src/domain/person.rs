//! What a member's record holds besides the email: names, phone, postal address; and the
//! folded form of a name used to search and sort alike on every database.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, without accents, spaces collapsed: "  Hélène  DUPONT " → "helene dupont".
pub fn fold(text: &str) -> String {
    let folded: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'œ' => 'o',
            'æ' => 'a',
            'ß' => 's',
            _ => c,
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The key members are sorted and searched by: "last first", folded.
pub fn name_key(first_name: &str, last_name: &str) -> String {
    fold(&format!("{last_name} {first_name}"))
}

/// What is wrong with a name, phone or address; said in the reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonError {
    MissingLastName,
    MissingFirstName,
    NameTooLong,
    InvalidPhone,
    AddressTooLong,
}

impl std::fmt::Display for PersonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::i18n::current().t(match self {
            PersonError::MissingLastName => "member_errors.missing_last_name",
            PersonError::MissingFirstName => "member_errors.missing_first_name",
            PersonError::NameTooLong => "member_errors.name_too_long",
            PersonError::InvalidPhone => "member_errors.invalid_phone",
            PersonError::AddressTooLong => "member_errors.address_too_long",
        }))
    }
}

impl std::error::Error for PersonError {}

/// A first or last name: trimmed, inner spaces collapsed, no control characters.
fn clean_name(input: &str) -> Result<String, PersonError> {
    let cleaned = input
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.chars().count() > 100 {
        return Err(PersonError::NameTooLong);
    }
    Ok(cleaned)
}

pub fn parse_last_name(input: &str) -> Result<String, PersonError> {
    let name = clean_name(input)?;
    if name.is_empty() {
        return Err(PersonError::MissingLastName);
    }
    Ok(name)
}

pub fn parse_first_name(input: &str) -> Result<String, PersonError> {
    let name = clean_name(input)?;
    if name.is_empty() {
        return Err(PersonError::MissingFirstName);
    }
    Ok(name)
}

/// An optional phone number, kept as typed once trimmed ("06 12 34 56 78", "+33 6…").
pub fn parse_phone(input: &str) -> Result<Option<String>, PersonError> {
    let phone = input.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '.' | '-' | '(' | ')'));
    if !allowed || phone.chars().count() > 30 || !phone.chars().any(|c| c.is_ascii_digit()) {
        return Err(PersonError::InvalidPhone);
    }
    Ok(Some(phone.to_string()))
}

/// An optional postal address on one line (line breaks of a spreadsheet cell become ", ").
pub fn parse_address(input: &str) -> Result<Option<String>, PersonError> {
    let address = input
        .lines()
        .map(|line| {
            line.split(|c: char| c.is_whitespace() || c.is_control())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if address.is_empty() {
        return Ok(None);
    }
    if address.chars().count() > 300 {
        return Err(PersonError::AddressTooLong);
    }
    Ok(Some(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  Hélène  DUPONT "), "helene dupont");
        assert_eq!(fold("Œuvre Ça ÉTÉ"), "ouvre ca ete");
        assert_eq!(name_key("Zoé", "Lefèvre"), "lefevre zoe");
    }

    #[test]
    fn names_are_trimmed_and_required() {
        assert_eq!(parse_last_name("  de  la Tour ").unwrap(), "de la Tour");
        assert_eq!(parse_first_name("\t"), Err(PersonError::MissingFirstName));
        assert_eq!(parse_last_name("a\u{0}b").unwrap(), "a b");
        assert_eq!(
            parse_last_name(&"x".repeat(101)),
            Err(PersonError::NameTooLong)
        );
    }

    #[test]
    fn phones_and_addresses() {
        assert_eq!(
            parse_phone(" 06 12 34 56 78 ").unwrap().as_deref(),
            Some("06 12 34 56 78")
        );
        assert_eq!(parse_phone("").unwrap(), None);
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("+-").is_err());
        assert_eq!(
            parse_address("3 rue des Lilas\r\n\r\n74000  Annecy")
                .unwrap()
                .as_deref(),
            Some("3 rue des Lilas, 74000 Annecy")
        );
        assert_eq!(parse_address("  ").unwrap(), None);
    }
}
