//! Calls into other plugins, in process, with the caller's identity.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::kirana::platform::{services as wit, types};
use crate::error::{ApiError, CapError};
use crate::http::Method;

/// Another plugin's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::internal(format!("a peer answered unexpected JSON: {e}")))
    }

    /// The peer's error, passed on as it is (its code, message and details).
    pub fn into_error(self) -> ApiError {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let code = err
            .and_then(|e| e.get("code"))
            .and_then(|c| c.as_str())
            .and_then(known_code)
            .unwrap_or("internal");
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("a peer service failed")
            .to_string();
        let details = err
            .and_then(|e| e.get("details"))
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        ApiError::new(self.status, code, message).with_details(details)
    }
}

/// Maps a peer's code onto the closed list of API codes (so it can be `&'static`).
fn known_code(code: &str) -> Option<&'static str> {
    const CODES: &[&str] = &[
        "invalid_json",
        "validation_failed",
        "cart_empty",
        "invalid_signature",
        "unauthorized",
        "invalid_credentials",
        "forbidden",
        "not_found",
        "conflict",
        "insufficient_stock",
        "invalid_transition",
        "already_exists",
        "payload_too_large",
        "method_not_allowed",
        "unsupported_media_type",
        "rate_limited",
        "plugin_unavailable",
        "plugin_timeout",
        "internal",
    ];
    CODES.iter().copied().find(|c| *c == code)
}

/// Calls `method path` on `plugin` with an optional JSON body.
pub fn call<B: Serialize + ?Sized>(
    plugin: &str,
    method: Method,
    path: &str,
    query: &str,
    body: Option<&B>,
) -> Result<Reply, CapError> {
    let (headers, body) = match body {
        Some(b) => (
            vec![("content-type".to_string(), "application/json".to_string())],
            serde_json::to_vec(b).map_err(|e| CapError::Invalid(e.to_string()))?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let request = types::OutgoingRequest {
        method: method.as_str().to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    };
    wit::call(plugin, &request).map(|r| Reply {
        status: r.status,
        body: r.body,
    })
}

/// `GET path` on `plugin`.
pub fn get(plugin: &str, path: &str, query: &str) -> Result<Reply, CapError> {
    call::<()>(plugin, Method::Get, path, query, None)
}
