//! Collects every invalid field of a request before answering `400 validation_failed`.

use crate::error::{ApiError, FieldError};

/// ```ignore
/// let mut v = Validator::new();
/// v.length("name", &body.name, 1, 200);
/// v.check(body.price >= 1, "price", "must be ≥ 1");
/// v.finish()?;
/// ```
#[derive(Debug, Default)]
pub struct Validator {
    fields: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.fields.push(FieldError {
                field: field.to_string(),
                message: message.to_string(),
            });
        }
        self
    }

    /// Length in characters within `min..=max` (after trimming).
    pub fn length(&mut self, field: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let n = value.trim().chars().count();
        self.check(
            (min..=max).contains(&n),
            field,
            &format!("must be {min} to {max} characters"),
        )
    }

    /// A plausible e-mail address: one `@`, something before, a dot after.
    pub fn email(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(is_email(value), field, "must be a valid email address")
    }

    /// An E.164 phone number: `+` then 8 to 15 digits.
    pub fn phone(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(
            is_e164(value),
            field,
            "must be an E.164 phone number like +919876543210",
        )
    }

    /// `min ≤ value ≤ max`.
    pub fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: T,
        min: T,
        max: T,
    ) -> &mut Self {
        let ok = value >= min && value <= max;
        self.check(ok, field, &format!("must be between {min} and {max}"))
    }

    /// Adds an already built field error.
    pub fn push(&mut self, field: &str, message: &str) -> &mut Self {
        self.check(false, field, message)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(std::mem::take(&mut self.fields)))
        }
    }
}

pub fn is_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s.chars().any(char::is_whitespace)
}

pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_all_fields() {
        let mut v = Validator::new();
        v.length("name", "", 1, 200)
            .range("price", 0, 1, i64::MAX)
            .email("email", "nope");
        let e = v.finish().unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(|a| a.len()), Some(3));
        assert!(Validator::new().email("e", "a@b.in").finish().is_ok());
    }

    #[test]
    fn phones() {
        assert!(is_e164("+919876543210"));
        assert!(!is_e164("9876543210"));
        assert!(!is_e164("+91 98765"));
    }
}
