//! A normalised email address.

use std::fmt;

use crate::error::FieldError;

/// The longest address accepted (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// An email address: trimmed, lower-cased, syntactically valid, with a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalises user input.
    ///
    /// # Errors
    /// A [`FieldError`] on `email` when the address is invalid.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim().to_lowercase();
        let bad = |m: &str| Err(FieldError::new("email", m));
        if s.is_empty() {
            return bad("is required");
        }
        if s.len() > MAX_EMAIL_LEN {
            return bad("is too long");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("is not an email address");
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return bad("is not an email address");
        }
        Ok(Self(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
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
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.com"
        );
    }

    #[test]
    fn plus_addresses_and_subdomains_are_accepted() {
        assert!(Email::parse("a+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn invalid_addresses_are_rejected_on_the_email_field() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@example",
            "a@@example.com",
            "a b@example.com",
            "a@exa mple.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@exa\u{0}mple.com",
        ] {
            let e = Email::parse(bad).unwrap_err();
            assert_eq!(e.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn overlong_addresses_are_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err().message, "is too long");
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(local in "[a-zA-Z0-9._+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,5}") {
            if let Ok(e) = Email::parse(&format!("{local}@{domain}")) {
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
            }
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,300}") {
            let _ = Email::parse(&s);
        }
    }
}
