//! Calls into other plugins, in process, with the caller's identity.

use std::sync::Mutex;

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

/// The codes every plugin shares (those of [`ApiError`]'s constructors and the
/// gateway's), found without keeping anything.
const SHARED_CODES: &[&str] = &[
    "invalid_json",
    "validation_failed",
    "unauthorized",
    "invalid_credentials",
    "forbidden",
    "not_found",
    "conflict",
    "already_exists",
    "payload_too_large",
    "method_not_allowed",
    "unsupported_media_type",
    "rate_limited",
    "plugin_unavailable",
    "plugin_timeout",
    "internal",
];

/// How many codes of the plugins' own (`insufficient_stock`, ...) an instance keeps.
/// An application has a handful; a peer sending endless new ones gets `internal`.
const MAX_OWN_CODES: usize = 64;

/// A peer's code as the `&'static str` an [`ApiError`] holds. Codes are the plugins'
/// to define, so any `[a-z][a-z0-9_]{0,63}` passes on: a shared one as it is, another
/// kept once per instance (at most [`MAX_OWN_CODES`]). A malformed code is `None`.
fn known_code(code: &str) -> Option<&'static str> {
    if let Some(c) = SHARED_CODES.iter().copied().find(|c| *c == code) {
        return Some(c);
    }
    let well_formed = (1..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    static OWN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut own = OWN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(c) = own.iter().copied().find(|c| *c == code) {
        return Some(c);
    }
    if own.len() >= MAX_OWN_CODES {
        return None;
    }
    let kept: &'static str = Box::leak(code.to_string().into_boxed_str());
    own.push(kept);
    Some(kept)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_error(status: u16, code: &str) -> ApiError {
        let body =
            serde_json::json!({"error": {"code": code, "message": "m", "details": {"x": 1}}});
        Reply {
            status,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
        .into_error()
    }

    #[test]
    fn a_peers_error_passes_on_with_its_own_code() {
        let e = peer_error(404, "not_found");
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (404, "not_found", "m")
        );
        assert_eq!(e.details["x"], 1);
        // A code of the application's own, not the SDK's: kept once, passed on.
        let e = peer_error(409, "insufficient_stock");
        assert_eq!((e.status, e.code), (409, "insufficient_stock"));
        assert!(std::ptr::eq(
            e.code,
            peer_error(409, "insufficient_stock").code
        ));
    }

    #[test]
    fn malformed_codes_and_bodies_are_internal() {
        for bad in ["", "Not_Found", "has space", "1abc", &"x".repeat(65)] {
            assert_eq!(peer_error(500, bad).code, "internal", "{bad:?}");
        }
        let e = Reply {
            status: 502,
            body: b"<html>".to_vec(),
        }
        .into_error();
        assert_eq!((e.status, e.code), (502, "internal"));
    }
}
