//! Reads a JSON object field by field and collects every problem, so a client that sends
//! five wrong fields hears about all five in one `400 validation_failed` (serde stops at
//! the first). Money and counts must be JSON integers: `10.5`, `1e2` and `"100"` are
//! refused.

use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::{ApiError, FieldError};

/// A JSON object being read; each reader returns `None` after recording the error.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self {
            obj,
            errors: Vec::new(),
        }
    }

    /// The raw value, `None` when absent or `null`.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// Records an error for `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A required string, trimmed, of `min..=max` characters.
    pub fn string(&mut self, name: &str, min: usize, max: usize) -> Option<String> {
        match self.raw(name) {
            None => {
                self.error(name, "is required");
                None
            }
            Some(v) => self.check_string(name, v, min, max),
        }
    }

    /// An optional string, trimmed, of at most `max` characters; absent, `null` and
    /// blank all mean "none".
    pub fn opt_string(&mut self, name: &str, max: usize) -> Option<Option<String>> {
        match self.raw(name) {
            None => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(v) => self.check_string(name, v, 1, max).map(Some),
        }
    }

    fn check_string(&mut self, name: &str, v: &Value, min: usize, max: usize) -> Option<String> {
        let Some(s) = v.as_str() else {
            self.error(name, "must be a string");
            return None;
        };
        let s = s.trim();
        let n = s.chars().count();
        if n < min || n > max {
            self.error(name, format!("must be {min} to {max} characters"));
            return None;
        }
        Some(s.to_string())
    }

    /// A required JSON integer within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.raw(name) {
            None => {
                self.error(name, "is required");
                None
            }
            Some(v) => self.check_int(name, v, min, max),
        }
    }

    /// An optional JSON integer within `min..=max`; absent or `null` is `Some(None)`.
    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> Option<Option<i64>> {
        match self.raw(name) {
            None => Some(None),
            Some(v) => self.check_int(name, v, min, max).map(Some),
        }
    }

    fn check_int(&mut self, name: &str, v: &Value, min: i64, max: i64) -> Option<i64> {
        let Some(n) = as_integer(v) else {
            self.error(name, "must be an integer");
            return None;
        };
        if n < min {
            self.error(name, format!("must be ≥ {min}"));
            return None;
        }
        if n > max {
            self.error(name, format!("must be ≤ {max}"));
            return None;
        }
        Some(n)
    }

    /// An optional boolean; absent or `null` is `Some(None)`.
    pub fn opt_bool(&mut self, name: &str) -> Option<Option<bool>> {
        match self.raw(name) {
            None => Some(None),
            Some(Value::Bool(b)) => Some(Some(*b)),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// The collected errors, emptied.
    pub fn take_errors(&mut self) -> Vec<FieldError> {
        std::mem::take(&mut self.errors)
    }

    /// `Ok` when nothing was recorded, else `400 validation_failed` listing every field.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.take_errors()))
        }
    }
}

/// A JSON number written as an integer that fits an i64 (`10.0` and `1e2` are floats
/// to serde_json, so they are refused like `10.5`).
pub fn as_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) if !n.is_f64() => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn integers_must_be_integers() {
        assert_eq!(as_integer(&json!(5)), Some(5));
        assert_eq!(as_integer(&json!(-5)), Some(-5));
        for bad in [
            json!(10.5),
            json!(10.0),
            json!("100"),
            json!(true),
            json!(u64::MAX),
        ] {
            assert_eq!(as_integer(&bad), None, "{bad}");
        }
        let o = obj(json!({"a": 1e2}));
        assert_eq!(as_integer(&o["a"]), None);
    }

    #[test]
    fn every_problem_is_collected() {
        let o = obj(json!({"name": "", "price": 10.5, "stock": -1, "note": 3, "flag": "yes"}));
        let mut f = Fields::new(&o);
        assert_eq!(f.string("name", 1, 10), None);
        assert_eq!(f.int("price", 1, 100), None);
        assert_eq!(f.int("stock", 0, 100), None);
        assert_eq!(f.opt_string("note", 10), None);
        assert_eq!(f.opt_bool("flag"), None);
        assert_eq!(f.string("missing", 1, 10), None);
        assert_eq!(f.opt_int("absent", 0, 1), Some(None));
        let e = f.finish().unwrap_err();
        let fields: Vec<_> = e.details["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            fields,
            ["name", "price", "stock", "note", "flag", "missing"]
        );
    }

    #[test]
    fn strings_are_trimmed_and_blank_optionals_are_none() {
        let o = obj(json!({"name": "  Tea  ", "brand": "   ", "desc": null}));
        let mut f = Fields::new(&o);
        assert_eq!(f.string("name", 1, 10).as_deref(), Some("Tea"));
        assert_eq!(f.opt_string("brand", 10), Some(None));
        assert_eq!(f.opt_string("desc", 10), Some(None));
        assert!(f.finish().is_ok());
    }
}
