//! The API error shape, as a Rust type.

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::http::Response;

/// Why a host capability call failed (the WIT `types.error`).
pub type CapError = crate::bindings::kirana::platform::types::Error;

/// One offending field of a `validation_failed` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An error a handler returns; rendered as
/// `{"error": {"code", "message", "details"}, "request_id"}` with its status.
///
/// The constructors cover the codes every plugin shares; a plugin's own codes (a shop's
/// `insufficient_stock`, say) are built with [`ApiError::new`] in that plugin or a crate
/// its siblings share. A more specific situation goes in the message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Json,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// Attaches `details` (an object).
    pub fn with_details(mut self, details: Json) -> Self {
        self.details = details;
        self
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_json", message)
    }

    /// `400 validation_failed` listing the fields in `details.fields`.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", fields.len()),
        };
        Self::new(400, "validation_failed", message).with_details(json!({ "fields": fields }))
    }

    /// `400 validation_failed` for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn invalid_credentials() -> Self {
        Self::new(401, "invalid_credentials", "invalid credentials")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// `404 not_found`; `what` names the missing thing (`"product"`).
    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(409, "already_exists", message)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "unsupported_media_type",
            "send the body as application/json",
        )
    }

    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(429, "rate_limited", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "plugin_unavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "plugin_timeout", message)
    }

    /// `500 internal`. The message is logged, not shown: clients see a generic text.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        crate::log::error(&message, &[]);
        Self::new(500, "internal", "internal error")
    }

    /// Renders the error with the request's id.
    pub fn into_response(self, request_id: &str) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "details": self.details },
            "request_id": request_id,
        });
        Response::json(self.status, &body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<CapError> for ApiError {
    /// Capability failures a handler did not handle itself: conflicts stay conflicts,
    /// an unavailable or slow peer is 503/504, anything else is an internal error.
    fn from(e: CapError) -> Self {
        match e {
            CapError::Conflict(m) => ApiError::conflict(m),
            CapError::Unavailable(m) => ApiError::unavailable(m),
            CapError::Timeout(m) => ApiError::timeout(m),
            CapError::Denied(m) => ApiError::internal(format!("capability denied: {m}")),
            CapError::NotConfigured(m) => {
                ApiError::internal(format!("capability not configured: {m}"))
            }
            CapError::Invalid(m) => ApiError::internal(format!("invalid capability call: {m}")),
            CapError::Failed(m) => ApiError::internal(format!("capability failed: {m}")),
        }
    }
}

/// The text of a capability error, for logs and `on-event` errors.
pub fn cap_error_message(e: &CapError) -> String {
    match e {
        CapError::Denied(m) => format!("denied: {m}"),
        CapError::NotConfigured(m) => format!("not configured: {m}"),
        CapError::Unavailable(m) => format!("unavailable: {m}"),
        CapError::Timeout(m) => format!("timeout: {m}"),
        CapError::Invalid(m) => format!("invalid: {m}"),
        CapError::Conflict(m) => format!("conflict: {m}"),
        CapError::Failed(m) => format!("failed: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_lists_fields() {
        let e = ApiError::invalid_field("price", "must be ≥ 1");
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.details["fields"][0]["field"], "price");
        assert_eq!(e.message, "price: must be ≥ 1");
    }
}
