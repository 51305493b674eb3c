//! A candidate password, checked for length only (NIST SP 800-63B).

use std::fmt;

use crate::error::FieldError;

/// Fewest characters accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters accepted (bounds hashing cost).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A password of acceptable length. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Accepts a password of 8 to 256 characters (Unicode scalar values), as typed.
    ///
    /// # Errors
    /// A [`FieldError`] on `password` when the length is out of bounds.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let n = raw.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(FieldError::new(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(FieldError::new(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password's bytes, for hashing only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_from_8_to_256_characters_are_accepted() {
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(256)).is_ok());
    }

    #[test]
    fn short_and_long_passwords_are_rejected_on_the_password_field() {
        assert_eq!(Password::parse("1234567").unwrap_err().field, "password");
        assert_eq!(
            Password::parse(&"x".repeat(257)).unwrap_err().field,
            "password"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 7 two-byte characters are 14 bytes but still too short.
        assert!(Password::parse(&"é".repeat(7)).is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
