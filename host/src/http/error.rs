//! Errors the host itself answers, in the API error shape.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `{"error": {"code", "message", "details"}, "request_id"}` with `status`.
pub fn error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    request_id: &str,
) -> Response {
    error_with(status, code, message, json!({}), request_id)
}

/// `400 validation_failed` naming one field in `details.fields`.
pub fn invalid_field(field: &str, message: &str, request_id: &str) -> Response {
    error_with(
        StatusCode::BAD_REQUEST,
        "validation_failed",
        format!("{field} {message}"),
        json!({"fields": [{"field": field, "message": message}]}),
        request_id,
    )
}

/// Like [`error`], with `details`.
pub fn error_with(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    details: serde_json::Value,
    request_id: &str,
) -> Response {
    let body = json!({
        "error": {"code": code, "message": message.into(), "details": details},
        "request_id": request_id,
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
