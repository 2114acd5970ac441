use std::fmt;

/// An email address, trimmed and lower-cased, checked for a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Indiquez une adresse e-mail valide.")]
    Invalid,
}

/// Characters that a mail header reads as syntax (a display name, a second address, a
/// comment, a quoted part): an address holding one could send mail elsewhere than it says.
const SPECIALS: &str = "<>()[]\\,;:\"";

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let value = input.trim().to_lowercase();
        let Some((local, domain)) = value.split_once('@') else {
            return Err(EmailError::Invalid);
        };
        let plausible = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && value.len() <= 254
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || SPECIALS.contains(c));
        if plausible {
            Ok(Email(value))
        } else {
            Err(EmailError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(
            Email::parse("  Membre@Exemple.ORG ").unwrap().as_str(),
            "membre@exemple.org"
        );
        for bad in [
            "",
            "membre",
            "@exemple.org",
            "a@b",
            "a b@c.org",
            "a@@c.org",
            "a\tb@c.org",
            "a@c.o\nrg",
            "x<spy@evil.test>",
            "a,spy@evil.test",
            "a;b@c.org",
            "\"a\"@c.org",
            "a(b)@c.org",
            "a\\b@c.org",
            "a@[127.0.0.1]",
            "a:b@c.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            Email::parse("O'Neil+club@exemple.org").unwrap().as_str(),
            "o'neil+club@exemple.org"
        );
    }
}
