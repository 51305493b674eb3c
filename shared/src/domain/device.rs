//! The name a device gives itself when it signs in (`X-Device-Name`).

use crate::error::FieldError;

/// The longest device name kept, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// A device's own name for a session ("Ada's laptop"): 1–64 characters, trimmed, without
/// control or bidirectional-override characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

impl DeviceName {
    /// Parses the header's value; an empty one means none.
    ///
    /// # Errors
    /// A [`FieldError`] on `X-Device-Name` when it is too long or holds control characters.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > MAX_DEVICE_NAME_CHARS {
            return Err(FieldError::new(
                "X-Device-Name",
                format!("must be at most {MAX_DEVICE_NAME_CHARS} characters"),
            ));
        }
        if s.chars().any(|c| {
            c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        }) {
            return Err(FieldError::new(
                "X-Device-Name",
                "must not contain control characters",
            ));
        }
        Ok(Some(Self(s.to_owned())))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(DeviceName::parse("  ").unwrap(), None);
        assert_eq!(
            DeviceName::parse(" Ada's laptop ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Ada's laptop"
        );
        assert!(DeviceName::parse(&"é".repeat(64)).unwrap().is_some());
        assert!(DeviceName::parse(&"x".repeat(65)).is_err());
        assert!(DeviceName::parse("a\u{0007}b").is_err());
        assert!(DeviceName::parse("a\u{202e}b").is_err());
    }
}
